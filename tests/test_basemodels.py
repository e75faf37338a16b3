"""Base models: a local imitation of the hub's file endpoints proves downloads resume, verify and stay atomic."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from xtts_finetune.basemodels import (
    download_base_model,
    git_blob_sha1,
    list_base_models,
    resolve_base_model,
)
from xtts_finetune.errors import UserError

COMMIT = "a" * 40
BIG = "model.pth"  # stalls after its first half, so a test can kill the download mid-file
CHUNK = 10 * 1024 * 1024  # huggingface_hub writes the .incomplete file in chunks this size


class FakeHub:
    """The three hub endpoints huggingface_hub uses: paths-info, and HEAD/GET resolve with Range support."""

    def __init__(self, files: dict[str, bytes], lfs: set[str]):
        self.files, self.lfs = files, lfs
        self.advertised = {}  # name -> bytes the metadata describes (differs from `files` to fake corruption)
        self.ranges: list[tuple[str, str | None]] = []
        self.stall_first_get = False
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = parse_qs(body)
                paths = form.get("paths") or json.loads(body or "{}").get("paths", [])
                entries = [hub.entry(p) for p in paths if p in hub.files]
                data = json.dumps(entries).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _file(self):
                name = self.path.split("/resolve/", 1)[1].split("/", 1)[1].split("?")[0]
                return name, hub.files.get(name)

            def _headers(self, name, data, status=200, start=0):
                self.send_response(status)
                self.send_header("X-Repo-Commit", COMMIT)
                etag = hub.oid(name)
                self.send_header("ETag", f'"{etag}"')
                if name in hub.lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()

            def do_HEAD(self):
                name, data = self._file()
                if data is None:
                    self.send_error(404)
                    return
                self._headers(name, data)

            def do_GET(self):
                name, data = self._file()
                if data is None:
                    self.send_error(404)
                    return
                header = self.headers.get("Range")
                hub.ranges.append((name, header))
                start = int(header.split("=")[1].split("-")[0]) if header else 0
                self._headers(name, data, 206 if header else 200, start)
                if name == BIG and hub.stall_first_get and start == 0:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(60)  # the client is killed meanwhile
                    return
                self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def content(self, name):
        return self.advertised.get(name, self.files[name])

    def oid(self, name):
        data = self.content(name)
        if name in self.lfs:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()

    def entry(self, name):
        data = self.content(name)
        entry = {
            "type": "file",
            "path": name,
            "size": len(data),
            "oid": self.oid(name) if name not in self.lfs else "b" * 40,
        }
        if name in self.lfs:
            entry["lfs"] = {"oid": self.oid(name), "size": len(data), "pointerSize": 130}
        return entry


@pytest.fixture
def hub(tiny_xtts):
    files = {name: (tiny_xtts / name).read_bytes() for name in ("config.json", "vocab.json", "mel_stats.pth")}
    files.update({BIG: os.urandom(3 * CHUNK), "dvae.pth": os.urandom(1000), "speakers_xtts.pth": os.urandom(500)})
    server = FakeHub(files, lfs={"model.pth", "dvae.pth", "speakers_xtts.pth", "mel_stats.pth"})
    yield server
    server.server.shutdown()


@pytest.fixture
def online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _download_in_subprocess(hub, cache: Path) -> subprocess.Popen:
    code = (
        "import sys; from xtts_finetune.basemodels import download_base_model as d; "
        "print(d('v2.0.3', cache_dir=sys.argv[1], endpoint=sys.argv[2]))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, str(cache), hub.url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_download_killed_half_way_resumes_and_verifies(hub, tmp_path):
    cache = tmp_path / "base"
    hub.stall_first_get = True
    proc = _download_in_subprocess(hub, cache)
    part = None
    deadline = time.monotonic() + 60
    while part is None and time.monotonic() < deadline and proc.poll() is None:
        parts = [p for p in cache.rglob("*.incomplete") if p.is_file() and p.stat().st_size >= CHUNK]
        part = parts[0] if parts else None
        time.sleep(0.1)
    assert part is not None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    half = part.stat().st_size
    assert not (cache / "v2.0.3").exists()  # nothing half-downloaded is ever in place
    assert [m.version for m in list_base_models(cache) if m.cached] == []

    proc = _download_in_subprocess(hub, cache)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    final = cache / "v2.0.3"
    assert out.strip().endswith(str(final))
    assert (BIG, f"bytes={half}-") in hub.ranges  # resumed from where the kill left it
    for name, data in hub.files.items():
        assert (final / name).read_bytes() == data
    release = json.loads((final / "release.json").read_text())
    assert release["files"][BIG]["sha256"] == hashlib.sha256(hub.files[BIG]).hexdigest()
    assert not list(final.rglob("*.incomplete"))
    assert [m.version for m in list_base_models(cache) if m.cached] == ["v2.0.3"]
    assert resolve_base_model(final) == final.resolve()


def test_download_refuses_a_file_that_does_not_match_the_hub_hash(hub, tmp_path, online):
    hub.advertised["config.json"] = hub.files["config.json"] + b" "  # the hub describes other bytes
    hub.files["config.json"] = hub.files["config.json"][:-1] + b"}"  # same size, different content
    with pytest.raises(UserError, match="config.json"):
        download_base_model("v2.0.3", cache_dir=tmp_path, endpoint=hub.url)
    assert not (tmp_path / "v2.0.3").exists()


def test_offline_mode_gives_the_fix_instead_of_a_network_error(tmp_path):
    with pytest.raises(UserError, match="HF_HUB_OFFLINE") as err:
        download_base_model("v2.0.3", cache_dir=tmp_path)
    assert "--base" in err.value.fix
    with pytest.raises(UserError, match="unknown XTTS version"):
        download_base_model("v9", cache_dir=tmp_path)


def test_git_blob_hash_matches_git(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def test_resolve_base_accepts_model_folders_and_explains_bad_ones(tiny_xtts, tmp_path):
    assert resolve_base_model(tiny_xtts) == tiny_xtts.resolve()
    with pytest.raises(UserError, match="neither an XTTS version nor a folder"):
        resolve_base_model(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(UserError, match="model.pth, vocab.json missing"):
        resolve_base_model(tmp_path / "half")


def _closing_server():
    """Accepts a connection and closes it without answering: the hub client's RemoteProtocolError."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_every_network_failure_is_a_friendly_error(tmp_path, online):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}"
    server = _closing_server()
    try:
        for endpoint in (refused, f"http://127.0.0.1:{server.getsockname()[1]}"):
            with pytest.raises(UserError, match="downloading XTTS v2.0.3 from the hub failed") as err:
                download_base_model("v2.0.3", cache_dir=tmp_path, endpoint=endpoint)
            assert "run the same command again" in err.value.fix
            assert not (tmp_path / "v2.0.3").exists()
    finally:
        server.close()


def test_training_on_an_export_of_an_export_finds_the_release_assets(tmp_path):
    from xtts_finetune.basemodels import training_assets

    release, first, second = (tmp_path / n for n in ("release", "first", "second"))
    for folder in (release, first, second):
        folder.mkdir()
    for name in ("dvae.pth", "mel_stats.pth"):
        (release / name).write_bytes(b"weights")
    (first / "model_card.json").write_text(json.dumps({"base": {"version": "v2.0.3", "path": str(release)}}))
    (second / "model_card.json").write_text(json.dumps({"base": {"version": "v2.0.3", "path": str(first)}}))
    assert training_assets(second) == {"dvae": release / "dvae.pth", "mel_stats": release / "mel_stats.pth"}
