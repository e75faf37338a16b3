"""The dataset stage's speaker encoder: GE2E (Wan et al. 2018) with the weights resemblyzer's wheel ships.

The weights install with the project (the `resemblyzer` package carries them, Apache-2.0), so picking
the target voice or telling voices apart needs no download. Only that weights file is read, with
`weights_only=True`: resemblyzer's own modules import webrtcvad (a C extension with no wheels), which
this project does not install. The network is small (3 LSTM layers of 256 over 40 mel bands, a
linear layer, ReLU): on one CPU core it embeds speech far faster than real time (README, "Voices").

Its features follow the published GE2E/resemblyzer recipe: 16 kHz audio, 25 ms windows every 10 ms,
40 mel bands of power (no log), utterances cut into 1.6 s partials whose embeddings are averaged.
"""

from __future__ import annotations

import contextlib
import functools
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from xtts_finetune.errors import UserError

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
N_FFT = 400  # 25 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s: what the model was trained on
PARTIAL_STEP = 77  # ~1.3 partials a second, overlapping by half
TARGET_DBFS = -30.0  # quiet speech is raised to this level (never lowered) before the mel


def weights_file() -> Path:
    """resemblyzer's `pretrained.pt`, found without importing the package."""
    spec = find_spec("resemblyzer")
    path = Path(spec.origin).parent / "pretrained.pt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise UserError("the speaker encoder's weights (the resemblyzer package) are not installed",
                        fix="run scripts/install.sh again (or `uv sync`) to install the project's dependencies")
    return path


def _model(device: str):
    import torch
    from torch import nn

    class GE2E(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            _, (hidden, _) = self.lstm(mels)
            vectors = torch.relu(self.linear(hidden[-1]))
            return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)

    model = GE2E()
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)["model_state"]
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
    return model.to(device).eval()


class GE2EEncoder:
    """Audio in, a unit-length 256-d speaker embedding out (the `SpeakerEmbedder` interface)."""

    name = "ge2e (resemblyzer weights)"

    def __init__(self, device: str = "cpu"):
        import torchaudio

        self.device = device
        self.model = _model(device)
        # librosa's mel filterbank (Slaney scale and norm, zero padding), which the weights were trained on,
        # computed by torchaudio: the same numbers to 1e-6, without numba's seconds of compiling at first use.
        self.mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                                        norm="slaney", mel_scale="slaney", pad_mode="constant")

    def _mel(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        import torch

        from xtts_finetune.evaluate.speaker import resample

        audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE)
        audio = np.pad(audio, (0, max(0, N_FFT - len(audio))))  # a word Whisper timed as 0 s still has a frame
        rms = float(np.sqrt(np.mean(audio ** 2))) if len(audio) else 0.0
        if 0 < rms < 10 ** (TARGET_DBFS / 20):
            audio = audio * (10 ** (TARGET_DBFS / 20) / rms)
        with torch.inference_mode():
            return self.mel(torch.from_numpy(audio)).numpy().T.copy()  # (frames, bands)

    def _embed_frames(self, partials: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(partials).to(self.device)).float().cpu().numpy()

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """One embedding for a clip: the normalised mean of its 1.6 s partials (short clips are padded)."""
        with _one_thread():
            return self._embed(audio, sample_rate)

    def _embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        mel = self._mel(audio, sample_rate)
        if len(mel) < PARTIAL_FRAMES:
            mel = np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
        starts = list(range(0, len(mel) - PARTIAL_FRAMES + 1, PARTIAL_STEP))
        if len(mel) - (starts[-1] + PARTIAL_FRAMES) > PARTIAL_FRAMES // 4:  # a tail worth its own partial
            starts.append(len(mel) - PARTIAL_FRAMES)
        vectors = self._embed_frames(np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts]))
        mean = vectors.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)


@contextlib.contextmanager
def _one_thread():
    """Torch on one thread: a short mel and an LSTM over a few 1.6 s partials are chains of tiny operations
    that more threads only slow down (on a busy 2-core machine, a hundredfold: each step waits for every thread)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def load_voice_encoder(device: str = "cpu") -> GE2EEncoder:
    """Loaded once per process (the web UI adds sources many times)."""
    return GE2EEncoder(device)
