"""What a model will read for a text: normalised text, G2P output, tokens of its vocabulary, [UNK] marked.

The `text` command, the UI's preview and `bench/g2p_eval.py` use it, so a user checks a sentence (or a
whole lexicon) against exactly the tokenizer training and synthesis use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.languages import check_language, is_known_to_xtts
from xtts_finetune.text.frontends import frontend_for, prepare_text


@dataclass
class TextPreview:
    language: str
    frontend: str  # name/version
    vocab: str  # base | script | phonemes
    normalized: str
    g2p: str | None
    text: str  # what the tokenizer reads
    tokens: list[str]
    unk: list[str]  # characters that became [UNK]
    g2p_backend: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def model_vocab(folder: str | Path, language: str) -> tuple[Path, str]:
    """(vocab.json, vocabulary mode) of an export, a run or a base model folder."""
    folder = Path(folder)
    vocab = folder / "vocab.json"
    if not vocab.is_file():
        raise UserError(f"{folder} has no vocab.json", fix="give an exported model, a run folder or a base model folder")
    for name, key in (("model_card.json", "text_frontend"), ("config.json", "vocab_mode")):
        try:
            found = json.loads((folder / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(found, dict) and found.get("vocab"):
            return vocab, found["vocab"]
        if isinstance(found, str) and found in ("base", "script", "phonemes"):
            return vocab, found
    # A base model: its own languages as it reads them; any other shows which characters it lacks.
    return vocab, "base" if is_known_to_xtts(language) else "script"


def preview_text(text: str, language: str, model: str | Path | None = None, g2p: str | None = None) -> TextPreview:
    """The preview of one text; without a model, no tokens (the front end's output only)."""
    language = check_language(language)
    frontend = frontend_for(language)
    tokens: list[str] = []
    unk: list[str] = []
    mode = "base" if is_known_to_xtts(language) else "script"
    if model is not None:
        from xtts_finetune.text.coverage import find_unknown_characters
        from xtts_finetune.text.vocab import load_tokenizer

        vocab, mode = model_vocab(model, language)
        tokenizer = load_tokenizer(vocab, language, mode)
        if mode == "script" and f"[{language}]" not in tokenizer.tokenizer.get_vocab():
            tokenizer.mode = "script-on-base"  # a base model: read the script as is, to show what it lacks
        tokens = [tokenizer.tokenizer.id_to_token(i) for i in _encode(tokenizer, text, language, mode)]
        unk = [u.char for u in find_unknown_characters([("text", text)], vocab, language, mode=mode)]
    prepared = prepare_text(text, language, mode, g2p)
    return TextPreview(language, f"{frontend.name}/{frontend.version}", mode, prepared.normalized, prepared.g2p,
                       prepared.text, tokens, unk, prepared.g2p_backend)


def _encode(tokenizer, text: str, language: str, mode: str) -> list[int]:
    if tokenizer.mode == "script-on-base":
        prepared = prepare_text(text, language, "script").text.replace(" ", "[SPACE]")
        return tokenizer.tokenizer.encode(prepared).ids
    return tokenizer.encode(text, language)
