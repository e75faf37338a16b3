"""`Synthesizer`: load a model folder once, then speak or stream text in any of its voices.

Every interface (CLI, web UI, REST server) speaks through this class, so validation, sentence
splitting, the text front end and the latents cache behave the same everywhere. Requests are
checked by `prepare` (cheap, no model work) before `generate` touches the GPU, so a server can
refuse bad input without queueing it.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from xtts_finetune.basemodels import MODEL_FILES
from xtts_finetune.decode import GptDecoder, Row, code_cap
from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language, tokenizer_language
from xtts_finetune.latents import LatentsCache, default_cache_dir, model_fingerprint
from xtts_finetune.utils import PRECISIONS
from xtts_finetune.vocoder import BlockVocoder
from xtts_finetune.voices import reference_voices

log = logging.getLogger(__name__)

DEFAULT_VOICE = "default"  # all of an export's reference clips together
MAX_CHARS = 100_000
GAP_SECONDS = 0.2  # silence between sentences
FADE_SECONDS = 0.005  # fade at each sentence's edges, so joins never click
TRIM_KEEP_SECONDS = 0.1  # quiet kept after a sentence's last sound (the rest is trimmed)
TRIM_LEVEL = 0.01  # "quiet": below 1% (-40 dB) of the sentence's peak

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


@dataclass
class _Cursor:
    """Where the vocoder stands in one sentence of a batch."""

    request: int
    sentence: int
    done: int = 0  # latents decoded so far
    size: int = 16  # latents in the next block
    tail: np.ndarray | None = None
    blocks: int = 0
    peak: float = 0.0


@dataclass
class SpeechRequest:
    """A validated request: everything `generate` needs, nothing it has to check again."""

    sentences: list[str]
    language: str
    voice: str | tuple[Path, ...]
    settings: dict = field(default_factory=dict)
    seed: int | None = None


class Synthesizer:
    """One loaded model. Not thread-safe: callers run one `generate` at a time (the server queues)."""

    sample_rate = 24000
    stream_chunk_codes = 16  # codes in a sentence's first block: small, so the first sound comes soon
    later_chunk_factor = 4  # later blocks are this many times longer: fewer decoder calls

    def __init__(self, model_dir: str | Path, device: str = "auto", latents_cache_dir: Path | None = None,
                 max_chars: int = MAX_CHARS, max_batch: int = 8, precision: str = "auto"):
        self.model_dir = check_model_folder(model_dir)
        self.card = _read_card(self.model_dir)
        frontend = self.card.get("text_frontend") or "default"
        frontend = frontend if isinstance(frontend, dict) else {"name": frontend}
        if frontend.get("name") not in KNOWN_FRONTENDS:
            raise UserError(
                f"{self.model_dir / 'model_card.json'} asks for text front end {frontend.get('name')!r}, which this version does not have",
                fix=f"update xtts-finetune, or set text_frontend to one of: {', '.join(KNOWN_FRONTENDS)}",
            )
        self.vocab_mode = frontend.get("vocab", "base")
        self.max_chars = max_chars
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU", fix="use --device cpu (or auto)")
        self.dtype = inference_dtype(precision, self.device)  # a bad choice fails before the model loads
        self.config, self.model = _load_model(self.model_dir, self.device)
        if self.vocab_mode != "base":  # the model's language is read through its front end, as in training
            from xtts_finetune.text.vocab import load_tokenizer

            self.model.tokenizer = load_tokenizer(self.model_dir / "vocab.json", self.card["language"], self.vocab_mode)
        self.max_batch = max_batch  # sentences decoded together
        self.decoder = GptDecoder(self.model.gpt, dtype=self.dtype)
        self.vocoder = BlockVocoder(self.model.hifigan_decoder, self.device, self.dtype)
        self.references = sorted((self.model_dir / "references").glob("*.wav"))
        self.speaker_references = reference_voices(self.model_dir, self.card)  # an export of several speakers
        manager = getattr(self.model, "speaker_manager", None)
        self.speakers: dict = dict(manager.speakers) if manager is not None else {}
        if not self.references and not self.speaker_references and not self.speakers:
            raise UserError(f"{self.model_dir} has no voice: no references/*.wav and no speakers in speakers_xtts.pth",
                            fix="add reference clips to references/, or pass your own clips")
        settings = {k: getattr(self.config, k) for k in ("gpt_cond_len", "gpt_cond_chunk_len", "max_ref_len", "sound_norm_refs")}
        self.cache = LatentsCache(latents_cache_dir or default_cache_dir(), model_fingerprint(self.model_dir), settings)
        self.stats = SynthesisStats()

    @property
    def name(self) -> str:
        return self.card.get("name") or self.model_dir.name

    @property
    def languages(self) -> list[str]:
        return [normalize_language(code) for code in self.config.languages]

    def voices(self) -> list[str]:
        """Reference voices first ("default" = all clips, then each clip alone; or each speaker of an export
        of several), then built-in speakers."""
        names = [DEFAULT_VOICE] if self.references else []
        if len(self.references) > 1:
            names += [clip.stem for clip in self.references if clip.stem != DEFAULT_VOICE]
        names += [name for name in self.speaker_references if name not in names]
        return names + [name for name in self.speakers if name not in names]

    def prepare(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, *,
                temperature: float = 0.75, top_k: int = 50, top_p: float = 0.85, repetition_penalty: float = 10.0,
                length_penalty: float = 1.0, speed: float = 1.0, seed: int | None = None) -> SpeechRequest:
        """Check a request and split its text; raises UserError for anything wrong with it."""
        language = self._check_language(language)
        text = (text or "").strip()
        if not text:
            raise UserError("the text to speak is empty", fix="give some text")
        if len(text) > self.max_chars:
            raise UserError(f"the text has {len(text)} characters; the limit is {self.max_chars}",
                            fix="split it into several requests")
        self._check_characters(text, language)
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
        sentences = self._split(text, language, self.model.tokenizer.char_limits.get(language, 250))
        if not sentences:
            raise UserError("the text to speak has nothing to say", fix="give some words")
        return SpeechRequest(sentences, language, self._check_voice(voice), settings, seed)

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
        batcher = _Batcher(self, max_batch or self.max_batch, stream, cancelled or (lambda i: False))
        for request in requests:
            batcher.add(request)
        yield from batcher.run(incoming)

    def speak(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, **settings) -> np.ndarray:
        """The whole text as one float32 array at 24 kHz (settings as in `prepare`)."""
        return np.concatenate(list(self.generate(self.prepare(text, language, voice, **settings), stream=False)))

    def stream(self, text: str, language: str | None = None, voice: str | list[Path] | None = None, **settings) -> Iterator[np.ndarray]:
        """Like `speak`, in chunks as they are decoded; checks the request before returning."""
        return self.generate(self.prepare(text, language, voice, **settings))

    @property
    def samples_per_code(self) -> float:
        """Output samples per GPT latent at speed 1 (the decoder stretches each latent by a fixed factor)."""
        return self.vocoder.samples_per_code

    # -- decoding: GPT rows in a batch, vocoder blocks per sentence -----------------------------------

    def _row(self, request: SpeechRequest, j: int, cond_latent) -> Row:
        sentence, settings = request.sentences[j], request.settings
        tokens = self.model.tokenizer.encode(sentence.strip().lower(), lang=request.language)
        seed = request.seed + j if request.seed is not None else int(torch.randint(2**62, ()))
        return Row(self.decoder.prefix(cond_latent, tokens), code_cap(sentence, self.decoder.model_cap),
                   temperature=settings.get("temperature", 0.75), top_k=settings.get("top_k", 50),
                   top_p=settings.get("top_p", 0.85), repetition_penalty=settings.get("repetition_penalty", 10.0),
                   seed=seed)

    def _finish_block(self, cursor: _Cursor, wav: np.ndarray, last: bool, gap, fade: int) -> np.ndarray:
        """Fades a block's outer edges, trims a sentence's trailing silence, puts the pause before it."""
        cursor.peak = max(cursor.peak, float(np.abs(wav).max(initial=0.0)))
        if last:
            wav = trim_trailing_silence(wav, cursor.peak, int(TRIM_KEEP_SECONDS * self.sample_rate))
        first, cursor.blocks = cursor.blocks == 0, cursor.blocks + 1
        wav = _fade(wav, fade, start=first, end=last)
        return np.concatenate([gap, wav]) if first and cursor.sentence else wav

    # -- checks and conditioning ------------------------------------------------------------------

    def _check_language(self, language: str | None) -> str:
        if not language:
            language = self.card.get("language") or (self.languages[0] if len(self.languages) == 1 else None)
            if not language:
                raise UserError("no language given and the model folder does not say one",
                                fix=f"pass a language, one of: {', '.join(self.languages)}")
        code = normalize_language(language)
        if tokenizer_language(code) not in self.config.languages:
            raise UserError(f"this model does not speak language {language!r}",
                            fix=f"use one of: {', '.join(self.languages)}")
        return code

    def _check_characters(self, text: str, language: str) -> None:
        from xtts_finetune.text.coverage import find_unknown_characters

        try:
            mode = self.vocab_mode if normalize_language(self.card.get("language", "")) == language else "base"
            unknown = find_unknown_characters([("input", text)], self.model_dir / "vocab.json", language, mode=mode)
        except ImportError as err:  # XTTS cleans zh, ja, ko with optional packages
            raise UserError(f"speaking {language} needs a package that is not installed: {err}",
                            fix=f"install it (e.g. pip install \"coqui-tts[{language}]\")") from err
        if unknown:
            listed = ", ".join(f"{u.char!r} ({u.codepoint})" for u in unknown)
            raise UserError(f"the model's vocab.json cannot encode these characters of the text: {listed}",
                            fix="remove or spell out those characters")

    def _split(self, text: str, language: str, limit: int) -> list[str]:
        """Sentences within the character limit, cut finer where cleaning grows them past the GPT's
        text-token limit (numbers are spelled out: 20 digits become 240 characters)."""
        from xtts_finetune.text.split import split_sentences

        pieces = []
        for piece in split_sentences(text, limit):
            if len(self.model.tokenizer.encode(piece.lower(), language)) < self.model.args.gpt_max_text_tokens:
                pieces.append(piece)
            elif limit > 8:
                pieces += self._split(piece, language, limit // 2)
            else:
                raise UserError(f"cannot cut {piece!r} short enough for the model", fix="spell out long numbers")
        return pieces

    def _check_voice(self, voice: str | list[Path] | None) -> str | tuple[Path, ...]:
        if voice is None:
            return self.voices()[0]
        if isinstance(voice, str):
            if voice not in self.voices():
                raise UserError(f"unknown voice {voice!r}", fix=f"use one of: {', '.join(self.voices())}, or give reference clips")
            return voice
        clips = tuple(Path(clip).expanduser().resolve() for clip in voice)  # absolute: never read as an FFmpeg protocol
        missing = [str(clip) for clip in clips if not clip.is_file()]
        if not clips or missing:
            raise UserError(f"reference clips not found: {', '.join(missing) or '(none given)'}",
                            fix="give paths to existing audio files")
        return clips

    def voice_latents(self, voice: str | tuple[Path, ...]):
        """A checked voice as (GPT conditioning latents, speaker embedding), cached; a reference clip that
        cannot be used fails here."""
        if isinstance(voice, tuple):
            clips = list(voice)
        elif voice == DEFAULT_VOICE and self.references:
            clips = self.references
        elif voice in {c.stem for c in self.references}:
            clips = [c for c in self.references if c.stem == voice]
        elif voice in self.speaker_references:
            clips = self.speaker_references[voice]
        else:  # a built-in speaker: its latents ship with the model
            return self.speakers[voice]["gpt_cond_latent"], self.speakers[voice]["speaker_embedding"]
        latents, source = self.cache.get(clips, self._compute_latents)
        if source == "computed":
            self.stats.latents_cache_misses += 1
        else:
            self.stats.latents_cache_hits += 1
            self.stats.latents_disk_loads += source == "disk"
        return latents

    def _compute_latents(self, clips: list[Path]):
        for clip in clips:
            try:
                import soundfile

                soundfile.info(str(clip))
            except Exception as err:
                raise UserError(f"cannot read reference clip {clip}: {err}", fix="give a wav/flac/ogg file") from err
        try:
            return self.model.get_conditioning_latents(
                audio_path=[str(c) for c in clips], max_ref_length=self.config.max_ref_len,
                gpt_cond_len=self.config.gpt_cond_len, gpt_cond_chunk_len=self.config.gpt_cond_chunk_len,
                sound_norm_refs=self.config.sound_norm_refs,
            )
        except RuntimeError as err:
            if "too short" not in str(err):
                raise
            raise UserError(f"reference clips too short: {', '.join(map(str, clips))}",
                            fix="use clips of 3-12 s of clean speech") from err


class _Batcher:
    """Sentences of many requests through one continuous GPT batch, and each request's audio in order:
    its current sentence is vocoded in blocks as its latents arrive (a small first block, so the first
    sound comes soon); a sentence that finishes before its turn keeps its latents until then."""

    def __init__(self, synth: "Synthesizer", max_batch: int, stream: bool, cancelled: Callable[[int], bool]):
        self.synth, self.max_batch, self.stream, self.cancelled = synth, max_batch, stream, cancelled
        self.requests: list[SpeechRequest] = []
        self.voices: list = []
        self.waiting: list[tuple[int, int]] = []  # (sentence, request): first sentences first
        self.order: dict[int, deque] = {}  # request -> its sentences' keys not yet fully spoken
        self.cursors: dict[tuple[int, int], _Cursor] = {}
        self.kept: dict[tuple[int, int], torch.Tensor] = {}  # latents of sentences finished before their turn
        self.live = 0
        self.gap = np.zeros(int(GAP_SECONDS * synth.sample_rate), dtype=np.float32)
        self.fade = int(FADE_SECONDS * synth.sample_rate)

    def add(self, request: SpeechRequest) -> None:
        i = len(self.requests)
        self.requests.append(request)
        self.voices.append(self.synth.voice_latents(request.voice))
        self.order[i] = deque((i, j) for j in range(len(request.sentences)))
        for j in range(len(request.sentences)):
            heapq.heappush(self.waiting, (j, i))

    def rows(self) -> list[Row]:
        """Rows for the free places in the batch."""
        rows = []
        while self.waiting and self.live < self.max_batch:
            j, i = heapq.heappop(self.waiting)
            if self.cancelled(i):
                continue
            self.cursors[i, j] = _Cursor(i, j, size=self.synth.stream_chunk_codes)
            rows.append(self.synth._row(self.requests[i], j, self.voices[i][0]))
            rows[-1].key, self.live = (i, j), self.live + 1
        return rows

    def run(self, incoming) -> Iterator[tuple[int, np.ndarray | None]]:
        def more():
            for request in incoming() if incoming else []:
                self.add(request)
            return self.rows()

        for progress in self.synth.decoder.generate(self.rows(), more, drop=lambda key: self.cancelled(key[0])):
            self.live -= sum(progress.finished.values())
            for i in [i for i, keys in self.order.items() if keys and self.cancelled(i)]:
                self.order[i].clear()  # its rows left the batch at this report; its waiting sentences never join
                yield i, None
            # The vocoder runs here, one request after another: those with the fewest sentences left go
            # first, so a short request that joined is not kept waiting behind a long one's sentences.
            for i in sorted((i for i, keys in self.order.items() if keys), key=lambda i: len(self.order[i])):
                yield from self._speak(i, progress)
            for key, finished in progress.finished.items():
                if finished and key in self.order[key[0]]:  # not its turn yet
                    self.kept[key] = progress.latents[key].clone()

    def _speak(self, i: int, progress) -> Iterator[tuple[int, np.ndarray | None]]:
        """Request i's audio that is ready: blocks of its current sentence, and the next ones if done."""
        synth, keys, request = self.synth, self.order[i], self.requests[i]
        stretch, embedding = 1.0 / request.settings.get("speed", 1.0), self.voices[i][1]
        while keys and not self.cancelled(i):  # a cancelled request ends at the next report
            key, c = keys[0], self.cursors.get(keys[0])
            if key in self.kept:
                latents, last = self.kept.pop(key), True
            elif key in progress.finished:
                latents, last = progress.latents[key], progress.finished[key]
            else:
                return  # not in the batch yet
            n = len(latents)
            while self.stream and n > c.done + c.size + synth.vocoder.margin(stretch):  # ">": the last block is never empty
                wav, c.tail = synth.vocoder.block(latents, c.done, c.done + c.size, c.tail, embedding, stretch)
                c.done, c.size = c.done + c.size, synth.stream_chunk_codes * synth.later_chunk_factor
                yield i, synth._finish_block(c, wav, False, self.gap, self.fade)
            if not last:
                return
            wav = synth.vocoder.block(latents, c.done, n, c.tail, embedding, stretch, last=True)[0]
            yield i, synth._finish_block(c, wav, True, self.gap, self.fade)
            synth.stats.sentences, synth.stats.codes = synth.stats.sentences + 1, synth.stats.codes + n
            keys.popleft()
            del self.cursors[key]
        if not keys:
            yield i, None


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


