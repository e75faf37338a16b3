"""Existing corpora imported as they are: LJSpeech folders and Coqui-format CSVs.

Their clips are already cut and transcribed, so each row becomes one segment (re-encoded to the
dataset format); rows whose audio is missing are reported, not dropped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xtts_finetune.errors import UserError


@dataclass
class CorpusRow:
    audio: Path
    text: str
    speaker: Optional[str] = None
    line: str = ""  # "file:line", for error messages


def _read_rows(csv_path: Path) -> list[tuple[int, list[str]]]:
    try:
        lines = csv_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{csv_path}: cannot read ({err}).", fix="save the file as UTF-8") from None
    return [(n, line.split("|")) for n, line in enumerate(lines, 1) if line.strip()]


def _unquote(cols: list[str]) -> list[str]:
    """A row's fields as coqui's csv reader sees them ("" quoting undone), unless a stray quote would merge columns."""
    fields = next(csv.reader(["|".join(cols)], delimiter="|"))
    return cols if any("|" in f for f in fields) else fields


def read_coqui_csv(csv_path: Path) -> list[CorpusRow]:
    """`audio_file|text|speaker_name` with a header; audio paths relative to the CSV's folder."""
    rows = [(n, _unquote(cols)) for n, cols in _read_rows(csv_path)]
    if rows and rows[0][1][0].strip() == "audio_file":
        rows = rows[1:]
    out = []
    for n, cols in rows:
        if len(cols) < 2:
            raise UserError(f"{csv_path}:{n}: expected `audio_file|text|speaker_name`.", fix="separate the columns with |")
        out.append(CorpusRow(csv_path.parent / cols[0].strip(), cols[1], cols[2].strip() if len(cols) > 2 else None, f"{csv_path}:{n}"))
    return out


def read_ljspeech(folder: Path) -> list[CorpusRow]:
    """`metadata.csv` rows `id|text[|normalized text]` with audio in `wavs/<id>.wav`, LJSpeech's layout."""
    csv_path = folder / "metadata.csv"
    out = []
    for n, cols in _read_rows(csv_path):
        text = cols[2] if len(cols) > 2 and cols[2].strip() else (cols[1] if len(cols) > 1 else "")
        out.append(CorpusRow(folder / "wavs" / f"{cols[0].strip()}.wav", text, None, f"{csv_path}:{n}"))
    return out


def read_corpus(path: str | Path) -> list[CorpusRow]:
    """Rows of an LJSpeech folder, a Coqui dataset folder (metadata_train/eval.csv) or one Coqui CSV."""
    path = Path(path)
    if path.is_file():
        return read_coqui_csv(path)
    if (path / "metadata.csv").is_file() and (path / "wavs").is_dir():
        return read_ljspeech(path)
    csvs = [path / name for name in ("metadata_train.csv", "metadata_eval.csv") if (path / name).is_file()]
    if csvs:
        return [row for csv_path in csvs for row in read_coqui_csv(csv_path)]
    raise UserError(f"{path}: not a corpus this tool knows.",
                    fix="use an LJSpeech folder (wavs/ + metadata.csv with id|text) or a Coqui CSV (audio_file|text|speaker_name)")
