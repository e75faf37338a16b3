"""`create_dataset`: recordings, subtitles, corpora and URLs in; a validated Coqui dataset out.

Each source is one unit of work: it is decoded, cut into clips and recorded in the manifest
before the next begins, so an interrupted run resumes where it stopped and a bad file costs only
itself. Sources already in the manifest (same content hash) are skipped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from xtts_finetune.dataset.corpus import CorpusRow, read_corpus
from xtts_finetune.dataset.manifest import (
    MIN_TRAINING_CLIPS, Manifest, Segment, Source, assign_split, clean_speaker_name, dataset_dir, load_manifest,
    save_manifest, segment_id,
    unique_prefix,
)
from xtts_finetune.dataset.media import (
    check_media_file, collect_media, decode_audio, fit_full_scale, resample, write_wav,
)
from xtts_finetune.dataset.segment import Clip, Span, plan_clips
from xtts_finetune.dataset.slicer import iter_pieces
from xtts_finetune.dataset.quality import measure
from xtts_finetune.dataset.voices import DEFAULT_THRESHOLD, VOICES_FILE, VoicedClip, VoiceFilter, VoiceMap, check_threshold
from xtts_finetune.dataset.subtitles import (
    SUBTITLE_EXTENSIONS, CueAudio, check_cues_fit, plan_cue_runs, read_subtitles,
)
from xtts_finetune.errors import UserError
from xtts_finetune.languages import XTTS_LANGUAGES, check_language, language_name
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
    voice_threshold: float = DEFAULT_THRESHOLD  # speaker similarity a clip needs to count as the wanted voice

    def check(self) -> None:
        check_threshold(self.voice_threshold)
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
    dropped: list[str] = field(default_factory=list)  # cues and rows left out, audio outside every cue, with why
    notes: list[str] = field(default_factory=list)  # how sources were read: encodings, text columns, gains
    ignored: list[str] = field(default_factory=list)  # files in given folders that are not media
    warnings: list[str] = field(default_factory=list)
    total_segments: int = 0
    train_segments: int = 0
    eval_segments: int = 0
    total_seconds: float = 0.0

    def record(self, label: str, source, segments: list) -> None:
        """What one added source brought: its clips, and what it left out."""
        self.dropped += [f"{label}: {why}" for why in source.dropped]
        self.notes += [f"{label}: {note}" for note in source.notes]
        if not segments:
            self.warnings.append(f"{label}: no speech found")
        self.added += [seg.id for seg in segments if seg.active]
        self.rejected += [(seg.id, seg.rejected) for seg in segments if seg.rejected]

    def summary(self) -> str:
        lines = [f"added {len(self.added)} clips; dataset now {self.total_segments} clips "
                 f"({self.train_segments} train, {self.eval_segments} eval, {self.total_seconds / 60:.1f} min)"]
        lines += [f"skipped (already in the dataset): {s}" for s in self.skipped]
        lines += [f"ignored (not media): {s}" for s in self.ignored]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"left out: {d}" for d in self.dropped]
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


def clock(seconds: float) -> str:
    """A position in a recording as a player shows it, 0:00 or 1:02:03 (a "0.0 min" says nothing)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _named_after(sub: Path, media: Path) -> bool:
    """talk.srt and talk.en.srt are named after talk.wav (in the same folder); talk2.srt is not."""
    stem = sub.name[: -len(sub.suffix)]
    same_folder = sub.parent.resolve() == media.parent.resolve()
    return same_folder and (stem == media.stem or (stem.startswith(media.stem + ".") and "." not in stem[len(media.stem) + 1:]))


def _pair_subtitles(media: list[Path], subs: list[Path], explicit: list[Path], out: DatasetReport) -> dict[Path, Path]:
    """media -> subtitles by place and name, never across folders; an ambiguous pair fails both files.

    One --subtitles file with one --audio file pairs whatever the names: the user said so.
    """
    candidates: dict[Path, list[Path]] = {}
    for sub in dict.fromkeys(subs):
        matches = [m for m in media if _named_after(sub, m)]
        if not matches and len(media) == 1 and explicit == [sub]:
            matches = media
        if not matches:
            out.failed.append((str(sub), "no media file with the same name in its folder to pair it with"))
        elif len(matches) > 1:
            out.failed.append((str(sub), f"ambiguous: it could belong to {matches[0]} or {matches[1]}; rename one"))
        else:
            candidates.setdefault(matches[0], []).append(sub)
    for m, found in candidates.items():
        if len(found) > 1:
            out.failed.append((str(m), f"ambiguous: subtitles {found[0]} and {found[1]} both belong to it; keep one"))
    return {m: found[0] for m, found in candidates.items() if len(found) == 1}


