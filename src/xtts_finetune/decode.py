"""Our decoding loop for XTTS's GPT, over coqui's own weights, in gpt-fast's shape.

Coqui generates through Hugging Face's `generate` (a growing cache, host checks every token) and
then runs the whole GPT a second time to get the latents the vocoder needs. Here the pieces are
gpt-fast's: a static `KVCache`, `prefill` for the sentences that join, `decode_one_token` for one step
of every row, and `sample` on the device with each row's own random generator; the latents are the
step's own hidden states. A `RowTable` says which cache row holds which sentence and how far it has
gone. The host looks at the state only every `sync_every` steps: finished rows then leave, and the
sentences `more` gives join the batch in flight (continuous batching). The logits pipeline is
Hugging Face's (repetition penalty, temperature, top-k, top-p), so greedy codes equal coqui's.
"""

from __future__ import annotations

import copy
import math
import numbers
import unicodedata
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator

import torch
import torch.nn.functional as F

from xtts_finetune.errors import UserError

# Audio codes (21.5 a second) a character may take: ~3x a normal pace. A letter is ~1.4 codes at a normal
# pace (15 a second); a hanzi is a syllable or more (~5.4: 20 hanzi take ~107 codes), a hangul block a
# syllable (~4), a kana a mora (~3). Keyed by the start of the character's Unicode name.
CODES_PER_CHAR = 4.0
CODES_BY_SCRIPT = {"CJK UNIFIED IDEOGRAPH": 16.0, "CJK COMPATIBILITY IDEOGRAPH": 16.0, "HANGUL SYLLABLE": 12.0,
                   "HIRAGANA": 9.0, "KATAKANA": 9.0}
MIN_CODES = 22  # about a second, for the shortest texts
PLACEHOLDER_TOKEN = 1  # coqui's generate feeds this as its fake input ids, so its repetition penalty counts it


def code_cap(text: str, model_cap: int) -> int:
    """The most audio codes a sentence may take: proportional to what it says, so a GPT that never says
    stop ends a short sentence soon instead of babbling to the model's limit (from its config: 600 codes,
    28 s, for the release)."""
    return int(min(model_cap, MIN_CODES + sum(_codes_per_char(c) for c in text.strip())))


def _codes_per_char(char: str) -> float:
    name = unicodedata.name(char, "")
    return next((codes for script, codes in CODES_BY_SCRIPT.items() if name.startswith(script)), CODES_PER_CHAR)


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

    def __post_init__(self):
        """Settings the sampler cannot use are refused here: on a GPU a top_k of 0 would index -1, a
        device-side assert that leaves the process unable to compute."""
        whole, real = numbers.Integral, numbers.Real
        checks = {"max_codes": (self.max_codes, whole, 1, math.inf), "top_k": (self.top_k, whole, 1, math.inf),
                  "temperature": (self.temperature, real, 1e-6, math.inf), "top_p": (self.top_p, real, 1e-6, 1.0),
                  "repetition_penalty": (self.repetition_penalty, real, 1e-6, math.inf)}
        for name, (value, kind, low, high) in checks.items():
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                raise UserError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}",
                                fix=f"choose a {name} in range (Synthesizer.prepare checks every setting)")
        if self.prefix.ndim != 2 or not len(self.prefix):
            raise UserError(f"a row's prefix must be [positions, dim], not {tuple(self.prefix.shape)}",
                            fix="build it with GptDecoder.prefix")


@dataclass
class Progress:
    """The rows in the batch after some steps, by key: codes [n] and latents [n, dim] so far (views,
    valid until the generator resumes), and whether each has finished (it then leaves the batch)."""

    codes: dict
    latents: dict
    finished: dict
    slots: int = 0  # cache slots in use: bounded by the rows in flight, however long the batch runs


