"""The built-in Amharic grapheme-to-phoneme converter: rules, no word list.

Each Ethiopic letter is a consonant and one of seven vowel orders; the sixth order is either a bare
consonant or the consonant + ɨ, and the script does not show which, nor gemination (unless the optional
marks U+135F, U+135D are written). The rules here decide where ɨ is said, from the syllable structure
Amharic allows: syllables are (C)V(C) inside a word, a word may end in two consonants when the sonority
does not rise (-st, -nt, -rt, -bs, but not -gr, -dn), a geminate counts as two consonants, and where a
cluster of three must be broken ɨ goes where the syllable boundary it leaves has falling sonority
(ሽንብራ ʃɨn.bɨ.ɾa, አፍንጫ ʔa.fɨn.tʃʼa). Sources of the facts: Unicode's Ethiopic block (rows of 8 letters),
Leslau, "Reference Grammar of Amharic" (1995) (epenthesis, the geminate palatals of suffixes such as -ɲɲa
and -otʃtʃ, the glottal onset of vowel-initial words, ኸ = h), Hayward & Hayward, "Amharic" in the IPA Handbook (1999) (r a tap when single,
a trill when geminate; ጸ = tsʼ). Scored against WikiPron in bench/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass

# The consonant of each 8-letter row, by the row's first code point (IPA; ʼ marks ejectives).
_CONSONANTS = {
    0x1200: "h", 0x1208: "l", 0x1210: "h", 0x1218: "m", 0x1220: "s", 0x1228: "r", 0x1230: "s", 0x1238: "ʃ",
    0x1240: "kʼ", 0x1260: "b", 0x1268: "v", 0x1270: "t", 0x1278: "tʃ", 0x1280: "h", 0x1290: "n", 0x1298: "ɲ",
    0x12A0: "ʔ", 0x12A8: "k", 0x12B8: "h", 0x12C8: "w", 0x12D0: "ʔ", 0x12D8: "z", 0x12E0: "ʒ", 0x12E8: "j",
    0x12F0: "d", 0x1300: "dʒ", 0x1308: "ɡ", 0x1320: "tʼ", 0x1328: "tʃʼ", 0x1330: "pʼ", 0x1338: "tsʼ",
    0x1340: "tsʼ", 0x1348: "f", 0x1350: "p",
}
# Rows of labiovelars (qʷ, hʷ, kʷ, hʷ, gʷ): orders ə, -, i, a, e, ɨ at offsets 0, 2, 3, 4, 5.
_LABIOVELARS = {0x1248: "kʼʷ", 0x1288: "hʷ", 0x12B0: "kʷ", 0x12C0: "hʷ", 0x1310: "ɡʷ"}
_VOWELS = ["ə", "u", "i", "a", "e", "", "o", "ʷa"]  # the seven orders, then the labialised 8th form
# Letters outside that pattern: ኧ (Amharic's ʔə, in the glottal row's 8th slot), and ፘ ፙ ፚ (rja, mja, fja).
_SPECIAL = {0x12A7: ("ʔ", "ə"), 0x1358: ("r", "ja"), 0x1359: ("m", "ja"), 0x135A: ("f", "ja")}
_LABIO_VOWELS = {0: "ə", 2: "i", 3: "a", 4: "e", 5: ""}
_LARYNGEAL_ROWS = (0x1200, 0x1210, 0x1280, 0x12B8, 0x12A0, 0x12D0)  # ሀ ሐ ኀ ኸ አ ዐ: first order said with a
GEMINATION, LENGTH, BOTH = "\u135f", "\u135e", "\u135d"  # ፟ ፞ ፝ (the last: gemination and vowel length)
EPENTHETIC = "ɨ"
# Coarse sonority: obstruents < nasals < liquids < glides (Amharic treats stop + fricative as a plateau).
_SONORITY = {"m": 2, "n": 2, "ɲ": 2, "l": 3, "r": 3, "w": 4, "j": 4}


@dataclass
class Letter:
    consonant: str
    vowel: str | None  # None: a sixth-order letter (bare consonant, or + ɨ by the rules)
    geminate: bool = False
    long: bool = False


def _letter(char: str) -> Letter | None:
    """One Ethiopic syllable as consonant + vowel; None for any other character."""
    cp = ord(char)
    if cp in _SPECIAL:
        return Letter(*_SPECIAL[cp])
    for row, consonant in _LABIOVELARS.items():
        if row <= cp < row + 8 and cp - row in _LABIO_VOWELS:
            return Letter(consonant, _LABIO_VOWELS[cp - row] or None)
    row, order = cp - (cp - 0x1200) % 8, (cp - 0x1200) % 8
    consonant = _CONSONANTS.get(row)
    if consonant is None or not 0x1200 <= cp < 0x1358:
        return None
    vowel = "a" if order == 0 and row in _LARYNGEAL_ROWS else _VOWELS[order]
    return Letter(consonant, vowel or None)


def _sonority(consonant: str) -> int:
    return _SONORITY.get(consonant, 1)


def _rising(first: Letter, second: Letter) -> bool:
    return _sonority(first.consonant) < _sonority(second.consonant)


def _final_coda(word: list[Letter]) -> int:
    """Index of the letter that is the nucleus of the word's last syllable when the word ends bare."""
    last, j = word[-1], len(word) - 2
    before = word[j] if j >= 0 else None
    cluster = (before is not None and before.vowel is None and j > 0 and not (last.geminate or before.geminate)
               and not _rising(before, last))
    return j - 1 if cluster else j


