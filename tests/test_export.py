"""Export: a trained run becomes a release-layout folder that coqui's Xtts loads and speaks with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_tiny_models import load_xtts
from test_train import make_workspace

from xtts_finetune.basemodels import resolve_base_model
from xtts_finetune.errors import UserError
from xtts_finetune.export import export_model, pick_references
from xtts_finetune.train import TrainSettings, train

CARD_KEYS = {
    "format",
    "name",
    "base",
    "language",
    "languages",
    "text_frontend",
    "dataset",
    "settings",
    "best_eval_loss",
    "created",
    "tool_version",
    "references",
}


@pytest.fixture(scope="module")
def trained(coqui_dataset, tiny_xtts, tmp_path_factory):
    workspace = make_workspace(coqui_dataset, tmp_path_factory.mktemp("export") / "ws")
    return train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=5, save_every_steps=1))


def test_train_export_load_and_synthesize(trained, tiny_xtts):
    folder = export_model(trained.run_dir, "voice")
    assert folder == trained.run_dir.parent.parent / "models" / "voice"
    assert {"config.json", "model.pth", "vocab.json", "speakers_xtts.pth", "model_card.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert (folder / "vocab.json").read_bytes() == (tiny_xtts / "vocab.json").read_bytes()  # the training vocab

    state = torch.load(folder / "model.pth", weights_only=True)
    assert set(state) == {"model"}  # no optimizer, scheduler or step counters
    release = torch.load(tiny_xtts / "model.pth", weights_only=True)["model"]
    assert set(state["model"]) == set(release)  # no DVAE, no mel-spectrogram modules, release key names

    card = json.loads((folder / "model_card.json").read_text())
    assert CARD_KEYS <= set(card)
    assert card["language"] == "en" and "en" in card["languages"] and card["text_frontend"] == {
        "name": "xtts", "version": "1", "vocab": "base", "token_language": "en"}
    assert card["best_eval_loss"] == pytest.approx(trained.best_eval_loss)
    assert card["dataset"]["train_clips"] == 5 and card["settings"]["epochs"] == 1
    # The espeak clips are all ~2 s: the fallback picks the best of them and says so.
    assert 1 <= len(card["references"]) <= 3 and card["notes"]
    assert all((folder / r["file"]).is_file() for r in card["references"])

    model = load_xtts(folder)
    speaker = model.speaker_manager.speakers["speaker"]  # the fine-tuned voice, from its references
    torch.manual_seed(0)
    wav = model.inference("hello world.", "en", speaker["gpt_cond_latent"], speaker["speaker_embedding"])["wav"]
    assert wav.size > 1000 and np.isfinite(wav).all()
    assert "Tiny Speaker" in model.speaker_manager.speakers  # the base's speakers are kept


def test_exports_never_overwrite_and_fp16_halves_the_weights(trained):
    first = export_model(trained.run_dir, "same", checkpoint="last")
    second = export_model(trained.run_dir, "same", fp16=True)
    assert (first.name, second.name) == ("same", "same-2")
    weights = torch.load(second / "model.pth", weights_only=True)["model"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    assert (second / "model.pth").stat().st_size < 0.6 * (first / "model.pth").stat().st_size
    load_xtts(second)
    with pytest.raises(UserError, match="does not exist"):
        export_model(trained.run_dir, "x", checkpoint="nope.pth")


def test_an_export_is_a_base_for_further_fine_tuning(trained):
    folder = export_model(trained.run_dir, "base-for-more")
    assert resolve_base_model(folder) == folder
    again = train(trained.run_dir.parent.parent, folder, TrainSettings(epochs=1, batch_size=5))
    assert again.status == "finished"
    settings = json.loads((again.run_dir / "settings.json").read_text())
    assert settings["base"]["path"] == str(folder)


def test_references_prefer_clean_clips_of_six_to_twelve_seconds(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(22050 * 8) / 22050
    speech_like = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)).astype("float32")
    sf.write(tmp_path / "clean.wav", speech_like, 22050)
    sf.write(tmp_path / "noisy.wav", speech_like + 0.1 * rng.standard_normal(len(t)).astype("float32"), 22050)
    sf.write(tmp_path / "short.wav", speech_like[: 22050 * 3], 22050)
    picked, note = pick_references([tmp_path / n for n in ("noisy.wav", "short.wav", "clean.wav")])
    assert [p.name for p, _ in picked] == ["clean.wav", "noisy.wav"] and note == ""
    assert picked[0][1]["snr_db"] > picked[1][1]["snr_db"]


def test_export_names_a_base_model_that_is_gone(trained, tmp_path):
    import shutil

    run = tmp_path / "ws" / "runs" / trained.run_dir.name
    shutil.copytree(trained.run_dir, run)
    settings = json.loads((run / "settings.json").read_text(encoding="utf-8"))
    settings["base"]["path"] = str(tmp_path / "deleted-base")
    (run / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(UserError, match="deleted-base, is gone"):
        export_model(run, "voice")
    assert not (tmp_path / "ws" / "models" / "voice").exists()
