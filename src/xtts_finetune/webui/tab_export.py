"""Export tab: turn a run's checkpoint into a ready model folder, download any model as a zip, and evaluate
models and runs (table, chart, base vs fine-tuned side by side)."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate.report import TABLE_HEADERS
from xtts_finetune.utils import human_bytes, safe_join
from xtts_finetune.webui.common import UI, fail, job_html, job_signature, safe_name, start_job
from xtts_finetune.webui.downloads import download_link
from xtts_finetune.webui.messages import form_source


def _runs(ui: UI):
    from xtts_finetune.train.runs import list_runs

    return list_runs(ui.workspace)


def run_choices(ui: UI) -> list[tuple[str, str]]:
    choices = []
    for run in _runs(ui):
        loss = f", best eval loss {run.best_eval_loss:.4f}" if run.best_eval_loss is not None else ""
        choices.append((f"{run.name} ({run.status.replace('_', ' ')}, {run.epochs_done} epoch(s){loss})", run.name))
    return choices


def checkpoint_choices(ui: UI, run_name: str | None) -> list[str]:
    if not run_name:
        return ["best"]
    from xtts_finetune.train.runs import checkpoints

    from xtts_finetune.evaluate import read_evaluation

    run_dir = safe_join(ui.workspace, "runs", run_name)
    if not run_dir.is_dir():
        return ["best"]
    evaluation = read_evaluation(run_dir)
    recommended = ["recommended"] if evaluation is not None and evaluation.recommended else []
    return ["best", *recommended, "last", *[p.name for p in reversed(checkpoints(run_dir))]]


def model_rows(ui: UI) -> list[list]:
    rows = []
    for model in ui.models():
        size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
        rows.append([model.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(model.stat().st_mtime)), human_bytes(size)])
    return rows


def evaluation_targets(ui: UI) -> list[tuple[str, str]]:
    """Exports and runs, as workspace-relative folders (what `evaluate` takes)."""
    return ([(f"model {p.name}", f"models/{p.name}") for p in ui.models()]
            + [(f"run {r.name} (its checkpoints)", f"runs/{r.name}") for r in _runs(ui)])


def start_evaluation(ui: UI, target: str | None, sentences: str = "", whisper_model: str = "", speaker_model: str = ""):
    """Start an evaluate job on a workspace folder; the Export tab's button (and its tests) call this."""
    from xtts_finetune.evaluate import evaluate

    if not target:
        fail(UserError("No model or run chosen.", fix="Pick an exported model or a training run to evaluate."))
    folder = safe_join(ui.workspace, target)
    params = {"target": target, "sentences": [line for line in sentences.splitlines() if line.strip()] or None,
              "whisper_model": whisper_model.strip() or None, "speaker_model": speaker_model.strip() or None}

    def work(ctx):
        result = evaluate(folder, sentences=params["sentences"], whisper_model=params["whisper_model"],
                          speaker_model=params["speaker_model"], progress=ctx.progress)
        best = f"; recommended checkpoint {result.recommended}" if result.recommended else ""
        notes = "".join(f"\nNote: {note}" for note in result.notes)
        ctx.summary = f"Evaluated {target} on {len(result.sentences)} sentence(s){best}.{notes}"
        return {"target": target}

    return start_job(ui, "evaluate", work, params)


def evaluation_view(ui: UI, target: str | None) -> tuple[list[list], str | None, list[tuple[str, int]]]:
    """(table rows, chart PNG, sentences to listen to) of a folder's last evaluation; empty if none."""
    from xtts_finetune.evaluate import read_evaluation
    from xtts_finetune.evaluate.report import FOLDER, table_rows

    evaluation = read_evaluation(safe_join(ui.workspace, target)) if target else None
    if evaluation is None:
        return [], None, []
    chart = safe_join(ui.workspace, target, FOLDER, "evaluation.png")
    sentences = [(f"{n}. {s['text'][:80]}", n - 1) for n, s in enumerate(evaluation.sentences, 1)]
    return table_rows(evaluation), str(chart) if chart.is_file() else None, sentences


