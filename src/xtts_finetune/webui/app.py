"""The Gradio page: four tabs, one per stage, over the same library API the CLI uses."""

from __future__ import annotations

import html
import os
import secrets
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the app never phones home

import gradio as gr  # noqa: E402

from xtts_finetune import __version__  # noqa: E402
from xtts_finetune.errors import UserError  # noqa: E402
from xtts_finetune.latents import default_cache_dir  # noqa: E402
from xtts_finetune.utils import is_loopback, prune  # noqa: E402
from xtts_finetune.webui import tab_dataset, tab_export, tab_speak, tab_train  # noqa: E402
from xtts_finetune.webui.common import UI  # noqa: E402
from xtts_finetune.webui.downloads import add_zip_route  # noqa: E402
from xtts_finetune.webui.jobs import JobRunner  # noqa: E402

# System fonts only: nothing is fetched from font CDNs, so the page works offline.
THEME = gr.themes.Soft(
    primary_hue="indigo", neutral_hue="slate",
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
).set(
    block_title_background_fill="none", block_title_text_color="*neutral_700", block_title_padding="0",
    block_title_text_size="*text_sm", block_label_text_size="*text_sm", block_label_background_fill="*neutral_50",
    block_label_text_color="*neutral_600", block_title_text_color_dark="*neutral_200",
)
CSS = (Path(__file__).with_name("style.css")).read_text(encoding="utf-8")
PRUNE_EVERY_S = 3600


def build_app(workspace: str | Path, allowed_roots: tuple[Path, ...] | None = None) -> gr.Blocks:
    """The page; `allowed_roots` limits the folder paths it accepts (None: any, for a UI on this computer)."""
    workspace = Path(workspace).expanduser().resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    ui = UI(workspace=workspace, jobs=JobRunner(workspace), allowed_roots=allowed_roots)
    # Gradio's copies of outputs (spoken audio, clips played) are dropped after a day, checked hourly.
    with gr.Blocks(title="xtts-finetune", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.HTML(
            f'<div class="xf-header"><div><h1>xtts-finetune</h1>'
            f"<p>Recordings of a voice in, a fine-tuned XTTS v2 voice out.</p></div>"
            f'<div class="xf-ws">workspace <code>{html.escape(str(workspace))}</code><br>v{__version__}</div></div>'
        )
        with gr.Tabs(overflow_behavior="wrap"):  # on a phone all four stay in view, on two rows if need be
            for label, module in (("1 · Dataset", tab_dataset), ("2 · Train", tab_train),
                                  ("3 · Export", tab_export), ("4 · Speak", tab_speak)):
                name = module.__name__.rsplit("_", 1)[-1]
                with gr.Tab(label, id=name, elem_id=f"tab-{name}") as tab:
                    module.build(ui, demo, tab)
    demo.xf_ui = ui  # for housekeeping and tests
    return demo


def allowed_roots_for(host: str, share: bool, workspace: Path, extra=None) -> tuple[Path, ...] | None:
    """On this computer typed paths may point anywhere (it is the user's own); exposed, only into these."""
    if not share and is_loopback(host):
        return None
    return (Path(workspace), *map(Path, extra or ()))


def generated_auth() -> tuple[str, str]:
    """A login for a UI started without one where it must have one (a container): printed once at start."""
    return "xtts", secrets.token_urlsafe(16)


def housekeeping(ui: UI, keep_days: float, max_cache_gb: float) -> list[Path]:
    """Prune uploads and the latents cache by age and size, unless a job may be using them."""
    if any(job.active for job in ui.jobs.list()):
        return []
    limit = int(max_cache_gb * 2**30)
    return [p for folder in (ui.workspace / "uploads", default_cache_dir())
            for p in prune(folder, max_age_days=keep_days, max_bytes=limit)]


def _keep_tidy(ui: UI, keep_days: float, max_cache_gb: float, stop: threading.Event) -> None:
    while True:
        housekeeping(ui, keep_days, max_cache_gb)
        if stop.wait(PRUNE_EVERY_S):
            return


def check_exposure(host: str, share: bool, auth: tuple[str, str] | None, allow_open: bool = False) -> None:
    """The page reads any folder path typed into it and drives the GPU: off this computer it needs a login."""
    if (share or not is_loopback(host)) and not auth and not allow_open:
        where = "a public link" if share else host
        raise UserError(
            f"refusing to serve the UI on {where} without a login: anyone who reaches it could read files on this "
            "computer and use the GPU",
            fix="pass --auth USER:PASSWORD (or set XTTS_FINETUNE_UI_AUTH), or --no-auth on a network you trust",
        )


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`USER:PASSWORD` -> (user, password); empty -> None."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not (user and sep and password):
        raise UserError(f"--auth {value!r} is not USER:PASSWORD", fix="e.g. --auth anna:a-long-password")
    return user, password


def launch(workspace: str | Path = "workspace", host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           *, auth: tuple[str, str] | None = None, allow_open: bool = False, block: bool = True, quiet: bool = False,
           max_upload_mb: int = 4096, allowed_roots: list[Path] | None = None, keep_days: float = 7,
           max_cache_gb: float = 20):
    """Serve the UI on host:port (local only unless `host`/`share` say otherwise) and print its URL.

    Off this computer, typed folder paths must lie in the workspace or `allowed_roots`. Uploads larger
    than `max_upload_mb` are refused; uploads and caches older than `keep_days` or beyond `max_cache_gb`
    (each) are pruned at start and every hour.
    """
    check_exposure(host, share, auth, allow_open)
    workspace = Path(workspace).expanduser().resolve()
    # Gradio's own cache, where browser uploads land first, stays inside the workspace too.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace / "uploads" / ".gradio"))
    demo = build_app(workspace, allowed_roots_for(host, share, workspace, allowed_roots))
    demo.queue(default_concurrency_limit=4)
    try:
        _, local_url, share_url = demo.launch(
            server_name=host, server_port=port, share=share, auth=auth, theme=THEME, css=CSS, quiet=True,
            prevent_thread_lock=True, allowed_paths=[str(workspace)], footer_links=[], show_error=False,
            max_file_size=max_upload_mb * 2**20,
        )
    except OSError as err:
        raise UserError(f"cannot serve the UI on {host}:{port}: {err}",
                        fix=f"another program uses port {port}: pass --port with a free one, e.g. --port {port + 1}") from None
    add_zip_route(demo.server_app, demo.xf_ui)  # model zips stream from the same server, behind the same login
    stop_tidying = threading.Event()
    threading.Thread(target=_keep_tidy, args=(demo.xf_ui, keep_days, max_cache_gb, stop_tidying), daemon=True,
                     name="xtts-housekeeping").start()
    demo.xf_stop_tidying = stop_tidying
    if not quiet:
        print(f"xtts-finetune UI for workspace {workspace}")
        print(f"  open {local_url}" + (f"\n  public link {share_url}" if share_url else ""), flush=True)
    if block:
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            pass
    return demo, local_url
