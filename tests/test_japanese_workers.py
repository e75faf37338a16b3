"""Japanese text preparation in worker processes: the cause of the data-loader hang, and that it is gone.

coqui's tokenizer caches a MeCab tagger (cutlet -> fugashi) once it has read Japanese; that C object cannot
be pickled, so a DataLoader with spawned workers (Windows, macOS) could not hand its dataset to them.
"""

from __future__ import annotations

import pickle

import pytest
import torch

TEXTS = ["今日は良い天気です。", "猫が三匹います。", "東京に行きます。", "日本語の勉強は楽しい。"]


class JapaneseTokens(torch.utils.data.Dataset):
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __len__(self):
        return len(TEXTS)

    def __getitem__(self, i):
        return torch.tensor(self.tokenizer.encode(TEXTS[i], "ja"))


def test_coquis_tokenizer_cannot_cross_processes_once_it_read_japanese(tiny_xtts):
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    tokenizer = VoiceBpeTokenizer(str(tiny_xtts / "vocab.json"))
    tokenizer.encode(TEXTS[0], "ja")
    with pytest.raises(TypeError, match="pickl"):
        pickle.dumps(tokenizer)


@pytest.mark.timeout(240)
def test_japanese_is_prepared_in_two_spawned_data_loader_workers(tiny_xtts):
    from xtts_finetune.text.vocab import load_tokenizer

    tokenizer = load_tokenizer(tiny_xtts / "vocab.json", "ja")
    expected = [tokenizer.encode(t, "ja") for t in TEXTS]  # the tagger now exists in this process
    loader = torch.utils.data.DataLoader(JapaneseTokens(tokenizer), batch_size=None, num_workers=2,
                                         multiprocessing_context="spawn", timeout=200)
    got = [t.tolist() for t in loader]
    assert got == expected
    assert all(ids and ids[0] == tokenizer.tokenizer.token_to_id("[ja]") for ids in got)
    assert tokenizer.preprocess_text("猫が好きです。", "ja") == "neko ga suki desu."  # romanised, as XTTS reads ja


def _kanji_value(kanji: str) -> int:
    """The test's own reading of kanji numerals: digits, then 十百千 within a group, 万億兆 between groups."""
    digits = {c: i for i, c in enumerate("〇一二三四五六七八九")}
    small, large = {"十": 10, "百": 100, "千": 1000}, {"万": 10**4, "億": 10**8, "兆": 10**12}
    total = group = digit = 0
    for char in kanji:
        if char in digits:
            digit = digits[char]
        elif char in small:
            group += (digit or 1) * small[char]
            digit = 0
        else:
            total += (group + digit) * large[char]
            group = digit = 0
    return total + group + digit


def test_japanese_digits_become_kanji_that_read_back_as_the_number():
    import random

    from xtts_finetune.text.japanese import japanese_digits, kanji_number

    rng = random.Random(3)
    for n in [0, 1, 10, 11, 100, 1000, 10_000, 2024] + [rng.randrange(10**rng.randint(1, 15)) for _ in range(200)]:
        assert _kanji_value(kanji_number(n)) == n
    assert japanese_digits("3.5キロ、1,000円") == "三点五キロ、千円"


def test_cjk_cleaning_keeps_working():
    from xtts_finetune.text.frontends import prepare_text

    assert prepare_text("猫が3匹います。", "ja").text.startswith("neko ga san")
    assert "san1" in prepare_text("我有3只猫。", "zh").text
    assert prepare_text("Ich habe 3 Katzen.", "de").text == "ich habe drei katzen."
    assert "3" not in prepare_text("고양이 3마리", "ko").text
