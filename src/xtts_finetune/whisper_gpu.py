"""Whisper on the GPU with the default install: the CUDA libraries CTranslate2 needs, found or explained.

CTranslate2 4.x is built against CUDA 12 and loads cuBLAS 12 and cuDNN 9 by name when it first
decodes on a GPU. torch's default Linux wheel now ships CUDA 13, so nothing provides them and the
first batch fails. faster-whisper documents NVIDIA's pip wheels for this (nvidia-cublas-cu12,
nvidia-cudnn-cu12 9.x); when they are installed we load them from their folders before CTranslate2
asks, and when they are not, Whisper runs on the CPU and says why.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# wheel package -> (libraries needed, in load order: cuBLAS needs cuBLASLt), (parts loaded when present).
_LINUX = {"nvidia.cublas": (("libcublasLt.so.12", "libcublas.so.12"), ()),
          "nvidia.cudnn": (("libcudnn.so.9",), ("libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_graph.so.9",
                                                 "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
                                                 "libcudnn_heuristic.so.9", "libcudnn_adv.so.9"))}
_WINDOWS = {"nvidia.cublas": (("cublasLt64_12.dll", "cublas64_12.dll"), ()), "nvidia.cudnn": (("cudnn64_9.dll",), ())}
WHEELS_FIX = ("install the CUDA 12 libraries: uv pip install 'xtts-finetune[whisper-gpu]' (or pip install nvidia-cublas-cu12 "
              "'nvidia-cudnn-cu12>=9,<10') into xtts-finetune's environment")
_loaded: dict[str, object] = {}  # kept referenced: an unloaded handle would take the library with it


@dataclass
class CudaCheck:
    usable: bool  # Whisper can decode on the GPU
    detail: str


def _wheel_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / ("bin" if sys.platform == "win32" else "lib")


def _load(name: str, folder: Path | None) -> bool:
    if name in _loaded:
        return True
    candidates = ([str(folder / name)] if folder is not None and (folder / name).is_file() else []) + [name]
    for candidate in candidates:
        try:
            _loaded[name] = ctypes.CDLL(candidate, mode=getattr(os, "RTLD_GLOBAL", 0))
            return True
        except OSError:
            continue
    return False


def load_cuda_libraries() -> list[str]:
    """Load cuBLAS 12 and cuDNN 9 from NVIDIA's wheels (or the system); returns the ones not found.

    Loaded globally by their sonames, so CTranslate2's own lookup of the same names finds them.
    """
    if sys.platform == "darwin":
        return []  # CTranslate2 has no CUDA on macOS
    table = _WINDOWS if sys.platform == "win32" else _LINUX
    missing = []
    for package, (needed, parts) in table.items():
        folder = _wheel_dir(package)
        if sys.platform == "win32" and folder is not None and folder.is_dir():
            os.add_dll_directory(str(folder))
        missing += [name for name in needed if not _load(name, folder)]
        for part in parts:  # cuDNN loads these itself when found; releases differ in which exist
            _load(part, folder)
    return missing


def cuda_check() -> CudaCheck:
    """Whether faster-whisper can decode on a GPU here, and if not, why."""
    try:
        import ctranslate2

        gpus = ctranslate2.get_cuda_device_count()
    except (ImportError, OSError, RuntimeError) as err:
        return CudaCheck(False, f"CTranslate2 cannot look for a GPU: {err}")
    if gpus == 0:
        return CudaCheck(False, "no CUDA GPU visible to CTranslate2: Whisper runs on the CPU")
    missing = load_cuda_libraries()
    if missing:
        return CudaCheck(False, f"CTranslate2 sees {gpus} GPU(s) but cannot load {', '.join(missing)} "
                                "(CUDA 12 libraries it needs): Whisper runs on the CPU")
    return CudaCheck(True, f"Whisper decodes on the GPU ({gpus} visible; cuBLAS 12 and cuDNN 9 loaded)")
