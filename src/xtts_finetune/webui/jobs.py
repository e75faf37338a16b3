"""Background jobs for the web UI: long work runs in a thread, never in a request handler.

Each job's state lives in WORKSPACE/jobs/JOB.json, rewritten atomically as it changes, so the page
can poll it, a browser refresh finds it again, and a restarted app reads it back. A job that was
running when its process died is shown as `interrupted`, with a hint on how to resume it.

Jobs that load models (dataset, train, export) take the GPU one at a time: a second one is `queued`
until the first ends, and Speak is refused while one runs, so no two models fill one GPU.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from xtts_finetune.errors import UserError
from xtts_finetune.locks import process_started
from xtts_finetune.progress import Progress
from xtts_finetune.utils import atomic_write_text
from xtts_finetune.webui.messages import split_fix, ui_words, unexpected

ACTIVE = ("queued", "running", "stopping")
GPU_KINDS = ("dataset", "train", "export")  # the kinds that load models (Whisper, XTTS)
LOG_LINES = 200
SAVE_EVERY_S = 0.5
KIND_NAMES = {"dataset": "dataset", "train": "training", "export": "export"}
RESUME_HINTS = {
    "train": "Press Resume on the Train tab to continue from the last saved checkpoint.",
    "dataset": "Create the dataset again: sources already processed are kept and skipped.",
    "export": "Export again; nothing was written to the model folder.",
}


@dataclass
class Job:
    """What the page shows about one piece of background work."""

    id: str
    kind: str
    status: str = "running"  # queued | running | stopping | finished | partial | failed | stopped | interrupted
    progress: Optional[float] = None  # fraction 0..1, None while the amount of work is unknown
    stage: str = ""
    message: str = ""
    eta_s: Optional[float] = None
    log: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: Optional[float] = None
    result: Any = None
    params: dict = field(default_factory=dict)
    pid: int = 0
    hint: str = ""
    problems: list[dict] = field(default_factory=list)  # what failed, listed in the panel: file, reason, fix

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass
class JobContext:
    """Handed to the work function: report progress, check for a stop request, add log lines."""

    progress: Callable[[Progress], None]
    stop_event: threading.Event
    log: Callable[[str], None]
    summary: str = ""  # the finished job's message, when the work sets one
    hint: str = ""  # what to do next, shown under the finished job's message
    problems: list[dict] = field(default_factory=list)  # files that failed: the job ends amber ("partial")
    nothing_done: bool = False  # with problems: nothing at all succeeded, the job ends red ("failed")


def _jsonable(value):
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _owner_alive(job: Job) -> bool:
    """Whether the process that ran `job` still runs: its pid exists and started before the job (not a reuse)."""
    if job.pid == os.getpid():
        return False  # a job of this process that this runner does not own is a leftover from before
    started = process_started(job.pid)
    return started is not None and started <= job.started + 1.0


class _ThreadLogHandler(logging.Handler):
    """Copies warnings logged from the job's own thread into its log tail."""

    def __init__(self, thread_id: int, sink: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.thread_id, self.sink = thread_id, sink

    def emit(self, record):
        if record.thread == self.thread_id:
            self.sink(f"{record.levelname.lower()}: {record.getMessage()}")


class JobRunner:
    """Runs jobs in threads, one active job per kind, and keeps their records on disk."""

    def __init__(self, workspace: str | Path):
        self.dir = Path(workspace) / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._saved_at: dict[str, float] = {}
        self._pending: dict[str, threading.Timer] = {}
        self._gpu = threading.Lock()
        self._gpu_holder: Optional[str] = None  # a job id, or "speak"
        self.gpu_release_hooks: list[Callable[[], None]] = []  # free models others keep loaded (Speak's)
        for path in sorted(self.dir.glob("*.json")):
            job = self._read(path)
            if job is None:
                continue
            if job.active and not _owner_alive(job):
                job.status, job.ended = "interrupted", job.ended or path.stat().st_mtime
                job.message = f"The app stopped while this {KIND_NAMES.get(job.kind, job.kind)} job was running."
                job.hint = RESUME_HINTS.get(job.kind, "Start it again.")
                self._save(job)
            self._jobs[job.id] = job

    # ---- reading -------------------------------------------------------------------------------

    def _read(self, path: Path) -> Optional[Job]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names = {f.name for f in fields(Job)}
            return Job(**{k: v for k, v in data.items() if k in names})
        except (OSError, ValueError, TypeError) as err:
            logging.getLogger(__name__).warning("skipping unreadable job record %s: %s", path, err)
            return None

    def get(self, job_id: str) -> Optional[Job]:
        """The job's current state; read from disk when another process owns it."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job_id not in self._threads and job.active:
                job = self._read(self.dir / f"{job_id}.json") or job
            return None if job is None else Job(**asdict(job))

    def list(self, kind: Optional[str] = None) -> list[Job]:
        """Jobs newest first."""
        with self._lock:
            ids = [j.id for j in self._jobs.values() if kind is None or j.kind == kind]
        jobs = [self.get(i) for i in ids]
        return sorted((j for j in jobs if j), key=lambda j: j.started, reverse=True)

    def latest(self, kind: Optional[str] = None) -> Optional[Job]:
        """The active job of `kind` if there is one, else the newest."""
        jobs = self.list(kind)
        return next((j for j in jobs if j.active), jobs[0] if jobs else None)

    # ---- running -------------------------------------------------------------------------------

    def start(self, kind: str, work: Callable[[JobContext], Any], params: Optional[dict] = None) -> Job:
        """Run `work(ctx)` in a new thread. Refuses while another job of the same kind is active."""
        with self._lock:
            busy = next((j for j in self.list(kind) if j.active), None)
            if busy is not None:
                what = KIND_NAMES.get(kind, kind)
                done = f", {busy.progress:.0%} done" if busy.progress is not None else ""
                raise UserError(
                    f"A {what} job is already running (started {time.strftime('%H:%M:%S', time.localtime(busy.started))}{done}).",
                    fix=f"Wait for it to finish or stop it first; only one {what} job runs at a time.",
                )
            job = Job(id=f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{uuid.uuid4().hex[:6]}", kind=kind,
                      started=time.time(), params=_jsonable(params or {}), pid=os.getpid())
            if kind in GPU_KINDS and self._gpu_holder is not None:
                job.status, job.message = "queued", f"Queued: starts when {self._gpu_user()} ends (one GPU job at a time)."
            stop = threading.Event()
            thread = threading.Thread(target=self._run, args=(job, work, stop), name=f"job-{job.id}", daemon=True)
            self._jobs[job.id], self._stops[job.id], self._threads[job.id] = job, stop, thread
            self._save(job)
            thread.start()
            return self.get(job.id)

    def stop(self, job_id: str) -> Optional[Job]:
        """Ask a job to stop; the work function sees its stop_event set and winds down."""
        with self._lock:
            job, stop = self._jobs.get(job_id), self._stops.get(job_id)
            if job is None or stop is None or not job.active:
                return self.get(job_id)
            stop.set()
            job.status, job.message = "stopping", "Stopping after the current step..."
            self._save(job)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Optional[Job]:
        """Block until the job's thread ends (for the CLI and tests)."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(job_id)

    def _gpu_user(self) -> str:
        holder = self._jobs.get(self._gpu_holder or "")
        return f"the {KIND_NAMES.get(holder.kind, holder.kind)} job" if holder else "Speak"

    @contextmanager
    def gpu(self, who: str, stop: Optional[threading.Event] = None, wait: bool = True):
        """Hold the GPU for `who`; waits (until `stop` is set), or with wait=False refuses while a job holds it."""
        while not self._gpu.acquire(timeout=0.2):
            if not wait and self._gpu_holder in self._jobs:  # another Speak call is short: that one is waited for
                raise UserError(f"The GPU is busy with {self._gpu_user()}.",
                                fix="Wait for it to finish (or stop it) and try again; one model uses the GPU at a time.")
            if stop is not None and stop.is_set():
                yield False
                return
            self._mark_queued(who)
        self._gpu_holder = who
        try:
            if who in self._jobs:
                for release in self.gpu_release_hooks:
                    release()
            yield True
        finally:
            self._gpu_holder = None
            self._gpu.release()

    def _mark_queued(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.status == "running":
                job.status, job.message = "queued", f"Queued: starts when {self._gpu_user()} ends (one GPU job at a time)."
                self._save(job)

    def _run(self, job: Job, work: Callable[[JobContext], Any], stop: threading.Event) -> None:
        if job.kind not in GPU_KINDS:
            return self._work(job, work, stop)
        with self.gpu(job.id, stop) as granted:
            if not granted or stop.is_set():
                self._finish(job, "stopped", "Stopped before it started.")
                with self._lock:
                    self._threads.pop(job.id, None)
                    self._stops.pop(job.id, None)
                return
            if job.status == "queued":
                with self._lock:
                    job.status, job.message = "running", "Started."
                    self._save(job)
            self._work(job, work, stop)

    def _work(self, job: Job, work: Callable[[JobContext], Any], stop: threading.Event) -> None:
        handler = _ThreadLogHandler(threading.get_ident(), lambda line: self._log(job, line))
        logging.getLogger().addHandler(handler)
        ctx = JobContext(progress=lambda p: self._progress(job, p), stop_event=stop, log=lambda line: self._log(job, line))
        try:
            result = work(ctx)
            outcome = "failed" if ctx.nothing_done else "partial"
            status = "stopped" if stop.is_set() else outcome if ctx.problems else "finished"
            message = "Stopped." if stop.is_set() else ctx.summary or job.message or "Done."
            job.problems = ctx.problems
            self._finish(job, status, message, result=_jsonable(result), progress=None if stop.is_set() else 1.0,
                         hint=ctx.hint if status == "finished" else "")
        except UserError as err:
            reason, fix = split_fix(ui_words(str(err)))
            self._finish(job, "failed", reason, hint=f"Fix: {fix}" if fix else "")
        except Exception as err:  # noqa: BLE001 - the page shows a short message; details go to the log file
            log_file = self.dir / f"{job.id}.log"
            log_file.write_text(traceback.format_exc(), encoding="utf-8")
            message, fix = unexpected(err, job.kind)
            self._finish(job, "failed", message, hint=f"Fix: {fix} (details: {log_file})" if fix else f"Details are in {log_file}.")
        finally:
            logging.getLogger().removeHandler(handler)
            with self._lock:
                self._threads.pop(job.id, None)
                self._stops.pop(job.id, None)

    def _finish(self, job: Job, status: str, message: str, *, result=None, progress=None, hint: str = "") -> None:
        with self._lock:
            job.status, job.message, job.ended, job.result, job.hint = status, message, time.time(), result, hint
            if progress is not None:
                job.progress = progress
            job.eta_s = None
            self._log(job, message, save=False)
            for row in job.problems:
                self._log(job, f"failed: {row['file']}: {row['reason']}", save=False)
            self._save(job)

    def _progress(self, job: Job, p: Progress) -> None:
        with self._lock:
            if p.fraction is not None:
                job.progress = p.fraction
            job.stage = p.stage
            if job.status == "running":
                if p.message and p.message != job.message:
                    self._log(job, f"{p.stage}: {p.message}", save=False)
                job.message = p.message or job.message
            eta = p.extra.get("eta_s", (p.extra.get("event") or {}).get("eta_s"))
            job.eta_s = float(eta) if isinstance(eta, (int, float)) else None
            self._save_soon(job)

    def _log(self, job: Job, line: str, save: bool = True) -> None:
        with self._lock:
            job.log.append(f"{time.strftime('%H:%M:%S')} {line}")
            del job.log[:-LOG_LINES]
            if save:
                self._save(job)

    def _save_soon(self, job: Job) -> None:
        """Frequent progress reports reach the disk at most every SAVE_EVERY_S, the last one always."""
        wait = SAVE_EVERY_S - (time.monotonic() - self._saved_at.get(job.id, 0.0))
        if wait <= 0:
            self._save(job)
        elif job.id not in self._pending:
            self._pending[job.id] = timer = threading.Timer(wait, lambda: self._save(job))
            timer.daemon = True
            timer.start()

    def _save(self, job: Job) -> None:
        with self._lock:
            pending = self._pending.pop(job.id, None)
            if pending is not None:
                pending.cancel()
            self._saved_at[job.id] = time.monotonic()
            atomic_write_text(self.dir / f"{job.id}.json", json.dumps(asdict(job), indent=1))
