"""Existing corpora imported as they are: LJSpeech folders and Coqui-format CSVs.

Their clips are already cut and transcribed, so each row becomes one segment (re-encoded to the
dataset format). Columns are found by their header names, as coqui's own `coqui` formatter does;
every row that cannot be used is reported with its line number, never dropped silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xtts_finetune.errors import UserError
from xtts_finetune.utils import read_text_any

AUDIO_COLUMNS = ("audio_file", "wav_filename", "audio", "file", "filename", "path", "wav", "id")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text")
SPEAKER_COLUMNS = ("speaker_name", "speaker", "speaker_id")
# LJSpeech's metadata.csv is `id|transcription|normalized transcription`: the third column spells out
# numbers, units and abbreviations as the reader said them ("in 1884" -> "in eighteen eighty-four"),
# so it is what the audio holds; the second is used when a row has no third.
LJSPEECH_TEXT_NOTE = "metadata.csv: text from column 3 (the normalized transcription, numbers and abbreviations spelled out as read)"


@dataclass
class CorpusRow:
    audio: Path
    text: str
    speaker: Optional[str] = None
    line: str = ""  # "file:line", for error messages


@dataclass
class Corpus:
    rows: list[CorpusRow]
    problems: list[tuple[str, str]] = field(default_factory=list)  # ("file:line", why), one per row left out
    notes: list[str] = field(default_factory=list)  # how the file was read (encoding, columns)
    language: Optional[str] = None  # the dataset's: its legacy code pages are tried first


def _read_rows(csv_path: Path, corpus: Corpus) -> list[tuple[int, list[str]]]:
    try:
        text, encoding = read_text_any(csv_path, corpus.language)
    except OSError as err:
        raise UserError(f"{csv_path}: cannot read ({err}).", fix="check the file") from None
    if not encoding.startswith("utf"):
        corpus.notes.append(f"{csv_path.name}: read as {encoding}")
    return [(n, _unquote(line.split("|"))) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _unquote(cols: list[str]) -> list[str]:
    """A row's fields as coqui's csv reader sees them ("" quoting undone), unless a stray quote would merge columns."""
    fields = next(csv.reader(["|".join(cols)], delimiter="|"))
    return cols if any("|" in f for f in fields) else fields


def _column(header: list[str], names: tuple[str, ...]) -> Optional[int]:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def read_coqui_csv(csv_path: Path, corpus: Optional[Corpus] = None, language: Optional[str] = None) -> Corpus:
    """A Coqui CSV: columns by header name (audio_file, text, speaker_name; others ignored), audio
    paths relative to the CSV's folder. Without a header, `audio_file|text[|speaker_name]` by position."""
    corpus = corpus if corpus is not None else Corpus([], language=language)
    rows = _read_rows(csv_path, corpus)
    audio, text, speaker = 0, 1, 2
    if rows and _column(rows[0][1], AUDIO_COLUMNS) is not None and _column(rows[0][1], TEXT_COLUMNS) is not None:
        header = rows.pop(0)[1]
        audio, text, speaker = _column(header, AUDIO_COLUMNS), _column(header, TEXT_COLUMNS), _column(header, SPEAKER_COLUMNS)
    elif rows and len(rows[0][1]) > 3:
        raise UserError(f"{csv_path}: {len(rows[0][1])} columns and no header row naming them.",
                        fix="add a header row such as audio_file|text|speaker_name (other columns are ignored)")
    for n, cols in rows:
        where = f"{csv_path}:{n}"
        if len(cols) <= max(audio, text):
            corpus.problems.append((where, f"{len(cols)} column(s), expected at least {max(audio, text) + 1} (separate them with |)"))
        elif not cols[text].strip():
            corpus.problems.append((where, "no text"))
        else:
            who = cols[speaker].strip() if speaker is not None and speaker < len(cols) else None
            corpus.rows.append(CorpusRow(csv_path.parent / cols[audio].strip(), cols[text], who or None, where))
    return corpus


def read_ljspeech(folder: Path, language: Optional[str] = None) -> Corpus:
    """`metadata.csv` rows `id|text|normalized text` with audio in `wavs/<id>.wav`, LJSpeech's layout."""
    csv_path = folder / "metadata.csv"
    corpus = Corpus([], notes=[LJSPEECH_TEXT_NOTE], language=language)
    rows = _read_rows(csv_path, corpus)
    if rows and rows[0][1][0].strip().lower() in AUDIO_COLUMNS:
        rows = rows[1:]  # a header row
    for n, cols in rows:
        text = cols[2] if len(cols) > 2 and cols[2].strip() else (cols[1] if len(cols) > 1 else "")
        if not text.strip():
            corpus.problems.append((f"{csv_path}:{n}", "no text"))
        else:
            corpus.rows.append(CorpusRow(folder / "wavs" / f"{cols[0].strip()}.wav", text, None, f"{csv_path}:{n}"))
    return corpus


def read_corpus(path: str | Path, language: Optional[str] = None) -> Corpus:
    """Rows of an LJSpeech folder, a Coqui dataset folder (metadata_train/eval.csv) or one Coqui CSV."""
    path = Path(path)
    if path.is_file():
        return read_coqui_csv(path, language=language)
    if (path / "metadata.csv").is_file() and (path / "wavs").is_dir():
        return read_ljspeech(path, language)
    csvs = [path / name for name in ("metadata_train.csv", "metadata_eval.csv") if (path / name).is_file()]
    if csvs:
        corpus = Corpus([], language=language)
        for csv_path in csvs:
            read_coqui_csv(csv_path, corpus)
        return corpus
    raise UserError(f"{path}: not a corpus this tool knows.",
                    fix="use an LJSpeech folder (wavs/ + metadata.csv with id|text) or a Coqui CSV (audio_file|text|speaker_name)")
