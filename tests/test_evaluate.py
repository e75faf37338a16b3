"""Evaluation end to end on the tiny models: during training, a run from the CLI (checkpoint recommended,
exported), the export from the web UI's functions; real Whisper and speaker-model code paths throughout.
Few sentences: every one is a full HiFi-GAN decode on the CPU."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import soundfile as sf
from test_train import make_workspace

from xtts_finetune.cli import main
from xtts_finetune.errors import UserError
from xtts_finetune.train import TrainSettings, train

PNG = b"\x89PNG\r\n\x1a\n"


def scoring_args(tiny_models):
    return ["--whisper-model", str(tiny_models["whisper"]), "--speaker-model", str(tiny_models["speaker"])]


@pytest.fixture(scope="module")
def run(coqui_dataset, tiny_models, tmp_path_factory):
    """Two epochs of one step each, a checkpoint at each step, a light evaluation every second epoch."""
    workspace = make_workspace(coqui_dataset, tmp_path_factory.mktemp("evaluate") / "ws")
    settings = TrainSettings(epochs=2, batch_size=5, save_every_steps=1, evaluate_every=2,
                             evaluate_whisper_model=str(tiny_models["whisper"]),
                             evaluate_speaker_model=str(tiny_models["speaker"]))
    return train(workspace, tiny_models["xtts"], settings).run_dir


@pytest.fixture(scope="module")
def run_report(run, tiny_models, tmp_path_factory):
    """`xtts-finetune evaluate RUN --json` on one sentence, then `export --checkpoint recommended`."""
    sentences = tmp_path_factory.mktemp("sentences") / "sentences.txt"
    sentences.write_text("\nLovely day.\n\n", encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["evaluate", str(run), "--sentences", str(sentences), "--json", *scoring_args(tiny_models)])
    assert code == 0
    assert main(["export", str(run), "--name", "picked", "--checkpoint", "recommended"]) == 0
    return json.loads(out.getvalue())


def test_training_evaluates_every_n_epochs(run):
    from xtts_finetune.evaluate import read_training_evaluations
    from xtts_finetune.webui.tab_train import evaluation_frame

    records = read_training_evaluations(run)
    assert [r["epoch"] for r in records] == [2] and "error" not in records[0]  # epoch 1 is skipped: N = 2
    assert records[0]["checkpoint"] == f"checkpoint_{records[0]['step']}.pth"
    assert 0 <= records[0]["cer"] and -1 <= records[0]["similarity"] <= 1 and records[0]["pace"] > 0
    frame = evaluation_frame(run)  # what the Train tab plots next to the loss
    assert sorted(frame["metric"]) == ["CER", "similarity"] and list(frame["epoch"]) == [2, 2]
    assert not list(run.glob(".checkpoint-*"))  # the scratch model folders are gone


def test_the_last_epochs_evaluation_scores_the_final_weights(coqui_dataset, tiny_models, tmp_path):
    """The run's last save holds no resumable state: the evaluation still scores it, not an older pair (or,
    with no pair at all, an IndexError that ended the run)."""
    from xtts_finetune.evaluate import read_training_evaluations

    workspace = make_workspace(coqui_dataset, tmp_path / "ws")
    settings = TrainSettings(epochs=1, batch_size=5, evaluate_every=1, evaluate_whisper_model=str(tiny_models["whisper"]),
                             evaluate_speaker_model=str(tiny_models["speaker"]))
    result = train(workspace, tiny_models["xtts"], settings)
    assert result.status == "finished"
    [record] = read_training_evaluations(result.run_dir)
    assert "error" not in record and record["checkpoint"] == f"checkpoint_{result.steps}.pth"


def test_evaluate_a_run_from_the_cli_and_export_the_recommended_checkpoint(run, run_report):
    models = run_report["models"]
    checkpoints = [name for name, m in models.items() if m["kind"] == "checkpoint"]
    assert len(checkpoints) == 2 and list(models)[2:] == ["base", "real clips"]
    assert [models[c]["step"] for c in checkpoints] == [1, 2]
    for m in models.values():
        assert {"cer", "similarity", "wer", "pace", "babble_share"} <= set(m)
        assert 0 <= m["cer"] and -1 <= m["similarity"] <= 1
    assert [s["text"] for s in run_report["sentences"]] == ["Lovely day."]
    assert run_report["recommended"] in checkpoints and "CER is within 2%" in run_report["rule"]
    folder = run / "evaluation"
    assert (folder / "evaluation.png").read_bytes()[:8] == PNG
    assert "recommended" in (folder / "table.txt").read_text(encoding="utf-8")
    for name in [*checkpoints, "base"]:
        (output,) = models[name]["outputs"]
        assert sf.info(folder / output["audio"]).samplerate == 24000
    real = models["real clips"]["outputs"]
    assert [o["text"] for o in real] == ["Numbers like seven and eight are fine."]  # the eval split's clip

    card = json.loads((run.parent.parent / "models" / "picked" / "model_card.json").read_text(encoding="utf-8"))
    assert card["checkpoint"] == run_report["recommended"]


def test_evaluate_the_export_from_the_cli(run, run_report, tiny_models, tmp_path, capsys):
    sentences = tmp_path / "one.txt"
    sentences.write_text("Yes.\n", encoding="utf-8")
    model = run.parent.parent / "models" / "picked"
    assert main(["evaluate", str(model), "--sentences", str(sentences), *scoring_args(tiny_models)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["model", "CER", "WER", "similarity", "pace", "babble"]
    assert [line.split()[0] for line in table[2:5]] == ["picked", "base", "real"]
    assert table[-1] == f"details, audio and chart: {model / 'evaluation'}"
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    assert card["evaluation"]["models"]["picked"]["cer"] == json.loads(
        (model / "evaluation" / "evaluation.json").read_text(encoding="utf-8"))["models"]["picked"]["cer"]


def test_evaluate_the_export_from_the_web_ui(run, run_report, tiny_models):
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.jobs import JobRunner
    from xtts_finetune.webui.tab_export import (
        checkpoint_choices, evaluation_targets, evaluation_view, side_by_side, start_evaluation,
    )

    workspace = run.parent.parent
    ui = UI(workspace, JobRunner(workspace))
    assert "recommended" in checkpoint_choices(ui, run.name)  # the run was evaluated
    assert {("model picked", "models/picked"), (f"run {run.name} (its checkpoints)", f"runs/{run.name}")} <= set(
        evaluation_targets(ui))
    shutil.rmtree(workspace / "models" / "picked" / "evaluation", ignore_errors=True)  # as before any evaluation
    assert evaluation_view(ui, "models/picked") == ([], None, []) == evaluation_view(ui, None)
    job = start_evaluation(ui, "models/picked", "Hello there.\n", str(tiny_models["whisper"]),
                           str(tiny_models["speaker"]))
    job = ui.jobs.wait(job.id, timeout=600)
    assert job.status == "finished", job.message

    rows, chart, choices = evaluation_view(ui, "models/picked")
    assert [r[0] for r in rows] == ["picked", "base", "real clips"] and rows[0][1].endswith("%")
    assert open(chart, "rb").read(8) == PNG
    assert choices == [("1. Hello there.", 0)]
    base, tuned = side_by_side(ui, "models/picked", 0)
    assert "/audio/base/" in base and "/audio/picked/" in tuned
    assert sf.info(base).samplerate == sf.info(tuned).samplerate == 24000
    assert side_by_side(ui, f"runs/{run.name}", 0)[1].endswith(f"/audio/{run_report['recommended']}/001.wav")

    card = json.loads((workspace / "models" / "picked" / "model_card.json").read_text(encoding="utf-8"))
    entry = card["evaluation"]
    assert entry["file"] == "evaluation/evaluation.json" and entry["sentences"] == 1
    assert {"cer", "similarity"} <= set(entry["models"]["picked"]) and "base" in entry["models"]
    # The tiny dataset's only eval clip may be a reference of the export: then the report says so.
    prompted_with_eval_clip = any(r["file"].endswith("clip5.wav") for r in card["references"])
    assert len(entry["notes"]) == prompted_with_eval_clip


def test_evaluate_refuses_what_it_cannot_measure(run, tiny_models, tmp_path, tiny_export):
    from xtts_finetune.evaluate import evaluate
    from xtts_finetune.export import export_model

    with pytest.raises(UserError, match="does not say which dataset"):
        evaluate(tiny_export, whisper_model=str(tiny_models["whisper"]), speaker_model=str(tiny_models["speaker"]))
    fresh = tmp_path / "runs" / "fresh"
    fresh.mkdir(parents=True)
    (fresh / "settings.json").write_text((run / "settings.json").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(UserError, match="has not been evaluated"):
        export_model(fresh, "x", checkpoint="recommended", workspace=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert main(["evaluate", str(run), "--sentences", str(empty), *scoring_args(tiny_models)]) == 2


def test_a_failed_light_evaluation_is_recorded_as_skipped_and_its_models_released(run, tiny_models, tmp_path):
    """In the training process: a half-downloaded speaker model (a library error, not ours) skips the
    evaluation instead of ending the run, and the Whisper model it had loaded is not kept."""
    from xtts_finetune.evaluate import during_training, read_training_evaluations
    from xtts_finetune.evaluate.scoring import _transcriber
    from xtts_finetune.evaluate.speaker import load_speaker_encoder

    copy, broken = tmp_path / "run", tmp_path / "speaker"
    shutil.copytree(run, copy)
    shutil.copytree(tiny_models["speaker"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    latest = max(copy.glob("checkpoint_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    record = during_training(copy, latest, 3, whisper_model=str(tiny_models["whisper"]), speaker_model=str(broken))
    assert "SafetensorError" in record["error"] and read_training_evaluations(copy)[-1] == record
    assert _transcriber.cache_info().currsize == 0 and load_speaker_encoder.cache_info().currsize == 0
