"""The `xtts-finetune` command as a user runs it (a subprocess): --help, doctor, dev make-tiny-models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RELEASE_FILES = {"config.json", "model.pth", "dvae.pth", "mel_stats.pth", "vocab.json", "speakers_xtts.pth"}
CONSOLE_SCRIPT = Path(sys.executable).parent / ("xtts-finetune.exe" if os.name == "nt" else "xtts-finetune")


def _run(*args, env=None, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "xtts_finetune", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_console_script_help():
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: xtts-finetune" in result.stdout
    for command in ("doctor", "dev"):
        assert command in result.stdout


def test_doctor_json(tmp_path, monkeypatch, capsys):
    from xtts_finetune.cli import main

    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["doctor", "--json", "--workspace", str(tmp_path)])
    checks = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in checks] == ["python", "torch", "device", "whisper gpu", "ffmpeg", "audio decoding", "disk",
                                            "base models", "model hub"]
    assert code == (1 if any(c["ok"] is False for c in checks) else 0)
    by_name = {c["name"]: c for c in checks}
    assert by_name["ffmpeg"]["ok"] is True and by_name["model hub"]["ok"] is True
    assert str(tmp_path) in by_name["disk"]["detail"]


def test_doctor_without_ffmpeg_exits_1_with_the_fix(tmp_path):
    home = tmp_path / "home"
    (home / "base" / "v2.0.3").mkdir(parents=True)
    (home / "base" / "v2.0.3" / "model.pth.incomplete").write_bytes(b"")
    result = _run("doctor", "--workspace", str(tmp_path),
                  env={"PATH": str(tmp_path), "XTTS_FINETUNE_HOME": str(home), "PYTHONIOENCODING": "utf-8"})
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    ffmpeg = next(i for i, line in enumerate(lines) if line.startswith("✗ ffmpeg"))
    assert lines[ffmpeg + 1].startswith("    fix: ")
    base = next(i for i, line in enumerate(lines) if line.startswith("✗ base models"))
    assert "v2.0.3: interrupted download" in lines[base]
    assert lines[base + 1] == "    fix: xtts-finetune models download v2.0.3"


def test_make_tiny_models(tmp_path):
    out = tmp_path / "tiny"
    result = _run("dev", "make-tiny-models", str(out))
    assert result.returncode == 0, result.stderr
    assert f"xtts: {out / 'xtts'}" in result.stdout
    assert RELEASE_FILES <= {p.name for p in (out / "xtts").iterdir()}
    assert f"speaker: {out / 'speaker'}" in result.stdout  # the evaluation's speaker model, hub layout
    assert {"config.json", "preprocessor_config.json", "model.safetensors"} <= {p.name for p in (out / "speaker").iterdir()}
