"""Transcript cleaning per language: what a clip's text must look like before it becomes a CSV row.

ASR output and subtitles carry captions ([music], (laughs), ♪), typographic quotes, stray
whitespace and the CSV delimiter; left in, they teach the model to "say" things nobody said.
Sentence punctuation stays: it shapes prosody.
"""

from __future__ import annotations

import re
import unicodedata

from xtts_finetune.languages import normalize_language

# Captions for sounds, not speech: [music], (applause), （笑）, 【拍手】, {\an8}, <i>, ♪ lyrics ♪.
_NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|（[^）]*）|【[^】]*】|\{[^}]*\}|<[^>]*>|[♪♫♬♩][^♪♫♬♩]*[♪♫♬♩]|[♪♫♬♩]")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                         "‚": "'", "‛": "'", "`": "'", "´": "'", "|": " "})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))  # ZWJ/ZWNJ stay: Indic and Persian need them
# Subtitle dialogue markers at the start of a line: "- Hi", ">> Hi", "JOHN: Hi" is left alone.
_DIALOGUE = re.compile(r"(^|\n)\s*(?:-|–|>>)\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:…%)\]])")
_CJK = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_SPACE_IN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_LEADING_PUNCT = re.compile(r"^[\s,.;:!?…、，。·-]+")
_REPEATED_COMMA = re.compile(r"([,，、])\s*(?:[,，、]\s*)+")


def normalize_transcript(text: str, language: str) -> str:
    """Clean one transcript for training; returns "" when nothing speakable is left."""
    language = normalize_language(language)
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = _DIALOGUE.sub(r"\1", text)
    text = _NON_SPEECH.sub(" ", text)
    text = text.translate(_QUOTES)
    text = " ".join(text.split())  # every kind of whitespace, newlines included, to one space
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if language in ("zh", "ja"):
        text = _SPACE_IN_CJK.sub("", text)
    text = _REPEATED_COMMA.sub(r"\1 ", text).strip()
    text = _LEADING_PUNCT.sub("", text)
    text = text.replace('""', "").strip()
    return text if any(ch.isalnum() for ch in text) else ""
