"""XTTS's HiFi-GAN, prepared for inference and decoded block by block.

Coqui keeps the vocoder's weight norm as parametrizations, so every forward recomputes each of its
~76 conv weights from (g, v); here they are folded into plain weights once, at load (the same
weights, to float rounding). A sentence is decoded in blocks as its latents arrive: each block's
window is cut from the frames of all latents so far (the decoder's own interpolation) and reaches
`margin(stretch)` codes either side, just past the convolutions' receptive field (measured: 9.7
frames either side, 2.3 codes at speed 1), so the blocks join into the whole-sentence decode to float
error. Only those few overlap codes are decoded twice: HiFi-GAN's convolutions are not causal, so a
block's edges cannot be decoded without its neighbours.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch.nn.utils import parametrize

SEAM_SECONDS = 0.005  # crossfade where two blocks of one sentence meet
RECEPTIVE_FRAMES = 11  # frames either side of a vocoder output frame that it depends on (9.7), plus the seam


def fold_weight_norm(module: torch.nn.Module) -> int:
    """Replaces every weight-norm parametrization under `module` by the weight it computes; returns how many."""
    folded = 0
    for layer in module.modules():
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            folded += 1
    return folded


class BlockVocoder:
    """Latents -> audio with coqui's `HifiDecoder`, whole or in blocks."""

    def __init__(self, hifigan_decoder, device, dtype: torch.dtype = torch.float32):
        """`dtype` other than float32: a cast copy of the decoder runs (coqui's own stays as it is)."""
        self.decoder, self.device, self.dtype = hifigan_decoder, device, dtype
        fold_weight_norm(hifigan_decoder.waveform_decoder)
        self.waveform = hifigan_decoder.waveform_decoder
        if dtype != torch.float32:
            self.waveform = copy.deepcopy(self.waveform).to(dtype)
        d = hifigan_decoder
        self.samples_per_code = d.ar_mel_length_compression * d.output_sample_rate / d.input_sample_rate
        self.sample_rate = int(d.output_sample_rate)

    def margin(self, stretch: float) -> int:
        """Codes a block's window reaches past it on each side: the receptive field at this speed."""
        return math.ceil(RECEPTIVE_FRAMES / self._frames_per_code(stretch))

    def _frames_per_code(self, stretch: float) -> float:
        return self.samples_per_code * stretch / self.decoder.output_hop_length

    def frames(self, latents: torch.Tensor, stretch: float) -> torch.Tensor:
        """[1, dim, frames]: the decoder's own linear interpolation of latents [codes, dim]."""
        d = self.decoder
        frames = latents[None].transpose(1, 2)
        for scale in (stretch, d.ar_mel_length_compression / d.output_hop_length, d.output_sample_rate / d.input_sample_rate):
            if scale == 1.0:
                continue
            if math.floor(frames.shape[-1] * scale) < 1:  # one code sped up: coqui's interpolation would give none
                frames = torch.nn.functional.interpolate(frames, size=1, mode="linear")
            else:
                frames = torch.nn.functional.interpolate(frames, scale_factor=scale, mode="linear")
        return frames

    @torch.inference_mode()
    def block(self, latents: torch.Tensor, start: int, end: int, tail, embedding, stretch: float, last=False):
        """Samples of latents[start:end] (to the end if `last`), crossfaded from `tail`, and the next tail:
        the samples this window gives just past `end`, for the next block's seam."""
        frames, per_code, margin = self.frames(latents, stretch), self._frames_per_code(stretch), self.margin(stretch)

        def frame(code: int) -> int:
            return min(frames.shape[-1], max(0, round(code * per_code)))

        first, low = frame(start - margin), frame(start)
        high, stop = (frames.shape[-1],) * 2 if last else (frame(end), frame(end + margin))
        wav = self.waveform(frames[..., first:stop].to(self.dtype), g=embedding.to(self.device, self.dtype))
        wav = wav.squeeze().float().cpu().numpy()
        hop = len(wav) // max(1, stop - first)  # samples per frame
        block = np.array(wav[(low - first) * hop:(high - first) * hop], dtype=np.float32)
        if tail is not None:
            n = min(len(tail), len(block))
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
            block[:n] = tail[:n] * (1.0 - ramp) + block[:n] * ramp
        seam = (high - first) * hop
        return block, np.array(wav[seam:seam + int(SEAM_SECONDS * self.sample_rate)], dtype=np.float32)
