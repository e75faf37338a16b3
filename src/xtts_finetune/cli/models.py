"""`xtts-finetune models list|download`: the XTTS v2 releases this machine has, and fetching one."""

from __future__ import annotations

from xtts_finetune.progress import ConsoleProgress
from xtts_finetune.utils import human_bytes


def register(sub) -> None:
    models = sub.add_parser("models", help="list or download XTTS v2 base models")
    models_sub = models.add_subparsers(dest="models_command", metavar="MODELS_COMMAND", required=True)
    models_sub.add_parser("list", help="XTTS v2 releases and whether they are downloaded").set_defaults(func=_list)
    download = models_sub.add_parser("download", help="download a release (resumes, verifies sizes and hashes)")
    download.add_argument("version", help="v2.0.0, v2.0.1, v2.0.2, v2.0.3 or main")
    download.set_defaults(func=_download)


def _list(args) -> int:
    from xtts_finetune.basemodels import DEFAULT_VERSION, list_base_models

    for info in list_base_models():
        state = f"downloaded  {human_bytes(info.size):>10}  {info.path}" if info.cached else "not downloaded"
        print(f"{info.version:<8} {'(default) ' if info.version == DEFAULT_VERSION else '':10}{state}")
    return 0


def _download(args) -> int:
    from xtts_finetune.basemodels import download_base_model

    path = download_base_model(args.version, progress=ConsoleProgress())
    print(f"XTTS {args.version}: {path}")
    return 0
