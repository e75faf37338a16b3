"""Score spoken audio: what Whisper hears against the text, how close the voice is to the speaker's real
clips, how long it takes and whether sound trails on after the last word.

`Voice` is what the dataset tells an evaluation (language, reference and held-out clips, its pace);
`Scorer` holds the loaded Whisper and speaker models and turns audio into `Output`s.
"""

from __future__ import annotations

import collections

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate import metrics
from xtts_finetune.evaluate.speaker import SAMPLE_RATE, load_speaker_encoder, resample

DEFAULT_WHISPER = "large-v3"  # what `dataset create` uses unless told otherwise
MAX_HELD_OUT = 8


@dataclass
class Output:
    """One sentence spoken (or one real clip) and its scores."""

    text: str
    transcript: str
    cer: float
    wer: float
    similarity: float
    seconds: float
    pace: float  # seconds per character over the dataset's own; 1.0 = the speaker's pace
    trailing_seconds: float  # sound after the last recognised word
    babble: bool
    audio: str | None = None  # relative to the evaluation folder


@dataclass
class ModelScore:
    """Averages over a model's outputs: the row of the table."""

    label: str
    kind: str  # fine-tuned | checkpoint | base | real
    path: str
    cer: float
    wer: float
    similarity: float
    pace: float
    babble_share: float
    step: int | None = None
    outputs: list[Output] = field(default_factory=list)

    @classmethod
    def of(cls, label: str, kind: str, path, outputs: list[Output], step: int | None = None) -> "ModelScore":
        def mean(name):
            return round(float(np.mean([getattr(o, name) for o in outputs])), 4) if outputs else float("nan")

        return cls(label, kind, str(path), mean("cer"), mean("wer"), mean("similarity"), mean("pace"),
                   mean("babble"), step, outputs)

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "outputs"}


@dataclass
class Voice:
    """The dataset's facts an evaluation needs."""

    dataset: Path
    language: str
    speaker: str
    references: list[Path]  # clips both models are conditioned on
    held_out: list[tuple[Path, str]]  # eval-split clips and their texts: the similarity target and the ceiling
    seconds_per_char: float  # the dataset's own pace
    notes: list[str] = field(default_factory=list)  # caveats the report carries


def read_voice(dataset: Path, references: list[Path] | None = None, speaker: str | None = None) -> Voice:
    """The dataset's language, clips and pace; references default to those an export would pick.

    A dataset of several speakers is scored in one voice, never a blend: `speaker`, else the one with the
    most clips (an export's default voice is its card's `speaker`)."""
    import soundfile as sf

    from xtts_finetune.export import pick_references
    from xtts_finetune.languages import normalize_language
    from xtts_finetune.train.preflight import dataset_clips

    dataset = Path(dataset)
    clips = [c for c in dataset_clips(dataset) if (dataset / c.audio_file).is_file()]
    counts = collections.Counter(c.speaker for c in clips)
    notes = []
    if len(counts) > 1:
        speaker = speaker if speaker in counts else max(sorted(counts), key=counts.get)
        clips = [c for c in clips if c.speaker == speaker]
        notes.append(f"the dataset holds {len(counts)} speakers: scored in {speaker}'s voice, on {speaker}'s clips")
    lang = dataset / "lang.txt"
    if references is None:
        train = [dataset / c.audio_file for c in clips if c.split == "train"]
        references = [p for p, _ in pick_references(train)[0]] if train else []
    evals = [(dataset / c.audio_file, c.text) for c in clips if c.split == "eval"]
    if not evals or not references or not lang.is_file():
        raise UserError(f"{dataset} needs train and eval clips and lang.txt for an evaluation to compare against",
                        fix="build the dataset with xtts-finetune dataset create (it holds clips out for eval)")
    prompts = {p.name for p in references}
    held_out = [(path, text) for path, text in evals if path.name not in prompts]  # prompts are not held out
    if not held_out:
        held_out = evals
        notes.append("every eval clip is also a reference clip of the model, so the similarity target has heard "
                     "the prompt: similarities read high")
    seconds = sum(sf.info(str(dataset / c.audio_file)).duration for c in clips)
    chars = sum(len("".join(c.text.split())) for c in clips)
    speaker = clips[0].speaker if clips else "speaker"
    return Voice(dataset, normalize_language(lang.read_text(encoding="utf-8").strip()), speaker, list(references),
                 held_out[:MAX_HELD_OUT], seconds / max(chars, 1), notes)


@functools.lru_cache(maxsize=2)
def _transcriber(model: str, device: str):
    from xtts_finetune.dataset.transcribe import Transcriber

    return Transcriber(model, device=device)


def _load(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


class Scorer:
    """Whisper and the speaker model, loaded once, with the speaker's real clips embedded once."""

    def __init__(self, voice: Voice, whisper_model: str | None = None, speaker_model: str | None = None,
                 device: str = "auto"):
        import torch

        self.voice = voice
        self.whisper_model = str(whisper_model or DEFAULT_WHISPER)
        self.transcriber = _transcriber(self.whisper_model, "auto" if device == "auto" else device.split(":")[0])
        torch_device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.speaker = load_speaker_encoder(str(speaker_model) if speaker_model else None, torch_device)
        self.held_out = [self.speaker.embed(*_load(p)) for p, _ in voice.held_out]
        self.target = np.mean(self.held_out, axis=0)  # the speaker, from clips no model was conditioned on

    def score(self, audio: np.ndarray, sample_rate: int, text: str) -> Output:
        """Score `audio` (mono float) that was meant to say `text`."""
        transcript = self.transcriber.transcribe(resample(audio, sample_rate, SAMPLE_RATE), self.voice.language,
                                                 vad=False)
        heard = " ".join(w.text for w in transcript.words)
        cer, wer = metrics.error_rates(text, heard, self.voice.language)
        speech_end = transcript.words[-1].end if transcript.words else 0.0
        trailing = metrics.trailing_sound_seconds(audio, sample_rate, speech_end)
        seconds = len(audio) / sample_rate
        pace = metrics.seconds_per_character(seconds, text) / self.voice.seconds_per_char
        similarity = metrics.cosine_similarity(self.speaker.embed(audio, sample_rate), self.target)
        return Output(text, heard, round(cer, 4), round(wer, 4), round(similarity, 4), round(seconds, 3),
                      round(pace, 3), round(trailing, 3), metrics.is_babble(trailing))

    def score_real_clips(self) -> ModelScore:
        """The ceiling: the held-out clips scored like model output, each against the others (or,
        with one clip, against the reference clips) so no clip is compared with itself."""
        outputs = []
        others_of_one = [self.speaker.embed(*_load(p)) for p in self.voice.references]
        for i, (path, text) in enumerate(self.voice.held_out):
            output = self.score(*_load(path), text)
            others = [e for j, e in enumerate(self.held_out) if j != i] or others_of_one
            output.similarity = round(metrics.cosine_similarity(self.held_out[i], np.mean(others, axis=0)), 4)
            output.audio = str(path)
            outputs.append(output)
        return ModelScore.of("real clips", "real", self.voice.dataset, outputs)
