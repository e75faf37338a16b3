"""Japanese numbers as kanji numerals, before XTTS's romaniser (cutlet) reads them.

coqui's Japanese cleaning romanises with cutlet, which leaves Arabic digits as digits ("3匹" -> "3hiki"),
so the model never learns to say them; written as kanji, cutlet reads them ("三匹" -> "sanbiki"/"sanhiki").
"""

from __future__ import annotations

import re

_DIGITS = "〇一二三四五六七八九"
_SMALL = [(1000, "千"), (100, "百"), (10, "十")]
_LARGE = [(10**12, "兆"), (10**8, "億"), (10**4, "万")]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def kanji_number(n: int) -> str:
    """0 <= n < 10^16 in kanji: 十, 百, 千 without a leading 一; 万, 億, 兆 with it (一万)."""
    if n == 0:
        return _DIGITS[0]
    out = ""
    for scale, mark in _LARGE:
        count, n = divmod(n, scale)
        if count:
            out += kanji_number(count) + mark
    for scale, mark in _SMALL:
        count, n = divmod(n, scale)
        if count:
            out += ("" if count == 1 else _DIGITS[count]) + mark
    return out + (_DIGITS[n] if n else "")


def japanese_digits(text: str) -> str:
    def number(match: re.Match) -> str:
        whole, _, fraction = match.group().partition(".")
        if len(whole) > 16:
            return "".join(_DIGITS[int(d)] for d in whole)
        return kanji_number(int(whole)) + ("点" + "".join(_DIGITS[int(d)] for d in fraction) if fraction else "")

    return _NUMBER.sub(number, text.replace(",", "") if re.search(r"\d,\d{3}", text) else text)
