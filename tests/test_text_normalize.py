"""Transcript cleaning and sentence ends, per script."""

from __future__ import annotations

import pytest

from xtts_finetune.text.normalize import normalize_transcript
from xtts_finetune.text.sentences import ends_clause, ends_sentence, split_sentences


@pytest.mark.parametrize("raw,language,clean", [
    ("  [Music]  Hello   “world” , how are\nyou? ", "en", 'Hello "world", how are you?'),
    ("♪ la la la ♪ Thanks (laughs) a lot.", "en", "Thanks a lot."),
    ("- Hi there.\n- Yes | no.", "en", "Hi there. Yes no."),
    ("(applause)", "en", ""),
    ("[inaudible] ...", "en", ""),
    ("今天 天气 很好。", "zh", "今天天气很好。"),
    ("（笑）そうですね。", "ja", "そうですね。"),
    ("ሰላም ነው።", "am", "ሰላም ነው።"),
    ("क्या हाल है?", "hi", "क्या हाल है?"),
    ("\ufeffZero\u200bwidth", "en", "Zerowidth"),
])
def test_normalize_transcript(raw, language, clean):
    assert normalize_transcript(raw, language) == clean


def test_sentence_ends():
    assert ends_sentence("friend.") and ends_sentence('"Stop!"') and ends_sentence("好。") and ends_sentence("ነው።")
    assert ends_sentence("है।") and ends_sentence("صديقي؟") and ends_sentence("ነህ፧")
    assert not ends_sentence("Dr.") and not ends_sentence("J.") and not ends_sentence("hello,")
    assert ends_clause("well,") and ends_clause("然后，") and ends_clause("نعم،") and not ends_clause("end.")


def test_split_sentences_every_script():
    assert split_sentences("Dr. Smith paid 3.5 dollars. \"Really?\" Yes!") == ["Dr. Smith paid 3.5 dollars.", '"Really?"', "Yes!"]
    assert split_sentences("今天天气很好。我们去公园吧！好的") == ["今天天气很好。", "我们去公园吧！", "好的"]
    assert split_sentences("ሰላም ነው። እንዴት ነህ፧ नमस्ते। مرحبا؟ كيف") == ["ሰላም ነው።", "እንዴት ነህ፧", "नमस्ते।", "مرحبا؟", "كيف"]
