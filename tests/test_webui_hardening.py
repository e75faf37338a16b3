"""Web UI hardening: incremental event reading, path fields kept to allowed roots, upload limit, pruning,
and no open exposure by default."""

from __future__ import annotations

import json

import pytest

from xtts_finetune.errors import UserError


def _event(step: int, loss: float) -> str:
    return json.dumps({"type": "step", "step": step, "loss": loss}) + "\n"


def test_train_tab_reads_only_the_appended_events(tmp_path):
    from xtts_finetune.webui.tab_train import loss_frame

    run = tmp_path / "runs" / "run-a"
    run.mkdir(parents=True)
    events = run / "events.jsonl"
    events.write_text(_event(1, 3.0) + _event(2, 2.5) + json.dumps({"type": "eval", "step": 2, "eval_loss": 2.7}) + "\n")
    assert loss_frame(run).values.tolist() == [[1, 3.0, "train"], [2, 2.5, "train"], [2, 2.7, "eval"]]
    with open(events, "r+b") as f:  # scribble over the lines already read: a re-parse would see it
        f.write(b"x" * len(_event(1, 3.0)))
    with open(events, "a") as f:
        f.write(_event(3, 2.0) + '{"type": "step", "step": 4, "lo')  # the last line is still being written
    frame = loss_frame(run)
    assert frame.values.tolist()[0] == [1, 3.0, "train"] and frame.values.tolist()[-1] == [3, 2.0, "train"]
    with open(events, "a") as f:
        f.write('ss": 1.5}\n')
    assert loss_frame(run).values.tolist()[-1] == [4, 1.5, "train"]
    events.write_text(_event(1, 9.0))  # a new file (shorter): read from the start
    assert loss_frame(run).values.tolist() == [[1, 9.0, "train"]]


def test_typed_paths_stay_in_the_allowed_roots_when_exposed(tmp_path):
    import gradio as gr

    from xtts_finetune.webui.app import allowed_roots_for
    from xtts_finetune.webui.common import UI, start_job
    from xtts_finetune.webui.jobs import JobRunner

    ws, outside = tmp_path / "ws", tmp_path / "elsewhere"
    (ws / "uploads").mkdir(parents=True)
    outside.mkdir()
    assert allowed_roots_for("127.0.0.1", False, ws) is None  # on this computer: the user's own files
    roots = allowed_roots_for("0.0.0.0", False, ws, [tmp_path / "extra"])
    assert roots == (ws, tmp_path / "extra") and allowed_roots_for("127.0.0.1", True, ws) == (ws,)
    ui = UI(workspace=ws, jobs=JobRunner(ws), allowed_roots=roots)
    assert ui.server_path(ws / "uploads") == (ws / "uploads").resolve()
    for bad in ("/etc", str(outside), str(ws / ".." / "elsewhere")):
        with pytest.raises(UserError, match="outside the folders this UI may read"):
            ui.server_path(bad)
    ran = []
    with pytest.raises(gr.Error, match="outside"):  # a dataset job given a folder outside: refused before it runs
        start_job(ui, "dataset", lambda ctx: ran.append(1), {"audio": [ws / "uploads", outside]})
    assert ran == [] and ui.jobs.list() == []
    open_ui = UI(workspace=ws, jobs=JobRunner(ws))
    assert open_ui.server_path(outside) == outside.resolve()


def test_uploads_and_caches_are_pruned_by_age_and_size(tmp_path, monkeypatch):
    import os
    import threading
    import time

    from xtts_finetune.latents import default_cache_dir
    from xtts_finetune.utils import prune
    from xtts_finetune.webui.app import housekeeping
    from xtts_finetune.webui.common import UI
    from xtts_finetune.webui.jobs import JobRunner

    folder = tmp_path / "cache"
    now = time.time()
    for name, age_days, size in [("a/old.wav", 30, 10), ("b/mid.wav", 3, 600), ("c/new.wav", 1, 600), ("d.wav", 0, 100)]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    removed = prune(folder, max_age_days=7, max_bytes=1000)  # old.wav by age; then mid.wav, the oldest, by size
    assert sorted(p.name for p in removed) == ["mid.wav", "old.wav"]
    assert sorted(p.name for p in folder.rglob("*.wav")) == ["d.wav", "new.wav"]
    assert not (folder / "a").exists() and not (folder / "b").exists()  # emptied folders go too

    ws = tmp_path / "ws"
    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))
    stale = [ws / "uploads" / "media-1" / "talk.mp3", ws / "uploads" / ".gradio" / "x" / "a.wav", default_cache_dir() / "k.pt"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (now - 30 * 86400, now - 30 * 86400))
    ui = UI(workspace=ws, jobs=JobRunner(ws))
    release = threading.Event()
    job = ui.jobs.start("dataset", lambda ctx: release.wait(10))
    assert housekeeping(ui, keep_days=7, max_cache_gb=1) == [] and all(p.exists() for p in stale)  # a job may use them
    release.set()
    ui.jobs.wait(job.id, 10)
    assert sorted(housekeeping(ui, keep_days=7, max_cache_gb=1)) == sorted(stale)
    assert not any(p.exists() for p in stale)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uploads_over_the_limit_are_refused(tmp_path):
    import httpx

    from xtts_finetune.webui.app import launch

    demo, url = launch(tmp_path / "ws", port=_free_port(), block=False, quiet=True, max_upload_mb=1)
    try:
        upload = f"{url.rstrip('/')}/gradio_api/upload"
        small = httpx.post(upload, files={"files": ("a.wav", b"x" * 1000)})
        assert small.status_code == 200
        big = httpx.post(upload, files={"files": ("b.wav", b"x" * (2 << 20))})
        assert big.status_code == 413 and "maximum allowed size" in big.text
    finally:
        demo.close()


def test_the_container_never_serves_an_open_ui(tmp_path):
    """The Dockerfile's command has no --no-auth; with no password given, one is made and printed once."""
    import os
    import re
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    cmd = json.loads(re.search(r"^CMD (\[.*\])$", (Path(__file__).parents[1] / "Dockerfile").read_text(), re.M).group(1))
    assert "--no-auth" not in cmd and "--generate-auth" in cmd and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = _free_port()
    args = [a for a in cmd[1:]]
    args[args.index("--host") + 1], args[args.index("--port") + 1] = "127.0.0.1", str(port)  # tests stay on loopback
    args[args.index("--workspace") + 1] = str(tmp_path / "ws")
    env = {k: v for k, v in os.environ.items() if k != "XTTS_FINETUNE_UI_AUTH"}
    proc = subprocess.Popen([sys.executable, "-m", "xtts_finetune", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        while not any("open http" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        logins = [re.search(r"user (\S+), password (\S+)", line) for line in lines]
        found = [m for m in logins if m]
        assert len(found) == 1  # printed once
        user, password = found[0].groups()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/config").status_code == 401
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        with httpx.Client() as client:
            assert client.post(f"{base}/login", data={"username": user, "password": password}).status_code == 200
            assert client.get(f"{base}/config").status_code == 200
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()


def test_an_exposed_dataset_tab_never_tells_whether_an_outside_folder_exists(tmp_path):
    import gradio as gr

    from xtts_finetune.webui.app import build_app

    ws = tmp_path / "ws"
    demo = build_app(ws, allowed_roots=(ws,))
    create = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_create")
    for folder in (tmp_path / "no-such-folder", tmp_path):  # one missing, one present: the same refusal
        with pytest.raises(gr.Error, match="outside the folders") as refused:
            create(None, str(folder), None, "en", "speaker", "large-v3")
        assert "does not exist" not in str(refused.value)
