"""Regression tests for defects found in review: each fails on the code before its fix."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from xtts_finetune.cli import main
from xtts_finetune.dataset import create_dataset, list_segments
from xtts_finetune.dataset.corpus import read_coqui_csv
from xtts_finetune.dataset.manifest import Manifest, Segment, save_manifest
from xtts_finetune.dataset.media import decode_audio
from xtts_finetune.dataset.transcribe import _load_audio
from xtts_finetune.train.preflight import dataset_clips
from xtts_finetune.train.settings import MIN_AUDIO_SECONDS


def test_a_path_leaving_the_workspace_is_a_user_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "ws" / "runs").mkdir(parents=True)
    assert main(["train", str(tmp_path / "ws"), "--resume", "../../elsewhere"]) == 2
    assert "outside" in capsys.readouterr().err


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


def test_ffmpeg_reads_a_file_whose_name_looks_like_a_protocol(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tone = 0.3 * np.sin(np.linspace(0, 440 * 2 * np.pi, 11025)).astype(np.float32)
    for name in ("concat:clip.wav", "-dash.wav"):
        sf.write(tmp_path / name, tone, 22050)
        assert len(decode_audio(name)) == 11025, name
        assert len(_load_audio(name)[1]) == 8000, name  # Whisper's decoder (PyAV), resampled to 16 kHz


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


def test_training_on_an_export_of_an_export_finds_the_release_assets(tmp_path):
    import json

    from xtts_finetune.basemodels import training_assets

    release, first, second = (tmp_path / n for n in ("release", "first", "second"))
    for folder in (release, first, second):
        folder.mkdir()
    for name in ("dvae.pth", "mel_stats.pth"):
        (release / name).write_bytes(b"weights")
    (first / "model_card.json").write_text(json.dumps({"base": {"version": "v2.0.3", "path": str(release)}}))
    (second / "model_card.json").write_text(json.dumps({"base": {"version": "v2.0.3", "path": str(first)}}))
    assert training_assets(second) == {"dvae": release / "dvae.pth", "mel_stats": release / "mel_stats.pth"}


def test_a_new_upload_with_the_name_and_size_of_an_old_one_replaces_it(tmp_path):
    from xtts_finetune.webui.common import UI, copy_uploads

    ui = UI(workspace=tmp_path / "ws", jobs=None)
    for n, voice in enumerate((b"voice A", b"voice B")):  # same length: a wav of the same duration
        upload = tmp_path / f"browser{n}" / "reference.wav"
        upload.parent.mkdir()
        upload.write_bytes(voice)
        [copied] = copy_uploads(ui, [str(upload)], "references")  # gradio hands over paths as str
        assert copied.read_bytes() == voice


def test_reference_clip_whose_name_looks_like_a_protocol(tiny_export, tmp_path, monkeypatch):
    import shutil

    from xtts_finetune.synthesis import Synthesizer

    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_export / "references" / "ref_a.wav", tmp_path / "concat:ref.wav")
    synth = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path / "latents")
    assert synth.speak("Hello there.", "en", ["concat:ref.wav"], seed=1).size > 0


def test_speak_tab_default_language_is_one_of_its_choices(tiny_export, tmp_path, monkeypatch):
    import json
    import shutil

    from xtts_finetune.webui.app import build_app

    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))  # the latents cache
    model = tmp_path / "ws" / "models" / "chinese-voice"
    shutil.copytree(tiny_export, model)
    card = json.loads((model / "model_card.json").read_text())
    (model / "model_card.json").write_text(json.dumps({**card, "language": "zh-cn"}))  # as export.py writes it

    demo = build_app(tmp_path / "ws")
    on_model = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_model")
    _, language, _ = on_model(str(model))
    assert language["value"] == "zh" and "zh" in [value for _, value in language["choices"]]


def test_two_uploads_of_the_same_name_in_one_batch_are_both_kept(tmp_path):
    from xtts_finetune.webui.common import UI, copy_uploads

    uploads = []
    for n, voice in enumerate((b"first take", b"second take, longer")):
        upload = tmp_path / f"browser{n}" / "audio.wav"
        upload.parent.mkdir()
        upload.write_bytes(voice)
        uploads.append(str(upload))
    copied = copy_uploads(UI(workspace=tmp_path / "ws", jobs=None), uploads, "media")
    assert [p.read_bytes() for p in copied] == [b"first take", b"second take, longer"]
    assert [p.name for p in copied] == ["audio.wav", "audio.wav"]  # each keeps the name it was uploaded under
