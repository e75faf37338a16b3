"""The data stage on real speech (LibriSpeech readers, tests/data/real) with the real Whisper tiny.en:
transcription, clips, the target voice, diarization, clip quality and loudness normalisation.

Who speaks when is known exactly (the talk is laid from single-reader utterances), so kept clips are
judged against that truth rather than against a second speaker model.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from real_speech import REAL, RATE, conversation, load, speaker_at, utterances, whisper_tiny_en
from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, load_manifest
from xtts_finetune.dataset.quality import measure
from xtts_finetune.dataset.voices import DEFAULT_THRESHOLD, Separation
from xtts_finetune.evaluate.metrics import error_rates

IRON = ("there's iron they say in all our blood and a grain or two perhaps is good but his he makes me harshly "
        "feel has got a little too much of steel anon")  # LibriSpeech's transcript of 1688-142285-0000
TALK = [("1688", 2), ("2609", 0), ("3331", 0), ("1688", 3), ("2609", 3), ("1688", 5)]  # 1688 speaks most (17 s of 32)


@pytest.fixture(scope="module")
def transcriber():
    from xtts_finetune.dataset.transcribe import Transcriber

    return Transcriber(str(whisper_tiny_en()), device="cpu")


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    path = tmp_path_factory.mktemp("talk") / "talk.wav"
    return path, conversation(path, TALK)


def test_real_whisper_transcribes_and_cuts_real_speech(tmp_path, transcriber):
    ws = tmp_path / "ws"
    report = create_dataset(ws, language="en", audio=[REAL / "1688-142285-0000.opus"], transcriber=transcriber)
    clips = [s for s in load_manifest(ws).segments if s.active]
    assert len(clips) >= 2 and not report.failed, report.summary()
    assert error_rates(IRON, " ".join(s.text for s in clips), "en")[0] < 0.25
    for seg in clips:
        audio, rate = sf.read(ws / "dataset" / seg.audio_file)
        assert 0.5 <= len(audio) / rate <= 11.6
        assert seg.snr > 15 and not seg.quality and seg.clipped == 0 and -35 < seg.lufs < -10


def test_speaker_encoder_separates_real_readers():
    """The calibrated threshold lies between every same-reader and every other-reader pair of the test files."""
    from xtts_finetune.dataset.voice_encoder import load_voice_encoder

    encoder = load_voice_encoder()
    files = sorted(REAL.glob("*.opus"))
    vectors = np.stack([encoder.embed(load(f, 16000), 16000) for f in files])
    found = Separation.of(vectors, [f.name.split("-")[0] for f in files])
    assert found.same.min() > DEFAULT_THRESHOLD > found.other.max(), (found.same.min(), found.other.max())
    assert found.errors(DEFAULT_THRESHOLD) == (0.0, 0.0)


def test_speaker_reference_keeps_only_that_voice(tmp_path, talk, capsys):
    path, truth = talk
    code = main(["dataset", "create", str(tmp_path / "ws"), "--language", "en", "--audio", str(path),
                 "--whisper-model", str(whisper_tiny_en()), "--speaker-reference", str(utterances("1688")[4])])
    out = capsys.readouterr().out
    assert code == 0 and "another voice: similarity" in out and f"below {DEFAULT_THRESHOLD:.2f}" in out
    segments = load_manifest(tmp_path / "ws").segments
    kept = [s for s in segments if s.active]
    voices = [speaker_at(truth, s.start, s.end) for s in kept]
    assert sum(max(v, key=v.get) == "1688" for v in voices) >= 0.9 * len(kept)
    target = sum(t.end - t.start for t in truth if t.speaker == "1688")
    assert sum(v.get("1688", 0.0) for v in voices) >= 0.5 * target
    assert all(len(v) == 1 for v in voices), "a clip holds two voices"
    left_out = [s for s in segments if s.rejected and s.rejected.startswith("another voice")]
    assert left_out and all(s.similarity < DEFAULT_THRESHOLD for s in left_out)
    # The UI's table shows the same, and the left-out clips can be played there.
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.tab_dataset import CLIP_COLUMNS, _clip_path, _clip_rows, _create_args

    ui = UI(workspace=tmp_path / "ws", jobs=None)
    rows = {row[0]: dict(zip(CLIP_COLUMNS, row)) for row in _clip_rows(ui)}
    assert all(rows[s.id]["Voice"] < DEFAULT_THRESHOLD and "another voice" in rows[s.id]["State"] for s in left_out)
    assert all(_clip_path(ui, s) for s in left_out) and all(rows[s.id]["SNR dB"] != "" for s in kept)
    args = _create_args({"workspace": tmp_path / "ws", "language": "en", "voice_threshold": 0.8})
    assert args["settings"].voice_threshold == 0.8 and args["settings"].min_seconds == 0.5 and "voice_threshold" not in args


def test_main_speaker_and_diarization(tmp_path, talk, transcriber):
    path, truth = talk
    create_dataset(tmp_path / "ws", language="en", audio=[path], transcriber=transcriber, main_speaker=True, diarize=True)
    segments = load_manifest(tmp_path / "ws").segments
    kept = [s for s in segments if s.active]
    assert kept and all(max(speaker_at(truth, s.start, s.end), key=speaker_at(truth, s.start, s.end).get) == "1688"
                        for s in kept)
    # Diarization: every clip (kept or not) named; each name is one reader's, and each reader has one name.
    named = [s for s in segments if s.duration >= 1.0]
    by_name: dict[str, dict[str, float]] = {}
    for s in named:
        for who, seconds in speaker_at(truth, s.start, s.end).items():
            by_name.setdefault(s.speaker, {}).setdefault(who, 0.0)
            by_name[s.speaker][who] += seconds
    assert set(by_name) <= {f"speaker_{n}" for n in range(1, 5)} and len(by_name) >= 3
    majority = {name: max(seconds, key=seconds.get) for name, seconds in by_name.items()}
    right = sum(seconds[majority[name]] for name, seconds in by_name.items())
    assert right >= 0.85 * sum(sum(seconds.values()) for seconds in by_name.values())
    assert {"1688", "2609", "3331"} <= set(majority.values())
    # A later run names a voice it met before as before (dataset/voices.json).
    create_dataset(tmp_path / "ws", language="en", audio=[utterances("2609")[4]], transcriber=transcriber, diarize=True)
    later = [s for s in load_manifest(tmp_path / "ws").segments if s.source != segments[0].source and s.duration >= 1.0]
    assert later and {s.speaker for s in later} == {name for name, who in majority.items() if who == "2609"}


def test_quality_flags_noise_music_and_clipping_on_real_speech():
    clean = load(REAL / "2609-156975-0002.opus")
    seconds = np.arange(len(clean)) / RATE
    chord = sum(np.sin(2 * np.pi * f * seconds) for f in (220.0, 277.2, 329.6, 440.0)) * 0.04
    noise = np.random.default_rng(0).normal(0, 0.06, len(clean))
    assert measure(clean, RATE).flag is None
    assert "heavy noise" in measure((clean + noise).astype(np.float32), RATE).flag
    assert "music" in measure((clean + chord).astype(np.float32), RATE).flag
    hot = np.clip(clean * 8, -1, 1).astype(np.float32)
    assert measure(hot, RATE).clipped > 100 and measure(clean, RATE).clipped == 0


def test_loudness_normalisation_on_real_speech(tmp_path):
    """A quiet and a loud real recording both come out at EBU R128's -23 LUFS, without clipping."""
    from xtts_finetune.dataset.media import decode_audio
    from xtts_finetune.dataset.quality import loudness

    speech = load(REAL / "1688-142285-0001.opus")
    for gain_db in (-25.0, 8.0):
        path = tmp_path / f"gain{gain_db}.wav"
        sf.write(path, np.clip(speech * 10 ** (gain_db / 20), -1, 1), RATE, subtype="FLOAT")
        before = loudness(sf.read(path)[0], RATE)
        after = decode_audio(path, RATE, loudness_normalize=True)
        assert abs(before + 23) > 6 and abs(loudness(after, RATE) + 23) < 1.5, (before, loudness(after, RATE))
        assert np.abs(after).max() < 1.0


