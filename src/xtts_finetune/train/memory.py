"""Memory savers for small cards: activation checkpointing of the GPT's transformer blocks."""

from __future__ import annotations


def enable_activation_checkpointing(gpt) -> None:
    """Recompute each GPT-2 block in the backward pass instead of keeping its activations.

    coqui's GPT builds its HuggingFace GPT2Model with checkpointing off and never exposes the switch.
    """
    gpt.gpt.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    gpt.gpt.config.use_cache = False
