"""Small helpers shared by every stage: atomic writes, hashing, paths kept inside a workspace."""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from xtts_finetune.errors import UserError



@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    Readers never see a half-written file, and an interrupted write leaves the old file intact. The
    temporary name carries this process's id, so `sweep_partial_writes` can remove what a kill left.
    A full disk becomes a UserError naming the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".part", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~process_umask())  # mkstemp makes 0600; the result gets the mode any tool's would
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as err:
        raise disk_full(err, path) or err
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


DISK_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}  # Windows has no EDQUOT
_PART = re.compile(r"\..+\.(\d+)-\w+\.(part|incomplete)")  # atomic_path files, export staging folders


def disk_full(err: BaseException, path: str | Path) -> UserError | None:
    """The UserError for a write that failed because the disk (or quota) is full, else None."""
    if not isinstance(err, OSError) or err.errno not in DISK_FULL:
        return None
    return UserError(f"no space left on the disk while writing {path} ({err.strerror})",
                     fix=f"free space on the disk holding {Path(path).parent} and run the same command again; "
                     "what was there before is unchanged")


def sweep_partial_writes(folder: str | Path) -> list[Path]:
    """Remove the temporary files (and staging folders) of writes whose process has died (killed mid-write)."""
    import shutil

    import psutil

    removed = []
    for part in Path(folder).glob(".*") if Path(folder).is_dir() else []:
        match = _PART.fullmatch(part.name)
        if match and not psutil.pid_exists(int(match.group(1))):
            shutil.rmtree(part, ignore_errors=True) if part.is_dir() else part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def process_umask() -> int:
    """The umask, read without changing it where the OS allows (changing it races with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


# The legacy code pages text in a language was saved in (Windows, then the East Asian standards).
# Detection alone confuses neighbours such as cp1252 and cp1250 on short French text.
LEGACY_CODEPAGES = {
    **dict.fromkeys(("en", "fr", "de", "es", "it", "pt", "nl", "ca", "da", "sv", "no", "fi"), ["cp1252"]),
    **dict.fromkeys(("pl", "cs", "sk", "hu", "ro", "hr", "sl"), ["cp1250"]),
    "ru": ["cp1251", "koi8_r"], "uk": ["cp1251"], "bg": ["cp1251"], "tr": ["cp1254"], "el": ["cp1253"],
    "ar": ["cp1256"], "fa": ["cp1256"], "he": ["cp1255"], "vi": ["cp1258"],
    "zh": ["gb18030", "big5"], "zh-cn": ["gb18030", "big5"], "ja": ["shift_jis", "euc_jp"], "ko": ["euc_kr", "cp949"],
}


def read_text_any(path: str | Path, language: str | None = None) -> tuple[str, str]:
    """(text, encoding name) of a text file in any common encoding.

    A BOM decides first (UTF-32 before UTF-16: their BOMs share a prefix), then strict UTF-8, then
    charset-normalizer's best guess for legacy code pages, among the language's own first when known.
    """
    import codecs

    raw = Path(path).read_bytes()
    for bom, name in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
                      (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(name), name
            except UnicodeDecodeError as err:
                raise UserError(f"{path}: starts with a {name} byte order mark but is not {name} ({err.reason}).",
                                fix="save the file again as UTF-8 text") from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    preferred = LEGACY_CODEPAGES.get((language or "").lower())
    best = (preferred and from_bytes(raw, cp_isolation=preferred).best()) or from_bytes(raw).best()
    if best is None:
        raise UserError(f"{path}: cannot tell its text encoding (it may not be a text file).",
                        fix="save the file as UTF-8 text")
    return str(best), best.encoding


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_torch_save(obj, path: str | Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class PathOutsideWorkspace(UserError, ValueError):
    """A user-supplied path tried to leave its folder; a UserError, so interfaces show it without a traceback."""


def safe_join(root: str | Path, *parts: str) -> Path:
    """Join user-supplied `parts` under `root`, refusing anything that escapes it (.., absolute, links)."""
    root = Path(root).resolve()
    candidate = root.joinpath(*parts).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathOutsideWorkspace(f"{'/'.join(parts)!r} is outside {root}; use a path inside that folder.")
    return candidate


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps a server reachable from this computer only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_home() -> Path:
    """Where caches live (base models, conditioning latents): $XTTS_FINETUNE_HOME or ~/.cache/xtts-finetune."""
    return Path(os.environ.get("XTTS_FINETUNE_HOME") or Path.home() / ".cache" / "xtts-finetune")


def prune(folder: str | Path, *, max_age_days: float, max_bytes: int) -> list[Path]:
    """Delete files older than `max_age_days`, then the oldest until the folder holds at most `max_bytes`.

    For caches and upload folders that would otherwise grow forever; returns what was removed.
    """
    import time

    root = Path(folder)
    if not root.is_dir():
        return []
    files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in root.rglob("*") if p.is_file())
    cutoff, total = time.time() - max_age_days * 86400, sum(size for _, size, _ in files)
    removed = []
    for mtime, size, path in files:  # oldest first
        if mtime >= cutoff and total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    for folder_ in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder_.iterdir()):
            folder_.rmdir()
    return removed
