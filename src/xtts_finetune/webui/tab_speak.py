"""Speak tab: pick a model and a voice, type text, listen and download."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np

from xtts_finetune.errors import UserError
from xtts_finetune.languages import XTTS_LANGUAGES, normalize_language
from xtts_finetune.webui.common import PLAYER, UI, copy_uploads, message_html
from xtts_finetune.webui.messages import plural, speech_progress, unexpected

VOICE_SOURCES = ["Model voice", "Dataset clip", "Upload"]


class _Loaded:
    """One model at a time stays loaded: loading is slow, and models are large."""

    def __init__(self):
        self.lock = threading.Lock()
        self.path: Path | None = None
        self.synth = None

    def get(self, model_dir: Path):
        from xtts_finetune.synthesis import Synthesizer

        if self.path != model_dir:
            self.synth, self.path = None, None  # free the old model before loading the next
            self.synth, self.path = Synthesizer(model_dir, max_chars=max_chars()), model_dir
        return self.synth

    def unload(self) -> None:
        """Free the model (and its GPU memory) for a job that needs the GPU."""
        self.synth, self.path = None, None
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def model_choices(ui: UI) -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in ui.models()]


def dataset_clips(ui: UI) -> list[tuple[str, str]]:
    """The dataset's usable clips, labelled with their transcript."""
    if not (ui.workspace / "dataset" / "dataset.json").is_file():
        return []
    from xtts_finetune.dataset import list_segments

    try:
        segments = list_segments(ui.workspace)
    except UserError:
        return []
    root = ui.workspace / "dataset"
    return [(f"{s.id} · {s.duration:.1f} s · {s.text[:48]}", Path(s.audio_file).name)
            for s in segments if not s.excluded and not s.rejected and (root / s.audio_file).is_file()]


def _language_choices(codes) -> list[tuple[str, str]]:
    return [(f"{XTTS_LANGUAGES.get(c, c)} ({c})", c) for c in codes]


def max_chars() -> int:
    """The REST server's limit, so text that speaks here also speaks there."""
    from xtts_finetune.server import MAX_INPUT_CHARS

    return MAX_INPUT_CHARS


def count_html(n: int) -> str:
    """The counter under the text box, kept current as you type."""
    over = " xf-over" if n > max_chars() else ""
    return f'<span class="xf-count{over}" aria-live="polite">{n:,} / {max_chars():,} characters</span>'


def check_references(clips: list[Path]) -> list[Path]:
    """Uploaded reference clips must hold sound: an empty or unreadable file is named with what to do."""
    import soundfile

    for clip in clips:
        try:
            info = soundfile.info(str(clip))
        except Exception:  # noqa: BLE001 - soundfile raises its own error types per format
            info = None
        if info is None or info.frames < info.samplerate // 2:
            what = "is not an audio file soundfile can read" if info is None else "holds no sound (or under half a second)"
            raise UserError(f"The reference clip {clip.name} {what}.",
                            fix="Upload a wav, flac or ogg file with 3-20 seconds of the voice speaking clearly.")
    return clips


def speech_result(outcome: dict, sentences: int, took_s: float, cancelled: bool) -> tuple:
    """(status panel, audio) once speech ends; anything but success keeps the previous audio (gr.skip)."""
    err = outcome.get("error")
    if isinstance(err, UserError):
        return message_html(str(err)), gr.skip()
    if err is not None:
        message, fix = unexpected(err, "speak")
        return message_html(f"{message}\n  fix: {fix or 'Try another reference clip, model or text.'}"), gr.skip()
    if cancelled or outcome.get("audio") is None:
        return message_html("Cancelled; the previous audio is kept.", "stopped"), gr.skip()
    return message_html(f"Spoke {plural(sentences, 'sentence')} in {took_s:.0f} s.", "finished"), outcome["audio"]


