"""The speaking API on the tiny model: real generation, real clips, real caches."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from xtts_finetune.errors import UserError
from xtts_finetune.text.split import split_sentences

TWO = "Hello there, my friend. The weather is lovely today."
FOUR = TWO + " Speech synthesis is fun to build! Please read this sentence aloud?"


@pytest.fixture(scope="module")
def synth(tiny_export, tmp_path_factory):
    from xtts_finetune.synthesis import Synthesizer

    return Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path_factory.mktemp("latents"))


def test_split_sentences_across_scripts_and_limits():
    assert split_sentences("Dr. Smith paid 3.5 dollars. Then he left!  Fine?", 250) == [
        "Dr. Smith paid 3.5 dollars.", "Then he left!", "Fine?"]
    assert split_sentences("你好。今天天气很好！你呢？好的", 82) == ["你好。", "今天天气很好！", "你呢？", "好的"]
    assert split_sentences("ሰላም ነው። እንዴት ነህ፧ ደህና", 250) == ["ሰላም ነው።", "እንዴት ነህ፧", "ደህና"]
    assert split_sentences("नमस्ते। आप कैसे हैं?", 150) == ["नमस्ते।", "आप कैसे हैं?"]
    assert split_sentences("first line\nsecond line", 250) == ["first line", "second line"]
    long = "one two three, four five six seven eight nine ten, eleven twelve thirteen fourteen"
    pieces = split_sentences(long, 30)
    assert all(len(p) <= 30 for p in pieces) and " ".join(pieces) == long
    assert pieces[0] == "one two three,"  # cut at the comma before any space
    assert split_sentences("字" * 200, 82) == ["字" * 82, "字" * 82, "字" * 36]  # no spaces: hard cuts


def test_voices_and_languages(synth):
    assert synth.voices() == ["default", "ref_a", "ref_b", "Tiny Speaker"]
    assert "en" in synth.languages and "zh" in synth.languages
    assert synth.sample_rate == 24000


def test_speak_gives_24khz_audio_that_grows_with_the_text(synth):
    one = synth.speak("Hello there, my friend.", "en", seed=3)
    two = synth.speak(TWO, "en", seed=3)
    four = synth.speak(FOUR, "en", seed=3)
    for audio in (one, two, four):
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
        assert np.abs(audio).max() > 1e-4
    assert len(one) < len(two) < len(four)
    # Each sentence has its own seeded generator, so batched with others it says the same: the longer
    # text starts the same (to float error: the batch's padding changes summation order, not the codes).
    assert np.allclose(two[: len(one)], one, atol=1e-5) and np.allclose(four[: len(two)], two, atol=1e-5)
    # The join is faded: no sentence starts or ends on a jump.
    assert abs(one[0]) < 1e-3 and abs(one[-1]) < 1e-3


def test_stream_chunks_concatenate_to_speak(synth):
    chunks = list(synth.stream(FOUR, "en", voice="Tiny Speaker", seed=7, temperature=0.6))
    assert len(chunks) >= 4 and all(c.dtype == np.float32 for c in chunks)  # at least one per sentence
    spoken = synth.speak(FOUR, "en", voice="Tiny Speaker", seed=7, temperature=0.6)  # each sentence decoded whole
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(spoken) and np.abs(streamed - spoken).max() <= 1e-5 * np.abs(spoken).max()


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_one_sentence_streams_in_blocks_that_join_without_seams(synth, monkeypatch, speed):
    # Seed 0 makes the tiny GPT talk to its cap (70 codes); blocks of 4 codes, then 16, give several chunks.
    monkeypatch.setattr(synth, "stream_chunk_codes", 4)
    before = synth.stats.codes
    chunks = list(synth.stream("Hello there.", "en", voice="Tiny Speaker", seed=0, speed=speed))
    codes = synth.stats.codes - before
    assert len(chunks) >= 4 and len(chunks[0]) < len(chunks[1])  # a small first block: sound comes early
    spoken = np.concatenate(chunks)
    per_code = synth.samples_per_code / speed
    assert abs(len(spoken) - codes * per_code) <= 2 * per_code
    # No click where blocks meet: a seam jumps no more than the audio around it usually does.
    jumps = np.abs(np.diff(spoken))
    seams = np.cumsum([len(c) for c in chunks])[:-1] - 1
    assert jumps[seams].max() <= 2 * np.percentile(jumps, 99)
    # Windows reach past the vocoder's receptive field, so block by block is decoding in one go, to float error.
    monkeypatch.setattr(synth, "stream_chunk_codes", 10_000)
    whole = list(synth.stream("Hello there.", "en", voice="Tiny Speaker", seed=0, speed=speed))
    assert len(whole) == 1 and len(whole[0]) == len(spoken)
    assert np.abs(whole[0] - spoken).max() <= 1e-5 * np.abs(whole[0]).max()


def test_speed_changes_duration(synth):
    normal = synth.speak("Hello there, my friend.", "en", seed=5)
    fast = synth.speak("Hello there, my friend.", "en", seed=5, speed=2.0)
    assert len(fast) < len(normal)


def test_a_single_code_sped_up_still_decodes(synth):
    """A GPT that stops after one code, at speed 2: linear interpolation by 0.5 would leave no frame
    (a 500 from the server once), so the frame is kept and the sentence is short audio, not an error."""
    import torch

    vocoder, speaker = synth.vocoder, synth.model.speaker_manager.speakers["Tiny Speaker"]
    latents = torch.randn(1, synth.model.args.decoder_input_dim)
    assert vocoder.frames(latents, 0.5).shape[-1] >= 1
    with torch.inference_mode():
        wav, _ = vocoder.block(latents, 0, 1, None, speaker["speaker_embedding"], 0.5, last=True)
    assert 0 < len(wav) <= vocoder.samples_per_code and np.isfinite(wav).all()


def test_latents_cached_in_memory_and_on_disk(tiny_export, tmp_path):
    from speech import espeak

    from xtts_finetune.synthesis import Synthesizer

    first = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path / "cache")
    clip = espeak("A clip the user brings along.", tmp_path / "mine.wav")
    first.speak("Hi.", "en", voice="ref_a", seed=1)
    first.speak("Hi.", "en", voice="ref_a", seed=1)
    first.speak("Hi.", "en", voice=[clip], seed=1)
    first.speak("Again.", "en", voice=[clip], seed=1)
    assert (first.stats.latents_cache_misses, first.stats.latents_cache_hits) == (2, 2)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2

    second = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path / "cache")
    a = second.speak("Hi.", "en", voice="ref_a", seed=1)
    assert (second.stats.latents_cache_misses, second.stats.latents_disk_loads) == (0, 1)
    assert np.array_equal(a, first.speak("Hi.", "en", voice="ref_a", seed=1))  # same latents, same audio
    # A changed clip is a new key, not a stale hit.
    espeak("Something else entirely now.", clip)
    second.speak("Hi.", "en", voice=[clip], seed=1)
    assert second.stats.latents_cache_misses == 1


@pytest.mark.parametrize("kwargs, expected", [
    (dict(text=""), "empty"),
    (dict(text="   \n "), "empty"),
    (dict(text="hello", language="xx"), "zh"),  # lists the languages it speaks
    (dict(text="hello", voice="nobody"), "Tiny Speaker"),  # lists the voices
    (dict(text="Привет мир", language="ru"), "U+043F"),  # Cyrillic is not in the tiny vocab
    (dict(text="hello", temperature=0), "temperature"),
    (dict(text="hello", speed=10.0), "speed"),
    (dict(text="hello", top_p=1.5), "top_p"),
    (dict(text="hello", voice=["/no/such/clip.wav"]), "/no/such/clip.wav"),
])
def test_bad_requests_are_user_errors(synth, kwargs, expected):
    text = kwargs.pop("text")
    with pytest.raises(UserError) as err:
        synth.prepare(text, **kwargs)
    assert expected in str(err.value)


def test_long_numbers_are_cut_under_the_token_limit(synth):
    # Cleaning spells numbers out (20 digits become ~240 characters); no piece may overflow the GPT.
    request = synth.prepare("Call " + "1234567890" * 25 + " now.", "en")
    assert len(request.sentences) > 2
    limit = synth.model.args.gpt_max_text_tokens
    assert all(len(synth.model.tokenizer.encode(p.lower(), "en")) < limit for p in request.sentences)


def test_text_over_the_limit_is_refused(synth, monkeypatch):
    monkeypatch.setattr(synth, "max_chars", 20)
    with pytest.raises(UserError, match="limit is 20"):
        synth.speak("This sentence is longer than twenty characters.", "en")


def test_unreadable_reference_clip_is_named(synth, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(UserError, match="broken.wav"):
        synth.speak("Hi.", "en", voice=[bad])


def test_missing_incomplete_and_unknown_frontend_folders(tiny_export, tmp_path):
    from xtts_finetune.synthesis import Synthesizer

    with pytest.raises(UserError, match="does not exist"):
        Synthesizer(tmp_path / "nowhere")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="missing model.pth, vocab.json"):
        Synthesizer(tmp_path / "partial")
    odd = tmp_path / "odd"
    odd.mkdir()
    for name in ("config.json", "model.pth", "vocab.json"):
        os.symlink(tiny_export / name, odd / name)
    (odd / "model_card.json").write_text(json.dumps({"text_frontend": "klingon-phonemes"}))
    with pytest.raises(UserError, match="klingon-phonemes"):
        Synthesizer(odd)


def test_reference_clip_whose_name_looks_like_a_protocol(tiny_export, tmp_path, monkeypatch):
    import shutil

    from xtts_finetune.synthesis import Synthesizer

    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_export / "references" / "ref_a.wav", tmp_path / "concat:ref.wav")
    synth = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path / "latents")
    assert synth.speak("Hello there.", "en", ["concat:ref.wav"], seed=1).size > 0
