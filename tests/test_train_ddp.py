"""Distributed training on CPU: 2 gloo processes under torchrun, on the tiny model.

One process with grad_accum x 2 on the same batches is the reference: a round of 2 ranks is the same
global batch, seeded by the same global batch index, so only the order of float sums differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_train import make_workspace

from xtts_finetune.train import TrainSettings, list_runs, read_events, train

HERE = Path(__file__).parent
# 5 train clips at batch 2: 3 batches an epoch, so a round of 2 ranks and then a round with one batch.
SETTINGS = {"epochs": 2, "batch_size": 2, "lr": 1e-4, "scheduler": "constant", "warmup_steps": 0,
            "save_every_steps": 2, "early_stopping_patience": None}
TOLERANCE = 1e-5  # absolute, on weights after 4 AdamW steps of lr 1e-4: a tenth of one step's size


def _env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE), **extra}


def _torchrun(*args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]


def test_two_ranks_step_together_like_one_process_on_the_same_global_batch(coqui_dataset, tiny_xtts, tmp_path):
    workspace, out = make_workspace(coqui_dataset, tmp_path / "ws"), tmp_path / "ranks"
    done = subprocess.run(_torchrun(str(HERE / "ddp_rank.py"), str(workspace), str(tiny_xtts), str(out),
                                    json.dumps(SETTINGS)), env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["status"] == ranks[1]["status"] == "finished" and ranks[0]["steps"] == ranks[1]["steps"] == 6
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert ranks[1]["writes"] == [] and any("checkpoint_6.pth" in w for w in ranks[0]["writes"])  # only rank 0 writes

    single = train(make_workspace(coqui_dataset, tmp_path / "one"), tiny_xtts,
                   TrainSettings(**SETTINGS, grad_accum=2), run_name="one")
    reference = torch.load(single.run_dir / "checkpoint_6.pth", weights_only=True)["model"]
    run_dir = workspace / "runs" / "ddp"
    assert all(torch.equal(weights[0][k], v) for k, v in
               torch.load(run_dir / "checkpoint_6.pth", weights_only=True)["model"].items())
    changed = max(float((weights[0][k] - torch.load(tiny_xtts / "model.pth", weights_only=True)["model"][k]).abs().max())
                  for k in reference)
    worst = max(float((weights[0][k] - reference[k]).abs().max()) for k in reference)
    assert changed > 10 * TOLERANCE and worst < TOLERANCE, (changed, worst)

    # events count all ranks: a step event per round, its loss the mean of the round's batches
    ours, theirs = ([e for e in read_events(r) if e["type"] in ("step", "eval")] for r in (run_dir, single.run_dir))
    assert [e["step"] for e in ours if e["type"] == "step"] == [2, 3, 5, 6]
    one = {e["step"]: e["loss"] for e in theirs if e["type"] == "step"}
    expected = [(one[1] + one[2]) / 2, one[3], (one[4] + one[5]) / 2, one[6]]
    assert [e["loss"] for e in ours if e["type"] == "step"] == pytest.approx(expected, rel=1e-4)
    assert [e["eval_loss"] for e in ours if e["type"] == "eval"] == pytest.approx(
        [e["eval_loss"] for e in theirs if e["type"] == "eval"], rel=1e-4)


def _rank_pid(marker: str, rank: int) -> int | None:
    """The pid of the process holding RANK=`rank` among those started with `marker` in their environment."""
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"DDP_TEST={marker}".encode() in environ and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the rank's process through /proc (Linux)")
def test_a_killed_rank_ends_the_job_with_its_error_and_the_run_resumes_on_one_device(coqui_dataset, tiny_xtts, tmp_path):
    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    cmd = [sys.executable, "-m", "xtts_finetune", "train", str(workspace), "--base", str(tiny_xtts), "--devices", "2",
           "--epochs", "4", "--save-every", "2", "--lr", "1e-4", "--patience", "0", "--run-name", "killed"]
    proc = subprocess.Popen(cmd, env=_env(DDP_TEST=tmp_path.name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    run_dir, deadline = workspace / "runs" / "killed", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not (run_dir / "state_2.pt").is_file():
        time.sleep(0.02)
    victim = _rank_pid(tmp_path.name, 1)
    assert proc.poll() is None and victim, proc.stdout.read() if proc.poll() is not None else "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    output, _ = proc.communicate(timeout=120)
    assert time.monotonic() - killed < 60  # bounded: torchrun stops rank 0 once rank 1 is gone
    assert proc.returncode != 0 and "rank 1" in output.lower() and "SIGKILL" in output, output[-3000:]
    assert list_runs(workspace)[0].status in ("failed", "interrupted")  # rank 0 saw its peer go, or was killed

    resumed = train(workspace, None, resume="killed")
    assert resumed.status == "finished" and resumed.steps == 4 * 3
    notes = [e["message"] for e in read_events(run_dir) if e["type"] == "warning"]
    assert any("resumed on 1 device(s) after 2" in n for n in notes), notes
    steps = [e["step"] for e in read_events(run_dir) if e["type"] == "step"]
    at = int(next(e for e in read_events(run_dir) if "resumed at step" in e.get("message", ""))["message"]
             .split("resumed at step ")[1].split()[0])
    assert at >= 2 and steps[-(12 - at):] == list(range(at + 1, 13))  # one device: one batch a step, none replayed


def test_a_ranks_python_error_is_named_from_torchruns_report():
    from xtts_finetune.train.distributed import _failure

    report = """Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_14:49:21
  host      : localhost
  rank      : 3 (local_rank: 1)
  exitcode  : 1 (pid: 1570)
  error_file: /tmp/torchelastic/error.json
  traceback : Traceback (most recent call last):
    File "recipe.py", line 3, in setup
      raise UserError("clip.wav cannot be read")
  xtts_finetune.errors.UserError: clip.wav cannot be read
