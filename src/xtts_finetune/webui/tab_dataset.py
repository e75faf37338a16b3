"""Dataset tab: add recordings, watch them become clips, read the statistics, fix or drop clips."""

from __future__ import annotations

import html
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pandas as pd

from xtts_finetune.dataset.voices import DEFAULT_THRESHOLD
from xtts_finetune.errors import UserError
from xtts_finetune.webui.common import (
    LANGUAGE_CHOICES, PLAYER, UI, copy_uploads, fail, job_html, job_log, job_signature, start_job,
)
from xtts_finetune.webui.dataset_speakers import speakers_panel, wire_speakers
from xtts_finetune.webui.messages import dataset_summary, duration_text, form_source, plural, problems

WHISPER_CHOICES = ["large-v3", "large-v3-turbo", "medium", "small", "base", "tiny"]
CLIP_COLUMNS = ["ID", "Split", "Seconds", "CER", "Text", "State", "Speaker", "Voice", "SNR dB", "LUFS", "Clipped"]


def vocab_choices(ui: UI) -> list[tuple[str, str]]:
    """Whose vocabulary the preview reads with: exports, then runs (newest first), then downloaded base models."""
    from xtts_finetune.basemodels import list_base_models

    choices = [(f"My model: {p.name}", str(p)) for p in ui.models()]
    root = ui.workspace / "runs"
    runs = [p for p in root.iterdir() if (p / "vocab.json").is_file()] if root.is_dir() else []
    choices += [(f"Run: {p.name}", str(p)) for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]
    choices += [(f"XTTS {info.version} (base model)", str(info.path)) for info in list_base_models() if info.cached]
    return choices + [("None: the text front end only", "")]


def text_preview(sentence: str, language: str, model: str | None = None) -> str:
    """The `text` command's view of a sentence as Markdown: front end, G2P, what the tokenizer reads and,
    with a `model` (an export, a run or a base folder), the tokens of that model's vocabulary, [UNK] marked."""
    if not (sentence or "").strip() or not language:
        return ""
    from xtts_finetune.text.frontends import default_vocab_mode
    from xtts_finetune.text.preview import preview_text

    try:
        result = preview_text(sentence, language, model or None, g2p="builtin" if language == "am" else None)
    except UserError as err:
        return f"**{err}**"
    vocab = f"{result.vocab} vocabulary of {Path(model).name}" if model else \
        f"vocabulary {default_vocab_mode(result.language)} by default"
    lines = [f"- normalised: `{result.normalized}`", f"- front end: {result.frontend}, {vocab}"]
    if result.g2p:
        lines.append(f"- phonemes ({result.g2p_backend}): `{result.g2p}`")
    lines.append(f"- the tokenizer reads: `{result.text}`")
    if model:
        tokens = " ".join("**[UNK]**" if t == "[UNK]" else f"`{html.escape(t)}`" for t in result.tokens)
        lines.append(f"- {len(result.tokens)} tokens: {tokens}")
        lines.append(f"- **not in this vocabulary ([UNK]): {' '.join(f'`{c}`' for c in result.unk)}**" if result.unk
                     else "- every character is in this vocabulary (no [UNK])")
    return "\n".join(lines)


def _dataset_language(ui: UI) -> str:
    lang = ui.workspace / "dataset" / "lang.txt"
    return lang.read_text(encoding="utf-8").strip() if lang.is_file() else "en"


def _segments(ui: UI):
    if not (ui.workspace / "dataset" / "dataset.json").is_file():
        return []
    from xtts_finetune.dataset import list_segments

    try:
        return list_segments(ui.workspace)
    except UserError:
        return []


