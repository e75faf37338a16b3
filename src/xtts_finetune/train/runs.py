"""Run folders: naming without overwriting, finding the run to resume, listing runs for the UI and CLI."""

from __future__ import annotations

import json
import logging
import re
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.locks import exclusive, holder
from xtts_finetune.train.events import read_best, read_events
from xtts_finetune.utils import safe_join

logger = logging.getLogger(__name__)


@dataclass
class RunInfo:
    name: str
    path: Path
    status: str  # running | finished | stopped | failed | early_stopped | interrupted | new
    epochs_done: int
    best_eval_loss: float | None
    steps: int
    updated: float  # unix time of the last event


@dataclass
class RunResult:
    """What a finished (or stopped) training call returns, in-process or from torchrun's ranks."""

    run_dir: Path
    best_checkpoint: Path | None
    best_eval_loss: float | None
    steps: int
    stopped_early: bool
    status: str = "finished"


def runs_root(workspace: str | Path) -> Path:
    return Path(workspace) / "runs"


def new_run_dir(workspace: str | Path, name: str | None = None) -> Path:
    """A fresh RUN folder under WORKSPACE/runs; an existing name gets -2, -3 ... instead of being reused."""
    base = name or time.strftime("run-%Y%m%d-%H%M%S")
    if not re.fullmatch(r"[\w.-]+", base) or base.startswith("."):
        raise UserError(f"run name {base!r} is not a simple folder name", fix="use letters, digits, '-', '_' or '.'")
    root = runs_root(workspace)
    root.mkdir(parents=True, exist_ok=True)
    candidate, n = root / base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{base}-{n}"


def checkpoints(run_dir: Path) -> list[Path]:
    """coqui's step checkpoints, oldest first."""
    found = [p for p in run_dir.glob("checkpoint_*.pth") if re.fullmatch(r"checkpoint_\d+\.pth", p.name)]
    return sorted(found, key=lambda p: int(p.stem.split("_")[1]))


def is_complete_checkpoint(path: Path) -> bool:
    """torch.save writes a zip whose directory is at the end: a file cut short by a kill does not open."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def set_aside_broken_checkpoints(run_dir: Path) -> list[Path]:
    """Rename checkpoints a kill left half-written, so coqui resumes from the last complete one."""
    broken = [p for p in [*checkpoints(run_dir), *run_dir.glob("best_model*.pth")] if not is_complete_checkpoint(p)]
    for path in broken:
        logger.warning("setting aside %s: it was cut short (the run was killed while saving)", path)
        path.rename(path.with_suffix(".pth.broken"))
    return broken


def find_run_to_resume(workspace: str | Path, resume: bool | str) -> Path:
    """`resume=True`: the most recently updated run; a string: that run's name under WORKSPACE/runs."""
    if isinstance(resume, str):
        run_dir = safe_join(runs_root(workspace), resume)
        if not (run_dir / "settings.json").is_file():
            raise UserError(
                f"{run_dir} is not a training run", fix="pick a name from: xtts-finetune train --list WORKSPACE"
            )
    else:
        runs = [r for r in list_runs(workspace) if r.status not in ("finished", "early_stopped", "running")]
        if not runs:
            raise UserError(
                f"no unfinished run to resume in {runs_root(workspace)}", fix="start a new run without --resume"
            )
        run_dir = runs[0].path
    info = run_info(run_dir)
    if info.status == "running":
        raise UserError(f"run {run_dir.name} is still running", fix="wait for it or stop it first")
    if info.status in ("finished", "early_stopped"):
        raise UserError(
            f"run {run_dir.name} already {info.status.replace('_', ' ')}",
            fix=f"export it (xtts-finetune export {run_dir}) or start a new run",
        )
    set_aside_broken_checkpoints(run_dir)
    if not checkpoints(run_dir) and not (run_dir / "best_model.pth").is_file():
        raise UserError(
            f"run {run_dir.name} saved no checkpoint before it stopped, so there is nothing to resume",
            fix="start a new run (lower --save-every to lose less next time)",
        )
    return run_dir


@contextmanager
def run_lock(run_dir: Path):
    """Held while a run trains (on every OS), so listing can tell a live run from one that was killed."""
    with exclusive(run_dir / ".lock", f"run {run_dir.name}"):
        yield


def _is_locked(run_dir: Path) -> bool:
    return holder(run_dir / ".lock") is not None


def run_info(run_dir: Path) -> RunInfo:
    status, epochs_done, steps, updated = "new", 0, 0, (run_dir / "settings.json").stat().st_mtime
    for event in read_events(run_dir):
        updated = event.get("time", updated)
        if event["type"] == "status":
            status = event["status"]
        elif event["type"] == "step":
            steps = event["step"]
        elif event["type"] == "eval":
            epochs_done = max(epochs_done, event["epoch"] + 1)
    if status == "running" and not _is_locked(run_dir):
        status = "interrupted"
    return RunInfo(run_dir.name, run_dir, status, epochs_done, read_best(run_dir).get("eval_loss"), steps, updated)


def list_runs(workspace: str | Path) -> list[RunInfo]:
    """Every run in WORKSPACE/runs, most recently updated first."""
    root = runs_root(workspace)
    runs = [run_info(p) for p in root.iterdir() if (p / "settings.json").is_file()] if root.is_dir() else []
    return sorted(runs, key=lambda r: r.updated, reverse=True)


def read_run_settings(run_dir: Path) -> dict:
    path = run_dir / "settings.json"
    if not path.is_file():
        raise UserError(
            f"{run_dir} is not a training run (no settings.json)", fix="pass a folder under WORKSPACE/runs/"
        )
    return json.loads(path.read_text(encoding="utf-8"))