def grown(tensor: torch.Tensor, need: tuple[int, ...]) -> torch.Tensor:
    """`tensor` if it is at least `need` in every dimension, else a larger copy holding its contents, each
    short dimension at least doubled: a batch that keeps growing reallocates a few times, not at every join."""
    if all(have >= want for have, want in zip(tensor.shape, need)):
        return tensor
    shape = tuple(have if have >= want else max(want, 2 * have) for have, want in zip(tensor.shape, need))
    bigger = tensor.new_zeros(shape)
    bigger[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return bigger


class KVCache:
    """Every layer's keys and values, [layers, rows, heads, slots, head_dim] (gpt-fast's cache, one tensor
    for all layers). It lives as long as its decoder and only grows, geometrically, so a server's batches
    soon all fit the one allocation. Row b of the batch is cache row b, its prefix in slots 0.."""

    def __init__(self, layers: int, heads: int, head_dim: int, device, dtype: torch.dtype):
        shape = (layers, 0, heads, 0, head_dim)
        self.k, self.v = (torch.zeros(shape, device=device, dtype=dtype) for _ in range(2))
        self.allocations = 0

    def reserve(self, rows: int, slots: int) -> None:
        """Room for `rows` rows of `slots` slots each, keeping what is there."""
        need = (self.k.shape[0], rows, self.k.shape[2], slots, self.k.shape[4])
        k = grown(self.k, need)
        if k is not self.k:
            self.k, self.v, self.allocations = k, grown(self.v, need), self.allocations + 1

    def write_prefix(self, layer: int, rows: slice, k: torch.Tensor, v: torch.Tensor) -> None:
        """Prefill: k, v [rows, heads, P, head_dim] into slots 0..P of cache rows `rows`."""
        self.k[layer, rows, :, : k.shape[2]], self.v[layer, rows, :, : v.shape[2]] = k, v

    def write_step(self, layer: int, positions: torch.Tensor, span: int, k, v) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: row b's k, v [rows, heads, 1, head_dim] into its slot positions[b]; returns the first
        rows' keys and values up to slot `span` for attention."""
        rows = torch.arange(len(positions), device=positions.device)
        self.k[layer][rows, :, positions], self.v[layer][rows, :, positions] = k[:, :, 0], v[:, :, 0]
        return self.k[layer, : len(positions), :, :span], self.v[layer, : len(positions), :, :span]

    def move_row(self, source: int, target: int, slots: int) -> None:
        """Cache row `source`'s first `slots` slots into row `target` (a row that left is replaced by the last)."""
        for cache in (self.k, self.v):
            cache[:, target, :, :slots] = cache[:, source, :, :slots]


def step_mask(positions: torch.Tensor, span: int) -> torch.Tensor:
    """[rows, 1, 1, span]: row b's new token sees its own slots 0..positions[b] and none after (those hold
    its prefix's padding or a former row's leftovers)."""
    return (torch.arange(span, device=positions.device) <= positions[:, None])[:, None, None]


class RowTable:
    """The rows in the batch. Row b's state is row b of every column here and of the KV cache; a row that
    leaves is replaced by the last one (one row copied, not the batch), so the rows in use stay 0..size."""

    FLOATS = ("temperature", "top_p", "penalty")
    LONGS = ("position", "steps", "lengths", "max_codes", "top_k", "last_code")

    def __init__(self, device, vocab: int, dim: int):
        self.device = device
        self.keys: list = []
        self.spans: list[int] = []  # host copy of each row's next slot (so no sync to size the attention)
        self.top_ks: list[int] = []
        self.generators: list[torch.Generator] = []
        self.columns = {name: torch.zeros(0, device=device) for name in self.FLOATS}
        self.columns.update({name: torch.zeros(0, dtype=torch.long, device=device) for name in self.LONGS})
        self.columns.update(alive=torch.zeros(0, dtype=torch.bool, device=device),
                            seen=torch.zeros(0, vocab, dtype=torch.bool, device=device),
                            codes=torch.zeros(0, 0, dtype=torch.long, device=device),
                            latents=torch.zeros(0, 0, dim, device=device))

    @property
    def size(self) -> int:
        return len(self.keys)

    def __getattr__(self, name: str) -> torch.Tensor:
        """A column, for the rows in use only."""
        columns = self.__dict__.get("columns", {})
        if name not in columns:
            raise AttributeError(name)
        return columns[name][: self.size]

    def add(self, rows: list[Row], keys: list, prefix_lengths: list[int], start_token: int, width: int) -> None:
        """Rows after those in use, each with `width` places for its codes and latents."""
        n, j = self.size, len(rows)
        for name, column in self.columns.items():
            need = (n + j, width) if name in ("codes", "latents") else (n + j,)
            self.columns[name] = grown(column, need + column.shape[len(need):])
        new = slice(n, n + j)
        for column in self.columns.values():
            column[new] = 0
        values = dict(temperature=[r.temperature for r in rows], top_p=[r.top_p for r in rows],
                      penalty=[r.repetition_penalty for r in rows], position=prefix_lengths,
                      max_codes=[r.max_codes for r in rows], top_k=[r.top_k for r in rows])
        for name, column in values.items():
            self.columns[name][new] = torch.tensor(column, device=self.device, dtype=self.columns[name].dtype)
        self.columns["alive"][new] = True
        self.columns["seen"][new, [PLACEHOLDER_TOKEN, start_token]] = True  # as coqui's generate counts them
        self.keys += keys
        self.spans += prefix_lengths
        self.top_ks += [r.top_k for r in rows]
        self.generators += [torch.Generator(self.device).manual_seed(r.seed) for r in rows]

    def remove(self, leaving: list[int], cache: KVCache) -> None:
        """Drops rows `leaving`: each is replaced by the last row (columns and cache), highest first."""
        for b in sorted(leaving, reverse=True):
            last = self.size - 1
            if b != last:
                for column in self.columns.values():
                    column[b] = column[last]
                cache.move_row(last, b, self.spans[last])
                for host in (self.keys, self.spans, self.top_ks, self.generators):
                    host[b] = host[last]
            for host in (self.keys, self.spans, self.top_ks, self.generators):
                del host[last]

    def progress(self, finished: list[bool]) -> Progress:
        lengths = self.lengths.tolist()
        return Progress({k: self.codes[b, :n] for b, (k, n) in enumerate(zip(self.keys, lengths))},
                        {k: self.latents[b, :n] for b, (k, n) in enumerate(zip(self.keys, lengths))},
                        dict(zip(self.keys, finished)), max(self.spans, default=0))


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
        self.cache = KVCache(len(self.layers), self.heads, gpt.model_dim // self.heads, self.device, self.dtype)

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

        `more`, asked at each report, gives rows that join the running batch (continuous batching): each is
        prefilled into a cache row of its own, so the rows in flight go on undisturbed. A row whose key
        `drop` names at a report is reported finished there and leaves the batch."""
        table = RowTable(self.device, self.gpt.num_audio_tokens, self.gpt.model_dim)
        waiting, next_key = list(rows), 0
        while waiting or table.size:
            hidden = self.decode_one_token(table, table.last_code) if table.size else None
            if waiting:
                keys = [next_key + i if r.key is None else r.key for i, r in enumerate(waiting)]
                next_key += len(waiting)
                joined = self.prefill(table, waiting, keys)
                hidden = joined if hidden is None else torch.cat([hidden, joined])
                waiting = []
            for i in range(self.sync_every):
                code = self.sample_step(table, hidden)
                if i < self.sync_every - 1:
                    hidden = self.decode_one_token(table, code)
            alive = table.alive.tolist()  # the one host sync per `sync_every` tokens
            finished = [not a or bool(drop and drop(k)) for a, k in zip(alive, table.keys)]
            yield table.progress(finished)
            table.remove([b for b, f in enumerate(finished) if f], self.cache)  # a CPU pays for every row
            waiting = more() if more else []

    @torch.inference_mode()
    def complete(self, rows: list[Row]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(codes, latents) of each row, in order, once all have finished."""
        done = {}
        for progress in self.generate(rows):
            done.update({k: (progress.codes[k].clone(), progress.latents[k].clone())
                         for k, f in progress.finished.items() if f})
        return [done[i if r.key is None else r.key] for i, r in enumerate(rows)]

    def prefill(self, table: RowTable, rows: list[Row], keys: list) -> torch.Tensor:
        """Adds `rows` to the batch, their prefixes (right-padded to the longest) written into cache rows of
        their own; returns the hidden state of each one's last prefix position [rows, dim]."""
        n, lengths = table.size, [len(r.prefix) for r in rows]
        longest_row = max(length + r.max_codes for length, r in zip(lengths, rows))
        self.cache.reserve(n + len(rows), longest_row + self.sync_every)  # the steps up to the report after stop
        x = torch.zeros(len(rows), max(lengths), rows[0].prefix.shape[-1], device=self.device, dtype=self.dtype)
        for b, r in enumerate(rows):
            x[b, : len(r.prefix)] = r.prefix
        new = slice(n, n + len(rows))

        def attend(layer, q, k, v):  # causal: a real position never sees the padding after it
            self.cache.write_prefix(layer, new, k, v)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        hidden = self._blocks(x, attend)
        table.add(rows, keys, lengths, self.start, width=max(r.max_codes for r in rows) + self.sync_every)
        return hidden[torch.arange(len(rows), device=self.device), torch.tensor(lengths, device=self.device) - 1]

    def decode_one_token(self, table: RowTable, code: torch.Tensor) -> torch.Tensor:
        """The batch's next hidden states [rows, dim]: each row's last code, at its own audio position,
        into its own next cache slot."""
        positions, span = table.position, max(table.spans) + 1
        x = self.own["mel_embedding"](code) + self.mel_pos[table.steps.clamp(max=len(self.mel_pos) - 1)]  # past a row's end: unused
        mask = step_mask(positions, span)

        def attend(layer, q, k, v):
            keys, values = self.cache.write_step(layer, positions, span, k, v)
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

        hidden = self._blocks(x[:, None], attend)[:, -1]
        table.columns["position"][: table.size] += 1
        table.spans = [s + 1 for s in table.spans]
        return hidden

    def sample_step(self, table: RowTable, hidden: torch.Tensor) -> torch.Tensor:
        """Each row's next code from its hidden state; its latent and code are recorded."""
        latent = self.own["final_norm"](hidden)  # coqui's latent: its final norm over GPT-2's own
        logits = self.own["mel_head"](latent).float()
        code = sample(logits, table)
        rows, steps = torch.arange(table.size, device=self.device), table.steps
        table.latents[rows, steps], table.codes[rows, steps] = latent.float(), code
        table.seen[rows, code] = True
        table.columns["steps"][: table.size] += 1
        table.columns["lengths"][: table.size] += table.alive
        table.columns["alive"][: table.size] &= (code != self.stop) & (table.lengths < table.max_codes)
        table.columns["last_code"][: table.size] = code
        return code

    def _blocks(self, x: torch.Tensor, attend: Callable) -> torch.Tensor:
        """GPT-2's blocks over x [rows, T, dim]; `attend(layer, q, k, v)` writes the cache and attends."""
        B, T, d = x.shape
        for i, block in enumerate(self.layers):
            q, k, v = block.attn.c_attn(block.ln_1(x)).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            x = x + block.attn.c_proj(attend(i, q, k, v).transpose(1, 2).reshape(B, T, d))
            x = x + block.mlp(block.ln_2(x))
        return self.own["ln_f"](x)


def sample(logits: torch.Tensor, table: RowTable) -> torch.Tensor:
    """Hugging Face's pipeline, vectorised over rows (each with its own settings): repetition penalty,
    temperature, top-k, top-p; then a draw with each row's own generator."""
    penalty, seen = table.penalty[:, None], table.seen
    logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
    logits = logits / table.temperature[:, None]
    max_k = min(max(table.top_ks), logits.shape[-1])
    kth = logits.topk(max_k, dim=-1).values.gather(1, table.top_k.clamp(max=max_k)[:, None] - 1)
    logits = logits.masked_fill(logits < kth, float("-inf"))
    ordered, order = logits.sort(dim=-1)
    remove = ordered.softmax(-1).cumsum(-1) <= 1 - table.top_p[:, None]
    remove[:, -1] = False
    logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    return draw(logits.softmax(-1), table.generators)


def draw(probs: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """One sample per row by the exponential trick (argmax of p / Exp(1) noise: no host sync), the noise
    from each row's own generator so a row's audio does not depend on its batch."""
    noise = torch.stack([torch.empty_like(p).exponential_(generator=g) for p, g in zip(probs, generators)])
    return (probs / noise).argmax(-1)