def _plan_jobs(audio, subtitles, corpus, urls, language: str, out: DatasetReport) -> list[_Job]:
    media, other = collect_media(audio)
    explicit = [Path(s) for s in subtitles]
    subs = explicit + [p for p in other if p.suffix.lower() in SUBTITLE_EXTENSIONS]  # talk.srt beside talk.wav
    out.ignored += [str(p) for p in other if p.suffix.lower() not in SUBTITLE_EXTENSIONS]
    paired = _pair_subtitles(media, subs, explicit, out)
    blocked = {src for src, _ in out.failed}  # media with two subtitle files: neither is guessed
    jobs = [_Job(str(m), "subtitles" if m in paired else "asr", m, paired.get(m)) for m in media if str(m) not in blocked]
    jobs += [_Job(url, "url", url=url) for url in urls]
    if corpus is not None:
        rows = read_corpus(corpus, language)
        out.notes += rows.notes
        out.failed += rows.problems  # each row is a source: one that cannot be read fails by its line
        jobs += [_Job(row.line, "corpus", row.audio, row=row) for row in rows.rows]
    return jobs


def _source_hashes(job: _Job) -> tuple[str, str]:
    """(source hash, media hash): the media's content hash with the subtitles' folded in, so fixed
    subtitles make a new source."""
    media = file_sha256(job.media)
    if job.subtitles is None:
        return media, media
    return hashlib.sha256(f"{media}:{file_sha256(job.subtitles)}".encode()).hexdigest(), media


def _plan(words, settings: DatasetSettings, language: str, audio: np.ndarray, search: float) -> list[Clip]:
    return plan_clips(words, language, min_seconds=settings.min_seconds, max_seconds=settings.max_seconds,
                      merge_below_seconds=settings.merge_below_seconds, pad_seconds=settings.pad_seconds,
                      search_seconds=search, audio=audio, sample_rate=settings.sample_rate)


class _Known:
    """Sources already in the dataset: copies are skipped, and each new source gets an id prefix no other shares."""

    def __init__(self, sources: list[Source]):
        self.hashes = {s.hash for s in sources}
        self.media = {s.media_hash or s.hash for s in sources}
        self.by_prefix: dict[str, set[str]] = {}  # 8-digit prefix -> hashes: no scan over thousands of rows
        for h in self.hashes:
            self.by_prefix.setdefault(h[:8], set()).add(h)

    def has(self, job: _Job, source_hash: str, media_hash: str) -> bool:
        """The same media and subtitles, or (without subtitles) the same media under any name."""
        return source_hash in self.hashes or (job.subtitles is None and media_hash in self.media)

    def prefix(self, source_hash: str) -> str:
        return unique_prefix(source_hash, self.by_prefix.get(source_hash[:8], set()))

    def add(self, source_hash: str, media_hash: str) -> None:
        self.hashes.add(source_hash)
        self.media.add(media_hash)
        self.by_prefix.setdefault(source_hash[:8], set()).add(source_hash)


