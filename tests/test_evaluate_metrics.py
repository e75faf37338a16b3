"""Evaluation metrics against values worked out by hand, and the checkpoint recommendation rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate import metrics
from xtts_finetune.evaluate.checkpoints import kept_checkpoints, recommend
from xtts_finetune.evaluate.scoring import ModelScore, Output


@pytest.mark.parametrize(("reference", "heard", "cer", "wer"), [
    ("the cat sat", "the bat sat", 1 / 11, 1 / 3),  # one character of 11, one word of 3
    ("hello world", "hello", 6 / 11, 1 / 2),  # " world" deleted
    ("Hello, World!", "hello world", 0.0, 0.0),  # case and punctuation do not count
    ("I have 2 dogs.", "i have two dogs", 0.0, 0.0),  # numbers are spelled out as XTTS reads them
    ("Dr. Smith", "doctor smith", 0.0, 0.0),  # abbreviations too
    ("yes", "", 1.0, 1.0),  # nothing heard
])
def test_error_rates_on_known_strings(reference, heard, cer, wer):
    assert metrics.error_rates(reference, heard, "en") == pytest.approx((cer, wer))


def test_error_rates_use_the_language():
    assert metrics.error_rates("Ich habe 3 Hunde.", "ich habe drei hunde", "de") == (0.0, 0.0)
    assert metrics.error_rates("我有三只狗。", "我有三只猫", "zh")[0] == pytest.approx(1 / 5)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([1, 0], [0, 1], 0.0), ([1, 2, 3], [2, 4, 6], 1.0), ([1, 0], [-1, 0], -1.0), ([3, 4], [4, 3], 24 / 25),
    ([0, 0], [1, 1], 0.0),  # no direction: no similarity, not NaN
])
def test_cosine_similarity_on_known_vectors(a, b, expected):
    assert metrics.cosine_similarity(a, b) == pytest.approx(expected)


def test_babble_detector_measures_known_trailing_noise(tmp_path):
    import soundfile as sf
    from speech import espeak

    audio, rate = sf.read(espeak("The weather is lovely today.", tmp_path / "s.wav"), dtype="float32")
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    speech = audio[: loud[-1] + 1]
    end = len(speech) / rate
    rng = np.random.default_rng(0)
    silence = rng.standard_normal(int(0.5 * rate)).astype("float32") * 1e-4  # -80 dB: a room, not a sound
    babble = rng.standard_normal(int(0.6 * rate)).astype("float32") * 0.05
    clean = np.concatenate([speech, silence])
    noisy = np.concatenate([speech, silence, babble, silence])
    assert metrics.trailing_sound_seconds(clean, rate, end) == pytest.approx(0.0, abs=0.02)
    assert metrics.trailing_sound_seconds(noisy, rate, end) == pytest.approx(0.6, abs=0.04)
    assert not metrics.is_babble(metrics.trailing_sound_seconds(clean, rate, end))
    assert metrics.is_babble(metrics.trailing_sound_seconds(noisy, rate, end))
    # Speech itself counts as sound when the recogniser heard nothing of it.
    assert metrics.trailing_sound_seconds(clean, rate, 0.0) > 0.5 * end


def test_pace_counts_characters_without_spaces():
    assert metrics.seconds_per_character(1.2, "ab cd ef") == pytest.approx(0.2)


def _score(label, cer, similarity, babble=0.0, step=0, kind="checkpoint"):
    return ModelScore(label, kind, label, cer, cer, similarity, 1.0, babble, step, [])


def test_recommendation_takes_the_most_similar_within_the_cer_margin():
    scores = [_score("a", 0.10, 0.50, step=1), _score("b", 0.11, 0.70, step=2), _score("c", 0.20, 0.90, step=3),
              _score("base", 0.0, 0.95, kind="base")]
    assert recommend(scores) == "b"  # c sounds more like the speaker but drops words; the base is no candidate
    tied = [_score("early", 0.1, 0.7, step=1), _score("late", 0.1, 0.7, step=9), _score("babbles", 0.1, 0.7, 0.5, 5)]
    assert recommend(tied) == "early"
    assert recommend([_score("base", 0.0, 1.0, kind="base")]) is None


def test_kept_checkpoints_are_the_best_and_the_newest(tmp_path):
    for name in ("checkpoint_2.pth", "checkpoint_6.pth", "checkpoint_8.pth", "best_model_4.pth", "checkpoint_4.pth"):
        torch.save({}, tmp_path / name)
    (tmp_path / "checkpoint_10.pth").write_bytes(b"cut short by a kill")
    assert [p.name for p in kept_checkpoints(tmp_path, 3)] == ["best_model_4.pth", "checkpoint_6.pth", "checkpoint_8.pth"]
    assert [p.name for p in kept_checkpoints(tmp_path, 1)] == ["best_model_4.pth"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint"):
        kept_checkpoints(tmp_path / "empty")


def test_speaker_model_errors_name_the_folder_and_the_fix(tmp_path, monkeypatch):
    from xtts_finetune.evaluate.speaker import resolve_speaker_model

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="half is not a speaker-verification model folder"):
        resolve_speaker_model(tmp_path / "half")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        resolve_speaker_model("someone/some-sv-model")
    with pytest.raises(UserError, match="neither a folder nor a hub id"):
        resolve_speaker_model("./missing/folder")


def test_output_rows_average_into_the_table_row():
    outputs = [Output("a", "a", 0.0, 0.0, 0.8, 1.0, 1.0, 0.0, False), Output("b", "", 1.0, 1.0, 0.4, 2.0, 3.0, 0.5, True)]
    row = ModelScore.of("m", "fine-tuned", "m", outputs)
    assert (row.cer, row.similarity, row.pace, row.babble_share) == pytest.approx((0.5, 0.6, 2.0, 0.5))


def test_default_sentences_are_the_eval_texts_then_the_built_in_list(tmp_path):
    from xtts_finetune.evaluate.sentences import BUILTIN, evaluation_sentences

    from xtts_finetune.languages import XTTS_LANGUAGES

    assert set(BUILTIN) == set(XTTS_LANGUAGES) and all(len(v) == 3 for v in BUILTIN.values())
    clips = [(tmp_path / f"{i}.wav", f"text {i}") for i in range(10)]
    chosen = evaluation_sentences("de", clips, max_eval=2)
    assert [(s.text, s.source) for s in chosen] == [("text 0", "eval"), ("text 1", "eval")] + [
        (t, "builtin") for t in BUILTIN["de"]]
    assert [s.text for s in evaluation_sentences("de", clips, ["  one ", "", "two"])] == ["one", "two"]
    with pytest.raises(UserError, match="does not exist"):
        evaluation_sentences("de", clips, tmp_path / "missing.txt")
