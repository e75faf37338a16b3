"""Memory savers for small cards: activation checkpointing of the GPT's transformer blocks."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def enable_activation_checkpointing(gpt) -> None:
    """Recompute each GPT-2 block in the backward pass instead of keeping its activations.

    coqui builds its HuggingFace GPT2Model with checkpointing off, and HuggingFace's own switch needs the
    token embedding coqui deletes; so each block's forward is wrapped here (weights keep their names).
    """
    gpt.gpt.config.use_cache = False
    for block in gpt.gpt.h:
        block.forward = _checkpointed(block, block.forward)
    gpt.activation_checkpointing = True


def _checkpointed(block, forward):
    def run(*args, **kwargs):
        if block.training and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    return run
