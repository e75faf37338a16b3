"""Pick the PyTorch build for this machine: the CUDA build its NVIDIA driver can run, MPS, or CPU.

Standard library only, and Python 3.8 syntax: scripts/install.sh and install.bat run this file with
the system Python before the project environment (and torch) exists. Run as a script it prints
KEY=value lines, one per line and unquoted, that both shells can read:

    python3 src/xtts_finetune/installer.py           # the plan (TORCH_DEVICE, TORCH_INDEX, ...)
    python3 src/xtts_finetune/installer.py --probe   # ... and whether TORCH_INDEX can be reached
    python3 src/xtts_finetune/installer.py --mark-synced   # record that `uv sync` just ran
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

TORCH_VERSION = "2.11.0"
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
CPU_INDEX = PYTORCH_INDEX + "cpu"
# The CUDA builds torch 2.11 publishes, newest first, with the oldest driver (major) each runs on.
CUDA_BUILDS = ((580, "cu130"), (570, "cu128"), (560, "cu126"))
# torch's Linux wheels on PyPI (the ones uv.lock pins) are the CUDA 13.0 build.
PYPI_LINUX_BUILD = "cu130"
DRIVER_FIX = "update the NVIDIA driver (580 or newer runs every build), then run the install again"
# Where torch 2.11 wheels exist besides macOS arm64 (platform.machine() names, lowercased).
BUILT_FOR = {"Linux": ("x86_64", "amd64", "aarch64", "arm64"), "Windows": ("x86_64", "amd64")}
SYNC_STAMP = ".xtts-finetune-synced"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TorchChoice:
    device: str  # "cuda" | "mps" | "cpu"
    index_url: Optional[str]  # None: keep the PyPI build that uv.lock pins
    reason: str
    supported: bool = True  # False: PyTorch publishes no torch 2.11 build for this machine


def parse_driver_version(smi_output: str) -> Optional[str]:
    """'570.124.06' from `nvidia-smi --query-gpu=driver_version` output (one line per GPU), else None."""
    for line in smi_output.splitlines():
        if re.fullmatch(r"\d+\.\d+(\.\d+)?", line.strip()):
            return line.strip()
    return None


def _cuda_name(build: str) -> str:
    digits = build[2:]
    return f"{digits[:-1]}.{digits[-1]}"


def choose_torch(system: str, machine: str, smi_output: Optional[str]) -> TorchChoice:
    """The decision table. `smi_output` is None when there is no nvidia-smi."""
    machine = machine.lower()
    if system == "Darwin":
        if machine in ("arm64", "aarch64"):
            return TorchChoice("mps", None, "Apple Silicon: the PyPI build uses the Apple GPU (MPS)")
        return TorchChoice("cpu", None, f"PyTorch publishes no torch {TORCH_VERSION} for Intel Macs; "
                           "use an Apple Silicon Mac, Linux or Windows", supported=False)
    if machine not in BUILT_FOR.get(system, ()):
        return TorchChoice("cpu", None, f"PyTorch publishes no torch {TORCH_VERSION} for {system} on {machine}; "
                           "use Linux (x86_64, aarch64), Windows (x86_64) or an Apple Silicon Mac", supported=False)
    if smi_output is None:
        if system == "Windows":  # PyPI's Windows wheel is already the CPU build
            return TorchChoice("cpu", None, "no NVIDIA GPU (no nvidia-smi): the PyPI build runs on the CPU; training will be slow")
        return TorchChoice("cpu", CPU_INDEX, "no NVIDIA GPU (no nvidia-smi): the CPU build; training will be slow")
    driver = parse_driver_version(smi_output)
    cpu_index = None if system == "Windows" else CPU_INDEX
    if driver is None:
        said = next((line.strip() for line in smi_output.splitlines() if line.strip()), "nothing")[:100]
        return TorchChoice("cpu", cpu_index, f"nvidia-smi reported no driver version (it said: {said}), so the "
                           f"CPU build; fix: {DRIVER_FIX}")
    major = int(driver.split(".")[0])
    for minimum, build in CUDA_BUILDS:
        if major >= minimum:
            # Windows always needs the CUDA index: PyPI's Windows wheel is CPU-only.
            index = None if system == "Linux" and build == PYPI_LINUX_BUILD else PYTORCH_INDEX + build
            source = "the PyPI build" if index is None else f"the {build} build from {index}"
            return TorchChoice("cuda", index, f"NVIDIA driver {driver} runs CUDA {_cuda_name(build)}: {source}")
    oldest, build = CUDA_BUILDS[-1]
    return TorchChoice("cpu", cpu_index, f"NVIDIA driver {driver} is too old for torch {TORCH_VERSION} (CUDA "
                       f"{_cuda_name(build)} needs {oldest} or newer), so the CPU build; fix: {DRIVER_FIX}")


def query_nvidia_driver() -> Optional[str]:
    """nvidia-smi's driver-version output, its error text if it fails, or None without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        result = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"nvidia-smi failed: {err}"
    return result.stdout if result.returncode == 0 else (result.stdout + result.stderr)


