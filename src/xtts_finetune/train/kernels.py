"""Faster kernels for coqui's GPT that compute the same function (fp32: equal within rounding).

GPT-2's MLP activation is HuggingFace's "gelu_new", written in Python as eight elementwise operations
(pow, mul, add, tanh, ...) over the 4x-wide hidden activations, each a pass over memory forward and again
in backward. PyTorch's GELU with approximate="tanh" is the same formula in one fused kernel. It uses no
random numbers, so dropout masks, and so training, are unchanged.
"""

from __future__ import annotations

from torch import nn


def fuse_gelu(gpt) -> None:
    """Swap every GPT-2 block's gelu_new for the fused tanh GELU (no weights involved)."""
    for block in gpt.gpt.h:
        block.mlp.act = nn.GELU(approximate="tanh")
