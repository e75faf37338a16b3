"""`evaluate`: speak a fixed set of sentences with a model (an export, or every kept checkpoint of a run)
and with its base, score both and the speaker's real clips, and write the report beside the model.

`during_training` is the light version a training run calls every few epochs: a few eval sentences,
the newest checkpoint only, one line appended to RUN/evaluation.jsonl.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate import checkpoints as ckpts
from xtts_finetune.evaluate.report import FOLDER, Evaluation, write_card_entry, write_files
from xtts_finetune.evaluate.scoring import DEFAULT_WHISPER, ModelScore, Scorer, Voice, read_voice
from xtts_finetune.evaluate.sentences import Sentence, evaluation_sentences
from xtts_finetune.progress import ProgressCallback, report
from xtts_finetune.voices import reference_voices

log = logging.getLogger(__name__)
SEED = 0  # every model speaks every sentence with the same seed
LIGHT_SENTENCES = 3


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON: {err}", fix="restore it, or export the model again") from err


def _dataset_folder(path: Path) -> Path:
    """A dataset folder, or a workspace holding one."""
    path = Path(path).expanduser().resolve()
    return path / "dataset" if (path / "dataset" / "lang.txt").is_file() else path


def dataset_whisper_model(dataset: Path) -> str:
    """The Whisper model `dataset create` transcribed this dataset with (recorded in dataset.json)."""
    settings = _read_json(Path(dataset) / "dataset.json").get("settings", {})
    return settings.get("whisper_model") or DEFAULT_WHISPER


def _resolve_base(spec: str | Path | None, default: str | None, target: Path) -> Path:
    from xtts_finetune.basemodels import resolve_base_model
    from xtts_finetune.synthesis import check_model_folder

    if spec is not None:
        return check_model_folder(spec) if Path(spec).expanduser().is_dir() else resolve_base_model(str(spec))
    if not default or not Path(default).is_dir():
        raise UserError(f"the base model {target} was trained from ({default or 'unknown'}) is not on this computer",
                        fix="compare with another model: --against VERSION_OR_FOLDER (e.g. v2.0.3)")
    return check_model_folder(default)


def _plan(target: Path, dataset: Path | None, against) -> tuple[str, Voice, Path]:
    """(kind, the dataset's voice, the base model) for an export or a run folder."""
    from xtts_finetune.synthesis import check_model_folder
    from xtts_finetune.train.runs import read_run_settings

    if (target / "settings.json").is_file():
        run = read_run_settings(target)
        voice = read_voice(_dataset_folder(dataset) if dataset else Path(run["dataset"]["path"]))
        return "run", voice, _resolve_base(against, run["base"]["path"], target)
    check_model_folder(target)
    card = _read_json(target / "model_card.json")
    if dataset is None:
        run_dir = Path(card.get("run") or "")
        if not card.get("run") or not (run_dir / "settings.json").is_file():
            raise UserError(f"{target} does not say which dataset it was trained on (its run folder is gone)",
                            fix="pass the workspace or dataset folder: --dataset WORKSPACE")
        dataset = Path(read_run_settings(run_dir)["dataset"]["path"])
    speaker = card.get("speaker")  # an export of several speakers is scored in its default voice
    references = (sorted((target / "references").glob("*.wav"))  # what users of the export hear
                  or reference_voices(target, card).get(speaker) or None)
    voice = read_voice(_dataset_folder(dataset), references, speaker)
    return "model", voice, _resolve_base(against, (card.get("base") or {}).get("path"), target)


def speak_and_score(scorer: Scorer, model_dir: Path, sentences: list[Sentence], label: str, kind: str, *,
                    device: str = "auto", audio_dir: Path | None = None, step: int | None = None) -> ModelScore:
    """Every sentence spoken by `model_dir` in the dataset's voice and scored; wavs into `audio_dir`.
    A checkpoint's scratch folder keeps its conditioning latents inside it, so they go with it."""
    from xtts_finetune.audio_out import write_audio
    from xtts_finetune.synthesis import Synthesizer

    latents = model_dir / ".latents" if kind == "checkpoint" else None
    synth, voice, outputs = Synthesizer(model_dir, device=device, latents_cache_dir=latents), scorer.voice, []
    for n, sentence in enumerate(sentences, 1):
        try:
            audio = synth.speak(sentence.text, voice.language, voice=voice.references, seed=SEED)
        except UserError as err:
            raise UserError(f"sentence {n} ({sentence.text[:40]!r}), spoken by {label}: {err}") from err
        output = scorer.score(audio, synth.sample_rate, sentence.text)
        if audio_dir is not None:
            output.audio = str(write_audio(audio_dir / f"{n:03d}.wav", audio, synth.sample_rate).relative_to(
                audio_dir.parent.parent))
        outputs.append(output)
    return ModelScore.of(label, kind, model_dir, outputs, step)


def _slug(label: str) -> str:
    return re.sub(r"[^\w.-]+", "_", label).strip("._") or "model"


def evaluate(target: str | Path, *, against: str | Path | None = None, sentences: str | Path | list[str] | None = None,
             dataset: str | Path | None = None, whisper_model: str | None = None, speaker_model: str | None = None,
             max_checkpoints: int = ckpts.DEFAULT_MAX_CHECKPOINTS, device: str = "auto",
             progress: ProgressCallback | None = None) -> Evaluation:
    """Evaluate an export (MODEL) or a run's kept checkpoints (RUN) against the base and the real clips;
    write TARGET/evaluation/ (json, table, chart, audio) and, for an export, its model card entry.
    `sentences`: a file (one a line) or a list; default the dataset's eval texts and the built-in list."""
    target = Path(target).expanduser().resolve()
    kind, voice, base = _plan(target, Path(dataset) if dataset else None, against)
    given = Path(sentences) if isinstance(sentences, (str, Path)) else sentences
    texts = evaluation_sentences(voice.language, voice.held_out, given)
    models = [(target, target.name, "fine-tuned", None)] if kind == "model" else [
        (path, path.name, "checkpoint", ckpts.step_of(path)) for path in ckpts.kept_checkpoints(target, max_checkpoints)]
    models.append((base, "base", "base", None))
    total = len(models) + 1
    report(progress, "evaluate", 0, total, f"loading Whisper and the speaker model; {len(texts)} sentences")
    whisper_model = whisper_model or dataset_whisper_model(voice.dataset)
    scorer = Scorer(voice, whisper_model, speaker_model, device)
    staging = target / f".{FOLDER}.incomplete"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        scores = []
        for done, (path, label, role, step) in enumerate(models):
            report(progress, "evaluate", done, total, f"speaking {len(texts)} sentences with {label}")
            audio_dir = staging / "audio" / _slug(label)
            if role == "checkpoint":
                with ckpts.checkpoint_model(target, path) as folder:
                    scores.append(speak_and_score(scorer, folder, texts, label, role, device=device,
                                                  audio_dir=audio_dir, step=step))
                scores[-1].path = str(path)
            else:
                scores.append(speak_and_score(scorer, path, texts, label, role, device=device, audio_dir=audio_dir))
        report(progress, "evaluate", len(models), total, "scoring the real clips")
        scores.append(scorer.score_real_clips())
        evaluation = Evaluation(
            str(target), kind, voice.language, scorer.whisper_model, str(scorer.speaker.folder),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            [{"text": s.text, "source": s.source} for s in texts], scores, notes=voice.notes)
        if kind == "run":
            evaluation.recommended, evaluation.rule = ckpts.recommend(scores), ckpts.rule_text()
        write_files(staging, evaluation)
        shutil.rmtree(target / FOLDER, ignore_errors=True)
        os.replace(staging, target / FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if kind == "model":
        write_card_entry(target, evaluation)
    report(progress, "evaluate", total, total, f"written to {target / FOLDER}")
    return evaluation


def during_training(run_dir: str | Path, checkpoint_path: str | Path, epoch: int, step: int | None = None, *,
                    whisper_model: str | None = None, speaker_model: str | None = None,
                    sentences: int = LIGHT_SENTENCES, device: str = "auto") -> dict:
    """Score one checkpoint on a few eval sentences; append the result to RUN/evaluation.jsonl.

    It runs inside the training process, so it never ends the run: a failure, running out of memory
    included, is recorded as a skipped evaluation. What it loaded (the synthesizer, Whisper, the speaker
    model) is released afterwards with the GPU memory it cached, which training needs back.
    """
    run_dir, checkpoint_path = Path(run_dir).resolve(), Path(checkpoint_path).resolve()
    record = {"epoch": epoch, "step": step if step is not None else ckpts.step_of(checkpoint_path),
              "checkpoint": checkpoint_path.name}
    try:
        record.update(_score_checkpoint(run_dir, checkpoint_path, whisper_model, speaker_model, sentences, device))
    except Exception as err:  # noqa: BLE001 - training goes on; the failure is shown where the Train tab reads it
        log.warning("evaluation at epoch %s skipped: %s", epoch, err)
        record["error"] = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    _release_models()
    record["time"] = round(time.time(), 3)
    with open(run_dir / "evaluation.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record


def _score_checkpoint(run_dir: Path, checkpoint_path: Path, whisper_model, speaker_model, sentences: int,
                      device: str) -> dict:
    from xtts_finetune.train.runs import read_run_settings

    voice = read_voice(Path(read_run_settings(run_dir)["dataset"]["path"]))
    scorer = Scorer(voice, whisper_model or dataset_whisper_model(voice.dataset), speaker_model, device)
    texts = [Sentence(text, "eval", clip) for clip, text in voice.held_out[:sentences]]
    with ckpts.checkpoint_model(run_dir, checkpoint_path) as folder:
        score = speak_and_score(scorer, folder, texts, checkpoint_path.name, "checkpoint", device=device)
    return {k: getattr(score, k) for k in EVAL_KEYS}


def _release_models() -> None:
    """Forget the Whisper and speaker models the scorer keeps per process, collect what the evaluation left
    (reference cycles included) and hand its cached GPU memory back."""
    import gc

    import torch

    from xtts_finetune.evaluate.scoring import _transcriber
    from xtts_finetune.evaluate.speaker import load_speaker_encoder

    _transcriber.cache_clear()
    load_speaker_encoder.cache_clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


EVAL_KEYS = ("cer", "wer", "similarity", "pace", "babble_share")


def read_training_evaluations(run_dir: str | Path) -> list[dict]:
    """The light evaluations of a run, oldest first (lines cut short by a kill are skipped)."""
    path = Path(run_dir) / "evaluation.jsonl"
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
