"""Subtitle clips hold exactly their cue's words: never speech that no cue covers."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from speech import espeak, spoken_recording
from test_dataset_subtitles import write_srt
from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, list_segments, load_manifest
from xtts_finetune.dataset.subtitles import MARGIN_SECONDS

SPOKEN = ["The first sentence has a cue.", "Nobody wrote a cue for this one.", "The third sentence has a cue too.",
          "Two people talk at once here.", "And the last line closes the talk."]


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("talk")
    layout = spoken_recording(folder / "talk.wav", SPOKEN, sentence_gap=(0.9, 1.2), seed=3)
    return folder / "talk.wav", layout


def test_clips_stay_inside_their_cues_and_uncovered_speech_is_left_out(tmp_path, talk, capsys):
    wav, layout = talk
    s = layout
    overlap = (s[3]["start"], s[3]["end"], "Two people talk at once here.")
    cues = [(s[0]["start"], s[0]["end"], s[0]["text"]),  # sentence 1 has no cue
            (s[2]["start"], s[2]["end"], s[2]["text"]),
            overlap, (s[3]["start"] + 0.3, s[3]["end"] + 0.2, "Someone else speaks."),
            (s[4]["start"] - 0.6, s[4]["start"] - 0.2, "(laughs)"),  # a caption just before the last line
            (s[4]["start"], s[4]["end"], s[4]["text"])]
    srt = write_srt(tmp_path / "talk.srt", cues)
    report = create_dataset(tmp_path / "ws", language="en", audio=[wav], subtitles=[srt])
    assert not report.failed
    segments = list_segments(tmp_path / "ws")
    assert [seg.text for seg in segments] == [s[0]["text"], s[2]["text"], s[4]["text"]]
    for seg, sentence in zip(segments, (s[0], s[2], s[4])):
        # The clip holds all of its sentence and reaches no further than the margin past its cue.
        assert sentence["start"] - MARGIN_SECONDS <= seg.start <= sentence["start"]
        assert sentence["end"] <= seg.end <= sentence["end"] + MARGIN_SECONDS
        audio, sr = sf.read(tmp_path / "ws" / "dataset" / seg.audio_file)
        assert len(audio) / sr == pytest.approx(seg.duration, abs=0.002)
    assert segments[0].end < s[1]["start"] and segments[1].start > s[1]["end"]  # the uncovered sentence is in no clip
    assert segments[2].start >= cues[4][1]  # the caption is a boundary: nothing of it is in the last clip
    left_out = "\n".join(report.dropped)
    assert "talk.srt cue 3 at" in left_out and "talk.srt cue 4 at" in left_out and "overlaps another cue" in left_out
    assert "talk.srt cue 5 at" in left_out and "a caption, not speech ('(laughs)')" in left_out
    uncovered = s[1]["end"] - s[1]["start"]  # the sentence no cue covers; the overlapping pair and the caption too
    found = float(left_out.split("talk.srt: ")[-1].split(" s of sound outside every cue")[0])
    assert uncovered < found < uncovered + (s[3]["end"] - s[3]["start"]) + 1.0
    assert main(["dataset", "list", str(tmp_path / "ws")]) == 0
    listed = capsys.readouterr().out
    assert "overlaps another cue" in listed and "a caption, not speech" in listed and "of sound outside every cue" in listed


def test_cues_past_the_end_fail_by_name_and_fixed_subtitles_are_a_new_source(tmp_path, talk, capsys):
    wav, layout = talk
    end = layout[-1]["end"]
    (tmp_path / "bad").mkdir()
    bad = write_srt(tmp_path / "bad" / "talk.srt", [(s["start"], s["end"], s["text"]) for s in layout] + [(end + 30, end + 32, "Not here.")])
    ws = tmp_path / "ws"
    first = create_dataset(ws, language="en", audio=[wav], subtitles=[bad])  # one --subtitles, one --audio: paired
    assert not first.added and "talk.srt: 1 cue(s) lie past the end of the audio" in dict(first.failed)[str(wav)]
    assert not list((ws / "dataset" / "wavs").glob("*.wav"))  # its clips written before the check are gone
    assert not load_manifest(ws).sources  # not recorded: a fixed file is not "already in the dataset"
    assert main(["dataset", "list", str(ws)]) == 0
    assert "not in the dataset: " + str(wav) in capsys.readouterr().out
    fixed = write_srt(tmp_path / "talk.srt", [(s["start"], s["end"], s["text"]) for s in layout])
    second = create_dataset(ws, language="en", audio=[wav], subtitles=[fixed])
    assert len(second.added) == len(layout) and not second.skipped and not load_manifest(ws).failed
    kept = sorted((ws / "dataset" / "wavs").glob("*.wav"))
    third = create_dataset(ws, language="en", audio=[wav], subtitles=[bad])  # the bad file again: fails alone
    assert third.failed and sorted((ws / "dataset" / "wavs").glob("*.wav")) == kept  # other sources' clips untouched


def test_changed_subtitles_make_a_new_source_and_remove_drops_the_old_one(tmp_path, talk, capsys):
    wav, layout = talk
    ws = tmp_path / "ws"
    srt = write_srt(tmp_path / "talk.srt", [(s["start"], s["end"], s["text"]) for s in layout[:2]])
    create_dataset(ws, language="en", audio=[wav], subtitles=[srt])
    old = load_manifest(ws).sources[0]
    write_srt(srt, [(s["start"], s["end"], s["text"]) for s in layout])
    again = create_dataset(ws, language="en", audio=[wav], subtitles=[srt])
    assert len(again.added) == len(layout) and not again.skipped  # the subtitles are part of the source's identity
    assert main(["dataset", "remove", str(ws), old.hash[:10]]) == 0
    assert "and its 2 clips" in capsys.readouterr().out
    manifest = load_manifest(ws)
    assert [s.hash for s in manifest.sources] != [old.hash] and len(manifest.sources) == 1
    assert len(manifest.segments) == len(layout)
    wavs = sorted(p.name for p in (ws / "dataset" / "wavs").glob("*.wav"))
    assert wavs == sorted(seg.audio_file.split("/")[1] for seg in manifest.segments)


def test_a_legacy_encoded_file_is_read_and_the_encoding_reported(tmp_path, talk, capsys):
    wav, layout = talk
    texts = ["Première phrase, à l'école.", "Deuxième phrase, très bien.", "Troisième, déjà vu.",
             "Quatrième, garçon.", "Cinquième et dernière."]
    srt = tmp_path / "talk.srt"
    write_srt(srt, [(s["start"], s["end"], t) for s, t in zip(layout, texts)])
    srt.write_bytes(srt.read_text(encoding="utf-8").encode("cp1252"))
    report = create_dataset(tmp_path / "ws", language="fr", audio=[wav], subtitles=[srt])
    assert [s.text for s in list_segments(tmp_path / "ws")] == texts
    assert f"{wav}: talk.srt: read as cp1252" in report.notes
    main(["dataset", "list", str(tmp_path / "ws")])
    assert "note on" in capsys.readouterr().out


@pytest.mark.parametrize("touching", [False, True])
def test_cues_cut_by_a_piece_boundary_are_kept_whole(tmp_path, talk, touching):
    """Pieces shorter than a sentence; with `touching`, each cue runs on to the next one's start (one long run of cues)."""
    from xtts_finetune.dataset import DatasetSettings

    wav, layout = talk
    ends = [nxt["start"] for nxt in layout[1:]] + [layout[-1]["end"]] if touching else [s["end"] for s in layout]
    srt = write_srt(tmp_path / "talk.srt", [(s["start"], end, s["text"]) for s, end in zip(layout, ends)])
    report = create_dataset(tmp_path / "ws", language="en", audio=[wav], subtitles=[srt],
                            settings=DatasetSettings(piece_seconds=2.0))  # pieces shorter than a sentence
    assert not report.failed and not report.dropped
    segments = list_segments(tmp_path / "ws")
    assert [seg.text for seg in segments] == SPOKEN  # every cue, none cut by the pieces' boundaries
    for seg, sentence, cue_end in zip(segments, layout, ends):
        assert sentence["start"] - MARGIN_SECONDS <= seg.start <= sentence["start"]
        assert sentence["end"] <= seg.end <= cue_end + MARGIN_SECONDS  # a touching cue's clip may keep some pause
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:]))  # no audio in two clips


