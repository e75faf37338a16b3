"""The install decision table: OS, machine and nvidia-smi's output in, the torch build out."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from xtts_finetune import installer
from xtts_finetune.installer import CPU_INDEX, TorchChoice, choose_torch

ROOT = Path(__file__).resolve().parents[1]
CU = "https://download.pytorch.org/whl/"

# (system, machine, nvidia-smi output or None) -> (device, index_url, supported)
TABLE = [
    # Linux: PyPI's wheel is already the CUDA 13.0 build, so drivers >= 580 keep it.
    ("Linux", "x86_64", "580.65.06\n", "cuda", None, True),
    ("Linux", "x86_64", "590.48.01", "cuda", None, True),
    ("Linux", "x86_64", "1000.1", "cuda", None, True),
    ("Linux", "aarch64", "580.95.05\n", "cuda", None, True),
    ("Linux", "x86_64", "579.99", "cuda", CU + "cu128", True),
    ("Linux", "x86_64", "570.124.06\n570.124.06\n", "cuda", CU + "cu128", True),  # two GPUs
    ("Linux", "x86_64", "565.57.01", "cuda", CU + "cu126", True),
    ("Linux", "x86_64", "560.35.03", "cuda", CU + "cu126", True),
    ("Linux", "x86_64", "  560.28.03  \r\n", "cuda", CU + "cu126", True),
    ("Linux", "x86_64", "555.42.06", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "470.256.02", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", None, "cpu", CPU_INDEX, True),
    ("Linux", "aarch64", None, "cpu", CPU_INDEX, True),
    # Windows: PyPI's wheel is CPU-only, so every NVIDIA driver needs an explicit CUDA index.
    ("Windows", "AMD64", "581.57", "cuda", CU + "cu130", True),
    ("Windows", "AMD64", "576.88", "cuda", CU + "cu128", True),
    ("Windows", "AMD64", "570.65", "cuda", CU + "cu128", True),
    ("Windows", "AMD64", "561.09", "cuda", CU + "cu126", True),
    ("Windows", "AMD64", "546.33", "cpu", None, True),
    ("Windows", "AMD64", None, "cpu", None, True),
    ("Windows", "ARM64", None, "cpu", None, False),
    # macOS: Apple Silicon takes PyPI's wheel (MPS); torch 2.11 has no Intel Mac build.
    ("Darwin", "arm64", None, "mps", None, True),
    ("Darwin", "x86_64", None, "cpu", None, False),
    ("FreeBSD", "amd64", None, "cpu", None, False),
    ("Linux", "ppc64le", None, "cpu", None, False),
    # Malformed nvidia-smi output: no version to trust, so the CPU build and a driver fix.
    ("Linux", "x86_64", "", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "\n\n", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "No devices were found", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "[N/A]", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "570", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "570.1.2.3", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "v570.124", "cpu", CPU_INDEX, True),
    ("Linux", "x86_64", "driver_version\n570.124.06", "cuda", CU + "cu128", True),  # a header line is skipped
    ("Windows", "AMD64", "nvidia-smi failed: [WinError 2]", "cpu", None, True),
]


@pytest.mark.parametrize("system, machine, smi, device, index_url, supported", TABLE)
def test_decision_table(system, machine, smi, device, index_url, supported):
    choice = choose_torch(system, machine, smi)
    assert (choice.device, choice.index_url, choice.supported) == (device, index_url, supported)
    assert choice.reason


def test_reasons_explain_old_drivers_and_bad_output():
    old = choose_torch("Linux", "x86_64", "535.104.05")
    assert "535.104.05" in old.reason and "too old" in old.reason and "update the NVIDIA driver" in old.reason
    broken = choose_torch("Linux", "x86_64", "NVIDIA-SMI has failed")
    assert "NVIDIA-SMI has failed" in broken.reason and "update the NVIDIA driver" in broken.reason
    assert "12.8" in choose_torch("Windows", "AMD64", "572.16").reason
    assert "Intel Macs" in choose_torch("Darwin", "x86_64", None).reason


@pytest.mark.parametrize("smi, expected", [("570.124.06", "570.124.06"), ("\n 560.94 \n", "560.94"), ("n/a", None), ("", None)])
def test_parse_driver_version(smi, expected):
    assert installer.parse_driver_version(smi) == expected


def _fake_venv(tmp_path: Path, torch_version: str | None, windows: bool = False) -> Path:
    venv = tmp_path / ".venv"
    site = venv / ("Lib/site-packages" if windows else "lib/python3.11/site-packages")
    site.mkdir(parents=True)
    if torch_version:
        dist = site / f"torch-{torch_version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.4\nName: torch\nVersion: {torch_version}\n")
    return venv


@pytest.mark.parametrize(
    "installed, index_url, reinstall",
    [
        ("2.11.0", None, False),
        ("2.11.0", CU + "cu128", True),
        ("2.11.0+cu128", CU + "cu128", False),
        ("2.11.0+cu126", CU + "cu128", True),
        ("2.11.0+cu128", None, True),  # driver updated: back to PyPI's build
        ("2.11.0+cpu", CPU_INDEX, False),
        ("2.11.0", CPU_INDEX, True),
        (None, CU + "cu128", False),  # nothing to replace yet: uv sync installs it
    ],
)
def test_needs_reinstall(tmp_path, installed, index_url, reinstall):
    venv = _fake_venv(tmp_path, installed)
    assert installer.installed_torch(venv) == installed
    assert installer.needs_reinstall(TorchChoice("cuda", index_url, "test"), installer.installed_torch(venv)) is reinstall


def test_installed_torch_on_windows_layout(tmp_path):
    assert installer.installed_torch(_fake_venv(tmp_path, "2.11.0+cu130", windows=True)) == "2.11.0+cu130"


LOCK = (ROOT / "uv.lock").read_text(encoding="utf-8")
CUDA_LIBRARIES = ("triton", "nvidia-cudnn-cu13", "nvidia-cublas", "nvidia-nccl-cu13", "cuda-bindings", "cuda-pathfinder")


def test_torch_packages_are_torch_and_the_cuda_runtime_pypi_torch_pulls_in():
    skipped = installer.torch_packages(LOCK)
    assert {"torch", "torchaudio", *CUDA_LIBRARIES} <= set(skipped)  # nvidia-cublas through cuda-toolkit's extras
    assert "nvidia-cublas-cu12" not in skipped  # Whisper's (the whisper-gpu extra), not torch's
    assert not {"sympy", "filelock", "numpy", "torchcodec"} & set(skipped)  # shared with the rest
    assert installer.locked_version(LOCK) == installer.TORCH_VERSION == installer.locked_version(LOCK, "torchaudio")


# (system, machine, nvidia-smi, installed torch, index reachable) -> (torch left out of the sync, torch from, PyPI's back, a note)
PLANS = [
    ("Linux", "x86_64", None, None, True, True, CPU_INDEX, False, False),  # a fresh CPU machine
    ("Linux", "x86_64", None, "2.11.0", True, True, CPU_INDEX, False, False),  # PyPI's torch replaced
    ("Linux", "x86_64", None, "2.10.0+cpu", True, True, CPU_INDEX, False, False),  # another version than the lock's
    ("Linux", "x86_64", None, "2.11.0+cpu", True, True, None, False, False),  # already right: kept through syncs
    ("Linux", "x86_64", None, "2.11.0+cpu", False, True, None, False, False),  # ... offline too, without a word
    ("Linux", "x86_64", None, None, False, False, None, False, True),  # index unreachable: PyPI's, said
    ("Linux", "x86_64", None, "2.11.0", False, False, None, False, True),
    ("Linux", "x86_64", "570.124.06", None, True, True, CU + "cu128", False, False),
    ("Linux", "x86_64", "590.48.01", None, True, False, None, False, False),  # PyPI's is the CUDA 13 build
    ("Linux", "x86_64", "590.48.01", "2.11.0+cu128", True, False, None, True, False),  # driver updated
    ("Windows", "AMD64", "572.16", None, True, True, CU + "cu128", False, False),  # never PyPI's CPU-only first
    ("Windows", "AMD64", None, None, True, False, None, False, False),  # PyPI's Windows torch is the CPU build
    ("Darwin", "arm64", None, None, True, False, None, False, False),
]


@pytest.mark.parametrize("system, machine, smi, installed, reachable, left_out, torch_from, pypi_back, note", PLANS)
def test_install_plan_picks_torch_before_the_sync_downloads_one(system, machine, smi, installed, reachable,
                                                                 left_out, torch_from, pypi_back, note):
    plan = installer.plan_install(choose_torch(system, machine, smi), installed, "2.11.0", reachable, LOCK)
    flags = " ".join(plan.sync_flags)
    assert ("--no-install-package torch " in flags and "--no-install-package triton" in flags) is left_out
    assert ("--inexact" in flags) is left_out  # or the sync would remove the index's torch as not the lock's
    assert (plan.torch_from, plan.pypi_back, bool(plan.note)) == (torch_from, pypi_back, note)
    if note:
        assert "cannot reach https://download.pytorch.org/whl/" in plan.note and "PyPI's torch" in plan.note


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (scripts/install.sh puts it there)")
    return uv


@pytest.mark.parametrize("dev", [False, True])
def test_the_planned_sync_downloads_no_torch_and_no_cuda_library(tmp_path, dev):
    # uv itself on the real uv.lock: what a sync into an empty environment would install (nothing is downloaded).
    out = _run_script("--system", "Linux", "--machine", "x86_64", "--driver", "none", "--reachable", "1",
                      "--venv", str(tmp_path / "venv"), *(["--dev"] if dev else []))
    assert out["TORCH_FROM"] == CPU_INDEX and out["SYNC_NEEDED"] == "1"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_OFFLINE": "1"}
    done = subprocess.run([_uv(), "sync", "--frozen", "--dry-run", "--project", str(ROOT),
                           *out["SYNC_GROUPS"].split(), *out["SYNC_FLAGS"].split()],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    installs = set(re.findall(r"^ \+ ([^=\s]+)==", done.stdout + done.stderr, re.M))
    assert {"gradio", "coqui-tts", "faster-whisper", "sympy"} <= installs, done.stderr[-2000:]
    assert not {"torch", "torchaudio", *CUDA_LIBRARIES} & installs
    assert not [name for name in installs if name.startswith("nvidia-")]
    assert ({"pytest", "playwright"} <= installs) is dev and (out["SYNC_GROUPS"] == "") is dev


def test_sync_stamp_records_the_dev_group(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "uv.lock").write_text("version = 1\n")
    venv = _fake_venv(root, "2.11.0+cpu")
    installer.mark_synced(venv, root, dev=False)  # start.sh: no dev group
    assert not installer.sync_needed(venv, root) and installer.sync_needed(venv, root, dev=True)
    installer.mark_synced(venv, root, dev=True)  # test.sh
    assert not installer.sync_needed(venv, root, dev=True) and installer.synced_dev(venv)


def test_sync_stamp_follows_the_lock(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "uv.lock").write_text("version = 1\n")
    (root / "pyproject.toml").write_text("[project]\n")
    venv = _fake_venv(root, "2.11.0")
    assert installer.sync_needed(venv, root)
    installer.mark_synced(venv, root)
    assert not installer.sync_needed(venv, root)
    (root / "uv.lock").write_text("version = 1\n# changed\n")
    assert installer.sync_needed(venv, root)
    installer.mark_synced(venv, root)
    shutil.rmtree(next(venv.rglob("torch-*.dist-info")))  # an interrupted torch reinstall
    assert installer.sync_needed(venv, root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_against_a_local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert installer.reachable(f"http://127.0.0.1:{server.server_address[1]}/no-such-page", timeout=5)
    finally:
        server.shutdown()
    assert not installer.reachable(f"http://127.0.0.1:{_free_port()}/", timeout=2)
    assert not installer.reachable("not a url", timeout=2)


def _run_script(*args: str, python: str = sys.executable) -> dict[str, str]:
    # -I -S: no site-packages, so the script must work with the standard library alone.
    result = subprocess.run([python, "-I", "-S", str(ROOT / "src/xtts_finetune/installer.py"), *args],
                            capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_script_prints_shell_lines_with_the_standard_library_only(tmp_path):
    venv = _fake_venv(tmp_path, "2.11.0")
    out = _run_script("--system", "Windows", "--machine", "AMD64", "--driver", "572.16", "--venv", str(venv),
                      "--reachable", "1")
    assert out["TORCH_DEVICE"] == "cuda" and out["TORCH_INDEX"] == CU + "cu128"
    assert out["TORCH_VERSION"] == installer.TORCH_VERSION and out["TORCH_SUPPORTED"] == "1"
    assert out["TORCH_INSTALLED"] == "2.11.0" and out["TORCH_REINSTALL"] == "1" and out["SYNC_NEEDED"] == "1"
    out = _run_script("--system", "Linux", "--machine", "x86_64", "--driver", "none", "--venv", str(venv))
    assert out["TORCH_DEVICE"] == "cpu" and out["TORCH_INDEX"] == CPU_INDEX


def test_script_output_is_safe_for_shells(tmp_path):
    out = _run_script("--system", "Linux", "--machine", "x86_64", "--driver", 'bad "driver" & <stuff> | 50% $HOME !',
                      "--venv", str(tmp_path / "none"), "--reachable", "0")
    assert not set('"&<>|%$!') & set(out["TORCH_REASON"])
    assert "bad" in out["TORCH_REASON"] and out["TORCH_INSTALLED"] == ""


def test_script_mark_synced_keeps_the_dev_group(tmp_path):
    venv = _fake_venv(tmp_path, "2.11.0+cpu")
    out = _run_script("--system", "Linux", "--machine", "x86_64", "--driver", "590.1", "--venv", str(venv))
    assert out["TORCH_INDEX"] == "" and out["TORCH_REINSTALL"] == "1" and out["TORCH_PYPI_BACK"] == "1"
    _run_script("--mark-synced", "--venv", str(venv), "--dev")
    assert (venv / installer.SYNC_STAMP).read_text().split() == [installer.lock_digest(ROOT), "dev"]
    out = _run_script("--driver", "none", "--venv", str(venv))  # start.sh after test.sh: the tests stay
    assert out["SYNC_NEEDED"] == "0" and out["SYNC_GROUPS"] == "" and out["TORCH_FROM"] == ""
    _run_script("--mark-synced", "--venv", str(venv))
    assert (venv / installer.SYNC_STAMP).read_text().split() == [installer.lock_digest(ROOT), "dev"]


def test_script_says_when_the_index_cannot_be_reached(tmp_path):
    out = _run_script("--system", "Linux", "--machine", "x86_64", "--driver", "none", "--reachable", "0",
                      "--venv", str(tmp_path / "venv"))
    assert out["TORCH_FROM"] == "" and out["SYNC_FLAGS"] == "" and out["SYNC_GROUPS"] == "--no-dev"
    assert out["TORCH_NOTE"].startswith("cannot reach https://download.pytorch.org/whl/cpu, so going on with PyPI")


def test_script_runs_with_the_system_python(tmp_path):
    # install.sh runs it with whatever python3 the system has, before .venv exists.
    out = _run_script("--driver", "none", "--reachable", "0", "--venv", str(tmp_path), python=shutil.which("python3") or "python3")
    assert out["TORCH_DEVICE"] in ("cpu", "mps")