def _clip_rows(ui: UI, suspects_only: bool = False) -> list[list]:
    """One row per clip: CER once `dataset verify` (the Verify button) has run; the voice similarity, SNR,
    loudness and clipping measured when the clip was made (dataset/quality.py)."""
    from xtts_finetune.dataset.quality import is_suspect

    rows = []
    for seg in _segments(ui):
        if suspects_only and not is_suspect(seg):
            continue
        state = "; ".join(part for part in (
            f"rejected: {seg.rejected}" if seg.rejected else "excluded" if seg.excluded else "",
            f"suspect: {seg.suspect}" if seg.suspect else "", seg.quality or "") if part)
        measures = [_blank(seg.cer, 2), _blank(seg.similarity, 2), _blank(seg.snr, 0), _blank(seg.lufs, 1), _blank(seg.clipped, 0)]
        rows.append([seg.id, seg.split, round(seg.duration, 2), measures[0], seg.text, state, seg.speaker, *measures[1:]])
    return rows


def _blank(value, digits: int):
    return "" if value is None else round(value, digits)


def _source_choices(ui: UI) -> list[tuple[str, str]]:
    if not (ui.workspace / "dataset" / "dataset.json").is_file():
        return []
    from xtts_finetune.dataset import load_manifest

    try:
        return [(f"{Path(s.path).name} ({s.hash[:8]})", s.hash) for s in load_manifest(ui.workspace).sources]
    except UserError:
        return []


STAT_HELP = {
    "Language": "The language the clips are transcribed and trained in.",
    "Clips (train / eval)": "Usable clips; the eval clips are held out to measure training, never trained on.",
    "Total duration": "Speech in the usable clips. Ten minutes or more gives a recognisable voice.",
    "Clip length min / mean / max": "XTTS trains on clips of up to about 11.6 s; 3-10 s clips work best.",
    "Speaking rate (median)": "Characters of transcript per second of audio, the middle value over all clips.",
    "Excluded by you": "Clips you excluded from training in the table below.",
    "Speaking-rate outliers": "Clips whose transcript is much longer or shorter than their audio suggests: "
                              "often a wrong or cut transcript. Play them and fix the text or exclude them.",
    "Clipping": "Clips whose loudest samples hit full scale: the recording distorted. Exclude them if audible.",
    "Near-silent": "Clips with almost no sound: usually a cut in the wrong place. Exclude them.",
    "Missing audio": "Clips whose wav file is gone from the dataset folder; they cannot be trained on.",
    "Same text": "Clips with identical transcripts: often the same take twice, or a repeated caption.",
}
REJECTED_HELP = "Clips the dataset step left out for this reason; they are not trained on."


def _stats(ui: UI):
    """(statistics HTML, durations for the histogram) for the dataset, or empty when there is none yet."""
    if not (ui.workspace / "dataset" / "dataset.json").is_file():
        return stats_html([]), _durations([])
    from xtts_finetune.dataset import dataset_stats

    try:
        st = dataset_stats(ui.workspace)
    except UserError as err:
        return stats_html([("Error", str(err), "")]), _durations([])
    rows = [(name, value, STAT_HELP.get(name, "")) for name, value in (
        ("Language", st.language),
        ("Clips (train / eval)", f"{st.clips} ({st.train_clips} / {st.eval_clips})"),
        ("Total duration", duration_text(st.total_seconds)),
        ("Clip length min / mean / max", f"{st.min_seconds:.1f} / {st.mean_seconds:.1f} / {st.max_seconds:.1f} s"),
        ("Speaking rate (median)", f"{st.chars_per_second:.1f} characters/s"),
        ("Excluded by you", str(st.excluded)))]
    rows += [(f"Rejected: {why}", str(n), REJECTED_HELP) for why, n in st.rejected.items()]
    issues = {"Speaking-rate outliers": [o["id"] for o in st.rate_outliers], "Clipping": st.clipping,
              "Near-silent": st.near_silent, "Missing audio": st.missing_audio,
              "Same text": [", ".join(ids) for ids in st.duplicate_texts]}
    rows += [(name, f"{len(ids)}: {', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}", STAT_HELP[name])
             for name, ids in issues.items() if ids]
    return stats_html(rows), _durations([s.duration for s in _segments(ui) if s.active])


