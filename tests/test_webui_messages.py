"""The page's wording and rules as plain functions: UI words for CLI advice, a job's problems, which job
fills a reloaded form, speech progress, and the job panel's outcome colours."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from xtts_finetune.errors import UserError


def test_cli_advice_is_said_in_the_pages_words():
    from xtts_finetune.webui.messages import split_fix, ui_words

    text = str(UserError("no unfinished run to resume in /ws/runs", fix="start a new run without --resume"))
    reason, fix = split_fix(ui_words(text))
    assert reason == "no unfinished run to resume in /ws/runs" and fix == "press Start training for a new run"
    assert "--" not in ui_words("--base '/x' is neither an XTTS version nor a folder")
    assert ui_words("run r saved no checkpoint\n  fix: start a new run (lower --save-every to lose less next time)") \
        == "run r saved no checkpoint\n  fix: start a new run"


def test_problems_name_each_file_once_and_group_a_shared_reason():
    from xtts_finetune.webui.messages import problems

    rows = problems([("/up/empty.wav", "Cannot decode /up/empty.wav: end of file\n  fix: re-export it"),
                     ("/up/a.wav", "Unknown Whisper model 'x'.\n  fix: pass the path of a local faster-whisper model folder"),
                     ("/up/b.wav", "Unknown Whisper model 'x'.\n  fix: pass the path of a local faster-whisper model folder")],
                    ["/up/quiet.wav"])
    assert rows[0] == {"file": "empty.wav", "reason": "Cannot decode empty.wav: end of file", "fix": "Re-export it"}
    assert rows[1]["file"] == "a.wav, b.wav" and "Whisper model field" in rows[1]["fix"]
    assert rows[2]["file"] == "quiet.wav" and rows[2]["reason"] == "No speech found in it."


def test_counts_and_durations_read_naturally():
    from xtts_finetune.dataset.create import clock
    from xtts_finetune.webui.messages import dataset_summary, duration_text, plural

    assert [clock(s) for s in (0, 59.9, 725, 3723)] == ["0:00", "0:59", "12:05", "1:02:03"]  # never "0.0 min"

    assert (plural(1, "clip"), plural(0, "clip"), plural(3, "clip")) == ("1 clip", "0 clips", "3 clips")
    assert [duration_text(s) for s in (2.54, 18.4, 270, 7500)] == ["2.5 s", "18 s", "4.5 min", "2 h 05 min"]
    report = SimpleNamespace(added=["a"], failed=[("x.wav", "bad")], total_segments=1, train_segments=1,
                             eval_segments=0, total_seconds=4.0)
    assert dataset_summary(report) == ("Added 1 clip; the dataset now has 1 clip (1 train, 0 eval, 4.0 s). "
                                       "1 file could not be used: see below. Training needs at least 2 clips "
                                       "(one of them for the eval split): add more recordings.")  # issue 25
    report.total_segments, report.train_segments, report.eval_segments = 2, 1, 1
    assert dataset_summary(report).endswith("1 file could not be used: see below.")


def test_a_reloaded_form_comes_from_the_last_job_that_worked():
    from xtts_finetune.webui.messages import form_source

    def job(status, **params):
        return SimpleNamespace(kind="train", status=status, params=params)

    jobs = [job("failed", base="x", settings={"epochs": 9}),  # newest first
            job("finished", base=None, settings=None, resume=True),  # a resume carries no form
            job("stopped", base="good", settings={"epochs": 2}), job("finished", base="old", settings={"epochs": 1})]
    assert form_source(jobs, "train", "settings").params["base"] == "good"
    assert form_source(jobs[:2], "train", "settings") is None
    assert form_source([job("running", base="now", settings={"epochs": 3})], "train", "settings").params["base"] == "now"


def test_speech_progress_counts_sentences():
    from xtts_finetune.webui.messages import speech_progress

    assert speech_progress(0, 4, 2.2) == "Speaking: sentence 1 of 4 · elapsed 2 s"
    assert speech_progress(2, 4, 10) == "Speaking: sentence 3 of 4 · elapsed 10 s · about 10 s left"


def test_unexpected_network_errors_get_a_fix():
    from xtts_finetune.webui.messages import unexpected

    class ConnectError(Exception):
        pass

    try:
        try:
            raise ConnectError("[Errno -3] Temporary failure in name resolution")
        except ConnectError as inner:
            raise RuntimeError("download failed") from inner
    except RuntimeError as err:
        message, fix = unexpected(err, "train")
    assert message == "Could not reach the internet to download a model." and "folder" in fix
    assert unexpected(KeyError("k"), "train") == ("Unexpected error: KeyError: 'k'", "")


def test_jobs_with_failed_files_end_amber_or_red_with_the_files_in_the_panel(tmp_path):
    from xtts_finetune.webui.common import job_html
    from xtts_finetune.webui.jobs import JobRunner

    runner = JobRunner(tmp_path)
    rows = [{"file": "empty.wav", "reason": "It holds no audio.", "fix": "Re-export it."}]

    def some_failed(ctx):
        ctx.problems, ctx.summary, ctx.hint = rows, "Added 2 clips.", "Next: train."

    def all_failed(ctx):
        ctx.problems, ctx.nothing_done = rows, True

    partial = runner.wait(runner.start("dataset", some_failed).id, 10)
    assert partial.status == "partial" and partial.problems == rows and partial.hint == ""  # no "next" over failures
    panel = job_html(partial)
    assert "Finished with problems" in panel and "<b>empty.wav</b>: It holds no audio." in panel and "Fix: Re-export it." in panel
    assert 'role="status"' in panel and 'role="progressbar"' in panel and 'aria-valuenow="100"' in panel
    assert runner.wait(runner.start("dataset", all_failed).id, 10).status == "failed"
    done = runner.wait(runner.start("dataset", lambda ctx: setattr(ctx, "hint", "Next: train.")).id, 10)
    assert done.status == "finished" and "Next: train." in job_html(done)
    assert sum("Added 2 clips." in line for line in partial.log) == 1  # the summary is logged once


def test_elapsed_keeps_counting_while_a_job_reports_nothing(tmp_path):
    from xtts_finetune.webui.common import job_signature
    from xtts_finetune.webui.jobs import JobRunner

    runner = JobRunner(tmp_path)
    job = runner.start("evaluate", lambda ctx: ctx.stop_event.wait(10))
    first = job_signature(runner.get(job.id))
    time.sleep(1.05)
    assert job_signature(runner.get(job.id)) != first  # the panel redraws, so "elapsed" moves
    runner.stop(job.id)
    runner.wait(job.id, 10)


def test_a_failed_training_job_does_not_show_the_previous_runs_curves(tmp_path):
    from xtts_finetune.webui.tab_train import run_of

    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / "settings.json").write_text("{}")
    failed = SimpleNamespace(active=False, started=time.time(), status="failed", params={})
    for before in (600, 0.5):  # a run that finished a moment before the job started is not the job's either
        old = failed.started - before
        os.utime(run / "settings.json", (old, old))
        assert run_of(failed, run) is None
    assert run_of(SimpleNamespace(active=True), run) == run and run_of(None, run) == run
    (run / "events.jsonl").write_text("")  # the job wrote to the run: its curves are its own
    assert run_of(failed, run) == run


def test_speak_refuses_an_empty_reference_and_keeps_the_last_audio(tmp_path):
    import gradio as gr

    from xtts_finetune.webui.tab_speak import check_references, speech_result

    empty, good = tmp_path / "empty.wav", tmp_path / "good.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 22050)
    sf.write(good, np.zeros(22050, dtype=np.float32), 22050)
    (tmp_path / "notes.wav").write_text("not audio")
    assert check_references([good]) == [good]
    for bad, words in ((empty, "holds no sound"), (tmp_path / "notes.wav", "is not an audio file")):
        with pytest.raises(UserError, match=words):
            check_references([bad])
    panel, audio = speech_result({"error": ValueError("decoder broke")}, 0, 1.0, False)
    assert isinstance(audio, type(gr.skip())) and "Unexpected error: ValueError: decoder broke" in panel
    panel, audio = speech_result({"audio": None}, 3, 1.0, True)
    assert "Cancelled" in panel and isinstance(audio, type(gr.skip()))
    panel, audio = speech_result({"audio": (24000, np.zeros(10))}, 3, 2.0, False)
    assert "Spoke 3 sentences in 2 s." in panel and audio[0] == 24000


def test_the_speak_limit_is_the_servers():
    import inspect

    from xtts_finetune.server import MAX_INPUT_CHARS, create_app
    from xtts_finetune.webui.tab_speak import count_html, max_chars

    assert max_chars() == MAX_INPUT_CHARS == inspect.signature(create_app).parameters["max_chars"].default
    assert f"5,000 / {MAX_INPUT_CHARS:,} characters" in count_html(5000) and "xf-over" in count_html(5000)


def test_statistics_carry_their_explanations():
    from xtts_finetune.webui.tab_dataset import STAT_HELP, stats_html

    table = stats_html([("Clipping", "2: a<1>, b", STAT_HELP["Clipping"])])
    assert "a&lt;1&gt;" in table and 'title="Clips whose loudest samples' in table
    assert "No dataset yet" in stats_html([])


def test_uploaded_files_keep_their_names_in_every_message(tmp_path):
    """Issue 25: "broken take.wav" is reported as "broken take.wav", never "broken_take.wav". Through the
    Dataset tab's own handler and job (subtitles, so no Whisper): the panel's problems, message and log."""
    import json
    import re

    from speech import espeak
    from test_dataset_subtitles import write_srt
    from xtts_finetune.webui.app import build_app
    from xtts_finetune.webui.common import job_html
    from xtts_finetune.webui.jobs import JobRunner

    picked = tmp_path / "picked"  # where Gradio keeps an upload: under the name the user chose
    (picked / "broken take.wav").parent.mkdir()
    (picked / "broken take.wav").write_text("not a recording")
    espeak("Good morning to you.", picked / "my talk.wav")
    write_srt(picked / "my talk.srt", [(0.1, 1.0, "Good morning to you."), (30.0, 31.0, "Not in this recording.")])
    ws = tmp_path / "ws"
    demo = build_app(ws)
    create = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_create")
    started = create([str(picked / "broken take.wav"), str(picked / "my talk.wav")], "", [str(picked / "my talk.srt")],
                     "en", "speaker", "large-v3")
    job_id = re.search(r'data-job="([^"]+)"', started).group(1)
    record, deadline = ws / "jobs" / f"{job_id}.json", time.time() + 60
    while json.loads(record.read_text())["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.1)
    job = json.loads(record.read_text())
    assert job["status"] == "failed"  # neither file gave a clip
    assert sorted(row["file"] for row in job["problems"]) == ["broken take.wav", "my talk.wav"]
    assert any("my talk.srt" in row["reason"] for row in job["problems"])  # the subtitle file too, as uploaded
    shown = "\n".join([job["message"], *job["log"], json.dumps(job["problems"], ensure_ascii=False)])
    assert "broken take.wav" in shown and "broken_take" not in shown and "my_talk" not in shown
    assert sorted(p.name for p in (ws / "uploads").rglob("*.*")) == ["broken take.wav", "my talk.srt", "my talk.wav"]
    assert "<b>broken take.wav</b>" in job_html(JobRunner(ws).get(job_id))  # the panel, as the page draws it