def inference_dtype(precision: str, device: str) -> torch.dtype:
    """The dtype the GPT and vocoder run in: `auto` is fp16 on a GPU and fp32 on a CPU, the only one a CPU
    gets. Measured on a CPU with native bf16 (AMX): the vocoder's bf16 convolutions are 1.7x faster on an
    input length seen before, but oneDNN builds new kernels for each new length (~1 s each, every sentence
    has its own), and the GPT's one-row steps gain nothing; fp16 is emulated."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}", fix=f"use one of: {', '.join(PRECISIONS)}")
    if not device.startswith("cuda"):
        if precision not in ("auto", "fp32"):
            raise UserError(f"{precision} is slower than fp32 on a CPU (new kernels for every sentence's length)",
                            fix="use --precision auto (fp32 on a CPU)")
        return torch.float32
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU does not compute in bf16 natively (it would be slow)", fix="use --precision auto (fp16)")
    return {"auto": torch.float16, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


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


def trim_trailing_silence(wav: np.ndarray, peak: float, keep: int) -> np.ndarray:
    """`wav` up to `keep` samples after its last one above TRIM_LEVEL of `peak` (the sentence's loudest)."""
    loud = np.flatnonzero(np.abs(wav) > TRIM_LEVEL * peak)
    return wav[: min(len(wav), (loud[-1] + 1 if len(loud) else 0) + keep)]


def _fade(wav: np.ndarray, samples: int, start: bool, end: bool) -> np.ndarray:
    n = min(samples, len(wav) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        if start:
            wav[:n] *= ramp
        if end:
            wav[-n:] *= ramp[::-1]
    return wav
