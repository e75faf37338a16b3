"""The silence slicer: long recordings cut at silences, read as a stream so memory stays flat."""

from __future__ import annotations

import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from xtts_finetune.cli import main
from xtts_finetune.dataset import iter_pieces, slice_on_silence
from xtts_finetune.dataset.segment import frame_energy_db


def tone_with_pauses(path, seconds: int, period: float = 7.0, pause: float = 1.5):
    """A 220 Hz tone, silent for `pause` seconds in every `period`, encoded by FFmpeg (never held here)."""
    loud = period - pause
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=220:sample_rate=22050:duration={seconds}",
                    "-af", f"volume='if(gt(mod(t,{period}),{loud}),0,0.5)':eval=frame", "-c:a", "flac", str(path)], check=True)
    return path


def test_pieces_are_cut_in_silence_and_cover_the_recording(tmp_path):
    path = tone_with_pauses(tmp_path / "tone.flac", 200)
    pieces = list(iter_pieces(path, max_seconds=30.0, chunk_seconds=10.0))
    assert all(len(p.audio) / 22050 <= 30.0 for p in pieces)
    assert sum(len(p.audio) for p in pieces) == int(200 * 22050)
    for before, after in zip(pieces, pieces[1:]):
        assert after.start == pytest.approx(before.end)
        assert 5.5 < after.start % 7.0 < 7.0, after.start  # inside a pause
        assert frame_energy_db(after.audio[:441], 22050).max() < -60


def test_memory_stays_flat_for_a_long_recording(tmp_path):
    path = tone_with_pauses(tmp_path / "long.flac", 1200)  # 20 minutes: 106 MB as float32
    tracemalloc.start()
    pieces = 0
    for piece in iter_pieces(path, max_seconds=60.0, chunk_seconds=10.0):
        pieces += 1
        del piece
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pieces >= 20
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"


def test_slice_on_silence_writes_pieces_and_cli(tmp_path, capsys):
    path = tone_with_pauses(tmp_path / "tone.flac", 40)
    written = slice_on_silence(path, tmp_path / "out", max_seconds=15.0)
    assert len(written) >= 3 and all(p.suffix == ".wav" for p in written)
    assert sum(sf.info(p).frames for p in written) == 40 * 22050
    assert main(["dataset", "slice", str(path), str(tmp_path / "cli"), "--max-seconds", "15"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(written)
    audio, sr = sf.read(written[1])
    assert sr == 22050 and np.abs(audio[:200]).max() < 1e-3  # starts in a pause