def side_by_side(ui: UI, target: str | None, index: int | None) -> tuple[str | None, str | None]:
    """(base, fine-tuned) audio of one evaluation sentence; for a run, its recommended checkpoint speaks."""
    from xtts_finetune.evaluate import read_evaluation
    from xtts_finetune.evaluate.report import FOLDER

    evaluation = read_evaluation(safe_join(ui.workspace, target)) if target else None
    if evaluation is None or index is None or not 0 <= int(index) < len(evaluation.sentences):
        return None, None
    base = next((m for m in evaluation.models if m.kind == "base"), None)
    tuned = [m for m in evaluation.models if m.kind == "fine-tuned" or m.label == evaluation.recommended]

    def audio(score):
        relative = score.outputs[int(index)].audio if score else None
        return str(safe_join(ui.workspace, target, FOLDER, relative)) if relative else None

    return audio(base), audio(tuned[0] if tuned else None)


def start_export(ui: UI, run_name: str | None, ckpt: str | None, model_name: str | None, half: bool):
    """Start an export job of a run's checkpoint into models/NAME (the Export button)."""
    from xtts_finetune.export import export_model

    if not run_name:
        fail(UserError("No run chosen.", fix="Pick a training run (train one on the Train tab first)."))
    model_name = (model_name or "").strip() or run_name
    if safe_name(model_name) != model_name:
        fail(UserError(f"Model name {model_name!r} is not a simple folder name.",
                       fix=f"Use letters, digits, '-', '_' or '.', for example {safe_name(model_name, 'my-voice')!r}."))
    run_dir = safe_join(ui.workspace, "runs", run_name)
    params = {"run": run_name, "checkpoint": ckpt or "best", "name": model_name, "fp16": bool(half)}

    def work(ctx):
        model_dir = Path(export_model(run_dir, model_name, checkpoint=params["checkpoint"], fp16=params["fp16"],
                                      workspace=ui.workspace, progress=ctx.progress))
        ctx.log(f"model folder: {model_dir}")
        ctx.summary = f"Exported model {model_dir.name} to models/{model_dir.name}/."
        ctx.hint = "Next: try it on the 4 · Speak tab, or download it as a zip under Your models."
        return {"model": model_dir}

    return start_job(ui, "export", work, params)


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Export a run")
            run = gr.Dropdown(run_choices(ui), label="Training run", elem_id="ex-run")
            checkpoint = gr.Dropdown(["best"], value="best", label="Checkpoint",
                                     info="best: the lowest eval loss; recommended: by evaluation (below); last: the newest checkpoint.")
            name = gr.Textbox(label="Model name", placeholder="my-voice", elem_id="ex-name")
            fp16 = gr.Checkbox(label="Half precision weights (smaller file; for GPU inference)")
            export = gr.Button("Export", variant="primary", elem_id="ex-export")
            status = gr.HTML(job_html(None, "No export job yet."), elem_id="ex-job")
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Your models")
            models = gr.Dataframe(model_rows(ui), headers=["Model", "Exported", "Size"], interactive=False,
                                  max_height=260, elem_id="ex-models")
            pick = gr.Dropdown([p.name for p in ui.models()], label="Model to download", elem_id="ex-pick")
            download = gr.HTML("", elem_id="ex-download")
    shown = gr.State(())
    timer = gr.Timer(1.0)
    build_evaluation(ui, tab, timer)  # below the export row: timers and states show nothing

    def refresh(last):
        job = ui.jobs.latest("export")
        sig = job_signature(job)
        if sig == last:
            return (gr.skip(),) * 4 + (last,)
        names = [p.name for p in ui.models()]
        exported = Path((job.result or {}).get("model", "")).name if job and job.status == "finished" else None
        pick_update = gr.update(choices=names, value=exported) if exported in names else gr.update(choices=names)
        return job_html(job, "No export job yet."), model_rows(ui), pick_update, gr.update(choices=run_choices(ui)), sig

    export.click(lambda *values: job_html(start_export(ui, *values)), [run, checkpoint, name, fp16], [status])
    pick.change(lambda model_name: download_link(ui, model_name), [pick], [download], show_progress="hidden")
    run.change(lambda r: gr.update(choices=checkpoint_choices(ui, r), value="best"), [run], [checkpoint])
    outputs = [status, models, pick, run, shown]
    timer.tick(refresh, [shown], outputs, show_progress="hidden")
    demo.load(refresh, [gr.State(None)], outputs, show_progress="hidden")

    def on_open():
        return gr.update(choices=run_choices(ui)), model_rows(ui), gr.update(choices=[p.name for p in ui.models()])

    def restore_name():
        job = form_source(ui.jobs.list("export"), "export", "name")
        return job.params["name"] if job else gr.skip()

    demo.load(restore_name, None, [name], show_progress="hidden")

    tab.select(on_open, None, [run, models, pick], show_progress="hidden")


