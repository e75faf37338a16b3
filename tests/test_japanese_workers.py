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
