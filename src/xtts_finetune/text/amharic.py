"""The Amharic front end: normalisation and a rule-based grapheme-to-phoneme converter.

Written Amharic spells some sounds with several letter rows (ሠ/ሰ, ሐ/ኀ/ሀ, ዐ/አ, ፀ/ጸ), has its own
punctuation and numerals, and does not mark the vowel ɨ or gemination. Folding the rows gives the
model one spelling per sound; G2P makes the vowels explicit for the *phonemes* mode.
Facts about the script: Unicode's Ethiopic block (rows of 8: 7 vowel orders and a labialised form)
and Leslau's "Reference Grammar of Amharic" (phonology, epenthesis).
"""

from __future__ import annotations

import re
import unicodedata

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


# -- G2P ----------------------------------------------------------------------------------------

# The consonant of each 8-letter row, by the row's first code point (IPA; ʼ marks ejectives).
_CONSONANTS = {
    0x1200: "h", 0x1208: "l", 0x1210: "h", 0x1218: "m", 0x1220: "s", 0x1228: "r", 0x1230: "s", 0x1238: "ʃ",
    0x1240: "kʼ", 0x1260: "b", 0x1268: "v", 0x1270: "t", 0x1278: "tʃ", 0x1280: "h", 0x1290: "n", 0x1298: "ɲ",
    0x12A0: "ʔ", 0x12A8: "k", 0x12B8: "x", 0x12C8: "w", 0x12D0: "ʔ", 0x12D8: "z", 0x12E0: "ʒ", 0x12E8: "j",
    0x12F0: "d", 0x1300: "dʒ", 0x1308: "ɡ", 0x1320: "tʼ", 0x1328: "tʃʼ", 0x1330: "pʼ", 0x1338: "sʼ",
    0x1340: "sʼ", 0x1348: "f", 0x1350: "p",
}
# Rows of labiovelars (qʷ, xʷ, kʷ, gʷ): orders ə, -, i, a, e, ɨ at offsets 0, 2, 3, 4, 5.
_LABIOVELARS = {0x1248: "kʼʷ", 0x1288: "xʷ", 0x12B0: "kʷ", 0x12C0: "xʷ", 0x1310: "ɡʷ"}
_VOWELS = ["ə", "u", "i", "a", "e", "", "o", "ʷa"]  # the seven orders, then the labialised 8th form
_LABIO_VOWELS = {0: "ə", 2: "i", 3: "a", 4: "e", 5: ""}
_H_ROWS = (0x1200, 0x1210, 0x1280)  # ሀ ሐ ኀ: the first order is said /ha/, not /hə/
EPENTHETIC = "ɨ"
_SONORANTS = ("r", "l", "m", "n")


def _segment(char: str) -> tuple[str, str | None] | None:
    """(consonant, vowel or None for a bare 6th order) of one Ethiopic syllable; None for other characters."""
    cp = ord(char)
    for row, consonant in _LABIOVELARS.items():
        if row <= cp < row + 8 and cp - row in _LABIO_VOWELS:
            return consonant, _LABIO_VOWELS[cp - row] or None
    row, order = cp - (cp - 0x1200) % 8, (cp - 0x1200) % 8
    consonant = _CONSONANTS.get(row)
    if consonant is None or not 0x1200 <= cp < 0x1358:
        return None
    vowel = _VOWELS[order]
    if order == 0 and (row in _H_ROWS or row in (0x12A0, 0x12D0)):
        vowel = "a"  # ሀ is /ha/, አ and ዐ alone are /a/
    return consonant, vowel or None


def _word_phones(syllables: list[tuple[str, str | None]]) -> str:
    """Join a word's syllables, giving a bare consonant ɨ where Amharic cannot leave it without a vowel:
    word-initially before a consonant, after another bare consonant (no three-consonant clusters), and
    before a word-final bare consonant that would otherwise end in two (ክፍል -> kɨfɨl), unless the first is a
    sonorant or the last an s (ትምህርት -> tɨmhɨrt, ልብስ -> lɨbs)."""
    out, bare_before = [], False
    for i, (consonant, vowel) in enumerate(syllables):
        last = i == len(syllables) - 1
        if vowel is None and not last:
            next_bare_final = i + 2 == len(syllables) and syllables[-1][1] is None
            final_cluster_ok = consonant in _SONORANTS or syllables[-1][0] == "s"  # -rt, -nt, -ls, -bs stay
            if i == 0 or bare_before or (next_bare_final and not final_cluster_ok):
                vowel = EPENTHETIC
        if consonant == "ʔ" and (i == 0 or vowel is None):
            consonant = ""  # a glottal stop is not heard word-initially or before a consonant
        out.append(consonant + (vowel or ""))
        bare_before = vowel is None
    return "".join(out)


def amharic_g2p(text: str) -> str:
    """Normalised Amharic text -> IPA, word by word; other characters (punctuation, Latin) pass through."""
    words = []
    for word in text.split():
        out, syllables = [], []
        for char in word:
            seg = _segment(char)
            if seg:
                syllables.append(seg)
                continue
            if syllables:
                out.append(_word_phones(syllables))
                syllables = []
            out.append(char)
        if syllables:
            out.append(_word_phones(syllables))
        words.append("".join(out))
    return " ".join(words)


# IPA -> Latin letters the base XTTS vocabulary already has (the *phonemes* mode); longest first.
_ROMAN = [("tʃʼ", "ch'"), ("tʃ", "ch"), ("dʒ", "j"), ("ʃ", "sh"), ("ʒ", "zh"), ("ɲ", "ny"), ("ʷ", "w"), ("ʼ", "'"),
          ("ɨ", "ï"), ("ə", "e"), ("e", "é"), ("ɡ", "g"), ("ʔ", "'"), ("ː", ":")]
_ROMAN_RE = re.compile("|".join(re.escape(a) for a, _ in _ROMAN))
_ROMAN_MAP = dict(_ROMAN)


def romanize_ipa(ipa: str) -> str:
    """IPA from any G2P as Latin letters (ɨ -> ï, ə -> e, e -> é, ʃ -> sh, ejective ʼ -> ')."""
    return _ROMAN_RE.sub(lambda m: _ROMAN_MAP[m.group()], ipa).replace("ːː", "ː")
