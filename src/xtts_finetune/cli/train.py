"""`xtts-finetune train` and `xtts-finetune export`: fine-tune on a workspace's dataset, then package it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from xtts_finetune.devices import PRECISIONS
from xtts_finetune.progress import ConsoleProgress
from xtts_finetune.utils import human_bytes


def _batch_size(value: str):
    return value if value == "auto" else int(value)


def register(sub) -> None:
    train = sub.add_parser(
        "train",
        help="fine-tune XTTS v2 on WORKSPACE/dataset",
        description="Fine-tune XTTS v2 on WORKSPACE/dataset into WORKSPACE/runs/RUN.",
    )
    train.add_argument("workspace", type=Path)
    _optimisation_options(train)
    _memory_and_device_options(train)
    _run_options(train)
    train.set_defaults(func=_train)

    export = sub.add_parser("export", help="write a ready model folder from a training run")
    export.add_argument("run", type=Path, help="the run folder, WORKSPACE/runs/RUN")
    export.add_argument("--name", required=True, help="folder name under WORKSPACE/models")
    export.add_argument("--checkpoint", default="best", help="best (lowest eval loss), last, recommended (by xtts-finetune evaluate RUN), or a .pth in the run")
    export.add_argument("--fp16", action="store_true", help="store weights in half precision (half the size)")
    export.set_defaults(func=_export)


def _optimisation_options(train) -> None:
    """What is trained on and how: base, epochs, batch, learning rate and schedule, limits, text and vocabulary."""
    train.add_argument(
        "--base", default=None, help="XTTS version (v2.0.3, main, ...) or a model folder (default v2.0.3)"
    )
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument(
        "--batch-size", type=_batch_size, default=2, help="clips per batch, or 'auto' (largest that fits the GPU)"
    )
    train.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step")
    train.add_argument("--lr", type=float, default=5e-6, help="peak learning rate")
    train.add_argument("--weight-decay", type=float, default=1e-2)
    train.add_argument("--warmup-steps", type=int, default=None, help="default: 10%% of the optimizer steps")
    train.add_argument("--scheduler", choices=["cosine", "linear", "constant"], default="cosine")
    train.add_argument(
        "--max-audio-seconds", type=float, default=None, help="default: the longest clip (at most 11.6 s)"
    )
    train.add_argument("--max-text-length", type=int, default=200, help="in tokens")
    train.add_argument("--save-every", type=int, default=1000, help="save a resumable checkpoint every N steps")
    train.add_argument("--keep-checkpoints", type=int, default=2)
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--vocab", choices=["auto", "base", "script", "phonemes"], default="auto",
                       help="how text reaches the tokenizer: base (XTTS's languages), script (extend the vocabulary "
                            "with the dataset's script), phonemes (G2P in Latin letters); auto: base for XTTS's 17, "
                            "else script")
    train.add_argument("--new-tokens", type=int, default=1000, help="--vocab script: BPE tokens to add")


def _run_options(train) -> None:
    """Early stopping, evaluation during training, the run's name, resume, and checks without training."""
    train.add_argument(
        "--patience", type=int, default=3, help="stop after N evals without a better eval loss (0: never)"
    )
    train.add_argument("--evaluate-every", type=int, default=0, metavar="N",
                       help="every N epochs, score the checkpoint's CER and speaker similarity (0: never)")
    train.add_argument("--evaluate-whisper-model", help="for --evaluate-every (default: the dataset's Whisper)")
    train.add_argument("--evaluate-speaker-model", help="for --evaluate-every (default microsoft/wavlm-base-plus-sv)")
    train.add_argument("--run-name", default=None, help="folder name under WORKSPACE/runs (default: run-DATE-TIME)")
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN",
        help="continue the last unfinished run (or RUN) from its latest checkpoint",
    )
    train.add_argument("--check", action="store_true", help="only validate the dataset against the base model")
    train.add_argument("--list", action="store_true", help="list the workspace's runs and exit")


