"""The text of a speech request, checked and cut for the GPT: its language, its characters, its sentences."""

from __future__ import annotations

from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language, tokenizer_language


def check_language(language: str | None, default: str | None, model_languages: list[str]) -> str:
    """`language` (or the model's `default`) as a code the model speaks (its config's `languages`)."""
    spoken = [normalize_language(code) for code in model_languages]
    if not language:
        language = default or (spoken[0] if len(spoken) == 1 else None)
        if not language:
            raise UserError("no language given and the model folder does not say one", fix=f"pass a language, one of: {', '.join(spoken)}")
    code = normalize_language(language)
    if tokenizer_language(code) not in model_languages:
        raise UserError(f"this model does not speak language {language!r}", fix=f"use one of: {', '.join(spoken)}")
    return code


def check_characters(text: str, language: str, vocab: Path, mode: str) -> None:
    """Every character of `text` is one the vocabulary encodes (through the front end `mode`)."""
    from xtts_finetune.text.coverage import find_unknown_characters

    try:
        unknown = find_unknown_characters([("input", text)], vocab, language, mode=mode)
    except ImportError as err:  # XTTS cleans zh, ja, ko with optional packages
        raise UserError(f"speaking {language} needs a package that is not installed: {err}",
                        fix=f"install it (e.g. pip install \"coqui-tts[{language}]\")") from err
    if unknown:
        listed = ", ".join(f"{u.char!r} ({u.codepoint})" for u in unknown)
        raise UserError(f"the model's vocab.json cannot encode these characters of the text: {listed}",
                        fix="remove or spell out those characters")


def split_for_gpt(text: str, language: str, limit: int, tokenizer, max_tokens: int) -> list[str]:
    """Sentences within the character `limit`, cut finer where cleaning grows them past the GPT's
    `max_tokens` text tokens (numbers are spelled out: 20 digits become 240 characters)."""
    from xtts_finetune.text.split import split_sentences

    pieces = []
    for piece in split_sentences(text, limit):
        if len(tokenizer.encode(piece.lower(), language)) < max_tokens:
            pieces.append(piece)
        elif limit > 8:
            pieces += split_for_gpt(piece, language, limit // 2, tokenizer, max_tokens)
        else:
            raise UserError(f"cannot cut {piece!r} short enough for the model", fix="spell out long numbers")
    return pieces
