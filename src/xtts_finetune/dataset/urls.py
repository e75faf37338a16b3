"""Media from URLs, downloaded with yt-dlp (an optional extra), with their subtitles when there are any."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xtts_finetune.errors import UserError


@dataclass
class Download:
    url: str
    media: Optional[Path] = None
    subtitles: Optional[Path] = None
    error: Optional[str] = None


def download(url: str, dest: str | Path, language: Optional[str] = None) -> Download:
    """Download one URL's best audio into `dest`; failures come back in `.error`, not as exceptions."""
    try:
        import yt_dlp
    except ImportError:
        raise UserError("--url needs yt-dlp, which is not installed.", fix="pip install 'xtts-finetune[url]'") from None
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    options = {
        "outtmpl": str(dest / "%(extractor)s-%(id)s.%(ext)s"), "format": "bestaudio/best", "noplaylist": True,
        "quiet": True, "no_warnings": True, "noprogress": True, "writesubtitles": True,
        "subtitleslangs": [f"{language}.*", language] if language else ["all"], "subtitlesformat": "srt/vtt/best",
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except Exception as err:  # yt-dlp raises many types; the message is what users need
        return Download(url, error=f"download failed: {str(err).removeprefix('ERROR: ')}")
    files = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    subs = [Path(s["filepath"]) for s in (info.get("requested_subtitles") or {}).values() if s.get("filepath")]
    subs = [s for s in subs if s.suffix.lower() in (".srt", ".vtt") and s.is_file()]
    if not files or not files[0].is_file():
        return Download(url, error="download failed: yt-dlp wrote no media file")
    return Download(url, files[0], subs[0] if subs else None)
