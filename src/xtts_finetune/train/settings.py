"""Every user-facing training setting in one typed object, plus the pure decisions derived from them.

Defaults follow coqui's XTTS v2 fine-tuning recipe (lr 5e-6, AdamW, weight decay 1e-2, small batches),
except two: no 252-clip accumulation (a few hundred clips would make one optimizer step per epoch), and the
schedule: the recipe's MultiStepLR milestones are never reached in a
fine-tuning run, so ours is a warm-up followed by a decay sized to the run's real number of steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Callable, Literal

from xtts_finetune.errors import UserError
from xtts_finetune.devices import PRECISIONS

SAMPLE_RATE = 22050  # coqui's XTTSDataset loads every clip at 22.05 kHz
RECIPE_MAX_AUDIO_SECONDS = 255995 / SAMPLE_RATE  # ~11.6 s, the release's training limit
MIN_AUDIO_SECONDS = 0.5  # XTTSDataset refuses shorter clips
SCHEDULES = ("cosine", "linear", "constant")


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int | Literal["auto"] = 2
    grad_accum: int = 1  # batches per optimizer step; capped at one epoch's batches
    lr: float = 5e-6
    weight_decay: float = 1e-2
    warmup_steps: int | None = None  # None: 10 % of the run's optimizer steps
    scheduler: str = "cosine"  # cosine | linear (decay after warm-up) | constant (warm-up only)
    min_lr_ratio: float = 0.1  # the decay ends at lr * min_lr_ratio
    max_audio_seconds: float | None = None  # None: the dataset's longest clip (at most the recipe's 11.6 s)
    max_text_length: int = 200  # in tokens
    save_every_steps: int = 1000
    keep_checkpoints: int = 2
    seed: int = 1
    early_stopping_patience: int | None = 3  # evals without a better eval loss; None: never stop early
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    grad_clip: float = 1.0
    activation_checkpointing: bool = False  # recompute GPT blocks in backward: less memory, ~30 % more compute
    optimizer_8bit: bool = False  # bitsandbytes AdamW8bit: optimizer state in a quarter of the memory
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank on the GPT's attention and MLP only (peft)
    evaluate_every: int = 0  # epochs between light evaluations (CER, similarity); 0: none
    evaluate_whisper_model: str | None = None  # None: the one the dataset was transcribed with
    evaluate_speaker_model: str | None = None  # None: evaluate.speaker's default
    vocab: str = "auto"  # auto | base | script | phonemes: how text reaches the tokenizer (text/frontends.py)
    new_tokens: int = 1000  # script mode: BPE tokens learned from the dataset and appended to the vocabulary
    workers: int = 0  # data-loader processes making training batches (text front end, crop, mel); 0: in the loop

    def validate(self) -> "TrainSettings":
        def bad(name, fix):
            raise UserError(f"training setting {name}={getattr(self, name)!r} is not valid", fix=fix)

        if self.epochs < 1:
            bad("epochs", "use 1 or more epochs")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            bad("batch_size", "use a whole number >= 1, or 'auto'")
        if self.grad_accum < 1:
            bad("grad_accum", "use a whole number >= 1")
        if not 0 < self.lr < 1:
            bad("lr", "use a small positive learning rate such as 5e-6")
        if self.scheduler not in SCHEDULES:
            bad("scheduler", f"use one of {', '.join(SCHEDULES)}")
        if self.max_audio_seconds is not None and self.max_audio_seconds <= MIN_AUDIO_SECONDS:
            bad("max_audio_seconds", f"use more than {MIN_AUDIO_SECONDS} seconds")
        if self.precision not in PRECISIONS:
            bad("precision", "use auto, fp32, fp16 or bf16")
        if not isinstance(self.evaluate_every, int) or self.evaluate_every < 0:
            bad("evaluate_every", "use a whole number of epochs >= 0 (0: no evaluation during training)")
        if self.vocab not in ("auto", "base", "script", "phonemes"):
            bad("vocab", "use auto, base, script or phonemes")
        if not isinstance(self.workers, int) or self.workers < 0:
            bad("workers", "use a whole number of data-loader processes >= 0 (0: batches made in the training loop)")
        if not isinstance(self.new_tokens, int) or self.new_tokens < 0:
            bad("new_tokens", "use a whole number of tokens >= 0")
        if not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            bad("lora_rank", "use a whole number >= 0 (0: train all weights; 8-64 for LoRA)")
        if self.save_every_steps < 1 or self.keep_checkpoints < 1:
            bad("save_every_steps" if self.save_every_steps < 1 else "keep_checkpoints", "use a whole number >= 1")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def optimizer_steps(num_train: int, batch_size: int, grad_accum: int, epochs: int) -> int:
    """Optimizer steps in a run: coqui steps at every `grad_accum` batches and at each epoch's last batch."""
    batches = math.ceil(num_train / batch_size)
    return epochs * math.ceil(batches / grad_accum)


