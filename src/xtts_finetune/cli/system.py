"""`xtts-finetune dev ...`: developer tools (tiny models for offline smoke tests)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    dev = sub.add_parser("dev", help="developer tools")
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="DEV_COMMAND", required=True)
    tiny = dev_sub.add_parser(
        "make-tiny-models", help="write tiny random XTTS and Whisper models to DIR for an offline smoke test"
    )
    tiny.add_argument("dir", type=Path)
    tiny.set_defaults(func=_make_tiny_models)


def _make_tiny_models(args) -> int:
    from xtts_finetune.dev import make_tiny_models

    paths = make_tiny_models(args.dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
