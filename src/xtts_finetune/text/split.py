"""Long text into pieces XTTS speaks well: whole sentences, none over the language's character limit.

XTTS truncates or babbles past roughly 250 characters (fewer for zh, ja, ko), and a sentence cut
mid-word sounds wrong, so we cut at sentence ends first, then at clause marks, then at spaces,
and only as a last resort inside a run of characters (scripts written without spaces).
"""

from __future__ import annotations

import re

from xtts_finetune.text.sentences import ABBREVIATIONS, CLAUSE_ENDS, CLOSERS, SENTENCE_ENDS

# Latin-style ends need a space (or the end) after them, so "3.5" and "e.g.x" stay whole; the ends
# of CJK, Ethiopic, Devanagari and Arabic scripts end a sentence wherever they are.
_SPACED = "".join(sorted(SENTENCE_ENDS & set(".!?…‼⁇⁈⁉")))
_BARE = "".join(sorted(SENTENCE_ENDS - set(_SPACED)))
_SENTENCE_END = re.compile(
    rf"[{re.escape(_SPACED)}]+[{re.escape(CLOSERS)}]*(?=\s|$)|[{re.escape(_BARE)}]+[{re.escape(CLOSERS)}]*"
)
_CLAUSE_END = re.compile(rf"[{re.escape(''.join(sorted(CLAUSE_ENDS)))}]+[{re.escape(CLOSERS)}]*\s*")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Sentences of `text` in order, each at most `max_chars` long; lines always end a sentence."""
    pieces: list[str] = []
    for line in text.splitlines():
        for sentence in _sentences(" ".join(line.split())):
            pieces.extend(_fit(sentence, max_chars))
    return [p for p in pieces if p]


def _sentences(line: str) -> list[str]:
    out, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        if match.group().startswith(".") and _is_abbreviation(line[start : match.start()]):
            continue
        out.append(line[start : match.end()].strip())
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if s]


def _is_abbreviation(before_dot: str) -> bool:
    words = before_dot.split()
    if not words:
        return False
    word = words[-1].lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())  # "J. Smith"


def _fit(sentence: str, max_chars: int) -> list[str]:
    """Cut one sentence into pieces of at most `max_chars`: whole clauses where they fit, else words."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces, current = [], ""  # units keep their trailing space, so a piece is a plain concatenation
    for clause in re.findall(rf".+?(?:{_CLAUSE_END.pattern}|$)", sentence):
        units = [clause]
        if len(clause.strip()) > max_chars:
            pieces.append(current)  # an over-long clause starts its own piece
            current = ""
            words = re.findall(r"\S+\s*", clause)
            units = [w[i : i + max_chars] for w in words for i in range(0, len(w), max_chars)]
        for unit in units:
            if current and len((current + unit).strip()) > max_chars:
                pieces.append(current)
                current = ""
            current += unit
    pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]
