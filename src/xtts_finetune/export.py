"""A ready model folder from a training run: the XTTS v2 release layout, so any XTTS tool can load it.

model.pth is the base model's weights with the run's trained GPT weights in place (a run's checkpoints
hold only the GPT: the HiFi-GAN decoder is the base model's). Reference clips are picked for the voice
prompt, per speaker when the dataset holds several (voices.py: the layout), each speaker's latents are
added to speakers_xtts.pth under its name, and model_card.json records where it all came from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from xtts_finetune import __version__
from xtts_finetune.errors import UserError
from xtts_finetune.languages import tokenizer_language
from xtts_finetune.progress import ProgressCallback, report
from xtts_finetune.text.frontends import token_language
from xtts_finetune.text.vocab import number_of_tokens
from xtts_finetune.train.events import read_best
from xtts_finetune.train.preflight import dataset_clips
from xtts_finetune.train.runs import checkpoints, is_complete_checkpoint, read_run_settings
from xtts_finetune.utils import atomic_torch_save, atomic_write_text, disk_full, human_bytes, safe_join, sweep_partial_writes
from xtts_finetune.voices import speaker_folder

REFERENCE_SECONDS = (6.0, 12.0)
MAX_REFERENCES = 3
EVALUATION_JSON = Path("evaluation", "evaluation.json")  # in the run: evaluate.report writes it


def _run_config(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # runs of older versions: base vocabulary, XTTS's own front end


def recommended_checkpoint(run_dir: Path) -> str:
    """The checkpoint file `evaluate RUN` recommended. Read from the file evaluation writes, not through its
    module: evaluation exports checkpoints to speak them, so the import goes one way, evaluate -> export."""
    path = run_dir / EVALUATION_JSON
    try:
        recommended = json.loads(path.read_text(encoding="utf-8")).get("recommended") if path.is_file() else None
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"{path} cannot be read: {err}", fix=f"evaluate the run again: xtts-finetune evaluate {run_dir}") from err
    if not recommended:
        raise UserError(f"{run_dir} has not been evaluated, so no checkpoint is recommended",
                        fix=f"run: xtts-finetune evaluate {run_dir}  (or export with --checkpoint best)")
    if not (run_dir / recommended).is_file():
        raise UserError(f"the recommended checkpoint {recommended} is no longer in {run_dir}",
                        fix=f"evaluate the run again: xtts-finetune evaluate {run_dir}")
    return recommended


def pick_checkpoint(run_dir: Path, checkpoint: str = "best") -> Path:
    """'best' (lowest eval loss), 'last' (most recent save), 'recommended' (by `evaluate RUN`) or a checkpoint
    file inside the run."""
    if checkpoint == "recommended":
        checkpoint = recommended_checkpoint(run_dir)
    if checkpoint == "best":
        path = run_dir / "best_model.pth"
        if not path.is_file():
            raise UserError(
                f"{run_dir} has no best_model.pth (no evaluation finished yet)",
                fix="train at least one epoch, or export with --checkpoint last",
            )
        return path
    if checkpoint == "last":
        saved = [p for p in [*checkpoints(run_dir), *run_dir.glob("best_model_*.pth")] if is_complete_checkpoint(p)]
        if not saved:
            raise UserError(f"{run_dir} has no checkpoint yet", fix="train until the first save (--save-every)")
        return max(saved, key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    path = safe_join(run_dir, checkpoint)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist", fix="use best, last, or a .pth file in the run folder")
    return path


def _frame_levels(audio, frame: int = 1024):
    import numpy as np

    usable = len(audio) // frame * frame
    frames = audio[:usable].reshape(-1, frame) if usable else audio.reshape(1, -1)
    return np.sqrt((frames.astype("float64") ** 2).mean(axis=1))


def clip_quality(path: Path) -> dict:
    """Duration, an SNR estimate (loud frames over quiet frames) and the share of clipped samples."""
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    levels = _frame_levels(audio)
    noise, signal = np.percentile(levels, 10), np.percentile(levels, 95)
    snr = float(20 * np.log10(max(signal, 1e-5) / max(noise, 1e-5)))
    clipped = float((np.abs(audio) >= 0.99).mean())
    return {
        "seconds": len(audio) / rate,
        "snr_db": round(snr, 1),
        "clipped": round(clipped, 5),
        "score": snr - 1000 * clipped,
    }


def pick_references(wavs: list[Path], count: int = MAX_REFERENCES) -> tuple[list[tuple[Path, dict]], str]:
    """The cleanest clips of 6-12 s; without any, the best of the rest and a note saying so."""
    rated = [(path, clip_quality(path)) for path in wavs]
    low, high = REFERENCE_SECONDS
    ideal = [r for r in rated if low <= r[1]["seconds"] <= high]
    if ideal:
        return sorted(ideal, key=lambda r: -r[1]["score"])[:count], ""
    # Closest to the range first, then the cleanest: a short prompt is weaker but still the right voice.
    fallback = sorted(rated, key=lambda r: (max(low - r[1]["seconds"], r[1]["seconds"] - high, 0) // 2, -r[1]["score"]))
    note = (
        f"no clip in the dataset is {low:g}-{high:g} s long; using the {min(count, len(fallback))} best others. "
        "Record or add a clean 6-12 s clip to references/ for a better voice prompt."
    )
    return fallback[:count], note


def _unique_folder(models: Path, name: str) -> Path:
    if not re.fullmatch(r"[\w.-]+", name) or name.startswith("."):
        raise UserError(f"model name {name!r} is not a simple folder name", fix="use letters, digits, '-', '_' or '.'")
    candidate, n = models / name, 1
    while candidate.exists():
        n += 1
        candidate = models / f"{name}-{n}"
    return candidate


def inference_state(checkpoint: Path, base_dir: Path, fp16: bool = False) -> dict:
    """The release's Xtts weights: the base model's, with the checkpoint's trained GPT weights in place.

    Runs of versions before the own recipe saved coqui GPTTrainer checkpoints ("xtts.*" keys); they still export.
    """
    import torch

    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    if any(k.startswith("xtts.") for k in trained):
        trained = {k.removeprefix("xtts."): v for k, v in trained.items() if k.startswith("xtts.")}
    weights = torch.load(base_dir / "model.pth", map_location="cpu", weights_only=True)["model"]
    weights.update(trained)
    weights = {k: v for k, v in weights.items() if not k.startswith("gpt.gpt_inference")}
    if fp16:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    return weights


def _speaker_latents(folder: Path, references: dict[str, list[Path]]) -> dict:
    """{name: latents} in the form coqui's SpeakerManager reads (`synthesize(speaker=NAME)` unpacks the two
    values in this order), the exported model loaded once for all speakers. Computed with the config's voice
    settings, as coqui's `synthesize(speaker_wav=...)` and our Synthesizer compute them from the same clips."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True, speaker_file_path=str(folder / "none.pth"))
    latents = {}
    for name, clips in references.items():
        latent, embedding = model.get_conditioning_latents(
            audio_path=[str(p) for p in clips], max_ref_length=config.max_ref_len, gpt_cond_len=config.gpt_cond_len,
            gpt_cond_chunk_len=config.gpt_cond_chunk_len, sound_norm_refs=config.sound_norm_refs)
        latents[name] = {"gpt_cond_latent": latent.cpu().float(), "speaker_embedding": embedding.cpu().float()}
    return latents


