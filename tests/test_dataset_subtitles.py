"""Subtitles: SRT/VTT cues become clips at the real sentence boundaries, with no speech recognition."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from conftest import SENTENCES
from speech import spoken_recording
from xtts_finetune.dataset import create_dataset, list_segments
from xtts_finetune.dataset.subtitles import read_subtitles
from xtts_finetune.errors import UserError


def _stamp(t: float, sep: str = ",") -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def loose_cues(layout, seed=0):
    """Cue times as subtitle editors write them: up to 150 ms early or late, never over a neighbour."""
    rng = np.random.default_rng(seed)
    return [(s["start"] - rng.uniform(0, 0.15), s["end"] + rng.uniform(-0.05, 0.15), s["text"]) for s in layout]


def write_srt(path, cues):
    path.write_text("".join(f"{i}\n{_stamp(a)} --> {_stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1)),
                    encoding="utf-8")
    return path


@pytest.fixture
def recording(tmp_path):
    """SENTENCES spoken with pauses, as a stereo 44.1 kHz FLAC (decoding must down-mix and resample)."""
    wav = tmp_path / "raw" / "talk.wav"
    wav.parent.mkdir()
    layout = spoken_recording(wav, SENTENCES)
    flac = tmp_path / "talk.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-ac", "2", "-ar", "44100", str(flac)], check=True)
    return flac, layout


def test_srt_import_cuts_clips_within_50ms_of_the_sentence_boundaries(tmp_path, recording):
    media, layout = recording
    srt = write_srt(tmp_path / "talk.srt", loose_cues(layout))
    report = create_dataset(tmp_path / "ws", language="en", audio=[media], subtitles=[srt])
    assert not report.failed and not report.rejected
    segments = list_segments(tmp_path / "ws")
    assert [s.text for s in segments] == SENTENCES
    for seg, sentence in zip(segments, layout):
        assert sentence["start"] - 0.05 <= seg.start <= sentence["start"], (seg, sentence)
        assert sentence["end"] <= seg.end <= sentence["end"] + 0.05, (seg, sentence)
        audio, sr = sf.read(tmp_path / "ws" / "dataset" / seg.audio_file)
        assert sr == 22050 and audio.ndim == 1
        assert len(audio) / sr == pytest.approx(seg.duration, abs=0.002)


def test_vtt_with_tags_settings_and_captions(tmp_path, recording):
    media, layout = recording
    cues = loose_cues(layout, seed=1)
    body = "".join(f"{_stamp(a, '.')} --> {_stamp(b, '.')} align:start position:10%\n<v Narrator>{text}</v>\n\n" for a, b, text in cues)
    folder = tmp_path / "media"
    folder.mkdir()
    media = media.rename(folder / media.name)
    vtt = folder / "talk.en.vtt"  # found beside the media and paired by name
    vtt.write_text(f"WEBVTT\n\nNOTE made by a test\n\n{body}", encoding="utf-8")
    assert [c.text.strip() for c in read_subtitles(vtt).cues] == SENTENCES
    report = create_dataset(tmp_path / "ws", language="en", audio=[folder])
    assert not report.failed
    segments = list_segments(tmp_path / "ws")
    assert [s.text for s in segments] == SENTENCES
    assert all(abs(seg.start - s["start"]) <= 0.05 and abs(seg.end - s["end"]) <= 0.05 for seg, s in zip(segments, layout))


def test_cues_are_merged_into_sentences_and_long_cues_split(tmp_path, recording):
    media, layout = recording
    # Sentence 0 over two cues (no end punctuation in the first), sentences 2-5 in one cue (too long).
    first = layout[0]
    mid = (first["words"][0][0] + first["words"][0][1]) / 2
    words = first["text"].split()
    cues = [(first["start"], mid, " ".join(words[:2])), (mid, first["end"], " ".join(words[2:])),
            (layout[1]["start"], layout[1]["end"], layout[1]["text"]),
            (layout[2]["start"], layout[5]["end"], " ".join(s["text"] for s in layout[2:]))]
    srt = write_srt(tmp_path / "talk.srt", cues)
    create_dataset(tmp_path / "ws", language="en", audio=[media], subtitles=[srt], settings=_settings(max_seconds=5.0))
    segments = list_segments(tmp_path / "ws")
    assert segments[0].text == SENTENCES[0]
    assert all(s.duration <= 5.0 and not s.rejected for s in segments)
    assert " ".join(s.text for s in segments) == " ".join(SENTENCES)


def _settings(**kw):
    from xtts_finetune.dataset import DatasetSettings

    return DatasetSettings(**kw)


def test_bad_subtitles_are_named(tmp_path):
    bad = tmp_path / "talk.srt"
    bad.write_text("no timings here\n", encoding="utf-8")
    with pytest.raises(UserError, match="talk.srt: no subtitle cues"):
        read_subtitles(bad)
    orphan = write_srt(tmp_path / "other.srt", [(0.5, 1.5, "Hello.")])
    report = create_dataset(tmp_path / "ws", language="en", audio=[tmp_path / "a.flac", tmp_path / "b.flac"], subtitles=[orphan])
    reasons = dict(report.failed)
    assert "no media file with the same name in its folder" in reasons[str(orphan)]
    assert "a.flac: file not found" in reasons[str(tmp_path / "a.flac")]


def test_a_cue_that_ends_before_it_starts_is_reported_not_dropped_silently(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nKept.\n\n2\n00:00:05,000 --> 00:00:04,000\nBackwards cue.\n",
                   encoding="utf-8")
    subs = read_subtitles(srt)
    assert [c.text for c in subs.cues] == ["Kept."]
    assert len(subs.dropped) == 1 and "talk.srt cue 2" in subs.dropped[0] and "Backwards cue." in subs.dropped[0]
