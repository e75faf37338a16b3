"""Synthesized audio to bytes or files: wav and raw PCM here, compressed formats through FFmpeg."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from xtts_finetune.errors import UserError
from xtts_finetune.utils import atomic_write_bytes

# Codec arguments per format; "ogg" is Vorbis (what most players expect of .ogg), "opus" is Opus in Ogg.
FFMPEG_CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "flac": ["-c:a", "flac", "-f", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5", "-f", "ogg"],
    "opus": ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"],
}
FORMATS = ("wav", "pcm", *FFMPEG_CODECS)
FILE_FORMATS = ("wav", "mp3", "flac", "ogg", "opus")


def pcm16(audio: np.ndarray) -> bytes:
    """Little-endian signed 16-bit samples, clipped rather than wrapped."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def wav_header(sample_rate: int, num_samples: int | None = None) -> bytes:
    """A 16-bit mono WAV header; with no length (streaming) the sizes say 'unknown' (0xFFFFFFFF)."""
    data = 0xFFFFFFFF if num_samples is None else num_samples * 2
    riff = 0xFFFFFFFF if num_samples is None else 36 + data
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return struct.pack("<4sI4s", b"RIFF", riff, b"WAVE") + fmt + struct.pack("<4sI", b"data", data)


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """The whole clip in `fmt` (one of FORMATS)."""
    if fmt == "wav":
        return wav_header(sample_rate, len(audio)) + pcm16(audio)
    if fmt == "pcm":
        return pcm16(audio)
    if fmt not in FFMPEG_CODECS:
        raise UserError(f"unknown audio format {fmt!r}", fix=f"use one of: {', '.join(FORMATS)}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UserError(f"writing {fmt} needs FFmpeg, which is not installed", fix="install ffmpeg, or use wav")
    # Into a seekable file, not a pipe, so FFmpeg can fill in headers (FLAC's total length, MP3's
    # Xing frame) that it writes only at the end; piped FLAC has no length and confuses readers.
    with tempfile.TemporaryDirectory(prefix="xtts-encode-") as tmp:
        out = Path(tmp) / f"audio.{fmt}"
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(sample_rate), "-ac", "1",
               "-i", "pipe:0", *FFMPEG_CODECS[fmt], str(out)]
        result = subprocess.run(cmd, input=pcm16(audio), capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to encode {fmt}: {result.stderr.decode(errors='replace')[-500:]}")
        return out.read_bytes()


def format_for_path(path: str | Path) -> str:
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FILE_FORMATS:
        raise UserError(f"cannot tell the audio format of {path}", fix=f"end the file name in .{', .'.join(FILE_FORMATS)}")
    return fmt


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write `audio` to `path` in the format its extension names, atomically."""
    return atomic_write_bytes(path, encode(audio, sample_rate, format_for_path(path)))
