"""GPU self-check: every CUDA path of training, speaking and serving once, with the figures issues 14 and 16 ask for.

    .venv/bin/python bench/gpu_check.py --out bench/results/gpu_check_H100.json          # one GPU, < 10 min
    .venv/bin/python bench/gpu_check.py --device cpu --size tiny --out /tmp/check.json    # the logic, on a CPU

A random XTTS of the release's shape (--size full: a GPT of 30 x 1024; mid 12 x 512; tiny 2 x 64) and an
espeak-ng dataset are built first. Then, each path recorded with pass / fail (and its error) / skipped, the
check going on after a failure:
- training: fp32 at batch 2 and bf16 at batch 32 (each against coqui's recipe in the same precision and
  batch: samples/s, peak memory, MFU), fp16 with the grad scaler, --activation-checkpointing (batch 2 in
  6 GiB?), --optimizer-8bit, --lora 16, resume on this device of a run started on the CPU, --devices 1
  through torchrun, --evaluate-every 1 in the training process;
- speaking: fp32, fp16 and bf16 (greedy codes, SNR of each against fp32, RTF), ours against coqui's
  `Xtts.inference` (RTF at batch 1, time to first audio) and the server under 16 concurrent requests against
  coqui saying the same sentences one after another (aggregate real time).
Training and speaking run in one child process each, so a path that kills its process (a device-side
assert poisons the CUDA context) costs the other group nothing. Without CUDA the paths that need it say
"skipped: needs CUDA"; the fp16/bf16 training paths then still run their batch in fp32 as a stand-in.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from pathlib import Path

from common import save_report

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"full": (30, 1024), "mid": (12, 512), "tiny": (2, 64)}  # GPT layers x width; heads of 64 channels
# Dense peaks (TFLOP/s) by GPU name, from NVIDIA's data sheets (SXM parts): bf16/fp16 on tensor cores; fp32 on
# the FP32 cores, since nothing here enables TF32 for matrix products.
PEAK_TFLOPS = {"H200": {"bf16": 989, "fp16": 989, "fp32": 67}, "H100": {"bf16": 989, "fp16": 989, "fp32": 67},
               "A100": {"bf16": 312, "fp16": 312, "fp32": 19.5}, "L4": {"bf16": 121, "fp16": 121, "fp32": 30.3},
               "A10": {"bf16": 125, "fp16": 125, "fp32": 31.2}}
CODES_PER_SECOND = 22050 / 1024  # the DVAE's code rate
CONDITIONING_LATENTS = 32
SIX_GIB = 6 * 2**30


class Skip(Exception):
    """A path this machine cannot run; `figures` are what its CPU stand-in measured."""

    def __init__(self, reason: str, figures: dict | None = None):
        super().__init__(reason)
        self.figures = figures or {}


class Check:
    """What every path shares: the workspace, the base model, the device, and the results file."""

    def __init__(self, args, root: Path):
        import torch

        self.args, self.root, self.torch = args, root, torch
        self.cuda = torch.cuda.is_available()
        self.workspace, self.base = root / "ws", root / "base"
        self.results = root / f"{args.group}.jsonl"
        self.quick = args.size == "tiny"  # a check of the logic: fewer sentences and repeats

    def run(self, name: str, measure) -> None:
        """One path: its figures, or its error, appended to the results as it ends."""
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        started, record = time.perf_counter(), {"path": name}
        try:
            record.update(status="pass", **(measure() or {}))
        except Skip as skip:
            record.update(status=f"skipped: {skip}", **skip.figures)
        except Exception as err:  # a failed path is recorded and the check goes on
            record.update(status="fail", error=f"{type(err).__name__}: {err}",
                          traceback=traceback.format_exc(limit=-4)[-2000:])
        record["seconds"] = round(time.perf_counter() - started, 2)
        print(f"{record['status'][:40]:<40} {name} ({record['seconds']} s)", file=sys.stderr, flush=True)
        with open(self.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def peak_mib(self) -> float | None:
        """This path's peak allocated VRAM; on a CPU, the process's max RSS so far (not per path)."""
        if self.cuda:
            return round(self.torch.cuda.max_memory_allocated() / 2**20, 1)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def needs(self, precision: str) -> None:
        from xtts_finetune.devices import choose_precision, gpu

        found = gpu("cuda")
        if found is None:
            raise Skip("needs CUDA")
        choose_precision(precision, found.capability)  # a UserError (no native bf16) fails the path


# ---- training ----------------------------------------------------------------------------------------------

def settings(check: Check, **overrides):
    from xtts_finetune.train import TrainSettings

    fixed = dict(epochs=check.args.epochs, batch_size=2, lr=5e-6, scheduler="constant", warmup_steps=0,
                 early_stopping_patience=None, seed=1, save_every_steps=10**6)
    return TrainSettings(**{**fixed, **overrides})


def tokens_per_sample(workspace: Path) -> float:
    """GPT positions per training clip (conditioning latents + text characters + audio codes): characters
    stand in for BPE tokens, so MFU from it is a slight overestimate."""
    from xtts_finetune.train.preflight import dataset_clips
    import soundfile as sf

    clips = [c for c in dataset_clips(workspace / "dataset") if c.split == "train"]
    total = sum(CONDITIONING_LATENTS + len(c.text) + 2 + sf.info(workspace / "dataset" / c.audio_file).duration
                * CODES_PER_SECOND + 2 for c in clips)
    return total / len(clips)


def mfu(check: Check, samples_per_s: float | None, precision: str, trainable: int) -> float | None:
    """Model FLOPs utilisation: 6 x trainable parameters x positions per second, over the GPU's peak."""
    if not check.cuda or not samples_per_s:
        return None
    name = check.torch.cuda.get_device_name()
    peak = next((p[precision] for key, p in PEAK_TFLOPS.items() if key in name), None)
    if peak is None:
        return None
    return round(6 * trainable * tokens_per_sample(check.workspace) * samples_per_s / (peak * 1e12), 4)