def stats_html(rows: list[tuple[str, str, str]]) -> str:
    """The statistics as a table that wraps instead of cutting; each name carries its explanation."""
    if not rows:
        return '<div class="xf-idle">No dataset yet.</div>'
    body = "".join(
        f'<tr><th scope="row">{html.escape(name)}'
        + (f' <span class="xf-help" tabindex="0" role="img" aria-label="{html.escape(help_)}" title="{html.escape(help_)}">?</span>'
           if help_ else "") + f"</th><td>{html.escape(value)}</td></tr>"
        for name, value, help_ in rows)
    return f'<table class="xf-stats">{body}</table>'


def _durations(seconds: list[float]):
    """Clip lengths for the histogram (a native plot, so it follows the light or dark theme) and its alt text."""
    frame = pd.DataFrame({"seconds": seconds, "clips": [1] * len(seconds)})
    if not seconds:
        return frame, "No clips yet."
    return frame, (f"Clip durations: {plural(len(seconds), 'clip')} from {min(seconds):.1f} s to "
                   f"{max(seconds):.1f} s, median {sorted(seconds)[len(seconds) // 2]:.1f} s.")


def _clip_path(ui: UI, segment) -> str | None:
    path = ui.workspace / "dataset" / segment.audio_file
    return str(path) if path.is_file() else None  # rejected segments have no wav


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    c = _layout(ui)
    _wire_create(ui, c)
    _wire_clips(ui, demo, c)
    wire_speakers(ui, c.speaker_pick, c.speaker_new, c.speaker_rename)


def _layout(ui: UI) -> SimpleNamespace:
    """The tab's components, laid out, by name for the wiring."""
    return SimpleNamespace(**_sources_and_stats(ui), **_clips_and_sources(ui), **speakers_panel(ui), shown=gr.State(()),
                           timer=gr.Timer(1.0))


def _components(scope: dict) -> dict:
    return {k: v for k, v in scope.items() if isinstance(v, gr.components.Component)}


