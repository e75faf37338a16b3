"""Caption cleaning on real-world subtitle lines: captions go, everything spoken stays.

Lines in the styles of broadcast SDH subtitles, fan subtitles (ASS), YouTube auto-captions and
film subtitles, in several languages. Each row: raw cue text, language, training text.
"""

from __future__ import annotations

import pytest

from xtts_finetune.text.normalize import normalize_transcript

CAPTION_LINES = [
    # Sound captions: removed.
    ("[MUSIC PLAYING]", "en", ""),
    ("(laughs)", "en", ""),
    ("(SIGHS)", "en", ""),
    ("[door slams]", "en", ""),
    ("♪ Never gonna give you up ♪", "en", ""),
    ("[Applause] Thank you all for coming.", "en", "Thank you all for coming."),
    ("(chuckles) I didn't see that coming.", "en", "I didn't see that coming."),
    ("Well, (clears throat) where was I?", "en", "Well, where was I?"),
    ("(Who could have told them that, after all these years?)", "en", ""),  # the whole cue bracketed
    # Speaker labels: removed; ordinary colons stay.
    ("JOHN: Get in the car.", "en", "Get in the car."),
    ("DR. HOUSE: It's never lupus.", "en", "It's never lupus."),
    ("MAN 2: Over here!", "en", "Over here!"),
    ("Note: the shop closes at five.", "en", "Note: the shop closes at five."),
    ("The time is 10:30 now.", "en", "The time is 10:30 now."),
    # Dialogue dashes and markers.
    ("- Are you coming?\n- In a minute.", "en", "Are you coming? In a minute."),
    ("-Yes.\n-No.", "en", "Yes. No."),
    (">> REPORTER: Good evening.", "en", "Good evening."),
    # Spoken parentheticals, signs and comparisons: kept.
    ("The prisoner (who had been sentenced to death) escaped.", "en",
     "The prisoner (who had been sentenced to death) escaped."),
    ("-5 degrees tonight.", "en", "-5 degrees tonight."),
    ("It was -12 outside.", "en", "It was -12 outside."),
    ("We need 2<3 and 5>1 for this.", "en", "We need 2<3 and 5>1 for this."),
    ("Chapter (3) begins here.", "en", "Chapter (3) begins here."),
    # Styling and ASS codes: removed, words kept.
    ("<i>I told you so.</i>", "en", "I told you so."),
    ("<font color=\"#ffff00\">Watch out!</font>", "en", "Watch out!"),
    ("{\\an8}Meanwhile, upstairs", "en", "Meanwhile, upstairs"),
    ("First line\\Nsecond line", "en", "First line second line"),
    ("Hard\\hspace here.", "en", "Hard space here."),
    ("<v Roger Bingham>We are in New York City", "en", "We are in New York City"),
    ("{y:i}MicroDVD italics.", "en", "MicroDVD italics."),
    # German, French, Spanish, Italian, Portuguese, Polish, Dutch.
    ("(lacht) Das war knapp.", "de", "Das war knapp."),
    ("[Musik] Guten Abend, meine Damen und Herren.", "de", "Guten Abend, meine Damen und Herren."),
    ("Der Mann (der gestern hier war) ist weg.", "de", "Der Mann (der gestern hier war) ist weg."),
    ("- Où vas-tu ?\n- Chez moi.", "fr", "Où vas-tu? Chez moi."),
    ("MARIE : Attends-moi !", "fr", "Attends-moi!"),  # French puts a space before the colon
    ("[RIRES] C'est « génial ».", "fr", 'C\'est " génial ".'),
    ("(suspira) No sé qué decirte.", "es", "No sé qué decirte."),
    ("¿Dónde está (el que vino ayer por la tarde)?", "es", "¿Dónde está (el que vino ayer por la tarde)?"),
    ("♪ Bésame mucho ♪ ¡Qué bonito!", "es", "¡Qué bonito!"),
    ("(APPLAUSI) Grazie mille.", "it", "Grazie mille."),
    ("[risos] Não acredito.", "pt", "Não acredito."),
    ("(wzdycha) Nie wiem, co powiedzieć.", "pl", "Nie wiem, co powiedzieć."),
    ("PIOTR: Chodź tutaj!", "pl", "Chodź tutaj!"),
    ("[gelach] Dat meen je niet.", "nl", "Dat meen je niet."),
    # Russian, Turkish, Arabic, Czech, Hungarian.
    ("(смеётся) Ну ты даёшь!", "ru", "Ну ты даёшь!"),
    ("ИВАН: Стой!", "ru", "Стой!"),
    ("[alkış] Teşekkür ederim.", "tr", "Teşekkür ederim."),
    ("[موسيقى] مرحبا بكم.", "ar", "مرحبا بكم."),
    ("(smích) To snad ne.", "cs", "To snad ne."),
    ("[zene] Jó estét kívánok.", "hu", "Jó estét kívánok."),
    # Chinese, Japanese, Korean, Hindi.
    ("（笑）そうですね。", "ja", "そうですね。"),
    ("【拍手】ありがとうございます。", "ja", "ありがとうございます。"),
    ("[音乐] 大家好，欢迎收看。", "zh-cn", "大家好，欢迎收看。"),
    ("(웃음) 정말요?", "ko", "정말요?"),
    ("[संगीत] नमस्ते दोस्तों।", "hi", "नमस्ते दोस्तों।"),
    # Entities are decoded by the subtitle reader; the cleaner keeps the characters.
    ("Tom & Jerry", "en", "Tom & Jerry"),
]


def test_the_table_is_large_and_multilingual():
    assert len(CAPTION_LINES) >= 40 and len({lang for _, lang, _ in CAPTION_LINES}) >= 10


@pytest.mark.parametrize("raw,language,clean", CAPTION_LINES)
def test_caption_cleaning_keeps_speech(raw, language, clean):
    assert normalize_transcript(raw, language) == clean
