"""Which characters of a transcript a model's `vocab.json` cannot encode.

XTTS maps any character missing from its BPE vocabulary to [UNK], so the model learns (and later
says) nothing for it. Finding those characters before training means no sample is silently spoiled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from xtts_finetune.languages import XTTS_LANGUAGES, normalize_language
from xtts_finetune.text.frontends import prepare_text, xtts_cleaning


@dataclass
class UnknownCharacter:
    char: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # ids of clips that contain it, a few at most

    @property
    def codepoint(self) -> str:
        return f"U+{ord(self.char):04X}"


@lru_cache(maxsize=8)
def _vocab_symbols(vocab: str) -> frozenset[str]:
    """Symbols of a vocab.json path, or of tokenizer JSON text."""
    data = json.loads(vocab if vocab.lstrip().startswith("{") else Path(vocab).read_text(encoding="utf-8"))
    return frozenset(data["model"]["vocab"])


def tokenizer_text(text: str, language: str, mode: str = "base") -> str:
    """The text as XTTS's tokenizer sees it: cleaned, lower-cased, numbers expanded, per language
    (through the language's front end when the vocabulary mode is script or phonemes)."""
    language = normalize_language(language)
    if language in XTTS_LANGUAGES and mode == "base":
        return xtts_cleaning(text, language)
    return prepare_text(text, language, mode).text


def find_unknown_characters(
    items: Iterable[tuple[str, str]], vocab: str | Path, language: str, max_examples: int = 3, mode: str = "base"
) -> list[UnknownCharacter]:
    """For `(clip_id, text)` pairs, every character the vocabulary (a vocab.json or its JSON text) cannot
    encode, most frequent first."""
    vocab = str(vocab)
    symbols = _vocab_symbols(vocab if vocab.lstrip().startswith("{") else str(Path(vocab).resolve()))
    found: dict[str, UnknownCharacter] = {}
    for clip_id, text in items:
        for char in tokenizer_text(text, language, mode):
            if char.isspace() or char in symbols:
                continue
            entry = found.setdefault(char, UnknownCharacter(char))
            entry.count += 1
            if clip_id not in entry.examples and len(entry.examples) < max_examples:
                entry.examples.append(clip_id)
    return sorted(found.values(), key=lambda u: (-u.count, u.char))
