"""The dataset on disk: `dataset.json` is the record, the Coqui CSVs are derived from it.

Every source is known by its content hash (media and subtitles together) and every segment by an
id built from the shortest prefix of that hash no other source shares and its start time, so ids
never collide, re-running on the same files finds nothing new, and a segment's train/eval split,
a stable function of its id, never changes as data is added.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from xtts_finetune.errors import UserError
from xtts_finetune.dataset.voices import VOICES_FILE, VoiceMap
from xtts_finetune.locks import exclusive
from xtts_finetune.utils import atomic_write_text, sweep_partial_writes

MANIFEST_VERSION = 1
CSV_HEADER = "audio_file|text|speaker_name"


@dataclass
class Source:
    hash: str  # sha256 of the media file's bytes, combined with its subtitle file's when it has one
    path: str
    kind: str  # "asr", "subtitles", "corpus" or "url"
    duration: float = 0.0
    subtitles: Optional[str] = None
    url: Optional[str] = None
    added: str = ""
    media_hash: str = ""  # sha256 of the media file alone (older manifests: empty, `hash` is the media's)
    dropped: list[str] = field(default_factory=list)  # what was left out of it and why (cues, audio outside every cue)
    notes: list[str] = field(default_factory=list)  # how it was read: encoding, gain
    speaker: str = ""  # the name its clips were given (`--speaker`); older manifests: empty, see its segments


@dataclass
class Segment:
    id: str
    source: str  # Source.hash
    start: float
    end: float
    text: str
    split: str = "train"
    speaker: str = "speaker"
    excluded: bool = False
    rejected: Optional[str] = None  # why it cannot be trained on (no wav is written, but for another voice's clips)
    edited: bool = False
    cer: Optional[float] = None  # character error rate of Whisper's hearing against the text (`dataset verify`)
    suspect: Optional[str] = None  # why the audio may not hold exactly its text; None when it passed or was not checked
    similarity: Optional[float] = None  # speaker similarity to the wanted voice (--speaker-reference, --main-speaker)
    snr: Optional[float] = None  # estimated signal-to-noise ratio, dB (dataset/quality.py)
    clipped: Optional[int] = None  # samples clipped at full scale
    lufs: Optional[float] = None  # integrated loudness
    quality: Optional[str] = None  # music or heavy noise under the speech; None when clean or not measured

    @property
    def audio_file(self) -> str:
        return f"wavs/{self.id}.wav"

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def active(self) -> bool:
        return not self.excluded and not self.rejected


@dataclass
class Manifest:
    language: str
    speaker: str = "speaker"  # the name of the first `dataset create` run; each source and segment has its own
    settings: dict = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # source or row -> why it is not in the dataset
    version: int = MANIFEST_VERSION

    def source_hashes(self) -> set[str]:
        return {s.hash for s in self.sources}

    def speakers(self) -> dict[str, list[Segment]]:
        """The usable clips of each speaker, in the order the speakers were first added."""
        voices: dict[str, list[Segment]] = {}
        for seg in self.segments:
            if seg.active:
                voices.setdefault(seg.speaker, []).append(seg)
        return voices

    def segment(self, segment_id: str) -> Segment:
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise UserError(f"no segment {segment_id!r} in this dataset.", fix="see `xtts-finetune dataset list WORKSPACE`")


def dataset_dir(workspace: str | Path) -> Path:
    return Path(workspace) / "dataset"


def clean_speaker_name(name: str) -> str:
    """A speaker name as the CSVs can hold it: one line, no `|`, single spaces."""
    return " ".join(str(name).replace("|", " ").split())


def segment_id(prefix: str, start: float) -> str:
    return f"{prefix}_{round(start * 1000)}"


def unique_prefix(source_hash: str, others: set[str]) -> str:
    """The shortest prefix (8 hex digits or more) of `source_hash` that starts none of `others`.

    Ids of different lengths can never be equal (the `_` falls at a different place), so a source
    added later with a longer prefix cannot collide with the ids already written.
    """
    n = 8
    while any(h != source_hash and h.startswith(source_hash[:n]) for h in others):
        n += 1
    return source_hash[:n]


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12


def assign_split(seg_id: str, eval_fraction: float) -> str:
    """train or eval, from the id alone: adding data never moves an existing clip."""
    return "eval" if _unit_hash(seg_id) < eval_fraction else "train"


MIN_TRAINING_CLIPS = 2  # training needs a clip in each split: one to learn from, one to measure the eval loss on


def ensure_eval(manifest: Manifest) -> None:
    """Coqui's trainer needs an eval clip: if hashing put none there, move the smallest-hash one."""
    active = [s for s in manifest.segments if s.active]
    if len(active) >= MIN_TRAINING_CLIPS and not any(s.split == "eval" for s in active):
        min(active, key=lambda s: _unit_hash(s.id)).split = "eval"


