"""Cut very long recordings at silences into pieces, reading them as a stream so memory stays flat.

Transcription and segmentation then work on one piece at a time, whatever the recording's length;
`slice_on_silence` does the same job on its own and writes the pieces as WAV files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from xtts_finetune.dataset.media import stream_audio, write_wav
from xtts_finetune.dataset.segment import HOP_SECONDS, frame_energy_db


@dataclass
class Piece:
    start: float  # seconds from the start of the recording
    audio: np.ndarray
    sample_rate: int

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / self.sample_rate


def quietest_cut(audio: np.ndarray, sample_rate: int, lo: float, hi: float, silence_seconds: float = 0.3) -> int:
    """Sample index at the centre of the quietest `silence_seconds` stretch between lo and hi seconds."""
    energy = 10 ** (frame_energy_db(audio, sample_rate) / 10)
    width = max(1, int(silence_seconds / HOP_SECONDS))
    smooth = np.convolve(energy, np.ones(width) / width, mode="same")
    i_lo, i_hi = int(lo / HOP_SECONDS), min(len(smooth), int(hi / HOP_SECONDS) + 1)
    if i_hi <= i_lo:
        return int(hi * sample_rate)
    frame = i_lo + int(np.argmin(smooth[i_lo:i_hi]))
    return min(len(audio), int((frame + 0.5) * HOP_SECONDS * sample_rate))


def iter_pieces(path: str | Path, sample_rate: int = 22050, max_seconds: float = 600.0,
                chunk_seconds: float = 30.0, loudness_normalize: bool = False) -> Iterator[Piece]:
    """Yield pieces of at most `max_seconds`, each cut at the quietest moment of its second half.

    Holds at most `max_seconds + chunk_seconds` of audio, so an hours-long file costs no more
    memory than a short one.
    """
    max_samples = int(max_seconds * sample_rate)
    buffer, offset = np.zeros(0, dtype=np.float32), 0
    for chunk in stream_audio(path, sample_rate, min(chunk_seconds, max_seconds), loudness_normalize):
        buffer = np.concatenate([buffer, chunk])
        while len(buffer) > max_samples:
            cut = quietest_cut(buffer[: max_samples], sample_rate, max_seconds / 2, max_seconds)
            cut = max(cut, 1)
            yield Piece(offset / sample_rate, buffer[:cut], sample_rate)
            buffer, offset = buffer[cut:].copy(), offset + cut
    if len(buffer):
        yield Piece(offset / sample_rate, buffer, sample_rate)


def slice_on_silence(path: str | Path, out_dir: str | Path, *, max_seconds: float = 600.0,
                     sample_rate: int = 22050, progress=None) -> list[Path]:
    """Write `path` as `<stem>_<start_ms>.wav` pieces of at most `max_seconds`, cut at silences."""
    from xtts_finetune.progress import report

    out_dir = Path(out_dir)
    written = []
    for piece in iter_pieces(path, sample_rate, max_seconds):
        out = out_dir / f"{Path(path).stem}_{round(piece.start * 1000):09d}.wav"
        written.append(write_wav(out, piece.audio, sample_rate))
        report(progress, "slice", piece.end, None, f"{out.name} ({piece.end - piece.start:.1f} s)")
    return written
