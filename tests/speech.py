"""Speech with known text for tests, spoken by espeak-ng (a Debian package the test set-up installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def espeak(text: str, out: Path, voice: str = "en", speed: int = 160) -> Path:
    """Speak `text` into the wav file `out` (22.05 kHz mono, espeak-ng's native format)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; run the README's test command, which installs it")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True, capture_output=True)
    return out


def make_training_set(root: Path, sentences: list[str], speaker: str = "speaker", voice: str = "en") -> Path:
    """A minimal Coqui-format dataset folder (wavs/ + metadata CSVs), the last sentence for eval."""
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    rows = []
    for i, sentence in enumerate(sentences):
        raw = espeak(sentence, root / "raw" / f"{i}.wav", voice=voice)
        audio, sr = sf.read(raw, dtype="float32")
        audio = AF.resample(torch.from_numpy(audio), sr, 22050).numpy()
        (root / "wavs").mkdir(parents=True, exist_ok=True)
        sf.write(root / "wavs" / f"clip{i}.wav", np.asarray(audio), 22050, subtype="PCM_16")
        rows.append(f"wavs/clip{i}.wav|{sentence}|{speaker}")
    header = "audio_file|text|speaker_name"
    (root / "metadata_train.csv").write_text("\n".join([header, *rows[:-1]]) + "\n", encoding="utf-8")
    (root / "metadata_eval.csv").write_text("\n".join([header, rows[-1]]) + "\n", encoding="utf-8")
    return root


def spoken_recording(out: Path, sentences: list[str], *, per_word: bool = False, seed: int = 0,
                     word_gap: tuple[float, float] = (0.08, 0.2), sentence_gap: tuple[float, float] = (0.5, 1.0),
                     sample_rate: int = 22050) -> list[dict]:
    """One wav of espeak-ng speech with silences of known length; returns where every sentence and word lies.

    With `per_word`, each word is spoken on its own (each distinct word once, so long recordings
    stay fast) and joined with `word_gap` pauses, so word timings are exact. Speech is trimmed to
    its audible part; the pauses hold a -70 dBFS noise floor. Returns
    [{"text", "start", "end", "words": [(start, end, word), ...]}] in seconds.
    """
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    cache: dict[str, np.ndarray] = {}

    def speak(text: str) -> np.ndarray:
        key = text.lower() if per_word else text
        if key not in cache:
            raw = espeak(key.strip(".,!?;:"), out.parent / "_espeak" / f"{len(cache)}.wav")
            audio, sr = sf.read(raw, dtype="float32")
            assert sr == sample_rate, sr
            loud = np.flatnonzero(np.abs(audio) > 0.003 * np.abs(audio).max())  # -50 dB: decays count as speech
            cache[key] = audio[loud[0] : loud[-1] + 1]
        return cache[key]

    parts, layout, t = [], [], 0.0

    def pause(seconds: float) -> None:
        nonlocal t
        n = int(seconds * sample_rate)
        parts.append((rng.standard_normal(n) * 10 ** (-70 / 20)).astype(np.float32))
        t += n / sample_rate

    pause(0.3)
    for sentence in sentences:
        words = []
        for k, word in enumerate(sentence.split() if per_word else [sentence]):
            if k:
                pause(rng.uniform(*word_gap))
            audio = speak(word)
            parts.append(audio)
            words.append((t, t + len(audio) / sample_rate, word))
            t += len(audio) / sample_rate
        layout.append({"text": sentence, "start": words[0][0], "end": words[-1][1], "words": words})
        pause(rng.uniform(*sentence_gap))
    sf.write(out, np.concatenate(parts), sample_rate, subtype="PCM_16")
    return layout