class _Run:
    """State shared by the sources of one run: settings, the transcriber (loaded once), the report."""

    def __init__(self, workspace: Path, language, speaker, settings, whisper_model, transcriber, progress, out,
                 voices: Optional[VoiceFilter] = None):
        self.wavs = dataset_dir(workspace) / "wavs"
        self.voices = voices or VoiceFilter()
        self.language, self.speaker, self.settings = language, speaker, settings
        self.whisper_model, self._transcriber, self.progress, self.out = whisper_model, transcriber, progress, out
        self.written: list[Path] = []  # wavs of the current source, removed if it fails
        self.dropped: list[str] = []  # what the current source left out and why, kept in its manifest entry
        self.notes: list[str] = []  # how it was read: encodings, gains
        self.prefix = ""  # the current source's id prefix

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

    def notices(self) -> list[str]:
        """What the transcriber had to say once, e.g. that Whisper fell back to the CPU."""
        return list(getattr(self._transcriber, "notices", []))

    def source(self, job: _Job, known: _Known, workspace: Path) -> Optional[tuple[Source, list[Segment]]]:
        """(source record, its segments) for one job, or None when it is already in the dataset."""
        self.prefix, self.written, self.dropped, self.notes = "", [], [], []
        self.voices.new_source()
        if job.kind == "url":
            from xtts_finetune.dataset.urls import download

            got = download(job.url, workspace / "sources", self.language)
            if got.error:
                raise UserError(f"{job.url}: {got.error}", fix="check the URL opens in a browser")
            job.media, job.subtitles = got.media, got.subtitles
        check_media_file(job.media)
        source_hash, media_hash = _source_hashes(job)
        if known.has(job, source_hash, media_hash):
            return None
        self.prefix = known.prefix(source_hash)
        segments, duration = (self.corpus_row if job.kind == "corpus" else self.media)(job, source_hash)
        known.add(source_hash, media_hash)
        source = Source(source_hash, str(job.media.resolve()), job.kind, round(duration, 3),
                        str(job.subtitles.resolve()) if job.subtitles else None, job.url,
                        datetime.now(timezone.utc).isoformat(timespec="seconds"), media_hash, self.dropped, self.notes,
                        speaker=segments[0].speaker if job.kind == "corpus" and segments else self.speaker)
        return source, segments

    def segments(self, clips: list, audio: np.ndarray, offset: float, source_hash: str, speaker: str) -> list[Segment]:
        """Segments of `clips` (times relative to `audio`, which starts at `offset`), each usable one written as a wav
        and measured (SNR, clipping, loudness). A `VoicedClip` brings its voice's name and similarity; one left out
        as another voice keeps its wav too, so it can be played (it is not trained on: it is rejected)."""
        s, segments = self.settings, []
        for item in clips:
            voiced = item if isinstance(item, VoicedClip) else VoicedClip(item)
            clip, start, end = voiced.clip, offset + voiced.clip.start, offset + voiced.clip.end
            seg = Segment(segment_id(self.prefix, start), source_hash, round(start, 3), round(end, 3), clip.text,
                          speaker=voiced.speaker or speaker, rejected=clip.rejected, similarity=voiced.similarity)
            seg.split = assign_split(seg.id, s.eval_fraction)
            if not seg.rejected or voiced.similarity is not None:  # another voice's clip is kept to be heard
                sr = s.sample_rate
                samples = audio[int(clip.start * sr) : int(round(clip.end * sr))]
                quality = measure(samples, sr)
                seg.snr, seg.clipped, seg.lufs, seg.quality = quality.snr, quality.clipped, quality.lufs, quality.flag
                self.written.append(write_wav(self.wavs / f"{seg.id}.wav", samples, sr))
            segments.append(seg)
        return segments

    def plan(self, words, audio: np.ndarray, search: float) -> list:
        """Clips of `words` in `audio`; with a voice filter, planned per voice and judged."""
        s = self.settings
        if not self.voices.active:
            return _plan(words, s, self.language, audio, search)
        return self.voices.plan(words, audio, s.sample_rate, lambda run, turn: _plan(run, s, self.language, turn, search))

    def _level(self, audio: np.ndarray, where: str) -> np.ndarray:
        audio, gain = fit_full_scale(audio)
        if gain:
            self.notes.append(f"{where} went past full scale: scaled down by {-gain:.1f} dB instead of clipping")
        return audio

    def media(self, job: _Job, source_hash: str) -> tuple[list[Segment], float]:
        """Transcribe (or read subtitles for) one recording, piece by piece, and cut it into clips."""
        if job.subtitles:
            return self.cue_media(job, source_hash)
        s, segments, end = self.settings, [], 0.0
        for piece in iter_pieces(job.media, s.sample_rate, s.piece_seconds, loudness_normalize=s.loudness_normalize):
            end, audio = piece.end, self._level(piece.audio, f"{job.media.name} at {clock(piece.start)}")
            report(self.progress, "transcribe", piece.start, None, f"{job.media.name} from {clock(piece.start)}")
            transcript = self.transcriber.transcribe(resample(audio, s.sample_rate, WHISPER_RATE),
                                                     language=self.language, vad=s.vad)
            self.out.warnings += [f"{job.label}: {w}" for w in transcript.warnings]  # e.g. language mismatch
            clips = self.plan(transcript.words, audio, 0.15)
            segments += self.segments(clips, audio, piece.start, source_hash, self.speaker)
        return segments, end

    def cue_media(self, job: _Job, source_hash: str) -> tuple[list[Segment], float]:
        """Clips of one recording within its subtitle cues (each run of cues whole, whatever the pieces)."""
        s, segments = self.settings, []
        subs = read_subtitles(job.subtitles, self.language)
        runs, dropped = plan_cue_runs(subs, self.language, max_run_seconds=s.piece_seconds)
        self.dropped += subs.dropped + dropped
        self.notes += [] if subs.encoding.startswith("utf") else [f"{subs.path.name}: read as {subs.encoding}"]
        cues = CueAudio(runs, s.sample_rate)
        pieces = ((p.start, self._level(p.audio, f"{job.media.name} at {clock(p.start)}"))
                  for p in iter_pieces(job.media, s.sample_rate, s.piece_seconds, loudness_normalize=s.loudness_normalize))
        for run, window in cues.windows(pieces):
            words = [Span(w.start - run.start, w.end - run.start, w.text) for w in run.words]
            segments += self.segments(self.plan(words, window, 0.3), window, run.start, source_hash, self.speaker)
        check_cues_fit(subs, cues.end)
        self.dropped += cues.left_out(subs.path.name)
        if cues.uncovered >= 0.1:
            self.dropped.append(f"{subs.path.name}: {cues.uncovered:.1f} s of sound outside every cue was left out")
        return segments, cues.end

    def corpus_row(self, job: _Job, source_hash: str) -> tuple[list[Segment], float]:
        """One already cut and transcribed clip: re-encoded whole, checked against the bounds."""
        s = self.settings
        audio = self._level(decode_audio(job.media, s.sample_rate, s.loudness_normalize), job.media.name)
        duration = len(audio) / s.sample_rate
        clip = Clip(0.0, duration, normalize_transcript(job.row.text, self.language))
        if not clip.text:
            clip.rejected = "no speech left after cleaning the text"
        elif not s.min_seconds <= duration <= s.max_seconds:
            clip.rejected = f"{duration:.2f} s is outside {s.min_seconds}-{s.max_seconds} s"
        speaker = clean_speaker_name(job.row.speaker or "") or self.speaker
        if self.voices.reference is not None:  # a row is one voice already: only --speaker-reference applies
            clip = self.voices.judge(clip, audio, s.sample_rate)
        return self.segments([clip], audio, 0.0, source_hash, speaker), duration


