"""`xtts-finetune evaluate`: how good is the voice? CER, speaker similarity, pace and babble, against the base."""

from __future__ import annotations

import json
from pathlib import Path

from xtts_finetune.progress import ConsoleProgress


def register(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="measure an export or a run's checkpoints against the base model and the real clips",
        description="Speak a fixed sentence set with the model and its base in the dataset's voice; report CER/WER "
                    "(Whisper), speaker similarity, pace and trailing babble, with the real clips as the ceiling. "
                    "A run's kept checkpoints are all scored and one is recommended (export --checkpoint recommended).")
    evaluate.add_argument("target", type=Path, help="an export (WORKSPACE/models/NAME) or a run (WORKSPACE/runs/RUN)")
    evaluate.add_argument("--against", help="base to compare with: XTTS version or model folder (default: the base "
                          "it was trained from)")
    evaluate.add_argument("--sentences", type=Path, help="UTF-8 file, one sentence a line (default: the dataset's "
                          "eval texts and a built-in list for the language)")
    evaluate.add_argument("--dataset", type=Path, help="workspace or dataset folder (default: the one it was trained on)")
    evaluate.add_argument("--whisper-model", help="faster-whisper model name or folder (default: the dataset's)")
    evaluate.add_argument("--speaker-model", help="speaker-verification model: hub id or folder "
                          "(default microsoft/wavlm-base-plus-sv)")
    evaluate.add_argument("--max-checkpoints", type=int, default=3, help="for a run: the best and the newest, at most N")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--json", action="store_true", help="print evaluation.json instead of the table")
    evaluate.set_defaults(func=_evaluate)


def _evaluate(args) -> int:
    from xtts_finetune.evaluate import evaluate, format_table

    result = evaluate(args.target, against=args.against, sentences=args.sentences, dataset=args.dataset,
                      whisper_model=args.whisper_model, speaker_model=args.speaker_model,
                      max_checkpoints=args.max_checkpoints, device=args.device, progress=ConsoleProgress())
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(format_table(result))
    print(f"details, audio and chart: {Path(result.target) / 'evaluation'}")
    if result.recommended:
        print(f"next: xtts-finetune export {result.target} --checkpoint recommended --name NAME")
    return 0
