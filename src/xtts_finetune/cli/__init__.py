"""The `xtts-finetune` command line. Each stage adds its subcommands from a module beside this one.

Every command calls the same library functions the web UI and the REST server call; this package
only parses arguments, renders progress and turns `UserError` into a readable message.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from xtts_finetune import __version__
from xtts_finetune.errors import UserError

# Modules under xtts_finetune.cli that each define `register(subparsers)`.
COMMAND_MODULES = ["system", "dataset", "models", "train", "evaluate", "speak", "text", "ui"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtts-finetune",
        description="Turn recordings of a voice into a fine-tuned XTTS v2 text-to-speech model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"xtts_finetune.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"xtts_finetune.cli.{name}":
                continue  # that stage is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:  # transformers warns about the GPT config of every XTTS it builds; not actionable
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except UserError as err:
        if args.verbose:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
