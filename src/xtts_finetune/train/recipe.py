"""The fine-tuning recipe: XTTS's GPT trained on cached DVAE codes, one readable loop, resumable at any batch.

Read top to bottom: `train()` checks the dataset, sizes the run and opens its folder; `Recipe.setup()`
builds coqui's GPT from the base model, the data (codes cached per clip), the optimizer and schedule,
or restores them from the run's last checkpoint; `Recipe.train()` is the loop: forward, loss, backward,
clip, step, log, evaluate at each epoch's end, save. Nothing of coqui's Trainer is used; its model code is.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch

from xtts_finetune.basemodels import resolve_base_model, training_assets
from xtts_finetune.progress import ProgressCallback
from xtts_finetune.train import checkpoint
from xtts_finetune.devices import resolve_device
from xtts_finetune.train.config import (
    RecipeConfig,
    new_config,
    on_this_machine,
    plan_steps,
    read_config,
    vocab_note,
    write_run_files,
)
from xtts_finetune.train.data import BatchFeed, BucketSampler, CodeCache, CondCrop, Round, collate, dvae_codes
from xtts_finetune.train.data import load_clips, padding_share, rounds, style_mel, worst_case_clip
from xtts_finetune.train.distributed import World, join, leave, stop_on_signals
from xtts_finetune.train.events import EarlyStop, EventLog, StopRequested
from xtts_finetune.train.memory import adapter_state, add_lora, enable_activation_checkpointing, memory_headroom
from xtts_finetune.train.memory import reset_lora
from xtts_finetune.train.model import base_weights, gpt_losses, load_gpt, load_weights
from xtts_finetune.train.precision import Precision, adamw, clipped_step
from xtts_finetune.train.preflight import inspect_dataset, problems_error
from xtts_finetune.train.runs import RunResult, find_run_to_resume, new_run_dir, run_lock
from xtts_finetune.train.settings import (
    SAMPLE_RATE,
    TrainSettings,
    find_batch_size,
    is_out_of_memory,
    lr_multiplier,
    out_of_memory_error,
)
from xtts_finetune.errors import UserError

logger = logging.getLogger(__name__)


class Recipe:
    """One run: `setup()` (and `restore()` to resume) then `train()`; `save_checkpoint()` at any batch."""

    def __init__(self, config: RecipeConfig, run_dir: Path, events: EventLog | None = None, world: World | None = None,
                 vocab_json: str = ""):
        self.cfg, self.run_dir, self.events, self.world = config, run_dir, events, world or World()
        self.vocab_json = vocab_json or None
        self.settings = config.train_settings
        # batches done (by all ranks), current epoch, batches done in it, batches in the gradients not yet stepped
        self.step = self.epoch = self.position = self.pending = 0
        self.resume_notes: list[str] = []
        self.stop_event = None  # distributed: a stop asked of any rank, agreed on by all
        self.best_saved: tuple[int, Path] | None = None  # (step, file) of the best model this process last wrote

    def setup(self, cache_root: Path | None = None) -> None:
        """Model, clips and a fresh optimizer; `restore()` then continues from the run's last checkpoint."""
        base = Path(self.cfg.base_dir)
        self.gpt, tokenizer, xtts_config = load_gpt(base, self.vocab_json, self.cfg.language, self.cfg.vocab_mode)
        assets = training_assets(base)
        a = xtts_config.model_args
        self.crop = CondCrop(masking=a.gpt_use_masking_gt_prompt_approach)
        self.mel = style_mel(assets["mel_stats"], SAMPLE_RATE, a.gpt_use_perceiver_resampler)
        device = self.cfg.device
        self.cache = CodeCache(assets["dvae"], assets["mel_stats"], SAMPLE_RATE, cache_root, device, codes=dvae_codes(a))
        dataset = Path(self.cfg.dataset_dir)

        def clips(pairs):
            return load_clips([(dataset / f, t) for f, t in pairs], lambda t: tokenizer.encode(t, self.cfg.language),
                              self.cache)

        if self.world.distributed:  # each rank computes the codes of its share of the clips, then all read them
            clips(self.cfg.train_clips[self.world.rank :: self.world.size])
            self.world.barrier()
        self.train_clips, self.eval_clips = clips(self.cfg.train_clips), clips(self.cfg.eval_clips)
        self.cache.release()  # every clip's codes are known: the DVAE, needed only to encode, leaves the device
        self.feed = BatchFeed.start(self.cfg, self.train_clips, self.vocab_json or str(base / "vocab.json"),
                                    self.crop, assets["mel_stats"], a.gpt_use_perceiver_resampler)  # None: no workers
        self.device, self.precision = self.cfg.device, Precision(self.cfg.precision, self.cfg.device)
        self.gpt.to(self.device)
        if self.settings.lora_rank:
            add_lora(self.gpt, self.settings.lora_rank)
        if self.settings.activation_checkpointing:
            enable_activation_checkpointing(self.gpt)
        self.start_fresh(self.cfg.batch_size)

    def start_fresh(self, batch_size: int) -> None:
        """Sampler, optimizer, schedule and scaler for `batch_size`, from the base weights (after a probe)."""
        if hasattr(self, "optimizer") and self.settings.lora_rank:  # a probe trained the adapters: reset them
            reset_lora(self.gpt)
        elif hasattr(self, "optimizer"):  # a probe trained: back to the base weights
            load_weights(self.gpt, base_weights(Path(self.cfg.base_dir), self.gpt.number_text_tokens), self.cfg.base_dir)
        self.cfg.batch_size = batch_size
        self.cfg.grad_accum, self.cfg.optimizer_steps, self.cfg.warmup_steps = plan_steps(
            self.settings, len(self.cfg.train_clips), batch_size, self.world.size)
        lengths = [c.samples for c in self.train_clips]
        self.sampler = BucketSampler(lengths, batch_size, seed=self.settings.seed)
        self.padding = padding_share(self.sampler.epoch(0), lengths)
        self.optimizer = adamw(self.gpt, self.settings.lr, self.settings.weight_decay, device=self.device,
                               eight_bit=self.settings.optimizer_8bit)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = self.precision.scaler()

    def _lr_factor(self, step: int) -> float:
        s = self.settings
        return lr_multiplier(step, self.cfg.optimizer_steps, self.cfg.warmup_steps, s.scheduler, s.min_lr_ratio)

    def _batch(self, clips, rng, made: dict | None = None):
        batch = made if made is not None else collate(clips, self.crop, rng, self.mel, self.device)
        return {k: None if v is None else _to_device(v, self.device) for k, v in batch.items()}

    def train(self) -> str:
        """The loop; returns 'finished' or 'early_stopped' (StopRequested propagates after a save)."""
        self.model = self.world.wrap(self.gpt, self.device)
        while self.epoch < self.settings.epochs:
            self.gpt.train()
            todo = list(rounds(self.sampler.epoch(self.epoch), self.position, self.step, self.world.rank,
                               self.world.size))
            made = self.feed.make(todo) if self.feed else None  # workers make the batches ahead, in this order
            for round_ in todo:
                self._train_round(round_, made)
            self.epoch, self.position = self.epoch + 1, 0
            if self._evaluate_and_check_early_stop():
                self.save_checkpoint(final=True)
                return "early_stopped"
            self._light_evaluation()
        self.save_checkpoint(final=True)
        return "finished"

    def _train_round(self, round_: Round, made: Iterator | None) -> None:
        """Forward and backward on this round's batch; an optimizer step after grad_accum batches per rank
        and at the epoch's end; a checkpoint every save_every_steps batches; the losses logged."""
        self.pending += round_.size
        stepping = round_.last or self.pending >= self.cfg.grad_accum * self.world.size
        with self.world.no_sync(self.model, accumulating=not stepping):
            losses = self._forward_backward(round_, made)
        lr = self.optimizer.param_groups[0]["lr"]
        if stepping:
            self._optimizer_step()
        self.step, self.position = self.step + round_.size, self.position + round_.size
        every = self.settings.save_every_steps
        if self.step // every > (self.step - round_.size) // every:
            self.save_checkpoint()
        self._log_step(losses, round_.real, lr)

    def _forward_backward(self, round_: Round, made: Iterator | None = None) -> dict[str, torch.Tensor]:
        """One batch's losses and gradients (zero gradients where the round has no batch for this rank).

        Each batch is weighted 1/grad_accum and DDP averages over ranks, so a step is the mean over its
        batches, as one process with grad_accum x ranks would take it. Seeds are the batch's global index.
        """
        seed = self.settings.seed
        torch.manual_seed(seed * 1_000_003 + round_.index)  # dropout and crops: functions of the batch
        made_batch = next(made)[1] if made else None  # a worker's batch, seeded by the same index
        clips = [self.train_clips[i] for i in round_.batch]
        batch = self._batch(clips, random.Random(f"{seed}:{round_.index}"), made_batch)
        with self.precision.autocast():
            losses = gpt_losses(self.model, batch)
        loss = losses["loss"] * ((1.0 if round_.real else 0.0) / self.cfg.grad_accum)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        return losses

    def _log_step(self, losses: dict[str, torch.Tensor], real: bool, lr: float) -> None:
        """Log the round's losses, averaged over the ranks' batches; stop if any rank was asked to."""
        names = list(losses)
        stop = self.stop_event is not None and self.stop_event.is_set()
        totals = self.world.sum([float(losses[k].detach()) * real for k in names] + [float(real), float(stop)])
        if self.events:
            self.events.step(self.step, self.epoch, {k: totals[i] / totals[-2] for i, k in enumerate(names)}, lr)
        if totals[-1]:
            raise StopRequested

    def _evaluate_and_check_early_stop(self) -> bool:
        """The eval loss after an epoch; the best model saved when it improves; rank 0 decides the early stop."""
        eval_loss = self.evaluate()
        early = False
        if self.events:
            if self.events.improves(eval_loss):
                weights = checkpoint.model_weights(self.gpt)
                self.best_saved = self.step, checkpoint.save_best(self.run_dir, self.step, weights)
            try:
                self.events.evaluated(self.step, self.epoch - 1, eval_loss)
            except EarlyStop:
                early = True
        return self.world.share(early)

    def _light_evaluation(self) -> None:
        """`--evaluate-every N`: save, then score this epoch's checkpoint (CER, similarity) into evaluation.jsonl.

        Rank 0 scores; during_training records a failure (out of memory included) as a skipped evaluation and
        releases what it loaded. The ranks then agree on the outcome, so none runs ahead to wait in a collective.
        """
        every = self.settings.evaluate_every
        if not every or self.epoch % every:
            return
        from xtts_finetune.evaluate import during_training

        self.save_checkpoint(final=self.epoch == self.settings.epochs)
        record = None
        if self.world.main:
            # this step's weights: the last epoch's save holds no resumable state, so it is no "pair"
            latest = checkpoint.weights_path(self.run_dir, self.step)
            record = during_training(self.run_dir, latest, self.epoch, self.step, device=self.device,
                                     whisper_model=self.settings.evaluate_whisper_model,
                                     speaker_model=self.settings.evaluate_speaker_model)
        error = self.world.share(record and record.get("error"))
        if error and self.events:
            self.events.emit("warning", message=f"evaluation after epoch {self.epoch} skipped: {error}")

    def _optimizer_step(self) -> None:
        skipped = False
        if self.scaler:  # fp16: a step with inf/nan gradients is skipped and the scale lowered
            self.scaler.unscale_(self.optimizer)
            if self.settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.gpt.parameters(), self.settings.grad_clip)
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            skipped = self.scaler.get_scale() < scale
        else:
            clipped_step(self.optimizer, list(self.gpt.parameters()), self.settings.grad_clip)
        if not skipped:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pending = 0

    @torch.inference_mode()
    def evaluate(self) -> float:
        """Mean loss over the eval batches (in CSV order, fixed conditioning crops), as coqui averages it.

        Rank r scores every r-th batch; the sum and count are reduced over the ranks.
        """
        self.gpt.eval()
        size, losses = self.cfg.batch_size, []
        for start in range(0, len(self.eval_clips), size)[self.world.rank :: self.world.size]:
            batch = self._batch(self.eval_clips[start : start + size], None)
            with self.precision.autocast():
                losses.append(float(gpt_losses(self.gpt, batch)["loss"]))
        self.gpt.train()
        total, count = self.world.sum([sum(losses), len(losses)])
        return total / count

    def save_checkpoint(self, final: bool = False) -> None:
        """Weights and resumable state for the current position (gradients too, mid-accumulation).

        `final`: the run is over and cannot resume, so only the weights are written. Distributed: every rank
        calls it (partial gradients are averaged, which leaves the step to come unchanged); rank 0 writes.
        """
        if self.pending and not final:
            self.world.average_grads(self.gpt)
        if not self.world.main:
            return
        pairs = checkpoint.saved_pairs(self.run_dir)
        if (pairs and pairs[-1].step == self.step) or (final and checkpoint.weights_path(self.run_dir, self.step).is_file()):
            return  # already saved at this step (the last epoch's light evaluation saves before the run's end)
        state = {
            "step": self.step, "epoch": self.epoch, "position": self.position, "pending": self.pending,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "best_loss": self.events.best_loss if self.events else None,
            "evals_since_best": self.events.evals_since_best if self.events else 0,
            "rng": torch.get_rng_state(), "ranks": self.world.size,
            "grads": [p.grad for p in self.gpt.parameters()],
            "adapters": adapter_state(self.gpt),  # LoRA: the weights file holds them merged into the base
        }
        weights = checkpoint.model_weights(self.gpt)
        best = self.best_saved[1] if final and self.best_saved and self.best_saved[0] == self.step else None
        checkpoint.save(self.run_dir, self.step, weights, None if final else state, self.settings.keep_checkpoints,
                        same_as=best)

    def restore(self) -> None:
        with self.world.main_first():  # rank 0 sets damaged pairs aside; all then read the same newest pair
            found = checkpoint.load_latest(self.run_dir)
        if found is None:
            raise UserError(
                f"run {self.run_dir.name} has no readable checkpoint to resume from",
                fix="start a new run (lower --save-every to lose less next time)",
            )
        saved, weights, state, notes = found
        self.resume_notes += [f"{note}; resuming from {saved.weights.name} (step {saved.step})" for note in notes]
        if self.settings.lora_rank:  # the frozen base is the base model's; the adapters are the state's
            self.gpt.load_state_dict(state["adapters"], strict=False)
        else:
            load_weights(self.gpt, weights, saved.weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.pending = state.get("pending", self.position % self.cfg.grad_accum)  # older states: one device
        torch.set_rng_state(state["rng"])
        for param, grad in zip(self.gpt.parameters(), state["grads"]):
            param.grad = None if grad is None else grad.to(self.device)
        if self.events and state["best_loss"] is not None:
            self.events.best_loss, self.events.evals_since_best = state["best_loss"], state["evals_since_best"]
        self.resumed_from = saved
        if state.get("ranks", 1) != self.world.size:
            self._replan(state.get("ranks", 1))

    def _replan(self, ranks_before: int) -> None:
        """Resumed on another number of devices: the same batches continue from the same position, N a round;
        the schedule's length becomes the steps done plus the steps left at the new size."""
        rounds = math.ceil(len(self.sampler) / self.world.size)
        left_now = math.ceil(math.ceil((len(self.sampler) - self.position) / self.world.size) / self.cfg.grad_accum)
        left = left_now + (self.settings.epochs - self.epoch - 1) * math.ceil(rounds / self.cfg.grad_accum)
        self.cfg.optimizer_steps = self.scheduler.last_epoch + left
        self.resume_notes.append(f"resumed on {self.world.size} device(s) after {ranks_before}: the batches continue "
                                 f"from batch {self.position} of epoch {self.epoch + 1}, {self.cfg.optimizer_steps} "
                                 f"optimizer steps in all")


def _to_device(tensor: torch.Tensor, device: str) -> torch.Tensor:
    """A batch tensor on the training device. Nothing is pinned here: pinning allocates page-locked memory
    each time, which costs more than copying a batch's few kilobytes of token ids; the conditioning mels
    are computed on the device already, and workers' batches come pinned by the DataLoader, so their copy
    can overlap compute (non_blocking)."""
    return tensor.to(device, non_blocking=tensor.is_pinned())


def probe_batch_size(recipe: Recipe, limit: int = 64) -> int:
    """Largest batch for which a whole step, optimizer update included, fits in the GPU's memory less a
    headroom (memory.HEADROOM) for what the probe cannot see: allocator fragmentation over a long run.

    Every try is a batch of the dataset's worst case, its longest text with its longest audio, padded as
    no real batch exceeds. The update is the optimizer's own step, unscaled and always taken: a GradScaler
    skips fp16 steps with inf gradients (the first ones often are), which would leave the optimizer's
    state, 8-bit or not, unallocated and unmeasured. The probe trains; the recipe then starts fresh from
    the base weights at the size found.

    accelerate's find_executable_batch_size is not used: it only halves down from a start it is given, so
    it lands on a power of two below the largest size that fits, where this search bisects to it.
    """
    worst = worst_case_clip(recipe.train_clips)

    def fits(size: int) -> bool:
        try:
            with recipe.precision.autocast():
                loss = gpt_losses(recipe.gpt, recipe._batch([worst] * size, random.Random(0)))["loss"]
            loss.backward()
            recipe.optimizer.step()
            return True
        except Exception as err:  # noqa: BLE001 - only memory errors mean "does not fit"
            if not is_out_of_memory(err):
                raise
            return False
        finally:
            recipe.optimizer.zero_grad(set_to_none=True)
            if recipe.device == "cuda":
                torch.cuda.empty_cache()

    with memory_headroom(recipe.device):
        size = find_batch_size(fits, start=1, limit=min(limit, len(recipe.train_clips)))
    recipe.start_fresh(size)
    return size


def _prepare(workspace: Path, base, settings, resume, run_name, cache_root, world: World, device: str):
    """Check the dataset, set the recipe up (probing the batch size if asked), then open the run folder.

    Rank 0 picks (or makes) the run folder and writes its files; the other ranks are told its name.
    A resumed run computes on this machine's `device`, whatever its config.json recorded.
    """
    notes = []
    if resume:
        run_dir = world.share(find_run_to_resume(workspace, resume) if world.main else None)
        config = read_config(run_dir)
        notes = [note] if (note := on_this_machine(config, device)) else []
        base_dir, settings = Path(config.base_dir), config.train_settings
        run_vocab = run_dir / "vocab.json"
        vocab_json = run_vocab.read_text(encoding="utf-8") if run_vocab.is_file() else None
    else:
        settings = (settings or TrainSettings()).validate()
        base_dir = resolve_base_model(base) if world.main else None
        base_dir, vocab_json = world.share(base_dir), None
    info, problems = inspect_dataset(workspace, base_dir, settings, vocab_json)
    if problems:
        raise problems_error(problems)
    if not resume:
        config = new_config(workspace, base_dir, settings, info, device)
    recipe = Recipe(config, None, world=world, vocab_json=info.vocab_json)
    recipe.resume_notes = notes
    recipe.setup(cache_root=cache_root)
    if not resume:
        if settings.batch_size == "auto" and config.device == "cuda":
            size = probe_batch_size(recipe)
            if world.distributed and (smallest := world.smallest(size)) != size:
                recipe.start_fresh(smallest)
        run_dir = None
        if world.main:
            run_dir = new_run_dir(workspace, run_name)  # the folder appears only once the run can start
            write_run_files(run_dir, config, base, info, world.size)
        run_dir = world.share(run_dir)
    return run_dir, recipe, info


def train(
    workspace: str | Path,
    base: str | Path | None,
    settings: TrainSettings | None = None,
    *,
    resume: bool | str = False,
    run_name: str | None = None,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    cache_root: Path | None = None,
) -> RunResult:
    """Fine-tune `base` on WORKSPACE/dataset in a new run folder (or continue one with `resume`).

    Started by torchrun (WORLD_SIZE > 1), every rank calls this; they train one run together.
    """
    device = resolve_device("auto")  # the live machine's, for a new run and a resumed one alike
    world = join(device)
    try:
        run_dir, recipe, info = _prepare(Path(workspace), base, settings, resume, run_name, cache_root, world, device)
        config, settings = recipe.cfg, recipe.settings
        events = None
        if world.main:
            events = EventLog(run_dir, total_steps=settings.epochs * config.batches_per_epoch, epochs=settings.epochs,
                              batch_size=config.batch_size, patience=settings.early_stopping_patience,
                              progress=progress, stop_event=None if world.distributed else stop_event)
        recipe.run_dir, recipe.events = run_dir, events
        if world.distributed:
            recipe.stop_event = stop_event or stop_on_signals()
        with run_lock(run_dir) if world.main else nullcontext():
            status = _run(recipe, resume, info)
    finally:
        leave(world)
    best_path = run_dir / "best_model.pth"
    best = events.best_loss if events else math.inf
    return RunResult(run_dir, best_path if best_path.is_file() else None, best if math.isfinite(best) else None,
                     recipe.step, status == "early_stopped", status)


def _run(recipe: Recipe, resume, info) -> str:
    """Restore if resuming, train, and log the outcome as the run's last status event (rank 0)."""
    config, settings, events, world = recipe.cfg, recipe.settings, recipe.events, recipe.world
    emit = events.emit if events else lambda *args, **fields: None
    status, message = "failed", ""
    try:
        if resume:
            recipe.restore()
        for note in recipe.resume_notes:
            emit("warning", message=note)
        where = f"resumed at step {recipe.step}" if resume else "started"
        devices = f"{world.size} processes on {config.device}" if world.distributed else config.device
        emit("status", status="running", message=f"{where} in {recipe.run_dir} on {devices} "
             f"({config.precision}); padding {recipe.padding:.0%} of the audio in a batch; "
             f"DVAE codes: {recipe.cache.stats.hits} cached, {recipe.cache.stats.misses} computed; "
             f"{vocab_note(config)}")
        try:
            status = recipe.train()
            message = "training finished" if status == "finished" else (
                f"eval loss did not improve for {settings.early_stopping_patience} evaluations")
        except (StopRequested, KeyboardInterrupt) as stop:
            recipe.save_checkpoint()
            status, message = "stopped", f"stopped at step {recipe.step}; resume with --resume"
            if isinstance(stop, KeyboardInterrupt):
                raise
    except Exception as err:
        if is_out_of_memory(err):
            oom = out_of_memory_error(config.batch_size, config.grad_accum, info.max_audio_seconds)
            message = str(oom)
            raise oom from err
        message = message or f"{type(err).__name__}: {err}"
        raise
    finally:
        emit("status", status=status, message=message)
        if events:
            events.close()
        if recipe.feed:
            recipe.feed.close()
    return status
