"""Where clips come from: pairing by place, corpora by header, levels, unique ids, file modes."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from speech import espeak, spoken_recording
from test_dataset_subtitles import write_srt
from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, dataset_stats, list_segments, load_manifest
from xtts_finetune.dataset.manifest import segment_id, unique_prefix
from xtts_finetune.dataset.media import decode_audio
from xtts_finetune.utils import atomic_write_text


def test_same_named_files_in_two_folders_pair_by_place(tmp_path):
    texts = {"a": "Folder a speaks these words.", "b": "Folder b says something else."}
    for name, text in texts.items():
        layout = spoken_recording(tmp_path / f"raw_{name}.wav", [text], seed=ord(name))
        (tmp_path / name).mkdir()
        (tmp_path / f"raw_{name}.wav").rename(tmp_path / name / "01.wav")
        write_srt(tmp_path / name / "01.srt", [(layout[0]["start"], layout[0]["end"], text)])
    report = create_dataset(tmp_path / "ws", language="en", audio=[tmp_path / "a", tmp_path / "b"])
    assert not report.failed
    by_source = {s.hash: s for s in load_manifest(tmp_path / "ws").sources}
    got = {by_source[seg.source].path.split(os.sep)[-2]: seg.text for seg in list_segments(tmp_path / "ws")}
    assert got == texts
    assert all(s.kind == "subtitles" and s.subtitles.endswith(f"{s.path.split(os.sep)[-2]}/01.srt") for s in by_source.values())


def test_ambiguous_pairing_names_both_files(tmp_path):
    (tmp_path / "in").mkdir()
    layout = spoken_recording(tmp_path / "in" / "talk.wav", ["Only one sentence here."])
    (tmp_path / "in" / "_espeak" / "0.wav").unlink()
    cue = [(layout[0]["start"], layout[0]["end"], "Only one sentence here.")]
    write_srt(tmp_path / "in" / "talk.srt", cue)
    write_srt(tmp_path / "in" / "talk.en.srt", cue)
    report = create_dataset(tmp_path / "ws", language="en", audio=[tmp_path / "in"])
    why = dict(report.failed)[str(tmp_path / "in" / "talk.wav")]
    assert "ambiguous" in why and "talk.srt" in why and "talk.en.srt" in why
    assert not report.added  # no guess, and no silent fallback to Whisper


def test_coqui_csv_by_header_with_bad_rows_reported(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    for i, text in enumerate(["A first imported sentence.", "A second imported sentence."]):
        espeak(text, corpus / "wavs" / f"{i}.wav")
    (corpus / "metadata.csv").write_text(
        "audio_file|text|transcription|speaker_name\n"
        "wavs/0.wav|A first imported sentence.|a first imported sentence|Grace\n"
        "wavs/1.wav|A second imported sentence.|a second imported sentence|Alan\n"
        "wavs/2.wav\n"
        "wavs/3.wav||nothing|Nobody\n", encoding="utf-8")
    report = create_dataset(tmp_path / "ws", language="en", corpus=corpus / "metadata.csv")
    got = sorted((s.text, s.speaker) for s in list_segments(tmp_path / "ws"))
    assert got == [("A first imported sentence.", "Grace"), ("A second imported sentence.", "Alan")]
    failed = dict(report.failed)
    assert "1 column(s)" in failed[f"{corpus / 'metadata.csv'}:4"] and failed[f"{corpus / 'metadata.csv'}:5"] == "no text"
    assert main(["dataset", "list", str(tmp_path / "ws")]) == 0
    assert f"not in the dataset: {corpus / 'metadata.csv'}:5: no text" in capsys.readouterr().out


def test_ljspeech_uses_the_normalized_column_and_says_so(tmp_path):
    folder = tmp_path / "LJ"
    espeak("It cost twelve dollars.", folder / "wavs" / "LJ001-0001.wav")
    (folder / "metadata.csv").write_text("LJ001-0001|It cost $12.|It cost twelve dollars.\n", encoding="utf-8")
    report = create_dataset(tmp_path / "ws", language="en", corpus=folder)
    assert [s.text for s in list_segments(tmp_path / "ws")] == ["It cost twelve dollars."]
    assert any("column 3" in n and "normalized" in n for n in report.notes)


def test_a_many_column_csv_without_header_is_refused(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("a.wav|text|other|speaker\n", encoding="utf-8")
    from xtts_finetune.errors import UserError

    with pytest.raises(UserError, match="m.csv: 4 columns and no header row"):
        create_dataset(tmp_path / "ws", language="en", corpus=csv)


def test_stereo_near_full_scale_is_averaged_not_clipped(tmp_path):
    t = np.arange(44100 * 2) / 44100
    tone = 0.95 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t)  # both channels in phase, peaking at 0.95
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone, tone], axis=1), 44100, subtype="PCM_16")
    mono = decode_audio(path, 22050)
    assert 0.9 < np.abs(mono).max() <= 0.951  # (L + R) / 2, not L + R scaled by 0.707
    hot = tmp_path / "hot.wav"  # a float file past full scale: scaled down and reported, never clipped
    sf.write(hot, np.stack([1.6 * tone, 1.6 * tone], axis=1).astype(np.float32), 44100, subtype="FLOAT")
    (tmp_path / "corpus.csv").write_text("audio_file|text\nstereo.wav|A tone.\nhot.wav|A hot tone.\n", encoding="utf-8")
    report = create_dataset(tmp_path / "ws", language="en", corpus=tmp_path / "corpus.csv")
    assert len(report.added) == 2 and any("hot.wav went past full scale: scaled down" in n for n in report.notes)
    stats = dataset_stats(tmp_path / "ws")
    assert stats.clipping == [] and stats.total_seconds == pytest.approx(4.0, abs=0.01)
    wav = tmp_path / "ws" / "dataset" / list_segments(tmp_path / "ws")[0].audio_file
    sf.write(wav, np.zeros(2 * 16000, dtype=np.float32), 16000)  # a clip replaced by hand at another rate
    assert dataset_stats(tmp_path / "ws").total_seconds == pytest.approx(4.0, abs=0.01)  # each file's own rate


def test_ids_never_collide_even_when_hash_prefixes_do():
    a, b = "abcdef12" + "0" * 56, "abcdef12" + "1" * 56
    pa = unique_prefix(a, set())
    pb = unique_prefix(b, {a})
    assert pa == "abcdef12" and pb == "abcdef121"
    assert segment_id(pa, 0.0) != segment_id(pb, 0.0)
    ids = {segment_id(unique_prefix(h, {a, b} - {h}), 0.0) for h in (a, b)}
    assert len(ids) == 2


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from xtts_finetune.dataset.media import write_wav

    old = os.umask(umask)
    try:
        text = atomic_write_text(tmp_path / "a.csv", "x\n")
        wav = write_wav(tmp_path / "a.wav", np.zeros(100, dtype=np.float32), 22050)
    finally:
        os.umask(old)
    assert stat.S_IMODE(text.stat().st_mode) == mode and stat.S_IMODE(wav.stat().st_mode) == mode