def _sources_and_stats(ui: UI) -> dict:
    """The top row: recordings, language, text preview, Whisper and the job panel beside the statistics."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Add recordings")
            media = gr.File(label="Audio or video files", file_count="multiple", elem_id="ds-media", height=140)
            folder = gr.Textbox(label="…or a folder on this computer", placeholder="/path/to/recordings",
                                info="Read in place; nothing in it is changed.")
            with gr.Accordion("Subtitles (optional)", open=False):
                gr.Markdown(".srt, .vtt, .ass, .ssa or .sub files, matched to the media by name (talk.srt or "
                            "talk.en.srt for talk.mp4); their text is used instead of Whisper's.", elem_classes="xf-note")
                subtitles = gr.File(label="Subtitle files", file_count="multiple", elem_id="ds-subtitles")
            with gr.Row():
                language = gr.Dropdown(LANGUAGE_CHOICES, value=_dataset_language(ui), label="Language", filterable=True,
                                       allow_custom_value=True, elem_id="ds-language",
                                       info="Type to search; any ISO 639 code works (XTTS knows 17: the rest get new tokens).")
                speaker = gr.Textbox("speaker", label="Speaker name", elem_id="ds-speaker")
            with gr.Accordion("Voices: keep one speaker, or name them all", open=False):
                keep = gr.Radio([("All voices", "all"), ("Only the voice of a reference recording", "reference"),
                                 ("The voice that speaks most in each recording", "main")], value="all",
                                label="Keep", elem_id="ds-voice-keep")
                reference = gr.File(label="Reference: the wanted voice alone, 10-30 s", file_count="single",
                                    elem_id="ds-voice-reference", height=100)
                with gr.Row():
                    diarize = gr.Checkbox(label="Name each voice (speaker_1, speaker_2...)", elem_id="ds-diarize")
                    threshold = gr.Slider(0.5, 0.95, value=DEFAULT_THRESHOLD, step=0.01, label="Voice threshold", elem_id="ds-voice-threshold",
                                          info="Similarity a clip needs to count as the wanted voice; clips below are left out and listed.")
            with gr.Accordion("Text preview: what the model will read", open=False):
                sample = gr.Textbox(label="A sentence", elem_id="ds-text-sample")
                offered = vocab_choices(ui)
                vocab_model = gr.Dropdown(offered, value=offered[0][1], label="Tokens of", elem_id="ds-text-model",
                                          info="An exported model, a run or a base model: [UNK] marks what it lacks.")
                preview = gr.Markdown(elem_id="ds-text-preview")
            whisper = gr.Dropdown(WHISPER_CHOICES, value="large-v3", allow_custom_value=True, label="Whisper model",
                                  info="A model name, or the path of a local CTranslate2 Whisper folder.",
                                  elem_id="ds-whisper")
            create = gr.Button("Create / extend dataset", variant="primary", elem_id="ds-create")
            status = gr.HTML(job_html(None, "No dataset job yet."), elem_id="ds-job")
            with gr.Accordion("Job log", open=False):
                log = gr.Textbox(lines=8, max_lines=8, show_label=False, elem_classes="xf-log", autoscroll=True)
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Statistics")
            stats = gr.HTML(stats_html([]), elem_id="ds-stats")
            # y from 0: with every bin at the same count, Gradio's own axis would start there and draw no bars
            histogram = gr.BarPlot(None, x="seconds", y="clips", x_bin=1, y_aggregate="sum", height=240, y_lim=[0, None],
                                   title="Clip durations (s)", x_title="seconds", y_title="clips", elem_id="ds-histogram")
            histogram_alt = gr.HTML("", elem_id="ds-histogram-alt", elem_classes="xf-note")
    return _components(locals())


def _clips_and_sources(ui: UI) -> dict:
    """The clip table with its player and editor, and the sources that can be removed."""
    with gr.Column(elem_classes="xf-section"):
        gr.Markdown("### Clips\n<span class='xf-note'>Select a row to play the clip, correct its transcript or exclude it from training.</span>")
        with gr.Row():
            verify = gr.Button("Verify clips with Whisper", size="sm", elem_id="ds-verify")
            suspects_only = gr.Checkbox(label="Only suspect clips", elem_id="ds-suspects-only")
            exclude_all = gr.Button("Exclude all suspect clips", size="sm", elem_id="ds-exclude-suspects")
        clips = gr.Dataframe(headers=CLIP_COLUMNS, interactive=False, max_height=320, elem_id="ds-clips",
                             column_widths=["150px", "64px", "76px", "56px", "520px", "170px", "96px", "60px", "64px", "60px", "76px"], wrap=True)  # px: scrolls sideways on a phone
        with gr.Row(equal_height=False):
            player = gr.Audio(label="Clip", type="filepath", interactive=False, scale=2, elem_id="ds-clip-audio",
                              waveform_options=PLAYER)
            with gr.Column(scale=3):
                segment_id = gr.Textbox(label="Clip ID", interactive=False, elem_id="ds-clip-id")
                text = gr.Textbox(label="Transcript", lines=2, elem_id="ds-clip-text")
                with gr.Row():
                    excluded = gr.Checkbox(label="Exclude from training")
                    save = gr.Button("Save clip", size="sm", elem_id="ds-clip-save")
    with gr.Accordion("Sources", open=False):
        with gr.Row():
            source = gr.Dropdown(_source_choices(ui), label="Source", elem_id="ds-source", scale=3,
                                 info="Removing a source deletes its clips, so it can be added again (e.g. with fixed subtitles).")
            remove = gr.Button("Remove source", size="sm", variant="stop", elem_id="ds-remove-source", scale=1)
    return _components(locals())


def _wire_create(ui: UI, c: SimpleNamespace) -> None:
    """Create / extend the dataset, and the text preview beside it."""
    def on_create(files, folder_path, subs, lang, spk, whisper_model, keep="all", reference=None, diarize=False,
                  threshold=DEFAULT_THRESHOLD):
        from xtts_finetune.dataset import create_dataset

        stamp = time.strftime("%Y%m%d-%H%M%S")
        audio = copy_uploads(ui, files, f"media-{stamp}")
        if folder_path and folder_path.strip():
            try:  # the allowed-roots check first, so an exposed UI never tells whether an outside path exists
                path = ui.server_path(folder_path)
            except UserError as err:
                fail(err)
            if not path.exists():
                fail(UserError(f"The folder {path} does not exist on this computer.", fix="Type the full path of a folder with recordings."))
            audio.append(path)
        if not audio:
            fail(UserError("No recordings given.", fix="Upload audio or video files, or type a folder path."))
        subtitle_paths = copy_uploads(ui, subs, f"media-{stamp}")  # beside the media: pairing is by folder and name
        model = (whisper_model or "large-v3").strip()
        params = dict(language=lang, audio=audio, subtitles=subtitle_paths, whisper_model=model, speaker=spk or "speaker")
        params.update(_voice_params(ui, keep, reference, diarize, threshold, stamp))

        def work(ctx):
            report = create_dataset(**_create_args({**params, "workspace": ui.workspace}), progress=ctx.progress)
            for line in report.summary().splitlines()[1:]:  # the first is the summary, logged as the job ends
                ctx.log(line)
            ctx.summary = dataset_summary(report)
            ctx.problems = problems(report.failed, [w.split(": ")[0] for w in report.warnings if w.endswith(": no speech found")])
            ctx.nothing_done = not report.added and not report.skipped
            ctx.hint = "Next: check the clips below, then train on the 2 · Train tab."
            return report

        return job_html(start_job(ui, "dataset", work, params))

    c.create.click(on_create, [c.media, c.folder, c.subtitles, c.language, c.speaker, c.whisper, c.keep, c.reference,
                               c.diarize, c.threshold], [c.status])

    def on_preview(sentence, lang, model):
        allowed = {value for _, value in vocab_choices(ui)}  # only folders the list offered, whatever is sent
        return text_preview(sentence, lang, model if model in allowed else None)

    for event in (c.sample.submit, c.language.change, c.vocab_model.change):
        event(on_preview, [c.sample, c.language, c.vocab_model], [c.preview])
    c.vocab_model.focus(lambda: gr.update(choices=vocab_choices(ui)), None, [c.vocab_model])


def _voice_params(ui: UI, keep: str, reference, diarize: bool, threshold: float, stamp: str) -> dict:
    """The job's voice choice (kept in its record): which voice to keep, names for all, the threshold."""
    params = {"main_speaker": keep == "main", "diarize": bool(diarize), "voice_threshold": float(threshold or 0.75)}
    if keep == "reference":
        copied = copy_uploads(ui, [reference] if reference else [], f"reference-{stamp}")
        if not copied:
            fail(UserError("No reference recording given.", fix="Upload a recording of the wanted voice alone, or keep all voices."))
        params["speaker_reference"] = copied[0]
    return params


