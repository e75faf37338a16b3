"""Cross-process locks that work on every OS, with their owner recorded so a dead one is recognised.

`filelock` gives the OS lock (flock on Linux and macOS, msvcrt on Windows), which the OS releases
when its process dies. Beside it, OWNER.json records the owner's pid and start time: a lock still
held by a leftover (a child that inherited the handle, a network file system that keeps it) whose
owner has died, or whose pid now belongs to another process, is stale, and is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import psutil
from filelock import FileLock, Timeout

from xtts_finetune.errors import UserError
from xtts_finetune.utils import atomic_write_text


@dataclass
class Owner:
    pid: int
    started: float  # the process's start time: a pid reused by a later process does not match
    host: str

    def alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # another machine sharing the folder: we cannot tell, so we trust it
        return process_started(self.pid) is not None and abs(process_started(self.pid) - self.started) < 1.0


def process_started(pid: int) -> float | None:
    """When process `pid` started (unix time), or None if there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return None


def this_process() -> Owner:
    return Owner(os.getpid(), process_started(os.getpid()) or time.time(), socket.gethostname())


def _owner_path(path: Path) -> Path:
    return path.with_name(path.name + ".owner")


def read_owner(path: str | Path) -> Owner | None:
    try:
        return Owner(**json.loads(_owner_path(Path(path)).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def holder(path: str | Path) -> Owner | None:
    """The live process holding the lock at `path`, or None when it is free or its owner is dead."""
    path = Path(path)
    if not path.exists():
        return None
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = read_owner(path)
        if owner is None:  # held, its owner record not written yet
            return Owner(0, 0.0, socket.gethostname())
        return owner if owner.alive() else None
    except OSError:
        return None
    lock.release()
    return None


@contextmanager
def exclusive(path: str | Path, what: str, timeout: float = 1.0) -> Iterator[Owner]:
    """Hold the lock at `path` for the block, waiting up to `timeout` s; a UserError names the owner if busy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    for attempt in range(2):
        try:
            lock.acquire(timeout=timeout)
            break
        except Timeout:
            owner = read_owner(path)
            if attempt == 0 and owner is not None and not owner.alive():
                _break_stale(path)  # the OS lock outlived its owner: a fresh lock file is free
                continue
            who = f"process {owner.pid}" if owner else "another process"
            raise UserError(f"{what} is in use by {who} (lock {path})",
                            fix="wait for it to finish; if that process is gone, delete the lock file") from None
    me = this_process()
    try:
        atomic_write_text(_owner_path(path), json.dumps(asdict(me)))
        yield me
    finally:
        _owner_path(path).unlink(missing_ok=True)
        lock.release()


def _break_stale(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # Windows keeps an open file: then the next acquire fails and names the owner
