"""Which device and which precision a process computes in, decided in one place.

Training, speaking, the server and the UI's defaults all ask these functions, so they never disagree.
Precision follows the GPU's compute capability, not torch's `is_bf16_supported()`, which also says yes
where bf16 is only emulated (T4, V100) and so slower than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

from xtts_finetune.errors import UserError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Gpu:
    name: str
    capability: tuple[int, int]
    memory_gib: float


def gpu(device: str = "cuda") -> Gpu | None:
    """The GPU behind `device`, or None for a CPU (or a machine without CUDA)."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.device(device))
    return Gpu(props.name, (props.major, props.minor), props.total_memory / 2**30)


def native_bf16(capability: tuple[int, int]) -> bool:
    """bf16 arithmetic in hardware: Ampere (8.0) and later."""
    return capability >= (8, 0)


def fast_fp16(capability: tuple[int, int]) -> bool:
    """fp16 at least as fast as fp32: Volta (7.0) and later, and the P100 (6.0); other Pascal cards (6.1,
    GTX 10xx) run fp16 at 1/64 of their fp32 rate (NVIDIA's CUDA programming guide, arithmetic throughput)."""
    return capability >= (7, 0) or capability == (6, 0)


def resolve_device(requested: str = "auto") -> str:
    """`auto` is the first GPU where there is one, else the CPU; a GPU asked for on a machine without one fails."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {requested} was asked for, but this machine has no usable NVIDIA GPU",
                        fix="use --device auto (or cpu); `xtts-finetune doctor` says why no GPU is seen")
    return requested


def choose_precision(setting: str, capability: tuple[int, int] | None) -> str:
    """fp32, fp16 or bf16 for a `--precision` setting on a GPU of `capability` (None: a CPU).

    `auto` is bf16 where the GPU has it natively, fp16 where fp16 is fast, else fp32. A CPU computes in
    fp32: measured here, bf16 on a CPU (even with AMX) ends up slower end to end, and fp16 is emulated.
    """
    if setting not in PRECISIONS:
        raise UserError(f"unknown precision {setting!r}", fix=f"use one of: {', '.join(PRECISIONS)}")
    if capability is None:
        if setting in ("auto", "fp32"):
            return "fp32"
        raise UserError(f"{setting} is slower than fp32 on a CPU", fix="use --precision auto (fp32 on a CPU)")
    if setting == "auto":
        return "bf16" if native_bf16(capability) else "fp16" if fast_fp16(capability) else "fp32"
    if setting == "bf16" and not native_bf16(capability):
        raise UserError(f"this GPU (compute capability {capability[0]}.{capability[1]}) has no native bf16, "
                        "so it would be emulated and slow", fix="use --precision auto")
    return setting


def precision_for(setting: str, device: str) -> str:
    """choose_precision for the live machine's `device`."""
    found = gpu(device)
    return choose_precision(setting, found.capability if found else None)


def torch_dtype(precision: str):
    """The torch dtype of a chosen precision ("fp32", "fp16" or "bf16")."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
