"""Shared fixtures: tiny models built once per test session, and espeak-ng speech with known text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
