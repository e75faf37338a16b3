"""SRT and WebVTT cues as timed text, so a recording with subtitles needs no speech recognition."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from xtts_finetune.dataset.segment import NO_SPACE_LANGUAGES, Span
from xtts_finetune.errors import UserError
from xtts_finetune.text.normalize import normalize_transcript

SUBTITLE_EXTENSIONS = frozenset({".srt", ".vtt"})
_TIMING = re.compile(
    r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})\s*-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
)


@dataclass
class Cue:
    start: float
    end: float
    text: str


def _seconds(h, m, s, frac) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def parse_subtitles(path: str | Path, problems: list[str] | None = None) -> list[Cue]:
    """Cues of an .srt or .vtt file in time order; tags, cue settings and NOTE/STYLE blocks dropped.

    A cue with text that cannot be used (it ends before it starts) is described in `problems`.
    """
    path = Path(path)
    if path.suffix.lower() not in SUBTITLE_EXTENSIONS:
        raise UserError(f"{path}: not a subtitle file (.srt or .vtt).", fix="convert it to SRT or WebVTT")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read subtitles ({err}).", fix="save the file as UTF-8") from None
    cues = []
    for block in re.split(r"\r?\n\s*\r?\n", raw.replace("\r\n", "\n")):
        lines = block.strip().split("\n")
        for n, line in enumerate(lines):
            match = _TIMING.search(line)
            if match:
                start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
                text = "\n".join(lines[n + 1 :])
                text = re.sub(r"</?(?:v|c|i|b|u|lang|ruby|rt)(?:[ .][^>]*)?>|<\d+:\d+[^>]*>", " ", text)  # VTT voice/class/time tags
                if end > start and text.strip():
                    cues.append(Cue(start, end, text))
                elif text.strip() and problems is not None:
                    problems.append(f"{path.name}: cue {line.strip()!r} ends before it starts; its text "
                                    f"{' '.join(text.split())[:60]!r} was left out (fix the timing to include it)")
                break
    if not cues:
        raise UserError(f"{path}: no subtitle cues found.", fix="check that it is an SRT or WebVTT file with timings")
    return sorted(cues, key=lambda c: c.start)


def cue_words(cues: list[Cue], language: str) -> list[Span]:
    """Split cues into words with times spread by character count.

    Cue boundaries stay exact; inside a cue the times are estimates, used only to split a cue
    longer than the maximum clip length (and then snapped to silence by the segmenter).
    """
    words = []
    for cue in cues:
        text = normalize_transcript(cue.text, language)
        if not text:
            continue  # a caption such as [music]: no speech to train on
        tokens = list(text) if language in NO_SPACE_LANGUAGES else text.split(" ")
        total = sum(len(t) for t in tokens) or 1
        t = cue.start
        for token in tokens:
            step = (cue.end - cue.start) * len(token) / total
            words.append(Span(t, t + step, token))
            t += step
        if words:
            words[-1].end = cue.end
    return words
