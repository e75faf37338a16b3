"""Media in and clips out: any audio or video file decoded by the FFmpeg CLI to float32 mono.

FFmpeg reads every container users bring (phone recordings, podcasts, video) and does the
down-mixing, resampling and optional loudness normalisation in one streaming pass, so hours of
audio never sit in memory at once.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from xtts_finetune.errors import UserError
from xtts_finetune.utils import atomic_path

MEDIA_EXTENSIONS = frozenset(
    {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".mp4", ".mkv", ".webm", ".mov"}
)
_FIX_DECODE = "check that the file plays in a media player; if it does, convert it to WAV or FLAC and retry"


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise UserError("ffmpeg was not found on PATH; it decodes every media file.",
                        fix="install FFmpeg (apt install ffmpeg, brew install ffmpeg, or winget install ffmpeg)")
    return exe


def collect_media(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into (media files, other files found in folders), both sorted.

    A file named explicitly is always returned as media so decoding can explain what is wrong
    with it; files inside folders are kept only when their extension is a media type.
    """
    media, other = [], []
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                (media if child.suffix.lower() in MEDIA_EXTENSIONS else other).append(child)
        else:
            media.append(path)
    return list(dict.fromkeys(media)), other


def check_media_file(path: Path) -> None:
    """Refuse missing, empty and unsupported files before FFmpeg is started, naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: file not found.", fix="check the path")
    if path.suffix.lower() not in MEDIA_EXTENSIONS:
        raise UserError(f"{path}: unsupported file type {path.suffix or '(none)'!r}.",
                        fix=f"use one of {', '.join(sorted(MEDIA_EXTENSIONS))}")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (0 bytes).", fix="re-export or re-download it")


def stream_audio(path: str | Path, sample_rate: int = 22050, chunk_seconds: float = 30.0,
                 loudness_normalize: bool = False) -> Iterator[np.ndarray]:
    """Yield the file's audio as float32 mono chunks at `sample_rate`, decoded by FFmpeg as it goes.

    Raises UserError (after any chunks already yielded) when FFmpeg fails or finds no audio.
    """
    path = Path(path)
    check_media_file(path)
    # Absolute, so a name like "concat:x.wav" or "http:x.mp3" is read as a file, never as an FFmpeg protocol.
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path.resolve()), "-vn", "-sn", "-dn"]
    if loudness_normalize:
        cmd += ["-af", "loudnorm=I=-23:TP=-2:LRA=11"]  # EBU R128 broadcast loudness, one pass
    # -ac 1 alone sums stereo at 0.707 each (a clean source peaking at 0.78 per channel reaches 1.1);
    # rematrix_maxval 1 scales the down-mix matrix to unity gain: stereo becomes (L + R) / 2.
    cmd += ["-rematrix_maxval", "1", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    chunk_bytes = 4 * max(1, int(chunk_seconds * sample_rate))
    total = 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty FFmpeg cannot block
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        try:
            pending = b""
            while data := proc.stdout.read(chunk_bytes):
                data, pending = pending + data, b""
                usable = len(data) - len(data) % 4
                data, pending = data[:usable], data[usable:]
                if data:
                    total += len(data) // 4
                    yield np.frombuffer(data, dtype=np.float32).copy()
        finally:
            proc.stdout.close()
            code = _stop(proc)  # closing the pipe first ends an FFmpeg that is still writing
        errors.seek(0)
        message = errors.read().decode("utf-8", "replace").strip().splitlines()
    if code != 0:
        reason = message[-1] if message else f"ffmpeg exit status {code}"
        raise UserError(f"{path}: cannot decode audio ({reason}).", fix=_FIX_DECODE)
    if total == 0:
        raise UserError(f"{path}: contains no audio.", fix="use a file with an audio track")


def _stop(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def decode_audio(path: str | Path, sample_rate: int = 22050, loudness_normalize: bool = False) -> np.ndarray:
    """The whole file as one float32 mono array; for clips and short files (use `stream_audio` for hours)."""
    return np.concatenate(list(stream_audio(path, sample_rate, loudness_normalize=loudness_normalize)))


def fit_full_scale(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """(audio, gain in dB): a float signal past full scale (decoded from float files, or resampling
    overshoot) is scaled down to peak at -0.1 dBFS instead of being clipped when written; gain 0.0 otherwise."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 1.0:
        return audio, 0.0
    gain = 10 ** (-0.1 / 20) / peak
    return (audio * gain).astype(np.float32), 20 * float(np.log10(gain))


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM mono atomically (the format Coqui's training loader expects)."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (e.g. 22.05 kHz clips to Whisper's 16 kHz)."""
    if from_rate == to_rate:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // g, from_rate // g).astype(np.float32)
