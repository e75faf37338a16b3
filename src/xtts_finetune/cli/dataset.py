"""`xtts-finetune dataset ...`: create, inspect, edit and slice a voice dataset."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    dataset = sub.add_parser("dataset", help="build and inspect the training dataset of a workspace")
    ds = dataset.add_subparsers(dest="dataset_command", metavar="DATASET_COMMAND", required=True)
    _register_create(ds)
    _register_checks(ds)
    _register_edits(ds)


def _register_create(ds) -> None:
    create = ds.add_parser("create", help="add recordings, subtitles, a corpus or URLs to WORKSPACE/dataset")
    create.add_argument("workspace", type=Path)
    create.add_argument("--language", required=True, help="language code of the speech, e.g. en, de, zh, ja, am")
    create.add_argument("--audio", nargs="+", type=Path, default=[], metavar="FILE_OR_DIR", help="media files or folders")
    create.add_argument("--subtitles", nargs="+", type=Path, default=[], metavar="FILE",
                        help=".srt/.vtt/.ass/.ssa/.sub files, each paired with the media file of the same name in "
                             "its folder (talk.srt or talk.en.srt with talk.wav), or with the only --audio file")
    create.add_argument("--corpus", type=Path, help="an LJSpeech folder or a Coqui CSV to import as is")
    create.add_argument("--url", nargs="+", default=[], dest="urls", metavar="URL", help="media to download with yt-dlp")
    create.add_argument("--whisper-model", default="large-v3", help="Whisper model name or local CTranslate2 folder")
    create.add_argument("--speaker", default="speaker", help="name of the voice in these recordings (default "
                        "speaker); runs with different names build one dataset of several voices, one model speaks them all")
    create.add_argument("--eval-fraction", type=float, help="share of clips held out for evaluation (default 0.15)")
    create.add_argument("--max-seconds", type=float, help="longest clip (default 11.6, XTTS's training limit)")
    create.add_argument("--min-seconds", type=float, help="shortest clip (default 0.5)")
    create.add_argument("--loudness-normalize", action="store_true", help="normalise loudness (EBU R128) while decoding")
    voice = create.add_mutually_exclusive_group()
    voice.add_argument("--speaker-reference", type=Path, metavar="FILE",
                       help="a recording of the wanted voice alone (10-30 s): only clips in that voice are kept")
    voice.add_argument("--main-speaker", action="store_true", help="keep, per source, only the voice that speaks most")
    create.add_argument("--diarize", action="store_true", help="split sources into their voices, named speaker_1, speaker_2...")
    create.add_argument("--voice-threshold", type=float,
                        help="speaker similarity a clip needs to count as the wanted voice (default 0.75, calibrated on real speech)")
    create.set_defaults(func=_create)


def _register_checks(ds) -> None:
    """stats, list and verify: what the dataset holds and how trustworthy it is."""
    stats = ds.add_parser("stats", help="check the dataset before training: lengths, rates, levels, tokenizer coverage")
    stats.add_argument("workspace", type=Path)
    group = stats.add_mutually_exclusive_group()
    group.add_argument("--vocab", type=Path, help="the base model's vocab.json")
    group.add_argument("--base", metavar="VERSION_OR_DIR", help="a base model folder or XTTS release version (its vocab.json is used)")
    stats.add_argument("--vocab-mode", choices=["auto", "base", "script", "phonemes"], default="auto",
                       help="check coverage as `train --vocab MODE` will read the text (auto: base for XTTS's 17 "
                            "languages, script for others: the vocabulary extended with the dataset's characters)")
    stats.set_defaults(func=_stats)

    listing = ds.add_parser("list", help="list the segments (id, length, status, CER, text) and everything left out")
    listing.add_argument("workspace", type=Path)
    listing.add_argument("--suspect", action="store_true",
                         help="only clips to look at: marked suspect by `dataset verify`, music or noise under them, clipped")
    listing.set_defaults(func=_list)

    exclude = ds.add_parser("exclude", help="exclude every clip outside quality limits (SNR, clipping, loudness, CER, flags)")
    exclude.add_argument("workspace", type=Path)
    exclude.add_argument("--snr-below", type=float, metavar="DB", help="estimated signal-to-noise ratio below this")
    exclude.add_argument("--clipped-above", type=int, metavar="N", help="more clipped samples than this (0: any)")
    exclude.add_argument("--lufs-below", type=float, metavar="LUFS", help="quieter than this")
    exclude.add_argument("--lufs-above", type=float, metavar="LUFS", help="louder than this")
    exclude.add_argument("--cer-above", type=float, metavar="CER", help="`dataset verify` heard other words (CER above this)")
    exclude.add_argument("--flagged", action="store_true", help="music or heavy noise under the speech")
    exclude.set_defaults(func=_exclude)

    verify = ds.add_parser("verify", help="Whisper listens to every clip; clips whose text it does not hear are marked suspect")
    verify.add_argument("workspace", type=Path)
    verify.add_argument("--whisper-model", default="large-v3", help="Whisper model name or local CTranslate2 folder")
    verify.add_argument("--threshold", type=float, default=0.3, help="character error rate above which a clip is suspect (default 0.3)")
    verify.add_argument("--recheck", action="store_true", help="score clips already scored again")
    verify.add_argument("--exclude-suspects", action="store_true", help="then exclude every suspect clip from training")
    verify.set_defaults(func=_verify)


def _register_edits(ds) -> None:
    """edit, remove and slice: changing what the dataset holds."""
    edit = ds.add_parser("edit", help="correct a clip's transcript, or exclude/include it")
    edit.add_argument("workspace", type=Path)
    edit.add_argument("segment_id")
    edit.add_argument("--text")
    flag = edit.add_mutually_exclusive_group()
    flag.add_argument("--exclude", dest="excluded", action="store_const", const=True)
    flag.add_argument("--include", dest="excluded", action="store_const", const=False)
    edit.set_defaults(func=_edit)

    remove = ds.add_parser("remove", help="drop a source and its clips (e.g. to add it again with fixed subtitles)")
    remove.add_argument("workspace", type=Path)
    remove.add_argument("source", help="the source's media or subtitle path, or the first 8+ characters of its hash")
    remove.set_defaults(func=_remove)

    rename = ds.add_parser("rename-speaker", help="give a speaker's clips another name (an existing name merges the two)")
    rename.add_argument("workspace", type=Path)
    rename.add_argument("old", help="the speaker's name now, as `dataset list` shows it")
    rename.add_argument("new", help="the new name")
    rename.set_defaults(func=_rename_speaker)

    slicer = ds.add_parser("slice", help="cut a long recording at silences into WAV pieces")
    slicer.add_argument("file", type=Path)
    slicer.add_argument("out_dir", type=Path)
    slicer.add_argument("--max-seconds", type=float, default=600.0, help="longest piece (default 600)")
    slicer.set_defaults(func=_slice)


def _create(args) -> int:
    from xtts_finetune.dataset import create_dataset
    from xtts_finetune.dataset.create import settings_with
    from xtts_finetune.progress import ConsoleProgress

    settings = None
    overrides = {k: v for k, v in {"eval_fraction": args.eval_fraction, "max_seconds": args.max_seconds,
                                   "min_seconds": args.min_seconds, "voice_threshold": args.voice_threshold}.items()
                 if v is not None}
    if args.loudness_normalize:
        overrides["loudness_normalize"] = True
    if overrides:
        settings = settings_with(args.workspace, **overrides)
    report = create_dataset(
        args.workspace, language=args.language, audio=args.audio, subtitles=args.subtitles, corpus=args.corpus,
        urls=args.urls, whisper_model=args.whisper_model, speaker=args.speaker, settings=settings,
        progress=ConsoleProgress(), speaker_reference=args.speaker_reference, main_speaker=args.main_speaker,
        diarize=args.diarize,
    )
    print(report.summary())
    return 1 if report.failed and not report.added and not report.skipped else 0


def _stats(args) -> int:
    from xtts_finetune.dataset import dataset_stats
    from xtts_finetune.errors import UserError

    vocab = args.vocab
    if args.base:
        folder = Path(args.base).expanduser()
        if not folder.is_dir():  # a release version: downloaded (cached) like training's --base
            from xtts_finetune.basemodels import resolve_base_model
            from xtts_finetune.progress import ConsoleProgress

            folder = resolve_base_model(args.base, progress=ConsoleProgress())
        vocab = folder / "vocab.json"
    if vocab is not None and not vocab.is_file():
        raise UserError(f"{vocab}: vocab.json not found.", fix="point --vocab at a base model's vocab.json, or --base at its folder")
    print(dataset_stats(args.workspace, vocab, args.vocab_mode).summary())
    return 0


def _edit(args) -> int:
    from xtts_finetune.dataset import edit_segment
    from xtts_finetune.errors import UserError

    if args.text is None and args.excluded is None:
        raise UserError("nothing to change.", fix="give --text 'corrected words', --exclude or --include")
    seg = edit_segment(args.workspace, args.segment_id, text=args.text, excluded=args.excluded)
    print(f"{seg.id} [{'excluded' if seg.excluded else seg.split}] {seg.text}")
    return 0


def _quality(seg) -> str:
    """The clip's measures as `dataset list` shows them: CER, SNR, clipping, loudness, voice similarity, flags."""
    parts = [] if seg.cer is None else [f"CER {seg.cer:.2f}{' suspect' if seg.suspect else ''}"]
    parts += [] if seg.snr is None else [f"SNR {seg.snr:.0f} dB"]
    parts += [f"clipped {seg.clipped}"] if seg.clipped else []
    parts += [] if seg.lufs is None else [f"{seg.lufs:.1f} LUFS"]
    parts += [] if seg.similarity is None else [f"voice {seg.similarity:.2f}"]
    parts += [seg.quality] if seg.quality else []
    return "\t".join(parts)


