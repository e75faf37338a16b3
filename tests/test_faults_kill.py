"""Fault suite, SIGKILL: a command killed mid-way leaves nothing half-written in view, and the same
command run again completes without losing anything. Plus a full disk during export."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from xtts_finetune.errors import UserError


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "xtts_finetune", *args]


def kill_when(cmd: list[str], ready, timeout: float = 180) -> None:
    """Start `cmd`, kill it (SIGKILL; TerminateProcess on Windows) as soon as `ready()` holds; fail if it ended first."""
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"{cmd[3:5]} ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read()[-800:]!r}")
        assert time.monotonic() < deadline, "the command never reached the point to kill it at"
        time.sleep(0.005)
    proc.kill()
    assert proc.wait(30) == (-signal.SIGKILL if os.name == "posix" else 1)
    proc.stderr.close()


def run_ok(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def hidden_parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.part")) + sorted(folder.glob(".*.incomplete"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A Coqui CSV of 40 distinct clips (4 espeak-ng sentences, each at 10 gains: different bytes)."""
    from speech import espeak

    root = tmp_path_factory.mktemp("kill_corpus")
    rows = []
    for i, sentence in enumerate(["One small step.", "Two birds sing.", "Three green trees.", "Four old boats."]):
        audio, sr = sf.read(espeak(sentence, root / "raw" / f"{i}.wav"), dtype="float32")
        for g in range(10):
            name = f"wavs/c{i}_{g}.wav"
            (root / "wavs").mkdir(exist_ok=True)
            sf.write(root / name, audio * (1 - g * 0.02), sr, subtype="PCM_16")
            rows.append(f"{name}|{sentence}|anna")
    (root / "metadata.csv").write_text("audio_file|text|speaker_name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root / "metadata.csv"


def test_dataset_create_killed_then_run_again(corpus, tmp_path):
    from xtts_finetune.dataset.manifest import load_manifest

    ws, wavs = tmp_path / "ws", tmp_path / "ws" / "dataset" / "wavs"
    cmd = cli("dataset", "create", str(ws), "--language", "en", "--corpus", str(corpus), "--speaker", "anna")
    kill_when(cmd, lambda: len(visible(wavs)) >= 3)
    for wav in visible(wavs):  # every clip in view is whole
        assert sf.info(wav).frames > 0
    if (ws / "dataset" / "dataset.json").exists():
        load_manifest(ws)  # and a manifest in view is whole
    run_ok(cmd)
    manifest = load_manifest(ws)
    assert len(manifest.sources) == 40 and len({s.id for s in manifest.segments}) == 40
    assert not hidden_parts(ws / "dataset")
    rows = [line.split("|")[0] for name in ("metadata_train.csv", "metadata_eval.csv")
            for line in (ws / "dataset" / name).read_text().splitlines()[1:]]
    assert len(rows) == 40 and all(sf.info(ws / "dataset" / row).frames > 0 for row in rows)


def test_speak_text_file_killed_then_run_again(tiny_export, tmp_path):
    lines = ["Hello.", "Goodbye."]
    text_file, out = tmp_path / "lines.txt", tmp_path / "out"
    text_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = cli("speak", str(tiny_export), "--text-file", str(text_file), "--out-dir", str(out), "--seed", "3",
              "--language", "en", "--voice", "Tiny Speaker", "--device", "cpu")
    kill_when(cmd, lambda: len(visible(out)) >= 1)
    first = {p.name: p.read_bytes() for p in visible(out)}
    assert first and len(first) < len(lines)
    for name in first:
        assert sf.info(out / name).frames > 0
    done = run_ok(cmd)
    assert f"skipping {len(first)} line(s)" in done.stdout  # what was done is kept, not redone
    assert [p.name for p in visible(out)] == [f"{n:04d}.wav" for n in range(1, len(lines) + 1)]
    assert all((out / name).read_bytes() == data for name, data in first.items())
    assert all(sf.info(p).frames > 0 for p in visible(out)) and not hidden_parts(out)


LATENTS_WRITER = """
import sys, torch
from pathlib import Path
from xtts_finetune.latents import LatentsCache
cache, clips = LatentsCache(Path(sys.argv[1]), "fingerprint", {}), Path(sys.argv[2])
for i in range(1000):
    clip = clips / f"{i}.wav"
    clip.write_bytes(str(i).encode())
    cache.get([clip], lambda c: (torch.randn(1, 32, 1 << 15), torch.randn(1, 512, 1)))
"""


def test_latents_cache_write_killed_then_run_again(tmp_path):
    from xtts_finetune.latents import LatentsCache

    cache_dir, clips = tmp_path / "latents", tmp_path / "clips"
    clips.mkdir()
    kill_when([sys.executable, "-c", textwrap.dedent(LATENTS_WRITER), str(cache_dir), str(clips)],
              lambda: len(visible(cache_dir)) >= 5)
    saved = visible(cache_dir)
    for path in saved:  # every entry in view loads
        data = torch.load(path, weights_only=True)
        assert data["gpt_cond_latent"].shape == (1, 32, 1 << 15)
    cache = LatentsCache(cache_dir, "fingerprint", {})  # the next process sweeps what the kill cut short
    assert not hidden_parts(cache_dir)
    sources = [cache.get([clip], lambda c: (torch.zeros(1, 32, 4), torch.zeros(1, 512, 1)))[1]
               for clip in sorted(clips.iterdir(), key=lambda p: int(p.stem))]
    assert sources.count("disk") == len(saved) and sources[len(saved):] == ["computed"] * (len(sources) - len(saved))


@pytest.fixture(scope="module")
def trained_run(coqui_dataset, tiny_xtts, tmp_path_factory) -> Path:
    from test_train import make_workspace

    from xtts_finetune.train import TrainSettings, train

    workspace = make_workspace(coqui_dataset, tmp_path_factory.mktemp("kill_export") / "ws")
    return train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=5, save_every_steps=1)).run_dir


def test_export_killed_then_run_again(trained_run):
    from xtts_finetune.webui.common import UI

    models = trained_run.parent.parent / "models"
    cmd = cli("export", str(trained_run), "--name", "killed")
    kill_when(cmd, lambda: any((p / "model.pth").is_file() for p in models.glob(".killed.*.incomplete")))
    assert not visible(models) and UI(trained_run.parent.parent, None).models() == []  # nothing half-made in view
    run_ok(cmd)
    assert [p.name for p in visible(models)] == ["killed"] and not hidden_parts(models)
    assert {"config.json", "model.pth", "vocab.json", "speakers_xtts.pth", "model_card.json"} <= {
        p.name for p in (models / "killed").iterdir()}


def test_full_disk_during_export_is_a_clear_error_and_changes_nothing(trained_run, monkeypatch):
    from xtts_finetune import export
    from xtts_finetune.utils import atomic_path

    first = export.export_model(trained_run, "full-disk")
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    models, listed = first.parent, sorted(first.parent.iterdir())

    def full_disk_save(obj, path):  # the disk fills up half-way through writing the weights
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "atomic_torch_save", full_disk_save)
    with pytest.raises(UserError) as caught:
        export.export_model(trained_run, "full-disk")
    message = str(caught.value)
    assert "no space left" in message and "model.pth" in message and "free space" in message
    assert sorted(models.iterdir()) == listed and not hidden_parts(models)
    assert before == {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert json.loads((first / "model_card.json").read_text())["name"] == "full-disk"