def ours(check: Check, name: str, resume: str | bool = False, **overrides) -> dict:
    """One run of our recipe: whole-command and steady samples/s, peak memory, final eval loss, MFU."""
    from xtts_finetune.train import read_events, train

    chosen = settings(check, **overrides)
    started, since = time.perf_counter(), time.time()
    result = train(check.workspace, check.base, chosen, run_name=None if resume else name, resume=resume)
    wall = time.perf_counter() - started
    steps = [e for e in read_events(result.run_dir) if e["type"] == "step" and e["time"] >= since]
    config = json.loads((result.run_dir / "config.json").read_text(encoding="utf-8"))
    samples = len(steps) * config.get("batch_size", 2) if resume else check.args.epochs * check.args.clips
    steady = steps[-1]["samples_per_s"] if len(steps) > 1 else None  # a process's first step has no rate yet
    return {"wall_s": round(wall, 2), "samples_per_s": round(samples / wall, 3), "steady_samples_per_s": steady,
            "peak_memory_mib": check.peak_mib(), "eval_loss": result.best_eval_loss, "steps": result.steps,
            "precision": config.get("precision"), "device": config.get("device"),
            "mfu": mfu(check, steady, config.get("precision", "fp32"), _trainable(result.run_dir, config)),
            "run": result.run_dir.name}


def _trainable(run_dir: Path, config: dict) -> int:
    """Parameters the run trained: the GPT's (LoRA runs report adapters in their events, not counted here)."""
    import torch

    state = torch.load(run_dir / "best_model.pth", map_location="cpu", weights_only=True)
    state = state.get("model", state)
    return sum(v.numel() for k, v in state.items() if v.is_floating_point() and "lora" not in k)


def coqui(check: Check, label: str, **overrides) -> dict:
    """coqui's own recipe (GPTTrainer + Trainer) on the same data, precision and batch."""
    from xtts_finetune.dev.upstream import train_upstream

    chosen = settings(check, **overrides)
    run = train_upstream(check.workspace, check.base, chosen, check.root / f"upstream-{label}")
    samples = check.args.epochs * check.args.clips
    return {"wall_s": round(run.wall_s, 2), "samples_per_s": round(samples / run.wall_s, 3),
            "peak_memory_mib": check.peak_mib(), "eval_loss": run.eval_loss, "steps": run.steps}


