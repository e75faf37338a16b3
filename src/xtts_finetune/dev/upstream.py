"""coqui's own XTTS fine-tuning recipe (GPTTrainer + Trainer), the reference for parity tests and benchmarks.

Not used by training: it configures upstream exactly as its XTTS v2 recipe does, on a workspace's dataset,
with a constant learning rate, so that tests and bench/train_speed.py can compare our recipe with it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, fields
from pathlib import Path

from xtts_finetune.basemodels import training_assets
from xtts_finetune.train.preflight import SPLITS
from xtts_finetune.train.settings import SAMPLE_RATE, TrainSettings

PATH_ARGS = {"tokenizer_file", "gpt_checkpoint", "clvp_checkpoint", "decoder_checkpoint", "xtts_checkpoint",
             "dvae_checkpoint", "mel_norm_file", "vocoder"}


@dataclass
class UpstreamRun:
    wall_s: float
    eval_loss: float
    steps: int
    output: Path


def gpt_trainer_config(base_dir: Path, dataset_dir: Path, language: str, settings: TrainSettings,
                       max_audio_seconds: float, output: Path):
    """A GPTTrainerConfig with the base model's shape, the recipe's arguments and `settings` (constant lr)."""
    import torch

    threads = torch.get_num_threads()
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsAudioConfig
    from TTS.tts.layers.xtts.trainer import gpt_trainer

    torch.set_num_threads(threads)  # importing coqui's dataset module sets it to 1
    base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    known = {f.name for f in fields(gpt_trainer.GPTArgs)} - PATH_ARGS
    assets = training_assets(base_dir)
    args = gpt_trainer.GPTArgs(
        **{k: v for k, v in base_config.get("model_args", {}).items() if k in known},
        max_conditioning_length=132300, min_conditioning_length=66150,
        max_wav_length=math.ceil(max_audio_seconds * SAMPLE_RATE) + 256, max_text_length=settings.max_text_length,
        tokenizer_file=str(base_dir / "vocab.json"), xtts_checkpoint=str(base_dir / "model.pth"),
        dvae_checkpoint=str(assets["dvae"]), mel_norm_file=str(assets["mel_stats"]),
    )
    audio = {k: v for k, v in base_config.get("audio", {}).items() if k in {f.name for f in fields(XttsAudioConfig)}}
    dataset = BaseDatasetConfig(formatter="coqui", dataset_name="workspace", path=str(dataset_dir), language=language,
                                meta_file_train=SPLITS["train"], meta_file_val=SPLITS["eval"])
    return gpt_trainer.GPTTrainerConfig(
        model_args=args, audio=XttsAudioConfig(**audio), datasets=[dataset], epochs=settings.epochs,
        batch_size=settings.batch_size, eval_batch_size=settings.batch_size, num_loader_workers=0,
        num_eval_loader_workers=0, optimizer="AdamW", optimizer_wd_only_on_weights=True, lr=settings.lr,
        grad_clip=settings.grad_clip,
        optimizer_params={"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": settings.weight_decay},
        lr_scheduler=None, save_step=10**9, save_n_checkpoints=1, save_best_after=0,  # best model per epoch, as upstream
        training_seed=settings.seed, dashboard_logger="tensorboard", run_eval=True,
        # coqui's Trainer autocasts in fp16 (with its scaler) or bf16 when asked; "auto" keeps its fp32 default
        mixed_precision=settings.precision in ("fp16", "bf16"),
        precision=settings.precision if settings.precision in ("fp16", "bf16") else "fp16",
        test_sentences=[], print_step=50, plot_step=10, log_model_step=10**9, print_eval=False,
        output_path=str(output), run_name="upstream",
        languages=sorted(set(base_config.get("languages", [])) | {language}),
    )


def train_upstream(workspace: Path, base_dir: Path, settings: TrainSettings, output: Path) -> UpstreamRun:
    """coqui's recipe on WORKSPACE/dataset (as its XTTS v2 recipe script runs it), timed from start to end."""
    import torch

    started, threads = time.perf_counter(), torch.get_num_threads()
    from trainer import Trainer, TrainerArgs
    from TTS.tts.datasets import load_tts_samples
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTTrainer

    from xtts_finetune.train.preflight import inspect_dataset

    torch.set_num_threads(threads)  # importing coqui's dataset module sets it to 1: a fair race uses all cores
    info, _ = inspect_dataset(workspace, base_dir, settings)
    config = gpt_trainer_config(base_dir, workspace / "dataset", info.language, settings, info.max_audio_seconds,
                                output)
    model = GPTTrainer(config)
    train_samples, eval_samples = load_tts_samples(config, eval_split=True)
    trainer = Trainer(TrainerArgs(), config, output_path=str(output), model=model, train_samples=train_samples,
                      eval_samples=eval_samples, parse_command_line_args=False)
    trainer.fit()
    return UpstreamRun(time.perf_counter() - started, trainer.keep_avg_eval.avg_values["avg_loss"],
                       trainer.total_steps_done, output)
