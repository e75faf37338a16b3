"""What a fresh install downloads from PyPI on this machine, before and after the torch plan of installer.py.

    python bench/install_size.py [--driver none] [--out FILE]

No download: `uv sync --frozen --dry-run` into an empty environment with an empty cache lists what a fresh
clone's sync would fetch, and uv.lock gives each wheel's size (the one pip would pick for this Python and
platform). Three syncs: the old install (`uv sync --frozen`: every group, PyPI's torch), and the new one as
`start.sh` and `test.sh` run it on a machine whose torch comes from PyTorch's index (installer.py's
SYNC_FLAGS: torch and its CUDA libraries left out). The torch wheel from that index comes on top of the new
figures; it is not on PyPI, so it is not counted here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import save_report
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from xtts_finetune import installer  # noqa: E402  (stdlib only; src/ is not installed for every bench)


def wheel_sizes(lock_text: str) -> dict[str, int]:
    """{name: bytes} of the wheel this interpreter and platform would take (else the sdist), per locked package
    (its first version)."""
    rank = {tag: i for i, tag in enumerate(sys_tags())}
    sizes: dict[str, int] = {}
    for block in lock_text.split("[[package]]")[1:]:
        name = re.search(r'^name = "([^"]+)"', block, re.M).group(1)
        best = None
        for url, size in re.findall(r'\{ url = "([^"]+\.whl)"[^}]*?size = (\d+)', block):
            tags = parse_wheel_filename(url.rsplit("/", 1)[-1])[3]
            score = min((rank[t] for t in tags if t in rank), default=None)
            if score is not None and (best is None or score < best[0]):
                best = (score, int(size))
        sdist = re.search(r'^sdist = \{ url = "[^"]+"[^}]*?size = (\d+)', block, re.M)
        if best is None and sdist:  # no wheel: the source archive is what is downloaded
            best = (0, int(sdist.group(1)))
        if best and name not in sizes:
            sizes[name] = best[1]
    return sizes


def dry_run(uv: str, flags: list[str]) -> list[str]:
    """The packages a sync into an empty environment with an empty cache would download."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"UV_PROJECT_ENVIRONMENT": f"{scratch}/venv", "UV_CACHE_DIR": f"{scratch}/cache", "PATH": "/usr/bin:/bin"}
        done = subprocess.run([uv, "sync", "--frozen", "--dry-run", "--project", str(ROOT), *flags],
                              capture_output=True, text=True, env=env, check=True)
    return sorted(re.findall(r"^ \+ ([^=\s]+)==", done.stdout + done.stderr, re.M))


def summary(names: list[str], sizes: dict[str, int]) -> dict:
    cuda = [n for n in names if installer.CUDA_RUNTIME.fullmatch(n) or n in installer.TORCH_BUILD]
    return {"packages": len(names), "download_mib": round(sum(sizes.get(n, 0) for n in names) / 2**20, 1),
            "torch_and_cuda_packages": len(cuda), "torch_and_cuda_mib": round(sum(sizes.get(n, 0) for n in cuda) / 2**20, 1),
            "unsized": [n for n in names if n not in sizes]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    uv = shutil.which("uv") or sys.exit("uv is not on PATH")
    lock_text = (ROOT / "uv.lock").read_text(encoding="utf-8")
    sizes = wheel_sizes(lock_text)
    skip = list(installer.plan_install(installer.choose_torch("Linux", "x86_64", None), None,
                                       installer.locked_version(lock_text), True, lock_text).sync_flags)
    syncs = {"before: uv sync --frozen": [], "after: start.sh (--no-dev, torch from its index)": ["--no-dev", *skip],
             "after: test.sh (dev group, torch from its index)": skip}
    report = {"bench": "install_size", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": sys.version.split()[0], "platform": sys.platform,
              **{name: summary(dry_run(uv, flags), sizes) for name, flags in syncs.items()}}
    for name, row in report.items():
        if isinstance(row, dict):
            print(f"{name:<52} {row['packages']:4d} packages {row['download_mib']:8.1f} MiB  "
                  f"(torch + CUDA: {row['torch_and_cuda_packages']} packages, {row['torch_and_cuda_mib']:.1f} MiB)")
    save_report(report, args.out)


if __name__ == "__main__":
    main()
