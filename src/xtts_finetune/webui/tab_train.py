"""Train tab: pick a base model and settings; start, stop, resume; watch progress, loss curves and the log."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from xtts_finetune.devices import PRECISIONS, precision_for, resolve_device
from xtts_finetune.errors import UserError
from xtts_finetune.webui.common import UI, JsonlTail, fail, job_html, job_signature, start_job
from xtts_finetune.webui.messages import form_source

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # runs of older versions hold coqui's coloured log
LOG_TAIL = 14  # as many lines as the log box shows


def base_choices(ui: UI) -> list[tuple[str, str]]:
    """Release versions, then the user's exported models; any other folder path may be typed in."""
    choices = []
    try:
        from xtts_finetune.basemodels import list_base_models

        for info in list_base_models():
            version = getattr(info, "version", str(info))
            where = "downloaded" if getattr(info, "downloaded", False) or getattr(info, "cached", False) else "download on start"
            choices.append((f"XTTS {version} (release, {where})", version))
    except (ImportError, UserError):
        pass
    choices += [(f"My model: {p.name}", str(p)) for p in ui.models()]
    return choices


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _latest_run(ui: UI) -> Path | None:
    """The most recently updated run, from file times alone (listing runs would parse every events file)."""
    root = ui.workspace / "runs"
    runs = [p for p in root.iterdir() if (p / "settings.json").is_file()] if root.is_dir() else []
    updated = {p: max(f.stat().st_mtime for f in (p / "settings.json", p / "events.jsonl") if f.exists()) for p in runs}
    return max(runs, key=updated.get) if runs else None


def loss_row(event: dict) -> tuple | None:
    if event.get("type") == "step" and event.get("loss") is not None:
        return event["step"], float(event["loss"]), "train"
    if event.get("type") == "eval" and event.get("eval_loss") is not None:
        return event.get("step", 0), float(event["eval_loss"]), "eval"
    return None


_TAILS: dict[Path, JsonlTail] = {}  # one per run, shared by every open tab


def loss_frame(run_dir: Path | None) -> pd.DataFrame:
    if run_dir is None:
        return pd.DataFrame([], columns=["step", "loss", "curve"])
    tail = _TAILS.setdefault(run_dir, JsonlTail(run_dir / "events.jsonl", loss_row))
    return pd.DataFrame(tail.poll(), columns=["step", "loss", "curve"])


def evaluation_frame(run_dir: Path | None) -> pd.DataFrame:
    """The run's light evaluations (train --evaluate-every): CER and speaker similarity per epoch."""
    from xtts_finetune.evaluate import read_training_evaluations

    rows = []
    for record in read_training_evaluations(run_dir) if run_dir else []:
        for key, name in (("cer", "CER"), ("similarity", "similarity")):
            if record.get(key) is not None:
                rows.append((record["epoch"], float(record[key]), name))
    return pd.DataFrame(rows, columns=["epoch", "value", "metric"])


