"""`xtts-finetune doctor`: what a first run trips over, checked up front, each failure with its fix.

Python, the torch build and the device it will train on, FFmpeg and audio decoding, free disk,
cached base models (an interrupted download shows here, not halfway into training) and the hub.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xtts_finetune import basemodels, installer
from xtts_finetune.utils import human_bytes

PARTIAL_SUFFIXES = (".incomplete", ".part")
DISK_WARN_BYTES = 20 * 1024**3
DISK_FAIL_BYTES = 5 * 1024**3
LOW_VRAM_BYTES = 8 * 1024**3
INSTALL_FIX = "bash scripts/install.sh (Windows: install.bat), from the xtts-finetune folder"
FFMPEG_FIX = {
    "Linux": "sudo apt install ffmpeg (or your distribution's ffmpeg package)",
    "Darwin": "brew install ffmpeg",
    "Windows": "winget install --id Gyan.FFmpeg.Shared (the shared build: audio decoding needs its DLLs), then open a new terminal",
}


@dataclass
class Check:
    name: str
    ok: Optional[bool]  # True: fine, None: a warning, False: fails (doctor exits 1)
    detail: str
    fix: str = ""


def _import_torch():
    """torch, or the reason it does not import (a broken CUDA library raises OSError, not ImportError)."""
    try:
        import torch

        return torch, ""
    except (ImportError, OSError) as err:
        return None, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info < (3, 10):
        return Check("python", False, f"Python {version} is too old; xtts-finetune needs 3.10 to 3.13", INSTALL_FIX)
    return Check("python", True, f"Python {version} at {sys.executable}")


def check_torch() -> Check:
    torch, error = _import_torch()
    if torch is None:
        return Check("torch", False, f"torch cannot be imported: {error}", INSTALL_FIX)
    if torch.version.cuda:
        build = f"CUDA {torch.version.cuda} build"
    elif sys.platform == "darwin" and torch.backends.mps.is_built():
        build = "MPS build"
    else:
        build = "CPU build"
    return Check("torch", True, f"torch {torch.__version__}, {build}")


def check_device() -> Check:
    torch, _ = _import_torch()
    if torch is None:
        return Check("device", False, "unknown: torch cannot be imported", INSTALL_FIX)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        more = torch.cuda.device_count() - 1
        detail = f"{props.name}, {human_bytes(props.total_memory)} VRAM" + (f" (+{more} more GPUs)" if more else "")
        if props.total_memory < LOW_VRAM_BYTES:
            return Check("device", None, detail + ": fine-tuning may run out of GPU memory",
                         "train with a smaller batch size")
        return Check("device", True, detail)
    detail = "CPU only: fine-tuning will be slow; building datasets and speaking work"
    if torch.backends.mps.is_available():  # present, but coqui's trainer and XTTS inference here run on CUDA or CPU
        return Check("device", None, f"{detail} (an Apple GPU is present, but nothing here runs on MPS)",
                     "train on a machine with an NVIDIA GPU; speaking and datasets work on this Mac's CPU")
    smi = installer.query_nvidia_driver()
    if smi is not None:  # a GPU is there, but this torch cannot use it
        choice = installer.choose_torch(platform.system(), platform.machine(), smi)
        return Check("device", None, f"{detail}. An NVIDIA GPU is present but torch cannot use it: {choice.reason}",
                     INSTALL_FIX)
    return Check("device", None, detail, "train on a machine with an NVIDIA GPU")


def check_ffmpeg() -> Check:
    fix = FFMPEG_FIX.get(platform.system(), "install FFmpeg from https://ffmpeg.org/download.html")
    exe = shutil.which("ffmpeg")
    if exe is None:
        return Check("ffmpeg", False, "ffmpeg is not on PATH; it decodes media files and cuts audio", fix)
    try:
        result = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("ffmpeg", False, f"{exe} does not run: {err}", fix)
    first_line = (result.stdout.splitlines() or ["(no output)"])[0]
    if result.returncode != 0:
        return Check("ffmpeg", False, f"{exe} -version failed: {first_line}", fix)
    return Check("ffmpeg", True, first_line.split(" Copyright")[0])


def _write_test_wav(path: Path, rate: int = 16000, frames: int = 1600) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(int(8000 * ((i % 40) / 20 - 1)).to_bytes(2, "little", signed=True) for i in range(frames)))


def check_audio_decoding() -> Check:
    """torchaudio decodes through torchcodec, which loads FFmpeg's libraries: ffmpeg on PATH is not enough."""
    fix = "install FFmpeg 4 to 9 with its shared libraries: " + FFMPEG_FIX.get(platform.system(), "see ffmpeg.org")
    try:
        import torchaudio
    except (ImportError, OSError) as err:
        return Check("audio decoding", False, f"torchaudio cannot be imported: {err}", INSTALL_FIX)
    with tempfile.TemporaryDirectory(prefix="xtts-doctor-") as tmp:
        path = Path(tmp) / "tone.wav"
        _write_test_wav(path)
        try:
            audio, rate = torchaudio.load(str(path))
        except Exception as err:  # torchcodec raises RuntimeError/OSError/ImportError depending on what is missing
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return Check("audio decoding", False, f"torchaudio cannot decode a WAV file: {message}", fix)
    if rate != 16000 or audio.shape[-1] != 1600:
        return Check("audio decoding", False, f"decoded a 16 kHz, 1600-sample WAV as {rate} Hz, {audio.shape[-1]} samples", fix)
    return Check("audio decoding", True, "torchaudio decodes audio through torchcodec")


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(workspace: Path, warn_below: int = DISK_WARN_BYTES, fail_below: int = DISK_FAIL_BYTES) -> Check:
    where = _existing_parent(Path(workspace))
    free = shutil.disk_usage(where).free
    detail = f"{human_bytes(free)} free at {where}"
    fix = "free disk space, or use --workspace on a larger disk (checkpoints take a few GiB each)"
    if not os.access(where, os.W_OK):
        return Check("disk", False, f"{where} is not writable", "choose a workspace folder you can write to")
    if free < fail_below:
        return Check("disk", False, f"{detail}: under {human_bytes(fail_below)}, training would fill the disk", fix)
    if free < warn_below:
        return Check("disk", None, f"{detail}: under {human_bytes(warn_below)}, enough for few checkpoints", fix)
    return Check("disk", True, detail)


