"""What every tab shares: the workspace, the job runner, upload handling and the job status panel."""

from __future__ import annotations

import filecmp
import html
import json
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from xtts_finetune.errors import UserError
from xtts_finetune.languages import language_choices
from xtts_finetune.utils import safe_join
from xtts_finetune.webui.jobs import Job, JobRunner
from xtts_finetune.webui.messages import split_fix, ui_words

# Searchable: the 17 XTTS languages first (marked), then every ISO 639-1 language; a typed ISO 639-3 code works too.
LANGUAGE_CHOICES = language_choices(two_letter_only=True)
# The browser's own audio player: plays anywhere, and its <audio> element carries the clip's URL.
PLAYER = gr.WaveformOptions(show_recording_waveform=False)
STATUS_WORDS = {
    "queued": "Queued", "running": "Running", "stopping": "Stopping", "finished": "Finished", "failed": "Failed",
    "partial": "Finished with problems", "stopped": "Stopped", "interrupted": "Interrupted",
}
SHOWN_PROBLEMS = 8  # more are in the job log


@dataclass
class UI:
    """The state one app shares across tabs and browser sessions."""

    workspace: Path
    jobs: JobRunner
    allowed_roots: tuple[Path, ...] | None = None  # where typed folder paths may point; None: anywhere (loopback)

    def server_path(self, value: str | Path) -> Path:
        """A folder or file path typed into the page, refused outside `allowed_roots` when those are set."""
        path = Path(str(value).strip()).expanduser().resolve()
        roots = [Path(r).resolve() for r in self.allowed_roots or ()]
        if self.allowed_roots is not None and not any(path == r or r in path.parents for r in roots):
            raise UserError(f"{path} is outside the folders this UI may read: {', '.join(map(str, roots))}.",
                            fix="Upload the files instead, or move them under one of those folders "
                            "(whoever started the UI can add one with --allowed-root FOLDER).")
        return path

    def models(self) -> list[Path]:
        """Exported model folders, newest first."""
        root = self.workspace / "models"
        found = [p for p in root.glob("[!.]*") if (p / "config.json").is_file()] if root.is_dir() else []  # not staging
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


@dataclass
class JsonlTail:
    """A growing JSON-lines file read incrementally: each poll parses only what was appended since the last.

    A 100k-step run's events file is tens of MB; re-parsing it every second per open tab would take the
    GIL from the training in the same process. `keep` maps an event to a row (None drops it).
    """

    path: Path
    keep: Callable[[dict], Any]
    offset: int = 0
    rows: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def poll(self) -> list:
        with self._lock:
            size = self.path.stat().st_size if self.path.is_file() else 0
            if size < self.offset:  # the file was replaced: start over
                self.offset, self.rows = 0, []
            if size > self.offset:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read(size - self.offset)
                complete = chunk.rfind(b"\n") + 1  # a line still being written is read at the next poll
                for line in chunk[:complete].splitlines():
                    try:
                        row = self.keep(json.loads(line))
                    except (ValueError, TypeError, KeyError):
                        continue  # a line cut short by a kill
                    if row is not None:
                        self.rows.append(row)
                self.offset += complete
            return list(self.rows)


def safe_name(name: str, default: str = "file") -> str:
    """A file or folder name safe on every OS: letters, digits, dot, dash, underscore."""
    cleaned = re.sub(r"[^\w.\-]+", "_", Path(str(name)).name, flags=re.UNICODE).strip("._")
    return cleaned[:120] or default


