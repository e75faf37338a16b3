"""A run's checkpoints as speakable models, and the rule that recommends one.

`checkpoint_model` is the only place that knows how a checkpoint file becomes a model folder: it goes
through export, so when the checkpoint format changes, export changes and evaluation follows.
"""

from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate.report import RECOMMENDATION_RULE
from xtts_finetune.evaluate.scoring import ModelScore

CER_MARGIN = 0.02  # checkpoints within 2 points of the lowest CER compete on similarity
DEFAULT_MAX_CHECKPOINTS = 3


@contextmanager
def checkpoint_model(run_dir: Path, checkpoint: Path) -> Iterator[Path]:
    """A Synthesizer-ready folder for `checkpoint` (export's own code path), deleted afterwards."""
    from xtts_finetune.export import export_model

    with tempfile.TemporaryDirectory(prefix=".checkpoint-", dir=run_dir) as scratch:
        yield export_model(run_dir, "checkpoint", checkpoint=str(Path(checkpoint).relative_to(run_dir)),
                           workspace=scratch)


def step_of(checkpoint: Path) -> int:
    numbers = re.findall(r"\d+", checkpoint.stem)
    return int(numbers[-1]) if numbers else -1


def kept_checkpoints(run_dir: Path, limit: int = DEFAULT_MAX_CHECKPOINTS) -> list[Path]:
    """The run's complete checkpoints, one per step, oldest first: the best and the newest `limit - 1`."""
    from xtts_finetune.train.runs import checkpoints, is_complete_checkpoint

    by_step: dict[int, Path] = {}
    for path in [*run_dir.glob("best_model_*.pth"), *checkpoints(run_dir)]:  # best first: its name says so
        if is_complete_checkpoint(path):
            by_step.setdefault(step_of(path), path)
    if not by_step:
        raise UserError(f"{run_dir} has no checkpoint to evaluate", fix="train until the first save (--save-every)")
    steps = sorted(by_step)
    best = [s for s in steps if by_step[s].name.startswith("best_model_")][-1:]
    others = [s for s in steps if s not in best]
    newest = others[max(0, len(others) - (max(1, limit) - len(best))):]
    return [by_step[s] for s in sorted(best + newest)]


def recommend(scores: list[ModelScore], margin: float = CER_MARGIN) -> str | None:
    """The label of the checkpoint RECOMMENDATION_RULE picks."""
    candidates = [s for s in scores if s.kind == "checkpoint"]
    if not candidates:
        return None
    lowest = min(s.cer for s in candidates)
    near = [s for s in candidates if s.cer <= lowest + margin]
    return max(near, key=lambda s: (s.similarity, -s.babble_share, -(s.step or 0))).label


def rule_text(margin: float = CER_MARGIN) -> str:
    return RECOMMENDATION_RULE.format(margin=margin)
