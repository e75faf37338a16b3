"""Amharic numbers as words: Arabic digits and Ethiopic numerals, decimals, ordinals, money, percent, dates.

A reader says "ሁለት ሺ አሥራ ስድስት", never "2016" or "፳፻፲፮"; the tokenizer would otherwise learn digits it
cannot pronounce. Number words are standard Amharic (Leslau, "Reference Grammar of Amharic", ch. on numerals).
"""

from __future__ import annotations

import re

ONES = ["", "አንድ", "ሁለት", "ሦስት", "አራት", "አምስት", "ስድስት", "ሰባት", "ስምንት", "ዘጠኝ"]
TENS = ["", "አሥር", "ሃያ", "ሠላሳ", "አርባ", "ሃምሳ", "ስልሳ", "ሰባ", "ሰማንያ", "ዘጠና"]
TEEN_PREFIX = "አሥራ"  # 11-19: "አሥራ አንድ"
ZERO, HUNDRED, THOUSAND, POINT = "ዜሮ", "መቶ", "ሺ", "ነጥብ"
SCALES = [(10**12, "ትሪሊዮን"), (10**9, "ቢሊዮን"), (10**6, "ሚሊዮን"), (10**3, THOUSAND)]
MAX_NUMBER = 10**15 - 1
# Ethiopian months, for numeric dates (dd/mm/yyyy in Amharic text is an Ethiopian-calendar date).
MONTHS = ["መስከረም", "ጥቅምት", "ኅዳር", "ታኅሣሥ", "ጥር", "የካቲት", "መጋቢት", "ሚያዝያ", "ግንቦት", "ሰኔ", "ሐምሌ", "ነሐሴ", "ጳጉሜ"]

# Ethiopic numerals: ፩..፱ are U+1369..U+1371, ፲..፺ U+1372..U+137A, ፻ hundred, ፼ ten thousand.
ETHIOPIC_DIGITS = {chr(0x1369 + i): i + 1 for i in range(9)} | {chr(0x1372 + i): 10 * (i + 1) for i in range(9)}
ETHIOPIC_HUNDRED, ETHIOPIC_MYRIAD = "\u137b", "\u137c"
ETHIOPIC_NUMERAL = re.compile("[\u1369-\u137c]+")


def number_words(n: int) -> str:
    """0 <= n <= MAX_NUMBER as Amharic words ("መቶ" and "ሺ" alone for 100 and 1000, as spoken)."""
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"{n} is out of range")
    if n == 0:
        return ZERO
    words = []
    for scale, name in SCALES:
        count, n = divmod(n, scale)
        if count:
            words += ([] if count == 1 and scale == 1000 else [number_words(count)]) + [name]
    hundreds, n = divmod(n, 100)
    if hundreds:
        words += ([] if hundreds == 1 else [ONES[hundreds]]) + [HUNDRED]
    tens, ones = divmod(n, 10)
    if tens == 1 and ones:
        words += [TEEN_PREFIX, ONES[ones]]
    else:
        words += [w for w in (TENS[tens], ONES[ones]) if w]
    return " ".join(words)


def ordinal_words(n: int) -> str:
    """The ordinal: "-ኛ" on the last word; a final consonant (6th order) first takes the ä vowel (1st order)."""
    words = number_words(n)
    last = words[-1]
    if 0x1200 <= ord(last) <= 0x137F and (ord(last) - 0x1200) % 8 == 5:
        words = words[:-1] + chr(ord(last) - 5)
    return words + "ኛ"


def ethiopic_value(numeral: str) -> int:
    """The value of an Ethiopic numeral, read the way Ethiopic software writes them (Daniel Yacob's
    algorithm, geez.org/Numerals): each ፼ multiplies by 10,000 all that comes before it, each ፻ by 100 all
    that comes before it since the last ፼, and a mark with nothing to multiply stands for 1 of itself.
    So ፪፻፶፼ = 250 x 10,000, ፻፼ = 10^6, ፼፼ = 10^8, ፼፻ = 10,000 + 100, ፭፻፼፫፼ = (500 x 10,000 + 3) x 10,000.
    (The Unicode Standard's summary, one coefficient per power of 100 with its own marks, would read ፪፻፶፼
    as 200 + 500,000: not how such numerals are written.)"""
    total = section = pair = 0  # before the last ፼ (multiplied), since it (below 10^4), the current 1..99
    for char in numeral:
        if char in ETHIOPIC_DIGITS:
            pair += ETHIOPIC_DIGITS[char]
        elif char == ETHIOPIC_HUNDRED:
            section, pair = ((section + pair) or 1) * 100, 0
        elif char == ETHIOPIC_MYRIAD:
            total, section, pair = ((total + section + pair) or 1) * 10_000, 0, 0
        else:
            raise ValueError(f"{char!r} is not an Ethiopic numeral")
    return total + section + pair


_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_MONEY = re.compile(rf"(?:\$\s*({_NUMBER})|({_NUMBER})\s*(ብር|\$|ዶላር))")
_PERCENT = re.compile(rf"({_NUMBER})\s*%")
_ORDINAL = re.compile(r"(\d+)\s*(?:ኛ|ኛው|ኛዋ)")
_PLAIN = re.compile(_NUMBER)


def _decimal_words(number: str) -> str:
    whole, _, fraction = number.replace(",", "").partition(".")
    words = _int_words(whole)
    if fraction:
        words += f" {POINT} " + " ".join(number_words(int(d)) for d in fraction)
    return words


def _int_words(digits: str) -> str:
    value = int(digits)
    if value > MAX_NUMBER:  # a serial or phone number: read digit by digit
        return " ".join(number_words(int(d)) for d in digits)
    return number_words(value)


def _money(match: re.Match) -> str:
    amount, unit = (match.group(1), "ዶላር") if match.group(1) else (match.group(2), match.group(3))
    unit = "ዶላር" if unit == "$" else unit
    whole, _, cents = amount.replace(",", "").partition(".")
    words = f"{_int_words(whole)} {unit}"
    if cents and int(cents):
        words += f" ከ{number_words(int(cents.ljust(2, '0')[:2]))} ሳንቲም"  # cents of a birr or a dollar
    return words


def _date(match: re.Match) -> str:
    day, month, year = (int(g) for g in match.groups())
    if not (1 <= day <= 30 and 1 <= month <= 13):
        return match.group(0)
    return f"{MONTHS[month - 1]} {number_words(day)} {number_words(year)}"


def expand_numbers(text: str) -> str:
    """Every number in Amharic text as words; Ethiopic numerals are converted to Arabic digits first."""
    text = ETHIOPIC_NUMERAL.sub(lambda m: f" {ethiopic_value(m.group())} ", text)
    text = _DATE.sub(_date, text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(lambda m: f"{_decimal_words(m.group(1))} በመቶ", text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))) if int(m.group(1)) <= MAX_NUMBER else m.group(0), text)
    return _PLAIN.sub(lambda m: _decimal_words(m.group()), text)
