"""create_dataset end to end (subtitled recordings, so no ASR): layout, incremental runs, edits, bad inputs, CLI."""

from __future__ import annotations

import json
import subprocess

import pytest
import soundfile as sf

from speech import spoken_recording
from test_dataset_subtitles import write_srt
from xtts_finetune.cli import main
from xtts_finetune.dataset import DatasetSettings, create_dataset, edit_segment, list_segments, load_manifest
from xtts_finetune.errors import UserError
from xtts_finetune.train.settings import MIN_AUDIO_SECONDS

TEXTS = {
    "a": ["The first file has a short sentence.", "And then it has another one."],
    "b": ["Here is the second recording.", "It also speaks two sentences."],
    "c": ["A third file arrives later.", "Only its clips should be added."],
}


def subtitled(folder, name):
    """`name`.wav spoken from TEXTS[name] and a matching `name`.srt with exact cue times."""
    wav = folder / f"{name}.wav"
    layout = spoken_recording(wav, TEXTS[name], seed=len(name) + ord(name))
    srt = write_srt(folder / f"{name}.srt", [(s["start"], s["end"], s["text"]) for s in layout])
    return wav, srt


def csv_rows(ws, split):
    lines = (ws / "dataset" / f"metadata_{split}.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "audio_file|text|speaker_name"
    return [line.split("|") for line in lines[1:]]


def test_layout_incremental_runs_and_edits(tmp_path):
    ws = tmp_path / "ws"
    files = {n: subtitled(tmp_path / "in", n) for n in TEXTS}
    first = create_dataset(ws, language="en", audio=[files["a"][0], files["b"][0]],
                           subtitles=[files["a"][1], files["b"][1]], speaker="Ada")
    assert len(first.added) == 4 and not first.failed and first.eval_segments >= 1
    assert (ws / "dataset" / "lang.txt").read_text().strip() == "en"
    rows = csv_rows(ws, "train") + csv_rows(ws, "eval")
    assert sorted(r[1] for r in rows) == sorted(TEXTS["a"] + TEXTS["b"])
    assert csv_rows(ws, "eval"), "the eval split must never be empty"
    for audio_file, _, speaker in rows:
        audio, sr = sf.read(ws / "dataset" / audio_file)
        info = sf.info(ws / "dataset" / audio_file)
        assert speaker == "Ada" and sr == 22050 and audio.ndim == 1 and info.subtype == "PCM_16"
    manifest = json.loads((ws / "dataset" / "dataset.json").read_text())
    assert manifest["language"] == "en" and len(manifest["sources"]) == 2
    assert all(len(s["hash"]) == 64 for s in manifest["sources"])

    before = {s.id: s.split for s in list_segments(ws)}
    # Excluding the only eval clip would have to move another one into eval, so exclude a train clip.
    dropped = next(i for i, split in before.items() if split == "train")
    fixed = next(i for i in before if i != dropped)
    edit_segment(ws, fixed, text="The first file has a SHORT sentence.")
    edit_segment(ws, dropped, excluded=True)

    # Renamed copies of old files are the same content: skipped. Only c is new.
    copy = tmp_path / "in" / "renamed.wav"
    copy.write_bytes(files["a"][0].read_bytes())
    second = create_dataset(ws, language="en", audio=[files["a"][0], copy, files["b"][0], files["c"][0]],
                            subtitles=[files["a"][1], files["b"][1], files["c"][1]], speaker="Ada")
    assert sorted(second.skipped) == sorted(map(str, [files["a"][0], copy, files["b"][0]]))
    assert len(second.added) == 2 and not second.failed
    after = {s.id: s for s in list_segments(ws)}
    assert {i: after[i].split for i in before} == before  # nothing moved between splits
    assert after[fixed].text == "The first file has a SHORT sentence." and after[dropped].excluded
    texts = [r[1] for r in csv_rows(ws, "train") + csv_rows(ws, "eval")]
    assert "The first file has a SHORT sentence." in texts and after[dropped].text not in texts
    assert sorted(set(TEXTS["c"]) & set(texts)) == sorted(TEXTS["c"])
    assert len(texts) == 5 and csv_rows(ws, "eval")

    edit_segment(ws, dropped, excluded=False)
    assert len(csv_rows(ws, "train") + csv_rows(ws, "eval")) == 6
    with pytest.raises(UserError, match="no segment 'nope'"):
        edit_segment(ws, "nope", text="x")
    with pytest.raises(UserError, match="holds a 'en' dataset"):
        create_dataset(ws, language="de", audio=[files["c"][0]])


def test_corrupt_empty_and_unsupported_inputs_fail_by_name_while_the_rest_succeed(tmp_path):
    wav, srt = subtitled(tmp_path, "a")
    # A real video container: the audio track is taken, the picture ignored.
    video = tmp_path / "a.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=size=32x32:rate=5", "-i", str(wav),
                    "-shortest", "-c:v", "mpeg4", "-c:a", "flac", str(video)], check=True)
    wav.unlink()
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 50)
    (tmp_path / "empty.mp3").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "cover.jpg").write_bytes(b"\xff\xd8")
    report = create_dataset(tmp_path / "ws", language="en", subtitles=[srt],
                            audio=[video, tmp_path / "corrupt.wav", tmp_path / "empty.mp3", tmp_path / "notes.txt", folder])
    reasons = dict(report.failed)
    assert set(reasons) == {str(tmp_path / n) for n in ("corrupt.wav", "empty.mp3", "notes.txt")}
    assert "corrupt.wav: cannot decode audio" in reasons[str(tmp_path / "corrupt.wav")]
    assert "empty.mp3: the file is empty" in reasons[str(tmp_path / "empty.mp3")]
    assert "unsupported file type '.txt'" in reasons[str(tmp_path / "notes.txt")]
    assert report.ignored == [str(folder / "cover.jpg")]
    assert [s.text for s in list_segments(tmp_path / "ws")] == TEXTS["a"]
    summary = report.summary()
    assert "FAILED" in summary and "corrupt.wav" in summary and "added 2 clips" in summary


