"""Model folders downloaded as zips built while they stream: no zip file on disk and no copy in Gradio's
cache, so one export is one copy of the weights however often it is downloaded."""

from __future__ import annotations

import html
import zipfile
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from xtts_finetune.utils import human_bytes
from xtts_finetune.webui.common import UI, safe_name

ROUTE = "xf/zip"  # GET ROUTE/NAME.zip: models/NAME as a zip (".zip": Gradio's middleware never recompresses it)
BLOCK = 1 << 20


class _Pipe:
    """Where zipfile writes: no seek or tell, so it writes sizes after each file (data descriptors)."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _files(model_dir: Path) -> list[Path]:
    """The folder's files; a link pointing out of it is left out, so a download never leaves the folder."""
    root = model_dir.resolve()
    return [p for p in sorted(model_dir.rglob("*")) if p.is_file() and p.resolve().is_relative_to(root)]


def zip_chunks(model_dir: Path) -> Iterator[bytes]:
    """NAME/... entries of the folder, stored (weights do not shrink), as bytes as they are read."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED) as archive:
        for path in _files(model_dir):
            info = zipfile.ZipInfo.from_file(path, f"{model_dir.name}/{path.relative_to(model_dir).as_posix()}")
            with open(path, "rb") as src, archive.open(info, "w") as dest:
                while block := src.read(BLOCK):
                    dest.write(block)
                    yield pipe.take()
            yield pipe.take()
    yield pipe.take()


def model_folder(ui: UI, name: str) -> Path | None:
    """models/NAME when NAME is one of the workspace's exports; any other name (a path, '..') is None."""
    if safe_name(name) != name:
        return None
    return next((p for p in ui.models() if p.name == name), None)


def download_link(ui: UI, name: str | None) -> str:
    """A plain link to the streamed zip: the browser downloads it with the page's login."""
    folder = model_folder(ui, name) if name else None
    if folder is None:
        return ""
    size = human_bytes(sum(p.stat().st_size for p in _files(folder)))
    return (f'<a class="xf-download" href="{ROUTE}/{quote(folder.name)}.zip" download="{html.escape(folder.name)}.zip">'
            f"Download {html.escape(folder.name)}.zip</a> <span class='xf-note'>({size}, zipped as it downloads)</span>")


def add_zip_route(app, ui: UI) -> None:
    """Serve ROUTE/NAME.zip on the running Gradio app, behind the same login check as its own routes."""
    from fastapi import HTTPException
    from fastapi.responses import StreamingResponse

    # Gradio's page config asks for the login: the same dependencies guard the zips.
    login = next((r.dependencies for r in app.routes if getattr(r, "path", "") == "/config"), None)
    if login is None or (not login and getattr(app, "auth", None)):
        raise RuntimeError("Gradio's /config route no longer carries its login check: the zip route would be open")

    def download(name: str):
        folder = model_folder(ui, name)
        if folder is None:
            raise HTTPException(404, f"No exported model named {name!r} in this workspace.")
        return StreamingResponse(zip_chunks(folder), media_type="application/zip",
                                 headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(folder.name)}.zip"})

    app.add_api_route(f"/{ROUTE}/{{name}}.zip", download, methods=["GET"], dependencies=list(login))
