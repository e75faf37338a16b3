"""Memory savers for small cards: activation checkpointing of the GPT's blocks, and LoRA adapters (peft)."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from xtts_finetune.errors import UserError

LORA_TARGETS = ["c_attn", "c_proj", "c_fc"]  # GPT-2's attention (qkv, output) and MLP (in, out) projections
HEADROOM = 0.15  # share of GPU memory a batch-size probe leaves unused


@contextmanager
def memory_headroom(device: str, share: float = HEADROOM):
    """Within the block, the caching allocator refuses to hold more than 1 - `share` of the GPU's memory, so
    a batch size found in it leaves that share free for the run's later fragmentation. No-op off CUDA."""
    if not device.startswith("cuda"):
        yield
        return
    torch.cuda.set_per_process_memory_fraction(1 - share)
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)


def enable_activation_checkpointing(gpt) -> None:
    """Recompute each GPT-2 block in the backward pass instead of keeping its activations.

    coqui builds its HuggingFace GPT2Model with checkpointing off, and HuggingFace's own switch needs the
    token embedding coqui deletes; so torch's apply_activation_checkpointing wraps each block (its
    state-dict hooks keep the weights' names; `lora_layers` drops the wrapper from module names).
    """
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import apply_activation_checkpointing
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    gpt.gpt.config.use_cache = False
    apply_activation_checkpointing(gpt.gpt, check_fn=lambda module: isinstance(module, GPT2Block))
    gpt.activation_checkpointing = True


def add_lora(gpt, rank: int) -> None:
    """LoRA adapters of `rank` (alpha = rank) on every GPT-2 block's attention and MLP; all else frozen.

    Only the adapters train and have optimizer state; checkpoints hold the merged plain weights
    (`plain_state_dict`), so export and coqui's loader never see an adapter.
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise UserError("LoRA needs peft, which is not installed",
                        fix="pip install 'xtts-finetune[memory]' (or peft), or train without --lora") from None
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=LORA_TARGETS, fan_in_fan_out=True)
    inject_adapter_in_model(config, gpt.gpt)
    for name, param in gpt.named_parameters():
        param.requires_grad_("lora_" in name)
    gpt.lora_rank = rank


def lora_layers(gpt) -> dict:
    """{module name: peft LoRA layer} of a GPT with adapters (empty without)."""
    if not getattr(gpt, "lora_rank", 0):
        return {}
    from peft.tuners.lora import LoraLayer

    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import _CHECKPOINT_PREFIX

    # under activation checkpointing a block's modules are named through its wrapper; state dicts are not
    return {name.replace(_CHECKPOINT_PREFIX, ""): m for name, m in gpt.named_modules() if isinstance(m, LoraLayer)}


def reset_lora(gpt) -> None:
    """Adapters back to their initial state (B = 0: the base model's function), after a batch-size probe."""
    for layer in lora_layers(gpt).values():
        layer.reset_lora_parameters("default", True)


def adapter_state(gpt) -> dict[str, torch.Tensor]:
    """The adapters' weights alone: what a resumable LoRA state needs beside the frozen base."""
    return {k: v for k, v in gpt.state_dict().items() if "lora_" in k}


@torch.no_grad()
def plain_state_dict(gpt) -> dict[str, torch.Tensor]:
    """`gpt.state_dict()` under coqui's names, each adapter merged into its weight (W + B A x alpha/r)."""
    state = gpt.state_dict()
    for name, layer in lora_layers(gpt).items():
        state[f"{name}.weight"] = state.pop(f"{name}.base_layer.weight") + layer.get_delta_weight("default")
        state[f"{name}.bias"] = state.pop(f"{name}.base_layer.bias")
    return {k: v for k, v in state.items() if "lora_" not in k}
