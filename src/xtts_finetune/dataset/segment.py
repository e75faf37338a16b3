"""Training clips from timed words: sentence by sentence, within the length bounds, cut in silence.

Pure functions over word lists (ASR words, or subtitle cues split into words). When the audio is
given, every cut is moved to the quietest stretch of the gap between two words, so ASR timestamps
that are off by a few tens of milliseconds still never cut a word in half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

import numpy as np

from xtts_finetune.text.normalize import normalize_transcript
from xtts_finetune.text.sentences import ends_clause, ends_sentence

HOP_SECONDS = 0.01  # energy frame step: 10 ms
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my"})


class Timed(Protocol):
    start: float
    end: float
    text: str


@dataclass
class Span:
    """A timed piece of text: a word, or a subtitle cue."""

    start: float
    end: float
    text: str


@dataclass
class Clip:
    start: float
    end: float
    text: str
    rejected: Optional[str] = None  # why this clip cannot be used for training; None when it can

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class _Cut:
    left_end: float  # where a clip ending before this gap ends
    right_start: float  # where a clip starting after this gap starts
    silence: float  # seconds of silence in the gap: how good a place it is to split


def frame_energy_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS of 20 ms windows every 10 ms (frame i measures [i, i + 2) * 10 ms)."""
    if len(audio) == 0:
        return np.full(1, -100.0)
    # Frame edges at exact multiples of 10 ms (220.5 samples at 22.05 kHz): no drift over hours.
    edges = np.unique(np.round(np.arange(0, len(audio) / sample_rate, HOP_SECONDS) * sample_rate).astype(np.int64))
    edges = edges[edges < len(audio)]
    sums = np.add.reduceat(audio.astype(np.float64) ** 2, edges)
    counts = np.diff(np.append(edges, len(audio)))
    power = np.append(sums, 0.0) / np.append(counts, 1)
    power = (power[:-1] + power[1:]) / 2
    return 10 * np.log10(power + 1e-10)


QUIET_HOLD_SECONDS = 0.2  # a pause, not the gap between two words


class Sound:
    """Which 10 ms frames of a stretch of audio hold sound: within 30 dB of its loud parts, above -60 dBFS."""

    def __init__(self, audio: np.ndarray, sample_rate: int, offset: float = 0.0):
        energy = frame_energy_db(audio, sample_rate)
        self.frames = energy > max(float(np.percentile(energy, 95)) - 30, -60.0)
        self.offset = offset  # where the audio starts in the recording, in seconds: times here are the recording's

    def _frame(self, t: float) -> int:
        return min(len(self.frames), max(0, int(round((t - self.offset) / HOP_SECONDS))))

    def outside(self, spans: Sequence[tuple[float, float]], until: Optional[float] = None) -> float:
        """Seconds of sound (before `until`) outside every (start, end) span."""
        sounding = self.frames[: len(self.frames) if until is None else self._frame(until)].copy()
        for start, end in spans:
            sounding[self._frame(start) : self._frame(end)] = False
        return float(np.count_nonzero(sounding) * HOP_SECONDS)

    def quiet_after(self, t: float, limit: float, hold: float = QUIET_HOLD_SECONDS) -> float:
        """Where the first pause of `hold` seconds at or after `t` begins; `limit` when none begins before it."""
        need = max(1, int(round(hold / HOP_SECONDS)))
        lo, hi = self._frame(t), self._frame(limit)
        quiet = (~self.frames[lo : hi + need - 1]).astype(np.int32)
        if len(quiet) >= need:
            starts = np.flatnonzero(np.convolve(quiet, np.ones(need, dtype=np.int32), mode="valid") == need)
            if len(starts) and starts[0] < hi - lo:
                return min(limit, self.offset + (lo + int(starts[0])) * HOP_SECONDS)
        return limit


