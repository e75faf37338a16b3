"""Amharic G2P: the built-in rules on our own lexicon, gemination marks, the epitran and transphone backends,
the scoring, and the built-in converter against epitran on WikiPron (bench/data, evaluation only)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from xtts_finetune.text.amharic import normalize_amharic, romanize_ipa
from xtts_finetune.text.amharic_g2p import amharic_g2p
from xtts_finetune.text.frontends import _said, prepare_text, run_g2p
from xtts_finetune.text.normalize import normalize_transcript

WIKIPRON = Path(__file__).parent.parent / "bench" / "data" / "amh_wikipron_broad.tsv"

# Our own small lexicon (word, IPA), written for this test from Amharic phonology: a glottal onset on
# vowel-initial words, r a tap when single, ጸ = tsʼ, ኸ = h, the suffix palatals ɲ and tʃ geminate.
LEXICON = {
    "ሰላም": "səlam", "ልጅ": "lɨdʒ", "ቤት": "bet", "ሀገር": "haɡəɾ", "ቋንቋ": "kʼʷankʼʷa", "አማርኛ": "ʔamaɾɨɲːa",
    "ክፍል": "kɨfɨl", "ጤና": "tʼena", "ውሃ": "wɨha", "ቡና": "buna", "ምግብ": "mɨɡb", "ዶሮ": "doɾo",
    "ኢትዮጵያ": "ʔitjopʼja", "ጫማ": "tʃʼama", "ሸማ": "ʃəma", "ዛፍ": "zaf", "ኮከብ": "kokəb", "ጓደኛ": "ɡʷadəɲːa",
    "እናት": "ʔɨnat", "አባት": "ʔabat", "ትምህርት": "tɨmhɨɾt", "ልብስ": "lɨbs", "ሀሳብ": "hasab", "ጸሐይ": "tsʼəhaj",
    "ኹሉ": "hulu", "ሳምንት": "samɨnt", "ሽንብራ": "ʃɨnbɨɾa", "አፍንጫ": "ʔafɨntʃʼa", "ብዕር": "bɨʔɨɾ",
    "ውሾች": "wɨʃotʃː", "አንቺ": "ʔantʃi", "ክብር": "kɨbɨɾ", "ሕዝብ": "hɨzb", "ቍርስ": "kʼʷɨɾs", "ኧረ": "ʔəɾə",
    "ሏ": "lʷa", "ፙ": "mja",
}


@pytest.mark.parametrize("word", sorted(LEXICON))
def test_builtin_g2p_on_our_lexicon(word):
    assert amharic_g2p(normalize_amharic(word)) == LEXICON[word]


def test_epenthesis_follows_syllable_structure():
    # word-final clusters stay when sonority does not rise, and are broken when it does
    assert amharic_g2p("ሚስት") == "mist" and amharic_g2p("ፊልም") == "film" and amharic_g2p("እግር") == "ʔɨɡɨɾ"
    # three consonants: ɨ where the syllable boundary it leaves falls in sonority
    assert amharic_g2p("እግርጌ") == "ʔɨɡɨɾɡe" and amharic_g2p("ሹምብራ") == "ʃumbɨɾa"
    # a bare word-initial consonant before another always takes ɨ; a one-letter bare word too
    assert amharic_g2p("ስድስት") == "sɨdɨst" and amharic_g2p("ን") == "nɨ"


def test_gemination_marks_survive_normalisation_and_are_honoured():
    assert normalize_amharic("ሐ፟ሳብ ሠ፝ላም ሰ፞") == "ሀ፟ሳብ ሰ፝ላም ሰ፞"  # folded rows, marks kept through NFC
    assert normalize_transcript("ሐ፟ሳብ ሠ፝ላም", "am") == "ሐ፟ሳብ ሠ፝ላም"  # and through dataset cleaning
    assert amharic_g2p("ሰ፟ማ") == "sːəma" and amharic_g2p("ሰ፟ማ", gemination="double") == "ssəma"
    assert amharic_g2p("ሰ፞ላም") == "səːlam" and amharic_g2p("ሰ፝ላም") == "sːəːlam"
    # a geminate counts as two consonants: ɨ moves (ድንች -> dɨntʃ, ድን፟ች -> dɨnːɨtʃ)
    assert amharic_g2p("ድንች") == "dɨntʃ" and amharic_g2p("ድን፟ች") == "dɨnːɨtʃ"
    assert amharic_g2p("ዐረ፟ሰ") == "ʔarːəsə"  # a geminate r is a trill, a single one a tap
    assert romanize_ipa(amharic_g2p("ድን፟ች ሰ፝ላም")) == "dïnnïch sseelam"  # length doubles the letter


def test_romanised_phones_use_only_latin_letters_and_marks():
    text = romanize_ipa(amharic_g2p("ጫማ ቋንቋ አማርኛ ክፍል ጸሐይ"))
    assert text == "ch'ama k'wank'wa amarïnynya kïfïl ts'ehaj"


def test_epitran_backend_runs_and_is_logged(caplog):
    _said.cache_clear()
    with caplog.at_level(logging.INFO, logger="xtts_finetune.text.frontends"):
        prepared = prepare_text("ሀገር ሰላም", "am", "phonemes", g2p="epitran")
    assert prepared.g2p_backend == "epitran"
    assert prepared.g2p == "həɡər səlam"  # epitran's amh-Ethi-pp reads ሀ as hə, where ours says ha
    assert "G2P for am: epitran" in caplog.text
    assert run_g2p("ሀገር", "am")[1] == "builtin"


def test_transphone_without_its_model_files_says_so_and_falls_back(tmp_path, monkeypatch, caplog):
    # transphone installed as its wheel lays it out, but its model files (downloaded on first use) absent;
    # importing it would fail the test: the check must not import it (phonepiece installs packages on import)
    package = tmp_path / "transphone"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    _said.cache_clear()
    with caplog.at_level(logging.INFO, logger="xtts_finetune.text.frontends"):
        ipa, used = run_g2p("ሰላም", "am", "transphone")
    assert (ipa, used) == ("səlam", "builtin")
    assert "G2P backend transphone is not available (transphone's model files are not in" in caplog.text
    assert str(package / "data" / "model") in caplog.text and "using the built-in converter" in caplog.text
    assert "G2P for am: builtin" in caplog.text


def test_g2p_scoring_counts_phone_and_word_errors_under_each_convention(tmp_path):
    from xtts_finetune.text.g2p_score import phones, read_lexicon, score

    assert phones("tʃʼama kʷa bːə") == ["tʃʼ", "a", "m", "a", "kʷ", "a", "bː", "ə"]
    assert phones("t͡ʃʼa") == phones("tʃʼa") == ["tʃʼ", "a"]
    assert phones("d͡ʒːa t͡sʼa") == ["dʒː", "a", "tsʼ", "a"]  # a geminate or ejective affricate is one phone
    lexicon = tmp_path / "lex.tsv"
    lexicon.write_text("ሰላም\tsəlaːm\nቤት\tbet\nልጅ\tʔɨlɨdʒ\n", encoding="utf-8")
    pairs = read_lexicon(lexicon)
    predicted = {"ሰላም": "səlam", "ቤት": "bet", "ልጅ": "ɨlɨdʒ"}.get
    strict = score(pairs, predicted)
    assert strict.words == 3 and strict.word_error_rate == pytest.approx(2 / 3)
    assert strict.phone_error_rate == pytest.approx(2 / 13)  # aː vs a, a missing ʔ; 5 + 3 + 5 reference phones
    loose = score(pairs, predicted, length=False, optional_glottal=True)
    assert loose.phone_error_rate == 0 and loose.word_error_rate == 0
    builtin = score(sorted(LEXICON.items()), lambda w: amharic_g2p(normalize_amharic(w)))
    assert builtin.word_error_rate == 0


@pytest.mark.timeout(120)
def test_builtin_beats_epitran_on_wikipron_under_every_convention():
    """The figures of bench/README.md, kept from regressing: WikiPron is read here only to score."""
    from xtts_finetune.text.g2p_score import evaluate_backend, read_lexicon

    pairs = read_lexicon(WIKIPRON)
    builtin, epitran = evaluate_backend(pairs, "am", "builtin"), evaluate_backend(pairs, "am", "epitran")
    assert len(pairs) > 300 and epitran is not None
    for convention, ours in builtin.items():
        theirs = epitran[convention]
        assert ours["per"] < 0.6 * theirs["per"] and ours["wer"] < 0.7 * theirs["wer"], (convention, ours, theirs)
