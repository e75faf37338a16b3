"""The Amharic front end: numbers (expected values derived here by separate arithmetic, Ethiopic numerals
checked against abyssinica, an independent converter), normalisation.

G2P: tests/test_amharic_g2p.py."""

from __future__ import annotations

import random

import pytest
from abyssinica.numerals import arabic_to_geez, geez_to_arabic

from xtts_finetune.text.amharic import normalize_amharic
from xtts_finetune.text.amharic_numbers import ethiopic_value, expand_numbers, ordinal_words
from xtts_finetune.text.sentences import split_sentences

# The test's own reading of Amharic number words back into integers (values of the words, then the
# arithmetic of scales): not the converter's tables.
_WORD_VALUES = {"አንድ": 1, "ሁለት": 2, "ሦስት": 3, "አራት": 4, "አምስት": 5, "ስድስት": 6, "ሰባት": 7, "ስምንት": 8,
                "ዘጠኝ": 9, "አሥር": 10, "አሥራ": 10, "ሃያ": 20, "ሠላሳ": 30, "አርባ": 40, "ሃምሳ": 50, "ስልሳ": 60,
                "ሰባ": 70, "ሰማንያ": 80, "ዘጠና": 90, "ዜሮ": 0}
_SCALES = {"ሺ": 10**3, "ሚሊዮን": 10**6, "ቢሊዮን": 10**9, "ትሪሊዮን": 10**12}


def words_value(words: str) -> int:
    total = current = 0
    for word in words.split():
        if word in _WORD_VALUES:
            current += _WORD_VALUES[word]
        elif word == "መቶ":
            current = (current or 1) * 100
        else:
            total += (current or 1) * _SCALES[word]
            current = 0
    return total + current


@pytest.mark.parametrize("n", [0, 7, 10, 11, 19, 20, 99, 100, 101, 110, 999, 1000, 1001, 2016, 10100, 100000,
                               1_000_000, 1_234_567, 10**9, 10**12, 999_999_999_999_999])
def test_digits_read_as_the_number(n):
    assert words_value(expand_numbers(str(n))) == n


def test_random_numbers_up_to_a_trillion_in_digits_and_ethiopic_numerals():
    """Digits read as words that mean the number; the Ethiopic numeral abyssinica (an independent
    converter) writes for it reads the same."""
    rng = random.Random(17)
    for n in [rng.randrange(1, 10**rng.randint(1, 13)) for _ in range(300)]:
        words = expand_numbers(str(n))
        assert words_value(words) == n, (n, words)
        numeral = arabic_to_geez(n)
        assert ethiopic_value(numeral) == n, (n, numeral)
        assert expand_numbers(numeral).strip() == words, (n, numeral)


def test_random_ethiopic_numerals_read_as_abyssinica_reads_them():
    """The other way: numerals written as people write them (hundreds before ፼, several ፼, a bare ፻ or ፼
    for 1 of it), not only the canonical form, have the value abyssinica reads."""
    rng = random.Random(25)
    ones, tens = "፩፪፫፬፭፮፯፰፱", "፲፳፴፵፶፷፸፹፺"

    def pair() -> str:  # 1..99, or nothing (an implicit 1 before a mark)
        return rng.choice(["", rng.choice(tens), rng.choice(ones), rng.choice(tens) + rng.choice(ones)])

    for _ in range(300):
        numeral = "".join(pair() + rng.choice(["፻", "፼", "፻፼", "፼፼", "፻" + pair() + "፼"]) for _ in range(rng.randint(1, 3)))
        numeral += pair()
        assert ethiopic_value(numeral) == geez_to_arabic(numeral), numeral


def test_standard_ethiopic_readings():
    assert ethiopic_value("፼፻") == 10_000 + 100
    assert ethiopic_value("፳፻፲፮") == 20 * 100 + 16
    assert ethiopic_value("፻፼") == 100 * 10_000
    assert ethiopic_value("፼፼") == 10_000 * 10_000
    assert ethiopic_value("፪፻፶፼") == 250 * 10_000  # issue 25: hundreds before ፼ belong to its multiplier
    assert ethiopic_value("፭፻፼፫፼") == (500 * 10_000 + 3) * 10_000  # each ፼ multiplies all before it
    assert words_value(expand_numbers("፪፻፶፼")) == 2_500_000


def test_decimals_ordinals_money_percent_dates():
    assert expand_numbers("3.25") == "ሦስት ነጥብ ሁለት አምስት"
    assert expand_numbers("1,250") == expand_numbers("1250")
    assert words_value(expand_numbers("1,250")) == 1250
    assert ordinal_words(1) == "አንደኛ" and ordinal_words(3) == "ሦስተኛ" and ordinal_words(20) == "ሃያኛ"
    assert expand_numbers("5ኛ") == "አምስተኛ"
    assert expand_numbers("12.50 ብር") == "አሥራ ሁለት ብር ከሃምሳ ሳንቲም"
    assert expand_numbers("$3") == "ሦስት ዶላር"
    assert expand_numbers("25%") == "ሃያ አምስት በመቶ"
    assert expand_numbers("12/05/2016").startswith("ጥር ")  # month 5 of the Ethiopian calendar
    assert words_value(expand_numbers("12/05/2016").split(" ", 1)[1].replace("ሁለት ሺ", "|ሁለት ሺ").split("|")[1]) == 2016


def test_normalisation_folds_letters_maps_punctuation_and_expands_abbreviations():
    assert normalize_amharic("ሠላም") == normalize_amharic("ሰላም") == "ሰላም"
    assert normalize_amharic("ሐሳብ") == normalize_amharic("ኀሳብ") == "ሀሳብ"
    assert normalize_amharic("ዐይን") == "አይን" and normalize_amharic("ፀሐይ") == "ጸሀይ"
    assert normalize_amharic("ሰላም ነው። እንዴት ነህ፧ አዎ፣ ጥሩ") == "ሰላም ነው. እንዴት ነህ? አዎ, ጥሩ"
    assert normalize_amharic("ዶ/ር አበበ ት/ቤት") == "ዶክተር አበበ ትምህርት ቤት"
    assert "ዓ.ም" not in normalize_amharic("በ2016 ዓ.ም. ተወለደ")


def test_ethiopic_punctuation_ends_sentences():
    assert split_sentences("ሰላም ነው። እንዴት ነህ፧ ደህና ነኝ") == ["ሰላም ነው።", "እንዴት ነህ፧", "ደህና ነኝ"]


def test_evaluation_scores_amharic_through_its_front_end():
    from xtts_finetune.evaluate.metrics import error_rates

    assert error_rates("ሠላም ነው። 2 ልጆች", "ሰላም ነው ሁለት ልጆች", "am") == (0.0, 0.0)
