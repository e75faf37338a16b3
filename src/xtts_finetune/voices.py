"""A loaded model's voices and their conditioning: reference clips, each speaker of an export of several,
built-in speakers, clips a request brings.

A voice is checked when a request is prepared (a name the model has, or clips that exist) and turned
into XTTS's conditioning (GPT latents, speaker embedding) when it is spoken, through the latents cache.

An export of one speaker keeps its clips in references/*.wav (the layout of every earlier version); an
export of several keeps each speaker's in references/FOLDER/*.wav, FOLDER being the name made safe for a
file system, and model_card.json's `speakers` maps each name to its folder. speakers_xtts.pth holds every
speaker's conditioning latents under the name itself, so coqui's own API finds them by name too.
"""

from __future__ import annotations

import re
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.latents import Latents, LatentsCache

DEFAULT_VOICE = "default"  # all of an export's reference clips together

Voice = str | tuple[Path, ...]  # a name from `names()`, or reference clips (absolute paths)


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


class Voices:
    """The voices of one model folder: its references/*.wav, each speaker's references/FOLDER/*.wav (an export
    of several) and the speakers in its speakers_xtts.pth."""

    def __init__(self, model, model_dir: Path, config, cache: LatentsCache, card: dict | None = None):
        self.model, self.config, self.cache = model, config, cache
        self.references = sorted((model_dir / "references").glob("*.wav"))
        self.speaker_references = reference_voices(model_dir, card or {})  # an export of several speakers
        manager = getattr(model, "speaker_manager", None)
        self.speakers: dict = dict(manager.speakers) if manager is not None else {}
        if not self.references and not self.speaker_references and not self.speakers:
            raise UserError(f"{model_dir} has no voice: no references/*.wav and no speakers in speakers_xtts.pth",
                            fix="add reference clips to references/, or pass your own clips")

    def names(self) -> list[str]:
        """Reference voices first ("default" = all clips, then each clip alone; or each speaker of an export of
        several), then built-in speakers."""
        names = [DEFAULT_VOICE] if self.references else []
        if len(self.references) > 1:
            names += [clip.stem for clip in self.references if clip.stem != DEFAULT_VOICE]
        names += [name for name in self.speaker_references if name not in names]
        return names + [name for name in self.speakers if name not in names]

    def check(self, voice: str | list[Path] | None) -> Voice:
        """The voice a request asked for (None: the first), checked; a UserError says what is wrong."""
        if voice is None:
            return self.names()[0]
        if isinstance(voice, str):
            if voice not in self.names():
                raise UserError(f"unknown voice {voice!r}", fix=f"use one of: {', '.join(self.names())}, or give reference clips")
            return voice
        clips = tuple(Path(clip).expanduser().resolve() for clip in voice)  # absolute: never read as an FFmpeg protocol
        missing = [str(clip) for clip in clips if not clip.is_file()]
        if not clips or missing:
            raise UserError(f"reference clips not found: {', '.join(missing) or '(none given)'}",
                            fix="give paths to existing audio files")
        return clips

    def latents(self, voice: Voice) -> tuple[Latents, str]:
        """A checked voice's (GPT conditioning latents, speaker embedding), and where they came from:
        "builtin", "memory", "disk" or "computed". A reference clip that cannot be used fails here."""
        if isinstance(voice, tuple):
            clips = list(voice)
        elif voice == DEFAULT_VOICE and self.references:
            clips = self.references
        elif voice in {c.stem for c in self.references}:
            clips = [c for c in self.references if c.stem == voice]
        elif voice in self.speaker_references:
            clips = self.speaker_references[voice]
        else:  # a built-in speaker: its latents ship with the model
            return (self.speakers[voice]["gpt_cond_latent"], self.speakers[voice]["speaker_embedding"]), "builtin"
        return self.cache.get(clips, self._compute)

    def _compute(self, clips: list[Path]) -> Latents:
        import soundfile

        for clip in clips:
            try:
                soundfile.info(str(clip))
            except Exception as err:
                raise UserError(f"cannot read reference clip {clip}: {err}", fix="give a wav/flac/ogg file") from err
        config = self.config
        try:
            return self.model.get_conditioning_latents(
                audio_path=[str(c) for c in clips], max_ref_length=config.max_ref_len, gpt_cond_len=config.gpt_cond_len,
                gpt_cond_chunk_len=config.gpt_cond_chunk_len, sound_norm_refs=config.sound_norm_refs,
            )
        except RuntimeError as err:
            if "too short" not in str(err):
                raise
            raise UserError(f"reference clips too short: {', '.join(map(str, clips))}",
                            fix="use clips of 3-12 s of clean speech") from err
