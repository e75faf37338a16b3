"""A run's typed config: how a new run is sized from its dataset, and the files that record it.

`RecipeConfig` is everything `Recipe` needs, resolved once and written to RUN/config.json, so a resumed
run (on any number of devices) continues with exactly the settings it started with.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


from xtts_finetune import __version__
from xtts_finetune.basemodels import base_model_version
from xtts_finetune.devices import precision_for, resolve_device
from xtts_finetune.errors import UserError
from xtts_finetune.languages import tokenizer_language
from xtts_finetune.train.settings import TrainSettings, effective_grad_accum, optimizer_steps
from xtts_finetune.utils import atomic_write_text

DEFAULT_BATCH = 2


@dataclass
class RecipeConfig:
    """Everything one run needs, resolved: written to RUN/config.json, read back on resume."""

    base_dir: str
    dataset_dir: str
    language: str  # the tokenizer's language code
    train_clips: list[tuple[str, str]]  # (audio file relative to dataset_dir, text)
    eval_clips: list[tuple[str, str]]
    settings: dict  # TrainSettings.to_dict()
    batch_size: int
    grad_accum: int
    optimizer_steps: int
    warmup_steps: int
    precision: str  # fp32 | fp16 | bf16
    device: str
    vocab_mode: str = "base"  # base | script (RUN/vocab.json extends the base's) | phonemes
    frontend: dict = field(default_factory=dict)  # the language's text front end: name, version

    @property
    def train_settings(self) -> TrainSettings:
        return TrainSettings.from_dict(self.settings)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_clips) / self.batch_size)


def plan_steps(settings: TrainSettings, num_train: int, batch_size: int, ranks: int = 1) -> tuple[int, int, int]:
    """(grad_accum, optimizer steps, warm-up steps) of a run; a step takes grad_accum batches on each rank."""
    rounds = math.ceil(math.ceil(num_train / batch_size) / ranks)  # rounds of batches an epoch
    accum = effective_grad_accum(settings, rounds, 1)
    total = optimizer_steps(rounds, 1, accum, settings.epochs)
    warmup = settings.warmup_steps if settings.warmup_steps is not None else max(1, round(0.1 * total))
    return accum, total, min(warmup, total)


def new_config(workspace: Path, base_dir: Path, settings: TrainSettings, info, device: str | None = None) -> RecipeConfig:
    """A new run's config from the checked dataset (`info`) and the settings asked for (`device`: the live one)."""
    dataset = Path(info.path)
    pairs = {split: [(c.audio_file, c.text) for c in info.clips if c.split == split] for split in ("train", "eval")}
    batch = min(DEFAULT_BATCH if settings.batch_size == "auto" else settings.batch_size, len(pairs["train"]))
    accum, total, warmup = plan_steps(settings, len(pairs["train"]), batch)
    device = device or resolve_device("auto")
    return RecipeConfig(
        base_dir=str(base_dir), dataset_dir=str(dataset), language=tokenizer_language(info.language),
        train_clips=pairs["train"], eval_clips=pairs["eval"], settings=settings.to_dict(), batch_size=batch,
        grad_accum=accum, optimizer_steps=total, warmup_steps=warmup,
        precision=precision_for(settings.precision, device), device=device,
        vocab_mode=info.vocab_mode, frontend=info.frontend,
    )


def on_this_machine(config: RecipeConfig, device: str) -> str | None:
    """Point a resumed run at this machine's `device` and the precision its setting gives there; a note when
    that differs from what config.json recorded (a GPU run resumed on a CPU, a CPU run on a GPU)."""
    setting = config.train_settings.precision
    try:
        precision = precision_for(setting, device)
    except UserError:  # the setting cannot hold here (fp16 on a CPU, bf16 without native support)
        precision = precision_for("auto", device)
    before = (config.device, config.precision)
    config.device, config.precision = device, precision
    if before == (device, precision):
        return None
    return (f"the run started on {before[0]} in {before[1]}; this machine continues it on {device} in {precision}"
            + (f" (--precision {setting} does not apply here)" if setting not in ("auto", precision) else ""))


def vocab_note(config: RecipeConfig) -> str:
    """Says how the text is read: an unknown language gets the script mode by default, and the user is told."""
    front = config.frontend or {"name": "xtts", "version": "1"}
    how = {"base": "the base vocabulary", "script": "the base vocabulary extended with the dataset's script "
           "(RUN/vocab.json)", "phonemes": "G2P phonemes in the base vocabulary's letters"}[config.vocab_mode]
    return f"text front end {front['name']} v{front['version']}, {how} (--vocab {config.vocab_mode})"


def read_config(run_dir: Path) -> RecipeConfig:
    """The config a run was started with, for --resume."""
    path = run_dir / "config.json"
    try:
        return RecipeConfig(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        raise UserError(
            f"{path} is missing or was written by an older version of xtts-finetune, so {run_dir.name} cannot resume",
            fix="start a new run (its checkpoints can still be exported)",
        ) from None


def write_run_files(run_dir: Path, config: RecipeConfig, base: str | Path | None, info, devices: int = 1) -> None:
    """settings.json (what was asked and resolved), config.json (read back on resume) and the run's vocab.json."""
    base_dir = Path(config.base_dir)
    version = base_model_version(base_dir)
    resolved = {k: getattr(config, k) for k in ("batch_size", "grad_accum", "warmup_steps", "optimizer_steps")}
    resolved |= {
        "steps": config.settings["epochs"] * config.batches_per_epoch, "max_audio_seconds": info.max_audio_seconds,
        "mixed_precision": config.precision != "fp32", "precision": config.precision, "device": config.device,
        "devices": devices, "global_batch": config.batch_size * config.grad_accum * devices,
    }
    run = {
        "settings": config.settings,
        "base": {"spec": str(base or version), "path": str(base_dir), "version": version},
        "dataset": info.to_dict(),
        "resolved": resolved,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool_version": __version__,
    }
    atomic_write_text(run_dir / "settings.json", json.dumps(run, indent=2))
    atomic_write_text(run_dir / "config.json", json.dumps(asdict(config), indent=2))
    atomic_write_text(run_dir / "vocab.json", info.vocab_json)  # the tokenizer this run trains with
