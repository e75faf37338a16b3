"""`Synthesizer`: load a model folder once, then speak or stream text in any of its voices.

Every interface (CLI, web UI, REST server) speaks through this class, so validation, sentence
splitting, the text front end and the latents cache behave the same everywhere. Requests are
checked by `prepare` (cheap, no model work) before `generate` touches the GPU, so a server can
refuse bad input without queueing it. The parts live in their own modules: the request's text
(`speech_text`), its voice (`voices`), the GPT decoding (`decode`), the continuous batch of
requests (`batching`) and the vocoder (`vocoder`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from xtts_finetune.basemodels import MODEL_FILES
from xtts_finetune.batching import FADE_SECONDS, Batcher, SpeechRequest, trim_trailing_silence  # noqa: F401 (part of this API)
from xtts_finetune.decode import GptDecoder, Row, code_cap
from xtts_finetune.devices import precision_for, resolve_device, torch_dtype
from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language
from xtts_finetune.latents import LatentsCache, default_cache_dir, model_fingerprint
from xtts_finetune.speech_text import check_characters, check_language, split_for_gpt
from xtts_finetune.vocoder import BlockVocoder
from xtts_finetune.voices import DEFAULT_VOICE, Voice, Voices  # noqa: F401 (part of this API)

log = logging.getLogger(__name__)

MAX_CHARS = 100_000

# Text front ends by the name an export records in model_card.json (text/frontends.py); "default" is
# what exports of earlier versions recorded: XTTS's own cleaning, the base vocabulary.
KNOWN_FRONTENDS = ("default", "xtts", "basic", "amharic")


@dataclass
class SynthesisStats:
    """Counters tests and the UI can read (no timings)."""

    latents_cache_hits: int = 0  # from memory or disk
    latents_disk_loads: int = 0
    latents_cache_misses: int = 0  # computed from the clips
    sentences: int = 0
    codes: int = 0  # GPT latents decoded (one per audio code, plus the stop token's)


class Synthesizer:
    """One loaded model. Not thread-safe: callers run one `generate` at a time (the server queues)."""

    stream_chunk_codes = 16  # codes in a sentence's first block: small, so the first sound comes soon
    later_chunk_factor = 4  # later blocks are this many times longer: fewer decoder calls

    def __init__(self, model_dir: str | Path, device: str = "auto", latents_cache_dir: Path | None = None,
                 max_chars: int = MAX_CHARS, max_batch: int = 8, precision: str = "auto"):
        self.model_dir = check_model_folder(model_dir)
        self.card = _read_card(self.model_dir)
        self.vocab_mode = _frontend(self.card, self.model_dir)["vocab"]
        self.max_chars = max_chars
        self.device = resolve_device(device)
        self.dtype = torch_dtype(precision_for(precision, self.device))  # a bad choice fails before the model loads
        self.config, self.model = _load_model(self.model_dir, self.device)
        self.sample_rate = self.config.audio.output_sample_rate  # the vocoder's (24 kHz in the release)
        if self.vocab_mode != "base":  # the model's language is read through its front end, as in training
            from xtts_finetune.text.vocab import load_tokenizer

            self.model.tokenizer = load_tokenizer(self.model_dir / "vocab.json", self.card["language"], self.vocab_mode)
        self.max_batch = max_batch  # sentences decoded together
        self.decoder = GptDecoder(self.model.gpt, dtype=self.dtype)
        self.vocoder = BlockVocoder(self.model.hifigan_decoder, self.device, self.dtype)
        settings = {k: getattr(self.config, k) for k in ("gpt_cond_len", "gpt_cond_chunk_len", "max_ref_len", "sound_norm_refs")}
        cache = LatentsCache(latents_cache_dir or default_cache_dir(), model_fingerprint(self.model_dir), settings)
        self.voice_bank = Voices(self.model, self.model_dir, self.config, cache, self.card)
        self.stats = SynthesisStats()

    @property
    def name(self) -> str:
        return self.card.get("name") or self.model_dir.name

    @property
    def languages(self) -> list[str]:
        return [normalize_language(code) for code in self.config.languages]

    @property
    def references(self) -> list[Path]:
        return self.voice_bank.references

    @property
    def speakers(self) -> dict:
        return self.voice_bank.speakers

    @property
    def speaker_references(self) -> dict[str, list[Path]]:
        """{speaker: reference clips} of an export of several speakers (empty for other model folders)."""
        return self.voice_bank.speaker_references

    def voices(self) -> list[str]:
        """Reference voices first ("default" = all clips, then each clip alone), then built-in speakers."""
        return self.voice_bank.names()

    @property
    def samples_per_code(self) -> float:
        """Output samples per GPT latent at speed 1 (the decoder stretches each latent by a fixed factor)."""
        return self.vocoder.samples_per_code

    def prepare(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, *,
                temperature: float = 0.75, top_k: int = 50, top_p: float = 0.85, repetition_penalty: float = 10.0,
                length_penalty: float = 1.0, speed: float = 1.0, seed: int | None = None) -> SpeechRequest:
        """Check a request and split its text; raises UserError for anything wrong with it."""
        language = check_language(language, self.card.get("language"), self.config.languages)
        text = (text or "").strip()
        if not text:
            raise UserError("the text to speak is empty", fix="give some text")
        if len(text) > self.max_chars:
            raise UserError(f"the text has {len(text)} characters; the limit is {self.max_chars}",
                            fix="split it into several requests")
        mode = self.vocab_mode if normalize_language(self.card.get("language", "")) == language else "base"
        check_characters(text, language, self.model_dir / "vocab.json", mode)
        _check_range("temperature", temperature, 0.01, 5.0)
        _check_range("top_k", top_k, 1, 10_000)
        _check_range("top_p", top_p, 0.01, 1.0)
        _check_range("repetition_penalty", repetition_penalty, 0.01, 100.0)
        _check_range("length_penalty", length_penalty, -10.0, 10.0)
        _check_range("speed", speed, 0.25, 4.0)
        if seed is not None:
            _check_range("seed", seed, 0, 2**63 - 1_000_000)
        settings = dict(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), speed=float(speed),
                        repetition_penalty=float(repetition_penalty), length_penalty=float(length_penalty))
        tokenizer = self.model.tokenizer
        sentences = split_for_gpt(text, language, tokenizer.char_limits.get(language, 250), tokenizer,
                                  self.model.args.gpt_max_text_tokens)
        if not sentences:
            raise UserError("the text to speak has nothing to say", fix="give some words")
        return SpeechRequest(sentences, language, self.voice_bank.check(voice), settings, seed)

    def generate(self, request: SpeechRequest, stream: bool = True) -> Iterator[np.ndarray]:
        """Audio as it is decoded, in blocks of a sentence, the pause before a sentence in its first block;
        float32, 24 kHz. With `stream` off each sentence is one block, decoded by the vocoder in one go."""
        for _, chunk in self.generate_many([request], stream):
            if chunk is not None:
                yield chunk

    def generate_many(self, requests: list[SpeechRequest], stream: bool = True, max_batch: int | None = None,
                      incoming: Callable[[], list[SpeechRequest]] | None = None,
                      cancelled: Callable[[int], bool] | None = None) -> Iterator[tuple[int, np.ndarray | None]]:
        """(request index, chunk) for several requests at once, each request's chunks in order and then
        (index, None) when it is done. Their sentences decode in one continuous batch of up to `max_batch`
        rows, first sentences first, so a long request does not hold a short one back; a row that finishes
        makes room for the next sentence at once. `incoming`, asked every few tokens, gives more requests
        (indexed on from the last), which join the running batch. A request `cancelled` names (its client
        left) leaves the batch at the next report and ends there: (index, None), no more audio."""
        batcher = Batcher(self, max_batch or self.max_batch, stream, cancelled or (lambda i: False))
        for request in requests:
            batcher.add(request)
        yield from batcher.run(incoming)

    def speak(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, **settings) -> np.ndarray:
        """The whole text as one float32 array at 24 kHz (settings as in `prepare`)."""
        return np.concatenate(list(self.generate(self.prepare(text, language, voice, **settings), stream=False)))

    def stream(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, **settings) -> Iterator[np.ndarray]:
        """Like `speak`, in chunks as they are decoded; checks the request before returning."""
        return self.generate(self.prepare(text, language, voice, **settings))

    def voice_latents(self, voice: Voice):
        """A checked voice as (GPT conditioning latents, speaker embedding), cached; a reference clip that
        cannot be used fails here."""
        latents, source = self.voice_bank.latents(voice)
        if source == "computed":
            self.stats.latents_cache_misses += 1
        elif source != "builtin":
            self.stats.latents_cache_hits += 1
            self.stats.latents_disk_loads += source == "disk"
        return latents

    def row(self, request: SpeechRequest, j: int, cond_latent: torch.Tensor, key=None) -> Row:
        """Sentence j of `request` as a row for the decoder: its prefix, code cap and sampling settings."""
        sentence, settings = request.sentences[j], request.settings
        tokens = self.model.tokenizer.encode(sentence.strip().lower(), lang=request.language)
        seed = request.seed + j if request.seed is not None else int(torch.randint(2**62, ()))
        return Row(self.decoder.prefix(cond_latent, tokens), code_cap(sentence, self.decoder.model_cap),
                   temperature=settings.get("temperature", 0.75), top_k=settings.get("top_k", 50),
                   top_p=settings.get("top_p", 0.85), repetition_penalty=settings.get("repetition_penalty", 10.0),
                   seed=seed, key=key)


def check_model_folder(model_dir: str | Path) -> Path:
    """The folder, if it holds what loading needs; otherwise a UserError listing what is missing."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist",
                        fix="give a folder with config.json, model.pth, vocab.json (a base model or an export)")
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"model folder {folder} is incomplete: missing {', '.join(missing)}",
                        fix="copy the missing files from the base model or export the model again")
    return folder.resolve()


