"""Speak tab: pick a model and a voice, type text, listen and download."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from xtts_finetune.errors import UserError
from xtts_finetune.languages import XTTS_LANGUAGES, normalize_language
from xtts_finetune.webui.common import PLAYER, UI, copy_uploads, fail

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
            self.synth, self.path = Synthesizer(model_dir), model_dir
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


def _seed(value) -> int | None:
    value = str(value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        fail(UserError(f"Seed {value!r} is not a whole number.", fix="Type a number such as 42, or leave it empty for random."))
    return int(value)


def build(ui: UI, demo: gr.Blocks, tab: gr.Tab) -> None:
    loaded = _Loaded()
    ui.jobs.gpu_release_hooks.append(loaded.unload)
    models = model_choices(ui)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, elem_classes="xf-section"):
            gr.Markdown("### Model and voice")
            model = gr.Dropdown(models, value=models[0][1] if models else None, allow_custom_value=True, label="Model",
                                info="One of your exported models, or the path of any model folder.", elem_id="sp-model")
            source = gr.Radio(VOICE_SOURCES, value="Model voice", label="Reference voice", elem_id="sp-source")
            voice = gr.Dropdown([], label="Voice of the model", elem_id="sp-voice")
            clip = gr.Dropdown(dataset_clips(ui), label="Dataset clips", multiselect=True, visible=False, elem_id="sp-clip")
            upload = gr.File(label="Reference clips (wav, 3-20 s each)", file_count="multiple", visible=False, height=110)
            model_info = gr.Markdown("", elem_classes="xf-note")
        with gr.Column(scale=3, elem_classes="xf-section"):
            gr.Markdown("### Text")
            text = gr.Textbox(lines=5, show_label=False, placeholder="Type what the voice should say.", elem_id="sp-text")
            with gr.Row():
                language = gr.Dropdown([], label="Language", scale=2)
                seed = gr.Textbox(label="Seed", placeholder="random", scale=1)
            with gr.Accordion("Sampling parameters", open=False):
                with gr.Row():
                    temperature = gr.Slider(0.05, 1.5, 0.75, step=0.05, label="Temperature")
                    speed = gr.Slider(0.5, 2.0, 1.0, step=0.05, label="Speed")
                with gr.Row():
                    top_k = gr.Slider(1, 100, 50, step=1, label="Top k")
                    top_p = gr.Slider(0.05, 1.0, 0.85, step=0.05, label="Top p")
                    penalty = gr.Slider(1.0, 20.0, 10.0, step=0.5, label="Repetition penalty")
            speak = gr.Button("Speak", variant="primary", elem_id="sp-speak")
            audio = gr.Audio(label="Speech", type="numpy", format="wav", interactive=False, buttons=["download"],
                             elem_id="sp-audio", waveform_options=PLAYER)

    def model_path(value) -> Path:
        if not value:
            fail(UserError("No model chosen.", fix="Export a model on the Export tab, or type a model folder path."))
        return ui.server_path(value)

    def on_model(value):
        if not value:
            return gr.update(choices=[], value=None), gr.update(choices=[], value=None), "No model yet: export one first."
        try:
            with ui.jobs.gpu("speak", wait=False), loaded.lock:
                synth = loaded.get(model_path(value))
        except UserError as err:
            fail(err)
        voices, langs = synth.voices(), synth.languages
        # model_card.json says "zh-cn" where the choices say "zh": normalise, or the dropdown refuses its own value
        default_lang = normalize_language(synth.card.get("language") or "") or (langs[0] if langs else None)
        info = f"**{synth.name}** · {len(synth.references)} reference clip(s) · {len(langs)} language(s) · {synth.device}"
        return (gr.update(choices=voices, value=voices[0] if voices else None),
                gr.update(choices=_language_choices(langs), value=default_lang), info)

    def on_source(choice):
        return (gr.update(visible=choice == "Model voice"),
                gr.update(visible=choice == "Dataset clip", choices=dataset_clips(ui)),
                gr.update(visible=choice == "Upload"))

    def on_speak(value, choice, voice_name, clips, files, words, lang, seed_value, temp, spd, k, p, rep):
        if choice == "Dataset clip":
            if not clips:
                fail(UserError("No dataset clip chosen.", fix="Pick one or more clips, or another voice source."))
            reference = [ui.workspace / "dataset" / "wavs" / Path(c).name for c in clips]
        elif choice == "Upload":
            reference = copy_uploads(ui, files, "references")
            if not reference:
                fail(UserError("No reference clip uploaded.", fix="Upload one or more wav files of the voice."))
        else:
            reference = voice_name or None
        try:
            with ui.jobs.gpu("speak", wait=False), loaded.lock:
                synth = loaded.get(model_path(value))
                wav = synth.speak(words, lang or None, reference, temperature=temp, top_k=int(k), top_p=p,
                                  repetition_penalty=rep, speed=spd, seed=_seed(seed_value))
        except UserError as err:
            fail(err)
        return synth.sample_rate, wav

    model.change(on_model, [model], [voice, language, model_info])
    source.change(on_source, [source], [voice, clip, upload], show_progress="hidden")
    speak.click(on_speak, [model, source, voice, clip, upload, text, language, seed, temperature, speed, top_k, top_p, penalty],
                [audio])

    def on_open(current):
        choices = model_choices(ui)
        value = current or (choices[0][1] if choices else None)  # the newest export, if none is chosen
        return gr.update(choices=choices, value=value), gr.update(choices=dataset_clips(ui))

    # Models load when the tab opens, not with the page: a training job may need the GPU memory.
    tab.select(on_open, [model], [model, clip], show_progress="hidden").then(on_model, [model], [voice, language, model_info])
