"""Japanese training with data-loader workers: the cause of the hang, and an epoch trained with 2 workers.

coqui's tokenizer caches a MeCab tagger (cutlet -> fugashi) once it has read Japanese; that C object cannot
be pickled, so a DataLoader with spawned workers (Windows, macOS) could not hand its dataset to them and
the workers it had started waited. Our workers are sent the vocabulary and language, not a tokenizer
(train/data.py), and build their own.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
import shutil

import pytest
import torch

from xtts_finetune.cli import main
from xtts_finetune.train import TrainSettings, list_runs, read_events, train

TEXTS = ["今日は良い天気です。", "猫が三匹います。", "東京に行きます。", "日本語の勉強は楽しい。", "駅まで2キロ歩きました。"]


def test_coquis_tokenizer_cannot_cross_processes_once_it_read_japanese(tiny_xtts):
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    tokenizer = VoiceBpeTokenizer(str(tiny_xtts / "vocab.json"))
    tokenizer.encode(TEXTS[0], "ja")
    with pytest.raises(TypeError, match="pickl"):
        pickle.dumps(tokenizer)


@pytest.fixture(scope="module")
def japanese_workspace(tmp_path_factory):
    from speech import make_training_set

    root = tmp_path_factory.mktemp("ja")
    make_training_set(root / "made", TEXTS, voice="ja")
    shutil.copytree(root / "made", root / "ws" / "dataset", ignore=shutil.ignore_patterns("raw"))
    (root / "ws" / "dataset" / "lang.txt").write_text("ja\n")
    return root / "ws"


@pytest.mark.timeout(600)
def test_a_japanese_dataset_trains_with_two_workers_as_without(japanese_workspace, tiny_xtts):
    """Two epochs (the workers live across them): each batch the workers make (tokens through the
    Japanese front end in their own process, seeded crop, mel, collate) is the one the loop would make."""
    assert main(["train", str(japanese_workspace), "--base", str(tiny_xtts), "--epochs", "2", "--batch-size", "2",
                 "--patience", "0", "--lr", "1e-4", "--workers", "2", "--run-name", "workers"]) == 0
    assert not multiprocessing.active_children()  # the worker processes ended with the run
    workers = japanese_workspace / "runs" / "workers"
    assert json.loads((workers / "config.json").read_text())["settings"]["workers"] == 2
    settings = TrainSettings(epochs=2, batch_size=2, early_stopping_patience=None, lr=1e-4)
    in_loop = train(japanese_workspace, tiny_xtts, settings, run_name="loop")
    assert in_loop.status == "finished" and in_loop.steps == 4
    assert {r.name: r.status for r in list_runs(japanese_workspace)} == {"workers": "finished", "loop": "finished"}

    def losses(run_dir):
        return [(e["step"], e["loss"], e["loss_mel_ce"]) for e in read_events(run_dir) if e["type"] == "step"]

    assert len(losses(workers)) == 4 and losses(workers) == losses(in_loop.run_dir)
    ours = torch.load(workers / "checkpoint_4.pth", weights_only=True)["model"]
    reference = torch.load(in_loop.run_dir / "checkpoint_4.pth", weights_only=True)["model"]
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_worker_batches_carry_the_japanese_front_ends_tokens(tiny_xtts):
    from xtts_finetune.text.vocab import load_tokenizer
    from xtts_finetune.train.data import TextReader

    reader = pickle.loads(pickle.dumps(TextReader(str(tiny_xtts / "vocab.json"), "ja")))
    tokenizer = load_tokenizer(tiny_xtts / "vocab.json", "ja")
    assert reader(TEXTS[4]).tolist() == tokenizer.encode(TEXTS[4], "ja")
    assert pickle.loads(pickle.dumps(reader))._tokenizer is None  # a used reader still crosses processes
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
