"""The Dataset tab's Speakers panel: the voices the dataset holds (one model learns them all) and renaming one.

Apart from tab_dataset.py so the panel can grow (e.g. diarized `speaker_N` names) without touching the tab.
"""

from __future__ import annotations

import gradio as gr

from xtts_finetune.errors import UserError
from xtts_finetune.webui.common import UI, fail
from xtts_finetune.webui.messages import duration_text, plural


def speaker_choices(ui: UI) -> list[tuple[str, str]]:
    """(label with clip count and duration, name) for each speaker with usable clips."""
    if not (ui.workspace / "dataset" / "dataset.json").is_file():
        return []
    from xtts_finetune.dataset import load_manifest

    try:
        voices = load_manifest(ui.workspace).speakers()
    except UserError:
        return []
    return [(f"{name} · {plural(len(segs), 'clip')}, {duration_text(sum(s.duration for s in segs))}", name)
            for name, segs in voices.items()]


def speakers_panel(ui: UI) -> dict:
    """Laid out where it is called: a speaker picker, a new name and the Rename button."""
    with gr.Accordion("Speakers", open=False):
        gr.Markdown("Each speaker name becomes a voice of the trained model (give each recording's speaker with "
                    "*Speaker name* above). Renaming to a name that exists merges the two.", elem_classes="xf-note")
        with gr.Row():
            speaker_pick = gr.Dropdown(speaker_choices(ui), label="Speaker", scale=2, elem_id="ds-speaker-pick")
            speaker_new = gr.Textbox(label="New name", scale=2, elem_id="ds-speaker-new")
            speaker_rename = gr.Button("Rename", size="sm", scale=1, elem_id="ds-speaker-rename")
    return {"speaker_pick": speaker_pick, "speaker_new": speaker_new, "speaker_rename": speaker_rename}


def wire_speakers(ui: UI, pick: gr.Dropdown, new: gr.Textbox, rename: gr.Button) -> None:
    """Rename the picked speaker; the list refreshes each time it is opened (datasets grow in jobs)."""

    def on_rename(old, name):
        from xtts_finetune.dataset import rename_speaker

        if not old:
            fail(UserError("No speaker selected.", fix="Choose a speaker in the list first."))
        try:
            n = rename_speaker(ui.workspace, old, name or "")
        except UserError as err:
            fail(err)
        gr.Info(f"Renamed {plural(n, 'clip')} of {old} to {name.strip()}.")
        return gr.update(choices=speaker_choices(ui), value=None), ""

    pick.focus(lambda: gr.update(choices=speaker_choices(ui)), None, [pick], show_progress="hidden")
    rename.click(on_rename, [pick, new], [pick, new])
