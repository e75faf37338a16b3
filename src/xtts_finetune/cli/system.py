"""`xtts-finetune doctor` (environment checks) and `xtts-finetune dev ...` (tiny models for smoke tests)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path


def register(sub) -> None:
    doctor = sub.add_parser("doctor", help="check Python, torch, GPU, FFmpeg, disk, base models and the hub")
    doctor.add_argument("--workspace", type=Path, default=Path("."), help="folder whose free disk to check (default: .)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=_doctor)

    dev = sub.add_parser("dev", help="developer tools")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="DEV_COMMAND", required=True)
    tiny = dev_sub.add_parser(
        "make-tiny-models", help="write tiny random XTTS, Whisper and speaker models to DIR for an offline smoke test"
    )
    tiny.add_argument("dir", type=Path)
    tiny.set_defaults(func=_make_tiny_models)


def _doctor(args) -> int:
    from xtts_finetune.doctor import format_checks, run_checks

    checks = run_checks(args.workspace)
    if args.json:
        print(json.dumps([asdict(check) for check in checks], indent=2))
    else:
        marks = ("✓", "!", "✗")
        try:
            "".join(marks).encode(sys.stdout.encoding or "ascii")
        except UnicodeEncodeError:  # e.g. a cp1252 Windows console
            marks = ("+", "!", "x")
        print(format_checks(checks, marks))
    return 1 if any(check.ok is False for check in checks) else 0


def _make_tiny_models(args) -> int:
    from xtts_finetune.dev import make_tiny_models

    paths = make_tiny_models(args.dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
