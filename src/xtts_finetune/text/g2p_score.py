"""Scoring a G2P against a `word<TAB>IPA` lexicon: phone and word error rates (used by bench/g2p_eval.py).

Transcription conventions differ more than converters do, so the scores can be taken with length marks
dropped, the tap ɾ read as r and the glottal stop ʔ optional, each by a switch.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from xtts_finetune.errors import UserError

_AFFRICATES = ("tʃʼ", "tsʼ", "tʃ", "dʒ", "ts")
_MODIFIERS = set("ʼʷʰːˑ'")


@dataclass
class G2PScore:
    words: int
    phone_error_rate: float
    word_error_rate: float


def phones(ipa: str) -> list[str]:
    """IPA as phones: affricates whole (tie bars dropped: t͡ʃ is tʃ), modifiers (ʼ ʷ ː) and combining marks kept on
    their phone."""
    ipa = unicodedata.normalize("NFD", ipa.replace(" ", "").replace(".", "").replace("\u0361", "").replace("\u035c", ""))
    out: list[str] = []
    i = 0
    while i < len(ipa):
        affricate = next((a for a in _AFFRICATES if ipa.startswith(a, i)), None)
        out.append(affricate or ipa[i])
        i += len(affricate) if affricate else 1
        while i < len(ipa) and (ipa[i] in _MODIFIERS or unicodedata.combining(ipa[i])):
            out[-1] += ipa[i]
            i += 1
    return out


def canonical(ipa: str, *, length: bool = True, tap_is_r: bool = False, optional_glottal: bool = False) -> list[str]:
    text = ipa
    if not length:
        text = text.replace("ː", "")
    if tap_is_r:
        text = text.replace("ɾ", "r")
    if optional_glottal:
        text = text.replace("ʔ", "")
    return phones(text)


def read_lexicon(path: str | Path) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise UserError(f"{path} line {n} is not word<TAB>IPA: {line!r}", fix="separate the word and its IPA by a tab")
        rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def score(pairs: list[tuple[str, str]], predict, **conventions) -> G2PScore:
    """`pairs` of (word, reference IPA), `predict(word) -> IPA`; PER = edit distance over reference phones."""
    import jiwer

    refs, hyps = [], []
    for word, ipa in pairs:
        refs.append(" ".join(canonical(ipa, **conventions)) or "-")
        hyps.append(" ".join(canonical(predict(word), **conventions)) or "-")
    per = jiwer.wer(refs, hyps)
    wrong = sum(r != h for r, h in zip(refs, hyps))
    return G2PScore(len(pairs), per, wrong / max(1, len(pairs)))


CONVENTIONS = {
    "strict": {},
    "no length": {"length": False},
    "no length, ɾ=r, ʔ optional": {"length": False, "tap_is_r": True, "optional_glottal": True},
}


def evaluate_backend(pairs: list[tuple[str, str]], language: str, backend: str) -> dict | None:
    """{convention: {per, wer, words}} of one G2P backend read through the language's front end; None when the
    backend cannot run here."""
    from xtts_finetune.text.frontends import frontend_for, run_g2p

    normalize = frontend_for(language).normalize
    if run_g2p(normalize(pairs[0][0]), language, backend)[1] != backend:
        return None

    def predict(word):
        return run_g2p(normalize(word), language, backend)[0]

    results = {}
    for name, conventions in CONVENTIONS.items():
        s = score(pairs, predict, **conventions)
        results[name] = {"per": round(s.phone_error_rate, 4), "wer": round(s.word_error_rate, 4), "words": s.words}
    return results
