"""`dataset verify`: does each clip's audio hold exactly its text? Whisper listens, and we compare.

Misaligned subtitles, Whisper hallucinations, clipped first or last words and wrong corpus rows
all show up as a high character error rate (CER) between what Whisper hears in the clip and the
clip's text, after both are normalised the same way (captions, case, punctuation; no spaces for
scripts written without them). Clips above the threshold are marked suspect, never changed:
`dataset list --suspect` shows them and `exclude_suspects` drops them from training in one step.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xtts_finetune.dataset.manifest import dataset_dir, load_manifest, save_manifest
from xtts_finetune.dataset.media import resample
from xtts_finetune.dataset.segment import NO_SPACE_LANGUAGES
from xtts_finetune.progress import report
from xtts_finetune.text.normalize import normalize_transcript

DEFAULT_THRESHOLD = 0.3  # a clip's text and Whisper's hearing differ in more than 3 of 10 characters
CER_BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
WHISPER_RATE = 16000


@dataclass
class VerifyReport:
    checked: int = 0
    threshold: float = DEFAULT_THRESHOLD
    suspects: list[tuple[str, float, str]] = field(default_factory=list)  # (id, cer, reason)
    histogram: dict[str, int] = field(default_factory=dict)  # "0.05-0.1" -> clips

    def summary(self) -> str:
        lines = [f"checked {self.checked} clips; {len(self.suspects)} suspect (CER above {self.threshold})",
                 "CER histogram: " + ", ".join(f"{k}: {n}" for k, n in self.histogram.items())]
        lines += [f"suspect {i}: {why}" for i, _, why in self.suspects]
        if self.suspects:
            lines.append("exclude them all with: xtts-finetune dataset verify WORKSPACE --exclude-suspects")
        return "\n".join(lines)


def comparable(text: str, language: str) -> str:
    """Text as both sides are compared: cleaned like a transcript, case-folded, without punctuation."""
    text = unicodedata.normalize("NFKC", normalize_transcript(text, language)).casefold()
    text = "".join(ch if not unicodedata.category(ch).startswith(("P", "S")) else " " for ch in text)
    text = " ".join(text.split())
    return re.sub(r"\s+", "", text) if language.split("-")[0] in NO_SPACE_LANGUAGES else text


def character_error_rate(reference: str, heard: str, language: str) -> float:
    """Edits per reference character (capped at 1.0), after `comparable` on both sides."""
    import jiwer

    ref, hyp = comparable(reference, language), comparable(heard, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return min(1.0, float(jiwer.cer(ref, hyp or " ")))


def cer_histogram(scores: list[float]) -> dict[str, int]:
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=CER_BINS)
    return {f"{a:g}-{b:g}": int(n) for a, b, n in zip(CER_BINS, CER_BINS[1:], counts)}


def verify_dataset(workspace: str | Path, *, whisper_model: str = "large-v3", threshold: float = DEFAULT_THRESHOLD,
                   recheck: bool = False, transcriber=None, progress=None) -> VerifyReport:
    """Score every clip that has audio; marks suspects in the manifest (saved every few seconds, so an
    interrupted check resumes: clips already scored are skipped unless `recheck`)."""
    import soundfile as sf

    manifest = load_manifest(workspace)
    root, out = dataset_dir(workspace), VerifyReport(threshold=threshold)
    todo = [s for s in manifest.segments if not s.rejected and (recheck or s.cer is None)]
    if todo and transcriber is None:
        from xtts_finetune.dataset.transcribe import Transcriber

        transcriber = Transcriber(whisper_model)
    last_save = time.monotonic()
    for n, seg in enumerate(todo):
        report(progress, "verify", n, len(todo), seg.id)
        try:
            audio, rate = sf.read(root / seg.audio_file, dtype="float32", always_2d=True)
        except (OSError, RuntimeError):
            seg.cer, seg.suspect = 1.0, f"its audio {seg.audio_file} is missing or unreadable"
            continue
        heard = transcriber.transcribe(resample(audio.mean(axis=1), rate, WHISPER_RATE), language=manifest.language, vad=False)
        text = " ".join(w.text for w in heard.words)
        seg.cer = round(character_error_rate(seg.text, text, manifest.language), 3)
        seg.suspect = f"CER {seg.cer:.2f} > {threshold}: Whisper heard {text[:80]!r}" if seg.cer > threshold else None
        if time.monotonic() - last_save > 5:
            save_manifest(workspace, manifest)
            last_save = time.monotonic()
    scored = [s for s in manifest.segments if s.cer is not None and not s.rejected]
    for seg in scored:  # clips scored by an earlier run, judged by this run's threshold
        if seg.cer <= threshold:
            seg.suspect = None
        elif not seg.suspect:
            seg.suspect = f"CER {seg.cer:.2f} > {threshold}"
    save_manifest(workspace, manifest)
    out.checked = len(scored)
    out.histogram = cer_histogram([s.cer for s in scored])
    out.suspects = [(s.id, s.cer, s.suspect) for s in scored if s.suspect]
    report(progress, "verify", len(todo), len(todo), "done")
    return out


def suspect_segments(workspace: str | Path) -> list:
    """Clips `dataset verify` marked suspect, worst first."""
    return sorted((s for s in load_manifest(workspace).segments if s.suspect), key=lambda s: -(s.cer or 0))