def _seed(value) -> int | None:
    value = str(value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise UserError(f"Seed {value!r} is not a whole number.", fix="Type a number such as 42, or leave it empty for random.")
    return int(value)


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    loaded = _Loaded()
    ui.jobs.gpu_release_hooks.append(loaded.unload)
    c = _layout(ui)
    _wire_model(ui, tab, c, loaded)
    _wire_speech(ui, c, loaded)


def _model_path(ui: UI, value) -> Path:
    if not value:
        raise UserError("No model chosen.", fix="Export a model on the Export tab, or type a model folder path.")
    return ui.server_path(value)


def _layout(ui: UI) -> SimpleNamespace:
    """The tab's components, laid out, by name for the wiring."""
    models = model_choices(ui)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Model and voice")
            model = gr.Dropdown(models, value=models[0][1] if models else None, allow_custom_value=True, label="Model",
                                info="One of your exported models, or the path of any model folder.", elem_id="sp-model")
            model_info = gr.HTML("", elem_classes="xf-note", elem_id="sp-model-info")
            source = gr.Radio(VOICE_SOURCES, value="Model voice", label="Reference voice", elem_id="sp-source")
            voice = gr.Dropdown([], label="Voice of the model", elem_id="sp-voice")
            clip = gr.Dropdown(dataset_clips(ui), label="Dataset clips", multiselect=True, visible=False, elem_id="sp-clip")
            upload = gr.File(label="Reference clips (wav, 3-20 s each)", file_count="multiple", visible=False, height=110,
                             elem_id="sp-upload")
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Text")
            text = gr.Textbox(lines=5, show_label=False, placeholder="Type what the voice should say.", elem_id="sp-text",
                              max_length=max_chars())
            count = gr.HTML(count_html(0), elem_id="sp-count")
            with gr.Row():
                language = gr.Dropdown([], label="Language", scale=2, elem_id="sp-language")
                seed = gr.Textbox(label="Seed", placeholder="random", scale=1)
            with gr.Accordion("Sampling parameters", open=False):
                with gr.Row():
                    temperature = gr.Slider(0.05, 1.5, 0.75, step=0.05, label="Temperature")
                    speed = gr.Slider(0.5, 2.0, 1.0, step=0.05, label="Speed")
                with gr.Row():
                    top_k = gr.Slider(1, 100, 50, step=1, label="Top k")
                    top_p = gr.Slider(0.05, 1.0, 0.85, step=0.05, label="Top p")
                    penalty = gr.Slider(1.0, 20.0, 10.0, step=0.5, label="Repetition penalty")
            with gr.Row():
                speak = gr.Button("Speak", variant="primary", elem_id="sp-speak", scale=3)
                cancel = gr.Button("Cancel", variant="stop", elem_id="sp-cancel", scale=1, min_width=80)
            status = gr.HTML("", elem_id="sp-status")
            audio = gr.Audio(label="Speech", type="numpy", format="wav", interactive=False, buttons=["download"],
                             elem_id="sp-audio", waveform_options=PLAYER)
    return SimpleNamespace(**{k: v for k, v in locals().items() if k != "ui"})


def _wire_model(ui: UI, tab: gr.Tab, c: SimpleNamespace, loaded: "_Loaded") -> None:
    """Choosing a model fills its voices and languages; opening the tab refreshes the lists and loads it."""
    def on_model(value):
        if not value:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=None), "No model yet: export one first."
        try:
            with ui.jobs.gpu("speak", wait=False), loaded.lock:
                synth = loaded.get(_model_path(ui, value))
        except UserError as err:  # the fields keep the model that works; the line under the model says why not
            return gr.skip(), gr.skip(), message_html(str(err))
        voices, langs = synth.voices(), synth.languages
        # model_card.json says "zh-cn" where the choices say "zh": normalise, or the dropdown refuses its own value
        default_lang = normalize_language(synth.card.get("language") or "") or (langs[0] if langs else None)
        voiced = plural(len(synth.speaker_references), "speaker") if synth.speaker_references \
            else plural(len(synth.references), "reference clip")
        info = f"<b>{synth.name}</b> · {voiced} · " \
               f"{plural(len(langs), 'language')} · {synth.device}"
        return (gr.update(choices=voices, value=voices[0] if voices else None),
                gr.update(choices=_language_choices(langs), value=default_lang), info)

    def on_source(choice):
        return (gr.update(visible=choice == "Model voice"),
                gr.update(visible=choice == "Dataset clip", choices=dataset_clips(ui)),
                gr.update(visible=choice == "Upload"))

    def on_open(current):
        choices = model_choices(ui)
        value = current or (choices[0][1] if choices else None)  # the newest export, if none is chosen
        return gr.update(choices=choices, value=value), gr.update(choices=dataset_clips(ui))

    c.model.change(on_model, [c.model], [c.voice, c.language, c.model_info])
    c.source.change(on_source, [c.source], [c.voice, c.clip, c.upload], show_progress="hidden")
    # Models load when the tab opens, not with the page: a training job may need the GPU memory.
    tab.select(on_open, [c.model], [c.model, c.clip], show_progress="hidden").then(
        on_model, [c.model], [c.voice, c.language, c.model_info])


