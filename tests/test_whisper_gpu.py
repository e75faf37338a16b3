"""Whisper on a GPU with the default install: libraries found, or the CPU with a clear message; one bad source fails alone.

No GPU here: the hardware probe is replaced where a GPU must be pretended, everything else runs for real.
"""

from __future__ import annotations

import shutil
import sys

import pytest

from speech import espeak
from xtts_finetune import doctor, whisper_gpu
from xtts_finetune.dataset import create_dataset, load_manifest
from xtts_finetune.dataset.transcribe import Transcriber
from xtts_finetune.errors import UserError


@pytest.fixture
def gpu_without_cuda12(monkeypatch):
    """A GPU CTranslate2 can see, and no cuBLAS 12: torch's CUDA 13 build on a CUDA machine."""
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    monkeypatch.setattr(whisper_gpu, "load_cuda_libraries", lambda: ["libcublas.so.12"])


def test_auto_device_falls_back_to_the_cpu_and_says_why(tiny_whisper, gpu_without_cuda12):
    t = Transcriber(str(tiny_whisper), device="auto")
    assert t.device == "cpu" and len(t.notices) == 1
    assert "libcublas.so.12" in t.notices[0] and "nvidia-cublas-cu12" in t.notices[0]
    with pytest.raises(UserError, match="Whisper cannot run on the GPU"):
        Transcriber(str(tiny_whisper), device="cuda")
    check = doctor.check_whisper_gpu()
    assert check.ok is None and "libcublas.so.12" in check.detail and "whisper-gpu" in check.fix


def test_a_failure_at_the_first_gpu_decode_reloads_on_the_cpu(tiny_whisper, tmp_path):
    t = Transcriber(str(tiny_whisper), device="cpu")
    t.device = "cuda"  # as if loaded on a GPU whose libraries fail only when decoding starts

    def broken(*args, **kwargs):
        raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    t.model.transcribe = broken
    transcript = t.transcribe(espeak("Hello there.", tmp_path / "a.wav"), language="en")
    assert t.device == "cpu" and transcript.duration > 0.5
    assert "Whisper failed on the GPU (Library libcublas.so.12" in t.notices[0]


def test_one_failing_source_never_aborts_the_job(tiny_whisper, tmp_path):
    class FailsOnce(Transcriber):
        calls = 0

        def transcribe(self, audio, *args, **kwargs):
            FailsOnce.calls += 1
            if FailsOnce.calls == 1:
                raise RuntimeError("CUDA failed with error out of memory")
            return super().transcribe(audio, *args, **kwargs)

    for name in ("a", "b"):
        espeak("Hello there, my friend. The weather is lovely today.", tmp_path / "in" / f"{name}.wav")
    shutil.rmtree(tmp_path / "in" / "_espeak", ignore_errors=True)
    report = create_dataset(tmp_path / "ws", language="en", audio=[tmp_path / "in"],
                            transcriber=FailsOnce(str(tiny_whisper), device="cpu"))
    assert report.failed == [(str(tmp_path / "in" / "a.wav"), "RuntimeError: CUDA failed with error out of memory")]
    assert FailsOnce.calls == 2  # b was transcribed after a failed
    assert [s.path for s in load_manifest(tmp_path / "ws").sources] == [str((tmp_path / "in" / "b.wav").resolve())]


@pytest.mark.skipif(sys.platform != "linux", reason="shared-library names and loading are Linux's here")
def test_libraries_load_from_nvidia_wheel_folders(tmp_path, monkeypatch):
    real = next(p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
                            "/lib/aarch64-linux-gnu/libz.so.1") if __import__("os").path.exists(p))
    for package, names in {"cublas": ("libcublasLt.so.12", "libcublas.so.12"), "cudnn": ("libcudnn.so.9",)}.items():
        lib = tmp_path / "nvidia" / package / "lib"
        lib.mkdir(parents=True)
        (lib.parent / "__init__.py").write_text("")
        for name in names:  # a harmless real library under each name, as NVIDIA's wheels lay them out
            shutil.copy(real, lib / name)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(whisper_gpu, "_loaded", {})
    for module in [m for m in sys.modules if m == "nvidia" or m.startswith("nvidia.")]:
        monkeypatch.delitem(sys.modules, module)
    assert whisper_gpu._wheel_dir("nvidia.cublas") == tmp_path / "nvidia" / "cublas" / "lib"
    assert whisper_gpu.load_cuda_libraries() == []
    assert set(whisper_gpu._loaded) >= {"libcublasLt.so.12", "libcublas.so.12", "libcudnn.so.9"}
