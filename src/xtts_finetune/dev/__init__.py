"""Developer tools: tiny random models for offline tests and smoke tests of an install."""

from __future__ import annotations

from pathlib import Path


def make_tiny_models(out_dir: str | Path) -> dict[str, Path]:
    """Write `out_dir/xtts/` (tiny XTTS v2), `out_dir/whisper/` (tiny CTranslate2 Whisper) and
    `out_dir/speaker/` (tiny WavLM speaker-verification model)."""
    from xtts_finetune.dev.tiny_speaker import make_tiny_speaker
    from xtts_finetune.dev.tiny_whisper import make_tiny_whisper
    from xtts_finetune.dev.tiny_xtts import make_tiny_xtts

    out = Path(out_dir)
    return {"xtts": make_tiny_xtts(out / "xtts"), "whisper": make_tiny_whisper(out / "whisper"),
            "speaker": make_tiny_speaker(out / "speaker")}
