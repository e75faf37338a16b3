"""Speech to timed words with faster-whisper, loaded once per run, set up for building datasets.

Settings favour clean clip boundaries over raw speed: VAD drops silence (Whisper invents text in
it), word timestamps come from cross-attention alignment, and each 30 s window is decoded on its
own (no conditioning on the previous text), which stops repetition loops from spreading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xtts_finetune.whisper_gpu import WHEELS_FIX, cuda_check
from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language
from xtts_finetune.progress import ProgressCallback, report

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what Whisper hears; numpy input must already be at this rate
VAD_PARAMETERS = {"threshold": 0.5, "min_silence_duration_ms": 1000, "speech_pad_ms": 400}
CUDA_BATCH_SIZE = 16
LANGUAGE_CHECK_SECONDS = 60  # speech for the language check is looked for in this much audio
LANGUAGE_WARNING_PROBABILITY = 0.8  # a forced language is questioned only when Whisper is this sure


@dataclass
class Word:
    start: float
    end: float
    text: str  # stripped of surrounding whitespace; punctuation stays attached
    probability: float = 1.0


@dataclass
class Transcript:
    language: str  # our code (xtts_finetune.languages); the forced one when a language was given
    language_probability: float  # 1.0 when forced
    duration: float  # of the whole input, seconds
    words: list[Word]
    warnings: list[str] = field(default_factory=list)


class Transcriber:
    """Loads a faster-whisper model once per run."""

    def __init__(self, model: str = "large-v3", device: str = "auto", compute_type: str = "auto",
                 download_root: str | None = None):
        self.notices: list[str] = []  # said once per run: e.g. why Whisper runs on the CPU
        self.device = _pick_device(device, self.notices)
        self.compute_type = _pick_compute_type(self.device, compute_type)
        self.model_name, self._download_root = model, download_root
        self.model = _load_model(model, self.device, self.compute_type, download_root)
        # The batched pipeline decodes VAD chunks in parallel: worth it on a GPU, not on a CPU.
        # 0 means sequential; tests set it to exercise the batched path on a CPU.
        self.batch_size = CUDA_BATCH_SIZE if self.device == "cuda" else 0

    def transcribe(self, audio: str | Path | np.ndarray, language: str | None = None, vad: bool = True,
                   progress: ProgressCallback | None = None) -> Transcript:
        """Words with start/end times (seconds from the start of `audio`).

        `audio` is a media file, or mono float samples at 16 kHz. With `language` set, Whisper
        transcribes in it, and a cheap detection pass warns when the audio sounds like another.
        """
        name, samples = _load_audio(audio)
        try:
            return self._transcribe(name, samples, language, vad, progress)
        except RuntimeError as err:  # CUDA libraries missing or broken: found at the first decode, not at load
            if self.device != "cuda":
                raise
            self._fall_back_to_cpu(err)
            return self._transcribe(name, samples, language, vad, progress)

    def _fall_back_to_cpu(self, err: Exception) -> None:
        message = (f"Whisper failed on the GPU ({str(err).strip().splitlines()[0][:160]}); it runs on the CPU "
                   f"from now on (slower). Fix: {WHEELS_FIX}, then check with `xtts-finetune doctor`")
        log.warning(message)
        self.notices.append(message)
        self.device, self.batch_size = "cpu", 0
        self.compute_type = _pick_compute_type("cpu", "auto")
        self.model = _load_model(self.model_name, "cpu", self.compute_type, self._download_root)

    def _transcribe(self, name: str, samples: np.ndarray, language: str | None, vad: bool,
                    progress: ProgressCallback | None) -> Transcript:
        from faster_whisper import BatchedInferencePipeline

        duration = len(samples) / SAMPLE_RATE
        forced = _whisper_language(language) if language else None
        warnings = self._check_language(samples, forced, vad) if forced else []
        options = dict(
            language=forced, word_timestamps=True, condition_on_previous_text=False,
            vad_filter=vad, vad_parameters=dict(VAD_PARAMETERS) if vad else None,
        )
        if self.batch_size and vad:  # without VAD the batched pipeline cannot split audio over 30 s
            pipeline = BatchedInferencePipeline(self.model)
            segments, info = pipeline.transcribe(samples, batch_size=self.batch_size, without_timestamps=False,
                                                 **options)
        else:
            segments, info = self.model.transcribe(samples, **options)

        words = []
        report(progress, "transcribe", 0, duration, name)
        for segment in segments:
            for w in segment.words or []:
                text = w.word.strip()
                if text:  # clamped: the batched pipeline pads chunks to whole seconds and can overshoot
                    start = min(max(float(w.start), 0.0), duration)
                    words.append(Word(start, min(max(float(w.end), start), duration), text, float(w.probability)))
            done = min(float(segment.end), duration)
            report(progress, "transcribe", done, duration, f"{name} {done:.0f}/{duration:.0f} s")
        report(progress, "transcribe", duration, duration, name)
        return Transcript(
            language=normalize_language(language) if forced else normalize_language(info.language),
            language_probability=1.0 if forced else float(info.language_probability),
            duration=duration, words=words, warnings=warnings,
        )

    def _check_language(self, samples: np.ndarray, forced: str, vad: bool) -> list[str]:
        """Detect the language of the first 30 s of speech; a warning if it confidently differs."""
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        if not self.model.model.is_multilingual:
            return [] if forced == "en" else [f"{self.model_name} is English-only; it cannot transcribe {forced!r}"]
        head = samples[: LANGUAGE_CHECK_SECONDS * SAMPLE_RATE]
        if vad:  # detection on silence or noise is a guess: check speech only
            chunks = get_speech_timestamps(head, VadOptions(**VAD_PARAMETERS))
            if not chunks:
                return []
            head = np.concatenate(collect_chunks(head, chunks)[0])
        detected, probability, _ = self.model.detect_language(audio=head)
        if detected == forced or probability < LANGUAGE_WARNING_PROBABILITY:
            return []
        message = (f"the audio sounds like {normalize_language(detected)!r} ({probability:.0%} sure), "
                   f"not {normalize_language(forced)!r}; check the language setting")
        log.warning(message)
        return [message]


def _pick_device(device: str, notices: list[str]) -> str:
    """cuda when asked or available and its libraries load; otherwise cpu, saying why in `notices`."""
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"Unknown device {device!r} for Whisper.", fix="use auto, cpu or cuda")
    if device == "cpu":
        return device
    check = cuda_check()
    if check.usable:
        return "cuda"
    if device == "cuda":
        raise UserError(f"Whisper cannot run on the GPU: {check.detail}.", fix=f"{WHEELS_FIX}; or use device cpu (or auto)")
    if "cannot load" in check.detail:  # a GPU is there: say why it is not used
        notices.append(f"{check.detail}. Fix: {WHEELS_FIX}")
        log.warning(notices[-1])
    return "cpu"


def _pick_compute_type(device: str, compute_type: str) -> str:
    """float16 on a GPU and int8 on a CPU when the hardware has them: fastest at no real accuracy cost."""
    if compute_type != "auto":
        return compute_type
    import ctranslate2

    try:
        supported = ctranslate2.get_supported_compute_types(device)
    except RuntimeError as err:  # e.g. device "cuda" without a usable CUDA driver
        raise UserError(f"Whisper cannot run on {device}: {err}",
                        fix="use device cpu (or auto), or update the NVIDIA driver") from err
    preferred = ("float16", "int8_float32", "float32") if device == "cuda" else ("int8", "int8_float32", "float32")
    return next((c for c in preferred if c in supported), "default")


def _whisper_language(code: str) -> str:
    """Our language code as Whisper spells it (the same for all 17 XTTS languages: zh-cn -> zh)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    whisper_code = normalize_language(code)
    if whisper_code not in _LANGUAGE_CODES:
        raise UserError(f"Whisper does not know the language {code!r}.",
                        fix=f"use one of its codes: {', '.join(sorted(_LANGUAGE_CODES))}")
    return whisper_code


