"""Resume: bit-identical after SIGKILL mid-epoch, a damaged checkpoint set aside, a full disk during a save."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train import make_workspace

from xtts_finetune.cli import main
from xtts_finetune.errors import UserError
from xtts_finetune.train import TrainSettings, list_runs, read_events, train
from xtts_finetune.train import checkpoint

# 5 train clips at batch 2: 3 batches an epoch; the saves at steps 2 and 4 are both mid-epoch.
SETTINGS = dict(epochs=2, batch_size=2, save_every_steps=2, keep_checkpoints=5, lr=1e-4,
                early_stopping_patience=None)


@pytest.fixture
def workspace(coqui_dataset, tmp_path):
    return make_workspace(coqui_dataset, tmp_path / "ws")


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def _statuses(run_dir):
    return [e for e in read_events(run_dir) if e["type"] in ("status", "warning")]


def test_resume_after_sigkill_mid_epoch_ends_bit_identical(workspace, tiny_xtts):
    whole = train(workspace, tiny_xtts, TrainSettings(**SETTINGS), run_name="whole")
    cmd = [sys.executable, "-m", "xtts_finetune", "train", str(workspace), "--base", str(tiny_xtts), "--epochs", "2",
           "--batch-size", "2", "--save-every", "2", "--keep-checkpoints", "5", "--lr", "1e-4", "--patience", "0",
           "--run-name", "killed"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run_dir = workspace / "runs" / "killed"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not (run_dir / "state_2.pt").is_file():
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list_runs(workspace)[0].status == "interrupted"

    resumed = train(workspace, None, resume="killed")
    assert resumed.status == "finished" and resumed.steps == whole.steps == 6
    started = _statuses(run_dir)[-2]["message"]
    at = int(started.split("resumed at step ")[1].split()[0])
    assert at in (2, 4)  # mid-epoch
    steps = [e["step"] for e in read_events(run_dir) if e["type"] == "step"]
    assert steps[-(6 - at):] == list(range(at + 1, 7))  # no finished step replayed
    ours, reference = _weights(run_dir / "checkpoint_6.pth"), _weights(whole.run_dir / "checkpoint_6.pth")
    assert ours.keys() == reference.keys() and all(torch.equal(ours[k], reference[k]) for k in ours)
    assert resumed.best_eval_loss == whole.best_eval_loss


def test_a_damaged_checkpoint_is_named_and_the_previous_one_used(workspace, tiny_xtts):
    import threading

    stop = threading.Event()

    def progress(p):
        if p.extra.get("event", {}).get("step") == 4:
            stop.set()

    first = train(workspace, tiny_xtts, TrainSettings(**SETTINGS), progress=progress, stop_event=stop)
    assert first.status == "stopped" and [s.step for s in checkpoint.saved_pairs(first.run_dir)] == [2, 4]
    state = first.run_dir / "state_4.pt"
    state.write_bytes(state.read_bytes()[:1000])  # cut short

    resumed = train(workspace, None, resume=True)
    assert resumed.status == "finished"
    [warning] = [e for e in read_events(first.run_dir) if e["type"] == "warning"]
    assert "checkpoint_4.pth / state_4.pt is damaged" in warning["message"]
    assert "resuming from checkpoint_2.pth (step 2)" in warning["message"]
    assert (first.run_dir / "state_4.pt.broken").is_file()  # kept for inspection, never deleted
    assert any("resumed at step 2" in e.get("message", "") for e in _statuses(first.run_dir))


def test_a_full_disk_while_saving_names_the_intact_previous_checkpoint(workspace, tiny_xtts, monkeypatch):
    real_write = checkpoint.write

    def write(obj, path):
        if path.name == "state_4.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(obj, path)

    monkeypatch.setattr(checkpoint, "write", write)
    with pytest.raises(UserError, match="disk is full") as err:
        train(workspace, tiny_xtts, TrainSettings(**SETTINGS), run_name="full")
    assert "state_4.pt" in str(err.value) and "checkpoint_2.pth, step 2) is intact" in str(err.value)
    assert "--resume full" in err.value.fix
    run_dir = workspace / "runs" / "full"
    assert [s.step for s in checkpoint.saved_pairs(run_dir)] == [2] and not list(run_dir.glob(".state_4*"))
    assert _statuses(run_dir)[-1]["status"] == "failed"

    monkeypatch.setattr(checkpoint, "write", real_write)  # space freed
    resumed = train(workspace, None, resume="full")
    assert resumed.status == "finished" and resumed.steps == 6


def test_a_gpu_run_resumes_on_this_cpu_in_fp32_and_says_so(workspace, tiny_xtts):
    """config.json records where a run started; a resume computes on the machine it runs on."""
    import json
    import threading

    stop = threading.Event()
    first = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=2), stop_event=stop,
                  progress=lambda p: p.extra.get("event", {}).get("type") == "step" and stop.set())
    config_file = first.run_dir / "config.json"
    config = json.loads(config_file.read_text())
    config["settings"]["precision"] = "bf16"
    config_file.write_text(json.dumps(config | {"device": "cuda", "precision": "bf16"}))  # as an A100 wrote it

    resumed = train(workspace, None, resume=first.run_dir.name)
    assert resumed.status == "finished"
    messages = [e["message"] for e in _statuses(first.run_dir)]
    assert any("started on cuda in bf16; this machine continues it on cpu in fp32" in m for m in messages)
    assert "on cpu (fp32)" in messages[-2]  # the running status


def test_a_path_leaving_the_workspace_is_a_user_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "ws" / "runs").mkdir(parents=True)
    assert main(["train", str(tmp_path / "ws"), "--resume", "../../elsewhere"]) == 2
    assert "outside" in capsys.readouterr().err
