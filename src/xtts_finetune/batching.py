"""Many speech requests through one continuous GPT batch, each request's audio in its own order.

The `Batcher` schedules sentences into the decoder's batch, first sentences first, so a long request
does not hold a short one back. Each request is a small state machine, `RequestAudio`: its sentences
decode in any order in the batch, and are voiced in order, the current one in vocoder blocks as its
latents arrive (a small first block, so the first sound comes soon); one that finishes before its turn
keeps its latents until then.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np
import torch

from xtts_finetune.decode import GptDecoder, Progress, Row
from xtts_finetune.vocoder import BlockVocoder
from xtts_finetune.voices import Voice

GAP_SECONDS = 0.2  # silence between sentences
FADE_SECONDS = 0.005  # fade at each sentence's edges, so joins never click
TRIM_KEEP_SECONDS = 0.1  # quiet kept after a sentence's last sound (the rest is trimmed)
TRIM_LEVEL = 0.01  # "quiet": below 1% (-40 dB) of the sentence's peak


@dataclass
class SpeechRequest:
    """A validated request: everything `generate` needs, nothing it has to check again."""

    sentences: list[str]
    language: str
    voice: Voice
    settings: dict = field(default_factory=dict)
    seed: int | None = None


class Synthesizer(Protocol):
    """What the batch needs of the model that speaks (synthesis.Synthesizer), named here so that this
    module does not import the one that uses it."""

    decoder: GptDecoder
    vocoder: BlockVocoder
    sample_rate: int
    stream_chunk_codes: int
    later_chunk_factor: int
    stats: object

    def voice_latents(self, voice: Voice) -> tuple[torch.Tensor, torch.Tensor]: ...

    def row(self, request: SpeechRequest, sentence: int, cond_latent: torch.Tensor, key: object) -> Row: ...


class State(enum.Enum):
    SPEAKING = "speaking"  # sentences left to voice
    DONE = "done"  # every sentence voiced
    CANCELLED = "cancelled"  # its client left: its rows leave the batch, its waiting sentences never join


@dataclass
class _Cursor:
    """Where the vocoder stands in the sentence being voiced."""

    sentence: int
    size: int  # latents in the next block
    done: int = 0  # latents voiced so far
    tail: np.ndarray | None = None  # the last block's overhang, crossfaded into the next
    blocks: int = 0
    peak: float = 0.0


class RequestAudio:
    """One request's audio: SPEAKING until its last sentence is voiced (DONE) or its client leaves (CANCELLED)."""

    def __init__(self, index: int, request: SpeechRequest, synth: Synthesizer, stream: bool,
                 cancelled: Callable[[int], bool]):
        self.index, self.request, self.synth, self.stream = index, request, synth, stream
        self.cancelled = lambda: cancelled(index)
        self.cond_latent, self.embedding = synth.voice_latents(request.voice)
        self.state = State.SPEAKING
        self.unvoiced = deque(range(len(request.sentences)))  # in order; the first is being voiced
        self.early: dict[int, torch.Tensor] = {}  # latents of sentences decoded before their turn
        self.cursor = self._cursor(0)
        self.stretch = 1.0 / request.settings.get("speed", 1.0)

    @property
    def key(self) -> tuple[int, int]:
        """The batch row key of the sentence being voiced."""
        return self.index, self.unvoiced[0]

    def cancel(self) -> None:
        self.state, self.early = State.CANCELLED, {}

    def voice(self, progress: Progress) -> Iterator[np.ndarray]:
        """The audio that is ready: blocks of the current sentence, then of the next ones if finished; a
        request cancelled meanwhile stops here and ends at the next report."""
        while self.state is State.SPEAKING and not self.cancelled():
            key = self.key
            if self.unvoiced[0] in self.early:
                latents, last = self.early.pop(self.unvoiced[0]), True
            elif key in progress.finished:
                latents, last = progress.latents[key], progress.finished[key]
            else:
                return  # not in the batch yet
            yield from self._blocks(latents, last)
            if not last:
                return
            self.unvoiced.popleft()
            if not self.unvoiced:
                self.state = State.DONE
            else:
                self.cursor = self._cursor(self.unvoiced[0])

    def keep_early(self, progress: Progress) -> None:
        """Keeps the latents of this request's sentences that finished before their turn."""
        for (i, j), finished in progress.finished.items():
            if i == self.index and finished and self.state is State.SPEAKING and j in self.unvoiced:
                self.early[j] = progress.latents[i, j].clone()

    def _cursor(self, sentence: int) -> _Cursor:
        return _Cursor(sentence, size=self.synth.stream_chunk_codes)

    def _blocks(self, latents: torch.Tensor, last: bool) -> Iterator[np.ndarray]:
        """The current sentence's blocks that its latents so far allow (all of it when it is `last`)."""
        synth, c, n = self.synth, self.cursor, len(latents)
        vocoder = synth.vocoder
        while self.stream and n > c.done + c.size + vocoder.margin(self.stretch):  # ">": the last block is never empty
            wav, c.tail = vocoder.block(latents, c.done, c.done + c.size, c.tail, self.embedding, self.stretch)
            c.done, c.size = c.done + c.size, synth.stream_chunk_codes * synth.later_chunk_factor
            yield self._edges(wav, last=False)
        if last:
            wav = vocoder.block(latents, c.done, n, c.tail, self.embedding, self.stretch, last=True)[0]
            yield self._edges(wav, last=True)
            synth.stats.sentences, synth.stats.codes = synth.stats.sentences + 1, synth.stats.codes + n

    def _edges(self, wav: np.ndarray, last: bool) -> np.ndarray:
        """Fades a block's outer edges, trims a sentence's trailing silence, puts the pause before it."""
        c, rate = self.cursor, self.synth.sample_rate
        c.peak = max(c.peak, float(np.abs(wav).max(initial=0.0)))
        if last:
            wav = trim_trailing_silence(wav, c.peak, int(TRIM_KEEP_SECONDS * rate))
        first, c.blocks = c.blocks == 0, c.blocks + 1
        wav = fade(wav, int(FADE_SECONDS * rate), start=first, end=last)
        return np.concatenate([np.zeros(int(GAP_SECONDS * rate), dtype=np.float32), wav]) if first and c.sentence else wav


