"""The data path: each clip decoded once, its DVAE codes computed once ever, batches of similar lengths.

coqui's recipe decodes every clip and runs the 60M-parameter DVAE on it at every step. The codes depend
only on the clip and the DVAE/mel-stats files, so they are cached on disk per clip under those hashes: a
later epoch or run does no DVAE work.

The conditioning mel is deliberately not cached. Upstream takes the mel of a random 3-6 s crop (any
sample offset), zero-padded to 6 s, with a centred STFT (2048-sample window, reflect padding at the
crop's edges). Frames cut from a whole-clip mel differ from that at both edges (the window sees the
real neighbouring audio instead of the reflection, and the tail sees audio instead of zeros), and
offsets off the 256-sample hop grid have no frames at all; an exact cache would have to recompute the
edge frames and restrict crops to the hop grid, changing upstream's crop distribution. It would save
little: the mel of two 6 s crops is ~2 % of a CPU step. So it is computed per batch from the in-memory
audio, as upstream does, exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from xtts_finetune.errors import UserError
from xtts_finetune.train.settings import SAMPLE_RATE
from xtts_finetune.utils import app_home, atomic_torch_save, file_sha256

CACHE_VERSION = 1


@dataclass
class TrainClip:
    """One training example in memory: tokens, audio and its DVAE codes."""

    audio_file: str
    tokens: torch.Tensor  # int32 (t,)
    wav: torch.Tensor  # float32 (1, samples) at the model's sample rate
    codes: torch.Tensor  # int64 (n,) DVAE codes of the whole clip

    @property
    def samples(self) -> int:
        return self.wav.shape[-1]


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


# The release's DiscreteVAE as coqui's GPTTrainer builds it; only its number of codes follows the model.
DVAE_SHAPE = {"channels": 80, "normalization": None, "positional_dims": 1, "codebook_dim": 512, "hidden_dim": 512,
              "num_resnet_blocks": 3, "kernel_size": 3, "num_layers": 2, "use_transposed_convs": False}


def dvae_codes(model_args) -> int:
    """How many codes a model's DVAE has: its audio tokens less start and stop (GPTTrainer's rule; 1024 in v2)."""
    return model_args.gpt_num_audio_tokens - 2


def new_dvae(codes: int):
    from TTS.tts.layers.xtts.dvae import DiscreteVAE

    return DiscreteVAE(num_tokens=codes, **DVAE_SHAPE)


def build_dvae(checkpoint: Path, codes: int):
    """The release's DiscreteVAE of `codes` codes (see `dvae_codes`), weights from `checkpoint`, frozen."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    found = state.get("codebook.embed")
    if found is not None and found.shape[-1] != codes:
        raise UserError(
            f"{checkpoint} is a DVAE of {found.shape[-1]} codes; the model's config.json has "
            f"{codes + 2} audio tokens, for a DVAE of {codes} codes",
            fix="use the dvae.pth of the XTTS release that model.pth and config.json come from",
        )
    dvae = new_dvae(codes)
    dvae.load_state_dict(state, strict=False)  # as GPTTrainer: only the encoder and codebook are used
    return dvae.eval().requires_grad_(False)


def dvae_mel(mel_stats: Path, sample_rate: int):
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    return TorchMelSpectrogram(mel_norm_file=str(mel_stats), sampling_rate=sample_rate)


def style_mel(mel_stats: Path, sample_rate: int, perceiver: bool = True):
    """The conditioning mel of XTTS v2 (perceiver) or v1, as coqui's GPTTrainer builds it."""
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    window = (2048, 256, 1024) if perceiver else (4096, 1024, 4096)
    return TorchMelSpectrogram(
        filter_length=window[0], hop_length=window[1], win_length=window[2], normalize=False,
        sampling_rate=sample_rate, mel_fmin=0, mel_fmax=8000, n_mel_channels=80, mel_norm_file=str(mel_stats),
    )