def _load_model(model: str, device: str, compute_type: str, download_root: str | None):
    """A local CTranslate2 folder, or a name / hub id downloaded (and cached) by faster-whisper."""
    from faster_whisper import WhisperModel
    from faster_whisper.utils import available_models, download_model

    folder = Path(model).expanduser()
    if folder.is_dir():
        missing = [n for n in ("model.bin", "config.json") if not (folder / n).is_file()]
        if missing:
            raise UserError(f"{folder} is not a faster-whisper model folder: it has no {', '.join(missing)}.",
                            fix="point at a CTranslate2 Whisper folder (ct2-transformers-converter output), "
                                "or give a model name such as large-v3")
        path = str(folder)
    elif model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or folder.exists():
        raise UserError(f"Whisper model folder not found: {folder}",
                        fix="check the path, or give a model name such as large-v3")
    elif "/" not in model and model not in available_models():
        raise UserError(f"Unknown Whisper model {model!r} (and no such folder).",
                        fix=f"use one of {', '.join(available_models())}, a Hugging Face repo id "
                            "(owner/name), or a local CTranslate2 model folder")
    else:
        try:
            path = download_model(model, cache_dir=download_root)
        except Exception as err:  # offline, not cached, unknown repo, network or disk failures
            raise UserError(
                f"Cannot get the Whisper model {model!r}: {type(err).__name__}: {err}",
                fix="models download from the Hugging Face Hub on first use: go online (and unset "
                    "HF_HUB_OFFLINE), or pass the path of a local faster-whisper model folder",
            ) from err
    try:
        return WhisperModel(path, device=device, compute_type=compute_type, download_root=download_root)
    except (RuntimeError, ValueError, OSError) as err:
        raise UserError(f"Cannot load the Whisper model {model!r} on {device} ({compute_type}): {err}",
                        fix="try device cpu, or a compute type the device supports (int8, float32); "
                            "if the folder is damaged, delete it so it downloads again") from err


def _load_audio(audio: str | Path | np.ndarray) -> tuple[str, np.ndarray]:
    """(name for messages, mono float32 samples at 16 kHz)."""
    from faster_whisper import decode_audio

    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise UserError(f"Audio arrays must be mono (1-D); got shape {audio.shape}.",
                            fix="average the channels and resample to 16 kHz first, or pass the file path")
        name, samples = "audio", audio.astype(np.float32, copy=False)
    else:
        path = Path(audio).expanduser()
        if not path.is_file():
            raise UserError(f"Audio file not found: {path}", fix="check the path")
        try:
            name, samples = path.name, decode_audio(str(path.resolve()), sampling_rate=SAMPLE_RATE)  # never a protocol
        except Exception as err:  # PyAV raises its own error types for every container problem
            raise UserError(f"Cannot decode {path}: {err}",
                            fix="check that the file plays in a media player; re-export or re-download it") from err
    if samples.size == 0:
        raise UserError(f"{name} contains no audio samples.", fix="re-export or re-download it")
    return name, samples
