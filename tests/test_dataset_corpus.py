"""Existing corpora (LJSpeech folders, Coqui CSVs) imported as they are, with bad rows reported."""

from __future__ import annotations

import shutil

import numpy as np
import soundfile as sf

from conftest import SENTENCES
from xtts_finetune.dataset import create_dataset, list_segments
from xtts_finetune.dataset.corpus import read_coqui_csv
from xtts_finetune.dataset.manifest import Manifest, Segment, save_manifest
from xtts_finetune.train.preflight import dataset_clips


def test_ljspeech_folder_import(tmp_path, coqui_dataset):
    ljs = tmp_path / "LJSpeech"
    (ljs / "wavs").mkdir(parents=True)
    rows = []
    for i, sentence in enumerate(SENTENCES[:3]):
        shutil.copy(coqui_dataset / "wavs" / f"clip{i}.wav", ljs / "wavs" / f"LJ001-{i:04d}.wav")
        rows.append(f"LJ001-{i:04d}|{sentence.replace('seven', '7')}|{sentence}")
    long_audio = np.concatenate([sf.read(coqui_dataset / "wavs" / f"clip{i}.wav")[0] for i in range(6)] * 2)
    sf.write(ljs / "wavs" / "LJ002-0000.wav", long_audio, 22050)  # over 11.6 s: training would drop it
    rows += ["LJ002-0000|A very long clip.", "LJ003-0000|This clip's audio is missing."]
    (ljs / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    report = create_dataset(tmp_path / "ws", language="en", corpus=ljs, speaker="lj")
    assert len(report.added) == 3
    assert len(report.rejected) == 1 and "outside 0.5-11.6 s" in report.rejected[0][1]
    assert len(report.failed) == 1 and "metadata.csv:5" in report.failed[0][0] and "not found" in report.failed[0][1]
    segments = list_segments(tmp_path / "ws")
    assert [s.text for s in segments if s.active] == SENTENCES[:3]  # the normalised third column is used
    assert all(s.speaker == "lj" for s in segments)
    again = create_dataset(tmp_path / "ws", language="en", corpus=ljs)
    assert not again.added and len(again.skipped) == 4


def test_coqui_csv_import_keeps_speakers(tmp_path, coqui_dataset):
    report = create_dataset(tmp_path / "ws", language="en", corpus=coqui_dataset)
    assert len(report.added) == len(SENTENCES) and not report.failed
    segments = list_segments(tmp_path / "ws")
    assert sorted(s.text for s in segments) == sorted(SENTENCES)
    assert {s.speaker for s in segments} == {"speaker"}
    for seg in segments:
        assert sf.info(tmp_path / "ws" / "dataset" / seg.audio_file).samplerate == 22050
    single = create_dataset(tmp_path / "ws2", language="en", corpus=coqui_dataset / "metadata_eval.csv")
    assert len(single.added) == 1


def test_dataset_csvs_keep_every_row_when_a_transcript_starts_with_a_quote(tmp_path):
    # A sentence cut out of a quotation opens with '"' and never closes it; written unquoted, coqui's
    # csv reader (and preflight's) took every later row as part of that one transcript.
    texts = ['"Open quote, never closed.', 'He said "hi" twice.', "A plain sentence."]
    segments = [Segment(f"clip{i}", "src", 0.0, 1.0, text, split="train") for i, text in enumerate(texts)]
    segments.append(Segment("clip_eval", "src", 0.0, 1.0, "The eval clip.", split="eval"))
    save_manifest(tmp_path, Manifest(language="en", segments=segments))

    clips = dataset_clips(tmp_path / "dataset")
    assert [(c.audio_file, c.text, c.speaker) for c in clips if c.split == "train"] == [
        (f"wavs/clip{i}.wav", text, "speaker") for i, text in enumerate(texts)
    ]
    # Importing the dataset as a corpus reads the same texts back.
    assert [row.text for row in read_coqui_csv(tmp_path / "dataset" / "metadata_train.csv").rows] == texts
