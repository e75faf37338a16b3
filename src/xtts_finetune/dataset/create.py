"""`create_dataset`: recordings, subtitles, corpora and URLs in; a validated Coqui dataset out.

Each source is one unit of work: it is decoded, cut into clips and recorded in the manifest
before the next begins, so an interrupted run resumes where it stopped and a bad file costs only
itself. Sources already in the manifest (same content hash) are skipped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from xtts_finetune.dataset.corpus import CorpusRow, read_corpus
from xtts_finetune.dataset.manifest import (
    Manifest, Segment, Source, assign_split, dataset_dir, load_manifest, save_manifest, segment_id,
)
from xtts_finetune.dataset.media import check_media_file, collect_media, decode_audio, resample, write_wav
from xtts_finetune.dataset.segment import Clip, Span, plan_clips
from xtts_finetune.dataset.slicer import iter_pieces
from xtts_finetune.dataset.subtitles import SUBTITLE_EXTENSIONS, cue_words, parse_subtitles
from xtts_finetune.errors import UserError
from xtts_finetune.languages import XTTS_LANGUAGES, normalize_language
from xtts_finetune.progress import report
from xtts_finetune.text.normalize import normalize_transcript
from xtts_finetune.utils import file_sha256

WHISPER_RATE = 16000


@dataclass
class DatasetSettings:
    min_seconds: float = 0.5  # XTTS training refuses shorter clips (train/preflight.py would stop the run)
    max_seconds: float = 11.6  # XTTS training drops longer clips (max_wav_length 255995 samples at 22.05 kHz)
    eval_fraction: float = 0.15
    loudness_normalize: bool = False
    sample_rate: int = 22050
    pad_seconds: float = 0.025  # silence kept before and after the words of a clip
    merge_below_seconds: float = 1.0  # sentences shorter than this join a neighbour
    piece_seconds: float = 600.0  # long recordings are transcribed in pieces this long, cut at silences
    vad: bool = True

    def check(self) -> None:
        if not 0 < self.min_seconds < self.max_seconds:
            raise UserError(f"min_seconds {self.min_seconds} must be above 0 and below max_seconds {self.max_seconds}.",
                            fix="e.g. --min-seconds 0.33 --max-seconds 11.6")
        if not 0 < self.eval_fraction < 1:
            raise UserError(f"eval_fraction {self.eval_fraction} must be between 0 and 1.", fix="e.g. --eval-fraction 0.15")


@dataclass
class DatasetReport:
    added: list[str] = field(default_factory=list)  # ids of new usable segments
    skipped: list[str] = field(default_factory=list)  # sources already in the dataset (same content)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (segment id, reason)
    ignored: list[str] = field(default_factory=list)  # files in given folders that are not media
    warnings: list[str] = field(default_factory=list)
    total_segments: int = 0
    train_segments: int = 0
    eval_segments: int = 0
    total_seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"added {len(self.added)} clips; dataset now {self.total_segments} clips "
                 f"({self.train_segments} train, {self.eval_segments} eval, {self.total_seconds / 60:.1f} min)"]
        lines += [f"skipped (already in the dataset): {s}" for s in self.skipped]
        lines += [f"ignored (not media): {s}" for s in self.ignored]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"rejected {seg}: {why}" for seg, why in self.rejected]
        lines += [f"FAILED {src}: {why}" for src, why in self.failed]
        return "\n".join(lines)


@dataclass
class _Job:
    label: str
    kind: str  # asr, subtitles, corpus, url
    media: Optional[Path] = None
    subtitles: Optional[Path] = None
    url: Optional[str] = None
    row: Optional[CorpusRow] = None


def _plan_jobs(audio, subtitles, corpus, urls, out: DatasetReport) -> list[_Job]:
    media, other = collect_media(audio)
    subs = [Path(s) for s in subtitles]
    subs += [p for p in other if p.suffix.lower() in SUBTITLE_EXTENSIONS]  # talk.srt beside talk.wav
    out.ignored += [str(p) for p in other if p.suffix.lower() not in SUBTITLE_EXTENSIONS]
    by_stem = {p.stem: p for p in media}
    paired: dict[Path, Path] = {}
    for sub in dict.fromkeys(subs):
        stem = sub.stem if sub.stem in by_stem else sub.stem.split(".")[0]  # talk.en.srt pairs with talk.wav
        match = by_stem.get(stem) or (media[0] if len(media) == 1 and sub in map(Path, subtitles) else None)
        if match is None:
            out.failed.append((str(sub), "no --audio file with the same name to pair it with"))
        elif match in paired:
            out.failed.append((str(sub), f"{match} already has subtitles {paired[match]}"))
        else:
            paired[match] = sub
    jobs = [_Job(str(m), "subtitles" if m in paired else "asr", m, paired.get(m)) for m in media]
    jobs += [_Job(url, "url", url=url) for url in urls]
    if corpus is not None:
        jobs += [_Job(row.line, "corpus", row.audio, row=row) for row in read_corpus(corpus)]
    return jobs


def _clips_to_segments(clips: list[Clip], audio: np.ndarray, offset: float, source_hash: str, speaker: str,
                       settings: DatasetSettings, wavs: Path) -> list[Segment]:
    sr, segments = settings.sample_rate, []
    for clip in clips:
        start, end = offset + clip.start, offset + clip.end
        seg = Segment(segment_id(source_hash, start), source_hash, round(start, 3), round(end, 3), clip.text,
                      speaker=speaker, rejected=clip.rejected)
        seg.split = assign_split(seg.id, settings.eval_fraction)
        if not seg.rejected:
            write_wav(wavs / f"{seg.id}.wav", audio[int(clip.start * sr) : int(round(clip.end * sr))], sr)
        segments.append(seg)
    return segments


def _plan(words, settings: DatasetSettings, language: str, audio: np.ndarray, search: float) -> list[Clip]:
    return plan_clips(words, language, min_seconds=settings.min_seconds, max_seconds=settings.max_seconds,
                      merge_below_seconds=settings.merge_below_seconds, pad_seconds=settings.pad_seconds,
                      search_seconds=search, audio=audio, sample_rate=settings.sample_rate)


class _Run:
    """State shared by the sources of one run: settings, the transcriber (loaded once), the report."""

    def __init__(self, workspace: Path, language, speaker, settings, whisper_model, transcriber, progress, out):
        self.wavs = dataset_dir(workspace) / "wavs"
        self.language, self.speaker, self.settings = language, speaker, settings
        self.whisper_model, self._transcriber, self.progress, self.out = whisper_model, transcriber, progress, out

    @property
    def transcriber(self):
        if isinstance(self._transcriber, UserError):
            raise self._transcriber  # a model that failed to load fails every recording the same way
        if self._transcriber is None:
            from xtts_finetune.dataset.transcribe import Transcriber

            try:
                self._transcriber = Transcriber(self.whisper_model)
            except UserError as err:
                self._transcriber = err
                raise
        return self._transcriber

    def media(self, job: _Job, source_hash: str) -> tuple[list[Segment], float]:
        """Transcribe (or read subtitles for) one recording, piece by piece, and cut it into clips."""
        s, segments, end = self.settings, [], 0.0
        cues = cue_words(parse_subtitles(job.subtitles, self.out.warnings), self.language) if job.subtitles else None
        for piece in iter_pieces(job.media, s.sample_rate, s.piece_seconds, loudness_normalize=s.loudness_normalize):
            end = piece.end
            if cues is not None:
                words = [Span(w.start - piece.start, w.end - piece.start, w.text) for w in cues
                         if piece.start <= (w.start + w.end) / 2 < piece.end]
                search = 0.3  # subtitle timings are looser than ASR's
            else:
                report(self.progress, "transcribe", piece.start, None, f"{job.media.name} at {piece.start / 60:.1f} min")
                transcript = self.transcriber.transcribe(resample(piece.audio, s.sample_rate, WHISPER_RATE),
                                                         language=self.language, vad=s.vad)
                self.out.warnings += [f"{job.label}: {w}" for w in transcript.warnings]  # e.g. language mismatch
                words, search = transcript.words, 0.15
            clips = _plan(words, s, self.language, piece.audio, search)
            segments += _clips_to_segments(clips, piece.audio, piece.start, source_hash, self.speaker, s, self.wavs)
        if cues is not None and not cues:
            raise UserError(f"{job.subtitles}: no spoken text in its cues.", fix="check the subtitle file")
        return segments, end

    def corpus_row(self, job: _Job, source_hash: str) -> tuple[list[Segment], float]:
        """One already cut and transcribed clip: re-encoded whole, checked against the bounds."""
        s = self.settings
        audio = decode_audio(job.media, s.sample_rate, s.loudness_normalize)
        duration = len(audio) / s.sample_rate
        clip = Clip(0.0, duration, normalize_transcript(job.row.text, self.language))
        if not clip.text:
            clip.rejected = "no speech left after cleaning the text"
        elif not s.min_seconds <= duration <= s.max_seconds:
            clip.rejected = f"{duration:.2f} s is outside {s.min_seconds}-{s.max_seconds} s"
        speaker = (job.row.speaker or self.speaker).replace("|", " ")
        return _clips_to_segments([clip], audio, 0.0, source_hash, speaker, s, self.wavs), duration


def create_dataset(
    workspace: str | Path,
    *,
    language: str,
    audio: Sequence[Path] = (),
    subtitles: Sequence[Path] = (),
    corpus: Optional[Path] = None,
    urls: Sequence[str] = (),
    whisper_model: str = "large-v3",
    speaker: str = "speaker",
    settings: Optional[DatasetSettings] = None,
    progress=None,
    transcriber=None,
) -> DatasetReport:
    """Add new sources to WORKSPACE/dataset (creating it), skipping content already there."""
    workspace = Path(workspace)
    language = normalize_language(language)
    speaker = " ".join(speaker.replace("|", " ").split()) or "speaker"
    manifest_path = dataset_dir(workspace) / "dataset.json"
    manifest = load_manifest(workspace) if manifest_path.is_file() else Manifest(language=language, speaker=speaker)
    if manifest.language != language:
        raise UserError(f"{workspace} holds a {manifest.language!r} dataset, not {language!r}.",
                        fix=f"use --language {manifest.language}, or a new workspace for {language!r}")
    if settings is None:
        names = {f.name for f in fields(DatasetSettings)}
        settings = DatasetSettings(**{k: v for k, v in manifest.settings.items() if k in names})
    settings.check()
    manifest.settings = asdict(settings)
    # evaluate transcribes with the same Whisper (issue 18)
    manifest.settings["whisper_model"] = getattr(transcriber, "model_name", None) or whisper_model
    out = DatasetReport()
    if language not in XTTS_LANGUAGES:
        out.warnings.append(f"{language!r} is not one of XTTS's 17 languages: training must add it to the tokenizer")
    jobs = _plan_jobs(audio, subtitles, corpus, urls, out)
    if not jobs and not out.failed:
        raise UserError("nothing to add.", fix="give --audio FILES_OR_FOLDERS, --subtitles with --audio, --corpus DIR or --url URL")
    run = _Run(workspace, language, speaker, settings, whisper_model, transcriber, progress, out)
    run.wavs.mkdir(parents=True, exist_ok=True)
    known, last_save = manifest.source_hashes(), time.monotonic()
    for n, job in enumerate(jobs):
        report(progress, "dataset", n, len(jobs), job.label)
        source_hash = None
        try:
            if job.kind == "url":
                from xtts_finetune.dataset.urls import download

                got = download(job.url, workspace / "sources", language)
                if got.error:
                    raise UserError(f"{job.url}: {got.error}", fix="check the URL opens in a browser")
                job.media, job.subtitles = got.media, got.subtitles
            check_media_file(job.media)
            source_hash = file_sha256(job.media)
            if source_hash in known:
                out.skipped.append(job.label)
                continue
            segments, duration = (run.corpus_row if job.kind == "corpus" else run.media)(job, source_hash)
        except UserError as err:
            out.failed.append((job.label, str(err)))
            if source_hash and source_hash not in known:  # clips of a source that failed half-way
                for partial in run.wavs.glob(f"{source_hash[:8]}_*.wav"):
                    partial.unlink()
            continue
        known.add(source_hash)
        manifest.sources.append(Source(source_hash, str(job.media.resolve()), job.kind, round(duration, 3),
                                       str(job.subtitles.resolve()) if job.subtitles else None, job.url,
                                       datetime.now(timezone.utc).isoformat(timespec="seconds")))
        manifest.segments += segments
        if not segments:
            out.warnings.append(f"{job.label}: no speech found")
        out.added += [seg.id for seg in segments if seg.active]
        out.rejected += [(seg.id, seg.rejected) for seg in segments if seg.rejected]
        if job.kind != "corpus" or time.monotonic() - last_save > 5:  # corpora have thousands of tiny sources
            save_manifest(workspace, manifest)
            last_save = time.monotonic()
    save_manifest(workspace, manifest)
    active = [s for s in manifest.segments if s.active]
    out.total_segments, out.total_seconds = len(active), sum(s.duration for s in active)
    out.train_segments = sum(s.split == "train" for s in active)
    out.eval_segments = out.total_segments - out.train_segments
    report(progress, "dataset", len(jobs), len(jobs), "done")
    return out
