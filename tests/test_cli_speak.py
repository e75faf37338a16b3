"""`xtts-finetune speak` and `serve` through the real entry point."""

from __future__ import annotations

import json
import subprocess

import pytest
import soundfile as sf

from xtts_finetune.cli import main


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))  # the latents cache lands here
    monkeypatch.delenv("XTTS_FINETUNE_TOKEN", raising=False)


def test_speak_text_to_mp3(tiny_export, tmp_path, capsys):
    out = tmp_path / "hello.mp3"
    assert main(["speak", str(tiny_export), "--text", "Hello there. How are you today?", "--language", "en",
                 "--out", str(out), "--seed", "3", "--temperature", "0.7", "--voice", "ref_b"]) == 0
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(out)],
                                      capture_output=True, check=True, text=True).stdout)["streams"][0]
    assert probe["codec_name"] == "mp3" and int(probe["sample_rate"]) == 24000
    assert float(probe["duration"]) > 0.05
    assert list((tmp_path / "home" / "latents").glob("*.pt"))  # the voice's latents were cached


def test_speak_text_file_into_numbered_files_and_resume(tiny_export, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there, my friend.\n\nHello there, my friend. The weather is lovely today.\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    clip = tmp_path / "ref.wav"
    from speech import espeak

    espeak("My own reference clip, spoken by espeak.", clip)
    args = ["speak", str(tiny_export), "--text-file", str(lines), "--out-dir", str(out_dir), "--format", "flac",
            "--seed", "1", "--reference", str(clip)]
    assert main(args) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["0001.flac", "0003.flac"]  # named by line; blank skipped
    first, second = sf.info(out_dir / "0001.flac"), sf.info(out_dir / "0003.flac")
    assert first.samplerate == second.samplerate == 24000
    assert second.frames > first.frames  # two sentences are longer than one
    before = (out_dir / "0001.flac").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # a rerun resumes: nothing left to do
    assert "skipping 2" in capsys.readouterr().out
    assert (out_dir / "0001.flac").stat().st_mtime_ns == before


@pytest.mark.parametrize("args, message", [
    (["speak", "{missing}", "--text", "hi", "--out", "{tmp}/a.wav"], "does not exist"),
    (["speak", "{model}", "--text", "hi", "--out", "{tmp}/a.xyz"], "cannot tell the audio format"),
    (["speak", "{model}", "--text", "hi"], "--out"),
    (["speak", "{model}", "--text-file", "{tmp}/none.txt", "--out-dir", "{tmp}/o"], "does not exist"),
    (["speak", "{model}"], "nothing to speak"),
    (["serve", "{model}", "--host", "0.0.0.0"], "token"),
    (["serve", "{model}", "--max-batch", "0"], "--max-batch"),
    (["speak", "{model}", "--text", "hi", "--out", "{tmp}/a.wav", "--device", "cpu", "--precision", "fp16"], "slower than fp32"),
    (["serve", "{model}", "--device", "cpu", "--precision", "fp16"], "slower than fp32"),
])
def test_bad_arguments_are_explained(tiny_export, tmp_path, capsys, args, message):
    fill = {"missing": tmp_path / "missing", "model": tiny_export, "tmp": tmp_path}
    assert main([a.format(**fill) for a in args]) == 2
    assert message in capsys.readouterr().err


def test_bad_text_is_refused_before_anything_is_written(tiny_export, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("Fine line.\nПлохая строка\n", encoding="utf-8")
    assert main(["speak", str(tiny_export), "--text-file", str(lines), "--out-dir", str(tmp_path / "o")]) == 2
    assert "cannot encode" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_serve_takes_its_token_from_a_file_or_the_environment(tmp_path, capsys, monkeypatch):
    """Refused before any model loads: a public address without a token, or an unusable token file."""
    model = tmp_path / "no-model-needed"
    assert main(["serve", str(model), "--host", "0.0.0.0"]) == 2
    assert "--token-file" in capsys.readouterr().err
    (tmp_path / "token").write_text("short\n")
    assert main(["serve", str(model), "--host", "0.0.0.0", "--token-file", str(tmp_path / "token")]) == 2
    assert "too short" in capsys.readouterr().err
    assert main(["serve", str(model), "--host", "0.0.0.0", "--token-file", str(tmp_path / "absent")]) == 2
    assert "cannot read the token file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one way to give it at a time
        main(["serve", str(model), "--token", "abcdefgh1", "--token-file", str(tmp_path / "token")])
