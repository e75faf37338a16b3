"""Extending XTTS's BPE vocabulary for a new script, and a tokenizer that reads text through a front end.

New tokens and merges are appended after the base ones, and only merges that involve a new token are
kept, so every base id and every base text's tokenisation stay as they were. The GPT's text embedding
and text head grow by the same rows (`resize_text_rows`); the base rows are copied bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xtts_finetune.text.frontends import kanji_digits, prepare_text, token_language

TEXT_ROWS = ("gpt.text_embedding.weight", "gpt.text_head.weight", "gpt.text_head.bias")
DEFAULT_NEW_TOKENS = 1000


def _merge_pair(merge) -> tuple[str, str]:
    return tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge)


def extend_vocab(base_json: str, texts: list[str], language: str, new_tokens: int = DEFAULT_NEW_TOKENS) -> str:
    """The base tokenizer JSON with BPE tokens learned from `texts` and the `[language]` token appended."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    base = json.loads(base_json)
    vocab, merges = base["model"]["vocab"], base["model"]["merges"]
    string_merges = bool(merges) and isinstance(merges[0], str)
    learner = Tokenizer(models.BPE(unk_token="[UNK]"))
    learner.pre_tokenizer = pre_tokenizers.Whitespace()  # XTTS's: words apart, [SPACE] between them
    alphabet = sorted({c for t in texts for c in t if not c.isspace()})
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + new_tokens, show_progress=False, initial_alphabet=alphabet)
    learner.train_from_iterator(texts, trainer=trainer)
    learned = json.loads(learner.to_str())["model"]
    added: list[str] = []

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = max(vocab.values()) + 1
            added.append(token)

    lang_token = f"[{language}]"
    add(lang_token)
    for char in alphabet:
        add(char)
    new = set(added)
    for merge in learned["merges"]:
        left, right = _merge_pair(merge)
        known = all(part in vocab for part in (left, right))
        if known and (left in new or right in new) and left + right not in vocab:
            add(left + right)
            new.add(left + right)
            merges.append(f"{left} {right}" if string_merges else [left, right])
    if not any(t["content"] == lang_token for t in base.get("added_tokens", [])):
        base.setdefault("added_tokens", []).append({
            "id": vocab[lang_token], "content": lang_token, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True})
    return json.dumps(base, ensure_ascii=False)


def vocab_for_mode(base_json: str, texts: list[str], language: str, mode: str,
                   new_tokens: int = DEFAULT_NEW_TOKENS) -> str:
    """The vocabulary a run in `mode` reads with: the base's, or (script) the base's extended with the script of
    `texts` as the front end normalises them. `train` and `dataset stats` both decide coverage with it."""
    if mode != "script":
        return base_json
    from xtts_finetune.languages import tokenizer_language

    prepared = [prepare_text(t, language, "script").text for t in texts if t.strip()]
    return extend_vocab(base_json, prepared, tokenizer_language(language), new_tokens)


def number_of_tokens(vocab_json: str) -> int:
    """What coqui's `get_number_tokens` gives: the largest id + 1 (the GPT's text rows)."""
    data = json.loads(vocab_json)
    return max([*data["model"]["vocab"].values(), *(t["id"] for t in data.get("added_tokens", []))]) + 1


def resize_text_rows(state: dict, rows: int, seed: int = 0) -> dict:
    """`state` (release names) with the text embedding and head grown to `rows`: base rows bit-exact, new rows
    the mean of the base rows plus a little seeded noise (a neutral start the gradients can tell apart)."""
    generator = torch.Generator().manual_seed(seed)
    state = dict(state)
    for name in TEXT_ROWS:
        old = state[name]
        if old.shape[0] >= rows:
            continue
        extra = old.float().mean(0, keepdim=True).repeat(rows - old.shape[0], *[1] * (old.dim() - 1))
        if old.dim() > 1:
            extra += torch.randn(extra.shape, generator=generator) * old.float().std() * 0.1
        state[name] = torch.cat([old, extra.to(old.dtype)])
    return state


def _voice_bpe_tokenizer():
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return VoiceBpeTokenizer


class FrontEndTokenizer(_voice_bpe_tokenizer()):
    """coqui's tokenizer, reading one language through its front end (script and phonemes modes).

    It pickles: coqui's caches a MeCab tagger (cutlet -> fugashi) for Japanese, a C object that cannot be
    pickled, so handing the tokenizer to a spawned worker process (DataLoader workers on Windows and macOS,
    any process pool) failed and the parent waited for workers that never started; here each process
    builds its own tagger on first use.
    """

    language, mode = "", "base"

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "katsu"}

    def _ours(self, lang: str) -> bool:
        from xtts_finetune.languages import normalize_language

        return self.mode != "base" and normalize_language(lang) == self.language

    def preprocess_text(self, txt, lang):
        if self._ours(lang):
            return prepare_text(txt, self.language, self.mode).text
        return super().preprocess_text(kanji_digits(txt, lang), lang)

    def encode(self, txt, lang):
        if not self._ours(lang):
            return super().encode(txt, lang)
        text = f"[{token_language(self.language, self.mode)}]{self.preprocess_text(txt, lang)}".replace(" ", "[SPACE]")
        return self.tokenizer.encode(text).ids


def load_tokenizer(vocab: str | Path, language: str, mode: str = "base") -> FrontEndTokenizer:
    """The tokenizer of `vocab` (a file, or tokenizer JSON text) reading `language` through its front end in
    `mode`; every other language as coqui reads it. Put it on a loaded `Xtts` as `model.tokenizer` and coqui's
    own `inference` speaks the language."""
    from tokenizers import Tokenizer

    from xtts_finetune.languages import normalize_language

    tokenizer = FrontEndTokenizer()
    text = str(vocab)
    tokenizer.tokenizer = Tokenizer.from_str(text) if text.lstrip().startswith("{") else Tokenizer.from_file(text)
    tokenizer.language, tokenizer.mode = normalize_language(language), mode
    tokenizer.char_limits.setdefault(tokenizer.language, 250)
    return tokenizer