def _known(cls, data: dict):
    """Build `cls` from the keys it knows, so a manifest written by a newer version still loads."""
    return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


def load_manifest(workspace: str | Path) -> Manifest:
    path = dataset_dir(workspace) / "dataset.json"
    if not path.is_file():
        raise UserError(f"{workspace}: no dataset yet ({path} is missing).",
                        fix="create one with `xtts-finetune dataset create WORKSPACE --language LANG --audio FILES`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(
            language=data["language"], speaker=data.get("speaker", "speaker"), settings=data.get("settings", {}),
            sources=[_known(Source, s) for s in data.get("sources", [])],
            segments=[_known(Segment, s) for s in data.get("segments", [])], failed=data.get("failed", {}),
            version=data.get("version", 1),
        )
        manifest._loaded = _keys(manifest)  # what was on disk, so a save can tell others' additions apart
        return manifest
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: unreadable manifest ({err}).", fix="restore it or delete the dataset folder and run `dataset create` again") from None


def _keys(manifest: Manifest) -> tuple[set[str], set[str]]:
    return manifest.source_hashes(), {s.id for s in manifest.segments}


def _merge_others(workspace: str | Path, manifest: Manifest) -> None:
    """Add the sources and segments another process saved since `manifest` was loaded (CLI and UI at once)."""
    if not (dataset_dir(workspace) / "dataset.json").is_file():
        return
    disk = load_manifest(workspace)
    seen_sources, seen_segments = getattr(manifest, "_loaded", (set(), set()))
    mine_sources, mine_segments = _keys(manifest)
    manifest.sources += [s for s in disk.sources if s.hash not in mine_sources | seen_sources]
    manifest.segments += [s for s in disk.segments if s.id not in mine_segments | seen_segments]


def save_manifest(workspace: str | Path, manifest: Manifest) -> None:
    """Write the CSVs, lang.txt, then dataset.json, each atomically (the manifest last: it is the record).

    Under the dataset's lock, and merged with what another writer added meanwhile, so nothing is lost.
    """
    root = dataset_dir(workspace)
    with exclusive(root / ".dataset.lock", f"the dataset in {workspace}", timeout=120):
        _merge_others(workspace, manifest)
        sweep_partial_writes(root / "wavs")  # clips a killed run was writing: their sources are done again
        _write(root, manifest)
        manifest._loaded = _keys(manifest)