def _one_sentence(folder, text: str, seconds: float, cue: tuple[float, float]) -> float:
    """folder/01.wav: `text` spoken by espeak-ng, padded or cut to `seconds`; folder/01.srt: one cue. Returns where the voice ends."""
    import numpy as np

    raw = espeak(text, folder.parent / "raw" / f"{folder.name}.wav")
    audio, sr = sf.read(raw, dtype="float32")
    audio = np.pad(audio, (0, max(0, int(seconds * sr) - len(audio))))[: int(seconds * sr)]
    folder.mkdir(parents=True)
    sf.write(folder / "01.wav", audio, sr)
    write_srt(folder / "01.srt", [(*cue, text)])
    return (np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())[-1] + 1) / sr


def test_speech_past_its_cue_reaches_the_next_pause_or_the_end_of_the_file(tmp_path):
    """Issue 25: one cue 0.05-2.60 s per file; the voice ends after the cue, or the file ends before it."""
    root, ws = tmp_path / "in", tmp_path / "ws"
    ends = {"a": _one_sentence(root / "a", "The quick brown fox jumps over the lazy dog.", 2.85, (0.05, 2.60)),
            "b": _one_sentence(root / "b", "Please call Stella and ask her to bring these.", 2.59, (0.05, 2.60)),
            "c": _one_sentence(root / "c", "Please call Stella and ask her to bring these things.", 3.4, (0.05, 2.10))}
    assert ends["c"] > 2.10 + MARGIN_SECONDS + 0.2  # the voice runs well past the cue and its margin
    first = create_dataset(ws, language="en", audio=[root / "a"])
    assert len(first.added) == 1
    assert any("1 usable clip" in w and "training needs at least 2" in w for w in first.warnings)
    second = create_dataset(ws, language="en", audio=[root / "b", root / "c"])
    assert not second.dropped and not second.failed and not [w for w in second.warnings if "no speech" in w]
    assert (second.train_segments, second.eval_segments) != (3, 0) and second.total_segments == 3
    manifest = load_manifest(ws)
    by_folder = {Path(src.path).parent.name: [seg for seg in manifest.segments if seg.source == src.hash]
                 for src in manifest.sources}
    for name, (seg,) in sorted(by_folder.items()):
        assert seg.active and seg.start <= 0.05
        assert seg.end >= min(ends[name], 2.59) - 0.005, name  # all of the voice, to the file's end for b
        assert seg.end <= ends[name] + 0.1 + MARGIN_SECONDS
    assert by_folder["b"][0].end == pytest.approx(2.59, abs=0.01)
    assert not any("1 usable clip" in w for w in second.warnings)
