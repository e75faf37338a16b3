"""Wall time, samples/s and peak memory of a whole training run: coqui's recipe against ours, in one run.

    python bench/train_speed.py [--layers 12 --width 512 --epochs 6 --batch-size 2 --clips 13] [--out FILE]
    python bench/train_speed.py --devices N [...]   # scaling: ours on 1 device against ours on N (torchrun)

Both train the same random XTTS (a GPT of LAYERS x WIDTH, the release's DVAE shape; the full-size
architecture is --layers 30 --width 1024 on a GPU) on the same espeak-ng dataset (CLIPS train clips and
one eval clip), same epochs, batch and constant learning rate. Each runs in its own process from a cold
start (imports, model load, an empty code cache for ours), timed from outside as a user would feel it
(bytecode is compiled once beforehand, as an installed package has it);
peak memory is that process's max RSS on a CPU and max allocated VRAM on a GPU. Upstream is coqui's
GPTTrainer + Trainer as its XTTS v2 recipe sets them up (xtts_finetune.dev.upstream).

With --devices N the race is ours on one device against ours on N (GPUs, or CPU processes on the gloo
backend where there is no GPU), both with --batch-size per device: N devices take a global batch N times
larger and so N times fewer optimizer steps over the same epochs. The ratio is the scaling of wall time.
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

from common import model_arguments, random_model, save_report

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Hello there, my friend.",
    "The weather is lovely today, and the birds are singing in the garden behind the house.",
    "Speech synthesis is fun to build.",
    "Please read this sentence aloud, slowly and clearly, so that everyone in the room can follow it.",
    "A small model learns a little.",
    "Numbers like seven and eight are fine.",
    "She walked along the river for an hour before she noticed that the bridge had been closed all week.",
    "Good morning.",
    "The library opens at nine and closes at six on weekdays.",
    "When the train finally arrived, the platform was crowded with travellers and their heavy bags.",
    "Thank you very much.",
    "Every voice has its own colour, rhythm and warmth.",
    "It rained all night, and in the morning the streets were shining like glass under the lamps.",
    "This last sentence is kept apart for evaluation only.",
]


def one(kind: str, workspace: Path, base: Path, args) -> dict:
    """Run inside the child process: one recipe, then its own peak memory and final eval loss."""
    import resource

    import torch

    from xtts_finetune.train import TrainSettings, read_events, train

    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, scheduler="constant",
                             warmup_steps=0, early_stopping_patience=None, seed=1)
    if kind.startswith("devices-"):
        from xtts_finetune.train.distributed import launch

        run = launch(int(kind.split("-")[1]), workspace, base, settings, on_line=lambda line: None).run_dir
        eval_loss = [e for e in read_events(run) if e["type"] == "eval"][-1]["eval_loss"]
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest rank (CPU)
        return {"eval_loss": eval_loss, "peak_memory_mib": round(peak / 2**20, 1)}
    if kind == "upstream":
        from xtts_finetune.dev.upstream import train_upstream

        eval_loss = train_upstream(workspace, base, settings, workspace / "upstream").eval_loss
    else:
        run = train(workspace, base, settings).run_dir
        eval_loss = [e for e in read_events(run) if e["type"] == "eval"][-1]["eval_loss"]
    peak = (torch.cuda.max_memory_allocated() if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"eval_loss": eval_loss, "peak_memory_mib": round(peak / 2**20, 1)}


def prepare(root: Path, args) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from speech import make_training_set

    base = random_model(root / "base", args.layers, args.width)
    workspace = root / "ws"
    train = [SENTENCES[i % (len(SENTENCES) - 1)] for i in range(args.clips)]  # past 13 clips, sentences again
    make_training_set(workspace / "dataset", train + SENTENCES[-1:])
    (workspace / "dataset" / "lang.txt").write_text("en\n")
    return workspace, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_arguments(parser, clips=13)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--devices", type=int, default=0, help="compare ours on 1 device with ours on N instead")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.root / "ws", args.root / "base", args)))
        return

    root = Path(tempfile.mkdtemp(prefix="train-speed-"))
    prepare(root, args)
    # Neither side should pay for compiling bytecode (an installed package has it): import both once first.
    warm = "import trainer, TTS.tts.layers.xtts.trainer.gpt_trainer, xtts_finetune.train.recipe, torch.utils.tensorboard"
    subprocess.run([sys.executable, "-c", warm], check=True, capture_output=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    results = {}
    kinds = ("upstream", "ours") if args.devices < 1 else ("devices-1", f"devices-{args.devices}")
    for kind in kinds:
        env = {**os.environ, "XTTS_FINETUNE_HOME": str(root / f"home-{kind}")}  # a cold code cache
        started, cpu = time.perf_counter(), _children_cpu_s()
        done = subprocess.run([sys.executable, __file__, "--one", kind, "--root", str(root), *sys.argv[1:]],
                              capture_output=True, text=True, env=env)
        wall, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
        if done.returncode:
            sys.exit(f"{kind} failed:\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        samples = args.epochs * args.clips
        results[kind] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "samples_per_s": round(samples / wall, 3),
                         **result}
        print(f"{kind:<9} {wall:7.1f} s wall  {cpu:7.1f} s CPU  {samples / wall:6.2f} samples/s  "
              f"peak {result['peak_memory_mib']:8.1f} MiB  final eval loss {result['eval_loss']:.4f}", flush=True)
    first, second = (results[k] for k in kinds)
    ratio, cpu_ratio = first["wall_s"] / second["wall_s"], first["cpu_s"] / second["cpu_s"]
    print(f"{kinds[1]} takes {ratio:.2f}x less wall time and {cpu_ratio:.2f}x less CPU time than {kinds[0]}")
    report = {
        "bench": "train_speed", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": _device()},
        "settings": {k: getattr(args, k) for k in ("layers", "width", "epochs", "batch_size", "clips", "lr", "devices")},
        **results, "wall_time_ratio": round(ratio, 2),
        "cpu_time_ratio": round(cpu_ratio, 2), "load_average_after": os.getloadavg(),
    }
    save_report(report, args.out)


def _children_cpu_s() -> float:
    """CPU seconds of finished child processes: steadier than wall time on a machine others share."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _device() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"


if __name__ == "__main__":
    main()
