"""Evaluation end to end on the tiny models: during training, a run from the CLI (checkpoint recommended,
exported), an export from the web UI's functions; real Whisper and speaker-model code paths throughout."""

from __future__ import annotations

import json

import pytest
from test_train import make_workspace

from xtts_finetune.cli import main
from xtts_finetune.errors import UserError
from xtts_finetune.train import TrainSettings, train

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(coqui_dataset, tiny_models, tmp_path_factory):
    """Two epochs with a light evaluation after each."""
    workspace = make_workspace(coqui_dataset, tmp_path_factory.mktemp("evaluate") / "ws")
    settings = TrainSettings(epochs=2, batch_size=5, evaluate_every=1, evaluate_whisper_model=str(tiny_models["whisper"]),
                             evaluate_speaker_model=str(tiny_models["speaker"]))
    return train(workspace, tiny_models["xtts"], settings).run_dir


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    path = tmp_path_factory.mktemp("sentences") / "sentences.txt"
    path.write_text("Hello there.\n\nThe weather is lovely today.\n", encoding="utf-8")
    return path


def scoring_args(tiny_models):
    return ["--whisper-model", str(tiny_models["whisper"]), "--speaker-model", str(tiny_models["speaker"])]


def test_training_evaluates_every_epoch(run):
    from xtts_finetune.evaluate import read_training_evaluations
    from xtts_finetune.webui.tab_train import evaluation_frame

    records = read_training_evaluations(run)
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert "error" not in record and (run / record["checkpoint"]).name.startswith("checkpoint_")
        assert 0 <= record["cer"] and -1 <= record["similarity"] <= 1 and record["pace"] > 0
    assert records[0]["step"] < records[1]["step"]
    frame = evaluation_frame(run)  # what the Train tab plots next to the loss
    assert sorted(set(frame["metric"])) == ["CER", "similarity"] and list(frame["epoch"]) == [1, 1, 2, 2]
    assert not list(run.glob(".checkpoint-*"))  # the scratch model folders are gone


def test_evaluate_a_run_from_the_cli_and_export_the_recommended_checkpoint(run, tiny_models, sentences, capsys):
    code = main(["evaluate", str(run), "--sentences", str(sentences), "--json", *scoring_args(tiny_models)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    models = report["models"]
    checkpoints = [name for name, m in models.items() if m["kind"] == "checkpoint"]
    assert len(checkpoints) >= 2 and {"base", "real clips"} <= set(models)
    for m in models.values():
        assert {"cer", "similarity", "wer", "pace", "babble_share"} <= set(m)
        assert 0 <= m["cer"] and -1 <= m["similarity"] <= 1
    assert [s["text"] for s in report["sentences"]] == ["Hello there.", "The weather is lovely today."]
    assert report["recommended"] in checkpoints and "CER is within 2%" in report["rule"]
    folder = run / "evaluation"
    assert (folder / "evaluation.png").read_bytes()[:8] == PNG
    assert "recommended" in (folder / "table.txt").read_text(encoding="utf-8")
    for name in [*checkpoints, "base"]:
        outputs = models[name]["outputs"]
        assert len(outputs) == 2 and all((folder / o["audio"]).is_file() for o in outputs)
    real = models["real clips"]["outputs"]
    assert [o["text"] for o in real] == ["Numbers like seven and eight are fine."]  # the eval split's clip

    assert main(["export", str(run), "--name", "picked", "--checkpoint", "recommended"]) == 0
    card = json.loads((run.parent.parent / "models" / "picked" / "model_card.json").read_text(encoding="utf-8"))
    assert card["checkpoint"] == report["recommended"]


def test_evaluate_an_export_from_the_web_ui(run, tiny_models):
    from xtts_finetune.export import export_model
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.jobs import JobRunner
    from xtts_finetune.webui.tab_export import evaluation_targets, evaluation_view, side_by_side, start_evaluation

    workspace = run.parent.parent
    model = export_model(run, "voice", checkpoint="last")
    ui = UI(workspace, JobRunner(workspace))
    assert ("model voice", "models/voice") in evaluation_targets(ui)
    assert evaluation_view(ui, "models/voice") == ([], None, [])  # nothing shown before an evaluation
    job = start_evaluation(ui, "models/voice", str(tiny_models["whisper"]), str(tiny_models["speaker"]))
    job = ui.jobs.wait(job.id, timeout=300)
    assert job.status == "finished", job.message

    rows, chart, choices = evaluation_view(ui, "models/voice")
    assert [r[0] for r in rows] == ["voice", "base", "real clips"] and rows[0][1].endswith("%")
    assert open(chart, "rb").read(8) == PNG
    assert len(choices) == 1 + 3  # the eval clip's text and the built-in English sentences
    base, tuned = side_by_side(ui, "models/voice", choices[-1][1])
    assert base != tuned and base.endswith(".wav") and tuned.endswith(".wav")
    import soundfile as sf

    assert sf.info(base).samplerate == sf.info(tuned).samplerate == 24000

    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    entry = card["evaluation"]
    assert entry["file"] == "evaluation/evaluation.json" and entry["sentences"] == 4
    assert {"cer", "similarity"} <= set(entry["models"]["voice"]) and "base" in entry["models"]


def test_evaluate_refuses_what_it_cannot_measure(run, tiny_models, tmp_path, tiny_export):
    with pytest.raises(UserError, match="does not say which dataset"):
        from xtts_finetune.evaluate import evaluate

        evaluate(tiny_export, whisper_model=str(tiny_models["whisper"]), speaker_model=str(tiny_models["speaker"]))
    with pytest.raises(UserError, match="has not been evaluated"):
        from xtts_finetune.export import export_model

        fresh = tmp_path / "runs" / "fresh"
        fresh.mkdir(parents=True)
        (fresh / "settings.json").write_text((run / "settings.json").read_text(encoding="utf-8"), encoding="utf-8")
        export_model(fresh, "x", checkpoint="recommended", workspace=tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert main(["evaluate", str(run), "--sentences", str(empty), *scoring_args(tiny_models)]) == 2
