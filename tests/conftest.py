"""Shared fixtures: tiny models built once per test session, and espeak-ng speech with known text."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Caches (base models, conditioning latents) go to a scratch folder, never the user's real home.
os.environ["XTTS_FINETUNE_HOME"] = tempfile.mkdtemp(prefix="xtts-finetune-home-")

SENTENCES = [
    "Hello there, my friend.",
    "The weather is lovely today.",
    "Speech synthesis is fun to build.",
    "Please read this sentence aloud.",
    "A tiny model learns nothing at all.",
    "Numbers like seven and eight are fine.",
]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    from xtts_finetune.dev import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_xtts(tiny_models) -> Path:
    return tiny_models["xtts"]


@pytest.fixture(scope="session")
def tiny_whisper(tiny_models) -> Path:
    return tiny_models["whisper"]


@pytest.fixture(scope="session")
def coqui_dataset(tmp_path_factory) -> Path:
    """A small Coqui-format dataset (wavs/ + metadata_train.csv + metadata_eval.csv) of espeak-ng speech."""
    from speech import make_training_set

    return make_training_set(tmp_path_factory.mktemp("coqui_dataset"), SENTENCES)


@pytest.fixture(scope="session")
def tiny_export(tiny_xtts, tmp_path_factory) -> Path:
    """An export-like model folder: the tiny XTTS plus references/ (espeak-ng clips) and model_card.json."""
    import json
    import shutil

    from speech import espeak

    folder = tmp_path_factory.mktemp("tiny_export") / "tiny-voice"
    folder.mkdir()
    for name in ("config.json", "model.pth", "vocab.json", "speakers_xtts.pth"):
        shutil.copy2(tiny_xtts / name, folder / name)
    espeak("This is the first reference clip of the voice.", folder / "references" / "ref_a.wav")
    espeak("And here is a second one, a little longer than the first.", folder / "references" / "ref_b.wav")
    card = {"name": "tiny-voice", "base": {"version": "tiny"}, "language": "en", "languages": ["en"],
            "text_frontend": "default", "references": ["references/ref_a.wav", "references/ref_b.wav"]}
    (folder / "model_card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one browser test module (tests/browser.py drives its page)."""
    from browser import chromium

    with chromium() as opened:
        yield opened