def against_coqui(check: Check, name: str, precision: str, batch: int) -> dict:
    batch = min(batch, check.args.clips)
    mine = ours(check, name, precision=precision, batch_size=batch)
    gc.collect()
    if check.cuda:
        check.torch.cuda.empty_cache()
        check.torch.cuda.reset_peak_memory_stats()
    theirs = coqui(check, name, precision=precision, batch_size=batch)
    return {"batch_size": batch, "ours": mine, "coqui": theirs,
            "samples_per_s_ours_over_coqui": round(mine["samples_per_s"] / theirs["samples_per_s"], 3),
            "peak_memory_ours_over_coqui": round(mine["peak_memory_mib"] / theirs["peak_memory_mib"], 3)}


def on_gpu_or_stand_in(check: Check, precision: str, measure):
    """`measure(precision)` where the GPU computes in it; without CUDA, `measure("fp32")` as a stand-in, skipped."""
    try:
        check.needs(precision)
    except Skip as skip:
        raise Skip(str(skip), {"cpu_stand_in_fp32": measure("fp32")}) from None
    return measure(precision)


def fp16_with_scaler(check: Check) -> dict:
    """fp16 saves its grad scaler's state with every resumable checkpoint (one a step here)."""
    import torch

    figures = on_gpu_or_stand_in(check, "fp16", lambda p: ours(check, f"fp16-scaler-{p}", precision=p, save_every_steps=1))
    states = sorted((check.workspace / "runs" / figures["run"]).glob("state_*.pt"), key=lambda s: int(s.stem[6:]))
    if not states:
        raise AssertionError("the fp16 run saved no resumable state")
    scaler = torch.load(states[-1], map_location="cpu", weights_only=True).get("scaler") or {}
    if not scaler.get("scale"):
        raise AssertionError(f"the fp16 run saved no grad-scaler state in {states[-1].name}")
    return {**figures, "scaler_scale": float(scaler["scale"])}


def checkpointing(check: Check) -> dict:
    figures = ours(check, "activation-checkpointing", activation_checkpointing=True)
    if check.cuda:
        figures["batch_2_fits_6_gib"] = figures["peak_memory_mib"] * 2**20 <= SIX_GIB
    return figures


def start_on_the_cpu(check: Check) -> None:
    """Run in a process that sees no GPU: a run of two epochs, stopped (and saved) after its first step."""
    import threading

    from xtts_finetune.train import train

    stop = threading.Event()

    def after_the_first_step(progress) -> None:
        if progress.extra.get("event", {}).get("type") == "step":
            stop.set()

    train(check.workspace, check.base, settings(check, epochs=2, save_every_steps=1), run_name="cpu-started",
          progress=after_the_first_step, stop_event=stop)


