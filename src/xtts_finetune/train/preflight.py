"""Pre-flight validation: every reason coqui's XTTSDataset would drop a sample, checked before training.

XTTSDataset silently skips clips that fail to load, are too long or hold [UNK] tokens (and loops forever
when all fail). So a run starts only when every clip would be used, and otherwise the user gets one
list naming each clip and its fix.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.languages import normalize_language, tokenizer_language
from xtts_finetune.text.coverage import find_unknown_characters
from xtts_finetune.train.settings import MIN_AUDIO_SECONDS, RECIPE_MAX_AUDIO_SECONDS, SAMPLE_RATE, TrainSettings

SAMPLES_PER_CODE = 1024  # the DVAE's mel hop (256) x its 4x downsampling: one audio code per 1024 samples

SPLITS = {"train": "metadata_train.csv", "eval": "metadata_eval.csv"}


@dataclass
class Problem:
    clip: str | None  # audio_file as written in the CSV, or None for dataset-wide problems
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.clip + ': ' if self.clip else ''}{self.message} (fix: {self.fix})"


@dataclass
class Clip:
    audio_file: str
    text: str
    speaker: str
    split: str
    seconds: float = 0.0


@dataclass
class DatasetInfo:
    """What training needs to know about WORKSPACE/dataset, summarised for the run and the model card."""

    path: str
    language: str
    speaker: str
    clips: list[Clip] = field(default_factory=list)
    max_audio_seconds: float = RECIPE_MAX_AUDIO_SECONDS
    vocab_mode: str = "base"  # base | script | phonemes (text/frontends.py)
    frontend: dict = field(default_factory=dict)  # name and version of the language's text front end
    vocab_json: str = field(default="", repr=False)  # the tokenizer trained with (extended in script mode)

    @property
    def train(self) -> list[Clip]:
        return [c for c in self.clips if c.split == "train"]

    def summary(self) -> dict:
        seconds = [c.seconds for c in self.clips]
        return {
            "language": self.language,
            "speaker": self.speaker,
            "train_clips": len(self.train),
            "eval_clips": len(self.clips) - len(self.train),
            "total_seconds": round(sum(seconds), 2),
            "shortest_seconds": round(min(seconds, default=0), 2),
            "longest_seconds": round(max(seconds, default=0), 2),
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "clips": None, "vocab_json": None, "summary": self.summary()}


def _read_split(dataset: Path, split: str, problems: list[Problem]) -> list[Clip]:
    path = dataset / SPLITS[split]
    if not path.is_file():
        problems.append(Problem(None, f"{path} is missing", "build the dataset first: xtts-finetune dataset ..."))
        return []
    with open(path, newline="", encoding="utf-8") as f:  # the same reader coqui's "coqui" formatter uses
        rows = list(csv.DictReader(f, delimiter="|"))
    if rows and not {"audio_file", "text"} <= set(rows[0]):
        problems.append(
            Problem(None, f"{path} has no audio_file|text header", "write the header audio_file|text|speaker_name")
        )
        return []
    if not rows:
        problems.append(Problem(None, f"{path} has no clips", f"add clips to the {split} split (rebuild the dataset)"))
    return [Clip(r["audio_file"], r.get("text") or "", r.get("speaker_name") or "speaker", split) for r in rows]


def dataset_clips(dataset: Path) -> list[Clip]:
    """The clips both CSVs list (problems ignored: callers that need them run `preflight`)."""
    return _read_split(dataset, "train", []) + _read_split(dataset, "eval", [])


def inspect_dataset(
    workspace: str | Path, base_dir: str | Path, settings: TrainSettings, vocab_json: str | None = None
) -> tuple[DatasetInfo, list[Problem]]:
    """Read WORKSPACE/dataset and list every problem that would make training drop or crash on a clip.

    Also decides the vocabulary: `settings.vocab` (auto: base for XTTS's languages, script for others), the
    base vocab.json extended with the dataset's script in script mode (or `vocab_json`, a run's, on resume).
    """
    dataset = Path(workspace) / "dataset"
    if not dataset.is_dir():
        raise UserError(f"{dataset} does not exist", fix="build the dataset first: xtts-finetune dataset ...")
    problems: list[Problem] = []
    lang_file = dataset / "lang.txt"
    language = normalize_language(lang_file.read_text(encoding="utf-8").strip()) if lang_file.is_file() else ""
    if not language:
        problems.append(
            Problem(None, f"{lang_file} is missing or empty", "write the dataset's language code (e.g. en) into it")
        )
    clips = _read_split(dataset, "train", problems) + _read_split(dataset, "eval", problems)
    info = DatasetInfo(str(dataset), language, clips[0].speaker if clips else "speaker", clips)

    tokenizer = None
    if language:
        tokenizer = _choose_vocab(info, Path(base_dir), settings, vocab_json, problems)
        language = info.language if tokenizer else ""
    limits = model_limits(Path(base_dir))
    _check_clips(info, dataset, tokenizer, settings, problems, limits[0])
    if language:
        _check_characters(info, problems)
    info.max_audio_seconds = _check_durations(clips, settings, problems, limits[1])
    return info, problems


def model_limits(base_dir: Path) -> tuple[int, float]:
    """The longest text (tokens) and audio (seconds) the base GPT has positions for (402 and ~28 s in the
    release): past them training would fail on an index, so they are checked here, with their fix."""
    from xtts_finetune.train.model import base_config

    args = base_config(base_dir).model_args
    return args.gpt_max_text_tokens, (args.gpt_max_audio_tokens - 1) * SAMPLES_PER_CODE / SAMPLE_RATE


def _check_clips(info: DatasetInfo, dataset: Path, tokenizer, settings: TrainSettings, problems: list[Problem],
                 model_max_tokens: int):
    """Each clip readable, long enough, with a transcript that fits max_text_length and the model; sets `clip.seconds`."""
    import soundfile as sf

    for clip in info.clips:
        try:
            data, rate = sf.read(dataset / clip.audio_file, dtype="float32", always_2d=True)
            clip.seconds = len(data) / rate
        except Exception as err:  # noqa: BLE001 - any decode failure is this clip's problem
            problems.append(Problem(clip.audio_file, f"cannot be read ({type(err).__name__}: {err})",
                                    "re-export it as WAV or remove its line from the CSV"))
            continue
        if clip.seconds < MIN_AUDIO_SECONDS:
            problems.append(Problem(clip.audio_file, f"is {clip.seconds:.2f} s, shorter than {MIN_AUDIO_SECONDS} s",
                                    "remove it or merge it with a neighbouring clip"))
        if not clip.text.strip():
            problems.append(Problem(clip.audio_file, "has an empty transcript", "write its text or remove its line"))
        elif tokenizer is not None:
            tokens = tokenizer.encode(clip.text, tokenizer_language(info.language))
            if len(tokens) > model_max_tokens:
                problems.append(Problem(clip.audio_file, f"text is {len(tokens)} tokens, more than the model takes "
                                        f"({model_max_tokens}: gpt_max_text_tokens of the base's config.json)",
                                        "split the clip into shorter ones"))
            elif len(tokens) > settings.max_text_length:
                problems.append(Problem(clip.audio_file,
                                        f"text is {len(tokens)} tokens, over max_text_length {settings.max_text_length}",
                                        "split the clip, or raise --max-text-length"))


def _check_characters(info: DatasetInfo, problems: list[Problem]) -> None:
    """One problem per clip holding characters the run's vocabulary would turn into [UNK]."""
    unknown_by_clip: dict[str, list[str]] = {}
    for unknown in find_unknown_characters(
        ((c.audio_file, c.text) for c in info.clips), info.vocab_json, info.language, max_examples=10**6,
        mode=info.vocab_mode,
    ):
        for clip in unknown.examples:
            unknown_by_clip.setdefault(clip, []).append(f"{unknown.char!r} ({unknown.codepoint})")
    for clip, chars in unknown_by_clip.items():
        problems.append(Problem(clip, f"contains {', '.join(chars)}, which the base vocabulary cannot encode ([UNK])",
                                "rewrite the transcript without them (spell out or transliterate) or remove the clip"))


