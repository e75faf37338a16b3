"""An evaluation on disk and on screen: evaluation.json, a text table, a PNG chart, the model card entry."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.evaluate.scoring import ModelScore, Output
from xtts_finetune.utils import atomic_path, atomic_write_text

FOLDER = "evaluation"  # inside the export or the run (export.EVALUATION_JSON reads a run's)
RECOMMENDATION_RULE = ("the highest speaker similarity among the checkpoints whose CER is within {margin:.0%} "
                       "(absolute) of the lowest; ties go to fewer trailing-babble outputs, then to the earlier step")


@dataclass
class Evaluation:
    target: str
    kind: str  # model | run
    language: str
    whisper_model: str
    speaker_model: str
    created: str
    sentences: list[dict]
    models: list[ModelScore]
    recommended: str | None = None  # a run's checkpoint, by RECOMMENDATION_RULE
    rule: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["models"] = {m.label: asdict(m) for m in self.models}
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Evaluation":
        models = [ModelScore(**{**m, "outputs": [Output(**o) for o in m["outputs"]]}) for m in data["models"].values()]
        return cls(**{**data, "models": models})


def read_evaluation(folder: Path) -> Evaluation | None:
    """The evaluation of an export or run folder, or None when it has not been evaluated."""
    path = Path(folder) / FOLDER / "evaluation.json"
    if not path.is_file():
        return None
    try:
        return Evaluation.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{path} cannot be read: {err}", fix="evaluate again: xtts-finetune evaluate FOLDER") from err


def _percent(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1%}"


def table_rows(evaluation: Evaluation) -> list[list]:
    rows = []
    for m in evaluation.models:
        mark = " *" if m.label == evaluation.recommended else ""
        rows.append([m.label + mark, _percent(m.cer), _percent(m.wer), f"{m.similarity:.3f}", f"{m.pace:.2f}",
                     _percent(m.babble_share)])
    return rows


TABLE_HEADERS = ["model", "CER", "WER", "similarity", "pace", "babble"]


def format_table(evaluation: Evaluation) -> str:
    rows = [TABLE_HEADERS, *table_rows(evaluation)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(TABLE_HEADERS))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    if evaluation.recommended:
        lines.append(f"* recommended: {evaluation.rule}")
    lines += [f"note: {note}" for note in evaluation.notes]
    return "\n".join(lines)


def write_chart(evaluation: Evaluation, path: Path) -> Path:
    """CER and similarity per model, side by side; the recommended checkpoint in a second colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [m.label for m in evaluation.models]
    colours = ["#f59e0b" if m.label == evaluation.recommended else "#94a3b8" if m.kind in ("base", "real")
               else "#6366f1" for m in evaluation.models]
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.2 * len(labels) + 2), 3.4))
    for ax, key, title in ((axes[0], "cer", "CER (lower is better)"), (axes[1], "similarity", "speaker similarity")):
        ax.bar(range(len(labels)), [getattr(m, key) for m in evaluation.models], color=colours)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def card_entry(evaluation: Evaluation) -> dict:
    """The model card's summary: the numbers per model, where the details are, what produced them."""
    return {
        "file": f"{FOLDER}/evaluation.json",
        "created": evaluation.created,
        "whisper_model": evaluation.whisper_model,
        "speaker_model": evaluation.speaker_model,
        "sentences": len(evaluation.sentences),
        "notes": evaluation.notes,
        "models": {m.label: {k: v for k, v in m.summary().items() if k not in ("label", "path", "outputs")}
                   for m in evaluation.models},
    }


def write_card_entry(model_dir: Path, evaluation: Evaluation) -> None:
    path = Path(model_dir) / "model_card.json"
    if not path.is_file():
        return  # a base release has no card
    card = json.loads(path.read_text(encoding="utf-8"))
    card["evaluation"] = card_entry(evaluation)
    atomic_write_text(path, json.dumps(card, indent=2, ensure_ascii=False))


def write_files(folder: Path, evaluation: Evaluation) -> None:
    """evaluation.json, table.txt and evaluation.png into `folder`."""
    atomic_write_text(folder / "evaluation.json", json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False))
    atomic_write_text(folder / "table.txt", format_table(evaluation) + "\n")
    write_chart(evaluation, folder / "evaluation.png")
