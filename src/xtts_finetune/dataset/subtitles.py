"""Subtitle files as timed text, so a recording with subtitles needs no speech recognition.

SRT and WebVTT are read by our own line parser: pysubs2 1.8 (checked while writing this) returns
no cues for timings without milliseconds, reads `100:00:01,000` as one second and leaves `&amp;`
in SRT text, all common in real files. ASS/SSA and MicroDVD, where pysubs2 is solid, go through it.
Every cue that is not used is reported with its index and reason.
"""

from __future__ import annotations

import html
import math
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from xtts_finetune.dataset.segment import NO_SPACE_LANGUAGES, Sound, Span
from xtts_finetune.dataset.slicer import quietest_cut
from xtts_finetune.errors import UserError
from xtts_finetune.text.normalize import normalize_transcript
from xtts_finetune.utils import read_text_any

SUBTITLE_EXTENSIONS = frozenset({".srt", ".vtt", ".ass", ".ssa", ".sub"})
_STAMP = r"(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_STAMP}\s*-->\s*{_STAMP}(?:\s.*)?$")  # cue settings may follow
_TAG = re.compile(r"</?(?:i|b|u|s|font|v|c|lang|ruby|rt|span)\b[^<>]*>|<\d+:\d{2}[:.\d]*>", re.I)
_VTT_BLOCKS = ("WEBVTT", "NOTE", "STYLE", "REGION")


@dataclass
class Cue:
    start: float
    end: float
    text: str
    index: int = 0  # 1-based position in the file, for messages


@dataclass
class Subtitles:
    path: Path
    encoding: str
    cues: list[Cue]  # usable timing and text, in time order
    dropped: list[str] = field(default_factory=list)  # "talk.srt cue 4: reason" for every cue not in `cues`


def _seconds(h, m, s, frac) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int((frac or "0").ljust(3, "0")) / 1000


def clean_cue_text(text: str) -> str:
    """Markup that is never spoken: tags, entities, ASS line breaks and hard spaces."""
    text = _TAG.sub("", text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " "))
    return html.unescape(text).strip()


def _parse_srt_vtt(text: str, stray: list[str]) -> list[tuple[int, float, float, str]]:
    """(index, start, end, text) per timing line; a timing line always starts a new cue, a blank line ends it.

    Text outside any cue (not a cue number or identifier, not a WebVTT block) is described in `stray`.
    """
    cues: list[tuple[int, float, float, list[str]]] = []
    current: list[str] | None = None  # the text lines of the cue being read
    skipping = False  # inside a WEBVTT header, NOTE, STYLE or REGION block
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for n, line in enumerate(lines):
        if match := _TIMING.match(line):
            if current and current[-1].strip().isdigit():
                current.pop()  # the next cue's SRT number, with no blank line before it
            current = []
            cues.append((len(cues) + 1, _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:]), current))
            skipping = False
        elif not line.strip():
            current, skipping = None, False
        elif current is not None:
            current.append(line)
        elif line.split(" ", 1)[0] in _VTT_BLOCKS:
            skipping = True
        elif not skipping and not (n + 1 < len(lines) and _TIMING.match(lines[n + 1])):
            stray.append(f"line {n + 1}: text outside any cue {line.strip()[:60]!r}")
    return [(i, a, b, "\n".join(t)) for i, a, b, t in cues]


def _parse_with_pysubs2(text: str, path: Path) -> list[tuple[int, float, float, str]]:
    import pysubs2

    fmt = {".ass": "ass", ".ssa": "ssa", ".sub": "microdvd"}[path.suffix.lower()]
    try:
        events = pysubs2.SSAFile.from_string(text, format_=fmt)
    except pysubs2.exceptions.UnknownFPSError:
        raise UserError(f"{path}: a MicroDVD file without its frame rate.",
                        fix="add the frame rate as the first line, e.g. {1}{1}25, or convert it to SRT") from None
    except Exception as err:  # pysubs2 raises its own errors (and ValueError) for malformed files
        raise UserError(f"{path}: cannot read subtitles ({err}).", fix="convert it to SRT or WebVTT") from None
    return [(n, e.start / 1000, e.end / 1000, e.plaintext) for n, e in enumerate(events, 1) if not e.is_comment]