def effective_grad_accum(settings: TrainSettings, num_train: int, batch_size: int) -> int:
    """Accumulate over at most one epoch: more would make an epoch a single, partial optimizer step."""
    return max(1, min(settings.grad_accum, math.ceil(num_train / batch_size)))


def lr_multiplier(step: int, total: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Learning-rate factor at optimizer `step`: linear warm-up to 1, then cosine/linear decay to `min_ratio`.

    transformers' get_cosine_with_min_lr_schedule_with_warmup is the cosine case, but its warm-up starts at
    factor 0 (the first step would not move the weights) and it has no linear or constant form with a floor;
    using it would change every run's learning rates, so the schedule stays this one function.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


# What running out of device memory looks like besides torch.OutOfMemoryError: cuBLAS and cuDNN allocate
# their workspaces outside the caching allocator and report a failure as their own status (cuDNN's
# NOT_SUPPORTED is what some convolutions return when their workspace cannot be had), raised as a plain
# RuntimeError (torch.AcceleratorError for "CUDA error: out of memory"). accelerate's should_reduce_batch_size
# reads the same messages; accelerate is not a dependency of ours, so the list is kept here.
OUT_OF_MEMORY_MESSAGES = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed",
                          "cudnn_status_not_supported", "defaultcpuallocator: can't allocate memory")


def is_out_of_memory(err: BaseException | None) -> bool:
    """Whether `err` (or an error it was raised from) means the device ran out of memory."""
    import torch

    while err is not None:
        if isinstance(err, torch.OutOfMemoryError) or (
                isinstance(err, RuntimeError) and any(m in str(err).lower() for m in OUT_OF_MEMORY_MESSAGES)):
            return True
        err = err.__cause__ or err.__context__
    return False


def out_of_memory_error(batch_size, grad_accum, max_audio_seconds) -> UserError:
    return UserError(
        f"the GPU ran out of memory (batch size {batch_size}, longest clip {max_audio_seconds:.1f} s)",
        fix=f"lower --batch-size (or use --batch-size auto) and raise --grad-accum to keep the effective batch "
        f"(now {batch_size} x {grad_accum}); or lower --max-audio-seconds after splitting long clips",
    )


def find_batch_size(fits: Callable[[int], bool], start: int = 1, limit: int = 64) -> int:
    """The largest batch size <= `limit` for which `fits(batch)` holds: doubling, then bisection.

    `fits` runs one training step at that batch size and returns False when it runs out of memory.
    """
    if not fits(start):
        raise UserError(
            f"even a batch of {start} clip(s) does not fit in GPU memory",
            fix="lower --max-audio-seconds (split long clips) or train on a GPU with more memory",
        )
    good, bad = start, None
    while bad is None and good < limit:
        candidate = min(limit, good * 2)
        if fits(candidate):
            good = candidate
        else:
            bad = candidate
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(middle) else (good, middle)
    return good
