"""Transcript cleaning per language: what a clip's text must look like before it becomes a CSV row.

ASR output and subtitles carry captions ([music], (laughs), ♪), typographic quotes, stray
whitespace and the CSV delimiter; left in, they teach the model to "say" things nobody said.
Sentence punctuation stays: it shapes prosody.
"""

from __future__ import annotations

import re
import unicodedata

from xtts_finetune.languages import normalize_language

# Captions for sounds, not speech. Square and CJK brackets and music notes are caption conventions
# (SDH subtitles, （笑）); round brackets also hold spoken asides, so only short labels go (below).
_CAPTION = re.compile(r"\[[^\]]*\]|（[^）]*）|【[^】]*】|[♪♫♬♩][^♪♫♬♩]*[♪♫♬♩]|[♪♫♬♩]")
_ROUND = re.compile(r"\(([^()]*)\)")
_LABEL_WORDS = 3  # "(laughs)", "(door slams)", "(SIGHS HEAVILY)"; "(who had been sentenced to death)" is speech
# Subtitle styling that is never spoken: ASS override tags {\an8}, MicroDVD {y:i}, HTML-like tags.
_STYLING = re.compile(r"\{\\[^}]*\}|\{[a-zA-Z]:[^}]*\}|</?(?:i|b|u|s|font|v|c|lang|ruby|rt|span|br)\b[^<>]*>", re.I)
_ASS_BREAKS = re.compile(r"\\[Nnh]")  # ASS hard line break \N, soft \n, hard space \h
# A speaker label opening a line: "JOHN:", "DR. SMITH:", "MAN 2:" (capitals only: "Note: ..." is speech).
_SPEAKER = re.compile(r"(^|\n)[ \t]*([^\n:]{1,30}):(?=\s|$)")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                         "‚": "'", "‛": "'", "`": "'", "´": "'", "|": " "})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))  # ZWJ/ZWNJ stay: Indic and Persian need them
# Subtitle dialogue markers at the start of a line: "- Hi", ">> Hi", "JOHN: Hi" is left alone.
_DIALOGUE = re.compile(r"(^|\n)\s*(?:-(?!\d)|–|>>)\s*")  # "-5 degrees" keeps its sign
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:…%)\]])")
_CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_SPACE_IN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_LEADING_PUNCT = re.compile(r"^(?:[\s,.;:!?…、，。·]|-(?!\d))+")
_REPEATED_COMMA = re.compile(r"([,，、])\s*(?:[,，、]\s*)+")


def normalize_transcript(text: str, language: str) -> str:
    """Clean one transcript for training; returns "" when nothing speakable is left."""
    language = normalize_language(language)
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = _STYLING.sub("", _ASS_BREAKS.sub(" ", text))
    text = strip_captions(text)
    text = _SPEAKER.sub(lambda m: m.group(1) if _is_speaker(m.group(2)) else m.group(0), _DIALOGUE.sub(r"\1", text))
    text = text.translate(_QUOTES)
    text = " ".join(text.split())  # every kind of whitespace, newlines included, to one space
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if language in ("zh", "ja"):
        text = _SPACE_IN_CJK.sub("", text)
    text = _REPEATED_COMMA.sub(r"\1 ", text).strip()
    text = _LEADING_PUNCT.sub("", text)
    text = text.replace('""', "").strip()
    return text if any(ch.isalnum() for ch in text) else ""


def _is_speaker(label: str) -> bool:
    return label.isupper() and len(label.split()) <= 3


def _is_label(inner: str) -> bool:
    words = inner.split()
    return len(words) <= _LABEL_WORDS and not any(ch.isdigit() for ch in inner)


def strip_captions(text: str) -> str:
    """Remove what is evidently a caption, keep what reads as speech.

    A bracketed span that is the whole cue is a caption whatever its length; inside a line, round
    brackets go only when they hold a short label without digits.
    """
    whole = text.strip()
    if re.fullmatch(r"\([^()]*\)|\[[^\]]*\]", whole):
        return ""
    text = _CAPTION.sub(" ", text)
    return _ROUND.sub(lambda m: " " if _is_label(m.group(1)) else m.group(0), text)