class CodeCache:
    """DVAE codes per clip on disk, keyed by the clip's bytes and the DVAE and mel-stats files' hashes."""

    def __init__(self, dvae_file: Path, mel_stats: Path, sample_rate: int, root: Path | None = None,
                 device: str = "cpu", *, codes: int):
        self.dvae_file, self.mel_stats, self.sample_rate, self.device = dvae_file, mel_stats, sample_rate, device
        self.num_codes = codes  # the model's DVAE size (`dvae_codes`), never assumed
        self.root = Path(root) if root else app_home() / "train-cache"
        self.model_hash = hashlib.sha256(
            f"{CACHE_VERSION}:{sample_rate}:{file_sha256(dvae_file)}:{file_sha256(mel_stats)}".encode()
        ).hexdigest()[:16]
        self._dvae = self._mel = None
        self.stats = CacheStats()

    def path(self, clip_file: Path) -> Path:
        return self.root / self.model_hash / f"{file_sha256(clip_file)[:32]}.pt"

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """The DVAE codes of one whole, unpadded clip."""
        if self._dvae is None:
            self._dvae = build_dvae(self.dvae_file, self.num_codes).to(self.device)
            self._mel = dvae_mel(self.mel_stats, self.sample_rate).to(self.device)
        return self._dvae.get_codebook_indices(self._mel(wav.unsqueeze(0).to(self.device)))[0].cpu()

    @property
    def dvae_loaded(self) -> bool:
        return self._dvae is not None

    def release(self) -> None:
        """Drop the DVAE and its mel: training needs only the codes, and the DVAE's 60M parameters would
        otherwise hold GPU memory for the whole run. A clip encoded later loads it again."""
        self._dvae = self._mel = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def codes(self, clip_file: Path, wav: torch.Tensor) -> torch.Tensor:
        path = self.path(clip_file)
        if path.is_file():
            try:
                codes = torch.load(path, map_location="cpu", weights_only=True)
                self.stats.hits += 1
                return codes
            except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
                path.unlink(missing_ok=True)
        codes = self.encode(wav)
        atomic_torch_save(codes, path)
        self.stats.misses += 1
        return codes


def load_clips(samples: list[tuple[Path, str]], tokenize, cache: CodeCache) -> list[TrainClip]:
    """Decode each (audio file, text) once and attach its cached codes."""
    from TTS.tts.models.xtts import load_audio

    clips = []
    for audio_file, text in samples:
        wav = load_audio(str(audio_file), cache.sample_rate)
        tokens = torch.IntTensor(tokenize(text))
        clips.append(TrainClip(str(audio_file), tokens, wav, cache.codes(Path(audio_file), wav)))
    return clips


def worst_case_clip(clips: list[TrainClip]) -> TrainClip:
    """The dataset's longest text with its longest audio, as one clip: a batch of it pads as long as any batch
    the run can make (a batch pads each row to its longest text and its longest audio), so it sizes a probe."""
    text = max(clips, key=lambda c: len(c.tokens))
    audio = max(clips, key=lambda c: (len(c.codes), c.samples))
    return TrainClip(f"{text.audio_file} (text) + {audio.audio_file} (audio)", text.tokens, audio.wav, audio.codes)


@dataclass
class CondCrop:
    """Conditioning crop lengths in samples (coqui's min/max_conditioning_length) and the masking choice."""

    min_samples: int = 66150
    max_samples: int = 132300
    masking: bool = True  # XTTS v2: the crop is taken from the target clip and masked in attention


def crop_conditioning(wav: torch.Tensor, crop: CondCrop, rng: random.Random | None) -> tuple[torch.Tensor, list[int]]:
    """A crop of `wav` padded to `max_samples`: random for training (`rng`), fixed for eval (rng=None).

    The same rule as coqui's get_prompt_slice: a clip shorter than the drawn length gives its first half.
    """
    n = wav.shape[-1]
    length = (crop.min_samples + crop.max_samples) // 2 if rng is None else rng.randint(crop.min_samples, crop.max_samples)
    if n < length:
        length = n // 2
    start = 0 if rng is None else rng.randint(0, n - length)
    piece = F.pad(wav[:, start : start + length], (0, crop.max_samples - length))
    return piece, [start, start + length]


