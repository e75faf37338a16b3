"""What the page says: errors in the UI's words, a job's problems, plural counts, which past job fills a form.

Pure functions, so each rule has a fast test and every tab words things the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from xtts_finetune.dataset.manifest import MIN_TRAINING_CLIPS

# The library speaks to the command line; on the page the same advice names buttons and fields.
CLI_TO_UI = [
    (re.compile(r"start a new run without --resume"), "press Start training for a new run"),
    (re.compile(r"\(lower --save-every to lose less next time\)"), ""),
    (re.compile(r"export it \(xtts-finetune export [^)]*\) or start a new run"),
     "export it on the 3 · Export tab, or press Start training for a new run"),
    (re.compile(r"--base '([^']*)'"), r"the base model '\1'"),
    (re.compile(r"point --base at"), "choose"),
    (re.compile(r"or pass --base with a folder"), "or choose as base model a folder"),
    (re.compile(r"--base (\S+)"), r"base model \1"),
    (re.compile(r"pass the path of a local faster-whisper model folder"),
     "type the path of a local faster-whisper model folder into the Whisper model field"),
    (re.compile(r"unset HF_HUB_OFFLINE and run: xtts-finetune models download (\S+?);"),
     r"go online (HF_HUB_OFFLINE must be unset) and start again, so \1 downloads;"),
    (re.compile(r"xtts-finetune models download (\S+?)\b"), r"choose the release \1 again when online"),
    (re.compile(r"give --audio FILES_OR_FOLDERS.*"), "upload recordings or type a folder path"),
    (re.compile(r"run the same command again"), "start it again"),
]
NETWORK_ERRORS = ("ConnectError", "ConnectTimeout", "ConnectionError", "ReadTimeout", "Timeout", "gaierror",
                  "LocalEntryNotFoundError", "OfflineModeIsEnabled", "ProxyError", "NameResolutionError")
NEEDS_NETWORK = {
    "dataset": "Type the path of a Whisper model folder on this computer into the Whisper model field, "
               "or connect to the internet so the model can be downloaded.",
    "train": "Connect to the internet so the release can be downloaded, or choose as base model a folder "
             "already on this computer (one of your exports, or a copy of the release).",
}


def ui_words(text: str) -> str:
    """A library message with its command-line advice said in the page's words."""
    for pattern, words in CLI_TO_UI:
        text = pattern.sub(words, text)
    return "\n".join(re.sub(r"(?<=\S) {2,}", " ", line).rstrip() for line in text.strip().splitlines())


def split_fix(text: str) -> tuple[str, str]:
    """A UserError's text as (what went wrong, what to do)."""
    reason, _, fix = str(text).partition("\n  fix:")
    return reason.strip(), fix.strip()


def is_network_error(err: BaseException) -> bool:
    """Whether an exception (or one it was raised from) means the internet could not be reached."""
    while err is not None:
        if any(name in type(err).__name__ for name in NETWORK_ERRORS):
            return True
        err = err.__cause__ or err.__context__
    return False


def unexpected(err: BaseException, kind: str) -> tuple[str, str]:
    """(message, fix) for an exception no library check caught, as a newcomer can act on it."""
    if is_network_error(err):
        return ("Could not reach the internet to download a model.",
                NEEDS_NETWORK.get(kind, "Check the connection and try again."))
    return f"Unexpected error: {type(err).__name__}: {err}", ""


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration_text(seconds: float) -> str:
    """Seconds as a reader wants them: '18 s', '4.5 min', '2 h 05 min' (never '0.0 min')."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def problems(failed: list[tuple[str, str]], empty: list[str] = ()) -> list[dict]:
    """A job's failures as rows of (file, reason, fix); one reason shared by many files is listed once."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for source, why in failed:
        name = Path(source).name or source
        reason, fix = split_fix(ui_words(str(why)))
        reason = reason.replace(str(source), name)  # the file is named once, in its column
        reason = reason[len(name) + 2:] if reason.lower().startswith(f"{name.lower()}: ") else reason
        grouped.setdefault((reason, fix), []).append(name)
    for label in empty:
        grouped.setdefault(("No speech found in it.", "Check that it is a recording of the voice."), []).append(
            Path(label).name)
    return [{"file": ", ".join(files), "reason": reason[:1].upper() + reason[1:], "fix": fix[:1].upper() + fix[1:]}
            for (reason, fix), files in grouped.items()]


def dataset_summary(report) -> str:
    """One line for the panel: what the dataset job added and what the dataset now holds."""
    added, failed = len(report.added), len(report.failed)
    line = (f"Added {plural(added, 'clip')}; the dataset now has {plural(report.total_segments, 'clip')} "
            f"({report.train_segments} train, {report.eval_segments} eval, {duration_text(report.total_seconds)}).")
    if failed:
        line += f" {plural(failed, 'file')} could not be used: see below."
    if report.total_segments < MIN_TRAINING_CLIPS:
        line += f" Training needs at least {MIN_TRAINING_CLIPS} clips (one of them for the eval split): add more recordings."
    return line


def form_source(jobs, kind: str, needed: str):
    """The job whose settings a reloaded form shows: the newest of `kind` that did not fail and has `needed`."""
    return next((job for job in jobs if job.kind == kind and job.status not in ("failed", "queued")
                 and job.params.get(needed)), None)


def speech_progress(done: int, total: int, elapsed_s: float) -> str:
    """The Speak panel while it talks: sentences done of total, time so far and a rough time left."""
    text = f"Speaking: sentence {min(done + 1, total)} of {total} · elapsed {elapsed_s:.0f} s"
    if done:
        text += f" · about {elapsed_s / done * (total - done):.0f} s left"
    return text
