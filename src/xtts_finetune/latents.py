"""Conditioning latents per set of reference clips, cached in memory and on disk.

Computing them (loading clips, a speaker-encoder and a style-encoder pass) is a large share of a
short request, and the same few clips are used over and over, so they are keyed by what they
depend on: the clips' bytes, the conditioning settings and the model they were computed with.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch

from xtts_finetune.utils import app_home, atomic_torch_save, file_sha256, sweep_partial_writes

log = logging.getLogger(__name__)

Latents = tuple[torch.Tensor, torch.Tensor]  # (gpt_cond_latent, speaker_embedding)


def default_cache_dir() -> Path:
    return app_home() / "latents"


def model_fingerprint(model_dir: Path) -> str:
    """Identifies the weights cheaply: config.json's bytes plus model.pth's size and mtime.

    Hashing a 1.8 GB model.pth on every load would cost seconds; a copied or rewritten model.pth
    gets a new mtime, so at worst the cache misses once.
    """
    stat = (model_dir / "model.pth").stat()
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


class LatentsCache:
    """Maps a list of clips to their latents; `get` says where the answer came from."""

    def __init__(self, directory: Path | None, fingerprint: str, settings: dict, max_in_memory: int = 32):
        self.directory = Path(directory) if directory else None
        self.prefix = json.dumps({"model": fingerprint, **settings}, sort_keys=True)
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[str, Latents] = OrderedDict()
        if self.directory is not None:
            sweep_partial_writes(self.directory)  # a write a kill cut short

    def key(self, clips: list[Path]) -> str:
        digest = hashlib.sha256(self.prefix.encode())
        for clip in clips:  # order matters: XTTS concatenates the clips before the style encoder
            digest.update(file_sha256(clip).encode())
        return digest.hexdigest()

    def get(self, clips: list[Path], compute: Callable[[list[Path]], Latents]) -> tuple[Latents, str]:
        """The latents for `clips` and their source: "memory", "disk" or "computed"."""
        key = self.key(clips)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key], "memory"
        latents, source = self._load(key), "disk"
        if latents is None:
            latents, source = compute(clips), "computed"
            latents = tuple(t.detach().cpu() for t in latents)
            if self.directory is not None:
                atomic_torch_save({"gpt_cond_latent": latents[0], "speaker_embedding": latents[1]}, self._path(key))
        self._memory[key] = latents
        while len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        return latents, source

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def _load(self, key: str) -> Latents | None:
        if self.directory is None or not self._path(key).is_file():
            return None
        try:
            data = torch.load(self._path(key), map_location="cpu", weights_only=True)
            return data["gpt_cond_latent"], data["speaker_embedding"]
        except Exception as err:  # a damaged cache file is recomputed, never fatal
            log.warning("ignoring unreadable latents cache file %s: %s", self._path(key), err)
            return None