class Batcher:
    """Schedules the sentences of many requests into one continuous GPT batch of at most `max_batch`
    rows, and hands out each request's audio as it is ready, as (request index, chunk), then (index, None)."""

    def __init__(self, synth: Synthesizer, max_batch: int, stream: bool, cancelled: Callable[[int], bool]):
        self.synth, self.max_batch, self.stream, self.cancelled = synth, max_batch, stream, cancelled
        self.requests: list[RequestAudio] = []
        self.queue: list[tuple[int, int]] = []  # (sentence, request): first sentences first
        self.in_batch = 0

    def add(self, request: SpeechRequest) -> None:
        i = len(self.requests)
        self.requests.append(RequestAudio(i, request, self.synth, self.stream, self.cancelled))
        for j in range(len(request.sentences)):
            heapq.heappush(self.queue, (j, i))

    def rows(self) -> list:
        """Rows for the free places in the batch."""
        rows = []
        while self.queue and self.in_batch < self.max_batch:
            j, i = heapq.heappop(self.queue)
            audio = self.requests[i]
            if self.cancelled(i):
                continue
            rows.append(self.synth.row(audio.request, j, audio.cond_latent, key=(i, j)))
            self.in_batch += 1
        return rows

    def run(self, incoming: Callable[[], list[SpeechRequest]] | None = None) -> Iterator[tuple[int, np.ndarray | None]]:
        def more():
            for request in incoming() if incoming else []:
                self.add(request)
            return self.rows()

        for progress in self.synth.decoder.generate(self.rows(), more, drop=lambda key: self.cancelled(key[0])):
            self.in_batch -= sum(progress.finished.values())
            speaking = [a for a in self.requests if a.state is State.SPEAKING]
            for audio in speaking:
                if self.cancelled(audio.index):  # its rows left the batch at this report
                    audio.cancel()
                    yield audio.index, None
            # The vocoder runs here, one request after another: those with the fewest sentences left go
            # first, so a short request that joined is not kept waiting behind a long one's sentences.
            for audio in sorted((a for a in speaking if a.state is State.SPEAKING), key=lambda a: len(a.unvoiced)):
                yield from ((audio.index, chunk) for chunk in audio.voice(progress))
                if audio.state is State.DONE:
                    yield audio.index, None
            for audio in speaking:
                audio.keep_early(progress)


def trim_trailing_silence(wav: np.ndarray, peak: float, keep: int) -> np.ndarray:
    """`wav` up to `keep` samples after its last one above TRIM_LEVEL of `peak` (the sentence's loudest)."""
    loud = np.flatnonzero(np.abs(wav) > TRIM_LEVEL * peak)
    return wav[: min(len(wav), (loud[-1] + 1 if len(loud) else 0) + keep)]


def fade(wav: np.ndarray, samples: int, start: bool, end: bool) -> np.ndarray:
    """`wav` faded in over its first `samples` (if `start`) and out over its last (if `end`), in place."""
    n = min(samples, len(wav) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        if start:
            wav[:n] *= ramp
        if end:
            wav[-n:] *= ramp[::-1]
    return wav