def test_eval_split_is_never_empty_and_settings_are_checked(tmp_path):
    wav, srt = subtitled(tmp_path, "b")
    report = create_dataset(tmp_path / "ws", language="en", audio=[wav], subtitles=[srt],
                            settings=DatasetSettings(eval_fraction=0.01))
    assert report.eval_segments == 1 and report.train_segments == 1
    assert load_manifest(tmp_path / "ws").settings["eval_fraction"] == 0.01
    with pytest.raises(UserError, match="min_seconds"):
        create_dataset(tmp_path / "ws2", language="en", audio=[wav], settings=DatasetSettings(min_seconds=20))


def test_cli_create_list_edit(tmp_path, capsys):
    wav, srt = subtitled(tmp_path, "c")
    ws = tmp_path / "ws"
    assert main(["dataset", "create", str(ws), "--language", "en", "--subtitles", str(srt), "--audio", str(wav),
                 "--eval-fraction", "0.5", "--max-seconds", "10"]) == 0
    out = capsys.readouterr().out
    assert "added 2 clips" in out
    assert load_manifest(ws).settings["max_seconds"] == 10
    assert main(["dataset", "list", str(ws)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and TEXTS["c"][0] in listing[0]
    seg_id = listing[0].split("\t")[0]
    assert main(["dataset", "edit", str(ws), seg_id, "--text", "A third file arrived later."]) == 0
    assert main(["dataset", "edit", str(ws), seg_id, "--exclude"]) == 0
    assert list_segments(ws)[0].excluded and list_segments(ws)[0].text == "A third file arrived later."
    assert main(["dataset", "list", str(tmp_path / "nowhere")]) == 2
    assert "no dataset yet" in capsys.readouterr().err


def test_default_dataset_never_keeps_a_clip_training_would_refuse(tmp_path, coqui_dataset):
    audio, rate = sf.read(coqui_dataset / "wavs" / "clip0.wav")
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    sf.write(corpus / "wavs" / "long.wav", audio, rate)
    sf.write(corpus / "wavs" / "short.wav", audio[: int(0.4 * rate)], rate)
    (corpus / "metadata.csv").write_text("audio_file|text|speaker_name\n"
                                         "wavs/long.wav|Hello there, my friend.|s\nwavs/short.wav|Hello.|s\n")
    report = create_dataset(tmp_path / "ws", language="en", corpus=corpus / "metadata.csv")
    assert len(report.added) == 1 and len(report.rejected) == 1, report.summary()
    assert all(s.duration >= MIN_AUDIO_SECONDS for s in list_segments(tmp_path / "ws") if s.active)
