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
from typing import Callable, Hashable, Iterator

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
    """One sentence to decode: its prefix embeddings [P, dim] and how to sample it. `key` names it in
    the reports (default: its place among the rows given, counting on through those added later)."""

    prefix: torch.Tensor
    max_codes: int
    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 10.0
    seed: int = 0
    key: Hashable = None


@dataclass
class Progress:
    """The rows in the batch after some steps, by key: codes [n] and latents [n, dim] so far (views,
    valid until the generator resumes), and whether each has finished (it then leaves the batch)."""

    codes: dict
    latents: dict
    finished: dict
    slots: int = 0  # cache slots in use: bounded by the rows in flight, however long the batch runs


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
    def generate(self, rows: list[Row], more: Callable[[], list[Row]] | None = None,
                 drop: Callable[[Hashable], bool] | None = None) -> Iterator[Progress]:
        """Progress every `sync_every` steps until every row has said stop or reached its cap.

        `more`, asked at each report, gives rows that join the running batch (continuous batching): a
        row's prefix is written into the cache slots just before the batch's next one, so the rows in
        flight go on undisturbed; one whose prefix is longer than the slots used so far waits a few steps.
        A row whose key `drop` names at a report is reported finished there and leaves the batch."""
        batch, waiting, code = _Batch(self), list(rows), None
        while True:
            hidden = batch.forward(code) if batch.size else None
            fits = [not batch.size or len(r.prefix) <= batch.used for r in waiting]
            if any(fits):
                hidden = batch.join([r for r, f in zip(waiting, fits) if f], hidden)
                waiting = [r for r, f in zip(waiting, fits) if not f]
            if not batch.size:
                return
            for i in range(self.sync_every):
                code = batch.sample(hidden)
                if i < self.sync_every - 1:
                    hidden = batch.forward(code)
            flags = batch.alive.tolist()  # the one host sync per `sync_every` tokens
            flags = [f and not (drop and drop(k)) for f, k in zip(flags, batch.keys)]
            yield batch.progress(flags)
            code = batch.keep(flags, code)  # finished rows leave the batch: a CPU pays for every row it computes
            waiting += more() if more else []

    @torch.inference_mode()
    def complete(self, rows: list[Row]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(codes, latents) of each row, in order, once all have finished."""
        done = {}
        for progress in self.generate(rows):
            done.update({k: (progress.codes[k].clone(), progress.latents[k].clone())
                         for k, f in progress.finished.items() if f})
        return [done[i if r.key is None else r.key] for i, r in enumerate(rows)]

    def _grow_cache(self, batch: int, length: int, keep: int, used: int):
        """The static cache, grown (never shrunk) to hold `batch` rows of `length` slots; the first `keep`
        rows' first `used` slots are carried over when it has to be reallocated."""
        n, d = len(self.layers), self.gpt.model_dim
        shape = (n, batch, self.heads, length, d // self.heads)
        old = self._cache
        if old is None or any(a < b for a, b in zip(old[0].shape, shape)):
            shape = tuple(max(a, b) for a, b in zip(old[0].shape, shape)) if old else shape
            self._cache = tuple(torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(2))
            for new, before in zip(self._cache, old or ()):
                new[:, :keep, :, :used] = before[:, :keep, :, :used]
        return self._cache

    def _forward(self, x, start: int, mask, rows: slice):
        """The GPT-2 blocks over x [B, T, dim] at cache slots start.. of cache rows `rows`, writing their
        keys/values to the cache."""
        (k_cache, v_cache), (B, T, d) = self._cache, x.shape
        end, hd = start + T, d // self.heads
        for i, block in enumerate(self.layers):
            h = block.ln_1(x)
            q, k, v = (block.attn.c_attn(h).view(B, T, 3, self.heads, hd)).permute(2, 0, 3, 1, 4)
            k_cache[i, rows, :, start:end], v_cache[i, rows, :, start:end] = k, v
            a = F.scaled_dot_product_attention(q, k_cache[i, rows, :, :end], v_cache[i, rows, :, :end], attn_mask=mask)
            x = x + block.attn.c_proj(a.transpose(1, 2).reshape(B, T, d))
            x = x + block.mlp(block.ln_2(x))
        return self.own["ln_f"](x)

    def _head_norm(self, hidden):
        return self.own["final_norm"](hidden)  # coqui's latent: its final norm over GPT-2's own

    def _logits(self, latent):
        return self.own["mel_head"](latent).float()


class _Batch:
    """The rows being decoded. Row i of every tensor here is row i of the KV cache; all rows write the
    same cache slot each step (`used` slots so far), and each attends only from its own first slot."""

    def __init__(self, decoder: GptDecoder):
        self.d, dev = decoder, decoder.device
        self.keys: list = []
        self.used, self.next_key, self.capacity = 0, 0, 0
        self.first = torch.zeros(0, dtype=torch.long, device=dev)  # each row's first cache slot
        self.steps = torch.zeros(0, dtype=torch.long, device=dev)  # codes sampled (alive or not)
        self.lengths = torch.zeros(0, dtype=torch.long, device=dev)  # codes said before stopping
        self.max_codes = torch.zeros(0, dtype=torch.long, device=dev)
        self.alive = torch.zeros(0, dtype=torch.bool, device=dev)
        self.seen = torch.zeros(0, decoder.gpt.num_audio_tokens, dtype=torch.bool, device=dev)
        self.codes = torch.zeros(0, 0, dtype=torch.long, device=dev)
        self.latents = torch.zeros(0, 0, decoder.gpt.model_dim, device=dev)
        self.sampling: _SamplingTensors | None = None

    @property
    def size(self) -> int:
        return len(self.keys)

    def join(self, rows: list[Row], hidden):
        """Prefills `rows` (left-padded to the longest) into the slots just before `used` (from slot 0 when
        the batch is empty) and returns the batch's hidden states with theirs appended."""
        d, dev, n, j = self.d, self.d.device, self.size, len(rows)
        P = max(len(r.prefix) for r in rows)
        if not n:
            self.used = P
        start = self.used - P
        firsts = torch.tensor([self.used - len(r.prefix) for r in rows], device=dev)
        self.capacity = max(self.capacity, self.used + max(r.max_codes for r in rows) + d.sync_every)
        d._grow_cache(n + j, self.capacity, n, self.used)
        x = torch.zeros(j, P, rows[0].prefix.shape[-1], device=dev, dtype=d.dtype)
        for b, r in enumerate(rows):
            x[b, P - len(r.prefix):] = r.prefix
        keys, queries = torch.arange(self.used, device=dev), torch.arange(start, self.used, device=dev)
        seen_by = (keys[None, :] >= firsts[:, None, None]) | (keys[None, :] == queries[:, None])  # padding sees itself
        mask = (seen_by & (keys[None, :] <= queries[:, None]))[:, None]  # [j, 1, P, used]
        new_hidden = d._forward(x, start, mask, slice(n, n + j))[:, -1]
        self._append(rows, firsts)
        return new_hidden if hidden is None else torch.cat([hidden, new_hidden])

    def _append(self, rows: list[Row], firsts: torch.Tensor) -> None:
        d, dev, j = self.d, self.d.device, len(rows)
        for r in rows:
            self.keys.append(self.next_key if r.key is None else r.key)
            self.next_key += 1
        zeros = torch.zeros(j, dtype=torch.long, device=dev)
        self.first, self.steps, self.lengths = torch.cat([self.first, firsts]), torch.cat([self.steps, zeros]), torch.cat([self.lengths, zeros])
        self.max_codes = torch.cat([self.max_codes, torch.tensor([r.max_codes for r in rows], device=dev)])
        self.alive = torch.cat([self.alive, torch.ones(j, dtype=torch.bool, device=dev)])
        seen = torch.zeros(j, self.seen.shape[1], dtype=torch.bool, device=dev)
        seen[:, [1, d.start]] = True  # coqui's generate penalises its placeholder input ids too
        self.seen = torch.cat([self.seen, seen])
        width = max(self.codes.shape[1], max(r.max_codes for r in rows) + d.sync_every)
        self.codes = torch.cat([F.pad(self.codes, (0, width - self.codes.shape[1])),
                                torch.zeros(j, width, dtype=torch.long, device=dev)])
        self.latents = torch.cat([F.pad(self.latents, (0, 0, 0, width - self.latents.shape[1])),
                                  torch.zeros(j, width, self.latents.shape[2], device=dev)])
        added = _SamplingTensors(rows, dev, d.gpt.num_audio_tokens)
        self.sampling = added if self.sampling is None else self.sampling.cat(added)

    def sample(self, hidden) -> torch.Tensor:
        """Each row's next code from its hidden state; its latent and code are recorded."""
        d = self.d
        latent = d._head_norm(hidden)
        code = sample(d._logits(latent), self.seen, self.sampling)
        rows = torch.arange(self.size, device=d.device)
        self.latents[rows, self.steps], self.codes[rows, self.steps] = latent.float(), code
        self.seen[rows, code] = True
        self.steps += 1
        self.lengths += self.alive
        self.alive &= (code != d.stop) & (self.lengths < self.max_codes)
        return code

    def forward(self, code) -> torch.Tensor:
        """The batch's next hidden states: each row's last code at its own audio position, in slot `used`."""
        d = self.d
        x = d.own["mel_embedding"](code) + d.mel_pos[self.steps.clamp(max=len(d.mel_pos) - 1)]  # past a row's end: unused
        keys = torch.arange(self.used + 1, device=d.device)
        mask = (keys[None, :] >= self.first[:, None])[:, None, None]
        hidden = d._forward(x[:, None], self.used, mask, slice(0, self.size))[:, -1]
        self.used += 1
        return hidden

    def progress(self, flags: list[bool]) -> Progress:
        lengths = self.lengths.tolist()
        return Progress({k: self.codes[i, :n] for i, (k, n) in enumerate(zip(self.keys, lengths))},
                        {k: self.latents[i, :n] for i, (k, n) in enumerate(zip(self.keys, lengths))},
                        {k: not f for k, f in zip(self.keys, flags)}, self.used)

    def keep(self, flags: list[bool], code: torch.Tensor) -> torch.Tensor:
        """Drops the finished rows (their cache rows too); returns the last codes of those kept."""
        if all(flags):
            return code
        at = [i for i, f in enumerate(flags) if f]
        keep = torch.tensor(at, dtype=torch.long, device=self.d.device)
        self.keys = [self.keys[i] for i in at]
        for name in ("first", "steps", "lengths", "max_codes", "alive", "seen", "codes", "latents"):
            setattr(self, name, getattr(self, name)[keep])
        self.sampling = self.sampling.take(keep)
        low = int(self.first.min()) if at else 0  # slots no row attends to any more
        for cache in self.d._cache:
            cache[:, :len(at), :, :self.used - low] = cache[:, keep, :, low:self.used]
        self.first, self.used = self.first - low, self.used - low  # a batch that never empties stays small
        return code[keep]


class _SamplingTensors:
    """Per-row sampling settings as tensors, and each row's own random generator (batch-independent audio)."""

    def __init__(self, rows: list[Row], device, vocab: int):
        def col(name, dtype=torch.float32):
            return torch.tensor([getattr(r, name) for r in rows], device=device, dtype=dtype)[:, None]

        self.temperature, self.top_p, self.penalty = col("temperature"), col("top_p"), col("repetition_penalty")
        self.top_k = col("top_k", torch.long)
        self.max_k = min(max(r.top_k for r in rows), vocab)
        self.generators = [torch.Generator(device).manual_seed(r.seed) for r in rows]

    def cat(self, other: "_SamplingTensors") -> "_SamplingTensors":
        """These rows' settings followed by `other`'s."""
        out = copy.copy(self)
        out.temperature, out.top_p, out.penalty, out.top_k = (torch.cat([a, b]) for a, b in zip(
            (self.temperature, self.top_p, self.penalty, self.top_k), (other.temperature, other.top_p, other.penalty, other.top_k)))
        out.max_k, out.generators = max(self.max_k, other.max_k), self.generators + other.generators
        return out

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
