"""`xtts-finetune text`: what a model reads, per line, in text or JSON, against base and extended vocabularies."""

from __future__ import annotations

import io
import json

import pytest

from xtts_finetune.cli import main
from xtts_finetune.text.frontends import prepare_text
from xtts_finetune.text.vocab import extend_vocab

LINES = ["ሰላም ነው።", "ኢትዮጵያ ሀገሬ ናት፣ 3ኛ"]


def _json_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_stdin_lexicon_in_json_against_the_base_vocabulary_marks_unk(tiny_xtts, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(LINES) + "\n"))
    assert main(["text", "--language", "am", "--model", str(tiny_xtts), "--json"]) == 0
    results = _json_lines(capsys)
    assert len(results) == 2 and {"normalized", "tokens", "unk"} <= set(results[0])
    assert "[UNK]" in results[0]["tokens"] and "ሰ" in results[0]["unk"]
    assert results[1]["normalized"].endswith("ሦስተኛ".replace("ሦ", "ሶ"))  # ordinal spelt out, rows folded


def test_a_run_with_an_extended_vocabulary_reads_without_unk(tiny_xtts, tmp_path, capsys):
    base = (tiny_xtts / "vocab.json").read_text()
    texts = [prepare_text(t, "am", "script").text for t in LINES]
    (tmp_path / "vocab.json").write_text(extend_vocab(base, texts, "am", 20))
    (tmp_path / "config.json").write_text(json.dumps({"vocab_mode": "script"}))
    assert main(["text", "--language", "am", "--model", str(tmp_path), "--json", "--g2p", "builtin", LINES[0]]) == 0
    (result,) = _json_lines(capsys)
    assert result["unk"] == [] and "[UNK]" not in result["tokens"] and result["tokens"][0] == "[am]"
    assert result["g2p"] == "səlam nəw." and result["vocab"] == "script"


def test_plain_output_and_a_bad_language(capsys):
    assert main(["text", "--language", "en", "I have 2 cats."]) == 0
    assert "two cats" in capsys.readouterr().out
    assert main(["text", "--language", "qqqq", "x"]) == 2
    assert "not an ISO 639 language code" in capsys.readouterr().err


@pytest.mark.parametrize("code,name", [("sw", "Swahili"), ("ti", "Tigrinya"), ("yo", "Yoruba"), ("amh", "Amharic")])
def test_any_iso_code_is_accepted(code, name, capsys):
    from xtts_finetune.languages import language_name

    assert name in language_name(code)
    assert main(["text", "--language", code, "--json", "Habari"]) == 0
    assert _json_lines(capsys)[0]["normalized"]


def test_ui_preview_and_language_picker_show_the_same_front_end():
    from xtts_finetune.webui.common import LANGUAGE_CHOICES
    from xtts_finetune.webui.tab_dataset import text_preview

    shown = text_preview("ሠላም ነው። 3ኛ", "am")
    assert "`ሰላም ነው. ሶስተኛ`" in shown and "səlam" in shown and "script" in shown
    assert "not an ISO 639" in text_preview("x", "qqqq")
    codes = [code for _, code in LANGUAGE_CHOICES]
    assert codes[:17] == list(__import__("xtts_finetune.languages").languages.XTTS_LANGUAGES)
    assert {"am", "sw", "ti", "yo"} <= set(codes) and "known to XTTS" in LANGUAGE_CHOICES[0][0]


def _handler(demo, name):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def test_ui_preview_shows_the_chosen_models_tokens_with_unk_marked(tiny_xtts, tmp_path):
    from xtts_finetune.webui.app import build_app
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.tab_dataset import text_preview, vocab_choices

    base = text_preview(LINES[0], "am", str(tiny_xtts))  # a base model: Ethiopic is not in its vocabulary
    assert "**[UNK]**" in base and "script vocabulary of" in base
    assert "`ሰ`" in base.split("not in this vocabulary ([UNK]): ")[1]
    run = tmp_path / "ws" / "runs" / "run-am"
    run.mkdir(parents=True)
    texts = [prepare_text(t, "am", "script").text for t in LINES]
    (run / "vocab.json").write_text(extend_vocab((tiny_xtts / "vocab.json").read_text(), texts, "am", 20))
    (run / "config.json").write_text(json.dumps({"vocab_mode": "script"}))
    assert vocab_choices(UI(workspace=tmp_path / "ws", jobs=None)) == [
        ("Run: run-am", str(run)), ("None: the text front end only", "")]
    on_preview = _handler(build_app(tmp_path / "ws"), "on_preview")
    extended = on_preview(LINES[0], "am", str(run))
    assert "`[am]`" in extended and "[UNK]**" not in extended and "no [UNK]" in extended
    assert "tokens:" not in on_preview(LINES[0], "am", str(tiny_xtts))  # a folder the list did not offer is not read
