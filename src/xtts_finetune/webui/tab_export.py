"""Export tab: turn a run's checkpoint into a ready model folder, and download any model as a zip."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import gradio as gr

from xtts_finetune.errors import UserError
from xtts_finetune.utils import atomic_path, human_bytes, safe_join
from xtts_finetune.webui.common import UI, fail, job_html, job_signature, safe_name, start_job


def zip_model(ui: UI, model_dir: Path) -> Path:
    """WORKSPACE/exports_zip/NAME.zip with the folder's files (stored, not recompressed: weights don't shrink)."""
    out = safe_join(ui.workspace, "exports_zip", f"{safe_name(model_dir.name)}.zip")
    newest = max((p.stat().st_mtime for p in model_dir.rglob("*") if p.is_file()), default=0)
    if out.is_file() and out.stat().st_mtime >= newest:
        return out
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.write(path, Path(model_dir.name) / path.relative_to(model_dir))
    return out


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

    run_dir = safe_join(ui.workspace, "runs", run_name)
    return ["best", "last", *[p.name for p in reversed(checkpoints(run_dir))]] if run_dir.is_dir() else ["best"]


def model_rows(ui: UI) -> list[list]:
    rows = []
    for model in ui.models():
        size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
        rows.append([model.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(model.stat().st_mtime)), human_bytes(size)])
    return rows


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Export a run")
            run = gr.Dropdown(run_choices(ui), label="Training run", elem_id="ex-run")
            checkpoint = gr.Dropdown(["best"], value="best", label="Checkpoint",
                                     info="best: the lowest eval loss; last: the newest checkpoint.")
            name = gr.Textbox(label="Model name", placeholder="my-voice", elem_id="ex-name")
            fp16 = gr.Checkbox(label="Half precision weights (smaller file; for GPU inference)")
            export = gr.Button("Export", variant="primary", elem_id="ex-export")
            status = gr.HTML(job_html(None, "No export job yet."), elem_id="ex-job")
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Your models")
            models = gr.Dataframe(model_rows(ui), headers=["Model", "Exported", "Size"], interactive=False,
                                  max_height=260, elem_id="ex-models")
            with gr.Row():
                pick = gr.Dropdown([p.name for p in ui.models()], label="Model to download", scale=3)
                prepare = gr.Button("Prepare zip", scale=1, elem_id="ex-zip")
            download = gr.File(label="Download", interactive=False, elem_id="ex-download")
    shown = gr.State(())
    timer = gr.Timer(1.0)

    def on_export(run_name, ckpt, model_name, half):
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
            ctx.summary = f"Exported model {model_dir.name} to models/{model_dir.name}/; its zip is ready to download."
            return {"model": model_dir, "zip": zip_model(ui, model_dir)}

        return job_html(start_job(ui, "export", work, params))

    def on_prepare(model_name):
        if not model_name:
            fail(UserError("No model chosen.", fix="Pick an exported model to download."))
        return str(zip_model(ui, safe_join(ui.workspace, "models", model_name)))

    def refresh(last):
        job = ui.jobs.latest("export")
        sig = job_signature(job)
        if sig == last:
            return (gr.skip(),) * 5 + (last,)
        names = [p.name for p in ui.models()]
        zip_path = (job.result or {}).get("zip") if job and job.status == "finished" else None
        file = zip_path if zip_path and Path(zip_path).is_file() else gr.skip()
        exported = Path((job.result or {}).get("model", "")).name if job and job.status == "finished" else None
        pick_update = gr.update(choices=names, value=exported) if exported in names else gr.update(choices=names)
        return (job_html(job, "No export job yet."), model_rows(ui), pick_update,
                file, gr.update(choices=run_choices(ui)), sig)

    export.click(on_export, [run, checkpoint, name, fp16], [status])
    prepare.click(on_prepare, [pick], [download])
    run.change(lambda r: gr.update(choices=checkpoint_choices(ui, r), value="best"), [run], [checkpoint])
    outputs = [status, models, pick, download, run, shown]
    timer.tick(refresh, [shown], outputs, show_progress="hidden")
    demo.load(refresh, [gr.State(None)], outputs, show_progress="hidden")

    def on_open():
        return gr.update(choices=run_choices(ui)), model_rows(ui), gr.update(choices=[p.name for p in ui.models()])

    tab.select(on_open, None, [run, models, pick], show_progress="hidden")