class _Silence:
    """Finds the quietest stretch of audio inside a time window."""

    def __init__(self, energy: np.ndarray):
        self.energy = energy
        kernel = np.ones(3) / 3  # the quietest 40 ms stretch, not one lucky frame
        self.smooth = np.convolve(energy, kernel, mode="same") if len(energy) >= 3 else energy
        self.speech_db = float(np.percentile(energy, 95)) if len(energy) else 0.0

    def run(self, lo: float, hi: float, floor_lo: float, ceil_hi: float) -> tuple[float, float]:
        """(start, end) of the silent run around the quietest point of [lo, hi] seconds.

        The run may extend past the window while the audio stays silent, but not past
        [floor_lo, ceil_hi] (the far edges of the neighbouring words).
        """
        e = self.energy
        i_lo = max(0, int(lo / HOP_SECONDS))
        i_hi = min(len(e) - 1, int(np.ceil(hi / HOP_SECONDS)))
        j_lo = max(0, min(i_lo, int(np.ceil(floor_lo / HOP_SECONDS))))
        j_hi = min(len(e) - 1, max(i_hi, int(ceil_hi / HOP_SECONDS)))
        if i_hi < i_lo:
            t = min(max(lo, 0.0), len(e) * HOP_SECONDS)
            return t, t
        window = self.smooth[i_lo : i_hi + 1]
        q = i_lo + int(np.flatnonzero(window == window.min()).mean().round())  # middle of a flat floor
        floor = e[q]
        threshold = max(floor + 3, min(floor + 15, self.speech_db - 30))
        a = q
        while a > j_lo and e[a - 1] < threshold:
            a -= 1
        b = q
        while b < j_hi and e[b + 1] < threshold:
            b += 1
        # Frame i measures [i, i + 2) hops; a run of silent frames a..b is silent from a + 1 to b + 1 hops.
        if a == b:
            t = (q + 1) * HOP_SECONDS
            return t, t
        return (a + 1) * HOP_SECONDS, (b + 1) * HOP_SECONDS


def _cuts(words: Sequence[Timed], duration: float, silence: Optional[_Silence], pad: float, search: float) -> list[_Cut]:
    """One cut per gap: before the first word, between each pair, after the last."""
    cuts = []
    for g in range(len(words) + 1):
        prev = words[g - 1] if g > 0 else None
        nxt = words[g] if g < len(words) else None
        if nxt is None and prev is not None and prev.end >= duration:  # the audio ends inside the last word: keep all
            cuts.append(_Cut(left_end=duration, right_start=duration, silence=0.0))
            continue
        a = prev.end if prev else 0.0
        b = nxt.start if nxt else duration
        lo, hi = min(a, b), max(a, b)
        if hi - lo < 0.05:  # ASR often gives touching words: look around for the real pause
            lo, hi = lo - search, hi + search
        # Search up to the middles of the neighbouring words. A silent run may extend over a
        # neighbour (silence there means its timestamp was wrong, not a word), but not much
        # further, so a genuinely quiet word is not swallowed.
        lo = max(lo, (prev.start + prev.end) / 2 if prev else 0.0)
        hi = min(hi, (nxt.start + nxt.end) / 2 if nxt else duration)
        floor_lo = min(prev.start, lo - search) if prev else 0.0
        ceil_hi = max(nxt.end, hi + search) if nxt else duration
        if silence is None:
            s0, s1 = (a, b) if b >= a else ((a + b) / 2,) * 2
        else:
            s0, s1 = silence.run(lo, hi, floor_lo, ceil_hi)
        if s1 - s0 <= 2 * pad:  # a short pause: both clips cut at its middle
            left = right = (s0 + s1) / 2
        else:  # a long pause: keep `pad` of it on each side, drop the rest
            left, right = s0 + pad, s1 - pad
        cuts.append(_Cut(left_end=max(left, 0.0), right_start=max(right, 0.0), silence=s1 - s0))
    return cuts


def join_words(words: Sequence[Timed], language: str) -> str:
    """Whisper words carry their leading space; hand-made or subtitle words may not."""
    texts = [w.text for w in words]
    if any(t[:1].isspace() for t in texts[1:]) or language in NO_SPACE_LANGUAGES:
        return "".join(texts).strip()
    return " ".join(t.strip() for t in texts)


