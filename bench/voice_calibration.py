"""Calibrate the dataset stage's voice threshold, and time its speaker encoder, on labelled real speech.

    .venv/bin/python bench/voice_calibration.py FOLDER [--out bench/results/voice_calibration.json]

FOLDER holds audio files named SPEAKER-ANYTHING.ext (LibriSpeech's naming, e.g. 1688-142285-0000.flac):
every pair of files is scored, same-speaker pairs against other-speaker pairs, and the share of each
on the wrong side of a few thresholds is printed. The encoder's speed is given as seconds of audio
embedded per second on this machine's CPU (one thread, as the dataset stage runs it); it has no
upstream counterpart to compare with, since coqui's tools have no target-voice filtering.
The README's figures come from the 100 LibriSpeech test-other files in resemble-ai/Resemblyzer's audio_data/.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from xtts_finetune.dataset.media import MEDIA_EXTENSIONS, decode_audio
from xtts_finetune.dataset.voice_encoder import SAMPLE_RATE, load_voice_encoder
from xtts_finetune.dataset.voices import DEFAULT_THRESHOLD, Separation

THRESHOLDS = (0.65, 0.70, DEFAULT_THRESHOLD, 0.80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in MEDIA_EXTENSIONS)
    encoder = load_voice_encoder()
    audio = [decode_audio(f, SAMPLE_RATE) for f in files]
    start = time.perf_counter()
    vectors = np.stack([encoder.embed(a, SAMPLE_RATE) for a in audio])
    seconds, took = sum(len(a) for a in audio) / SAMPLE_RATE, time.perf_counter() - start
    found = Separation.of(vectors, [f.name.split("-")[0] for f in files])
    result = {"files": len(files), "speakers": len({f.name.split("-")[0] for f in files}), "audio_seconds": round(seconds, 1),
              "embed_seconds": round(took, 2), "times_real_time": round(seconds / took, 1), "cpu": platform.processor() or platform.machine(),
              "same": _summary(found.same), "other": _summary(found.other),
              "errors": {f"{t:.2f}": dict(zip(("same_below", "other_at_or_above"), found.errors(t))) for t in THRESHOLDS}}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _summary(values: np.ndarray) -> dict:
    points = dict(zip(("p1", "p5", "median", "p95", "p99"), np.percentile(values, [1, 5, 50, 95, 99]).round(3).tolist()))
    return {"pairs": int(len(values)), "min": round(float(values.min()), 3), **points, "max": round(float(values.max()), 3)}


if __name__ == "__main__":
    main()
