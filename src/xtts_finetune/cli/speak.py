"""`xtts-finetune speak` (text to audio files) and `xtts-finetune serve` (the REST server)."""

from __future__ import annotations

import sys
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.devices import PRECISIONS
from xtts_finetune.utils import sweep_partial_writes


def register(sub) -> None:
    speak = sub.add_parser("speak", help="speak text with a model folder into audio files")
    speak.add_argument("model", type=Path, help="model folder: an export (WORKSPACE/models/NAME) or a base model")
    source = speak.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text to speak (long text is split into sentences)")
    source.add_argument("--text-file", type=Path, help="one utterance per line, each into its own numbered file")
    source.add_argument("--list-voices", action="store_true", help="print the model's voices and languages, then exit")
    speak.add_argument("--language", help="language code, e.g. en (default: the model's language)")
    speak.add_argument("--out", type=Path, help="output file for --text; its extension picks the format "
                       "(.wav .mp3 .flac .ogg .opus)")
    speak.add_argument("--out-dir", type=Path, help="output folder for --text-file: NNNN.FORMAT per line number")
    speak.add_argument("--format", default="wav", choices=["wav", "mp3", "flac", "ogg", "opus"],
                       help="file format for --out-dir (default wav)")
    speak.add_argument("--overwrite", action="store_true", help="redo lines whose file exists (default: skip them, "
                       "so an interrupted --text-file run resumes)")
    voice = speak.add_mutually_exclusive_group()
    voice.add_argument("--voice", "--speaker", dest="voice", metavar="NAME",
                       help="a voice of the model, e.g. a speaker's name (see --list-voices)")
    voice.add_argument("--reference", type=Path, nargs="+", metavar="CLIP", help="speak like these clips instead")
    speak.add_argument("--temperature", type=float, default=0.75)
    speak.add_argument("--top-k", type=int, default=50)
    speak.add_argument("--top-p", type=float, default=0.85)
    speak.add_argument("--repetition-penalty", type=float, default=10.0)
    speak.add_argument("--length-penalty", type=float, default=1.0)
    speak.add_argument("--speed", type=float, default=1.0, help="0.25 to 4 (default 1)")
    speak.add_argument("--seed", type=int, help="fixed seed: the same text gives the same audio")
    _device_options(speak)
    speak.set_defaults(func=_speak)

    serve = sub.add_parser("serve", help="serve a model over HTTP (OpenAI-compatible /v1/audio/speech)")
    serve.add_argument("model", type=Path, help="model folder: an export or a base model")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need a token)")
    serve.add_argument("--port", type=int, default=8020)
    token = serve.add_mutually_exclusive_group()
    token.add_argument("--token-file", type=Path, metavar="FILE", help="require 'Authorization: Bearer TOKEN', "
                       "TOKEN being this file's first line (default: $XTTS_FINETUNE_TOKEN, if set)")
    token.add_argument("--token", help="the token itself; visible to every user in `ps`: prefer --token-file or the env var")
    serve.add_argument("--allowed-hosts", nargs="+", metavar="NAME", help="Host header names accepted "
                       "(default on 127.0.0.1: localhost 127.0.0.1 ::1, which stops DNS rebinding; elsewhere: any)")
    serve.add_argument("--max-queue", type=int, default=4, help="requests admitted at once; more get 503 (default 4)")
    serve.add_argument("--max-chars", type=int, default=None,
                       help="longest input accepted (default: 4000, the web UI's Speak limit too)")
    serve.add_argument("--max-batch", type=int, default=8, help="sentences decoded together, across the requests "
                       "waiting (default 8; more raises throughput under load, and memory)")
    serve.add_argument("--language", help="language of requests that name none (OpenAI clients cannot); default: "
                       "the model's language, else a guess from the text's script")
    _device_options(serve)
    serve.set_defaults(func=_serve)


def _device_options(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="on a GPU: auto (bf16 where native, else fp16 where fast, else fp32), fp16, bf16 or fp32 (exact, slower); a CPU always runs fp32")