def build_evaluation(ui: UI, tab: gr.Tab, timer: gr.Timer) -> None:
    """Evaluate a model or run: the table and chart of its last evaluation, base vs fine-tuned to listen to."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Evaluate")
            target = gr.Dropdown(evaluation_targets(ui), label="Model or run", elem_id="ev-target",
                                 info="A run scores its kept checkpoints and recommends one.")
            with gr.Accordion("Sentences and scoring models", open=False):
                sentences = gr.Textbox(label="Sentences, one a line", lines=3, elem_id="ev-sentences",
                                       placeholder="empty: the dataset's eval texts and built-in sentences")
                whisper = gr.Textbox(label="Whisper model", placeholder="the dataset's (large-v3)", elem_id="ev-whisper")
                speaker = gr.Textbox(label="Speaker model", placeholder="microsoft/wavlm-base-plus-sv", elem_id="ev-speaker")
            evaluate = gr.Button("Evaluate", elem_id="ev-start")
            ev_status = gr.HTML(job_html(None, "No evaluation job yet."), elem_id="ev-job")
            sentence = gr.Dropdown([], label="Listen: the same sentence, base vs fine-tuned", elem_id="ev-sentence")
            with gr.Row():
                base_audio = gr.Audio(label="Base", type="filepath", interactive=False, elem_id="ev-base")
                tuned_audio = gr.Audio(label="Fine-tuned", type="filepath", interactive=False, elem_id="ev-tuned")
        with gr.Column(scale=3, elem_classes="xf-section"):
            table = gr.Dataframe([], headers=TABLE_HEADERS, interactive=False, elem_id="ev-table")
            gr.Markdown("CER: characters Whisper got wrong (lower is better). Similarity: cosine of speaker embeddings "
                        "against held-out real clips (higher is better). Pace 1.0 = the speaker's own. Babble: share of "
                        "outputs with sound after the last word. *: the recommended checkpoint. See the README.")
            chart = gr.Image(label="Evaluation", type="filepath", interactive=False, elem_id="ev-chart")

    def show(choice):
        rows, png, sentences = evaluation_view(ui, choice)
        return rows, png, gr.update(choices=sentences, value=sentences[0][1] if sentences else None)

    def refresh_evaluation(last):
        job = ui.jobs.latest("evaluate")
        sig = job_signature(job)
        if sig == last:
            return (gr.skip(),) * 5 + (last,)
        done = job.params.get("target") if job and job.status == "finished" else None
        views = show(done) if done else (gr.skip(),) * 3
        targets = gr.update(choices=evaluation_targets(ui), **({"value": done} if done else {}))
        return (job_html(job, "No evaluation job yet."), targets, *views, sig)

    evaluate.click(lambda t, se, w, sp: job_html(start_evaluation(ui, t, se or "", w or "", sp or "")),
                   [target, sentences, whisper, speaker], [ev_status])
    target.change(show, [target], [table, chart, sentence])
    sentence.change(lambda t, i: side_by_side(ui, t, i), [target, sentence], [base_audio, tuned_audio])
    ev_shown = gr.State(())
    ev_outputs = [ev_status, target, table, chart, sentence, ev_shown]
    timer.tick(refresh_evaluation, [ev_shown], ev_outputs, show_progress="hidden")
    tab.select(lambda: gr.update(choices=evaluation_targets(ui)), None, [target], show_progress="hidden")
