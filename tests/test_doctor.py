"""`doctor` checks on this machine for real: its device, FFmpeg, audio decoding, disk, cache and hub."""

from __future__ import annotations

import http.server
import json
import os
import platform
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from xtts_finetune import basemodels, doctor
from xtts_finetune.doctor import Check


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(home))
    return home


def _base_model(home, version, skip=(), extra=()):
    folder = home / "base" / version
    folder.mkdir(parents=True)
    for name in basemodels.REQUIRED_FILES + basemodels.OPTIONAL_FILES:
        if name not in skip:
            (folder / name).write_bytes(b"x")
    for name in extra:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def test_checks_on_this_machine(tmp_path, home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checks = {c.name: c for c in doctor.run_checks(tmp_path)}
    assert list(checks) == ["python", "torch", "device", "whisper gpu", "ffmpeg", "audio decoding", "disk", "base models", "model hub"]
    assert checks["python"].ok and platform.python_version() in checks["python"].detail
    assert checks["torch"].ok and torch.__version__ in checks["torch"].detail
    if torch.cuda.is_available():
        assert checks["device"].ok is not False and torch.cuda.get_device_name(0) in checks["device"].detail
    else:
        assert checks["device"].ok is None and checks["device"].detail.startswith("CPU only")
        assert "slow" in checks["device"].detail
    assert checks["ffmpeg"].ok and checks["ffmpeg"].detail.startswith("ffmpeg version")
    assert checks["audio decoding"].ok, checks["audio decoding"].detail
    assert str(tmp_path) in checks["disk"].detail and "free" in checks["disk"].detail
    assert checks["base models"].ok and "none cached" in checks["base models"].detail
    assert checks["model hub"].ok and "offline" in checks["model hub"].detail


def test_ffmpeg_missing_from_path_fails_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    check = doctor.check_ffmpeg()
    assert check.ok is False and "not on PATH" in check.detail
    assert check.fix == doctor.FFMPEG_FIX[platform.system()]
    if platform.system() == "Linux":
        assert "apt install ffmpeg" in check.fix
    text = doctor.format_checks([Check("python", True, "fine"), check])
    assert text.splitlines()[1].startswith("✗ ffmpeg")
    assert text.splitlines()[2] == f"    fix: {check.fix}"


def test_nvidia_gpu_that_torch_cannot_use_is_explained(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 535.104.05\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    check = doctor.check_device()
    if torch.cuda.is_available():
        assert check.ok is not False
    else:
        assert check.ok is None and "torch cannot use it" in check.detail
        assert "535.104.05 is too old" in check.detail and "install.sh" in check.fix


def test_interrupted_downloads_are_flagged(home):
    _base_model(home, "v2.0.2")
    _base_model(home, "v2.0.3", extra=["model.pth.incomplete"])
    _base_model(home, "v2.0.0", extra=[".model.pth.k2j3.part"])
    _base_model(home, "main", skip=["dvae.pth", "mel_stats.pth"])
    _base_model(home, "my-copy", skip=["vocab.json"])
    # basemodels stages a download in a hidden folder; huggingface_hub resumes its `.incomplete` parts.
    _base_model(home, ".v2.0.1.incomplete", skip=["model.pth"], extra=[".cache/huggingface/download/model.pth.incomplete"])
    _base_model(home, ".v2.0.2.incomplete", extra=["model.pth.incomplete"])  # stale: v2.0.2 is complete
    check = doctor.check_base_models()
    assert check.ok is False
    assert check.detail.startswith("cached: v2.0.2;")
    assert "v2.0.3: interrupted download (model.pth.incomplete)" in check.detail
    assert "v2.0.1: interrupted download (it resumes where it stopped)" in check.detail
    assert "v2.0.0: interrupted download (.model.pth.k2j3.part)" in check.detail
    assert "main: incomplete (missing dvae.pth, mel_stats.pth)" in check.detail
    for version in ("v2.0.3", "v2.0.1", "main", "v2.0.0"):
        assert f"xtts-finetune models download {version}" in check.fix
    assert f"copy the missing files into {home / 'base' / 'my-copy'}" in check.fix
    assert "v2.0.2" not in check.fix
    assert doctor.scan_base_models() == {
        "main": "incomplete (missing dvae.pth, mel_stats.pth)",
        "my-copy": "incomplete (missing vocab.json)",
        "v2.0.0": "interrupted download (.model.pth.k2j3.part)",
        "v2.0.1": "interrupted download (it resumes where it stopped)",
        "v2.0.2": None,
        "v2.0.3": "interrupted download (model.pth.incomplete)",
    }


def test_release_without_speakers_file_is_complete(home):
    _base_model(home, "v2.0.0", skip=["speakers_xtts.pth"])  # the early releases do not ship it
    assert doctor.check_base_models().ok is True


def test_complete_base_models_pass(home):
    assert doctor.check_base_models().ok is True
    _base_model(home, "v2.0.3")
    (home / "base" / ".locks").mkdir()
    check = doctor.check_base_models()
    assert check.ok is True and check.detail.startswith("cached: v2.0.3 in")


def test_hub_offline_mode_is_reported_not_failed(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    for value in ("1", "true", "ON"):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        check = doctor.check_hub(have_base_model=False)
        assert check.ok is True and "offline mode" in check.detail


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_reachability(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert doctor.check_hub(have_base_model=False).ok is True
    finally:
        server.shutdown()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    cached = doctor.check_hub(have_base_model=True)
    assert cached.ok is None and "cannot be reached" in cached.detail and "HF_ENDPOINT" in cached.fix
    nothing = doctor.check_hub(have_base_model=False)
    assert nothing.ok is False and "training cannot start" in nothing.detail


def test_disk_thresholds(tmp_path):
    assert doctor.check_disk(tmp_path, warn_below=0, fail_below=0).ok is True
    low = doctor.check_disk(tmp_path, warn_below=1 << 60, fail_below=0)
    assert low.ok is None and "--workspace" in low.fix
    full = doctor.check_disk(tmp_path / "not" / "made" / "yet", warn_below=1 << 60, fail_below=1 << 60)
    assert full.ok is False and str(tmp_path) in full.detail


def test_format_shows_fixes_only_under_problems():
    text = doctor.format_checks([
        Check("python", True, "Python 3.11", "never shown"),
        Check("device", None, "CPU only", "use a GPU"),
        Check("disk", False, "1 GiB free", "free some space"),
    ], marks=("+", "!", "x"))
    assert text.splitlines() == [
        "+ python  Python 3.11",
        "! device  CPU only",
        "    fix: use a GPU",
        "x disk    1 GiB free",
        "    fix: free some space",
    ]


def test_without_torch_the_fix_is_the_install_script(tmp_path):
    # `python -I -S`: no site-packages, as before the install; doctor itself needs only the standard library.
    src = Path(doctor.__file__).resolve().parents[1]
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from xtts_finetune import doctor; "
            "print(json.dumps({c.name: [c.ok, c.detail, c.fix] for c in doctor.run_checks(sys.argv[2])}))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(src), str(tmp_path)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    checks = json.loads(result.stdout)
    assert checks["torch"][:2] == [False, "torch cannot be imported: No module named 'torch'"]
    assert "scripts/install.sh" in checks["torch"][2]
    assert checks["device"][0] is False and checks["audio decoding"][0] is False
    assert checks["python"][0] is True and checks["ffmpeg"][0] is True


def test_an_apple_gpu_is_not_named_as_the_training_device(monkeypatch):
    """Nothing here runs on MPS (coqui's trainer and our inference pick CUDA or CPU): doctor says CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    check = doctor.check_device()
    assert check.ok is None and check.detail.startswith("CPU only") and "nothing here runs on MPS" in check.detail
    assert "NVIDIA" in check.fix