def _speak(args) -> int:
    import numpy as np

    from xtts_finetune.audio_out import format_for_path, write_audio
    from xtts_finetune.progress import ConsoleProgress, report
    from xtts_finetune.synthesis import Synthesizer

    jobs = _jobs(args)
    if not jobs and not args.list_voices:
        return 0  # every line already spoken
    if args.out:
        format_for_path(args.out)  # a bad extension fails before the model loads
    synth = Synthesizer(args.model, device=args.device, precision=args.precision)
    if args.list_voices:
        print("voices:    " + ", ".join(synth.voices()))
        print("languages: " + ", ".join(synth.languages))
        return 0
    settings = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, speed=args.speed,
                    repetition_penalty=args.repetition_penalty, length_penalty=args.length_penalty, seed=args.seed)
    voice = args.reference or args.voice
    # Check every line first: a bad line 40 should not surface after 39 files were spoken.
    requests = []
    for out, text in jobs:
        try:
            requests.append((out, synth.prepare(text, args.language, voice, **settings)))
        except UserError as err:
            raise UserError(f"{out.name} (from {args.text_file or '--text'}): {err}") from err
    progress = ConsoleProgress()
    for done, (out, request) in enumerate(requests):
        report(progress, "speak", done, len(requests), str(out))
        write_audio(out, np.concatenate(list(synth.generate(request, stream=False))), synth.sample_rate)
    report(progress, "speak", len(requests), len(requests), "done")
    for out, _ in requests:
        print(out)
    return 0


def _jobs(args) -> list[tuple[Path, str]]:
    """(output file, text) pairs; lines whose file exists are skipped unless --overwrite."""
    if args.list_voices:
        return []
    if args.text is not None:
        if not args.out or args.out_dir:
            raise UserError("--text writes one file", fix="pass --out FILE (e.g. --out speech.wav)")
        return [(args.out, args.text)]
    if args.text_file is None:
        raise UserError("nothing to speak", fix="pass --text \"...\" or --text-file FILE")
    if not args.out_dir or args.out:
        raise UserError("--text-file writes one file per line", fix="pass --out-dir FOLDER")
    if not args.text_file.is_file():
        raise UserError(f"text file {args.text_file} does not exist", fix="check the path")
    try:
        lines = args.text_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{args.text_file} is not UTF-8 text: {err}", fix="save it as UTF-8") from err
    sweep_partial_writes(args.out_dir)  # files a killed run was writing: those lines are spoken again
    width = max(4, len(str(len(lines))))
    jobs = [(args.out_dir / f"{n:0{width}d}.{args.format}", line) for n, line in enumerate(lines, 1) if line.strip()]
    if not jobs:
        raise UserError(f"{args.text_file} has no text", fix="write one utterance per line")
    skipped = [out for out, _ in jobs if out.exists() and not args.overwrite]
    if skipped:
        print(f"skipping {len(skipped)} line(s) already spoken in {args.out_dir} (--overwrite redoes them)")
    return [(out, text) for out, text in jobs if out not in skipped]


def _serve(args) -> int:
    from xtts_finetune.server import MAX_INPUT_CHARS, check_binding, read_token, serve

    if args.token:
        print("warning: --token is visible to other users of this computer (ps); prefer --token-file or "
              "$XTTS_FINETUNE_TOKEN", file=sys.stderr)
    token = args.token or read_token(args.token_file)
    check_binding(args.host, token)  # before the model loads
    if args.max_chars is not None and args.max_chars < 1:
        raise UserError(f"--max-chars must be at least 1, not {args.max_chars}", fix="pass e.g. --max-chars 4000")
    if args.max_batch < 1:
        raise UserError(f"--max-batch must be at least 1, not {args.max_batch}", fix="pass e.g. --max-batch 8")
    print(f"loading {args.model}; then serving on http://{args.host}:{args.port} (API docs at /docs"
          f"{', with the token' if token else ''})", flush=True)
    serve(args.model, host=args.host, port=args.port, token=token, max_queue=args.max_queue,
          max_chars=MAX_INPUT_CHARS if args.max_chars is None else args.max_chars, device=args.device, max_batch=args.max_batch, language=args.language, precision=args.precision,
          allowed_hosts=tuple(args.allowed_hosts) if args.allowed_hosts else None)
    return 0
