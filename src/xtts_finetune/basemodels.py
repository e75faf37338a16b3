"""XTTS v2 base models: the hub releases (list, download, verify) and `--base` resolution.

A download goes into a hidden staging folder beside the cache (huggingface_hub resumes each file there
from its `.incomplete` part), every file is checked against the hub's size and hash, and only then is the
folder renamed into place. So a folder under base/ is always complete, and an interrupted download
continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from xtts_finetune.errors import UserError
from xtts_finetune.progress import ProgressCallback, report
from xtts_finetune.utils import app_home, atomic_write_text, file_sha256

REPO_ID = "coqui/XTTS-v2"
# Version name -> hub revision (the releases are git tags of the hub repository).
RELEASES = {"v2.0.0": "v2.0.0", "v2.0.1": "v2.0.1", "v2.0.2": "v2.0.2", "v2.0.3": "v2.0.3", "main": "main"}
DEFAULT_VERSION = "v2.0.3"
MODEL_FILES = ("config.json", "model.pth", "vocab.json")  # what Xtts.load_checkpoint needs
TRAINING_FILES = ("dvae.pth", "mel_stats.pth")  # what GPTTrainer needs besides the model
REQUIRED_FILES = MODEL_FILES + TRAINING_FILES
OPTIONAL_FILES = ("speakers_xtts.pth",)  # only the later releases ship it


@dataclass
class BaseModelInfo:
    version: str
    cached: bool
    path: Path
    size: int  # bytes on disk, 0 when not cached


home = app_home  # kept under the name the rest of the code base uses


def _base_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir else home() / "base"


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_base_models(cache_dir: str | Path | None = None) -> list[BaseModelInfo]:
    root = _base_root(cache_dir)
    infos = []
    for version in RELEASES:
        path = root / version
        cached = all((path / name).is_file() for name in REQUIRED_FILES)
        infos.append(BaseModelInfo(version, cached, path, _folder_size(path) if cached else 0))
    return infos


def git_blob_sha1(path: Path) -> str:
    """The hash git (and the hub) give a file that is not stored in LFS."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, remote) -> dict:
    """Check a downloaded file against the hub's metadata; return what was checked, for release.json."""
    size = path.stat().st_size
    if size != remote.size:
        raise UserError(
            f"{path.name} is {size} bytes but the hub says {remote.size}",
            fix="run the download again; the broken file was removed",
        )
    if remote.lfs is not None:
        actual, expected = file_sha256(path), remote.lfs.sha256
    else:
        actual, expected = git_blob_sha1(path), remote.blob_id
    if actual != expected:
        raise UserError(
            f"{path.name} does not match the hub's hash ({actual[:12]} != {expected[:12]})",
            fix="run the download again; the broken file was removed",
        )
    return {"size": size, "sha256" if remote.lfs is not None else "git_sha1": actual}


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def network_errors() -> tuple[type[BaseException], ...]:
    """What the hub client raises when the network fails: its HTTP library's base error (httpx or httpx2,
    not an OSError: refused, reset, timed out, a broken proxy) and the hub's own HTTP errors."""
    from huggingface_hub import errors

    return tuple({getattr(errors, "HTTPError", errors.HfHubHTTPError), errors.HfHubHTTPError})