def _create_args(params: dict) -> dict:
    """create_dataset's arguments from a job's params: the threshold goes into the dataset's settings."""
    from xtts_finetune.dataset.create import settings_with

    args = {k: v for k, v in params.items() if k != "voice_threshold"}
    if "voice_threshold" in params:
        args["settings"] = settings_with(params["workspace"], voice_threshold=params["voice_threshold"])
    return args


def _wire_clips(ui: UI, demo: gr.Blocks, c: SimpleNamespace) -> None:
    """The job panel and tables kept fresh, a clip's row to play, fix or exclude, the form restored on load."""

    def refresh(last, only):
        job = ui.jobs.latest("dataset")
        sig = job_signature(job)
        if sig == last:
            return (gr.skip(),) * 7 + (last,)
        tables = (gr.skip(),) * 5
        if job is None or not job.active:
            tables = (*_tables(ui, only), gr.update(choices=_source_choices(ui)))
        return job_html(job, "No dataset job yet."), job_log(job), *tables, sig

    def on_select(evt: gr.SelectData):
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        match = next((s for s in _segments(ui) if str(s.id) == str(row[0])), None)
        if match is None:
            return None, "", "", False
        return _clip_path(ui, match), str(match.id), match.text, match.excluded

    def on_save(seg_id, new_text, exclude, only):
        from xtts_finetune.dataset import edit_segment

        if not seg_id:
            fail(UserError("No clip selected.", fix="Select a row in the clip table first."))
        before = {s.id: s.split for s in _segments(ui)}
        try:
            edit_segment(ui.workspace, seg_id, text=new_text, excluded=exclude)
        except UserError as err:
            fail(err)
        moved = [s.id for s in _segments(ui) if s.id != seg_id and before.get(s.id, s.split) != s.split]
        gr.Info(f"Saved clip {seg_id}." + (f" Clip {', '.join(moved)} moved to the eval split, so training keeps "
                                           "clips to measure itself on." if moved else ""))
        return _tables(ui, only)

    tables = [c.clips, c.stats, c.histogram, c.histogram_alt]
    outputs = [c.status, c.log, *tables, c.source, c.shown]
    c.timer.tick(refresh, [c.shown, c.suspects_only], outputs, show_progress="hidden")
    demo.load(refresh, [gr.State(None), c.suspects_only], outputs, show_progress="hidden")
    _wire_checks(ui, c.whisper, c.status, c.verify, c.suspects_only, c.exclude_all, c.source, c.remove, tables)
    c.clips.select(on_select, None, [c.player, c.segment_id, c.text, c.excluded])
    c.save.click(on_save, [c.segment_id, c.text, c.excluded, c.suspects_only], tables)

    def restore_form():
        """After a reload the form shows what the last dataset job that worked used, not the defaults."""
        job = form_source(ui.jobs.list("dataset"), "dataset", "language")
        if job is None:
            return gr.skip(), gr.skip(), gr.skip()
        return job.params["language"], job.params.get("speaker") or "speaker", job.params.get("whisper_model") or "large-v3"

    demo.load(restore_form, None, [c.language, c.speaker, c.whisper], show_progress="hidden")