def _memory_and_device_options(train) -> None:
    """Precision, memory savers, devices and data-loader workers."""
    train.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="auto: bf16 on GPUs that have it natively (Ampere and later), fp16 where fp16 is fast "
                       "(Volta, Turing, P100), else fp32 (a CPU, other Pascal cards); chosen again on resume")
    train.add_argument(
        "--activation-checkpointing", action="store_true",
        help="recompute GPT blocks in the backward pass: less GPU memory, about a third more compute",
    )
    train.add_argument(
        "--optimizer-8bit", action="store_true", help="AdamW with 8-bit state (bitsandbytes: the [memory] extra)"
    )
    train.add_argument(
        "--lora", type=int, default=0, metavar="RANK",
        help="train only LoRA adapters of this rank on the GPT's attention and MLP (peft: the [memory] extra); "
        "less memory; usually wants a higher --lr such as 1e-4; checkpoints and exports hold merged plain weights",
    )
    train.add_argument(
        "--devices", type=int, default=1, metavar="N",
        help="train on N GPUs of this machine (N CPU processes where there is none) through torchrun; "
        "--batch-size is per device, so the global batch is batch x grad-accum x N",
    )
    train.add_argument("--workers", type=int, default=0, metavar="N",
                       help="data-loader processes that make the training batches (text front end, conditioning "
                            "crop and mel) ahead of the GPU; 0: made in the training loop")


def _settings(args):
    from xtts_finetune.train import TrainSettings

    return TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        scheduler=args.scheduler,
        max_audio_seconds=args.max_audio_seconds,
        max_text_length=args.max_text_length,
        save_every_steps=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        seed=args.seed,
        early_stopping_patience=args.patience or None,
        precision=args.precision,
        activation_checkpointing=args.activation_checkpointing,
        optimizer_8bit=args.optimizer_8bit,
        lora_rank=args.lora,
        evaluate_every=args.evaluate_every,
        evaluate_whisper_model=args.evaluate_whisper_model,
        evaluate_speaker_model=args.evaluate_speaker_model,
        vocab=args.vocab,
        new_tokens=args.new_tokens,
        workers=args.workers,
    ).validate()


def _train(args) -> int:
    from xtts_finetune.basemodels import resolve_base_model
    from xtts_finetune.train import list_runs, preflight, train
    from xtts_finetune.train.preflight import problems_error

    if args.list:
        for run in list_runs(args.workspace):
            loss = f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "-"
            print(f"{run.name:<28} {run.status:<13} epochs {run.epochs_done:<4} best eval loss {loss}")
        return 0
    if args.check:
        problems = preflight(args.workspace, resolve_base_model(args.base), _settings(args))
        if problems:
            raise problems_error(problems)
        print(f"{args.workspace / 'dataset'} is ready for training")
        return 0
    if args.resume and args.base:
        print("note: --resume continues the run with the base model and settings it started with; --base is not used",
              file=sys.stderr)
    settings = None if args.resume else _settings(args)
    if args.devices != 1 and "WORLD_SIZE" not in os.environ:  # not yet under torchrun: start it
        from xtts_finetune.train.distributed import launch

        result = launch(args.devices, args.workspace, args.base, settings, resume=args.resume, run_name=args.run_name)
    else:
        result = train(args.workspace, args.base, settings, resume=args.resume, run_name=args.run_name,
                       progress=ConsoleProgress())
        if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
            return 0 if result.status in ("finished", "early_stopped") else 1
    loss = f"{result.best_eval_loss:.4f}" if result.best_eval_loss is not None else "none"
    size = sum(p.stat().st_size for p in result.run_dir.rglob("*") if p.is_file())
    print(f"run {result.status.replace('_', ' ')} after {result.steps} steps: {result.run_dir}")
    print(f"disk use: {human_bytes(size)}")
    print(f"best checkpoint: {result.best_checkpoint or 'none'} (eval loss {loss})")
    if result.best_checkpoint:
        print(f"next: xtts-finetune export {result.run_dir} --name NAME")
    return 0 if result.status in ("finished", "early_stopped") else 1


def _export(args) -> int:
    from xtts_finetune.export import export_model

    folder = export_model(args.run, args.name, checkpoint=args.checkpoint, fp16=args.fp16, progress=ConsoleProgress())
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"model: {folder} ({human_bytes(size)})")
    print(f"references: {', '.join(r['file'] for r in card['references'])}")
    for note in card["notes"]:
        print(f"note: {note}")
    return 0