def test_exclude_and_list_by_quality(tmp_path, capsys):
    """Clips measured noisy are listed as suspect beside the CER and excluded by `dataset exclude`."""
    noisy = load(REAL / "3331-159605-0009.opus")
    noisy = (noisy + np.random.default_rng(1).normal(0, 0.08, len(noisy))).astype(np.float32)
    folder = tmp_path / "corpus"
    (folder / "wavs").mkdir(parents=True)
    sf.write(folder / "wavs" / "noisy.wav", noisy, RATE, subtype="PCM_16")
    sf.write(folder / "wavs" / "clean.wav", load(REAL / "3331-159605-0003.opus"), RATE, subtype="PCM_16")
    sf.write(folder / "wavs" / "other.wav", load(REAL / "1998-15444-0001.opus"), RATE, subtype="PCM_16")
    (folder / "metadata.csv").write_text("noisy|A noisy line.\nclean|A clean line.\nother|Another reader.\n", encoding="utf-8")
    create_dataset(tmp_path / "ws", language="en", corpus=folder)
    assert main(["dataset", "list", str(tmp_path / "ws"), "--suspect"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and "heavy noise" in listed[0] and "SNR" in listed[0] and "LUFS" in listed[0]
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.tab_dataset import _clip_rows

    shown = _clip_rows(UI(workspace=tmp_path / "ws", jobs=None), suspects_only=True)  # the UI's "Only suspect clips"
    assert [row[0] for row in shown] == [listed[0].split("\t")[0]] and "heavy noise" in shown[0][5]
    assert main(["dataset", "exclude", str(tmp_path / "ws"), "--flagged"]) == 0
    assert "excluded 1 clips" in capsys.readouterr().out
    excluded = [s for s in load_manifest(tmp_path / "ws").segments if s.excluded]
    assert len(excluded) == 1 and excluded[0].quality
    # Corpus rows are one voice each: --speaker-reference keeps the rows in that voice.
    create_dataset(tmp_path / "ws2", language="en", corpus=folder, speaker_reference=REAL / "3331-159605-0007.opus")
    rows = {s.text: s for s in load_manifest(tmp_path / "ws2").segments}
    assert rows["A clean line."].active and rows["Another reader."].rejected.startswith("another voice")


def test_a_bad_speaker_reference_is_a_clear_error(tmp_path, capsys):
    from xtts_finetune.errors import UserError

    short = tmp_path / "short.wav"
    sf.write(short, load(REAL / "3331-159605-0003.opus")[: RATE // 2], RATE)
    with pytest.raises(UserError, match="short.wav: the speaker reference is 0.5 s long"):
        create_dataset(tmp_path / "ws", language="en", audio=[REAL / "3331-159605-0003.opus"], speaker_reference=short)
    with pytest.raises(UserError, match="both say which voice"):
        create_dataset(tmp_path / "ws", language="en", audio=[REAL / "3331-159605-0003.opus"], speaker_reference=short,
                       main_speaker=True)
    assert main(["dataset", "create", str(tmp_path / "ws"), "--language", "en", "--audio", str(short), "--voice-threshold", "1.5"]) == 2
    assert "voice threshold 1.5 must be between 0 and 1" in capsys.readouterr().err
