"""Media decoding through FFmpeg: any container to float32 mono at 22.05 kHz, errors that name the file."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from conftest import SENTENCES
from speech import spoken_recording
from xtts_finetune.dataset.media import collect_media, decode_audio, stream_audio
from xtts_finetune.dataset.transcribe import _load_audio
from xtts_finetune.errors import UserError


def test_stereo_mp3_is_downmixed_resampled_and_optionally_loudness_normalised(tmp_path):
    wav = tmp_path / "talk.wav"
    spoken_recording(wav, SENTENCES[:2])
    mp3 = tmp_path / "quiet.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-af", "volume=0.05", "-ac", "2", "-ar", "44100", str(mp3)], check=True)
    plain = decode_audio(mp3)
    assert plain.dtype == np.float32 and plain.ndim == 1
    assert abs(len(plain) / 22050 - len(decode_audio(wav)) / 22050) < 0.1  # mp3 adds a few ms of padding
    loud = decode_audio(mp3, loudness_normalize=True)
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(loud) > 4 * rms(plain)


def test_streaming_stops_early_without_hanging(tmp_path):
    long = tmp_path / "long.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=300:sample_rate=22050", str(long)], check=True)
    stream = stream_audio(long, chunk_seconds=5)
    first = next(stream)
    stream.close()  # the consumer gives up: FFmpeg must be ended, not left blocked on a full pipe
    assert len(first) == 5 * 22050


def test_errors_name_the_file(tmp_path):
    (tmp_path / "silent.mkv").write_bytes(b"")
    with pytest.raises(UserError, match="silent.mkv: the file is empty"):
        decode_audio(tmp_path / "silent.mkv")
    video_only = tmp_path / "video.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=size=32x32:rate=5:duration=1", "-c:v", "mpeg4", str(video_only)], check=True)
    with pytest.raises(UserError, match="video.mp4: (contains no audio|cannot decode)"):
        decode_audio(video_only)
    with pytest.raises(UserError, match="missing.wav: file not found"):
        decode_audio(tmp_path / "missing.wav")
    media, other = collect_media([tmp_path])
    assert sorted(p.name for p in media) == ["silent.mkv", "video.mp4"] and other == []


def test_ffmpeg_reads_a_file_whose_name_looks_like_a_protocol(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tone = 0.3 * np.sin(np.linspace(0, 440 * 2 * np.pi, 11025)).astype(np.float32)
    for name in ("concat:clip.wav", "-dash.wav"):
        sf.write(tmp_path / name, tone, 22050)
        assert len(decode_audio(name)) == 11025, name
        assert len(_load_audio(name)[1]) == 8000, name  # Whisper's decoder (PyAV), resampled to 16 kHz
