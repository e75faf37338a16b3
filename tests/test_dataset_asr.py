"""Recordings without subtitles, transcribed by the tiny random Whisper (structure only: its words are fixed babble)."""

from __future__ import annotations

import json

import soundfile as sf

from conftest import SENTENCES
from speech import spoken_recording
from xtts_finetune.cli import main
from xtts_finetune.dataset import DatasetSettings, create_dataset, list_segments
from xtts_finetune.dev.tiny_whisper import SENTENCES as WHISPER_SENTENCES
from xtts_finetune.progress import Progress

BABBLE = set(" ".join(WHISPER_SENTENCES).replace(",", "").replace(".", "").replace("!", "").split())


def test_transcribed_recording_in_pieces_becomes_clips_within_bounds(tmp_path, tiny_whisper):
    wav = tmp_path / "long.wav"
    spoken_recording(wav, SENTENCES * 3, sentence_gap=(0.6, 1.2))  # about 45 s
    reports: list[Progress] = []
    settings = DatasetSettings(piece_seconds=20.0, max_seconds=6.0)  # three pieces, cut at silences
    report = create_dataset(tmp_path / "ws", language="en", audio=[wav], whisper_model=str(tiny_whisper),
                            settings=settings, progress=reports.append)
    assert not report.failed and report.added
    segments = list_segments(tmp_path / "ws")
    duration = sf.info(wav).duration
    assert {seg.start // 20 for seg in segments} >= {0.0, 1.0}  # clips come from more than one piece
    for seg in segments:
        assert 0 <= seg.start < seg.end <= duration + 1e-6
        assert seg.rejected or 0.33 <= seg.duration <= 6.0
        if seg.active:
            assert set(seg.text.lower().replace(",", "").replace(".", "").replace("!", "").split()) <= BABBLE
            assert abs(sf.info(tmp_path / "ws" / "dataset" / seg.audio_file).duration - seg.duration) < 0.002
    assert {"dataset", "transcribe"} <= {p.stage for p in reports}
    manifest = json.loads((tmp_path / "ws" / "dataset" / "dataset.json").read_text())
    assert manifest["sources"][0]["kind"] == "asr" and abs(manifest["sources"][0]["duration"] - duration) < 0.01

    again = create_dataset(tmp_path / "ws", language="en", audio=[wav], whisper_model=str(tiny_whisper))
    assert again.skipped == [str(wav)] and not again.added


def test_cli_create_from_audio(tmp_path, tiny_whisper, capsys):
    wav = tmp_path / "talk.wav"
    spoken_recording(wav, SENTENCES[:3])
    ws = tmp_path / "ws"
    code = main(["dataset", "create", str(ws), "--language", "en", "--audio", str(wav),
                 "--whisper-model", str(tiny_whisper), "--speaker", "Bob", "--loudness-normalize"])
    assert code == 0
    assert "added" in capsys.readouterr().out
    rows = (ws / "dataset" / "metadata_train.csv").read_text().splitlines() + \
        (ws / "dataset" / "metadata_eval.csv").read_text().splitlines()[1:]
    assert len(rows) >= 2 and all(r.endswith("|Bob") for r in rows[1:])
