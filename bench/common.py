"""What the bench scripts share: the random model (its arguments and building it), the dataset's arguments,
and writing a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def model_arguments(parser: argparse.ArgumentParser, clips: int) -> None:
    """The random XTTS (a GPT of --layers x --width), the espeak-ng dataset's size and batch, --out, and the
    hidden flags by which a bench starts itself as a child process for one measurement."""
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--clips", type=int, default=clips)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)


def random_model(folder: Path, layers: int, width: int, **options) -> Path:
    """A random XTTS v2 with the release's config.json, DVAE and vocabulary size, and a GPT of `layers` x
    `width` with heads of 64 channels, as the release's (`--layers 30 --width 1024` is its full shape);
    `options` go to `make_tiny_xtts` (seed, stop_bias)."""
    from xtts_finetune.dev.tiny_xtts import make_tiny_xtts

    return make_tiny_xtts(folder, layers=layers, model_dim=width, heads=max(1, width // 64), **options)


def save_report(report: dict, out: Path | None) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