def log_tail(run_dir: Path | None, job) -> str:
    """The run's train_log.txt (coqui's trainer_0_log.txt in older runs), else the job's log lines."""
    logs = sorted([*run_dir.glob("train_log.txt"), *run_dir.glob("trainer_*_log.txt")]) if run_dir else []
    if logs:
        with open(logs[0], "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16000))
            lines = ANSI.sub("", f.read().decode("utf-8", "replace")).splitlines()
        return "\n".join(lines[-LOG_TAIL:])
    return "\n".join(job.log[-LOG_TAIL:]) if job else ""


def run_of(job, run_dir: Path | None) -> Path | None:
    """The run a job's panel shows: none for a job that failed or stopped before its run began, so its red
    header never sits over the previous run's curves and log."""
    if job is None or job.active or run_dir is None:
        return run_dir
    touched = max((p.stat().st_mtime for p in (run_dir / "settings.json", run_dir / "events.jsonl") if p.exists()), default=0)
    # A small slack only: file times come from the kernel's coarse clock (a few ms behind time.time()), and a
    # run that finished a second before this job started is not this job's.
    return run_dir if touched >= job.started - 0.02 else None


def _file_state(run_dir: Path | None) -> tuple:
    if run_dir is None:
        return ()
    files = [run_dir / "events.jsonl", run_dir / "evaluation.jsonl", run_dir / "train_log.txt", *run_dir.glob("trainer_*_log.txt")]
    return tuple((p.name, p.stat().st_size) for p in files if p.exists())


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    c = _layout(ui)
    _wire_buttons(ui, c)
    _wire_progress(ui, demo, c)
    tab.select(lambda: gr.update(choices=base_choices(ui)), None, [c.base], show_progress="hidden")


def _layout(ui: UI) -> SimpleNamespace:
    """The tab's components, laid out, by name for the wiring."""
    from xtts_finetune.train.settings import TrainSettings

    defaults = TrainSettings()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Base model and settings")
            base = gr.Dropdown(base_choices(ui), value=None, allow_custom_value=True, label="Base model",
                               info="A release version, one of your exported models, or the path of a model folder.",
                               elem_id="tr-base")
            with gr.Row():
                epochs = gr.Number(defaults.epochs, label="Epochs", precision=0, minimum=1, elem_id="tr-epochs")
                batch = gr.Dropdown(["auto", "1", "2", "4", "8", "16"], value=str(defaults.batch_size),
                                    allow_custom_value=True, label="Batch size", elem_id="tr-batch")
            with gr.Row():
                accum = gr.Number(defaults.grad_accum, label="Gradient accumulation", precision=0, minimum=1)
                lr = gr.Number(defaults.lr, label="Learning rate")
            with gr.Row():
                max_audio = gr.Number(0, label="Max audio seconds", info="0: the longest clip, at most 11.6 s")
                precision = gr.Dropdown(PRECISIONS, value=defaults.precision, label="Precision",
                                        info=f"auto is {precision_for('auto', resolve_device('auto'))} here "
                                        "(chosen by the GPU's compute capability)")
            gpus = gpu_count()
            devices = gr.Dropdown([str(n) for n in range(1, max(gpus, 1) + 1)], value="1", label="GPUs",
                                  visible=gpus > 1, elem_id="tr-devices",
                                  info="Train on several GPUs at once; batch size is per GPU.")
            vocab = gr.Dropdown(["auto", "base", "script", "phonemes"], value=defaults.vocab, label="Text and vocabulary",
                                elem_id="tr-vocab",
                                info="auto: base for XTTS's 17 languages, script (new tokens for the dataset's script) for "
                                     "any other; phonemes: the language's G2P in letters the base model knows.")
            evaluate_every = gr.Number(0, label="Evaluate every N epochs", precision=0, minimum=0, elem_id="tr-eval-every",
                                       info="CER and speaker similarity of a checkpoint, plotted beside the loss; 0: never.")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="tr-start", scale=2, min_width=120)
                resume = gr.Button("Resume", elem_id="tr-resume", scale=1, min_width=80)
                stop = gr.Button("Stop", variant="stop", elem_id="tr-stop", scale=1, min_width=80)
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Progress")
            status = gr.HTML(job_html(None, "No training job yet."), elem_id="tr-job")
            plot = gr.LinePlot(None, x="step", y="loss", color="curve", title="Loss",
                               color_map={"train": "#6366f1", "eval": "#f59e0b"}, height=260, elem_id="tr-plot",
                               y_axis_format=".3f")
            eval_plot = gr.LinePlot(None, x="epoch", y="value", color="metric", title="Evaluation (CER lower, similarity higher)",
                                    color_map={"CER": "#ef4444", "similarity": "#10b981"}, height=200,
                                    elem_id="tr-eval-plot", y_axis_format=".2f")
            log = gr.Textbox(label="Trainer log (tail)", lines=LOG_TAIL, max_lines=LOG_TAIL, elem_classes="xf-log",
                             autoscroll=True, elem_id="tr-log")
    shown = gr.State(())
    timer = gr.Timer(1.0)
    return SimpleNamespace(**{k: v for k, v in locals().items() if k not in ("ui", "defaults", "TrainSettings")})


def _wire_buttons(ui: UI, c: SimpleNamespace) -> None:
    """Start, Resume and Stop."""

    def on_start(spec, gpus, *values):
        from xtts_finetune.basemodels import RELEASES

        if not spec:
            fail(UserError("No base model chosen.", fix="Pick a release version, one of your models, or type a model folder path."))
        spec = str(spec).strip()
        if spec not in RELEASES:  # a folder path typed in
            try:
                ui.server_path(spec)
            except UserError as err:
                fail(err)
        return _run_training(ui, spec, _settings_from(*values), False, int(gpus or 1))

    def on_resume(gpus):
        from xtts_finetune.train.runs import find_run_to_resume

        try:  # checked here, so a run with nothing to resume never becomes a failed job
            find_run_to_resume(ui.workspace, True)
        except UserError as err:
            fail(err)
        return _run_training(ui, None, None, True, int(gpus or 1))

    def on_stop():
        job = ui.jobs.latest("train")
        if job is None or not job.active:
            fail(UserError("No training is running.", fix="Start or resume a run first."))
        return job_html(ui.jobs.stop(job.id))

    c.start.click(on_start, [c.base, c.devices, *_inputs(c)[1:]], [c.status])
    c.resume.click(on_resume, [c.devices], [c.status])
    c.stop.click(on_stop, None, [c.status])