def _base_model_problem(folder: Path) -> Optional[str]:
    partial = sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name.endswith(PARTIAL_SUFFIXES))
    if partial:
        return f"interrupted download ({', '.join(partial[:3])})"
    missing = [name for name in basemodels.REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        return f"incomplete (missing {', '.join(missing)})"
    return None


def scan_base_models(home: Optional[Path] = None) -> dict[str, Optional[str]]:
    """Each base version under HOME/base with what is wrong with it (None: complete).

    basemodels downloads into a hidden `.VERSION.incomplete` folder and renames it when verified, so
    that folder, without a complete VERSION beside it, is an interrupted download.
    """
    base = (home or basemodels.home()) / "base"
    if not base.is_dir():
        return {}
    found = {p.name: _base_model_problem(p) for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    for staging in sorted(base.glob(".*.incomplete")):
        version = staging.name[1:-len(".incomplete")]
        if staging.is_dir() and found.get(version, "missing") is not None:
            found[version] = "interrupted download (it resumes where it stopped)"
    return dict(sorted(found.items()))


def _base_model_fix(version: str, home: Path) -> str:
    if version in basemodels.RELEASES:
        return f"xtts-finetune models download {version}"
    return f"copy the missing files into {home / 'base' / version}, or delete that folder"


def check_base_models(home: Optional[Path] = None) -> Check:
    home = home or basemodels.home()
    base = home / "base"
    found = scan_base_models(home)
    if not found:
        return Check("base models", True, f"none cached in {base} yet; the first training run downloads one")
    good = [name for name, problem in found.items() if problem is None]
    broken = {name: problem for name, problem in found.items() if problem is not None}
    cached = f"cached: {', '.join(good)}" if good else "none complete"
    if broken:
        problems = "; ".join(f"{name}: {problem}" for name, problem in broken.items())
        fix = " ; ".join(_base_model_fix(name, home) for name in broken)
        return Check("base models", False, f"{cached}; {problems} in {base}", fix)
    return Check("base models", True, f"{cached} in {base}")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub(have_base_model: bool, timeout: float = 3.0) -> Check:
    """The hub only matters for downloading base models: unreachable is fatal only with none cached."""
    if hub_offline():
        return Check("model hub", True, "offline mode (HF_HUB_OFFLINE=1): not contacted; only cached base models are used")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if installer.reachable(endpoint, timeout=timeout):
        return Check("model hub", True, f"{endpoint} answers")
    fix = ("check the network or proxy (HTTPS_PROXY), set HF_ENDPOINT to a mirror, or copy a base model "
           f"folder into {basemodels.home() / 'base'}")
    if have_base_model:
        return Check("model hub", None, f"{endpoint} cannot be reached; the cached base models still work", fix)
    return Check("model hub", False, f"{endpoint} cannot be reached and no base model is cached, so training cannot start", fix)


def check_whisper_gpu() -> Check:
    """Batched Whisper on a GPU needs CUDA 12's cuBLAS and cuDNN 9, which torch's CUDA 13 build lacks."""
    from xtts_finetune.whisper_gpu import WHEELS_FIX, cuda_check

    check = cuda_check()
    if check.usable or "no CUDA GPU" in check.detail:
        return Check("whisper gpu", True, check.detail)
    return Check("whisper gpu", None, check.detail, WHEELS_FIX)


def run_checks(workspace: str | Path = ".") -> list[Check]:
    have_base_model = None in scan_base_models().values()
    return [check_python(), check_torch(), check_device(), check_whisper_gpu(), check_ffmpeg(), check_audio_decoding(),
            check_disk(Path(workspace)), check_base_models(), check_hub(have_base_model)]


def format_checks(checks: list[Check], marks: tuple[str, str, str] = ("✓", "!", "✗")) -> str:
    """One line per check; under each warning or failure, its fix, indented."""
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        mark = marks[0] if check.ok else marks[1] if check.ok is None else marks[2]
        lines.append(f"{mark} {check.name:<{width}}  {check.detail}")
        if check.fix and check.ok is not True:
            lines.append(f"    fix: {check.fix}")
    return "\n".join(lines)
