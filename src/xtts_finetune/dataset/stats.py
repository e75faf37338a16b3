"""`dataset stats`: the checks to run before training, so no sample is dropped or spoiled silently.

Durations (with a histogram), speaking rate outliers (usually a wrong transcript), clipping,
near-silent clips, duplicate texts, and every character the base model's tokenizer cannot encode.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xtts_finetune.dataset.manifest import dataset_dir, load_manifest
from xtts_finetune.dataset.verify import cer_histogram
from xtts_finetune.utils import atomic_path, atomic_write_text

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
SILENT_DB = -40.0  # a clip whose RMS is below this is near-silent


@dataclass
class DatasetStats:
    language: str
    clips: int = 0
    train_clips: int = 0
    eval_clips: int = 0
    excluded: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    total_seconds: float = 0.0
    min_seconds: float = 0.0
    mean_seconds: float = 0.0
    max_seconds: float = 0.0
    chars_per_second: float = 0.0  # median
    rate_outliers: list[dict] = field(default_factory=list)  # {id, chars_per_second, text}
    clipping: list[str] = field(default_factory=list)
    near_silent: list[str] = field(default_factory=list)
    missing_audio: list[str] = field(default_factory=list)
    duplicate_texts: list[list[str]] = field(default_factory=list)
    suspects: list[str] = field(default_factory=list)  # clips `dataset verify` marked suspect
    cer_histogram: dict[str, int] = field(default_factory=dict)  # CER bin -> clips (clips verified so far)
    unknown_characters: dict[str, list[dict]] = field(default_factory=dict)  # language -> [{char, codepoint, count, examples}]
    vocab: Optional[str] = None
    vocab_mode: Optional[str] = None  # base | script | phonemes: how the coverage was checked (as `train --vocab`)
    stats_json: str = ""
    histogram_png: str = ""

    def summary(self) -> str:
        lines = [f"{self.clips} clips ({self.train_clips} train, {self.eval_clips} eval), {self.total_seconds / 60:.1f} min; "
                 f"clip length {self.min_seconds:.2f}-{self.max_seconds:.2f} s (mean {self.mean_seconds:.2f}); "
                 f"{self.chars_per_second:.1f} characters/s", f"excluded: {self.excluded}"]
        lines += [f"rejected ({n}): {why}" for why, n in self.rejected.items()]
        lines += [f"speaking rate outlier {o['id']}: {o['chars_per_second']:.1f} chars/s {o['text']!r}" for o in self.rate_outliers]
        lines += [f"clipping: {i}" for i in self.clipping] + [f"near-silent: {i}" for i in self.near_silent]
        lines += [f"missing or unreadable audio: {i} (restore wavs/{i}.wav, or exclude it: dataset edit WORKSPACE {i} --exclude)" for i in self.missing_audio]
        lines += [f"same text: {', '.join(ids)}" for ids in self.duplicate_texts]
        if self.cer_histogram:
            lines.append("CER (dataset verify): " + ", ".join(f"{k}: {n}" for k, n in self.cer_histogram.items()))
        lines += [f"suspect (dataset list --suspect): {i}" for i in self.suspects]
        if self.vocab is None:
            lines.append("tokenizer coverage not checked: give --vocab vocab.json or --base DIR")
        else:
            lines.append(f"tokenizer coverage checked against {self.vocab} assuming `train --vocab {self.vocab_mode}`"
                         + (": extended with the dataset's characters, as training will" if self.vocab_mode == "script"
                            else ""))
        for language, chars in self.unknown_characters.items():
            lines += [f"[{language}] tokenizer cannot encode {c['char']!r} ({c['codepoint']}) x{c['count']}, e.g. {', '.join(c['examples'])}"
                      for c in chars]
        lines += [f"stats: {self.stats_json}", f"histogram: {self.histogram_png}"]
        return "\n".join(lines)


def _rate_outliers(rates: dict[str, float], factor: float = 2.5) -> tuple[float, set[str]]:
    """Median characters/s, and the ids `factor` times faster or slower (usually a wrong transcript)."""
    if not rates:
        return 0.0, set()
    median = float(np.median(list(rates.values())))
    return median, {i for i, r in rates.items() if not median / factor <= r <= median * factor}


def _histogram(durations: list[float], path: Path, max_seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.hist(durations, bins=np.arange(0, max(max_seconds, max(durations, default=1)) + 0.5, 0.5), color="#4a7ab0")
    ax.axvline(max_seconds, color="#b04a4a", linestyle="--", label=f"max {max_seconds} s")
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("clips")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def dataset_stats(workspace: str | Path, vocab_path: Optional[Path] = None, vocab_mode: str = "auto") -> DatasetStats:
    """Check every usable clip; write dataset/stats/stats.json and duration_histogram.png.

    Coverage is that of the vocabulary training will use in `vocab_mode` (auto: as `train` picks it): in script
    mode the base's extended with the dataset's characters, so only what even that cannot read is flagged."""
    import soundfile as sf

    from xtts_finetune.text.coverage import find_unknown_characters
    from xtts_finetune.text.frontends import check_vocab_mode
    from xtts_finetune.text.vocab import vocab_for_mode

    manifest = load_manifest(workspace)
    root = dataset_dir(workspace)
    active = [s for s in manifest.segments if s.active]
    stats = DatasetStats(manifest.language, clips=len(active), excluded=sum(s.excluded for s in manifest.segments))
    stats.rejected = dict(Counter(re.sub(r"\(.*\)|: similarity .*", "", s.rejected).strip() for s in manifest.segments if s.rejected))
    stats.train_clips = sum(s.split == "train" for s in active)
    stats.eval_clips = stats.clips - stats.train_clips
    durations, rates, texts = [], {}, defaultdict(list)
    for seg in active:
        path = root / seg.audio_file
        try:
            audio, rate = sf.read(path, dtype="float32", always_2d=False)
        except (OSError, RuntimeError):  # missing, or not a readable wav (soundfile's errors are both)
            stats.missing_audio.append(seg.id)
            continue
        durations.append(len(audio) / rate)  # the file's own rate: a wav put there by hand may differ
        if np.count_nonzero(np.abs(audio) >= CLIP_LEVEL) >= max(3, 0.0005 * len(audio)):
            stats.clipping.append(seg.id)
        if 10 * np.log10(float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12) < SILENT_DB:
            stats.near_silent.append(seg.id)
        rates[seg.id] = len(re.sub(r"\W", "", seg.text)) / max(durations[-1], 1e-3)
        texts[re.sub(r"[\W_]+", " ", seg.text.lower()).strip()].append(seg.id)
    if durations:
        stats.total_seconds, stats.mean_seconds = float(sum(durations)), float(np.mean(durations))
        stats.min_seconds, stats.max_seconds = float(min(durations)), float(max(durations))
    stats.chars_per_second, outliers = _rate_outliers(rates)
    by_id = {s.id: s for s in active}
    stats.rate_outliers = [{"id": i, "chars_per_second": round(rates[i], 2), "text": by_id[i].text} for i in sorted(outliers)]
    stats.suspects = [s.id for s in active if s.suspect]
    scores = [s.cer for s in manifest.segments if s.cer is not None and not s.rejected]
    stats.cer_histogram = cer_histogram(scores) if scores else {}
    stats.duplicate_texts = [ids for text, ids in texts.items() if len(ids) > 1 and text]
    if vocab_path is not None:
        stats.vocab, stats.vocab_mode = str(vocab_path), check_vocab_mode(vocab_mode, manifest.language, base_for_any_language=True)
        vocab = vocab_for_mode(Path(vocab_path).read_text(encoding="utf-8"), [s.text for s in active],
                               manifest.language, stats.vocab_mode, new_tokens=0)  # coverage: the characters
        unknown = find_unknown_characters(((s.id, s.text) for s in active), vocab, manifest.language,
                                          mode=stats.vocab_mode)
        stats.unknown_characters = {manifest.language: [{**asdict(u), "codepoint": u.codepoint} for u in unknown]}
    out = root / "stats"
    stats.stats_json, stats.histogram_png = str(out / "stats.json"), str(out / "duration_histogram.png")
    _histogram(durations, Path(stats.histogram_png), manifest.settings.get("max_seconds", 11.6))
    atomic_write_text(stats.stats_json, json.dumps(asdict(stats), ensure_ascii=False, indent=1) + "\n")
    return stats
