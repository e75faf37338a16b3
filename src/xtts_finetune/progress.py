"""Progress reporting shared by every stage: a callback the CLI renders as a bar and the UI polls."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Progress:
    """One progress report. `total` is None when the amount of work is unknown."""

    stage: str
    done: float = 0
    total: Optional[float] = None
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def fraction(self) -> Optional[float]:
        return None if not self.total else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


def report(callback: Optional[ProgressCallback], stage: str, done: float = 0, total=None, message: str = "", **extra):
    """Call `callback` if there is one; stages call this instead of checking for None everywhere."""
    if callback is not None:
        callback(Progress(stage, done, total, message, extra))


class ConsoleProgress:
    """Renders progress reports as a one-line bar on a terminal, or as plain lines when piped."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last_line = ""
        self._last_time = 0.0

    def __call__(self, p: Progress) -> None:
        if p.fraction is not None:
            filled = int(self.width * p.fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"{p.stage:<10} [{bar}] {p.done:g}/{p.total:g} {p.message}"
        else:
            line = f"{p.stage:<10} {p.message}"
        finished = p.total is not None and p.done >= p.total
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(len(self._last_line)) + ("\n" if finished else ""))
            self.stream.flush()
        elif line != self._last_line and (finished or time.monotonic() - self._last_time > 1.0):
            self.stream.write(line + "\n")
            self._last_time = time.monotonic()
        self._last_line = "" if finished else line
