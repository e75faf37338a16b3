"""Checkpoints: model-only weights apart from the resumable training state, written so a crash loses nothing.

RUN/checkpoint_STEP.pth   {"model": the trained GPT's weights, release key names ("gpt.*")}, what export reads
RUN/state_STEP.pt         optimizer, scheduler, scaler, position (epoch, batch), best-eval tracking, RNG
RUN/best_model_STEP.pth   weights at the best eval loss (best_model.pth links to it)

The DVAE, the mel modules and the HiFi-GAN decoder never enter a run: they are the base model's. A pair is
complete only when both files are; older pairs are deleted only after a new one is complete, so a full
disk or a kill mid-write leaves the previous pair intact.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_finetune.errors import UserError
from xtts_finetune.train.memory import plain_state_dict
from xtts_finetune.utils import atomic_torch_save

logger = logging.getLogger(__name__)
WEIGHTS = re.compile(r"checkpoint_(\d+)\.pth")
write = atomic_torch_save  # the one write path: tests hook it to simulate a full disk


@dataclass
class Saved:
    step: int
    weights: Path
    state: Path


def model_weights(gpt: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The GPT weights under their release names (what export puts into model.pth), LoRA adapters merged."""
    state = plain_state_dict(gpt)
    return {f"gpt.{k}": v for k, v in state.items() if not k.startswith("gpt_inference")}


def weights_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"checkpoint_{step}.pth"


def saved_pairs(run_dir: Path) -> list[Saved]:
    """Complete weights+state pairs in a run, oldest first."""
    pairs = []
    for path in run_dir.glob("checkpoint_*.pth"):
        if (m := WEIGHTS.fullmatch(path.name)) and (run_dir / f"state_{m[1]}.pt").is_file():
            pairs.append(Saved(int(m[1]), path, run_dir / f"state_{m[1]}.pt"))
    return sorted(pairs, key=lambda s: s.step)


def _write_or_explain(obj, path: Path, previous: Saved | None) -> None:
    try:
        write(obj, path)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        kept = f"the previous checkpoint ({previous.weights.name}, step {previous.step}) is intact" if previous else (
            "no earlier checkpoint was saved")
        raise UserError(
            f"the disk is full: could not write {path}; {kept}",
            fix=f"free space on the disk holding {path.parent}, then continue with: xtts-finetune train --resume "
            f"{path.parent.name}",
        ) from err


def save(run_dir: Path, step: int, weights: dict, state: dict | None, keep: int, same_as: Path | None = None) -> Saved:
    """Write the pair for `step` (weights only when `state` is None: a run that ended), then prune to `keep`.

    `same_as`: a file this process wrote with these very weights at this step (the best model, when the
    last evaluation improved): linked rather than written again.
    """
    pairs = saved_pairs(run_dir)
    previous = pairs[-1] if pairs else None
    saved = Saved(step, weights_path(run_dir, step), run_dir / f"state_{step}.pt")
    if not (same_as and _link(same_as, saved.weights)):
        _write_or_explain({"model": weights, "step": step}, saved.weights, previous)
    if state is not None:
        _write_or_explain(state, saved.state, previous)
    for old in [p for p in saved_pairs(run_dir) if p.step != step][: max(0, len(pairs) + 1 - keep)]:
        old.weights.unlink(missing_ok=True)
        old.state.unlink(missing_ok=True)
    return saved


def _link(source: Path, target: Path) -> bool:
    """Hard-link `source` as `target` (replacing it atomically); False where the file system cannot."""
    temp = target.with_name(f".{target.name}.link")
    temp.unlink(missing_ok=True)
    try:
        temp.hardlink_to(source)
    except OSError:
        return False
    temp.replace(target)
    return True


def save_best(run_dir: Path, step: int, weights: dict) -> Path:
    """best_model_STEP.pth, linked as best_model.pth; the previous best is removed."""
    path = run_dir / f"best_model_{step}.pth"
    _write_or_explain({"model": weights, "step": step}, path, None)
    if not _link(path, run_dir / "best_model.pth"):  # a file system without hard links gets a second copy
        write({"model": weights, "step": step}, run_dir / "best_model.pth")
    for old in run_dir.glob("best_model_*.pth"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def load_latest(run_dir: Path) -> tuple[Saved, dict, dict, list[str]] | None:
    """The newest pair that loads: (saved, weights, state, notes naming each damaged pair set aside)."""
    notes = []
    for saved in reversed(saved_pairs(run_dir)):
        try:
            weights = torch.load(saved.weights, map_location="cpu", weights_only=True)["model"]
            state = torch.load(saved.state, map_location="cpu", weights_only=True)
            return saved, weights, state, notes
        except Exception as err:  # noqa: BLE001 - any failure to read means this pair cannot be trusted
            note = f"checkpoint {saved.weights.name} / {saved.state.name} is damaged ({type(err).__name__}); set aside"
            logger.warning(note)
            notes.append(note)
            for path in (saved.weights, saved.state):
                if path.exists():
                    path.rename(path.with_name(path.name + ".broken"))
    if notes:
        raise UserError(f"no checkpoint of {run_dir.name} can be read: " + "; ".join(notes),
                        fix="start a new run; the damaged files were renamed *.broken")
    return None
