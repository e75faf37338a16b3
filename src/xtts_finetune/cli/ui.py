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
    login = ui.add_mutually_exclusive_group()
    login.add_argument("--auth", default=os.environ.get("XTTS_FINETUNE_UI_AUTH"), metavar="USER:PASSWORD",
                       help="login for the page; required with --share or a non-local --host (env XTTS_FINETUNE_UI_AUTH)")
    login.add_argument("--generate-auth", action="store_true",
                       help="without --auth (or the env var), make a random password and print it once (containers)")
    login.add_argument("--no-auth", action="store_true",
                       help="serve a non-local --host without a login (only on a network you trust)")
    ui.add_argument("--allowed-root", action="append", type=Path, default=[], metavar="FOLDER",
                    help="off this computer, folder paths typed into the page must lie in the workspace or one of these")
    ui.add_argument("--max-upload-mb", type=int, default=4096, help="largest file the page accepts (default 4096)")
    ui.add_argument("--keep-days", type=float, default=7, help="uploads, zips and cached latents older than this "
                    "are deleted (default 7)")
    ui.add_argument("--max-cache-gb", type=float, default=20, help="each of those folders is kept under this size, "
                    "oldest files deleted first (default 20)")
    ui.set_defaults(func=_ui)


def _ui(args) -> int:
    from xtts_finetune.webui.app import check_exposure, generated_auth, launch, parse_auth

    auth = parse_auth(args.auth)
    if args.generate_auth and auth is None:
        auth = generated_auth()
        print(f"login for this UI: user {auth[0]}, password {auth[1]} (set XTTS_FINETUNE_UI_AUTH to choose one)",
              flush=True)
    check_exposure(args.host, args.share, auth, args.no_auth)  # before the slow imports and the page build
    launch(args.workspace, host=args.host, port=args.port, share=args.share, auth=auth, allow_open=args.no_auth,
           max_upload_mb=args.max_upload_mb, allowed_roots=args.allowed_root, keep_days=args.keep_days,
           max_cache_gb=args.max_cache_gb)
    return 0