def collate(clips: list[TrainClip], crop: CondCrop, rng: random.Random | None, mel, device="cpu") -> dict:
    """A batch in the form coqui's GPT.forward takes, conditioning mels computed here (on `device`)."""
    conds, spans = zip(*(crop_conditioning(c.wav, crop, rng) for c in clips))
    with torch.no_grad():
        cond_mels = mel(torch.stack(conds).to(device)).unsqueeze(1)  # (b, 1, 80, frames)
    spans = torch.tensor(spans)
    text = torch.zeros(len(clips), max(len(c.tokens) for c in clips), dtype=torch.int32)
    codes = torch.zeros(len(clips), max(len(c.codes) for c in clips), dtype=torch.long)
    for i, clip in enumerate(clips):
        text[i, : len(clip.tokens)] = clip.tokens
        codes[i, : len(clip.codes)] = clip.codes
    return {
        "text_inputs": text,
        "text_lengths": torch.tensor([len(c.tokens) for c in clips]),
        "audio_codes": codes,
        "wav_lengths": torch.tensor([c.samples for c in clips]),
        "cond_mels": cond_mels,
        # eval never masks (coqui's eval_step); training masks the crop (v2) or passes its length (v1)
        "cond_idxs": spans if crop.masking and rng is not None else None,
        "cond_lens": None if crop.masking else spans[:, 1] - spans[:, 0],
    }


def padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    """Share of the audio in padded batches that is padding."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / max(padded, 1)


@dataclass
class BucketSampler:
    """Batches of similar-length clips in a seeded order: an epoch's batches depend on (seed, epoch) only.

    Clips are shuffled, cut into windows of `bucket` batches, sorted by length within a window, batched,
    and the batches shuffled. So a resumed run rebuilds the same epoch and skips the batches it has done;
    a distributed run can give each rank every n-th batch of the same list.
    """

    lengths: list[int]
    batch_size: int
    seed: int = 1
    bucket: int = 8  # batches per sorting window: order is random across windows, lengths close within one

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def epoch(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        window = self.batch_size * self.bucket
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def iter_from(self, epoch: int, position: int = 0) -> Iterator[tuple[int, list[int]]]:
        """(index in the epoch, batch) from `position` on: resume skips what was done, no data is read."""
        batches = self.epoch(epoch)
        yield from ((i, batches[i]) for i in range(position, len(batches)))


# -- data-loader workers ------------------------------------------------------------------------
# Why Japanese training hung with workers: coqui's tokenizer keeps cutlet's fugashi (MeCab) Tagger once it
# has read Japanese, a C object that cannot be pickled ("self.c_tagger cannot be converted to a Python
# object for pickling", coqui-ai/TTS#4031). A DataLoader that starts its workers by spawn (the default on
# Windows and macOS) pickles its dataset for them, so a dataset holding that tokenizer fails in the parent
# while the workers it already started wait for a dataset that never comes. Under fork the tagger is copied
# and works (checked), but forking a process with threads (the UI runs training in one) is not safe either.
# So workers are spawned everywhere, and what they are sent holds no tokenizer: the vocabulary, the language
# and the vocabulary mode, from which each worker builds its own tokenizer, front end and tagger on first use.


@dataclass
class TextReader:
    """Text -> token ids through the run's tokenizer, built lazily in the process that reads (picklable)."""

    vocab: str  # vocab.json path, or the tokenizer JSON itself (script mode)
    language: str
    mode: str = "base"

    def __post_init__(self):
        self._tokenizer = None

    def __getstate__(self):
        return self.__dict__ | {"_tokenizer": None}  # each process builds its own

    def __call__(self, text: str) -> torch.Tensor:
        if self._tokenizer is None:
            from xtts_finetune.text.vocab import load_tokenizer

            self._tokenizer = load_tokenizer(self.vocab, self.language, self.mode)
        return torch.IntTensor(self._tokenizer.encode(text, self.language))


@dataclass(frozen=True)
class Round:
    """One pass of the training loop: the batch this process trains, and how far the epoch moves on."""

    batch: list[int]  # clip indices
    index: int  # the batch's global index in the run: it seeds the batch's crops and dropout
    size: int = 1  # batches the round consumes, over all ranks
    real: bool = True  # False: this rank is past the epoch's end and adds zero gradients
    last: bool = False  # the epoch's last round