def place_epenthesis(word: list[Letter]) -> None:
    """Give ɨ to the bare letters that cannot stay bare, right to left, syllable by syllable."""
    i = len(word) - 1
    if word[i].vowel is None:  # the word ends in one or two coda consonants
        i = _final_coda(word)
        if i < 0:
            word[0].vowel = EPENTHETIC
            return
        word[i].vowel = word[i].vowel or EPENTHETIC
    while i >= 0:
        letter = word[i]
        if letter.vowel is not None:
            if letter.geminate and i > 0 and word[i - 1].vowel is None:
                word[i - 1].vowel = EPENTHETIC  # a geminate's first half is the coda: the letter before is an onset
            i -= 1
            continue
        j = i - 1  # `letter` is bare, before an onset: a coda if the letter before can be its nucleus
        bad_contact = _rising(letter, word[i + 1]) and j > 0 and not _rising(word[j], letter)
        if letter.geminate or j < 0 or (word[j].vowel is None and bad_contact):
            letter.vowel = EPENTHETIC  # say it as an onset: Cɨ
            continue
        word[j].vowel = word[j].vowel or EPENTHETIC
        i = j


def _geminate_by_rule(word: list[Letter]) -> None:
    """The palatals of Amharic's suffixes are geminate inside a word: ɲ before a vowel (-ɲɲa, -ɲɲo, ɨɲɲa 'we')
    and tʃ unless a bare sonorant precedes it (plural -otʃtʃ, -atʃtʃ-, ɨtʃtʃ 'this'; but ʔantʃi 'you')."""
    for before, letter in zip(word, word[1:]):
        if letter.consonant == "ɲ":
            letter.geminate |= letter.vowel is not None
        elif letter.consonant == "tʃ":
            letter.geminate |= not (before.vowel is None and _sonority(before.consonant) > 1)


def _phones(letter: Letter, double: bool) -> str:
    consonant = "ɾ" if letter.consonant == "r" and not letter.geminate else letter.consonant
    if letter.geminate:
        consonant = consonant + consonant if double else consonant + "ː"
    return consonant + (letter.vowel or "") + ("ː" if letter.long and letter.vowel else "")


def word_ipa(word: list[Letter], double: bool = False) -> str:
    _geminate_by_rule(word)
    place_epenthesis(word)
    return "".join(_phones(letter, double) for letter in word)


def amharic_g2p(text: str, gemination: str = "length") -> str:
    """Normalised Amharic text -> IPA, word by word; other characters (punctuation, Latin) pass through.

    Gemination (marked ፟ or ፝, or by rule) is written `length` (bː, as WikiPron and g2p_score's length
    switch expect) or `double` (bb); the vowel-length marks ፞ ፝ lengthen the vowel (aː).
    """
    double = gemination == "double"
    words = []
    for word in text.split():
        out, letters = [], []
        for char in word:
            letter = _letter(char)
            if letter:
                letters.append(letter)
            elif char in (GEMINATION, LENGTH, BOTH) and letters:
                letters[-1].geminate |= char != LENGTH
                letters[-1].long |= char != GEMINATION
            else:
                if letters:
                    out.append(word_ipa(letters, double))
                    letters = []
                out.append(char)
        if letters:
            out.append(word_ipa(letters, double))
        words.append("".join(out))
    return " ".join(words)
