"""`xtts-finetune text`: exactly what a model will read for a text (front end, G2P, tokens, [UNK])."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    text = sub.add_parser("text", help="show what the model reads: normalised text, G2P, tokens, [UNK]")
    text.add_argument("text", nargs="?", help="the text (default: read stdin, one result per line)")
    text.add_argument("--language", required=False, help="any ISO 639 code (en, am, sw, ti, yo ...)")
    text.add_argument("--model", type=Path, help="an exported model, a run or a base model folder: show its tokens")
    text.add_argument("--g2p", choices=["builtin", "epitran", "transphone"], help="run this G2P backend too")
    text.add_argument("--json", action="store_true", help="one JSON object per line")
    text.add_argument("--list-languages", action="store_true", help="every language code and name, then exit")
    text.set_defaults(func=_text)


def _text(args) -> int:
    from xtts_finetune.errors import UserError
    from xtts_finetune.languages import language_choices
    from xtts_finetune.text.preview import preview_text

    if args.list_languages:
        for label, code in language_choices():
            print(f"{code}\t{label}")
        return 0
    if not args.language:
        raise UserError("no language given", fix="pass --language CODE (xtts-finetune text --list-languages)")
    lines = [args.text] if args.text is not None else [line.rstrip("\n") for line in sys.stdin]
    for line in lines:
        if not line.strip():
            continue
        result = preview_text(line, args.language, args.model, args.g2p)
        if args.json:
            print(result.to_json())
            continue
        print(f"normalized: {result.normalized}")
        if result.g2p is not None:
            print(f"g2p ({result.g2p_backend}): {result.g2p}")
        print(f"reads:      {result.text}   [{result.frontend}, vocab {result.vocab}]")
        if args.model:
            print(f"tokens:     {' '.join(result.tokens)}")
            print(f"unk:        {'none' if not result.unk else ' '.join(result.unk)}")
    return 0
