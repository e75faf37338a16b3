"""Web UI hardening: incremental event reading, path fields kept to allowed roots, upload limit, pruning,
and no open exposure by default."""

from __future__ import annotations

import json

import pytest

from xtts_finetune.errors import UserError


def _event(step: int, loss: float) -> str:
    return json.dumps({"type": "step", "step": step, "loss": loss}) + "\n"


def test_train_tab_reads_only_the_appended_events(tmp_path):
    from xtts_finetune.webui.tab_train import loss_frame

    run = tmp_path / "runs" / "run-a"
    run.mkdir(parents=True)
    events = run / "events.jsonl"
    events.write_text(_event(1, 3.0) + _event(2, 2.5) + json.dumps({"type": "eval", "step": 2, "eval_loss": 2.7}) + "\n")
    assert loss_frame(run).values.tolist() == [[1, 3.0, "train"], [2, 2.5, "train"], [2, 2.7, "eval"]]
    with open(events, "r+b") as f:  # scribble over the lines already read: a re-parse would see it
        f.write(b"x" * len(_event(1, 3.0)))
    with open(events, "a") as f:
        f.write(_event(3, 2.0) + '{"type": "step", "step": 4, "lo')  # the last line is still being written
    frame = loss_frame(run)
    assert frame.values.tolist()[0] == [1, 3.0, "train"] and frame.values.tolist()[-1] == [3, 2.0, "train"]
    with open(events, "a") as f:
        f.write('ss": 1.5}\n')
    assert loss_frame(run).values.tolist()[-1] == [4, 1.5, "train"]
    events.write_text(_event(1, 9.0))  # a new file (shorter): read from the start
    assert loss_frame(run).values.tolist() == [[1, 9.0, "train"]]
