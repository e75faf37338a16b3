"""Text front ends: per language, normalisation -> optional G2P -> the text the tokenizer reads.

One front end (name + version, recorded in the run and the model card) serves dataset checks, training
and synthesis, so a model always reads text prepared the way it was trained on. The vocabulary mode
says what reaches the tokenizer: `base` (a language XTTS knows, its own cleaning), `script` (the
normalised text, for a vocabulary extended with the script's tokens) or `phonemes` (the G2P output in
Latin letters the base vocabulary has, read with the `[en]` token).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from xtts_finetune.errors import UserError
from xtts_finetune.languages import XTTS_LANGUAGES, normalize_language, tokenizer_language
from xtts_finetune.text.normalize import normalize_transcript

log = logging.getLogger(__name__)
VOCAB_MODES = ("base", "script", "phonemes")
G2P_BACKENDS = ("builtin", "epitran", "transphone")
PHONEMES_TOKEN_LANGUAGE = "en"  # romanised phones are Latin letters: read them as the base model reads Latin


@dataclass(frozen=True)
class FrontEnd:
    name: str
    version: str
    normalize: Callable[[str], str]
    builtin_g2p: Callable[[str], str] | None = None  # normalised text -> IPA
    romanize: Callable[[str], str] | None = None  # IPA -> base-vocabulary letters

    def record(self) -> dict:
        return {"name": self.name, "version": self.version}


@dataclass
class Prepared:
    normalized: str
    g2p: str | None  # IPA, when a G2P ran
    text: str  # what the tokenizer reads
    g2p_backend: str | None = None


def _basic(text: str) -> str:
    return " ".join(normalize_transcript(text, "und").lower().split())


def _amharic() -> FrontEnd:
    from xtts_finetune.text.amharic import amharic_g2p, normalize_amharic, romanize_ipa

    return FrontEnd("amharic", "3", normalize_amharic, amharic_g2p, romanize_ipa)  # 3: Ethiopic numerals multiply (issue 25)


@lru_cache(maxsize=None)
def frontend_for(language: str) -> FrontEnd:
    """The front end of a language: a dedicated one, XTTS's own for its 17, else basic cleaning."""
    code = normalize_language(language)
    if code == "am":
        return _amharic()
    if code in XTTS_LANGUAGES:
        return FrontEnd("xtts", "1", lambda text: normalize_transcript(text, code))
    return FrontEnd("basic", "1", _basic)


def default_vocab_mode(language: str) -> str:
    """`base` for XTTS's languages, `script` for any other (its characters need tokens of their own)."""
    return "base" if normalize_language(language) in XTTS_LANGUAGES else "script"


def check_vocab_mode(mode: str, language: str, base_for_any_language: bool = False) -> str:
    """`train`'s choice for `auto`, or `mode` checked. `base_for_any_language`: base is allowed for a
    language it has no token for (dataset stats show what it lacks)."""
    if mode == "auto":
        return default_vocab_mode(language)
    if mode not in VOCAB_MODES:
        raise UserError(f"unknown vocabulary mode {mode!r}", fix=f"use one of: auto, {', '.join(VOCAB_MODES)}")
    if mode == "base" and not base_for_any_language and normalize_language(language) not in XTTS_LANGUAGES:
        raise UserError(f"the base vocabulary has no token for language {language!r}",
                        fix="use --vocab script (extend the vocabulary) or --vocab phonemes")
    return mode


def token_language(language: str, mode: str) -> str:
    """The language token the text is read with."""
    return PHONEMES_TOKEN_LANGUAGE if mode == "phonemes" else tokenizer_language(language)


def kanji_digits(text: str, language: str) -> str:
    """Japanese digits written as kanji, which cutlet reads out (coqui's cleaning leaves them as they are)."""
    if language.split("-")[0] != "ja":
        return text
    from xtts_finetune.text.japanese import japanese_digits

    return japanese_digits(text)


@lru_cache(maxsize=1)
def _coqui_tokenizer():
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return VoiceBpeTokenizer()  # no vocab: used only for its per-language text cleaning