def _saved_settings(saved: dict) -> DatasetSettings:
    """Settings as a manifest saved them; names an older or newer version does not know are ignored."""
    names = {f.name for f in fields(DatasetSettings)}
    return DatasetSettings(**{k: v for k, v in saved.items() if k in names})


def _open_manifest(workspace: Path, language: str, speaker: str,
                   settings: Optional[DatasetSettings]) -> tuple[Manifest, DatasetSettings]:
    """The workspace's manifest (a new one for a new dataset) and the settings this run uses, checked."""
    manifest_path = dataset_dir(workspace) / "dataset.json"
    manifest = load_manifest(workspace) if manifest_path.is_file() else Manifest(language=language, speaker=speaker)
    if manifest.language != language:
        raise UserError(f"{workspace} holds a {manifest.language!r} dataset, not {language!r}.",
                        fix=f"use --language {manifest.language}, or a new workspace for {language!r}")
    if settings is None:
        settings = _saved_settings(manifest.settings)
    settings.check()
    manifest.settings = asdict(settings)
    return manifest, settings


def settings_with(workspace: str | Path, **changes) -> DatasetSettings:
    """The workspace dataset's saved settings (the defaults for a new one) with `changes` applied."""
    path = dataset_dir(workspace) / "dataset.json"
    settings = _saved_settings(load_manifest(workspace).settings if path.is_file() else {})
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


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
    speaker_reference: Optional[Path] = None,
    main_speaker: bool = False,
    diarize: bool = False,
) -> DatasetReport:
    """Add new sources to WORKSPACE/dataset (creating it), skipping content already there.

    `speaker_reference` (a recording of the wanted voice) or `main_speaker` (each source's most heard voice)
    keep only that voice's clips; `diarize` names each voice speaker_1, speaker_2... (dataset/voices.py).
    """
    workspace = Path(workspace)
    language = check_language(language)  # any ISO 639 code; a typo is an error, not a new language
    speaker = clean_speaker_name(speaker) or "speaker"
    manifest, settings = _open_manifest(workspace, language, speaker, settings)
    # evaluate transcribes with the same Whisper (issue 18)
    manifest.settings["whisper_model"] = getattr(transcriber, "model_name", None) or whisper_model
    out = DatasetReport()
    if language not in XTTS_LANGUAGES:
        out.warnings.append(f"{language!r} ({language_name(language)}) is not one of XTTS's 17 languages: training "
                            "extends the vocabulary with its script (--vocab script, the default) or uses phonemes")
    jobs = _plan_jobs(audio, subtitles, corpus, urls, language, out)
    manifest.failed.update(dict(out.failed))  # kept until the same file or row is added, so `dataset list` shows it
    if not jobs and not out.failed:
        raise UserError("nothing to add.", fix="give --audio FILES_OR_FOLDERS, --subtitles with --audio, --corpus DIR or --url URL")
    if main_speaker and any(job.kind == "subtitles" for job in jobs):
        cued = next(job.subtitles for job in jobs if job.kind == "subtitles")
        raise UserError(f"--main-speaker cannot tell the main voice of a source cut by its subtitles ({cued.name}): "
                        "each cue is judged alone", fix="give --speaker-reference with a recording of the wanted voice")
    voices = _voice_filter(speaker_reference, main_speaker, diarize, settings.voice_threshold)
    if diarize:
        voices.known = VoiceMap.load(dataset_dir(workspace) / VOICES_FILE)
        voices.known.taken = {seg.speaker for seg in manifest.segments}  # a name given with --speaker stays its own
    run = _Run(workspace, language, speaker, settings, whisper_model, transcriber, progress, out, voices)
    run.wavs.mkdir(parents=True, exist_ok=True)
    known, last_save = _Known(manifest.sources), time.monotonic()
    for n, job in enumerate(jobs):
        report(progress, "dataset", n, len(jobs), job.label)
        added = _add_source(run, job, known, workspace, manifest)
        if added and (job.kind != "corpus" or time.monotonic() - last_save > 5):  # corpora: thousands of tiny sources
            _save(workspace, manifest, voices)
            last_save = time.monotonic()
    _save(workspace, manifest, voices)
    out.warnings += run.notices()
    _tally(out, manifest)
    report(progress, "dataset", len(jobs), len(jobs), "done")
    return out


