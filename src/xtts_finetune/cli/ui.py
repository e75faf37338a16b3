"""`xtts-finetune ui`: the web UI in a browser (local only unless --host or --share say otherwise)."""

from __future__ import annotations

import os
from pathlib import Path


def register(sub) -> None:
    ui = sub.add_parser("ui", help="open the web UI (dataset, training, export, speech in the browser)")
    ui.add_argument("--workspace", type=Path, default=Path("workspace"), help="voice project folder (default: ./workspace)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only; "
                    "0.0.0.0 exposes it to your network)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--share", action="store_true", help="also create a public gradio.live link (needs --auth)")
    ui.add_argument("--auth", default=os.environ.get("XTTS_FINETUNE_UI_AUTH"), metavar="USER:PASSWORD",
                    help="login for the page; required with --share or a non-local --host (env XTTS_FINETUNE_UI_AUTH)")
    ui.add_argument("--no-auth", action="store_true",
                    help="serve a non-local --host without a login (only on a network you trust, e.g. a container)")
    ui.set_defaults(func=_ui)


def _ui(args) -> int:
    from xtts_finetune.webui.app import check_exposure, launch, parse_auth

    auth = parse_auth(args.auth)
    check_exposure(args.host, args.share, auth, args.no_auth)  # before the slow imports and the page build
    launch(args.workspace, host=args.host, port=args.port, share=args.share, auth=auth, allow_open=args.no_auth)
    return 0