def _wire_speech(ui: UI, c: SimpleNamespace, loaded: "_Loaded") -> None:
    """Speak in a thread with progress sentence by sentence, Cancel per browser session, the character count."""
    cancels: dict[str, threading.Event] = {}  # per browser session: its Cancel button stops its own speech

    def on_speak(value, choice, voice_name, clips, files, words, lang, seed_value, temp, spd, k, p, rep,
                 request: gr.Request):
        """Reports sentence by sentence; an error or Cancel leaves the last good audio in place."""
        stop = cancels.setdefault(request.session_hash or "", threading.Event())
        stop.clear()
        began, progress, outcome = time.monotonic(), {"done": 0, "total": 0}, {}
        try:
            settings = dict(text=words, language=lang or None, temperature=temp, top_k=int(k), top_p=p,
                            repetition_penalty=rep, speed=spd, seed=_seed(seed_value))
            reference = _reference_of(ui, choice, voice_name, clips, files)
        except UserError as err:
            yield message_html(str(err)), gr.skip()
            return

        def run():
            try:
                outcome["audio"] = _synthesize(ui, loaded, value, reference, settings, progress, stop)
            except Exception as err:  # noqa: BLE001 - reported below, in the page's words
                outcome["error"] = err

        worker = threading.Thread(target=run, name="speak", daemon=True)
        worker.start()
        while worker.is_alive():
            elapsed = time.monotonic() - began
            loading = f"Loading the model and voice... elapsed {elapsed:.0f} s"
            yield message_html(speech_progress(progress["done"], progress["total"], elapsed) if progress["total"]
                               else loading, "running"), gr.skip()
            worker.join(0.5)
        yield speech_result(outcome, progress["total"], time.monotonic() - began, stop.is_set())

    def on_cancel(request: gr.Request):
        cancels.setdefault(request.session_hash or "", threading.Event()).set()

    c.text.change(lambda words: count_html(len(words or "")), [c.text], [c.count], show_progress="hidden",
                  trigger_mode="always_last", queue=False)
    c.speak.click(on_speak, [c.model, c.source, c.voice, c.clip, c.upload, c.text, c.language, c.seed, c.temperature,
                             c.speed, c.top_k, c.top_p, c.penalty], [c.status, c.audio], show_progress="hidden")
    c.cancel.click(on_cancel, None, None, show_progress="hidden")


def _reference_of(ui: UI, choice, voice_name, clips, files):
    """The reference the chosen voice source names: a model voice, dataset clips or checked uploads."""
    if choice == "Dataset clip":
        if not clips:
            raise UserError("No dataset clip chosen.", fix="Pick one or more clips, or another voice source.")
        return [ui.workspace / "dataset" / "wavs" / Path(c).name for c in clips]
    if choice == "Upload":
        reference = copy_uploads(ui, files, "references")
        if not reference:
            raise UserError("No reference clip uploaded.", fix="Upload one or more wav files of the voice.")
        return check_references(reference)
    return voice_name or None


def _synthesize(ui: UI, loaded: "_Loaded", value, reference, settings: dict, progress: dict,
                stop: threading.Event):
    """In a thread of its own, so a closed tab never leaves the GPU held: progress['done'/'total'] as it goes."""
    with ui.jobs.gpu("speak", wait=False), loaded.lock:
        synth = loaded.get(_model_path(ui, value))
        spoken = synth.prepare(**settings, voice=reference)
        progress["total"], first, chunks = len(spoken.sentences), synth.stats.sentences, []
        for chunk in synth.generate(spoken):
            if stop.is_set():
                return None
            chunks.append(chunk)
            progress["done"] = synth.stats.sentences - first
        return synth.sample_rate, np.concatenate(chunks)
