"""The languages XTTS v2 speaks, and the facts about each that more than one stage needs."""

from __future__ import annotations

# The 17 languages of the XTTS v2 release, by the codes its tokenizer uses ("zh" is "zh-cn" there).
XTTS_LANGUAGES: dict[str, str] = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "pl": "Polish", "tr": "Turkish", "ru": "Russian", "nl": "Dutch",
    "cs": "Czech", "ar": "Arabic", "zh": "Chinese", "ja": "Japanese", "hu": "Hungarian",
    "ko": "Korean", "hi": "Hindi",
}


def normalize_language(code: str) -> str:
    """Map user spellings (`EN`, `en-US`, `zh-cn`) onto our codes; unknown codes pass through lower-cased."""
    code = code.strip().lower().replace("_", "-")
    if code in ("zh-cn", "zh-tw", "zh-hans", "zh-hant"):
        return "zh"
    return code.split("-")[0] if code.split("-")[0] in XTTS_LANGUAGES else code


def tokenizer_language(code: str) -> str:
    """The language token XTTS's tokenizer expects."""
    code = normalize_language(code)
    return "zh-cn" if code == "zh" else code


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
