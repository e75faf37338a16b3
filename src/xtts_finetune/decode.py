"""Our decoding loop for XTTS's GPT, over coqui's own weights (gpt-fast's shape).

Coqui generates through Hugging Face's `generate` (a growing cache, host checks every token) and
then runs the whole GPT a second time to get the latents the vocoder needs. Here a batch of
sentences is prefilled once (left-padded, so every row writes the same cache slot per step), then
one step per token reads a preallocated KV cache; sampling happens on the device with each row's
own random generator, and the latents are the step's own hidden states. The host looks at the
state only every `sync_every` steps, and then drops the rows that have finished from the batch.
The logits pipeline is Hugging Face's (repetition penalty, temperature, top-k, top-p), so greedy
codes equal coqui's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

CODES_PER_CHAR = 4.0  # audio codes (21.5 a second) per text character: ~3x a normal pace of ~1.4
MIN_CODES = 22  # about a second, for the shortest texts


def code_cap(text: str, model_cap: int) -> int:
    """The most audio codes a sentence may take: proportional to its length, so a GPT that never says
    stop ends a short sentence soon instead of babbling to the model's limit (600 codes, 28 s)."""
    return int(min(model_cap, MIN_CODES + CODES_PER_CHAR * len(text.strip())))


@dataclass
class Row:
    """One sentence to decode: its prefix embeddings [P, dim] and how to sample it."""

    prefix: torch.Tensor
    max_codes: int
    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 10.0
    seed: int = 0


@dataclass
class Progress:
    """What the batch holds after some steps: `lengths[b]` codes (and latents) of row b so far."""

    codes: torch.Tensor  # [B, cap] long, valid up to lengths[b]
    latents: torch.Tensor  # [B, cap, dim] float32
    lengths: list[int]
    finished: list[bool]