def _list(args) -> int:
    from xtts_finetune.dataset import load_manifest
    from xtts_finetune.dataset.quality import is_suspect

    manifest = load_manifest(args.workspace)
    if args.suspect:
        suspects = sorted((s for s in manifest.segments if is_suspect(s)), key=lambda s: (-(s.cer or 0), s.snr or 0))
        for seg in suspects:
            state = "rejected" if seg.rejected else "excluded" if seg.excluded else seg.split
            print(f"{seg.id}\t{seg.duration:6.2f}s\t{state}\t{_quality(seg)}\t{seg.text}"
                  f"{f'  ({seg.suspect})' if seg.suspect else ''}")
        if not suspects:
            verified = any(seg.cer is not None for seg in manifest.segments)
            print("no suspect clips" + ("" if verified else " (run `xtts-finetune dataset verify` to check the texts too)"),
                  file=sys.stderr)
        return 0
    for seg in manifest.segments:
        status = f"rejected: {seg.rejected}" if seg.rejected else ("excluded" if seg.excluded else seg.split)
        measures = _quality(seg)
        print(f"{seg.id}\t{seg.duration:6.2f}s\t{seg.speaker}\t{status}{chr(9) + measures if measures else ''}\t{seg.text}")
    for source in manifest.sources:
        for why in source.dropped:
            print(f"left out of {source.path}: {why}")
        for note in source.notes:
            print(f"note on {source.path}: {note}")
    for what, why in manifest.failed.items():
        print(f"not in the dataset: {what}: {why}")
    voices = [f"{name} ({len(segs)} clips, {sum(s.duration for s in segs):.1f} s)" for name, segs in manifest.speakers().items()]
    if len(voices) > 1:  # one voice: nothing to tell apart
        print(f"speakers: {', '.join(voices)}")
    return 0


