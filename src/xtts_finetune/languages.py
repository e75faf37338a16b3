"""Languages: the 17 XTTS v2 speaks, and any other ISO 639 code a dataset may be in (names from pycountry)."""

from __future__ import annotations

from functools import lru_cache

from xtts_finetune.errors import UserError

# The 17 languages of the XTTS v2 release, by the codes its tokenizer uses ("zh" is "zh-cn" there).
XTTS_LANGUAGES: dict[str, str] = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "pl": "Polish", "tr": "Turkish", "ru": "Russian", "nl": "Dutch",
    "cs": "Czech", "ar": "Arabic", "zh": "Chinese", "ja": "Japanese", "hu": "Hungarian",
    "ko": "Korean", "hi": "Hindi",
}


def normalize_language(code: str) -> str:
    """Map user spellings (`EN`, `en-US`, `zh-cn`, `amh`) onto our codes: ISO 639-1 where one exists."""
    code = code.strip().lower().replace("_", "-")
    if code in ("zh-cn", "zh-tw", "zh-hans", "zh-hant"):
        return "zh"
    primary = code.split("-")[0]
    if primary in XTTS_LANGUAGES:
        return primary
    if len(primary) == 3:  # ISO 639-2/3: the 2-letter code when there is one ("amh" -> "am")
        found = _iso().get(primary)
        return found[0] if found else primary
    return code


def tokenizer_language(code: str) -> str:
    """The language token XTTS's tokenizer expects."""
    code = normalize_language(code)
    return "zh-cn" if code == "zh" else code


def is_known_to_xtts(code: str) -> bool:
    return normalize_language(code) in XTTS_LANGUAGES


@lru_cache(maxsize=1)
def _iso() -> dict[str, tuple[str, str]]:
    """Every ISO 639 code (2- and 3-letter) -> (our code, English name)."""
    import pycountry

    table = {}
    for lang in pycountry.languages:
        code = getattr(lang, "alpha_2", None) or lang.alpha_3
        name = lang.name.removesuffix(" (macrolanguage)")
        table[lang.alpha_3] = table.get(lang.alpha_3) or (code, name)
        if getattr(lang, "alpha_2", None):
            table[lang.alpha_2] = (code, name)
    return table


def language_name(code: str) -> str:
    code = normalize_language(code)
    if code in XTTS_LANGUAGES:
        return XTTS_LANGUAGES[code]
    found = _iso().get(code.split("-")[0])
    return found[1] if found else code


def check_language(code: str) -> str:
    """Our code for a user's language code; a UserError names the fix when it is not ISO 639."""
    normal = normalize_language(code)
    if normal in XTTS_LANGUAGES or normal.split("-")[0] in _iso():
        return normal
    raise UserError(f"{code!r} is not an ISO 639 language code",
                    fix="use a 2- or 3-letter code such as en, am, sw, ti, yo (xtts-finetune text --list-languages)")


def language_choices(two_letter_only: bool = False) -> list[tuple[str, str]]:
    """(label, code) for pickers: the 17 XTTS languages first (marked), then ISO 639 languages by name."""
    known = [(f"{name} ({code}) - known to XTTS", code) for code, name in XTTS_LANGUAGES.items()]
    others = {code: name for code, name in _iso().values()
              if code not in XTTS_LANGUAGES and (len(code) == 2 or not two_letter_only)}
    return known + sorted(((f"{name} ({code})", code) for code, name in others.items()), key=lambda c: c[0].lower())


# Unicode script (the first word of a character's name) -> the XTTS language written in it.
_SCRIPTS = {"CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja", "HANGUL": "ko", "CYRILLIC": "ru", "ARABIC": "ar",
            "DEVANAGARI": "hi"}


def guess_language(text: str, spoken: list[str]) -> str:
    """The language a text's script points to, among those `spoken` (for clients that cannot say one):
    kana means Japanese even among kanji; Latin (or nothing telling) means English, else the first spoken."""
    import unicodedata

    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = _SCRIPTS.get(unicodedata.name(char, "").split(" ")[0], "latin")
            counts[script] = counts.get(script, 0) + 1
    if counts.get("ja") and "ja" in spoken:
        return "ja"
    for script in sorted(counts, key=counts.get, reverse=True):
        if script != "latin" and script in spoken:
            return script
    return "en" if "en" in spoken or not spoken else spoken[0]