def resume_cpu_started(check: Check) -> dict:
    """The run started on the CPU, resumed here: it must go on, on this device."""
    if check.cuda:
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        command = [sys.executable, __file__, "--group", "cpu-start", *child_arguments(check.args, check.root)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode:
            raise RuntimeError(f"the CPU start failed: {done.stderr[-1500:]}")
    else:  # this process sees no GPU already
        start_on_the_cpu(check)
    figures = ours(check, "cpu-started", resume="cpu-started", epochs=2, save_every_steps=1)
    if check.cuda and not check.torch.cuda.max_memory_allocated():
        raise AssertionError("the run started on the CPU and resumed here never used the GPU")
    return figures


def torchrun_one_device(check: Check) -> dict:
    from xtts_finetune.train import read_events
    from xtts_finetune.train.distributed import launch

    started = time.perf_counter()
    run = launch(1, check.workspace, check.base, settings(check), run_name="torchrun-1", on_line=lambda line: None)
    wall = time.perf_counter() - started
    steps = [e for e in read_events(run.run_dir) if e["type"] == "step"]
    return {"wall_s": round(wall, 2), "steps": run.steps, "eval_loss": run.best_eval_loss,
            "steady_samples_per_s": steps[-1]["samples_per_s"] if steps else None}


def evaluate_every(check: Check) -> dict:
    from xtts_finetune.evaluate import read_training_evaluations

    # A checkpoint each step: at the last epoch the light evaluation scores the newest weights+state pair, which the
    # run's final (weights-only) save is not; with no pair saved yet it fails (IndexError in recipe._light_evaluation).
    figures = ours(check, "evaluate-every", evaluate_every=1, save_every_steps=1,
                   evaluate_whisper_model=str(check.root / "tiny" / "whisper"),
                   evaluate_speaker_model=str(check.root / "tiny" / "speaker"))
    records = read_training_evaluations(check.workspace / "runs" / figures["run"])
    failed = [r["error"] for r in records if "error" in r]
    if not records or failed:
        raise AssertionError(f"the evaluation during training did not score: {failed or 'no record'}")
    return {**figures, "evaluations": len(records), "cer": records[-1].get("cer")}


def train_group(check: Check) -> None:
    check.run("train fp32 batch 2 (against coqui)", lambda: against_coqui(check, "fp32-b2", "fp32", 2))
    check.run("train bf16 batch 32 (against coqui)",
              lambda: on_gpu_or_stand_in(check, "bf16", lambda p: against_coqui(check, f"{p}-b32", p, 32)))
    check.run("train fp16 with the grad scaler", lambda: fp16_with_scaler(check))
    check.run("train --activation-checkpointing", lambda: checkpointing(check))
    check.run("train --optimizer-8bit", lambda: ours(check, "optimizer-8bit", optimizer_8bit=True))
    check.run("train --lora 16", lambda: ours(check, "lora-16", lora_rank=16))
    check.run("resume of a CPU-started run", lambda: resume_cpu_started(check))
    check.run("train --devices 1 (torchrun)", lambda: torchrun_one_device(check))
    check.run("train --evaluate-every 1 (same process)", lambda: evaluate_every(check))


# ---- speaking and serving ----------------------------------------------------------------------------------

def snr_db(reference, other) -> float:
    import numpy as np

    n = min(len(reference), len(other))
    noise = float(np.sum((reference[:n] - other[:n]) ** 2))
    return round(10 * np.log10(float(np.sum(reference[:n] ** 2)) / noise), 1) if noise else float("inf")


def speak_in(check: Check, folder: Path, precision: str, reference=None) -> dict:
    """Greedy codes (top_k 1) of two sentences in `precision`: RTF, and SNR against fp32's audio."""
    from speak_speed import SENTENCES

    from xtts_finetune.synthesis import Synthesizer

    if precision != "fp32":
        check.needs(precision)
    synth = Synthesizer(folder, device="cuda" if check.cuda else "cpu", latents_cache_dir=check.root / "latents",
                        precision=precision)
    synth.speak(SENTENCES[0], "en", "Tiny Speaker", top_k=1, seed=0)  # warm-up
    started = time.perf_counter()
    audio = [synth.speak(text, "en", "Tiny Speaker", top_k=1, seed=0) for text in SENTENCES[:1 if check.quick else 2]]
    wall = time.perf_counter() - started
    seconds = sum(len(a) for a in audio) / 24000
    figures = {"rtf": round(wall / seconds, 4), "audio_s": round(seconds, 2), "peak_memory_mib": check.peak_mib()}
    if reference is not None:
        figures["snr_db_vs_fp32"] = [snr_db(r, a) for r, a in zip(reference, audio)]
        figures["same_length_as_fp32"] = [len(r) == len(a) for r, a in zip(reference, audio)]
    figures["_audio"] = audio
    return figures


def against_coqui_speaking(check: Check, folder: Path) -> dict:
    """speak_speed's measurements at the default precision: RTF at batch 1 and first audio, ours and coqui's."""
    from speak_speed import SENTENCES, Sides, first_audio, sequential

    from xtts_finetune.synthesis import Synthesizer, _load_model

    device = "cuda" if check.cuda else "cpu"
    sides = Sides(Synthesizer(folder, device=device, latents_cache_dir=check.root / "latents"),
                  _load_model(folder, device)[1])
    sides.ours(["Hello there."], 0), sides.coqui(["Hello there."], 0)  # warm-up, both sides
    seq = sequential(sides, 1, SENTENCES[:1] if check.quick else SENTENCES)
    tfa = first_audio(sides, 1 if check.quick else 3)
    check.sides = sides  # the server measurement reuses both engines
    return {"ours_dtype": str(sides.synth.dtype), "rtf_batch_1": {"ours": seq["ours"]["rtf"], "coqui": seq["coqui"]["rtf"]},
            "rtf_coqui_over_ours": round(seq["coqui"]["rtf"] / seq["ours"]["rtf"], 3),
            "first_audio_s": tfa, "first_audio_coqui_over_ours": round(tfa["coqui_s"] / tfa["ours_s"], 3),
            "peak_memory_mib": check.peak_mib()}


def server_16(check: Check) -> dict:
    from speak_speed import throughput

    level = throughput(check.sides, [16])["16"]
    return {"clients": 16, "ours_aggregate_real_time": round(level["ours_audio_s_per_s"], 3),
            "coqui_sequential_real_time": round(level["coqui_sequential_audio_s_per_s"], 3),
            "ours_over_coqui": round(level["ratio"], 3), "peak_memory_mib": check.peak_mib()}


def speak_group(check: Check) -> None:
    from common import random_model

    layers, width = SIZES[check.args.size]
    # the benches' random model, its stop token made less likely so that sentences are short but not empty
    folder = random_model(Path(tempfile.mkdtemp()) / "xtts", layers, width, stop_bias=2.0 if check.quick else 1.5)
    spoken = {}

    def precision_path(precision: str):
        figures = speak_in(check, folder, precision, spoken.get("fp32"))
        spoken[precision] = figures.pop("_audio")
        return figures

    for precision in ("fp32", "fp16", "bf16"):
        check.run(f"speak {precision} (greedy, SNR against fp32)", lambda p=precision: precision_path(p))
    check.run("speak against coqui (RTF at batch 1, first audio)", lambda: against_coqui_speaking(check, folder))
    check.run("server under 16 concurrent requests", lambda: server_16(check))


# ---- the two processes -------------------------------------------------------------------------------------

def prepare(args, root: Path) -> None:
    """The random base model of --size, the espeak-ng workspace, and tiny Whisper/speaker models for evaluation."""
    from train_speed import prepare as prepare_training

    from xtts_finetune.dev.tiny_speaker import make_tiny_speaker
    from xtts_finetune.dev.tiny_whisper import make_tiny_whisper

    layers, width = SIZES[args.size]
    prepare_training(root, argparse.Namespace(layers=layers, width=width, clips=args.clips))
    make_tiny_whisper(root / "tiny" / "whisper")
    make_tiny_speaker(root / "tiny" / "speaker")


def child(args) -> None:
    check = Check(args, args.root)
    {"train": train_group, "speak": speak_group, "cpu-start": start_on_the_cpu}[args.group](check)


def child_arguments(args, root: Path) -> list[str]:
    return ["--root", str(root), "--size", args.size, "--clips", str(args.clips), "--epochs", str(args.epochs),
            "--device", args.device]


def run_group(args, root: Path, group: str) -> list[dict]:
    """One group in its own process; what it recorded, and its death if it died."""
    env = {**os.environ, "XTTS_FINETUNE_HOME": str(root / "home"),  # caches of its own, removed with it
           **({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})}
    command = [sys.executable, __file__, "--group", group, *child_arguments(args, root)]
    process, tail = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env), deque(maxlen=40)
    for line in process.stderr:  # shown as it comes, its end kept for the report
        sys.stderr.write(line)
        tail.append(line)
    returncode = process.wait()
    results = root / f"{group}.jsonl"
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()] if results.exists() else []
    if returncode:
        records.append({"path": f"{group} process", "status": "fail",
                        "error": f"exit status {returncode}: {''.join(tail)[-2000:]}"})
    return records


def machine(device: str) -> dict:
    import torch

    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if device != "cpu" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--clips", type=int, default=64, help="training clips (batch 32 needs 32)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the JSON here (it is printed either way)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (models, runs) to look into")
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.group:
        child(args)
        return
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    prepare(args, root)
    paths = [record for group in ("train", "speak") for record in run_group(args, root, group)]
    report = {"bench": "gpu_check", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": "python " + " ".join(sys.argv), "machine": machine(args.device),
              "model": {"size": args.size, "gpt_layers": SIZES[args.size][0], "gpt_width": SIZES[args.size][1]},
              "settings": {"clips": args.clips, "epochs": args.epochs, "device": args.device},
              "summary": {r["path"]: r["status"] for r in paths}, "paths": paths,
              "passed": all(r["status"] != "fail" for r in paths), "wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(report["summary"], indent=1))
    save_report(report, args.out)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
