"""The transcription API on the tiny Whisper and espeak-ng speech: words, times, languages, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from speech import espeak
from xtts_finetune.dataset.transcribe import Transcriber, Transcript
from xtts_finetune.errors import UserError


@pytest.fixture(scope="module")
def transcriber(tiny_whisper):
    return Transcriber(str(tiny_whisper), device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    text = "Hello there, my friend. The weather is lovely today. Speech synthesis is fun to build."
    return espeak(text, tmp_path_factory.mktemp("speech") / "speech.wav")


def _assert_well_timed(transcript: Transcript):
    assert transcript.words
    assert all(w.text and w.text == w.text.strip() for w in transcript.words)
    assert all(0 <= w.start <= w.end <= transcript.duration + 0.01 for w in transcript.words)
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)


def test_transcribes_a_file_with_timed_words(transcriber, clip):
    reports = []
    transcript = transcriber.transcribe(clip, language="en", progress=reports.append)
    _assert_well_timed(transcript)
    assert transcript.language == "en" and transcript.language_probability == 1.0
    assert transcript.duration == pytest.approx(sf.info(str(clip)).duration, abs=0.01)
    assert transcript.words[0].text == "hello," and transcript.words[-1].text == "random!"
    assert transcript.warnings == []
    assert reports and all(r.stage == "transcribe" for r in reports)
    assert [r.fraction for r in reports] == sorted(r.fraction for r in reports) and reports[-1].fraction == 1.0


def test_numpy_input_and_batched_pipeline_agree_with_the_file(transcriber, clip):
    from faster_whisper import decode_audio

    audio = decode_audio(str(clip), sampling_rate=16000)
    from_file = transcriber.transcribe(clip, language="en")
    from_array = transcriber.transcribe(audio, language="en")
    assert from_array.words == from_file.words
    transcriber.batch_size = 4
    try:
        batched = transcriber.transcribe(audio, language="en")
    finally:
        transcriber.batch_size = 0
    _assert_well_timed(batched)
    assert [w.text for w in batched.words] == [w.text for w in from_file.words]


def test_language_is_detected_when_not_given(transcriber, clip):
    transcript = transcriber.transcribe(clip)
    assert transcript.language == "en" and transcript.language_probability > 0.9
    _assert_well_timed(transcript)


def test_forced_language_is_kept_but_a_confident_mismatch_warns(transcriber, clip, caplog):
    with caplog.at_level(logging.WARNING, logger="xtts_finetune.dataset.transcribe"):
        transcript = transcriber.transcribe(clip, language="zh-cn")  # our spelling of Whisper's "zh"
    assert transcript.language == "zh"
    assert len(transcript.warnings) == 1 and "'en'" in transcript.warnings[0] and "'zh'" in transcript.warnings[0]
    assert "sounds like 'en'" in caplog.text


def test_silence_gives_no_words_and_no_language_warning(transcriber):
    transcript = transcriber.transcribe(np.zeros(16000 * 3, dtype=np.float32), language="fr")
    assert transcript.words == [] and transcript.warnings == [] and transcript.duration == 3.0


def test_bad_audio_is_a_user_error_naming_the_file(transcriber, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(UserError, match="missing.wav"):
        transcriber.transcribe(missing)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"not audio at all" * 64)
    with pytest.raises(UserError, match="corrupt.mp3") as err:
        transcriber.transcribe(corrupt)
    assert err.value.fix
    with pytest.raises(UserError, match="mono"):
        transcriber.transcribe(np.zeros((2, 16000), dtype=np.float32))
    with pytest.raises(UserError, match="xx"):
        transcriber.transcribe(np.zeros(16000, dtype=np.float32), language="xx")


def test_models_that_cannot_be_had_are_user_errors_with_a_fix(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="large-v3") as err:
        Transcriber("large-v3", device="cpu", download_root=str(tmp_path / "cache"))
    assert "HF_HUB_OFFLINE" in err.value.fix and "folder" in err.value.fix
    with pytest.raises(UserError, match="no-such-model") as err:
        Transcriber("no-such-model", device="cpu")
    assert "large-v3" in err.value.fix
    with pytest.raises(UserError, match="not found"):
        Transcriber(str(tmp_path / "nowhere" / "whisper"), device="cpu")
    with pytest.raises(UserError, match="device"):
        Transcriber(str(tmp_path), device="tpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="model.bin"):
        Transcriber(str(tmp_path / "empty"), device="cpu")
