"""Proof that the tiny Whisper is real: faster-whisper loads and runs it unchanged, timestamps and all."""

from __future__ import annotations

import json

import pytest

from speech import espeak

RELEASE_FILES = {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"}


@pytest.fixture(scope="module")
def model(tiny_whisper):
    from faster_whisper import WhisperModel

    return WhisperModel(str(tiny_whisper), device="cpu", compute_type="int8")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return espeak("Hello there, my friend. The weather is lovely today.", tmp_path_factory.mktemp("clip") / "clip.wav")


def test_folder_has_faster_whisper_layout(tiny_whisper):
    assert RELEASE_FILES <= {p.name for p in tiny_whisper.iterdir()}
    config = json.loads((tiny_whisper / "config.json").read_text())
    assert len(config["lang_ids"]) == 100 and config["alignment_heads"]
    assert json.loads((tiny_whisper / "preprocessor_config.json").read_text())["feature_size"] == 80


def test_tokenizer_has_whisper_special_token_ids(model):
    from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer

    hf = model.hf_tokenizer
    expected = {"<|endoftext|>": 50257, "<|startoftranscript|>": 50258, "<|en|>": 50259, "<|zh|>": 50260,
                "<|yue|>": 50358, "<|translate|>": 50359, "<|transcribe|>": 50360, "<|nospeech|>": 50363,
                "<|notimestamps|>": 50364, "<|0.00|>": 50365, "<|30.00|>": 51865}
    assert {token: hf.token_to_id(token) for token in expected} == expected
    assert all(hf.token_to_id(f"<|{code}|>") is not None for code in _LANGUAGE_CODES)
    tokenizer = Tokenizer(hf, multilingual=True, task="transcribe", language="fr")
    assert tokenizer.sot_sequence == [50258, hf.token_to_id("<|fr|>"), 50360]
    assert tokenizer.timestamp_begin == 50365
    assert tokenizer.decode(tokenizer.encode(" Hello, wörld!")) == " Hello, wörld!"
    assert tokenizer.non_speech_tokens  # symbol tokens exist for faster-whisper to suppress


def test_model_is_multilingual_and_detects_english(model, clip):
    from faster_whisper import decode_audio

    assert model.model.is_multilingual
    language, probability, all_probs = model.detect_language(audio=decode_audio(str(clip)))
    assert language == "en" and probability > 0.9 and len(all_probs) == 100


@pytest.mark.parametrize("batched", [False, True])
def test_transcribes_words_with_timestamps(model, clip, batched):
    from faster_whisper import BatchedInferencePipeline

    if batched:
        segments, info = BatchedInferencePipeline(model).transcribe(
            str(clip), language="de", word_timestamps=True, without_timestamps=False, batch_size=2)
    else:
        segments, info = model.transcribe(str(clip), language="de", word_timestamps=True, vad_filter=True)
    segments = list(segments)
    words = [w for s in segments for w in s.words]
    assert info.language == "de" and info.duration > 2
    assert [s.text for s in segments] == [" hello, this tiny model knows nothing.", " it speaks words at random!"]
    assert [w.word for w in words][:3] == [" hello,", " this", " tiny"]
    # The batched pipeline pads each VAD chunk to whole seconds, so times may overshoot by < 1 s.
    slack = 1.0 if batched else 0.05
    assert all(0 <= w.start <= w.end <= info.duration + slack for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(0.5 < w.probability <= 1 for w in words)