============================================================""".splitlines()
    assert _failure(report) == "rank 3 failed: xtts_finetune.errors.UserError: clip.wav cannot be read"


def test_a_killed_rank_is_named_though_torchrun_blames_its_peer():
    """torchrun's root cause prefers a rank that wrote an error file: here rank 0, which only lost its peer."""
    from xtts_finetune.train.distributed import _failure

    report = """============================================================
xtts_finetune.train.rank FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-01_19:50:02
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 20848)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 20848
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_19:50:01
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 20847)
  error_file: /tmp/torchelastic/error.json
  traceback : Traceback (most recent call last):
    File "recipe.py", line 150, in train
  RuntimeError: [gloo/transport/tcp/pair.cc:538] Read error [127.0.0.1]:1952: Connection reset by peer
============================================================""".splitlines()
    assert _failure(report) == "rank 1 failed: Signal 9 (SIGKILL) received by PID 20848"


def test_n_ranks_plan_the_steps_of_one_process_accumulating_n_times_more():
    from xtts_finetune.train.config import plan_steps

    for clips, batch, accum, ranks in [(5, 2, 1, 2), (37, 3, 2, 4), (10, 2, 5, 3), (4, 4, 1, 2)]:
        settings = TrainSettings(epochs=3, grad_accum=accum)
        many, one = plan_steps(settings, clips, batch, ranks), plan_steps(TrainSettings(epochs=3, grad_accum=accum * ranks),
                                                                        clips, batch)
        assert many[0] * ranks >= min(one[0], accum * ranks) and many[1:] == one[1:], (clips, batch, accum, ranks)


@pytest.mark.parametrize("gpus", [0, 2])
def test_the_train_tab_offers_a_gpu_count_only_on_a_machine_with_several(gpus, tmp_path, monkeypatch):
    from xtts_finetune.webui import tab_train
    from xtts_finetune.webui.app import build_app

    monkeypatch.setattr(tab_train, "gpu_count", lambda: gpus)  # the hardware probe, not a stage
    app = build_app(tmp_path / "ws")
    [choice] = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "tr-devices"]
    assert choice.visible == (gpus > 1) and [c[1] for c in choice.choices] == [str(n) for n in range(1, max(gpus, 1) + 1)]


def test_a_stop_reaches_every_rank_and_the_run_resumes_on_two(coqui_dataset, tiny_xtts, tmp_path):
    from xtts_finetune.train import checkpoint
    from xtts_finetune.train.distributed import launch

    workspace, stop, lines = make_workspace(coqui_dataset, tmp_path / "ws"), threading.Event(), []

    def stop_after_first_save():
        while not stop.is_set() and not (workspace / "runs" / "stopped" / "state_2.pt").is_file():
            time.sleep(0.02)
        stop.set()

    threading.Thread(target=stop_after_first_save, daemon=True).start()
    settings = TrainSettings(**{**SETTINGS, "epochs": 4})
    first = launch(2, workspace, tiny_xtts, settings, run_name="stopped", stop_event=stop, on_line=lines.append)
    assert first.status == "stopped" and 2 <= first.steps < 12, lines[-20:]
    assert checkpoint.saved_pairs(first.run_dir)[-1].step == first.steps  # saved where every rank stopped

    resumed = launch(2, workspace, None, None, resume="stopped", on_line=lines.append)
    assert resumed.status == "finished" and resumed.steps == 12
    steps = [e["step"] for e in read_events(first.run_dir) if e["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # rounds continue; none replayed
