"""`dataset verify`: Whisper's hearing scored against each clip's text; suspects listed and excluded in one step."""

from __future__ import annotations

import pytest

from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, dataset_stats, edit_segment, list_segments
from xtts_finetune.dataset.verify import character_error_rate, verify_dataset


@pytest.mark.parametrize("text,heard,language,low,high", [
    ("Hello there, my friend.", "hello there my friend", "en", 0.0, 0.0),  # case and punctuation do not count
    ("Hello there, my friend.", "[Music] Hello there, my friend!", "en", 0.0, 0.0),  # nor Whisper's captions
    ("Hello there, my friend.", "there, my friend.", "en", 0.25, 0.35),  # a first word cut off
    ("Hello there, my friend.", "Thank you for watching!", "en", 0.6, 1.0),  # a hallucination
    ("Hello there, my friend.", "", "en", 1.0, 1.0),  # silence
    ("今天天气很好。", "今天 天气 很好", "zh-cn", 0.0, 0.0),  # no spaces in Chinese
    ("Grüße aus Köln.", "GRÜSSE aus Köln", "de", 0.0, 0.0),  # case folding: ß == ss
])
def test_character_error_rate_after_normalisation(text, heard, language, low, high):
    assert low <= character_error_rate(text, heard, language) <= high


def test_verify_marks_lists_and_excludes_suspects(tmp_path, coqui_dataset, tiny_whisper, capsys):
    ws = tmp_path / "ws"
    create_dataset(ws, language="en", corpus=coqui_dataset)
    assert main(["dataset", "list", str(ws), "--suspect"]) == 0
    assert "no suspect clips (run `xtts-finetune dataset verify`" in capsys.readouterr().err  # not an empty answer
    first = verify_dataset(ws, whisper_model=str(tiny_whisper), threshold=1.0)  # CER is capped at 1: none suspect
    segments = list_segments(ws)
    assert first.checked == len(segments) == 6 and not first.suspects
    assert main(["dataset", "list", str(ws), "--suspect"]) == 0
    assert capsys.readouterr().err.strip() == "no suspect clips"
    assert all(s.cer is not None and 0.0 <= s.cer <= 1.0 and s.suspect is None for s in segments)
    assert sum(first.histogram.values()) == 6
    # The tiny random Whisper hears nothing like the text: at 0.3 every clip it scored above is suspect.
    assert main(["dataset", "verify", str(ws), "--whisper-model", str(tiny_whisper), "--threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    expected = {s.id for s in segments if s.cer > 0.3}
    assert expected and f"{len(expected)} suspect" in out  # judged again without decoding again
    assert main(["dataset", "list", str(ws), "--suspect"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert {line.split("\t")[0] for line in listed} == expected and all("CER " in line for line in listed)
    stats = dataset_stats(ws)
    assert set(stats.suspects) == expected and sum(stats.cer_histogram.values()) == 6
    assert main(["dataset", "verify", str(ws), "--whisper-model", str(tiny_whisper), "--exclude-suspects"]) == 0
    assert f"excluded {len(expected)} suspect clips" in capsys.readouterr().out
    assert {s.id for s in list_segments(ws) if s.excluded} == expected
    assert edit_segment(ws, segments[0].id, text="New words.").cer is None  # the score was of the old text

