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