def xtts_cleaning(text: str, language: str) -> str:
    """The text as XTTS's own tokenizer cleans it for one of its languages: lower-cased, numbers, symbols and
    abbreviations expanded (coqui's `preprocess_text`), Japanese digits as kanji first."""
    return _coqui_tokenizer().preprocess_text(kanji_digits(text, language), language)


def prepare_text(text: str, language: str, mode: str = "base", g2p: str | None = None) -> Prepared:
    """Normalise `text`, run G2P where the mode (or an explicit `g2p` backend) asks for it."""
    code = normalize_language(language)
    frontend = frontend_for(code)
    if mode == "base" and code in XTTS_LANGUAGES:
        normalized = frontend.normalize(text)
        return Prepared(normalized, None, xtts_cleaning(normalized, code))
    normalized = frontend.normalize(text)
    if mode != "phonemes" and not g2p:
        return Prepared(normalized, None, normalized.lower())
    ipa, backend = run_g2p(normalized, code, g2p or "builtin")
    romanize = frontend.romanize or _default_romanize()
    return Prepared(normalized, ipa, romanize(ipa) if mode == "phonemes" else normalized.lower(), backend)


def _default_romanize():
    from xtts_finetune.text.amharic import romanize_ipa

    return romanize_ipa


class G2PUnavailable(RuntimeError):
    """An optional G2P backend that cannot run here (not installed, or its model files absent)."""


def run_g2p(text: str, language: str, backend: str = "builtin") -> tuple[str, str]:
    """(IPA, backend used): the asked backend, or the built-in converter when it cannot run (said once, logged)."""
    if backend not in G2P_BACKENDS:
        raise UserError(f"unknown G2P backend {backend!r}", fix=f"use one of: {', '.join(G2P_BACKENDS)}")
    used = backend
    if backend != "builtin":
        try:
            ipa = _external_g2p(text, normalize_language(language), backend)
        except (ImportError, OSError, G2PUnavailable) as err:
            _said(logging.WARNING, "G2P backend %s is not available (%s); using the built-in converter", backend, str(err))
            used = "builtin"
    if used == "builtin":
        builtin = frontend_for(language).builtin_g2p
        if builtin is None:
            raise UserError(f"there is no G2P for language {language!r}",
                            fix="use --vocab script, or install epitran (pip install epitran) for it")
        ipa = builtin(text)
    _said(logging.INFO, "G2P for %s: %s", normalize_language(language), used)
    return ipa, used


@lru_cache(maxsize=64)
def _said(level: int, message: str, *args) -> None:
    """Log a message once per process (G2P runs per clip; the backend used is worth one line)."""
    log.log(level, message, *args)


@lru_cache(maxsize=4)
def _epitran(code: str):
    import epitran  # optional: pip install epitran (amh-Ethi-pp works offline from the package's data)

    return epitran.Epitran({"am": "amh-Ethi-pp"}.get(code, code))


TRANSPHONE_MODEL = "042801_base"  # what transphone 1.5's read_tokenizer loads as 'latest'


def transphone_model_dir() -> Path:
    """Where transphone keeps its model files, found without importing it (its import can install packages)."""
    spec = importlib.util.find_spec("transphone")
    if spec is None or not spec.origin:
        raise ImportError("transphone is not installed (pip install transphone)")
    return Path(spec.origin).parent / "data" / "model" / TRANSPHONE_MODEL


def _external_g2p(text: str, language: str, backend: str) -> str:
    if backend == "epitran":
        return " ".join(_epitran(language).transliterate(w) for w in text.split())
    model = transphone_model_dir()
    if not any(model.glob("*.pt")):
        raise G2PUnavailable(f"transphone's model files are not in {model} (it downloads them from GitHub on first "
                             "use; run `python -m transphone.bin.download_model` once online)")
    g2p = _transphone(language)
    return " ".join("".join(g2p.tokenize(w)) for w in text.split())


@lru_cache(maxsize=4)
def _transphone(code: str):
    """Transphone's tokenizer, read once per language: loading its model per clip would dominate."""
    from transphone import read_tokenizer

    try:
        return read_tokenizer({"am": "amh"}.get(code, code))
    except ValueError as err:  # transphone's word for a model it could not read
        raise G2PUnavailable(str(err)) from err
