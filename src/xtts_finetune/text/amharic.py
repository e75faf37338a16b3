"""The Amharic front end: normalisation and a rule-based grapheme-to-phoneme converter.

Written Amharic spells some sounds with several letter rows (ሠ/ሰ, ሐ/ኀ/ሀ, ዐ/አ, ፀ/ጸ), has its own
punctuation and numerals, and does not mark the vowel ɨ or gemination (except by the optional marks ፟ ፝ ፞,
which NFC and the folding keep). Folding the rows gives the model one spelling per sound; G2P
(amharic_g2p.py) makes the vowels explicit for the *phonemes* mode.
Facts about the script: Unicode's Ethiopic block (rows of 8: 7 vowel orders and a labialised form)
and Leslau's "Reference Grammar of Amharic" (phonology, epenthesis).
"""

from __future__ import annotations

import re
import unicodedata

from xtts_finetune.text.amharic_g2p import amharic_g2p  # noqa: F401 - the front end's G2P, re-exported
from xtts_finetune.text.amharic_numbers import expand_numbers

ETHIOPIC = (0x1200, 0x137F)
# Rows with the same sound today: the first row of each pair is folded into the second, order by order.
_FOLD_ROWS = {0x1220: 0x1230, 0x1210: 0x1200, 0x1280: 0x1200, 0x12D0: 0x12A0, 0x1340: 0x1338}
_FOLD = {src + order: dst + order for src, dst in _FOLD_ROWS.items() for order in range(8)}
# Ethiopic punctuation as the marks the tokenizer knows; ። ፧ ፨ stay sentence ends (text/sentences.py).
_PUNCT = str.maketrans({"።": ".", "፣": ",", "፤": ";", "፥": ",", "፦": ":", "፧": "?", "፨": ".", "፡": " "})
ABBREVIATIONS = {
    "ዓ.ም.": "ዓመተ ምሕረት", "ዓ.ም": "ዓመተ ምሕረት", "ዓ.ዓ.": "ዓመተ ዓለም", "ት/ቤት": "ትምህርት ቤት",
    "ቤ/ክ": "ቤተ ክርስቲያን", "ጠ/ሚ": "ጠቅላይ ሚኒስትር", "ዶ/ር": "ዶክተር", "ወ/ሮ": "ወይዘሮ", "ወ/ሪት": "ወይዘሪት",
    "አ.አ.": "አዲስ አበባ", "ኪ.ሜ": "ኪሎ ሜትር", "ሆ/ል": "ሆስፒታል", "መ/ቤት": "መሥሪያ ቤት",
}
_ABBREVIATION = re.compile("|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True)))


def normalize_amharic(text: str) -> str:
    """NFC, abbreviations and numbers spelled out, letter rows folded, Ethiopic punctuation mapped."""
    text = unicodedata.normalize("NFC", text)
    text = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group()], text)
    text = expand_numbers(text)
    text = "".join(chr(_FOLD.get(ord(c), ord(c))) for c in text).translate(_PUNCT)
    text = re.sub(r"\s+([,.;:?!])", r"\1", " ".join(text.split()))
    return text.strip()


# IPA -> Latin letters the base XTTS vocabulary already has (the *phonemes* mode); longest first.
_ROMAN = [("tʃʼ", "ch'"), ("tʃ", "ch"), ("dʒ", "j"), ("ʃ", "sh"), ("ʒ", "zh"), ("ɲ", "ny"), ("ʷ", "w"), ("ʼ", "'"),
          ("ɾ", "r"), ("ɨ", "ï"), ("ə", "e"), ("e", "é"), ("ɡ", "g"), ("ʔ", "'"), ("ː", "")]
_ROMAN_RE = re.compile("|".join(re.escape(a) for a, _ in _ROMAN))
_ROMAN_MAP = dict(_ROMAN)
_GEMINATE = re.compile(r"(tʃʼ|tʃ|dʒ|tsʼ|ts|\w[ʼʷ]*)ː")


def romanize_ipa(ipa: str) -> str:
    """IPA from any G2P as Latin letters (ɨ -> ï, ə -> e, e -> é, ʃ -> sh, ejective ʼ -> '); the glottal onset
    of a vowel-initial word is left out (it is always there), a geminate doubled (bː -> bb)."""
    ipa = re.sub(r"(?<!\S)ʔ", "", ipa)
    ipa = _GEMINATE.sub(r"\1\1", ipa)
    return _ROMAN_RE.sub(lambda m: _ROMAN_MAP[m.group()], ipa)