def read_subtitles(path: str | Path, language: str | None = None) -> Subtitles:
    """Cues of an .srt, .vtt, .ass, .ssa or .sub file in any common text encoding (the language's
    legacy code pages tried first), in time order."""
    path = Path(path)
    if path.suffix.lower() not in SUBTITLE_EXTENSIONS:
        raise UserError(f"{path}: not a subtitle file ({', '.join(sorted(SUBTITLE_EXTENSIONS))}).",
                        fix="convert it to SRT or WebVTT")
    try:
        text, encoding = read_text_any(path, language)
    except OSError as err:
        raise UserError(f"{path}: cannot read subtitles ({err}).", fix="check the file") from None
    stray: list[str] = []
    parsed = _parse_srt_vtt(text, stray) if path.suffix.lower() in (".srt", ".vtt") else _parse_with_pysubs2(text, path)
    subs = Subtitles(path, encoding, [], [f"{path.name} {s}" for s in stray])
    for index, start, end, raw in parsed:
        cue_text = clean_cue_text(raw)
        if not cue_text:
            subs.dropped.append(f"{path.name} cue {index} at {start:.2f} s: no text")
        elif end <= start:
            subs.dropped.append(f"{path.name} cue {index} at {start:.2f} s: ends before it starts; its text "
                                f"{' '.join(cue_text.split())[:60]!r} was left out (fix the timing to include it)")
        else:
            subs.cues.append(Cue(start, end, cue_text, index))
    if not subs.cues:
        raise UserError(f"{path}: no subtitle cues found.", fix="check that it is a subtitle file with timings")
    subs.cues.sort(key=lambda c: c.start)
    return subs


MARGIN_SECONDS = 0.25  # a clip may start/end this far outside its cues, at the quietest point there
OVERLAP_SECONDS = 0.1  # cues overlapping by more are two people talking at once
PAST_END_SECONDS = 1.0  # a cue ending this long after the audio does not belong to it
OVERRUN_SECONDS = 1.0  # speech may run this far past its last cue's end, to the next pause: cues often end early
PARTING_SILENCE_SECONDS = 0.1  # a long run of touching cues is split at the quietest stretch this long


@dataclass
class CueRun:
    """Adjacent cues that may share clips, and the stretch of audio their clips may take."""

    start: float
    end: float  # until the audio is read: the last cue's end plus the margin (or a boundary)
    words: list[Span]
    limit: float = math.inf  # how far speech running past the last cue may take the run: the next run or boundary
    split: bool = False  # split from the next run between two touching cues: they part at the quietest point there


def _words(cue: Cue, text: str, language: str) -> list[Span]:
    """A cue's words, with times spread by character count: used only to split a cue longer than a clip."""
    tokens = list(text.replace(" ", "")) if language in NO_SPACE_LANGUAGES else text.split(" ")
    total, t, words = sum(len(tok) for tok in tokens) or 1, cue.start, []
    for token in tokens:
        step = (cue.end - cue.start) * len(token) / total
        words.append(Span(t, t + step, token))
        t += step
    words[-1].end = cue.end
    return words


def _speech_cues(subs: Subtitles, language: str) -> tuple[list[tuple[Cue, str]], list[Cue], list[str]]:
    """(speech cues with their text, boundary cues, every cue left out with its reason)."""
    name, speech, bounds, dropped = subs.path.name, [], [], []
    for cue in subs.cues:
        text = normalize_transcript(cue.text, language)
        if text:
            speech.append((cue, text))
        else:
            bounds.append(cue)
            dropped.append(f"{name} cue {cue.index} at {cue.start:.2f} s: a caption, not speech "
                           f"({' '.join(cue.text.split())[:40]!r})")
    overlapping = set()
    for k, (cue, _) in enumerate(speech):
        for other, _ in speech[k + 1:]:
            if other.start >= cue.end - OVERLAP_SECONDS:
                break
            overlapping |= {cue.index, other.index}
    for cue, _ in speech:
        if cue.index in overlapping:
            bounds.append(cue)
            dropped.append(f"{name} cue {cue.index} at {cue.start:.2f} s: overlaps another cue (two voices at once)")
    return [(c, t) for c, t in speech if c.index not in overlapping], bounds, dropped


def plan_cue_runs(subs: Subtitles, language: str, margin: float = MARGIN_SECONDS,
                  max_run_seconds: float = 600.0) -> tuple[list[CueRun], list[str]]:
    """(runs of cues that become clips, every cue left out with its reason).

    Captions ([music], (laughs)) and overlapping cues are left out and act as boundaries: no
    clip reaches into them. Cues closer than two margins are one run; others never share a clip,
    so speech between cues that no cue covers is never in a clip. A run of touching cues longer
    than `max_run_seconds` is split between two of its cues, so a run's audio always fits in memory.
    """
    speech, bounds, dropped = _speech_cues(subs, language)
    runs: list[CueRun] = []
    last: Cue | None = None
    for cue, text in speech:
        between = last is not None and any(b.end > last.end and b.start < cue.start for b in bounds)
        if last is None or cue.start - last.end > 2 * margin or between:
            lo = max([cue.start - margin, 0.0] + [min(b.end, cue.start) for b in bounds if b.end <= cue.start + OVERLAP_SECONDS])
            runs.append(CueRun(lo, 0.0, []))
        elif cue.end - runs[-1].start > max_run_seconds:  # the parting point is found in the audio (CueAudio)
            runs[-1].split = True
            runs.append(CueRun(last.end, 0.0, []))
        fence = min([math.inf] + [max(b.start, cue.end) for b in bounds if b.start >= cue.end - OVERLAP_SECONDS])
        runs[-1].words += _words(cue, text, language)
        runs[-1].end, runs[-1].limit = min(cue.end + margin, fence), fence
        last = cue
    for run, following in zip(runs, runs[1:]):
        run.limit = min(run.limit, following.start)
    return runs, dropped


