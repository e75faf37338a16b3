"""Structured training progress: JSON lines in the run folder, forwarded to a progress callback.

The same events feed the CLI's progress bar, the web UI's plots and `list_runs`; each also becomes a
readable line in RUN/train_log.txt (the web UI's log box) and TensorBoard scalars beside them.
"""

from __future__ import annotations

import json
import math
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


class EventLog:
    """Appends events to RUN/events.jsonl and train_log.txt; the recipe calls `step` and `evaluated`."""

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
        self._started = self._first_step = None
        self.board = _board(run_dir)

    def emit(self, type: str, **fields) -> dict:
        event = {"type": type, **fields, "time": round(time.time(), 3)}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
        line = _describe(event, self.epochs)
        with open(self.run_dir / "train_log.txt", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        if type in ("step", "eval"):
            report(self.progress, "train", event["step"], self.total_steps, line, event=event)
        else:
            report(self.progress, "train", message=line, event=event)
        return event

    def step(self, step: int, epoch: int, losses: dict, lr: float) -> None:
        """After each batch: log it, then stop if the user asked to (StopRequested)."""
        now = time.monotonic()
        if self._started is None:  # the clock starts at the first step's end: its own length is not known
            self._started, self._first_step = now, step
        rate = (step - self._first_step) / (now - self._started) if step > self._first_step else None
        self.emit(
            "step", step=step, epoch=epoch, **{k: losses.get(k) for k in ("loss", "loss_text_ce", "loss_mel_ce")},
            lr=lr, samples_per_s=round(rate * self.batch_size, 3) if rate else None,
            eta_s=round(max(self.total_steps - step, 0) / rate, 1) if rate else None,
        )
        if self.board:
            for name in ("loss", "loss_text_ce", "loss_mel_ce"):
                self.board.add_scalar(f"train/{name}", losses[name], step)
            self.board.add_scalar("train/lr", lr, step)
        if self.stop_event is not None and self.stop_event.is_set():
            raise StopRequested

    def improves(self, eval_loss: float) -> bool:
        return eval_loss < self.best_loss

    def evaluated(self, step: int, epoch: int, eval_loss: float) -> None:
        """After each epoch's eval (and after the best weights are saved): best.json, event, early stop."""
        improved = self.improves(eval_loss)
        if improved:
            self.best_loss, self.evals_since_best = eval_loss, 0
            best = {"eval_loss": eval_loss, "step": step, "epoch": epoch, "checkpoint": "best_model.pth"}
        else:
            self.evals_since_best += 1
            best = read_best(self.run_dir)
        best["evals_since_best"] = self.evals_since_best
        atomic_write_text(self.run_dir / "best.json", json.dumps(best, indent=2))
        self.emit("eval", step=step, epoch=epoch, eval_loss=eval_loss, best=improved)
        if self.board:
            self.board.add_scalar("eval/loss", eval_loss, step)
            self.board.flush()
        if self.patience is not None and self.evals_since_best >= self.patience:
            raise EarlyStop

    def close(self) -> None:
        if self.board:
            self.board.close()


def _board(run_dir: Path):
    """TensorBoard scalars in the run folder (as coqui's trainer wrote them), if tensorboard is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir))


def _describe(event: dict, epochs: int) -> str:
    if event["type"] == "step":
        return (f"step {event['step']} epoch {event['epoch'] + 1}/{epochs} loss {event['loss']:.4f} "
                f"(text {event['loss_text_ce']:.4f}, mel {event['loss_mel_ce']:.4f}) lr {event['lr']:.3g}")
    if event["type"] == "eval":
        return f"eval after epoch {event['epoch'] + 1}: loss {event['eval_loss']:.4f}{' (best)' if event['best'] else ''}"
    return event.get("message") or event.get("status", event["type"])
