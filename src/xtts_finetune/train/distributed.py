"""Several processes, one run: torchrun's environment, DDP, and the launcher behind `train --devices N`.

Each process (rank) holds the whole model. An epoch's batch list is the same on every rank (`BucketSampler`
of (seed, epoch)); a round hands rank r the batch at position + r, so a round of N ranks consumes N batches
and a resumed run, on any number of devices, continues from the same position. DDP all-reduces (averages)
gradients at each optimizer step; the rounds in between run under `no_sync`. Only rank 0 writes files.

`train()` joins the process group itself when torchrun started it (RANK/WORLD_SIZE in the environment),
so `torchrun ... -m xtts_finetune train WORKSPACE` works on any number of nodes; `launch()` is the
one-machine form: torchrun (PyTorch's own launcher) with N processes, one per GPU, or on the gloo backend
with N CPU processes where there is no GPU. When a rank dies, torchrun stops the others and reports it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from xtts_finetune.errors import UserError
from xtts_finetune.train.runs import RunResult

# A collective waits this long for a peer (rank 0 alone may run a long --evaluate-every scoring);
# on one machine torchrun ends the job as soon as a rank dies, long before this.
TIMEOUT = timedelta(minutes=60)


@dataclass
class World:
    """This process's place among the ranks; World() is the single-process run (no collectives)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def wrap(self, model: torch.nn.Module, device: str) -> torch.nn.Module:
        """DDP around `model` (it broadcasts rank 0's weights, so every rank starts equal)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.local_rank] if device == "cuda" else None)

    def no_sync(self, model: torch.nn.Module, accumulating: bool):
        """Skip the all-reduce on batches that only accumulate gradients."""
        return model.no_sync() if self.distributed and accumulating else nullcontext()

    @property
    def _device(self) -> str:
        return "cuda" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def smallest(self, value: int) -> int:
        """The least `value` over the ranks (a batch size every rank's GPU fits)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], device=self._device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
        return int(tensor.item())

    def share(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def average_grads(self, model: torch.nn.Module) -> None:
        """Replace each rank's partial (unsynced) gradients by their mean, so one rank's copy is everyone's."""
        if not self.distributed:
            return
        for param in model.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= self.size

    @contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it may write or repair files), the others after it."""
        if self.distributed and not self.main:
            dist.barrier()
        yield
        if self.distributed and self.main:
            dist.barrier()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def join(device: str) -> World:
    """The World torchrun's environment describes, its process group joined (gloo on CPU, NCCL on GPUs)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device == "cuda":
        torch.cuda.set_device(world.local_rank)  # "cuda" now means this rank's GPU
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=TIMEOUT)
    return world


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def stop_on_signals() -> threading.Event:
    """SIGINT/SIGTERM (torchrun forwards them to every rank) ask for a stop; ranks agree on the round."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    return stop


def launch(devices: int, workspace: Path, base, settings, *, resume=False, run_name=None,
           stop_event: threading.Event | None = None, on_line=None):
    """Train on `devices` processes of this machine through torchrun; returns the run's RunResult.

    Rank 0 prints progress (to `on_line` when given, else to this process's output). `stop_event` sends
    torchrun SIGINT, which it forwards to every rank: they stop at the same round and save.
    """
    gpus = torch.cuda.device_count()
    if devices < 1 or (gpus and devices > gpus):
        raise UserError(f"--devices {devices} asks for more GPUs than the {gpus} this machine has" if gpus else
                        f"--devices {devices} is not a number of processes", fix=f"use --devices 1 to {gpus or 'N'}")
    with tempfile.TemporaryDirectory(prefix="xtts-finetune-launch-") as scratch:
        request = Path(scratch) / "request.json"
        request.write_text(json.dumps({
            "workspace": str(workspace), "base": None if base is None else str(base), "resume": resume,
            "settings": settings.to_dict() if settings else None, "run_name": run_name,
            "result": str(Path(scratch) / "result.json"),
        }), encoding="utf-8")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
               "-m", "xtts_finetune.train.rank", str(request)]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # as torchrun would
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=_forward_stop, args=(proc, stop_event), daemon=True).start()
        try:
            tail = _relay(proc, on_line or _echo)
        except KeyboardInterrupt:  # Ctrl-C: the ranks stop at the same batch and save; show them doing it
            proc.send_signal(signal.SIGINT)
            tail = _relay(proc, on_line or _echo)
        code = proc.wait()
        result = Path(scratch) / "result.json"
        if not result.is_file():
            raise UserError(f"training on {devices} devices failed (torchrun exit code {code}): {_failure(tail)}",
                            fix="fix the cause shown, then continue the run with: xtts-finetune train --resume")
        done = json.loads(result.read_text(encoding="utf-8"))
    return RunResult(Path(done["run_dir"]), Path(done["best_checkpoint"]) if done["best_checkpoint"] else None,
                     done["best_eval_loss"], done["steps"], done["stopped_early"], done["status"])


def _forward_stop(proc: subprocess.Popen, stop_event: threading.Event | None) -> None:
    while stop_event is not None and proc.poll() is None:
        if stop_event.wait(0.5):
            proc.send_signal(signal.SIGINT)
            return


def _relay(proc: subprocess.Popen, on_line) -> list[str]:
    """Hand on torchrun's output line by line; the last lines are kept for the failure report."""
    tail: list[str] = []
    for line in proc.stdout:
        on_line(line.rstrip("\n"))
        tail = (tail + [line.rstrip()])[-60:]
    return tail


def _echo(line: str) -> None:
    print(line, flush=True)


def _failure(lines: list[str]) -> str:
    """The rank that failed and why (a Python error's last line, or a signal), from torchrun's report.

    A rank killed by a signal is named first: torchrun's "root cause" prefers ranks that wrote an error
    file, so a peer's consequent "Connection reset by peer" would otherwise hide a SIGKILLed rank."""
    blocks = []
    for i, line in enumerate(lines):
        if match := re.match(r"\s*rank\s*:\s*(\d+)", line):
            end = next((j for j in range(i + 1, len(lines)) if re.match(r"\s*(\[\d+\]:|rank\s*:|[=-]{8})", lines[j])), len(lines))
            cause = [l.split(":", 1)[1].strip() for l in lines[i:end] if re.match(r"\s*(traceback|exitcode)\s*:", l)]
            rest = [l.strip() for l in lines[i:end] if l.strip()]
            blocks.append((match[1], rest[-1] if cause and cause[-1].startswith("Traceback") else (cause or ["?"])[-1]))
    killed = [(rank, why) for rank, why in blocks if why.startswith("Signal") and "SIGTERM" not in why]
    if killed or blocks:
        rank, why = (killed or blocks)[-1]
        return f"rank {rank} failed: {why}"
    return next((l.strip() for l in reversed(lines) if l.strip()), "no output")