def rounds(batches: list[list[int]], position: int, step: int, rank: int = 0, ranks: int = 1) -> Iterator[Round]:
    """The rounds left in an epoch from batch `position` on (`step`: batches done in the run before it).

    One process trains every batch in turn. N ranks take N batches a round, rank r the one at position + r;
    in a short last round a rank with no batch left repeats the round's last one with zero weight, so every
    rank still takes part in the gradient all-reduce and the optimizer step, and the replicas stay equal.

    torch.distributed.algorithms.Join is not used for those ranks: a joined rank leaves the loop, so it
    would miss the epoch's last optimizer step (AdamW is not a Joinable) and its moments would drift from
    the others', and it would not answer the loss and stop all-reduces each round makes.
    """
    while position < len(batches):
        size = min(ranks, len(batches) - position)
        real = rank < size
        yield Round(batches[position + (rank if real else size - 1)], step + (rank if real else 0), size, real,
                    last=position + size == len(batches))
        position, step = position + size, step + size


class BatchMaker(torch.utils.data.Dataset):
    """A training batch from (clip indices, global batch index), made in a worker: tokens through the front
    end, the seeded conditioning crop and its mel (on the CPU), collate. Audio and codes are copied into two
    flat tensors, so sending them to a spawned worker shares two blocks of memory, not one per clip."""

    def __init__(self, clips: list[TrainClip], texts: list[str], reader: TextReader, crop: CondCrop,
                 mel_stats: Path, perceiver: bool, seed: int, sample_rate: int = SAMPLE_RATE):
        self.texts, self.reader, self.crop, self.seed = texts, reader, crop, seed
        self.mel_args, self._mel = (str(mel_stats), sample_rate, perceiver), None
        self.wavs, self.wav_ends = _flat([c.wav[0] for c in clips])
        self.codes, self.code_ends = _flat([c.codes for c in clips])
        self.files = [c.audio_file for c in clips]

    def __getstate__(self):
        return self.__dict__ | {"_mel": None}

    def clip(self, i: int) -> TrainClip:
        wav = self.wavs[_start(self.wav_ends, i) : self.wav_ends[i]]
        codes = self.codes[_start(self.code_ends, i) : self.code_ends[i]]
        return TrainClip(self.files[i], self.reader(self.texts[i]), wav.unsqueeze(0), codes)

    def __getitem__(self, item: tuple[list[int], int]) -> tuple[int, dict]:
        picked, at = item
        if self._mel is None:
            self._mel = style_mel(Path(self.mel_args[0]), self.mel_args[1], self.mel_args[2])
        clips = [self.clip(i) for i in picked]
        return at, collate(clips, self.crop, random.Random(f"{self.seed}:{at}"), self._mel)


def _flat(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    ends, total = [], 0
    for t in tensors:
        total += len(t)
        ends.append(total)
    return torch.cat(tensors), ends


def _start(ends: list[int], i: int) -> int:
    return ends[i - 1] if i else 0


class BatchFeed:
    """Batches made by `workers` spawned processes, kept alive across epochs, in the order they are trained."""

    def __init__(self, maker: BatchMaker, workers: int, pin_memory: bool = False):
        self.items: list = []
        self.loader = torch.utils.data.DataLoader(
            maker, sampler=self, batch_size=None, num_workers=workers, multiprocessing_context="spawn",
            persistent_workers=True, pin_memory=pin_memory)

    @classmethod
    def start(cls, config, clips: list[TrainClip], vocab: str, crop: CondCrop, mel_stats: Path,
              perceiver: bool) -> "BatchFeed | None":
        """The feed of a run (`config`: its RecipeConfig) with `--workers N`; None without workers."""
        settings = config.train_settings
        if not settings.workers:
            return None
        reader = TextReader(vocab, config.language, config.vocab_mode)
        maker = BatchMaker(clips, [text for _, text in config.train_clips], reader, crop, mel_stats, perceiver,
                           settings.seed)
        return cls(maker, settings.workers, pin_memory=config.device == "cuda")

    def __iter__(self):  # the sampler: the items of the current epoch
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def close(self) -> None:
        """Ends the worker processes now (a long-lived app such as the web UI would otherwise keep them):
        dropping the loader's last reference shuts its persistent workers down."""
        self.loader, self.items = None, []

    def make(self, todo: list[Round]):
        """(global batch index, batch) of each round in `todo`, made ahead by the workers in that order."""
        self.items = [(r.batch, r.index) for r in todo]
        return iter(self.loader)
