"""The numbers of an evaluation, as pure functions: error rates, speaker similarity, length and babble.

Kept free of models so each can be checked against values worked out by hand.
"""

from __future__ import annotations

import numpy as np

from xtts_finetune.languages import is_known_to_xtts, normalize_language
from xtts_finetune.text.normalize import normalize_transcript

SILENCE_DB = 35.0  # frames this far below the clip's loud speech count as silence
FRAME_SECONDS = 0.02
BABBLE_SECONDS = 0.3  # more sound than this after the last recognised word is babble (or noise)


def scoring_text(text: str, language: str) -> str:
    """Text as both sides of an error rate see it: the dataset's cleaning, then XTTS's own text front end
    (lower case, numbers, abbreviations and symbols spelled out), punctuation and extra spaces removed."""
    import jiwer
    from TTS.tts.layers.xtts.tokenizer import multilingual_cleaners

    language = normalize_language(language)
    text = normalize_transcript(text, language)
    if not is_known_to_xtts(language):  # the language's own front end: numbers read out, letter rows folded
        from xtts_finetune.text.frontends import prepare_text

        text = prepare_text(text, language, "script").text
    try:
        text = multilingual_cleaners(text, "zh-cn" if language == "zh" else language)
    except (KeyError, NotImplementedError):  # ja, hi: XTTS has no number expansion for them
        text = text.lower()
    clean = jiwer.Compose([jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])
    return clean(text)


def error_rates(reference: str, hypothesis: str, language: str) -> tuple[float, float]:
    """(CER, WER) of `hypothesis` against `reference` after `scoring_text`; 1.0 when nothing was heard."""
    import jiwer

    ref, hyp = scoring_text(reference, language), scoring_text(hypothesis, language)
    if not ref:
        return (0.0, 0.0) if not hyp else (1.0, 1.0)
    if not hyp:
        return 1.0, 1.0
    return float(jiwer.cer(ref, hyp)), float(jiwer.wer(ref, hyp))


def cosine_similarity(a, b) -> float:
    """Cosine of the angle between two embeddings: 1 same direction, 0 unrelated, -1 opposite."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm else 0.0


def frame_levels_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level of each 20 ms frame, in dB full scale."""
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    usable = len(audio) // frame * frame
    frames = np.asarray(audio[:usable], dtype=np.float64).reshape(-1, frame)
    return 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-10)


def trailing_sound_seconds(audio: np.ndarray, sample_rate: int, speech_end: float) -> float:
    """Seconds of sound (not silence) after `speech_end`, the end of the last recognised word.

    Silence is judged against the clip's own loud speech (its 95th-percentile frame), so a quiet
    recording is not all "sound" and a loud one not all "silence"."""
    levels = frame_levels_db(audio, sample_rate)
    if not len(levels):
        return 0.0
    loud = levels > np.percentile(levels, 95) - SILENCE_DB
    first = int(np.ceil(max(speech_end, 0.0) / FRAME_SECONDS))
    return float(loud[first:].sum() * FRAME_SECONDS)


def is_babble(trailing_seconds: float) -> bool:
    return trailing_seconds > BABBLE_SECONDS


def seconds_per_character(seconds: float, text: str) -> float:
    """Speaking pace; characters without spaces, so scripts with and without them compare."""
    return seconds / max(1, len("".join(text.split())))
