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


def make_training_set(root: Path, sentences: list[str], speaker: str = "speaker") -> Path:
    """A minimal Coqui-format dataset folder (wavs/ + metadata CSVs), the last sentence for eval."""
    import numpy as np
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    rows = []
    for i, sentence in enumerate(sentences):
        raw = espeak(sentence, root / "raw" / f"{i}.wav")
        audio, sr = sf.read(raw, dtype="float32")
        audio = AF.resample(torch.from_numpy(audio), sr, 22050).numpy()
        (root / "wavs").mkdir(parents=True, exist_ok=True)
        sf.write(root / "wavs" / f"clip{i}.wav", np.asarray(audio), 22050, subtype="PCM_16")
        rows.append(f"wavs/clip{i}.wav|{sentence}|{speaker}")
    header = "audio_file|text|speaker_name"
    (root / "metadata_train.csv").write_text("\n".join([header, *rows[:-1]]) + "\n", encoding="utf-8")
    (root / "metadata_eval.csv").write_text("\n".join([header, rows[-1]]) + "\n", encoding="utf-8")
    return root
