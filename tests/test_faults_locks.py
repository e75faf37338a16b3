"""Fault suite, locks: a killed run is seen as interrupted on every OS, a lock whose owner died is taken
over, and the CLI and the web UI adding to one dataset at once both keep their sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from xtts_finetune.errors import UserError
from xtts_finetune.locks import Owner, exclusive, holder, read_owner, this_process

HOLD = """
import sys, time
from pathlib import Path
from xtts_finetune.train.runs import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""

FORK_AND_DIE = """
import os, sys, time
from xtts_finetune.locks import exclusive
with exclusive(sys.argv[1], "test"):
    child = os.fork()  # the child inherits the OS lock, like a data loader worker of a training run
    if child == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1), os.dup2(null, 2)  # let the parent's output end
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    os._exit(0)  # the owner dies without releasing
"""


def _running_run(tmp_path):
    run = tmp_path / "runs" / "run-a"
    run.mkdir(parents=True)
    (run / "settings.json").write_text("{}")
    (run / "events.jsonl").write_text(json.dumps({"type": "status", "status": "running", "time": 1.0}) + "\n")
    return run


def test_a_killed_run_is_interrupted_not_running(tmp_path):
    from xtts_finetune.train.runs import run_info, run_lock

    run = _running_run(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert run_info(run).status == "running"
        with pytest.raises(UserError, match=f"process {proc.pid}"):
            with run_lock(run):
                pass
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert run_info(run).status == "interrupted"
    with run_lock(run):  # and it can be resumed
        assert holder(run / ".lock").pid == os.getpid()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the inherited-lock case needs fork (POSIX)")
def test_a_lock_outliving_its_owner_is_stale_and_taken_over(tmp_path):
    path = tmp_path / "x.lock"
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(FORK_AND_DIE), str(path)],
                         capture_output=True, text=True, timeout=60)
    child = int(out.stdout.strip())
    try:
        dead_owner = read_owner(path)
        assert dead_owner is not None and dead_owner.pid != child and not dead_owner.alive()
        assert holder(path) is None  # the OS lock is still held by the child, but its owner is gone
        with exclusive(path, "test", timeout=0.2) as me:
            assert me.pid == os.getpid() and read_owner(path) == me
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_reused_pid_is_not_the_owner():
    me = this_process()
    assert me.alive()
    assert not Owner(me.pid, me.started - 3600, me.host).alive()  # same pid, an hour older: another process
    assert not Owner(2**22 + 7, me.started, me.host).alive()


def test_cli_and_ui_add_to_one_dataset_at_once(coqui_dataset, tmp_path):
    """The UI's job loads the manifest, then the CLI adds a corpus and saves, then the UI saves: both stay."""
    import shutil

    from speech import make_training_set

    from xtts_finetune.dataset import create_dataset
    from xtts_finetune.dataset.manifest import load_manifest
    from xtts_finetune.webui.jobs import JobRunner

    ws = tmp_path / "ws"
    ui_corpus = tmp_path / "ui_corpus"
    shutil.copytree(coqui_dataset, ui_corpus)
    cli_corpus = make_training_set(tmp_path / "cli_corpus", ["A new voice speaks.", "Bright lights at night.",
                                                             "Cold winds blow."], speaker="cli")
    cli = subprocess.Popen([sys.executable, "-m", "xtts_finetune", "dataset", "create", str(ws), "--language", "en",
                            "--corpus", str(cli_corpus / "metadata_train.csv")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    waited = []

    def progress(p):  # the first report comes after the UI's job has read the manifest
        if not waited:
            waited.append(cli.wait(180))

    jobs = JobRunner(ws)
    job = jobs.start("dataset", lambda ctx: create_dataset(ws, language="en", corpus=ui_corpus / "metadata_train.csv",
                                                            progress=lambda p: (progress(p), ctx.progress(p))))
    finished = jobs.wait(job.id, 240)
    assert waited == [0], cli.stderr.read()
    cli.stderr.close()
    assert finished.status == "finished", finished.message
    manifest = load_manifest(ws)
    paths = {s.path for s in manifest.sources}
    assert sum(str(cli_corpus) in p for p in paths) == 2 and sum(str(ui_corpus) in p for p in paths) == 5
    ids = [s.id for s in manifest.segments]
    assert len(ids) == len(set(ids)) == 7
    rows = [line for name in ("metadata_train.csv", "metadata_eval.csv")
            for line in (ws / "dataset" / name).read_text().splitlines()[1:]]
    assert len(rows) == 7 and all((ws / "dataset" / r.split("|")[0]).is_file() for r in rows)


def test_manifest_writes_wait_for_the_dataset_lock(tmp_path):
    import threading

    from xtts_finetune.dataset.manifest import Manifest, save_manifest

    lock = tmp_path / "dataset" / ".dataset.lock"
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom xtts_finetune.locks import exclusive\n"
                             "with exclusive(sys.argv[1], 'x'):\n    print('locked', flush=True)\n    time.sleep(60)",
                             str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        writer = threading.Thread(target=save_manifest, args=(tmp_path, Manifest(language="en")))
        writer.start()
        writer.join(1.0)
        assert writer.is_alive() and not (tmp_path / "dataset" / "dataset.json").exists()  # waiting, not writing
    finally:
        proc.kill()  # its owner dies: the OS frees the lock
        proc.wait(30)
        proc.stdout.close()
    writer.join(30)
    assert not writer.is_alive() and (tmp_path / "dataset" / "dataset.json").is_file()