def download_base_model(
    version: str,
    *,
    progress: ProgressCallback | None = None,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download release `version` of coqui/XTTS-v2 into the cache (resuming, verified) and return its folder."""
    if version not in RELEASES:
        raise UserError(f"unknown XTTS version {version!r}", fix=f"use one of: {', '.join(RELEASES)}")
    root = _base_root(cache_dir)
    final = root / version
    if all((final / name).is_file() for name in REQUIRED_FILES):
        return final
    if _offline():
        raise UserError(
            f"XTTS {version} is not downloaded and HF_HUB_OFFLINE is set",
            fix=f"unset HF_HUB_OFFLINE and run: xtts-finetune models download {version}; "
            "or pass --base with a folder holding a copy of the release",
        )
    staging = root / f".{version}.incomplete"
    staging.mkdir(parents=True, exist_ok=True)
    revision = RELEASES[version]
    try:
        checked = _fetch_files(version, revision, staging, endpoint, progress)
    except (*network_errors(), OSError) as err:
        raise UserError(
            f"downloading XTTS {version} from the hub failed: {err}",
            fix="check the connection and run the same command again: it resumes where it stopped",
        ) from err
    atomic_write_text(
        staging / "release.json",
        json.dumps({"repo": REPO_ID, "version": version, "revision": revision, "files": checked}, indent=2),
    )
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's resume bookkeeping
    if final.exists():
        shutil.rmtree(final)  # an incomplete manual copy: the verified download replaces it
    os.replace(staging, final)
    return final


def _fetch_files(version: str, revision: str, staging: Path, endpoint: str | None, progress) -> dict:
    """The release's files into `staging` (hf_hub_download resumes partial files), each verified; name -> hash."""
    from huggingface_hub import HfApi, hf_hub_download

    infos = HfApi(endpoint=endpoint).get_paths_info(REPO_ID, list(REQUIRED_FILES + OPTIONAL_FILES),
                                                    revision=revision, expand=True)
    remote = {f.path: f for f in infos}
    missing = [name for name in REQUIRED_FILES if name not in remote]
    if missing:
        raise UserError(f"{REPO_ID}@{revision} has no {', '.join(missing)}", fix="pick another version")
    names = [name for name in REQUIRED_FILES + OPTIONAL_FILES if name in remote]
    total = sum(remote[n].size for n in names)
    done, checked = 0, {}
    for name in names:
        report(progress, "download", done, total, f"{version}: {name}")
        path = Path(hf_hub_download(REPO_ID, name, revision=revision, local_dir=staging, endpoint=endpoint))
        try:
            checked[name] = _verify(path, remote[name])
        except UserError:
            path.unlink()
            raise
        done += remote[name].size
    report(progress, "download", total, total, f"{version}: verified")
    return checked


def training_assets(base_dir: Path) -> dict[str, Path]:
    """dvae.pth and mel_stats.pth for training on `base_dir`: its own, or those of the release it came from."""
    folders = [base_dir]
    # One of our exports keeps model weights only: follow its base (an export of an export, too) to the release.
    while (card := folders[-1] / "model_card.json").is_file() and len(folders) < 16:
        folders.append(Path(json.loads(card.read_text(encoding="utf-8"))["base"]["path"]))
    for folder in folders:
        if all((folder / name).is_file() for name in TRAINING_FILES):
            return {"dvae": folder / "dvae.pth", "mel_stats": folder / "mel_stats.pth"}
    raise UserError(
        f"{base_dir} has no dvae.pth and mel_stats.pth, which training needs",
        fix=f"copy them from the XTTS release into {base_dir}, or train from a release: --base {DEFAULT_VERSION}",
    )


def base_model_version(base_dir: Path) -> str:
    """The release a folder is (or was fine-tuned from), for run settings and model cards."""
    for name, key in (("release.json", "version"), ("model_card.json", "base")):
        path = base_dir / name
        if path.is_file():
            value = json.loads(path.read_text(encoding="utf-8"))[key]
            return value if isinstance(value, str) else value.get("version", "unknown")
    return base_dir.name if base_dir.name in RELEASES else "local"


def resolve_base_model(spec: str | Path | None, *, progress: ProgressCallback | None = None) -> Path:
    """`--base`: a release version (downloaded if needed) or a local model folder (a release copy or an export)."""
    spec = str(spec or DEFAULT_VERSION)
    if spec in RELEASES and not Path(spec).is_dir():
        return download_base_model(spec, progress=progress)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise UserError(
            f"--base {spec!r} is neither an XTTS version nor a folder",
            fix=f"use one of {', '.join(RELEASES)} or the path of a model folder",
        )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"{folder} is not an XTTS v2 model folder: {', '.join(missing)} missing",
            fix="point --base at a folder with config.json, model.pth and vocab.json",
        )
    training_assets(folder.resolve())
    return folder.resolve()
