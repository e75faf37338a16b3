"""The named voices of a model folder: where an export of several speakers keeps each one's reference clips.

An export of one speaker keeps its clips in references/*.wav (the layout of every earlier version); an
export of several keeps each speaker's in references/FOLDER/*.wav, FOLDER being the name made safe for a
file system, and model_card.json's `speakers` maps each name to its folder. speakers_xtts.pth holds every
speaker's conditioning latents under the name itself, so coqui's own API finds them by name too.
"""

from __future__ import annotations

import re
from pathlib import Path


def speaker_folder(name: str, taken: set[str]) -> str:
    """A folder name for speaker `name`: letters, digits, `-`, `_`, `.`; unique among `taken` (added to it)."""
    base = re.sub(r"[^\w.-]+", "_", name).strip("._") or "speaker"
    folder, n = base, 1
    while folder.lower() in taken:  # case-insensitive file systems (Windows, macOS) would merge Anna and anna
        n += 1
        folder = f"{base}-{n}"
    taken.add(folder.lower())
    return folder


def reference_voices(model_dir: Path, card: dict) -> dict[str, list[Path]]:
    """{speaker name: its reference clips} of an export of several speakers, in the card's order (folders the
    card does not name, e.g. added by hand, after it, under their folder's name); empty for other layouts."""
    root = Path(model_dir) / "references"
    if not root.is_dir():
        return {}
    named = {s["folder"]: s["name"] for s in card.get("speakers") or [] if isinstance(s, dict) and s.get("folder")}
    order = list(named)
    folders = sorted((p for p in root.iterdir() if p.is_dir()),
                     key=lambda p: (order.index(p.name) if p.name in named else len(order), p.name))
    voices = {}
    for folder in folders:
        clips = sorted(folder.glob("*.wav"))
        if clips:
            voices[named.get(folder.name, folder.name)] = clips
    return voices