def _rename_speaker(args) -> int:
    from xtts_finetune.dataset import rename_speaker

    clips = rename_speaker(args.workspace, args.old, args.new)
    print(f"renamed {clips} clips of {args.old!r} to {args.new!r}")
    return 0


def _exclude(args) -> int:
    from xtts_finetune.dataset.quality import Limits, exclude_by
    from xtts_finetune.errors import UserError

    limits = Limits(args.snr_below, args.clipped_above, args.lufs_below, args.lufs_above, args.cer_above, args.flagged)
    if limits == Limits():
        raise UserError("no limit given.", fix="e.g. --snr-below 15, --clipped-above 0, --flagged")
    excluded = exclude_by(args.workspace, limits)
    for seg_id, why in excluded:
        print(f"excluded {seg_id}: {why}")
    print(f"excluded {len(excluded)} clips")
    return 0


def _remove(args) -> int:
    from xtts_finetune.dataset.manifest import remove_source

    source, clips = remove_source(args.workspace, args.source)
    print(f"removed {source.path} ({source.hash[:12]}) and its {clips} clips")
    return 0


def _verify(args) -> int:
    from xtts_finetune.dataset.manifest import exclude_suspects
    from xtts_finetune.dataset.verify import verify_dataset
    from xtts_finetune.progress import ConsoleProgress

    result = verify_dataset(args.workspace, whisper_model=args.whisper_model, threshold=args.threshold,
                            recheck=args.recheck, progress=ConsoleProgress())
    print(result.summary())
    if args.exclude_suspects:
        print(f"excluded {len(exclude_suspects(args.workspace))} suspect clips")
    return 0


def _slice(args) -> int:
    from xtts_finetune.dataset import slice_on_silence
    from xtts_finetune.progress import ConsoleProgress

    for path in slice_on_silence(args.file, args.out_dir, max_seconds=args.max_seconds, progress=ConsoleProgress()):
        print(path)
    return 0