def export_model(
    run_dir: str | Path,
    name: str,
    *,
    checkpoint: str = "best",
    fp16: bool = False,
    workspace: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write WORKSPACE/models/NAME (NAME-2 ... if taken) from a run; return the folder."""
    import torch

    run_dir = Path(run_dir).resolve()
    run = read_run_settings(run_dir)
    workspace = Path(workspace) if workspace else run_dir.parent.parent
    ckpt = pick_checkpoint(run_dir, checkpoint)
    base_dir, dataset = Path(run["base"]["path"]), run["dataset"]
    if not (base_dir / "config.json").is_file():
        raise UserError(
            f"the base model this run was trained from, {base_dir}, is gone (export needs its config.json)",
            fix=f"put it back, or download it again: xtts-finetune models download {run['base'].get('version', 'VERSION')}",
        )
    vocab = run_dir / "vocab.json" if (run_dir / "vocab.json").is_file() else base_dir / "vocab.json"  # the run's tokenizer
    models = workspace / "models"
    models.mkdir(parents=True, exist_ok=True)
    sweep_partial_writes(models)  # what an export killed before left behind
    final = _unique_folder(models, name)
    staging = models / f".{final.name}.{os.getpid()}-export.incomplete"  # hidden, renamed into place when complete
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "references").mkdir(parents=True)
    try:
        report(progress, "export", 0, 5, f"weights from {ckpt.name}")
        language = tokenizer_language(dataset["language"])
        config = _write_weights(staging, ckpt, base_dir, vocab, language, fp16)

        report(progress, "export", 1, 5, "picking reference clips")
        voices = _write_references(staging, Path(dataset["path"]))

        report(progress, "export", 2, 5, f"computing the latents of {', '.join(v['name'] for v in voices)}")
        speakers_file = base_dir / "speakers_xtts.pth"
        speakers = torch.load(speakers_file, map_location="cpu", weights_only=True) if speakers_file.is_file() else {}
        # in file-name order, as the Synthesizer reads a references folder: the GPT latent hears the clips in order
        clips = {v["name"]: sorted(staging / r["file"] for r in v["references"]) for v in voices}
        speakers.update(_speaker_latents(staging, clips))
        atomic_torch_save(speakers, staging / "speakers_xtts.pth")

        report(progress, "export", 4, 5, "writing model_card.json")
        card = _model_card(final.name, run_dir, run, ckpt, config, language, voices, fp16)
        atomic_write_text(staging / "model_card.json", json.dumps(card, indent=2, ensure_ascii=False))
        os.replace(staging, final)
    except OSError as err:  # a full disk while copying: say so; the staging folder goes, nothing else changed
        raise disk_full(err, staging) or err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
    report(progress, "export", 5, 5, f"{final} ({human_bytes(size)})", bytes=size)
    return final


def _write_weights(staging: Path, ckpt: Path, base_dir: Path, vocab: Path, language: str, fp16: bool) -> dict:
    """model.pth, config.json (the language added, the vocabulary's size) and vocab.json; returns the config."""
    atomic_torch_save({"model": inference_state(ckpt, base_dir, fp16)}, staging / "model.pth")
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    config["languages"] = sorted(set(config.get("languages", [])) | {language})
    args = config.setdefault("model_args", {})
    args["tokenizer_file"] = ""  # load_checkpoint uses the folder's vocab.json
    args["gpt_number_text_tokens"] = number_of_tokens(vocab.read_text(encoding="utf-8"))
    atomic_write_text(staging / "config.json", json.dumps(config, indent=2))
    shutil.copyfile(vocab, staging / "vocab.json")
    return config


def _write_references(staging: Path, dataset_dir: Path) -> list[dict]:
    """Each speaker's best clips copied into references/ (one speaker) or references/FOLDER/ (several), with
    their quality and a note when they are weak: [{name, folder, references, note}] in the dataset's order."""
    by_speaker: dict[str, list[Path]] = {}
    for clip in dataset_clips(dataset_dir):
        if (dataset_dir / clip.audio_file).is_file():
            by_speaker.setdefault(clip.speaker, []).append(dataset_dir / clip.audio_file)
    if not by_speaker:
        raise UserError(f"{dataset_dir} lists no clips to pick references from", fix="rebuild the dataset")
    voices, taken = [], set()
    for name, wavs in by_speaker.items():
        folder = speaker_folder(name, taken) if len(by_speaker) > 1 else ""
        (staging / "references" / folder).mkdir(parents=True, exist_ok=True)
        picked, note = pick_references(wavs)
        references = []
        for path, quality in picked:
            shutil.copyfile(path, staging / "references" / folder / path.name)
            references.append({"file": "/".join(filter(None, ("references", folder, path.name))),
                               **{k: quality[k] for k in ("seconds", "snr_db", "clipped")}})
        voices.append({"name": name, "folder": folder or None, "references": references,
                       "note": f"{name}: {note}" if note and folder else note})
    return voices


def _model_card(name: str, run_dir: Path, run: dict, ckpt: Path, config: dict, language: str, voices: list[dict],
                fp16: bool) -> dict:
    """model_card.json: where the model came from, how it was trained, how it reads text, its reference clips."""
    run_config, dataset = _run_config(run_dir), run["dataset"]
    vocab_mode = run_config.get("vocab_mode", "base")
    return {
        "format": "xtts-v2",
        "name": name,
        "base": {"version": run["base"]["version"], "path": str(Path(run["base"]["path"]))},
        "language": language,
        "languages": config["languages"],
        "text_frontend": {**(run_config.get("frontend") or {"name": "xtts", "version": "1"}), "vocab": vocab_mode,
                          "token_language": token_language(language, vocab_mode)},
        "speaker": voices[0]["name"],  # the default voice; all of them under `speakers`
        "speakers": [{k: v[k] for k in ("name", "folder")} for v in voices],
        "dataset": dataset["summary"],
        "settings": run["settings"],
        "training": run["resolved"],
        "run": str(run_dir),
        "checkpoint": ckpt.name,
        "best_eval_loss": read_best(run_dir).get("eval_loss"),
        "fp16": fp16,
        "trained": run["created"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool_version": __version__,
        "references": [ref for v in voices for ref in v["references"]],
        "notes": [v["note"] for v in voices if v["note"]],
    }