def _check_durations(clips: list[Clip], settings: TrainSettings, problems: list[Problem], model_seconds: float) -> float:
    """The run's audio length limit (the user's, or the longest clip within the recipe's); longer clips are problems,
    and so is a limit past what the model has positions for."""
    if settings.max_audio_seconds is not None and settings.max_audio_seconds > model_seconds:
        problems.append(Problem(None, f"--max-audio-seconds {settings.max_audio_seconds:g} is longer than the model takes "
                                f"({model_seconds:.1f} s: gpt_max_audio_tokens of the base's config.json)",
                                f"use --max-audio-seconds {model_seconds:.1f} or less, and split longer clips"))
    longest = max((c.seconds for c in clips), default=0.0)
    limit = (
        settings.max_audio_seconds
        if settings.max_audio_seconds is not None
        else max(min(longest, RECIPE_MAX_AUDIO_SECONDS), MIN_AUDIO_SECONDS)
    )
    for clip in clips:
        if clip.seconds > limit:
            how = (
                "raise --max-audio-seconds"
                if settings.max_audio_seconds is not None
                else f"pass --max-audio-seconds {clip.seconds:.1f} (more GPU memory)"
            )
            problems.append(Problem(clip.audio_file, f"is {clip.seconds:.1f} s, longer than the {limit:.1f} s limit",
                                    f"split it into shorter clips, or {how}"))
    return limit


