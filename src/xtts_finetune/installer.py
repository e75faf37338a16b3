"""Pick the PyTorch build for this machine: the CUDA build its NVIDIA driver can run, MPS, or CPU.

Standard library only, and Python 3.8 syntax: scripts/install.sh runs this file with the system Python,
install.bat with a bare .venv's (uv's Python), before the project environment (and torch) is installed. Run as a script it prints
KEY=value lines, one per line and unquoted, that both shells can read:

    python3 src/xtts_finetune/installer.py [--dev]   # the plan (TORCH_DEVICE, SYNC_FLAGS, TORCH_FROM, ...)
    python3 src/xtts_finetune/installer.py --mark-synced [--dev]   # record that `uv sync` just ran

The plan picks torch before anything is downloaded: where the build this machine needs comes from
PyTorch's own index (the CPU build, or a CUDA build PyPI does not have), `uv sync` leaves torch and the
CUDA libraries PyPI's torch pulls in out (SYNC_FLAGS) and torch then comes from that index (TORCH_FROM),
at the version uv.lock pins. Where that index cannot be reached, the sync takes PyPI's torch and says so.
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

TORCH_VERSION = "2.11.0"  # the fallback when uv.lock cannot be read; the lock's pin is what is installed
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
TORCH_BUILD = ("torch", "torchaudio")
# PyPI's Linux torch depends on these (its CUDA runtime, gigabytes): a torch from another index brings its own.
CUDA_RUNTIME = re.compile(r"(nvidia-|cuda-).+|triton")
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


@dataclass(frozen=True)
class InstallPlan:
    sync_flags: tuple  # added to `uv sync --frozen` (and to SYNC_GROUPS, --no-dev unless the tests are wanted)
    torch_from: Optional[str]  # after the sync, install torch from this index (None: the sync's own is right)
    pypi_back: bool  # after the sync, put PyPI's torch back in place of another build
    note: str = ""  # what the install says about it (an index that cannot be reached)


def plan_install(choice: TorchChoice, installed: Optional[str], version: str, index_reachable: bool,
                 lock_text: str = "") -> InstallPlan:
    """How to install: which `uv sync` flags, and whether torch comes from PyTorch's index afterwards."""
    reinstall = needs_reinstall(choice, installed, version)
    if choice.index_url is None:
        return InstallPlan((), None, pypi_back=reinstall)
    skipped = []
    for name in torch_packages(lock_text):
        skipped += ["--no-install-package", name]
    # --inexact: the sync keeps a torch installed from the index rather than removing it as not the lock's.
    keep = ("--inexact", *skipped)
    if not index_reachable and installed and not reinstall:
        return InstallPlan(keep, None, False)  # the right build is already here: keep it, offline or not
    if not index_reachable:
        what = ("PyPI's torch runs on the CPU as well, but brings CUDA libraries (gigabytes) a CPU does not use"
                if choice.device == "cpu" else "PyPI's torch may not use this GPU: run the install again once it can be reached")
        return InstallPlan((), None, False, f"cannot reach {choice.index_url}, so going on with PyPI's torch. {what}")
    return InstallPlan(keep, choice.index_url if installed is None or reinstall else None, False)


def _lock_packages(lock_text: str) -> dict:
    """{name: (version, names it depends on, optional dependencies included)} from uv.lock's text: a
    TOML reader (tomllib) is Python 3.11+, and this file runs on the system's Python."""
    packages = {}
    for block in lock_text.split("[[package]]")[1:]:
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        version = re.search(r'^version = "([^"]+)"', block, re.M)
        if name:
            requires = block.split("[package.metadata]")[0]
            packages[name.group(1)] = (version.group(1) if version else "", set(re.findall(r'\{ name = "([^"]+)"', requires)))
    return packages


def locked_version(lock_text: str, name: str = "torch") -> str:
    return _lock_packages(lock_text).get(name, (TORCH_VERSION,))[0] or TORCH_VERSION