def _tables(ui: UI, only: bool) -> tuple:
    """What every dataset change redraws: clip rows, statistics, histogram and its alt text."""
    stats, (frame, alt) = _stats(ui)
    return _clip_rows(ui, only), stats, frame, alt


def _wire_checks(ui: UI, whisper, status, verify, suspects_only, exclude_all, source, remove, tables) -> None:
    """Verify clips with Whisper, show only suspects, exclude them all, remove a source. `tables`: as `_tables`."""

    def on_verify(whisper_model):
        from xtts_finetune.dataset.verify import verify_dataset

        if not _segments(ui):
            fail(UserError("There are no clips to verify yet.", fix="Create the dataset first."))
        params = dict(whisper_model=(whisper_model or "large-v3").strip())

        def work(ctx):
            result = verify_dataset(ui.workspace, **params, progress=ctx.progress)
            for line in result.summary().splitlines()[1:]:  # the first is the summary, logged as the job ends
                ctx.log(line)
            ctx.summary = result.summary().splitlines()[0].capitalize() + "."
            return result

        return job_html(start_job(ui, "dataset", work, params))

    def on_exclude_suspects(only):
        from xtts_finetune.dataset.quality import SUSPECT, exclude_by  # what the "Only suspect clips" filter shows

        ids = exclude_by(ui.workspace, SUSPECT) if _segments(ui) else []
        gr.Info(f"Excluded {plural(len(ids), 'suspect clip')}.")
        return _tables(ui, only)

    def on_remove(source_hash, only):
        from xtts_finetune.dataset.manifest import remove_source

        if not source_hash:
            fail(UserError("No source selected.", fix="Choose a source in the list first."))
        try:
            removed, n = remove_source(ui.workspace, source_hash)
        except UserError as err:
            fail(err)
        gr.Info(f"Removed {Path(removed.path).name} and its {plural(n, 'clip')}.")
        return (*_tables(ui, only), gr.update(choices=_source_choices(ui), value=None))

    verify.click(on_verify, [whisper], [status])
    suspects_only.change(lambda only: _clip_rows(ui, only), [suspects_only], [tables[0]])
    exclude_all.click(on_exclude_suspects, [suspects_only], tables)
    remove.click(on_remove, [source, suspects_only], [*tables, source])
