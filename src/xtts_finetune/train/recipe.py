"""The fine-tuning recipe: coqui's GPTTrainer, configured from TrainSettings, run with resume and events.

Read top to bottom: check the dataset, size the run, build the GPTTrainer config from the base model's
own shape, then let coqui's Trainer train in WORKSPACE/runs/RUN while our callbacks write events,
track the best eval loss and stop early.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from unittest import mock

from xtts_finetune import __version__
from xtts_finetune.basemodels import base_model_version, resolve_base_model, training_assets
from xtts_finetune.languages import tokenizer_language
from xtts_finetune.progress import ProgressCallback
from xtts_finetune.train.events import EarlyStop, EventLog, StopRequested, read_best
from xtts_finetune.train.preflight import SPLITS, inspect_dataset, problems_error
from xtts_finetune.train.runs import find_run_to_resume, new_run_dir, read_run_settings, run_lock
from xtts_finetune.train.settings import (
    SAMPLE_RATE,
    TrainSettings,
    detect_precision,
    effective_grad_accum,
    find_batch_size,
    is_out_of_memory,
    lr_multiplier,
    optimizer_steps,
    out_of_memory_error,
)
from xtts_finetune.utils import atomic_write_text

logger = logging.getLogger(__name__)
DEFAULT_BATCH = 2
PATH_ARGS = {
    "tokenizer_file",
    "gpt_checkpoint",
    "clvp_checkpoint",
    "decoder_checkpoint",
    "xtts_checkpoint",
    "dvae_checkpoint",
    "mel_norm_file",
    "vocoder",
}


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path | None
    best_eval_loss: float | None
    steps: int
    stopped_early: bool
    status: str = "finished"


def _coqui():
    """Import coqui's trainer modules, undoing the torch.set_num_threads(1) its dataset module runs on import."""
    import torch

    threads = torch.get_num_threads()
    from trainer import Trainer, TrainerArgs
    from TTS.tts.layers.xtts.trainer import gpt_trainer

    torch.set_num_threads(threads)
    # coqui's console chatter follows our root log level (the CLI's -v); its log file keeps everything.
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
    for handler in logging.getLogger("trainer").handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.WARNING if quiet else logging.NOTSET)
    return Trainer, TrainerArgs, gpt_trainer


def _model_class():
    gpt_trainer = _coqui()[2]

    class FineTuneModel(gpt_trainer.GPTTrainer):
        """GPTTrainer plus the two things the recipe needs: a schedule sized to the run, and the step's losses."""

        last_losses: dict = {}

        def get_scheduler(self, optimizer):
            import torch

            s = self.config.lr_scheduler_params
            factor = partial(
                lr_multiplier,
                total=s["total_steps"],
                warmup=s["warmup_steps"],
                schedule=s["schedule"],
                min_ratio=s["min_lr_ratio"],
            )
            return torch.optim.lr_scheduler.LambdaLR(
                optimizer[0] if isinstance(optimizer, list) else optimizer, lambda step: factor(step)
            )

        def train_step(self, batch, criterion, optimizer_idx=None):
            outputs, losses = super().train_step(batch, criterion, optimizer_idx)
            self.last_losses = {k: float(v.detach()) for k, v in losses.items()}
            return outputs, losses

    return FineTuneModel


def build_config(
    base_dir: Path,
    dataset_dir: Path,
    language: str,
    settings: TrainSettings,
    *,
    batch_size: int,
    grad_accum: int,
    total_optimizer_steps: int,
    warmup: int,
    max_audio_seconds: float,
    precision: tuple[bool, str],
):
    """A GPTTrainerConfig with the base model's own architecture and every user setting applied."""
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsAudioConfig

    gpt_trainer = _coqui()[2]
    base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    known = {f.name for f in fields(gpt_trainer.GPTArgs)} - PATH_ARGS
    shape = {k: v for k, v in base_config.get("model_args", {}).items() if k in known}
    assets = training_assets(base_dir)
    args = gpt_trainer.GPTArgs(
        **shape,
        max_conditioning_length=132300,
        min_conditioning_length=66150,  # 3-6 s prompts, as in the recipe
        max_wav_length=math.ceil(max_audio_seconds * SAMPLE_RATE) + 256,
        max_text_length=settings.max_text_length,
        tokenizer_file=str(base_dir / "vocab.json"),
        xtts_checkpoint=str(base_dir / "model.pth"),
        dvae_checkpoint=str(assets["dvae"]),
        mel_norm_file=str(assets["mel_stats"]),
    )
    audio = {k: v for k, v in base_config.get("audio", {}).items() if k in {f.name for f in fields(XttsAudioConfig)}}
    dataset = BaseDatasetConfig(
        formatter="coqui",
        dataset_name="workspace",
        path=str(dataset_dir),
        language=language,
        meta_file_train=SPLITS["train"],
        meta_file_val=SPLITS["eval"],
    )
    mixed, precision_name = precision
    return gpt_trainer.GPTTrainerConfig(
        model_args=args,
        audio=XttsAudioConfig(**audio),
        datasets=[dataset],
        epochs=settings.epochs,
        batch_size=batch_size,
        eval_batch_size=batch_size,
        num_loader_workers=settings.num_workers,
        num_eval_loader_workers=settings.num_workers,
        optimizer="AdamW",
        optimizer_wd_only_on_weights=True,
        lr=settings.lr,
        grad_clip=settings.grad_clip,
        optimizer_params={"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": settings.weight_decay},
        lr_scheduler="LambdaLR",
        scheduler_after_epoch=False,  # built by FineTuneModel.get_scheduler from:
        lr_scheduler_params={
            "schedule": settings.scheduler,
            "warmup_steps": warmup,
            "total_steps": total_optimizer_steps,
            "min_lr_ratio": settings.min_lr_ratio,
            "grad_accum": grad_accum,
        },
        save_step=settings.save_every_steps,
        save_n_checkpoints=settings.keep_checkpoints,
        save_best_after=0,
        save_all_best=False,
        training_seed=settings.seed,
        mixed_precision=mixed,
        precision=precision_name if mixed else "fp16",
        dashboard_logger="tensorboard",
        run_eval=True,
        test_sentences=[],
        print_step=50,
        plot_step=10,
        log_model_step=10**9,
        print_eval=False,
        languages=sorted(set(base_config.get("languages", [])) | {language}),
    )


