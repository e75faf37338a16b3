"""Where sentences and clauses end, in every script XTTS and its fine-tunes meet.

ASCII-only rules run Chinese, Japanese, Amharic and Hindi sentences together into clips far over
the training limit, so the ends of each script are listed here once and used by every stage.
"""

from __future__ import annotations

import re

# Latin . ! ? …, CJK 。！？ and halfwidth ｡, Ethiopic ። ፧ ፨, Devanagari danda । ॥, Arabic ؟ ۔.
SENTENCE_ENDS = frozenset(".!?…。！？｡።፧፨।॥؟۔‼⁇")
# Where a long sentence may be split when there is no pause: commas, semicolons, colons per script.
CLAUSE_ENDS = frozenset(",;:，、；：،؛፣፤፥—–")
# Closing quotes and brackets that may follow a sentence end: `"Stop!"` still ends a sentence.
CLOSERS = "\"'”’»)]}」』）】›"
# A period after these is not a sentence end (compared lower-case, without the period).
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "vs", "jr", "sr", "e.g", "i.e", "etc", "no"})


def _last_char(token: str) -> str:
    token = token.rstrip().rstrip(CLOSERS)
    return token[-1] if token else ""


def ends_sentence(token: str) -> bool:
    """Whether a word (as ASR or a subtitle gives it, punctuation attached) ends a sentence."""
    last = _last_char(token)
    if last not in SENTENCE_ENDS:
        return False
    if last == ".":
        word = token.strip().rstrip(CLOSERS)[:-1].lower().lstrip("\"'“‘«(")
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False  # "Dr. Smith", the initial in "J. Smith"
    return True


def ends_clause(token: str) -> bool:
    """Whether a word ends a clause: a good place to split a sentence too long for one clip."""
    return _last_char(token) in CLAUSE_ENDS


# A sentence end, its closers, then space; scripts written without spaces (。, ።) need none.
_SPLIT = re.compile(
    r"[.!?…][" + re.escape(CLOSERS) + r"]*(?:\s+|$)|[" + re.escape("".join(SENTENCE_ENDS - set(".!?…"))) + r"]["
    + re.escape(CLOSERS) + r"]*\s*"
)


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences, keeping each one's end punctuation."""
    # Walk the text piece by piece so abbreviations ("Dr.") do not end a sentence.
    pieces, start = [], 0
    for m in _SPLIT.finditer(text):
        piece = text[start:m.end()]
        words = piece.split()
        if words and ends_sentence(words[-1]):
            pieces.append(piece.strip())
            start = m.end()
    rest = text[start:].strip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]