def _inputs(c: SimpleNamespace) -> list:
    """The form fields a run's settings come from, in `_settings_from`'s order after the base model."""
    return [c.base, c.epochs, c.batch, c.accum, c.lr, c.max_audio, c.precision, c.vocab, c.evaluate_every]


def _wire_progress(ui: UI, demo: gr.Blocks, c: SimpleNamespace) -> None:
    """The job panel, curves and log kept fresh; the form refilled from the last job that trained."""
    def refresh(last):
        job = ui.jobs.latest("train")
        run_dir = run_of(job, _latest_run(ui))
        sig = (job_signature(job), str(run_dir), _file_state(run_dir))
        if sig == last:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
        curves = gr.update(value=loss_frame(run_dir), title=f"Loss · {run_dir.name}" if run_dir else "Loss")
        return job_html(job, "No training job yet."), curves, evaluation_frame(run_dir), log_tail(run_dir, job), sig

    outputs = [c.status, c.plot, c.eval_plot, c.log, c.shown]
    c.timer.tick(refresh, [c.shown], outputs, show_progress="hidden")
    demo.load(refresh, [gr.State(None)], outputs, show_progress="hidden")

    def restore_form():
        """After a refresh the form shows what the last job trained with, not the defaults."""
        job = form_source(ui.jobs.list("train"), "train", "settings")
        saved = job.params["settings"] if job else {}
        if not saved:
            return (gr.skip(),) * len(_inputs(c))
        return (job.params.get("base") or gr.skip(), saved.get("epochs"), str(saved.get("batch_size")),
                saved.get("grad_accum"), saved.get("lr"), saved.get("max_audio_seconds") or 0, saved.get("precision"),
                saved.get("vocab") or "auto", saved.get("evaluate_every") or 0)

    demo.load(restore_form, None, _inputs(c), show_progress="hidden")


def _settings_from(ep, bs, acc, rate, max_s, prec, voc, every):
    """The form's values as checked TrainSettings; a bad value is shown in the page."""
    from xtts_finetune.train.settings import TrainSettings

    defaults = TrainSettings()
    try:
        batch_size = "auto" if str(bs).strip() == "auto" else int(bs)
    except ValueError:
        fail(UserError(f"Batch size {bs!r} is not a number.", fix="Use a whole number such as 2, or 'auto'."))
    settings = TrainSettings(epochs=int(ep or 1), batch_size=batch_size, grad_accum=int(acc or 1), lr=float(rate or defaults.lr),
                             max_audio_seconds=float(max_s) if max_s else None, precision=prec or "auto",
                             evaluate_every=int(every or 0), vocab=voc or "auto")
    try:
        return settings.validate()
    except UserError as err:
        fail(err)



def _run_training(ui: UI, spec: str | None, settings, resume_run: bool, gpus: int = 1):
    """A training job (a new run, or the last one resumed) on one device or several."""
    from xtts_finetune.basemodels import resolve_base_model
    from xtts_finetune.train import train
    from xtts_finetune.train.distributed import launch

    params = {"base": spec, "settings": settings.to_dict() if settings else None, "resume": resume_run,
              "devices": gpus}

    def work(ctx):
        base_dir = None
        if not resume_run:  # a resumed run trains on the base and settings it was started with
            base_dir = resolve_base_model(spec, progress=ctx.progress)
            ctx.log(f"base model: {base_dir}")
        if gpus > 1:  # torchrun, one process per GPU; rank 0's progress lines go to the job's log
            result = launch(gpus, ui.workspace, base_dir, settings, resume=resume_run, stop_event=ctx.stop_event,
                            on_line=ctx.log)
        else:
            result = train(ui.workspace, base_dir, settings, resume=resume_run, progress=ctx.progress,
                           stop_event=ctx.stop_event)
        loss = f", best eval loss {result.best_eval_loss:.4f}" if result.best_eval_loss is not None else ""
        ctx.summary = f"Run {result.run_dir.name} {result.status.replace('_', ' ')} after {result.steps} steps{loss}."
        ctx.hint = f"Next: open the 3 · Export tab and export run {result.run_dir.name} as a model you can use."
        return result

    return job_html(start_job(ui, "train", work, params))
