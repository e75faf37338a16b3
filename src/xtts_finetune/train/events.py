"""Structured training progress: JSON lines in the run folder, forwarded to a progress callback.

The same events feed the CLI's progress bar, the web UI's plots and `list_runs`; coqui's own
trainer_0_log.txt and TensorBoard files stay beside them untouched.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Iterator

from xtts_finetune.progress import ProgressCallback, report
from xtts_finetune.utils import atomic_write_text


class StopRequested(Exception):
    """The user asked the run to stop (stop_event); the run saves a checkpoint and can be resumed."""


class EarlyStop(Exception):
    """The eval loss has not improved for `patience` evaluations."""


def read_events(run_dir: str | Path) -> Iterator[dict]:
    path = Path(run_dir) / "events.jsonl"
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill


def read_best(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "best.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _link_best_model(run_dir: Path, step: int) -> None:
    """coqui copies best_model_STEP.pth to best_model.pth; a hard link saves a whole checkpoint of disk."""
    source, link = run_dir / f"best_model_{step}.pth", run_dir / ".best_model.pth.link"
    try:
        link.unlink(missing_ok=True)
        os.link(source, link)
        os.replace(link, run_dir / "best_model.pth")
    except OSError:
        pass  # a file system without hard links keeps coqui's copy


class EventLog:
    """Appends events to RUN/events.jsonl and hooks into coqui's Trainer as its callbacks."""

    def __init__(
        self,
        run_dir: Path,
        *,
        total_steps: int,
        epochs: int,
        batch_size: int,
        patience: int | None,
        progress: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
    ):
        self.run_dir, self.path = run_dir, run_dir / "events.jsonl"
        self.total_steps, self.epochs, self.batch_size, self.patience = total_steps, epochs, batch_size, patience
        self.progress, self.stop_event = progress, stop_event
        best = read_best(run_dir)  # survives a resume
        self.best_loss = best.get("eval_loss", math.inf)
        self.evals_since_best = best.get("evals_since_best", 0)
        self._lr = 0.0
        self._started = self._first_step = None

    def emit(self, type: str, **fields) -> dict:
        event = {"type": type, **fields, "time": round(time.time(), 3)}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
        if type == "step":
            message = f"epoch {event['epoch'] + 1}/{self.epochs} loss {event['loss']:.4f}"
            report(self.progress, "train", event["step"], self.total_steps, message, event=event)
        elif type == "eval":
            report(
                self.progress,
                "train",
                event["step"],
                self.total_steps,
                f"eval loss {event['eval_loss']:.4f}{' (best)' if event['best'] else ''}",
                event=event,
            )
        else:
            report(self.progress, "train", message=event.get("message") or event.get("status", ""), event=event)
        return event

    def callbacks(self) -> dict:
        return {
            "on_epoch_start": self._on_epoch_start,
            "on_train_step_start": self._on_step_start,
            "on_train_step_end": self._on_step_end,
            "on_epoch_end": self._on_epoch_end,
        }

    def _on_epoch_start(self, trainer) -> None:
        # coqui restores its best loss from the last checkpoint, not from the best one; use ours.
        trainer.best_loss = {"train_loss": math.inf, "eval_loss": self.best_loss}

    def _on_step_start(self, trainer) -> None:
        self._lr = trainer.optimizer[0].param_groups[0]["lr"]  # the rate this step trains with
        if self._started is None:
            self._started, self._first_step = time.monotonic(), trainer.total_steps_done

    def _on_step_end(self, trainer) -> None:
        step = trainer.total_steps_done
        done = step - self._first_step
        rate = done / max(time.monotonic() - self._started, 1e-9)
        losses = getattr(trainer.model, "last_losses", {})
        self.emit(
            "step",
            step=step,
            epoch=trainer.epochs_done,
            loss=losses.get("loss"),
            loss_text_ce=losses.get("loss_text_ce"),
            loss_mel_ce=losses.get("loss_mel_ce"),
            lr=self._lr,
            samples_per_s=round(rate * self.batch_size, 3),
            eta_s=round(max(self.total_steps - step, 0) / rate, 1) if rate else None,
        )
        if self.stop_event is not None and self.stop_event.is_set():
            raise StopRequested

    def _on_epoch_end(self, trainer) -> None:
        eval_loss = (trainer.keep_avg_eval.avg_values if trainer.keep_avg_eval else {}).get("avg_loss")
        if eval_loss is None:
            return
        improved = eval_loss < self.best_loss
        if improved:
            self.best_loss, self.evals_since_best = eval_loss, 0
        else:
            self.evals_since_best += 1
        best = read_best(self.run_dir)
        if improved:
            _link_best_model(self.run_dir, trainer.total_steps_done)
            best = {
                "eval_loss": eval_loss,
                "step": trainer.total_steps_done,
                "epoch": trainer.epochs_done,
                "checkpoint": "best_model.pth",
            }
        best["evals_since_best"] = self.evals_since_best
        atomic_write_text(self.run_dir / "best.json", json.dumps(best, indent=2))
        self.emit("eval", step=trainer.total_steps_done, epoch=trainer.epochs_done, eval_loss=eval_loss, best=improved)
        if self.patience is not None and self.evals_since_best >= self.patience:
            raise EarlyStop