class GptDecoder:
    """Generates audio codes and their latents with a coqui `GPT`'s weights.

    In the model's own dtype the weights are shared, not copied. In another (half precision on a GPU)
    the decoding modules are cast copies: casting coqui's modules in place would leave its own paths
    (`Xtts.inference`, conditioning, training) with mixed dtypes."""

    def __init__(self, gpt, dtype: torch.dtype | None = None, sync_every: int = 4):
        self.gpt = gpt
        self.device = gpt.mel_head.weight.device
        self.dtype = dtype or gpt.mel_head.weight.dtype
        self.sync_every = sync_every
        self.heads = gpt.heads
        self.stop = gpt.stop_audio_token
        self.start = gpt.start_audio_token
        self.model_cap = gpt.max_gen_mel_tokens
        own = torch.nn.ModuleDict(dict(blocks=gpt.gpt.h, ln_f=gpt.gpt.ln_f, final_norm=gpt.final_norm,
                                       mel_head=gpt.mel_head, mel_embedding=gpt.mel_embedding))
        if self.dtype != gpt.mel_head.weight.dtype:  # GPU: cast copies of the weights once (never autocast)
            own = copy.deepcopy(own).to(self.dtype)
        self.own = own
        self.layers = list(own["blocks"])
        self.mel_pos = gpt.mel_pos_embedding.emb.weight.to(self.dtype)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.inference_mode()
    def prefix(self, cond_latent: torch.Tensor, tokens: list[int]) -> torch.Tensor:
        """[P, dim]: conditioning latents, text with its start/stop tokens, and the start-audio token."""
        gpt = self.gpt
        text = torch.tensor([gpt.start_text_token, *tokens, gpt.stop_text_token], device=self.device)[None]
        text_emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
        start = self.own["mel_embedding"].weight[self.start] + self.mel_pos[0]
        cond = cond_latent.to(self.device, text_emb.dtype).reshape(-1, text_emb.shape[-1])
        return torch.cat([cond, text_emb[0], start[None].to(text_emb.dtype)]).to(self.dtype)

    @torch.inference_mode()
    def generate(self, rows: list[Row]) -> Iterator[Progress]:
        """Progress every `sync_every` steps until every row has said stop or reached its cap."""
        B, dev = len(rows), self.device
        lengths_p = [len(r.prefix) for r in rows]
        P, cap = max(lengths_p), max(r.max_codes for r in rows)
        pad = torch.tensor([P - n for n in lengths_p], device=dev)
        x = torch.zeros(B, P, rows[0].prefix.shape[-1], device=dev, dtype=self.dtype)
        for b, r in enumerate(rows):
            x[b, P - len(r.prefix):] = r.prefix
        k_cache, v_cache = self._kv(B, P + cap)
        keys = torch.arange(P + cap, device=dev)
        valid = keys[None, :] >= pad[:, None]  # [B, L]: a row never attends to its left padding
        causal = keys[None, :P] <= torch.arange(P, device=dev)[:, None]
        sampling = _SamplingTensors(rows, dev, self.gpt.num_audio_tokens)
        seen = torch.zeros(B, self.gpt.num_audio_tokens, dtype=torch.bool, device=dev)
        seen[:, [1, self.start]] = True  # coqui's generate penalises its placeholder input ids too
        max_codes = torch.tensor([r.max_codes for r in rows], device=dev)
        codes = torch.zeros(B, cap, dtype=torch.long, device=dev)
        latents = torch.zeros(B, cap, x.shape[-1], device=dev)
        lengths = torch.zeros(B, dtype=torch.long, device=dev)
        alive = torch.ones(B, dtype=torch.bool, device=dev)

        own = torch.eye(P, dtype=torch.bool, device=dev)  # a padding query sees itself: no all-masked row, no NaN
        mask = ((valid[:, None, :P] | own) & causal)[:, None]  # [B, 1, P, P]
        hidden = self._forward(x, 0, mask, k_cache, v_cache)[:, -1]
        live = dict(row=torch.arange(B, device=dev), alive=alive, seen=seen, max_codes=max_codes, valid=valid)
        finished = [False] * B
        for t in range(cap):
            latent = self._head_norm(hidden)
            code = sample(self._logits(latent), live["seen"], sampling)
            row, alive = live["row"], live["alive"]
            latents[row, t], codes[row, t] = latent.float(), code
            live["seen"][torch.arange(len(row), device=dev), code] = True
            lengths[row] += alive
            alive &= (code != self.stop) & (lengths[row] < live["max_codes"])
            last = t == cap - 1
            if (t + 1) % self.sync_every == 0 or last:
                flags = alive.tolist()  # the one host sync per `sync_every` tokens
                for b, flag in zip(row.tolist(), flags):
                    finished[b] = not flag
                yield Progress(codes, latents, lengths.tolist(), list(finished))
                if not any(flags):
                    return
                if not all(flags):  # finished rows leave the batch: a CPU pays for every row it computes
                    keep = torch.tensor([j for j, f in enumerate(flags) if f], device=dev)
                    live, code, sampling = {k: v[keep] for k, v in live.items()}, code[keep], sampling.take(keep)
                    for cache in (k_cache, v_cache):
                        cache[:, :len(keep), :, :P + t] = cache[:, keep, :, :P + t]
            if not last:
                x = self.own["mel_embedding"](code) + self.mel_pos[t + 1]
                mask = live["valid"][:, None, None, : P + t + 1]
                hidden = self._forward(x[:, None], P + t, mask, k_cache, v_cache)[:, -1]

    def _kv(self, batch: int, length: int):
        """The static cache, grown (never shrunk) to hold `batch` rows of `length` positions."""
        n, d = len(self.layers), self.gpt.model_dim
        shape = (n, batch, self.heads, length, d // self.heads)
        if self._cache is None or any(a < b for a, b in zip(self._cache[0].shape, shape)):
            self._cache = tuple(torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(2))
        return self._cache

    def _forward(self, x, start: int, mask, k_cache, v_cache):
        """The GPT-2 blocks over x [B, T, dim] at positions start.., writing their keys/values to the cache."""
        B, T, d = x.shape
        end, hd = start + T, d // self.heads
        for i, block in enumerate(self.layers):
            h = block.ln_1(x)
            q, k, v = (block.attn.c_attn(h).view(B, T, 3, self.heads, hd)).permute(2, 0, 3, 1, 4)
            k_cache[i, :B, :, start:end], v_cache[i, :B, :, start:end] = k, v
            a = F.scaled_dot_product_attention(q, k_cache[i, :B, :, :end], v_cache[i, :B, :, :end], attn_mask=mask)
            x = x + block.attn.c_proj(a.transpose(1, 2).reshape(B, T, d))
            x = x + block.mlp(block.ln_2(x))
        return self.own["ln_f"](x)

    def _head_norm(self, hidden):
        return self.own["final_norm"](hidden)  # coqui's latent: its final norm over GPT-2's own

    def _logits(self, latent):
        return self.own["mel_head"](latent).float()


class _SamplingTensors:
    """Per-row sampling settings as tensors, and each row's own random generator (batch-independent audio)."""

    def __init__(self, rows: list[Row], device, vocab: int):
        def col(name, dtype=torch.float32):
            return torch.tensor([getattr(r, name) for r in rows], device=device, dtype=dtype)[:, None]

        self.temperature, self.top_p, self.penalty = col("temperature"), col("top_p"), col("repetition_penalty")
        self.top_k = col("top_k", torch.long)
        self.max_k = min(max(r.top_k for r in rows), vocab)
        self.generators = [torch.Generator(device).manual_seed(r.seed) for r in rows]

    def take(self, keep: torch.Tensor) -> "_SamplingTensors":
        """The settings of rows `keep` only (each keeps its own generator, so its draws do not change)."""
        out = copy.copy(self)
        out.temperature, out.top_p, out.penalty, out.top_k = (t[keep] for t in (self.temperature, self.top_p, self.penalty, self.top_k))
        out.generators = [self.generators[j] for j in keep.tolist()]
        return out


def sample(logits: torch.Tensor, seen: torch.Tensor, s: _SamplingTensors) -> torch.Tensor:
    """Hugging Face's pipeline, vectorised over rows: repetition penalty, temperature, top-k, top-p,
    then a draw by the exponential trick (argmax of p / Exp(1) noise: no host sync)."""
    logits = torch.where(seen, torch.where(logits < 0, logits * s.penalty, logits / s.penalty), logits)
    logits = logits / s.temperature
    k = s.top_k.clamp(max=s.max_k)
    kth = logits.topk(s.max_k, dim=-1).values.gather(1, k - 1)
    logits = logits.masked_fill(logits < kth, float("-inf"))
    ordered, order = logits.sort(dim=-1)
    remove = ordered.softmax(-1).cumsum(-1) <= 1 - s.top_p
    remove[:, -1] = False
    logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    probs = logits.softmax(-1)
    noise = torch.stack([torch.empty_like(p).exponential_(generator=g) for p, g in zip(probs, s.generators)])
    return (probs / noise).argmax(-1)
