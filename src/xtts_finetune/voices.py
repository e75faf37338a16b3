"""A loaded model's voices and their conditioning: reference clips, built-in speakers, clips a request brings.

A voice is checked when a request is prepared (a name the model has, or clips that exist) and turned
into XTTS's conditioning (GPT latents, speaker embedding) when it is spoken, through the latents cache.
"""

from __future__ import annotations

from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.latents import Latents, LatentsCache

DEFAULT_VOICE = "default"  # all of an export's reference clips together

Voice = str | tuple[Path, ...]  # a name from `names()`, or reference clips (absolute paths)


class Voices:
    """The voices of one model folder: its references/*.wav and the speakers in its speakers_xtts.pth."""

    def __init__(self, model, model_dir: Path, config, cache: LatentsCache):
        self.model, self.config, self.cache = model, config, cache
        self.references = sorted((model_dir / "references").glob("*.wav"))
        manager = getattr(model, "speaker_manager", None)
        self.speakers: dict = dict(manager.speakers) if manager is not None else {}
        if not self.references and not self.speakers:
            raise UserError(f"{model_dir} has no voice: no references/*.wav and no speakers in speakers_xtts.pth",
                            fix="add reference clips to references/, or pass your own clips")

    def names(self) -> list[str]:
        """Reference voices first ("default" = all clips, then each clip alone), then built-in speakers."""
        names = [DEFAULT_VOICE] if self.references else []
        if len(self.references) > 1:
            names += [clip.stem for clip in self.references if clip.stem != DEFAULT_VOICE]
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
