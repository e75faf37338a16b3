"""Score G2P backends on a `word<TAB>IPA` lexicon: phone and word error rates, under several conventions.

    .venv/bin/python bench/g2p_eval.py LEXICON.tsv --language am --backend builtin --backend epitran

A backend that is not installed is reported as such (the built-in converter is always there).
"""

from __future__ import annotations

import argparse
import logging

from xtts_finetune.text.frontends import frontend_for, run_g2p
from xtts_finetune.text.g2p_score import read_lexicon, score

CONVENTIONS = {
    "strict": {},
    "no length": {"length": False},
    "no length, ɾ=r, ʔ optional": {"length": False, "tap_is_r": True, "optional_glottal": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lexicon")
    parser.add_argument("--language", default="am")
    parser.add_argument("--backend", action="append", choices=["builtin", "epitran", "transphone"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pairs = read_lexicon(args.lexicon)
    normalize = frontend_for(args.language).normalize
    for backend in args.backend or ["builtin"]:
        used = run_g2p(normalize(pairs[0][0]), args.language, backend)[1]
        if used != backend:
            print(f"{backend}: not available (see the warning above)")
            continue

        def predict(word, backend=backend):
            return run_g2p(normalize(word), args.language, backend)[0]

        for name, conventions in CONVENTIONS.items():
            s = score(pairs, predict, **conventions)
            print(f"{backend:<11} {name:<28} PER {s.phone_error_rate:6.1%}  WER {s.word_error_rate:6.1%}  ({s.words} words)")


if __name__ == "__main__":
    main()