def _save(workspace: Path, manifest: Manifest, voices: VoiceFilter) -> None:
    """The manifest, and with --diarize the voices it names, together: an interrupted run leaves names that
    the next run continues, never a speaker_1 given to a second person."""
    save_manifest(workspace, manifest)
    if voices.diarize:
        voices.known.save(dataset_dir(workspace) / VOICES_FILE)


def _tally(out: DatasetReport, manifest: Manifest) -> None:
    """The whole dataset's clips and seconds into the report, and a warning when it is too small to train."""
    active = [s for s in manifest.segments if s.active]
    out.total_segments, out.total_seconds = len(active), sum(s.duration for s in active)
    out.train_segments = sum(s.split == "train" for s in active)
    out.eval_segments = out.total_segments - out.train_segments
    if out.total_segments < MIN_TRAINING_CLIPS:
        out.warnings.append(f"the dataset has {out.total_segments} usable clip{'s' * (out.total_segments != 1)}: "
                            f"training needs at least {MIN_TRAINING_CLIPS} (one to train on, one for the eval split); "
                            "add more recordings")


def _voice_filter(reference: Optional[Path], main_speaker: bool, diarize: bool, threshold: float) -> VoiceFilter:
    """The run's voice choice, with the reference recording embedded once (a bad file fails the run, not a source)."""
    if reference is not None and main_speaker:
        raise UserError("--speaker-reference and --main-speaker both say which voice to keep.", fix="give one of them")
    voices = VoiceFilter(main_speaker=main_speaker, diarize=diarize, threshold=threshold)
    if not voices.active and reference is None:
        return voices
    from xtts_finetune.dataset.voice_encoder import SAMPLE_RATE, load_voice_encoder

    voices.encoder = load_voice_encoder()
    if reference is not None:
        reference = Path(reference)
        check_media_file(reference)
        audio = decode_audio(reference, SAMPLE_RATE)
        if len(audio) < 3 * SAMPLE_RATE:
            raise UserError(f"{reference}: the speaker reference is {len(audio) / SAMPLE_RATE:.1f} s long; "
                            "a voice needs more to be recognised", fix="give at least 3 s of that voice alone (10-30 s is better)")
        voices.reference = voices.encoder.embed(audio, SAMPLE_RATE)
    return voices


def _add_source(run: "_Run", job, known: "_Known", workspace: Path, manifest: Manifest) -> bool:
    """One source into the manifest; a failure is recorded against it (and its partial clips removed)."""
    out = run.out
    try:
        added = run.source(job, known, workspace)
    except Exception as err:  # one bad source never ends the run; a UserError already says what to do
        reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        out.failed.append((job.label, reason))
        manifest.failed[job.label] = reason
        for partial in run.written:  # clips of a source that failed half-way: its own, no one else's
            partial.unlink(missing_ok=True)
        return False
    if added is None:
        out.skipped.append(job.label)
        return False
    source, segments = added
    manifest.failed.pop(job.label, None)
    manifest.sources.append(source)
    manifest.segments += segments
    out.record(job.label, source, segments)
    return True
