"""Speaker embeddings from a speaker-verification model, for "does it sound like the speaker?".

The default is microsoft/wavlm-base-plus-sv: WavLM Base+ with an x-vector head fine-tuned on
VoxCeleb1 for speaker verification (its model card), loaded through transformers, which the project
already depends on, so no new heavy dependency (SpeechBrain's ECAPA-TDNN would add one). Any
transformers audio x-vector model (WavLM, wav2vec 2.0, UniSpeechSat) works by name or folder. It is
downloaded once into $XTTS_FINETUNE_HOME/speaker/ (resumable, like the base models).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from xtts_finetune.errors import UserError
from xtts_finetune.utils import app_home

DEFAULT_SPEAKER_MODEL = "microsoft/wavlm-base-plus-sv"
SAMPLE_RATE = 16000
MODEL_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class SpeakerEmbedder(Protocol):
    """The one interface of both speaker models: this evaluation model (WavLM x-vector, downloaded) and the
    dataset stage's GE2E (dataset/voice_encoder.py, weights from the registry): audio in, unit vector out."""

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (exact for 24 kHz and 22.05 kHz to 16 kHz)."""
    from math import gcd

    from scipy.signal import resample_poly

    if rate == target:
        return np.asarray(audio, dtype=np.float32)
    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def _is_model_folder(folder: Path) -> bool:
    return all((folder / n).is_file() for n in MODEL_FILES) and any((folder / n).is_file() for n in WEIGHT_FILES)


def resolve_speaker_model(spec: str | Path | None = None) -> Path:
    """A local model folder, or a hub repo id downloaded into the cache on first use."""
    spec = str(spec or DEFAULT_SPEAKER_MODEL)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        if not _is_model_folder(folder):
            raise UserError(f"{folder} is not a speaker-verification model folder "
                            f"(it needs {', '.join(MODEL_FILES)} and {' or '.join(WEIGHT_FILES)})",
                            fix=f"point at a transformers x-vector model folder, or give a hub id such as {DEFAULT_SPEAKER_MODEL}")
        return folder.resolve()
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        raise UserError(f"speaker model {spec!r} is neither a folder nor a hub id",
                        fix=f"check the path, or give a hub id such as {DEFAULT_SPEAKER_MODEL}")
    cached = app_home() / "speaker" / spec.replace("/", "--")
    if _is_model_folder(cached):
        return cached
    return _download(spec, cached)


def _download(repo: str, folder: Path) -> Path:
    from huggingface_hub import constants, snapshot_download

    if constants.is_offline_mode():
        raise UserError(f"the speaker model {repo} is not downloaded and HF_HUB_OFFLINE is set",
                        fix="unset HF_HUB_OFFLINE for the first evaluation, or pass --speaker-model FOLDER")
    try:  # huggingface_hub resumes partial files in local_dir; a folder counts once every file is there
        snapshot_download(repo, local_dir=folder, allow_patterns=[*MODEL_FILES, *WEIGHT_FILES])
    except Exception as err:  # network, disk, unknown repository
        raise UserError(f"cannot download the speaker model {repo}: {type(err).__name__}: {err}",
                        fix="check the connection and run again (it resumes), or pass --speaker-model FOLDER") from err
    if not _is_model_folder(folder):
        raise UserError(f"{repo} has no {', '.join(MODEL_FILES)} with weights",
                        fix=f"use a transformers x-vector model such as {DEFAULT_SPEAKER_MODEL}")
    return folder


class SpeakerEncoder:
    """One loaded speaker-verification model: audio in, a unit-length embedding out."""

    def __init__(self, spec: str | Path | None = None, device: str = "cpu"):
        from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

        self.folder = resolve_speaker_model(spec)
        self.device = device
        try:
            self.features = AutoFeatureExtractor.from_pretrained(self.folder)
            self.model = AutoModelForAudioXVector.from_pretrained(self.folder).to(device).eval()
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"cannot load the speaker model in {self.folder}: {err}",
                            fix="delete the folder so it downloads again, or pass another --speaker-model") from err

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
        audio = np.pad(audio, (0, max(0, SAMPLE_RATE // 2 - len(audio))))  # the x-vector head needs ~0.3 s
        inputs = self.features(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            vector = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).embeddings[0]
        vector = vector.float().cpu().numpy()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)


@functools.lru_cache(maxsize=2)
def load_speaker_encoder(spec: str | None, device: str = "cpu") -> SpeakerEncoder:
    """Loaded once per process: training evaluates every few epochs with the same model."""
    return SpeakerEncoder(spec, device)