def _write(root: Path, manifest: Manifest) -> None:
    ensure_eval(manifest)
    for split in ("train", "eval"):
        rows = [(s.audio_file, s.text, s.speaker) for s in manifest.segments if s.active and s.split == split]
        atomic_write_text(root / f"metadata_{split}.csv", _csv_text(rows))
    atomic_write_text(root / "lang.txt", manifest.language + "\n")
    data = asdict(manifest)
    atomic_write_text(root / "dataset.json", json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def _csv_text(rows: list[tuple[str, str, str]]) -> str:
    """Quoted the way coqui's csv reader unquotes: a text opening with `"` would otherwise swallow the rows after it."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="|", lineterminator="\n")
    writer.writerow(CSV_HEADER.split("|"))
    writer.writerows(rows)
    return out.getvalue()


def list_segments(workspace: str | Path) -> list[Segment]:
    return load_manifest(workspace).segments


def clean_edit_text(text: str) -> str:
    """A corrected transcript as typed: one line, no CSV delimiter; otherwise left as the user wrote it."""
    return " ".join(text.replace("|", " ").split())


def edit_segment(workspace: str | Path, segment_id: str, *, text: Optional[str] = None,
                 excluded: Optional[bool] = None) -> Segment:
    """Correct a transcript or exclude/include a clip; kept by later incremental runs."""
    manifest = load_manifest(workspace)
    seg = manifest.segment(segment_id)
    if text is not None:
        cleaned = clean_edit_text(text)
        if not cleaned:
            raise UserError(f"segment {segment_id}: the new text is empty.", fix="give the words spoken in the clip, or exclude it")
        seg.text, seg.edited = cleaned, True
        seg.cer = seg.suspect = None  # the check was of the old text
    if excluded is not None:
        if not excluded and seg.rejected:
            raise UserError(f"segment {segment_id} was rejected ({seg.rejected}) and has no audio clip.",
                            fix="it cannot be included; fix the source or the settings and create the dataset again")
        seg.excluded, seg.edited = excluded, True
    save_manifest(workspace, manifest)
    return seg


def find_source(manifest: Manifest, which: str) -> Source:
    """A source by its media or subtitle path (as given or resolved) or a prefix of its hash (8 digits or more)."""
    resolved = str(Path(which).expanduser().resolve())
    found = [s for s in manifest.sources
             if which in (s.path, s.subtitles, s.url) or resolved in (s.path, s.subtitles)
             or (len(which) >= 8 and s.hash.startswith(which.lower()))]
    if len(found) != 1:
        known = ", ".join(f"{s.hash[:8]} {s.path}" for s in manifest.sources[:5]) or "none"
        raise UserError(f"{'no source' if not found else f'{len(found)} sources'} match {which!r} (sources: {known}...).",
                        fix="give the media file's path, or the first 8+ characters of its hash from `dataset list`")
    return found[0]


def remove_source(workspace: str | Path, which: str) -> tuple[Source, int]:
    """Drop a source, its segments and their wavs, so it can be added again (e.g. with fixed subtitles)."""
    manifest = load_manifest(workspace)
    source = find_source(manifest, which)
    mine = [seg for seg in manifest.segments if seg.source == source.hash]
    manifest.sources.remove(source)
    manifest.segments = [seg for seg in manifest.segments if seg.source != source.hash]
    save_manifest(workspace, manifest)  # the record first: a wav left by an interruption is harmless, a missing one is not
    for seg in mine:
        (dataset_dir(workspace) / seg.audio_file).unlink(missing_ok=True)
    return source, len(mine)


def exclude_suspects(workspace: str | Path) -> list[str]:
    """Exclude, in one step, every usable clip `dataset verify` marked suspect; returns their ids."""
    manifest = load_manifest(workspace)
    ids = [seg.id for seg in manifest.segments if seg.suspect and seg.active]
    for seg in manifest.segments:
        if seg.id in ids:
            seg.excluded, seg.edited = True, True
    save_manifest(workspace, manifest)
    return ids


def rename_speaker(workspace: str | Path, old: str, new: str) -> int:
    """Give every clip and source of speaker `old` the name `new` (an existing name merges the two voices);
    returns how many clips were renamed."""
    manifest, new = load_manifest(workspace), clean_speaker_name(new)
    if not new:
        raise UserError("the new speaker name is empty.", fix="give a name, e.g. `dataset rename-speaker WS speaker_1 Anna`")
    names = {seg.speaker for seg in manifest.segments}
    if old not in names:
        raise UserError(f"no speaker {old!r} in the dataset of {workspace} (speakers: {', '.join(sorted(names)) or 'none'}).",
                        fix="give one of those names exactly as listed (`dataset list` shows them)")
    mine = [seg for seg in manifest.segments if seg.speaker == old]
    for seg in mine:
        seg.speaker = new
    for source in manifest.sources:
        source.speaker = new if source.speaker == old else source.speaker
    manifest.speaker = new if manifest.speaker == old else manifest.speaker
    save_manifest(workspace, manifest)
    voices = VoiceMap.load(dataset_dir(workspace) / VOICES_FILE)
    if voices.rename(old, new):  # the voices --diarize named: later runs use the new name
        voices.save(dataset_dir(workspace) / VOICES_FILE)
    return len(mine)
