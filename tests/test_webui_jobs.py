"""The web UI's background job runner: state on disk, read back after a refresh or a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from xtts_finetune.errors import UserError
from xtts_finetune.progress import report
from xtts_finetune.webui.jobs import JobRunner


def _record(workspace, job):
    return json.loads((workspace / "jobs" / f"{job.id}.json").read_text())


def _blocking(release: threading.Event, reached: threading.Event, result="ok"):
    def work(ctx):
        report(ctx.progress, "train", 3, 10, "step 3 of 10", eta_s=42.0)
        reached.set()
        release.wait(10)
        return {"run": result}

    return work


def test_progress_and_result_are_persisted_and_read_back(tmp_path):
    runner = JobRunner(tmp_path)
    release, reached = threading.Event(), threading.Event()
    job = runner.start("dataset", _blocking(release, reached), params={"language": "en", "path": tmp_path})
    assert reached.wait(10)
    deadline = time.time() + 10
    while _record(tmp_path, job)["progress"] is None and time.time() < deadline:
        time.sleep(0.05)  # progress reaches the disk within SAVE_EVERY_S
    on_disk = _record(tmp_path, job)
    assert on_disk["status"] == "running" and on_disk["progress"] == pytest.approx(0.3)
    assert on_disk["eta_s"] == 42.0 and on_disk["params"] == {"language": "en", "path": str(tmp_path)}
    # a browser refresh asks the same runner for the latest job of the tab's kind
    again = runner.latest("dataset")
    assert again.id == job.id and again.active and again.message == "step 3 of 10"
    release.set()
    done = runner.wait(job.id, 10)
    assert done.status == "finished" and done.progress == 1.0 and done.result == {"run": "ok"}
    assert done.ended >= done.started
    assert _record(tmp_path, job)["status"] == "finished"
    assert any("step 3 of 10" in line for line in done.log)
    # an app restart reads the finished job back from disk
    restarted = JobRunner(tmp_path).latest("dataset")
    assert restarted.status == "finished" and restarted.result == {"run": "ok"}


def test_only_one_training_job_at_a_time(tmp_path):
    runner = JobRunner(tmp_path)
    release, reached = threading.Event(), threading.Event()
    first = runner.start("train", _blocking(release, reached))
    assert reached.wait(10)
    with pytest.raises(UserError, match="training job is already running") as err:
        runner.start("train", lambda ctx: None)
    assert "30% done" in str(err.value) and "fix:" in str(err.value)
    other = runner.start("export", lambda ctx: "exported")  # other kinds are not refused: they wait for the GPU
    assert other.status == "queued"
    release.set()
    runner.wait(first.id, 10)
    assert runner.wait(other.id, 10).result == "exported"
    second = runner.start("train", lambda ctx: "second")
    assert runner.wait(second.id, 10).status == "finished"
    assert [j.id for j in runner.list("train")] == [second.id, first.id]


def test_errors_become_readable_messages(tmp_path):
    runner = JobRunner(tmp_path)

    def bad_input(ctx):
        raise UserError("No audio in /data/x.txt.", fix="Upload wav, mp3 or flac files.")

    def crash(ctx):
        return {}["missing"]

    failed = runner.wait(runner.start("dataset", bad_input).id, 10)
    assert failed.status == "failed"
    assert failed.message == "No audio in /data/x.txt." and failed.hint == "Fix: Upload wav, mp3 or flac files."
    crashed = runner.wait(runner.start("export", crash).id, 10)
    assert crashed.status == "failed" and crashed.message == "Unexpected error: KeyError: 'missing'"
    assert "Traceback" not in crashed.message and "Traceback" in (tmp_path / "jobs" / f"{crashed.id}.log").read_text()
    assert str(tmp_path / "jobs" / f"{crashed.id}.log") in crashed.hint


def test_stop_sets_the_event_and_the_job_ends_stopped(tmp_path):
    runner = JobRunner(tmp_path)
    steps = []

    def work(ctx):
        while not ctx.stop_event.is_set():
            steps.append(1)
            report(ctx.progress, "train", len(steps), 1000, f"step {len(steps)}")
            time.sleep(0.01)
        return "partial"

    job = runner.start("train", work)
    while not steps:
        time.sleep(0.01)
    assert runner.stop(job.id).status == "stopping"
    done = runner.wait(job.id, 10)
    assert done.status == "stopped" and done.result == "partial" and done.progress < 1.0


def test_job_of_a_killed_app_shows_as_interrupted_with_resume_hint(tmp_path):
    script = (
        "import sys, threading\n"
        "from xtts_finetune.progress import report\n"
        "from xtts_finetune.webui.jobs import JobRunner\n"
        "def work(ctx):\n"
        "    report(ctx.progress, 'train', 5, 10, 'epoch 1')\n"
        "    threading.Event().wait()\n"
        f"job = JobRunner({str(tmp_path)!r}).start('train', work, params={{'base': 'v2.0.3'}})\n"
        "print(job.id, flush=True)\n"
        "threading.Event().wait()\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = app.stdout.readline().strip()
        deadline = time.time() + 30
        while JobRunner(tmp_path).get(job_id).progress is None and time.time() < deadline:
            time.sleep(0.2)  # the first progress report lands on disk
        live = JobRunner(tmp_path)  # a second app while the first is alive sees the job running
        assert live.get(job_id).status == "running" and live.get(job_id).progress == 0.5
        with pytest.raises(UserError, match="already running"):
            live.start("train", lambda ctx: None)
    finally:
        os.kill(app.pid, signal.SIGKILL)
        app.wait()
    job = JobRunner(tmp_path).latest("train")
    assert job.id == job_id and job.status == "interrupted" and job.progress == 0.5
    assert "stopped while this training job was running" in job.message and "Resume" in job.hint
    assert job.params == {"base": "v2.0.3"}
    assert _record(tmp_path, job)["status"] == "interrupted"


def test_one_gpu_job_at_a_time_others_queued_and_shown_as_queued(tmp_path):
    runner = JobRunner(tmp_path)
    freed = []
    runner.gpu_release_hooks.append(lambda: freed.append(True))
    release, reached = threading.Event(), threading.Event()
    first = runner.start("dataset", _blocking(release, reached))
    assert reached.wait(10) and freed == [True]  # a model Speak kept loaded is freed for the job
    second_started = threading.Event()
    second = runner.start("train", lambda ctx: second_started.set())
    third = runner.start("export", lambda ctx: pytest.fail("a stopped queued job must not run"))
    assert second.status == third.status == "queued" and "dataset job" in second.message
    assert _record(tmp_path, second)["status"] == "queued"
    with pytest.raises(UserError, match="GPU is busy with the dataset job"):
        with runner.gpu("speak", wait=False):
            pass
    assert not second_started.wait(0.5)  # still waiting for the GPU
    runner.stop(third.id)
    release.set()
    assert runner.wait(first.id, 10).status == "finished"
    assert runner.wait(second.id, 10).status == "finished" and second_started.is_set()
    assert runner.wait(third.id, 10).status == "stopped"
    with runner.gpu("speak", wait=False):  # free again
        pass


def test_speak_waits_for_another_speak_but_not_for_a_job(tmp_path):
    runner = JobRunner(tmp_path)
    held, done = threading.Event(), []

    def first_speak():
        with runner.gpu("speak", wait=False):
            held.set()
            time.sleep(0.5)  # loading a model

    thread = threading.Thread(target=first_speak)
    thread.start()
    assert held.wait(10)
    with runner.gpu("speak", wait=False):  # the page's second call waits its turn
        done.append(not thread.is_alive())
    thread.join()
    assert done == [True]