def plan_clips(
    words: Sequence[Timed],
    language: str,
    *,
    min_seconds: float = 0.33,
    max_seconds: float = 11.6,
    merge_below_seconds: float = 1.0,
    max_merge_gap: float = 1.5,
    pad_seconds: float = 0.025,
    search_seconds: float = 0.15,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 22050,
    duration: Optional[float] = None,
) -> list[Clip]:
    """Group timed words into clips: sentences, long ones split at the best pause, short ones merged.

    Every returned clip either lies within [min_seconds, max_seconds] or carries a `rejected` reason.
    """
    words = [w for w in words if w.text.strip()]
    if not words:
        return []
    if duration is None:
        duration = len(audio) / sample_rate if audio is not None else words[-1].end + pad_seconds
    silence = _Silence(frame_energy_db(audio, sample_rate)) if audio is not None else None
    spans = _Spans(words, _cuts(words, duration, silence, pad_seconds, search_seconds), min_seconds, max_seconds)
    pieces: list[tuple[int, int]] = []
    start = 0
    for k, word in enumerate(words):
        last = k == len(words) - 1
        if last or ends_sentence(word.text) or words[k + 1].start - word.end > max_merge_gap:
            pieces += spans.split(start, k)
            start = k + 1
    merged = spans.merge(pieces, merge_below_seconds, max_merge_gap)
    return [_clip(spans, i, j, duration, language) for i, j in merged]


def _clip(spans: "_Spans", i: int, j: int, duration: float, language: str) -> Clip:
    """Words i..j as a clip, with why it is rejected when it cannot be used."""
    cuts, words = spans.cuts, spans.words
    text = normalize_transcript(join_words(words[i : j + 1], language), language)
    clip = Clip(max(0.0, cuts[i].right_start), min(duration, cuts[j + 1].left_end), text)
    if not clip.text:
        clip.rejected = "no speech left after cleaning the text"
    elif clip.duration < spans.min_seconds:
        clip.rejected = f"too short ({clip.duration:.2f} s < {spans.min_seconds} s)"
    elif clip.duration > spans.max_seconds:
        clip.rejected = f"one word longer than the maximum ({clip.duration:.2f} s > {spans.max_seconds} s)"
    return clip


@dataclass
class _Spans:
    """Runs of words between cuts: their lengths, where to split a long run, which short runs to merge."""

    words: Sequence[Timed]
    cuts: list[_Cut]
    min_seconds: float
    max_seconds: float

    def length(self, i: int, j: int) -> float:  # clip of words i..j inclusive
        return self.cuts[j + 1].left_end - self.cuts[i].right_start

    def split(self, i: int, j: int) -> list[tuple[int, int]]:
        """Words i..j in runs no longer than max_seconds, split at the best pauses."""
        if i == j or self.length(i, j) <= self.max_seconds:
            return [(i, j)]
        k = max(range(i + 1, j + 1), key=lambda k: self._split_score(i, k, j))
        return self.split(i, k - 1) + self.split(k, j)

    def _split_score(self, i: int, k: int, j: int):  # split i..j before word k
        left, right = self.length(i, k - 1), self.length(k, j)
        fits = left <= self.max_seconds and right <= self.max_seconds
        long_enough = min(left, right) >= self.min_seconds
        # A real pause beats punctuation; a split that leaves both halves short enough breaks near-ties.
        bonus = 0.3 * ends_clause(self.words[k - 1].text) + 0.25 * fits
        return (long_enough, round(self.cuts[k].silence + bonus, 2), -abs(left - right))

    def merge(self, pieces: list[tuple[int, int]], below: float, max_gap: float) -> list[tuple[int, int]]:
        """Short runs joined to the previous one when the result fits and the gap between them is small."""
        merged = [pieces[0]]
        for i, j in pieces[1:]:
            pi, pj = merged[-1]
            short = min(self.length(pi, pj), self.length(i, j)) < below
            if short and self.length(pi, j) <= self.max_seconds and self.words[i].start - self.words[pj].end <= max_gap:
                merged[-1] = (pi, j)
            else:
                merged.append((i, j))
        return merged
