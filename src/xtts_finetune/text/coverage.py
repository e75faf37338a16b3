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


@dataclass
class UnknownCharacter:
    char: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # ids of clips that contain it, a few at most

    @property
    def codepoint(self) -> str:
        return f"U+{ord(self.char):04X}"


@lru_cache(maxsize=8)
def _vocab_symbols(vocab_path: str) -> frozenset[str]:
    data = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
    return frozenset(data["model"]["vocab"])


@lru_cache(maxsize=1)
def _xtts_tokenizer():
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return VoiceBpeTokenizer()  # no vocab: used only for its per-language text cleaning


def tokenizer_text(text: str, language: str) -> str:
    """The text as XTTS's tokenizer sees it: cleaned, lower-cased, numbers expanded, per language."""
    language = normalize_language(language)
    if language in XTTS_LANGUAGES:
        return _xtts_tokenizer().preprocess_text(text, language)
    return " ".join(text.lower().split())


def find_unknown_characters(
    items: Iterable[tuple[str, str]], vocab_path: str | Path, language: str, max_examples: int = 3
) -> list[UnknownCharacter]:
    """For `(clip_id, text)` pairs, every character the vocabulary cannot encode, most frequent first."""
    symbols = _vocab_symbols(str(Path(vocab_path).resolve()))
    found: dict[str, UnknownCharacter] = {}
    for clip_id, text in items:
        for char in tokenizer_text(text, language):
            if char.isspace() or char in symbols:
                continue
            entry = found.setdefault(char, UnknownCharacter(char))
            entry.count += 1
            if clip_id not in entry.examples and len(entry.examples) < max_examples:
                entry.examples.append(clip_id)
    return sorted(found.values(), key=lambda u: (-u.count, u.char))