def _read_card(folder: Path) -> dict:
    path = folder / "model_card.json"
    if not path.is_file():
        return {}  # a base release has none
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON: {err}", fix="restore it from the export, or delete it") from err


def _load_model(folder: Path, device: str):
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    try:
        config.load_json(str(folder / "config.json"))
    except Exception as err:
        raise UserError(f"{folder / 'config.json'} cannot be read: {err}", fix="restore the model folder's config.json") from err
    model = Xtts(config)
    try:
        model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
    except (RuntimeError, KeyError, EOFError) as err:
        raise UserError(f"{folder / 'model.pth'} does not load with its config.json: {str(err)[:300]}",
                        fix="use a complete model folder (re-export it, or download the base model again)") from err
    return config, model.to(device)


def _check_range(name: str, value, low, high) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UserError(f"{name} must be a number from {low} to {high}, not {value!r}", fix=f"choose a {name} in range")


def _frontend(card: dict, folder: Path) -> dict:
    """The text front end the model card names, {"name", "vocab"}; one this version lacks is refused."""
    frontend = card.get("text_frontend") or "default"
    frontend = frontend if isinstance(frontend, dict) else {"name": frontend}
    if frontend.get("name") not in KNOWN_FRONTENDS:
        raise UserError(
            f"{folder / 'model_card.json'} asks for text front end {frontend.get('name')!r}, which this version does not have",
            fix=f"update xtts-finetune, or set text_frontend to one of: {', '.join(KNOWN_FRONTENDS)}",
        )
    return {"vocab": "base", **frontend}
