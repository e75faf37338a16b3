"""A tiny random WavLM speaker-verification model, in the layout of microsoft/wavlm-base-plus-sv.

Loaded by evaluate.speaker through the same code path as the real one; its embeddings are random
but deterministic, so similarities are valid numbers with no meaning.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch


def make_tiny_speaker(out_dir: str | Path, seed: int = 0) -> Path:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        tdnn_dim=(32, 32, 64), tdnn_kernel=(5, 3, 1), tdnn_dilation=(1, 2, 1), xvector_output_dim=16,
        num_buckets=32, max_bucket_distance=100,
    )
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
        WavLMForXVector(config).eval().save_pretrained(staging)
        if bars:
            transformers_logging.enable_progress_bar()
        Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                 return_attention_mask=True).save_pretrained(staging)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    return out
