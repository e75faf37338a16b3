"""Score G2P backends on a `word<TAB>IPA` lexicon: phone and word error rates, under several conventions.

    .venv/bin/python bench/g2p_eval.py LEXICON.tsv --language am --backend builtin --backend epitran \
        [--out bench/results/g2p_NAME.json]

A backend that is not installed is reported as such (the built-in converter is always there).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from datetime import datetime, timezone
from pathlib import Path

from xtts_finetune.text.g2p_score import evaluate_backend, read_lexicon



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lexicon")
    parser.add_argument("--language", default="am")
    parser.add_argument("--backend", action="append", choices=["builtin", "epitran", "transphone"])
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pairs = read_lexicon(args.lexicon)
    report = {"lexicon": args.lexicon, "language": args.language, "python": platform.python_version(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "backends": {}}
    for backend in args.backend or ["builtin"]:
        results = evaluate_backend(pairs, args.language, backend)
        report["backends"][backend] = results
        if results is None:
            print(f"{backend}: not available (see the warning above)")
            continue
        for name, r in results.items():
            print(f"{backend:<11} {name:<28} PER {r['per']:6.1%}  WER {r['wer']:6.1%}  ({r['words']} words)")
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
