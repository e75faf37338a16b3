"""`dataset stats`: durations, histogram, rate outliers, levels, duplicates and tokenizer coverage."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from conftest import SENTENCES
from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, dataset_stats, list_segments


def test_stats_report_unknown_characters_levels_and_duplicates(tmp_path, coqui_dataset, tiny_xtts, capsys):
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    rows = ["audio_file|text|speaker_name"]
    texts = [SENTENCES[0], "The ωmega sign is new.", SENTENCES[2], SENTENCES[2], SENTENCES[4], SENTENCES[5], "Yes."]
    for i, text in enumerate(texts):
        audio, sr = sf.read(coqui_dataset / "wavs" / f"clip{i % 6}.wav", dtype="float32")
        if i == 4:  # near-silent
            audio = audio * 0.001
        if i == 5:  # clipped
            audio = np.clip(audio * 50, -1, 1)
        if text == "Yes.":  # a whole sentence of audio for one word: a wrong transcript
            audio = np.concatenate([audio, audio, audio])
        sf.write(corpus / "wavs" / f"{i}.wav", audio, sr, subtype="PCM_16")
        rows.append(f"wavs/{i}.wav|{text}|speaker")
    (corpus / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    create_dataset(tmp_path / "ws", language="en", corpus=corpus / "metadata.csv")
    ids = {s.text: s.id for s in list_segments(tmp_path / "ws")}

    stats = dataset_stats(tmp_path / "ws", tiny_xtts / "vocab.json")
    assert stats.clips == len(texts) and stats.eval_clips >= 1
    unknown = {u["char"]: u for u in stats.unknown_characters["en"]}
    assert set(unknown) == {"ω"} and unknown["ω"]["examples"] == [ids["The ωmega sign is new."]]
    assert unknown["ω"]["codepoint"] == "U+03C9"
    assert stats.near_silent == [ids[SENTENCES[4]]] and stats.clipping == [ids[SENTENCES[5]]]
    twins = sorted(s.id for s in list_segments(tmp_path / "ws") if s.text == SENTENCES[2])
    assert [sorted(group) for group in stats.duplicate_texts] == [twins]
    assert [o["id"] for o in stats.rate_outliers] == [ids["Yes."]]
    saved = json.loads((tmp_path / "ws" / "dataset" / "stats" / "stats.json").read_text(encoding="utf-8"))
    assert saved["unknown_characters"]["en"][0]["char"] == "ω"
    assert (tmp_path / "ws" / "dataset" / "stats" / "duration_histogram.png").read_bytes()[:4] == b"\x89PNG"

    assert main(["dataset", "stats", str(tmp_path / "ws"), "--base", str(tiny_xtts)]) == 0
    out = capsys.readouterr().out
    assert "cannot encode 'ω' (U+03C9)" in out and ids["The ωmega sign is new."] in out
    assert main(["dataset", "stats", str(tmp_path / "ws")]) == 0
    assert "tokenizer coverage not checked" in capsys.readouterr().out


def test_a_damaged_clip_is_reported_not_a_crash(tmp_path, coqui_dataset):
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    rows = ["audio_file|text|speaker_name"]
    for i in range(3):
        (corpus / "wavs" / f"{i}.wav").write_bytes((coqui_dataset / "wavs" / f"clip{i}.wav").read_bytes())
        rows.append(f"wavs/{i}.wav|{SENTENCES[i]}|speaker")
    (corpus / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    create_dataset(tmp_path / "ws", language="en", corpus=corpus / "metadata.csv")
    damaged = list_segments(tmp_path / "ws")[1]
    (tmp_path / "ws" / "dataset" / damaged.audio_file).write_bytes(b"RIFF not really a wav")

    stats = dataset_stats(tmp_path / "ws")
    assert stats.missing_audio == [damaged.id] and stats.clips == 3
    assert f"dataset edit WORKSPACE {damaged.id} --exclude" in stats.summary()


def test_stats_check_coverage_in_the_vocabulary_mode_training_will_use(tmp_path, coqui_dataset, tiny_xtts, capsys):
    corpus = tmp_path / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    rows = ["audio_file|text|speaker_name"]
    for i, text in enumerate(["ሰላም ነው።", "ኢትዮጵያ ሀገሬ ናት።", "አማርኛ ጥሩ ነው፣ 3ኛ", "ቡና ጠጣ።"]):
        (corpus / "wavs" / f"{i}.wav").write_bytes((coqui_dataset / "wavs" / f"clip{i}.wav").read_bytes())
        rows.append(f"wavs/{i}.wav|{text}|speaker")
    (corpus / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    create_dataset(tmp_path / "ws", language="am", corpus=corpus / "metadata.csv")

    # auto: Amharic is not one of XTTS's languages, so `train` extends the vocabulary with its characters
    script = dataset_stats(tmp_path / "ws", tiny_xtts / "vocab.json")
    assert script.vocab_mode == "script" and script.unknown_characters == {"am": []}
    assert "assuming `train --vocab script`: extended with the dataset's characters" in script.summary()
    base = dataset_stats(tmp_path / "ws", tiny_xtts / "vocab.json", "base")  # the base vocabulary lacks them all
    assert base.vocab_mode == "base" and {"ሰ", "ላ", "ም"} <= {u["char"] for u in base.unknown_characters["am"]}
    phonemes = dataset_stats(tmp_path / "ws", tiny_xtts / "vocab.json", "phonemes")  # Latin letters: all known
    assert phonemes.unknown_characters == {"am": []}

    assert main(["dataset", "stats", str(tmp_path / "ws"), "--base", str(tiny_xtts)]) == 0
    out = capsys.readouterr().out
    assert "cannot encode" not in out and "assuming `train --vocab script`" in out
    assert main(["dataset", "stats", str(tmp_path / "ws"), "--base", str(tiny_xtts), "--vocab-mode", "base"]) == 0
    assert "cannot encode 'ሰ' (U+1230)" in capsys.readouterr().out