class CueAudio:
    """Each cue run's stretch of a recording that is read piece by piece, with the speech it holds.

    A run that a piece boundary cuts waits for the next piece (its audio so far is kept), so no cue is
    lost to a boundary. Speech still sounding at a run's last cue end keeps the run going to the next
    pause (at most OVERRUN_SECONDS, never into the next run or a boundary) or to the end of the file.
    """

    def __init__(self, runs: list[CueRun], sample_rate: int):
        self.pending = deque(runs)
        self.sample_rate = sample_rate
        self.end = 0.0  # of the audio read so far: the recording's duration once every piece is read
        self.uncovered = 0.0  # seconds of sound outside every run

    def windows(self, pieces: Iterable[tuple[float, np.ndarray]]) -> Iterator[tuple[CueRun, np.ndarray]]:
        """(run, its audio) for every run, from (start, audio) pieces in order; each run's end is set."""
        start, audio, sr = 0.0, np.zeros(0, dtype=np.float32), self.sample_rate
        pieces = iter(pieces)
        upcoming = next(pieces, None)
        while upcoming is not None:
            if not len(audio):
                start = upcoming[0]
            audio = np.concatenate([audio, upcoming[1]])
            upcoming = next(pieces, None)
            self.end = start + len(audio) / sr
            sound, done = Sound(audio, sr, start), []
            while self.pending and self.pending[0].start < self.end:
                stop = self._stop(audio, start, sound, last=upcoming is None)
                if stop is None:
                    break  # it runs on into the next piece
                run = self.pending.popleft()
                run.end = stop
                done.append((run.start, run.end))
                yield run, audio[int(round((run.start - start) * sr)) : int(round((run.end - start) * sr))]
            keep = min(self.pending[0].start, self.end) if self.pending and upcoming is not None else self.end
            self.uncovered += sound.outside(done, until=keep)
            kept_from = int(round((keep - start) * sr))
            audio, start = audio[kept_from:], start + kept_from / sr

    def _stop(self, audio: np.ndarray, start: float, sound: Sound, last: bool) -> float | None:
        """Where the first pending run's audio ends; None when that is past the audio read so far and more is coming.

        `audio` starts at `start` seconds and `sound` describes it.
        """
        run = self.pending[0]
        if run.split:  # it parts from the next run at the quietest point between its last word and the next one's first
            following = self.pending[1]
            hi = min(following.words[0].end, self.end)
            if hi < following.words[0].end and not last:
                return None
            cut = quietest_cut(audio, self.sample_rate, run.words[-1].start - start, hi - start, PARTING_SILENCE_SECONDS)
            following.start = start + cut / self.sample_rate
            return following.start
        speech_end = run.words[-1].end
        ceiling = min(run.limit, speech_end + OVERRUN_SECONDS)
        pause = sound.quiet_after(speech_end, min(ceiling, self.end))
        stop = min(ceiling, max(run.end, pause + MARGIN_SECONDS))
        if stop > self.end:
            return self.end if last else None
        return stop

    def left_out(self, name: str) -> list[str]:
        """Runs that start after the recording ends (their cues lie within PAST_END_SECONDS of it)."""
        return [f"{name}: the cue(s) at {run.words[0].start:.2f} s start after the audio ends ({self.end:.2f} s)"
                for run in self.pending]


def check_cues_fit(subs: Subtitles, duration: float) -> None:
    """Cues past the end of the audio mean the subtitles belong to another recording (or another cut)."""
    late = [c for c in subs.cues if c.end > duration + PAST_END_SECONDS]
    if late:
        raise UserError(f"{subs.path}: {len(late)} cue(s) lie past the end of the audio ({duration:.1f} s), "
                        f"from cue {late[0].index} at {late[0].start:.1f} s.",
                        fix="check that the subtitles belong to this recording, or fix their timing")