def _choose_vocab(info: DatasetInfo, base_dir: Path, settings: TrainSettings, vocab_json: str | None,
                  problems: list[Problem]):
    """The run's tokenizer (None, with a problem, when the language cannot be trained this way)."""
    from xtts_finetune.text.frontends import check_vocab_mode, frontend_for
    from xtts_finetune.text.vocab import load_tokenizer, vocab_for_mode

    try:
        info.vocab_mode = check_vocab_mode(settings.vocab, info.language)
    except UserError as err:
        problems.append(Problem(None, str(err).splitlines()[0], err.fix or ""))
        return None
    if settings.lora_rank and info.vocab_mode == "script":  # LoRA freezes the embedding: new tokens would never learn
        problems.append(Problem(None, f"LoRA cannot train the new tokens that --vocab script adds for {info.language!r}",
                                "train without --lora, or with --vocab phonemes (the base vocabulary)"))
        return None
    info.frontend = frontend_for(info.language).record()
    base_json = (base_dir / "vocab.json").read_text(encoding="utf-8")
    if vocab_json:
        info.vocab_json = vocab_json
    else:
        texts = [c.text for c in info.clips]
        info.vocab_json = vocab_for_mode(base_json, texts, info.language, info.vocab_mode, settings.new_tokens)
    tokenizer = load_tokenizer(info.vocab_json, info.language, info.vocab_mode)
    if info.vocab_mode == "base" and f"[{tokenizer_language(info.language)}]" not in tokenizer.tokenizer.get_vocab():
        problems.append(Problem(None, f"the base model's {base_dir / 'vocab.json'} has no token for language "
                                f"{info.language!r}", "train with --vocab script, or pick a base model that speaks it"))
        return None
    return tokenizer


def preflight(workspace: str | Path, base_dir: str | Path, settings: TrainSettings) -> list[Problem]:
    """Every problem that stops a run from using all of WORKSPACE/dataset; empty when training may start."""
    return inspect_dataset(workspace, base_dir, settings)[1]


def problems_error(problems: list[Problem], limit: int = 20) -> UserError:
    lines = [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return UserError(
        f"the dataset is not ready for training ({len(problems)} problem(s)):\n" + "\n".join(lines),
        fix="fix the clips listed above, then run training again",
    )