def torch_packages(lock_text: str) -> list:
    """torch, torchaudio and the CUDA runtime that PyPI's torch depends on (through cuda-toolkit too)."""
    packages = _lock_packages(lock_text)
    found, todo = set(TORCH_BUILD), ["torch"]
    while todo:
        for dependency in packages.get(todo.pop(), ("", set()))[1]:
            if dependency not in found and CUDA_RUNTIME.fullmatch(dependency):
                found.add(dependency)
                todo.append(dependency)
    return sorted(found)


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


def needs_reinstall(choice: TorchChoice, installed: Optional[str], version: str = TORCH_VERSION) -> bool:
    """Whether the installed torch is another build than `choice` (its '+cu128' tag against the index's), or
    another version than uv.lock's."""
    if installed is None:
        return False
    number, _, have = installed.partition("+")
    want = choice.index_url.rstrip("/").rsplit("/", 1)[-1] if choice.index_url else None
    return (have or None) != want or number != version


def lock_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml"):
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def _stamp(venv: Path) -> list:
    stamp = venv / SYNC_STAMP
    return stamp.read_text(encoding="utf-8").split() if stamp.exists() else []


def synced_dev(venv: Path) -> bool:
    """Whether the last sync installed the dev group (test.sh's): start.sh then keeps it rather than removing it."""
    return "dev" in _stamp(venv)[1:]


def sync_needed(venv: Path, root: Path = ROOT, dev: bool = False) -> bool:
    """`uv sync` only when the lock changed since the last one (a sync would undo a CUDA-index torch), or when
    the dev group is wanted and the last sync left it out."""
    stamp = _stamp(venv)
    if not stamp or installed_torch(venv) is None:
        return True
    return stamp[0] != lock_digest(root) or (dev and not synced_dev(venv))


def mark_synced(venv: Path, root: Path = ROOT, dev: bool = False) -> None:
    (venv / SYNC_STAMP).write_text(lock_digest(root) + (" dev" if dev else "") + "\n", encoding="utf-8")


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
    parser.add_argument("--reachable", choices=("0", "1"), help="override whether the torch index answers")
    parser.add_argument("--dev", action="store_true", help="with the dev group (tests): scripts/test.sh")
    parser.add_argument("--mark-synced", action="store_true", help="record that `uv sync` just succeeded")
    args = parser.parse_args(argv)
    dev = args.dev or synced_dev(args.venv)
    if args.mark_synced:
        mark_synced(args.venv, dev=dev)
        return 0
    smi = query_nvidia_driver() if args.driver is None else (None if args.driver == "none" else args.driver)
    choice = choose_torch(args.system, args.machine, smi)
    lock = ROOT / "uv.lock"
    lock_text = lock.read_text(encoding="utf-8") if lock.exists() else ""
    version, installed = locked_version(lock_text), installed_torch(args.venv)
    sync, reinstall = sync_needed(args.venv, dev=dev), needs_reinstall(choice, installed, version)
    probe = bool(choice.index_url) and (installed is None or reinstall)  # the network only when torch is to come
    index_reachable = probe and (reachable(choice.index_url + "/") if args.reachable is None else args.reachable == "1")
    plan = plan_install(choice, installed, version, index_reachable, lock_text)
    lines = {
        "TORCH_VERSION": version,
        "TORCHAUDIO_VERSION": locked_version(lock_text, "torchaudio"),
        "TORCH_DEVICE": choice.device,
        "TORCH_INDEX": choice.index_url or "",
        "TORCH_SUPPORTED": int(choice.supported),
        "TORCH_REASON": choice.reason,
        "TORCH_INSTALLED": installed or "",
        "TORCH_REINSTALL": int(reinstall),
        "TORCH_FROM": plan.torch_from or "",
        "TORCH_PYPI_BACK": int(plan.pypi_back),
        "TORCH_NOTE": plan.note,
        "SYNC_NEEDED": int(sync),
        "SYNC_GROUPS": "" if dev else "--no-dev",
        "SYNC_FLAGS": " ".join(plan.sync_flags),
    }
    for key, value in lines.items():
        print(f"{key}={_shell_safe(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
