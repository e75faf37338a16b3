"""Memory of each training option on one model: baseline, activation checkpointing, LoRA, 8-bit AdamW.

    python bench/train_memory.py [--layers 12 --width 512 --clips 4 --batch-size 2 --lora 16] [--out FILE]

Each option trains one epoch of the same random XTTS (bench/train_speed.py's model and espeak-ng
dataset; DVAE codes cached beforehand so no option pays for them) in its own process, and reports:
parameters, trainable parameters, gradient and optimizer-state bytes (exact, from the tensors), and
the process's resident memory after setup and at its peak (max RSS on a CPU, max allocated VRAM on a
GPU). On a CPU, RSS also holds the allocator's cache, so the exact tensor figures are the steadier ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import model_arguments, save_report

OPTIONS = {"baseline": {}, "activation_checkpointing": {"activation_checkpointing": True},
           "lora": {"lora_rank": None}, "optimizer_8bit": {"optimizer_8bit": True}}


def _mib(n: float) -> float:
    return round(n / 2**20, 1)


def one(option: str, workspace: Path, base: Path, args) -> dict:
    """In the child process: set up and train one epoch with `option`, then measure."""
    import resource

    import psutil
    import torch

    from xtts_finetune.train import TrainSettings
    from xtts_finetune.train.config import new_config
    from xtts_finetune.train.data import Round
    from xtts_finetune.train.preflight import inspect_dataset
    from xtts_finetune.train.recipe import Recipe

    extra = {k: (args.lora if v is None else v) for k, v in OPTIONS[option].items()}
    settings = TrainSettings(epochs=1, batch_size=args.batch_size, lr=5e-6, early_stopping_patience=None, **extra)
    info, _ = inspect_dataset(workspace, base, settings)
    run_dir = workspace / "runs" / option
    run_dir.mkdir(parents=True)
    recipe = Recipe(new_config(workspace, base, settings, info), run_dir)
    recipe.setup()
    after_setup = psutil.Process().memory_info().rss
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    recipe.model = recipe.gpt
    recipe._forward_backward(Round(recipe.sampler.epoch(0)[0], index=0))  # gradients as they stand before a step
    grads = sum(p.grad.nbytes for p in recipe.gpt.parameters() if p.grad is not None)
    recipe._optimizer_step()
    recipe.train()
    state = sum(t.nbytes for s in recipe.optimizer.state.values() for t in s.values() if torch.is_tensor(t))
    peak = torch.cuda.max_memory_allocated() if gpu else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    params = list(recipe.gpt.parameters())
    return {"parameters_m": round(sum(p.numel() for p in params) / 1e6, 2),
            "trainable_m": round(sum(p.numel() for p in params if p.requires_grad) / 1e6, 2),
            "gradients_mib": _mib(grads), "optimizer_state_mib": _mib(state),
            "rss_after_setup_mib": _mib(after_setup), "peak_mib": _mib(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_arguments(parser, clips=4)
    parser.add_argument("--lora", type=int, default=16, help="LoRA rank")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.root / "ws", args.root / "base", args)))
        return

    from train_speed import prepare

    root = Path(tempfile.mkdtemp(prefix="train-memory-"))
    workspace, base = prepare(root, args)
    env = {**os.environ, "XTTS_FINETUNE_HOME": str(root / "home")}  # one code cache, filled before the races
    _fill_code_cache(workspace, base, root / "home")
    results = {}
    for option in OPTIONS:
        done = subprocess.run([sys.executable, __file__, "--one", option, "--root", str(root), *sys.argv[1:]],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"{option} failed:\n{done.stderr[-4000:]}")
        results[option] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{option:<25} {results[option]}", flush=True)
    report = {"bench": "train_memory", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
              "settings": {k: getattr(args, k) for k in ("layers", "width", "clips", "batch_size", "lora")},
              **results, "load_average_after": os.getloadavg()}
    save_report(report, args.out)


def _fill_code_cache(workspace: Path, base: Path, home: Path) -> None:
    """Every clip's DVAE codes, once, so that no option's peak holds the DVAE."""
    from xtts_finetune.basemodels import training_assets
    from xtts_finetune.train.data import CodeCache, dvae_codes
    from xtts_finetune.train.model import base_config
    from xtts_finetune.train.settings import SAMPLE_RATE

    from TTS.tts.models.xtts import load_audio

    assets = training_assets(base)
    cache = CodeCache(assets["dvae"], assets["mel_stats"], SAMPLE_RATE, home / "train-cache",
                      codes=dvae_codes(base_config(base).model_args))
    for wav in sorted((workspace / "dataset" / "wavs").glob("*.wav")):
        cache.codes(wav, load_audio(str(wav), SAMPLE_RATE))


if __name__ == "__main__":
    main()
