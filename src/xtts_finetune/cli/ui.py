"""`xtts-finetune ui`: the web UI in a browser (local only unless --host or --share say otherwise)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    ui = sub.add_parser("ui", help="open the web UI (dataset, training, export, speech in the browser)")
    ui.add_argument("--workspace", type=Path, default=Path("workspace"), help="voice project folder (default: ./workspace)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only; "
                    "0.0.0.0 exposes it to your network)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--share", action="store_true", help="also create a public gradio.live link (anyone with it can use the app)")
    ui.set_defaults(func=_ui)


def _ui(args) -> int:
    from xtts_finetune.webui.app import launch

    launch(args.workspace, host=args.host, port=args.port, share=args.share)
    return 0