def installed_torch(venv: Path) -> Optional[str]:
    """The torch version installed in `venv` (e.g. '2.11.0+cu128'), read from its metadata, not imported."""
    patterns = ("lib/python3*/site-packages/torch-*.dist-info/METADATA", "Lib/site-packages/torch-*.dist-info/METADATA")
    for pattern in patterns:
        for metadata in sorted(venv.glob(pattern)):
            for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    return None


def needs_reinstall(choice: TorchChoice, installed: Optional[str]) -> bool:
    """Whether the installed torch is another build than `choice` (its '+cu128' tag against the index's)."""
    if installed is None:
        return False
    have = installed.partition("+")[2] or None
    want = choice.index_url.rstrip("/").rsplit("/", 1)[-1] if choice.index_url else None
    return have != want


def lock_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml"):
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def sync_needed(venv: Path, root: Path = ROOT) -> bool:
    """`uv sync` only when the lock changed since the last one: a sync would undo a CUDA-index torch."""
    stamp = venv / SYNC_STAMP
    if not stamp.exists() or installed_torch(venv) is None:
        return True
    return stamp.read_text(encoding="utf-8").strip() != lock_digest(root)


def mark_synced(venv: Path, root: Path = ROOT) -> None:
    (venv / SYNC_STAMP).write_text(lock_digest(root) + "\n", encoding="utf-8")


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether a server answers at `url` (any HTTP status counts: the host is there)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _shell_safe(value) -> str:
    """One line with nothing that bash or cmd.exe would interpret when the scripts echo it."""
    return " ".join(re.sub(r"[\"&|<>^%!`$]", " ", str(value)).split())


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Print the PyTorch build to install, as KEY=value lines.")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="the project environment")
    parser.add_argument("--system", default=platform.system(), help="override platform.system()")
    parser.add_argument("--machine", default=platform.machine(), help="override platform.machine()")
    parser.add_argument("--driver", help="override nvidia-smi's output; 'none' means no nvidia-smi")
    parser.add_argument("--probe", action="store_true", help="also say whether TORCH_INDEX answers")
    parser.add_argument("--mark-synced", action="store_true", help="record that `uv sync` just succeeded")
    args = parser.parse_args(argv)
    if args.mark_synced:
        mark_synced(args.venv)
        return 0
    smi = query_nvidia_driver() if args.driver is None else (None if args.driver == "none" else args.driver)
    choice = choose_torch(args.system, args.machine, smi)
    installed = installed_torch(args.venv)
    reinstall = needs_reinstall(choice, installed)
    lines = {
        "TORCH_VERSION": TORCH_VERSION,
        "TORCH_DEVICE": choice.device,
        "TORCH_INDEX": choice.index_url or "",
        "TORCH_SUPPORTED": int(choice.supported),
        "TORCH_REASON": choice.reason,
        "TORCH_INSTALLED": installed or "",
        "TORCH_REINSTALL": int(reinstall),
        "SYNC_NEEDED": int(sync_needed(args.venv)),
    }
    if args.probe:
        lines["TORCH_INDEX_REACHABLE"] = int(bool(choice.index_url) and reachable(choice.index_url + "/"))
    for key, value in lines.items():
        print(f"{key}={_shell_safe(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