def copy_uploads(ui: UI, files, folder: str) -> list[Path]:
    """Copy files the browser uploaded into WORKSPACE/uploads/FOLDER/; uploads never land elsewhere.

    Each keeps the name it was uploaded under (as Gradio stored it, a valid name on this computer), so
    every message about it names the file the user chose; a second file of the same name goes in FOLDER/2/.
    """
    paths = []
    for item in files or []:
        src = Path(getattr(item, "name", item))
        name = src.name if src.name not in ("", ".", "..") else safe_name(src.name)
        dest, n = safe_join(ui.workspace, "uploads", safe_name(folder), name), 1
        while dest in paths:
            n += 1
            dest = safe_join(ui.workspace, "uploads", safe_name(folder), str(n), name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or not filecmp.cmp(src, dest, shallow=False):  # same name and size is not the same clip
            shutil.copyfile(src, dest)
        paths.append(dest)
    return paths


def fail(err: Exception):
    """Raise a readable page error for a user mistake (never a traceback), in the page's words."""
    reason, fix = split_fix(ui_words(str(err)))
    raise gr.Error(f"{reason}\nFix: {fix}" if fix else reason, print_exception=False)


def message_html(text: str, tone: str = "failed", elem: str = "") -> str:
    """A one-off result or error in the same panel look as a job (the Speak tab's, a refused Resume)."""
    reason, fix = split_fix(ui_words(text))
    hint = f'<div class="xf-hint">Fix: {html.escape(fix)}</div>' if fix else ""
    return (f'<div class="xf-job xf-{tone}" data-status="{tone}" role="status" aria-live="polite">'
            f'<div class="xf-msg">{html.escape(reason)}</div>{hint}</div>')


def _problems_html(rows: list[dict]) -> str:
    if not rows:
        return ""
    items = "".join(
        f'<li><b>{html.escape(r["file"])}</b>: {html.escape(r["reason"])}'
        + (f'<br><span class="xf-fix">Fix: {html.escape(r["fix"])}</span>' if r.get("fix") else "") + "</li>"
        for r in rows[:SHOWN_PROBLEMS])
    more = f"<li>... and {len(rows) - SHOWN_PROBLEMS} more in the job log</li>" if len(rows) > SHOWN_PROBLEMS else ""
    return f'<ul class="xf-problems">{items}{more}</ul>'



def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def job_html(job: Job | None, idle: str = "No job yet.") -> str:
    """The status panel: a progress bar with percentage and ETA, the message, and any hint."""
    if job is None:
        return f'<div class="xf-job xf-idle">{html.escape(idle)}</div>'
    fraction = job.progress if job.progress is not None else (1.0 if job.status == "finished" else 0.0)
    bits = [STATUS_WORDS.get(job.status, job.status)]
    if job.progress is not None:
        bits.append(f"{job.progress:.0%}")
    if job.active and job.eta_s:
        bits.append(f"ETA {_duration(job.eta_s)}")
    end = job.ended or time.time()
    bits.append(f"{'elapsed' if job.active else 'took'} {_duration(end - job.started)}")
    message = html.escape(job.message or "").replace("\n", "<br>")
    hint = f'<div class="xf-hint">{html.escape(job.hint)}</div>' if job.hint else ""
    busy = " xf-busy" if job.active and job.progress is None else ""
    value = "" if busy else f' aria-valuenow="{fraction * 100:.0f}"'
    return (
        f'<div class="xf-job xf-{job.status}" data-job="{html.escape(job.id)}" data-status="{job.status}"'
        f' title="{html.escape(job.kind)} job {html.escape(job.id)}" role="status" aria-live="polite">'
        f'<div class="xf-job-head"><span class="xf-badge">{" · ".join(bits)}</span></div>'
        f'<div class="xf-bar{busy}" role="progressbar" aria-label="{html.escape(job.kind)} progress"'
        f' aria-valuemin="0" aria-valuemax="100"{value}><div style="width:{fraction * 100:.1f}%"></div></div>'
        f'<div class="xf-msg">{message}</div>{_problems_html(job.problems)}{hint}</div>'
    )


def job_log(job: Job | None, lines: int = 40) -> str:
    return "\n".join(job.log[-lines:]) if job else ""


def _paths_in(value) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_in(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths_in(v)]
    return []


def start_job(ui: UI, kind: str, work, params: dict) -> Job:
    """Start a background job; every path among its parameters must lie inside the allowed roots."""
    try:
        for path in _paths_in(params):
            ui.server_path(path)
        return ui.jobs.start(kind, work, params)
    except UserError as err:
        fail(err)


def job_signature(job: Job | None) -> tuple:
    """Changes whenever what the page shows about a job changes; lets timers skip idle updates."""
    if job is None:
        return ()
    tick = int(time.time()) if job.active else None  # "elapsed" keeps counting while a model loads
    return (job.id, job.status, job.progress, job.message, len(job.log), job.eta_s is None, tick)