@contextmanager
def _trainer_writes_into(run_dir: Path):
    """coqui's Trainer always invents a dated folder name for a new run; ours is WORKSPACE/runs/RUN."""
    import trainer.trainer as coqui_trainer

    with (
        mock.patch.object(coqui_trainer, "get_experiment_folder_path", lambda root, name: run_dir),
        # it would also copy sys.argv[0] (our console script, or the web UI's) into the run folder
        mock.patch.object(coqui_trainer.Trainer, "save_training_script", lambda self: None),
    ):
        yield


def _close_trainer_log(run_dir: Path) -> None:
    """coqui adds a file handler per Trainer; long-lived processes (web UI) would keep them open forever."""
    trainer_logger = logging.getLogger("trainer")
    for handler in list(trainer_logger.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == run_dir.resolve():
            trainer_logger.removeHandler(handler)
            handler.close()


def probe_batch_size(model, config, samples, *, device: str = "cuda", limit: int = 64) -> int:
    """Largest batch of the longest clips that trains one step without running out of memory on `device`."""
    import torch

    longest = sorted(samples, key=lambda s: Path(s["audio_file"]).stat().st_size, reverse=True)
    model.to(device)
    model.xtts.gpt.train()

    def fits(batch_size: int) -> bool:
        config.batch_size = config.eval_batch_size = batch_size
        picked = (longest * batch_size)[:batch_size]
        try:
            batch = next(iter(model.get_data_loader(config, is_eval=True, samples=picked, verbose=False)))
            batch = model.format_batch_on_device(
                {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            )
            with torch.autocast(
                device,
                dtype=torch.bfloat16 if config.precision == "bf16" else torch.float16,
                enabled=config.mixed_precision,
            ):
                _, losses = model.train_step(batch, None)
            losses["loss"].backward()
            return True
        except Exception as err:  # noqa: BLE001 - only memory errors mean "does not fit"
            if not is_out_of_memory(err):
                raise
            return False
        finally:
            model.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.empty_cache()

    return find_batch_size(fits, start=1, limit=min(limit, len(samples)))


def _with_evaluation(callbacks: dict, run_dir: Path, settings: TrainSettings) -> dict:
    """Issue 18 hook (re-wire into the new engine): save and evaluate a checkpoint every N epochs."""
    from xtts_finetune.evaluate import during_training
    from xtts_finetune.train.runs import checkpoints

    def on_epoch_end(trainer) -> None:
        if settings.evaluate_every and (trainer.epochs_done + 1) % settings.evaluate_every == 0:
            trainer.save_checkpoint()
            during_training(run_dir, checkpoints(run_dir)[-1], trainer.epochs_done + 1, trainer.total_steps_done,
                            whisper_model=settings.evaluate_whisper_model, speaker_model=settings.evaluate_speaker_model)
        end_epoch(trainer)

    end_epoch, callbacks["on_epoch_end"] = callbacks["on_epoch_end"], on_epoch_end
    return callbacks


def train(
    workspace: str | Path,
    base: str | Path | None,
    settings: TrainSettings | None = None,
    *,
    resume: bool | str = False,
    run_name: str | None = None,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
) -> RunResult:
    """Fine-tune `base` on WORKSPACE/dataset in a new run folder (or continue one with `resume`)."""
    import torch

    workspace = Path(workspace)
    if resume:
        run_dir = find_run_to_resume(workspace, resume)
        saved = read_run_settings(run_dir)
        settings, base_dir = TrainSettings.from_dict(saved["settings"]), Path(saved["base"]["path"])
    else:
        settings = (settings or TrainSettings()).validate()
        base_dir = resolve_base_model(base)
    info, problems = inspect_dataset(workspace, base_dir, settings)
    if problems:
        raise problems_error(problems)

    Trainer, TrainerArgs, _ = _coqui()
    precision = detect_precision(settings.precision)
    batch_size = DEFAULT_BATCH if settings.batch_size == "auto" else settings.batch_size
    if resume:
        batch_size = saved["resolved"]["batch_size"]
    num_train = len(info.train)
    batch_size = min(batch_size, num_train)

    def plan(batch):
        accum = effective_grad_accum(settings, num_train, batch)
        total = optimizer_steps(num_train, batch, accum, settings.epochs)
        warmup = settings.warmup_steps if settings.warmup_steps is not None else max(1, round(0.1 * total))
        return accum, total, min(warmup, total)

    accum, total_optimizer, warmup = plan(batch_size)
    config = build_config(
        base_dir,
        Path(info.path),
        tokenizer_language(info.language),
        settings,
        batch_size=batch_size,
        grad_accum=accum,
        total_optimizer_steps=total_optimizer,
        warmup=warmup,
        max_audio_seconds=info.max_audio_seconds,
        precision=precision,
    )
    model = _model_class()(config)
    from TTS.tts.datasets import load_tts_samples

    train_samples, eval_samples = load_tts_samples(config, eval_split=True)
    if settings.batch_size == "auto" and torch.cuda.is_available() and not resume:
        batch_size = probe_batch_size(model, config, train_samples)
        accum, total_optimizer, warmup = plan(batch_size)
        config.batch_size = config.eval_batch_size = batch_size
        config.lr_scheduler_params.update(total_steps=total_optimizer, warmup_steps=warmup, grad_accum=accum)
    total_steps = settings.epochs * math.ceil(num_train / batch_size)  # batches, coqui's step unit

    if not resume:  # the folder appears only once the run can start
        run_dir = new_run_dir(workspace, run_name)
        base_version = base_model_version(base_dir)
        atomic_write_text(
            run_dir / "settings.json",
            json.dumps(
                {
                    "settings": settings.to_dict(),
                    "base": {"spec": str(base or base_version), "path": str(base_dir), "version": base_version},
                    "dataset": info.to_dict(),
                    "resolved": {
                        "batch_size": batch_size,
                        "grad_accum": accum,
                        "warmup_steps": warmup,
                        "optimizer_steps": total_optimizer,
                        "steps": total_steps,
                        "max_audio_seconds": info.max_audio_seconds,
                        "mixed_precision": precision[0],
                        "precision": precision[1],
                    },
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "tool_version": __version__,
                },
                indent=2,
            ),
        )

    config.output_path, config.run_name = str(run_dir), run_dir.name
    events = EventLog(
        run_dir,
        total_steps=total_steps,
        epochs=settings.epochs,
        batch_size=batch_size,
        patience=settings.early_stopping_patience,
        progress=progress,
        stop_event=stop_event,
    )
    status, message = "failed", ""
    with run_lock(run_dir):
        try:
            args = TrainerArgs(continue_path=str(run_dir) if resume else "", grad_accum_steps=accum)
            with _trainer_writes_into(run_dir):
                trainer = Trainer(
                    args,
                    config,
                    output_path=str(run_dir),
                    model=model,
                    train_samples=train_samples,
                    eval_samples=eval_samples,
                    parse_command_line_args=False,
                    callbacks=_with_evaluation(events.callbacks(), run_dir, settings),
                )
            events.emit(
                "status",
                status="running",
                message=f"{'resumed at step ' + str(trainer.total_steps_done) if resume else 'started'} in {run_dir}",
            )
            try:
                trainer._fit()  # fit() would turn every error into sys.exit(1) and may delete the run folder
                status, message = "finished", "training finished"
            except (StopRequested, KeyboardInterrupt) as stop:
                trainer.save_checkpoint()
                status, message = "stopped", f"stopped at step {trainer.total_steps_done}; resume with --resume"
                if isinstance(stop, KeyboardInterrupt):
                    raise
            except EarlyStop:
                status, message = (
                    "early_stopped",
                    f"eval loss did not improve for {settings.early_stopping_patience} evaluations",
                )
            finally:
                trainer.dashboard_logger.finish()
        except Exception as err:
            if is_out_of_memory(err):
                oom = out_of_memory_error(batch_size, accum, info.max_audio_seconds)
                message = str(oom)
                raise oom from err
            message = f"{type(err).__name__}: {err}"
            raise
        finally:
            events.emit("status", status=status, message=message)
            _close_trainer_log(run_dir)

    best = read_best(run_dir)
    best_path = run_dir / "best_model.pth"
    return RunResult(
        run_dir,
        best_path if best_path.is_file() else None,
        best.get("eval_loss"),
        trainer.total_steps_done,
        status == "early_stopped",
        status,
    )
