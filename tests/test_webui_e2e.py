"""The whole journey in a real browser: upload -> dataset -> train -> export -> speak, on the tiny models.

One app, one Chromium and one page for the module: each test is a step of the journey and builds on the
one before (run the file as a whole). Screenshots of each step go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
import soundfile as sf
from browser import (
    PHONE, broken_words, cut_off, dropdown_fits, brightness, open_page, pick, running_app,
    shot, tab, type_custom, wait_for_bars, wait_status,
)

from speech import espeak

SENTENCES = [
    "Good morning, and welcome to the recording.",
    "Today we read a few short sentences aloud.",
    "Each one is clear and spoken at an even pace.",
    "The quick brown fox jumps over the lazy dog.",
    "Small models learn quickly but remember little.",
    "Thank you for listening to this test.",
]
LONG_TEXT = " ".join(f"This is sentence number {n} of a long text." for n in range(1, 120))  # over the limit


def _recording(folder, name: str, sentences: list[str]):
    """One recording: the sentences with pauses between them, as a user would upload it."""
    parts, rate = [], 22050
    for i, sentence in enumerate(sentences):
        audio, rate = sf.read(espeak(sentence, folder / f"{name}-part{i}.wav"), dtype="float32")
        parts += [audio, np.zeros(int(0.5 * rate), dtype=np.float32)]
    out = folder / f"{name}.wav"
    sf.write(out, np.concatenate(parts), rate)
    return out


@pytest.fixture(scope="module")
def journey():
    """What later steps need from earlier ones (a clip id, the run's name, the first audio)."""
    return {}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("e2e")) as served:
        yield served


@pytest.fixture(scope="module")
def page(app, browser):
    page = open_page(browser, app[1])
    page.xf_outside = []
    page.on("request", lambda r: page.xf_outside.append(r.url)
            if not r.url.startswith((app[1], "data:", "blob:")) else None)
    return page


def _clip_rows(page) -> list[str]:
    rows = page.locator("#ds-clips div[role=row]")  # Gradio 6 renders data rows as divs
    rows.nth(1).wait_for()
    return rows.all_inner_texts()


def test_dataset_from_two_uploads(page, app, tiny_whisper, tmp_path_factory, journey):
    workspace, _ = app
    folder = tmp_path_factory.mktemp("upload")
    takes = [_recording(folder, "my recording (take 1)", SENTENCES), _recording(folder, "take 2", SENTENCES[::-1][:4])]
    page.locator("#ds-media input[type=file]").set_input_files([str(t) for t in takes])
    page.locator("#ds-media").get_by_text("take 2").wait_for()
    type_custom(page, "ds-whisper", str(tiny_whisper))
    page.locator("#ds-create").click()
    wait_status(page, "#ds-job", {"finished"})
    panel = page.locator("#ds-job").inner_text()
    assert re.search(r"Added \d+ clips?;", panel) and not re.search(r"\b1 clips\b", panel)  # "Added 1 clip"
    assert "0.0 min" not in panel and "2 · Train" in panel  # durations read naturally; the next step is named
    page.locator("#tab-dataset").get_by_text("Job log").click()
    log = page.locator("#tab-dataset .xf-log textarea").input_value()
    assert log.count("the dataset now has") == 1  # the summary is logged once
    assert "from 0:00" in log and not re.search(r"\d\.\d min", log)  # positions as a player shows them
    uploads = list((workspace / "uploads").rglob("*.wav"))
    assert uploads and all(workspace in p.parents for p in uploads)
    stats = page.locator("#ds-stats")
    assert "Clips (train / eval)" in stats.inner_text()
    names = stats.locator("th")
    assert names.count() >= 6 and stats.locator("th .xf-help[title][tabindex]").count() == names.count()  # help for each
    alt = page.locator("#ds-histogram-alt").inner_text()
    assert alt.startswith("Clip durations:") and "clips from" in alt  # the histogram's text alternative
    wait_for_bars(page, "#ds-histogram")  # a native plot with its bars (every bin at one clip drew none)
    assert len(_clip_rows(page)) >= 3
    page.locator("#tab-dataset").get_by_text("Subtitles (optional)").click()  # its label, open and closed
    rows = stats.locator("tr")
    assert all(rows.nth(i).is_visible() for i in range(rows.count()))  # no hidden statistics row
    _fits(page, "desktop, dataset")


def test_clip_is_corrected_in_the_table(page, app, journey):
    from xtts_finetune.dataset import list_segments

    rows = page.locator("#ds-clips div[role=row]")
    clip_id = rows.first.inner_text().split()[0]
    rows.first.click()  # the clip browser: select a row -> its clip plays, its transcript is editable
    page.wait_for_function("() => { const a = document.querySelector('#tab-dataset audio'); return a && a.src; }")
    assert page.locator("#ds-clip-id :is(input, textarea)").first.input_value() == clip_id
    page.locator("#ds-clip-text textarea").fill("hello, this transcript was corrected.")
    page.locator("#ds-clip-save").click()
    page.locator("#ds-clips div[role=row]", has_text="hello, this transcript was corrected.").wait_for()
    assert next(s for s in list_segments(app[0]) if s.id == clip_id).text == "hello, this transcript was corrected."
    journey["clip_id"] = clip_id
    shot(page, "1-dataset")


def test_excluding_the_only_eval_clip_says_which_clip_moved(page, app, journey):
    from xtts_finetune.dataset import list_segments

    evals = [s for s in list_segments(app[0]) if s.split == "eval" and s.active]
    assert len(evals) == 1 and len([s for s in list_segments(app[0]) if s.active]) >= 3, "the upload's clips changed"
    page.locator("#ds-clips div[role=row]", has_text=evals[0].id).first.click()
    page.wait_for_function("(id) => document.querySelector('#ds-clip-id :is(input, textarea)')?.value === id",
                           arg=evals[0].id)
    page.locator("#tab-dataset").get_by_label("Exclude from training").check()
    page.locator("#ds-clip-save").click()
    toast = page.locator(".toast-body", has_text="moved to the eval split")
    toast.wait_for()
    moved = next(s for s in list_segments(app[0]) if s.split == "eval" and s.active)
    assert moved.id in toast.inner_text() and moved.id != evals[0].id
    journey["clip_id"] = moved.id  # the corrected clip may be the excluded one: Speak offers active clips only
    shot(page, "1-dataset-eval-moved")


def test_training_survives_a_reload_refuses_a_second_start_and_stops(page, tiny_xtts, journey):
    tab(page, "Train")
    page.locator("#tr-start").click()  # a mistake reads as a message in the page, not a traceback
    page.get_by_text("No base model chosen.").first.wait_for()
    assert "Traceback" not in page.content()
    type_custom(page, "tr-base", str(tiny_xtts))
    page.locator("#tr-epochs input").fill("50")
    type_custom(page, "tr-batch", "1")
    page.locator("#tr-start").click()
    wait_status(page, "#tr-job", {"running"})
    # "elapsed" counts on its own, before the job reports any progress (while the base model loads)
    page.wait_for_function("() => /elapsed [1-9]/.test(document.querySelector('#tr-job .xf-badge')?.innerText)")
    job_id = page.locator("#tr-job .xf-job").get_attribute("data-job")
    page.locator("#tr-start").click()  # a second start while one trains is refused, readably
    page.get_by_text("A training job is already running").first.wait_for()
    _wait_progress(page)
    _elapsed_runs_while_a_job_waits(page)
    page.reload()  # the running job, with its progress, is read back after a refresh
    tab(page, "Train")
    _wait_progress(page)
    assert page.locator("#tr-job .xf-job").get_attribute("data-job") == job_id
    assert page.locator("#tr-base input").input_value() == str(tiny_xtts)  # so is the form
    assert page.locator("#tr-epochs input").input_value() == "50"
    shot(page, "2-train-running")
    page.locator("#tr-stop").click()
    wait_status(page, "#tr-job", {"stopped"})
    journey["stopped_job"] = job_id


def _elapsed_runs_while_a_job_waits(page) -> None:
    """A job that reports nothing (queued for the GPU here, as one loading a model) still counts "elapsed"."""
    tab(page, "Dataset")
    page.locator("#ds-verify").click()
    wait_status(page, "#ds-job", {"queued"})
    page.wait_for_function("() => { const el = document.querySelector('#ds-job .xf-job');"
                           " return el?.dataset.status === 'queued' && /elapsed [1-9]s/.test(el.innerText); }")
    tab(page, "Train")


def _wait_progress(page) -> None:
    """Until the training panel shows a running job with a percentage."""
    page.wait_for_function(
        "() => { const el = document.querySelector('#tr-job .xf-job');"
        " return el && el.dataset.status === 'running' && /\\d+%/.test(el.innerText); }", timeout=120_000)


def test_training_finishes_and_points_to_export(page, app, journey):
    from xtts_finetune.train import list_runs

    page.locator("#tr-epochs input").fill("1")
    page.locator("#tr-start").click()
    page.wait_for_function(f"() => document.querySelector('#tr-job .xf-job')?.dataset.job !== {journey['stopped_job']!r}")
    wait_status(page, "#tr-job", {"finished"})
    assert "Next: open the 3 · Export tab" in page.locator("#tr-job").inner_text()  # the panel points onwards
    page.wait_for_function("document.querySelectorAll('#tr-plot canvas, #tr-plot svg').length > 0")
    trainer_log = page.locator("#tr-log textarea").input_value()
    assert "loss" in trainer_log.lower() and "\x1b[" not in trainer_log
    _fits(page, "desktop, train")
    shot(page, "2-train")
    assert sorted(r.status for r in list_runs(app[0])) == ["finished", "stopped"]
    journey["run"] = next(r.name for r in list_runs(app[0]) if r.status == "finished")


def test_a_failed_training_does_not_show_the_previous_runs_curves(page, journey):
    type_custom(page, "tr-base", "v2.0.3")  # a release, and the tests run offline: it cannot download
    page.locator("#tr-start").click()
    wait_status(page, "#tr-job", {"failed"})
    assert "Fix:" in page.locator("#tr-job").inner_text()
    page.wait_for_function("() => document.querySelector('#tr-log textarea')?.value.toLowerCase().includes('loss') === false")
    assert journey["run"] not in page.locator("#tr-plot").inner_text()  # the plot's title names no run
    shot(page, "2-train-failed-offline")


def test_export_and_download_a_streamed_zip(page, app, journey, tmp_path_factory):
    workspace, _ = app
    tab(page, "Export")
    pick(page, "ex-run", journey["run"])
    dropdown_fits(page, "ex-run")  # the long run label ends before the arrow, in an ellipsis
    page.locator("#ex-name input, #ex-name textarea").first.fill("e2e-voice")
    page.locator("#ex-export").click()
    wait_status(page, "#ex-job", {"finished"})
    assert "4 · Speak" in page.locator("#ex-job").inner_text()  # the panel points to the next step
    link = page.locator("#ex-download a[href]", has_text="e2e-voice.zip")
    with page.expect_download() as download:
        link.click()
    saved = tmp_path_factory.mktemp("download") / "got.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert {"e2e-voice/model.pth", "e2e-voice/config.json", "e2e-voice/vocab.json"} <= names
        assert archive.read("e2e-voice/model.pth") == (workspace / "models" / "e2e-voice" / "model.pth").read_bytes()
    weights = sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*")
                     if p.suffix == ".zip" or p.name == "model.pth")  # the workspace holds Gradio's cache too
    assert weights == ["models/e2e-voice/model.pth"], weights
    _fits(page, "desktop, export")
    shot(page, "3-export")


def test_speak_with_the_models_voice_and_a_dataset_clip(page, journey):
    tab(page, "Speak")
    page.wait_for_function("() => document.querySelector('#sp-model input')?.value.includes('e2e-voice')")
    page.locator("#sp-text textarea").fill("Hello there.")  # one short sentence: a random tiny model talks to its cap
    page.locator("#sp-speak").click()
    page.wait_for_function("() => document.querySelector('#sp-audio audio')?.src", timeout=120_000)
    src = page.locator("#sp-audio audio").first.evaluate("a => a.src")
    wav = page.request.get(src)
    assert wav.ok and wav.body()[:4] == b"RIFF" and wav.body()[8:12] == b"WAVE"
    audio, rate = sf.read(io.BytesIO(wav.body()))
    assert rate == 24000 and len(audio) > 2400
    shot(page, "4-speak")
    _fits(page, "desktop, speak")
    _clip_choices_end_in_an_ellipsis(page)  # a dataset clip as the reference
    page.locator("#sp-clip [role=option]", has_text=journey["clip_id"]).first.click()
    page.locator("#sp-speak").click()
    page.wait_for_function(f"() => (document.querySelector('#sp-audio audio')?.src || {src!r}) !== {src!r}",
                           timeout=120_000)
    journey["audio"] = page.locator("#sp-audio audio").first.evaluate("a => a.src")
    assert page.request.get(journey["audio"]).body()[:4] == b"RIFF"


def test_long_speech_shows_progress_a_limit_and_cancels(page, journey):
    box = page.locator("#sp-text textarea")
    assert box.get_attribute("maxlength") == "4000"  # the REST server's limit
    box.fill(LONG_TEXT)
    page.locator("#sp-count", has_text="4,000 / 4,000 characters").wait_for()  # cut at the limit, counted
    assert len(box.input_value()) == 4000
    page.locator("#sp-speak").click()
    page.locator("#sp-status", has_text=re.compile(r"Speaking: sentence \d+ of \d+ · elapsed")).wait_for(timeout=60_000)
    page.locator("#sp-cancel").click()
    page.locator("#sp-status", has_text="Cancelled; the previous audio is kept.").wait_for(timeout=60_000)
    assert page.locator("#sp-audio audio").first.evaluate("a => a.src") == journey["audio"]
    shot(page, "4-speak-cancelled")


def _fits(page, where: str) -> None:
    """The open tab: no text cut without an ellipsis, no word broken over lines, nothing wider than the screen."""
    # an accordion's button overflows by its turned arrow; its label span is checked instead
    assert cut_off(page, "#ds-stats .prose, .xf-stats th, .xf-stats td, .xf-badge, label span, [role=tab], "
                         "button:not(.label-wrap), .label-wrap span, input[role=combobox]") == [], where
    assert broken_words(page, ".xf-stats th, [role=tab], .label-wrap span, label span, "
                              "#ds-clips [role=columnheader], .xf-badge") == [], where
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], where


def _clip_choices_end_in_an_ellipsis(page) -> None:
    """Open the Dataset clip list: a label too long for it ends in an ellipsis (the list stays open)."""
    page.locator("#sp-source").get_by_text("Dataset clip").click()
    page.locator("#sp-clip input").click()
    options = page.locator("#sp-clip [role=option]")
    options.first.wait_for()
    assert cut_off(page, "#sp-clip [role=option]") == []


def test_layout_fits_a_phone_in_dark_mode(browser, app, journey):
    phone = open_page(browser, app[1], PHONE, dark=True)
    assert phone.evaluate("document.querySelector('.dark') !== null")
    assert all(phone.get_by_role("tab", name=n).is_visible() for n in ("Dataset", "Train", "Export", "Speak"))
    wait_for_bars(phone, "#ds-histogram")
    assert brightness(phone, "#ds-histogram") < 110  # drawn in the dark theme, not a white picture
    assert phone.locator("#ds-job[aria-live], #ds-job [aria-live]").count() >= 1
    headers = phone.locator("#ds-clips [role=columnheader]")
    assert headers.count() >= 6 and all(headers.nth(i).bounding_box()["height"] < 60 for i in range(6))
    shot(phone, "5-layout-phone-dark-dataset")
    _fits(phone, "phone, dataset")
    tab(phone, "Train")
    _fits(phone, "phone, train")
    tab(phone, "Speak")
    phone.wait_for_function("() => document.querySelector('#sp-model-info')?.innerText.includes('e2e-voice')")
    _fits(phone, "phone, speak")
    for elem_id in ("sp-model", "sp-language"):
        dropdown_fits(phone, elem_id)
    _clip_choices_end_in_an_ellipsis(phone)
    shot(phone, "5-layout-phone-dark-speak")
    tab(phone, "Export")
    pick(phone, "ex-run", journey["run"])
    dropdown_fits(phone, "ex-run")
    _fits(phone, "phone, export")
    shot(phone, "5-layout-phone-dark-export")
    phone.close()


def test_the_page_never_reached_outside_the_app(page):
    assert page.xf_outside == [], f"the page reached outside the app: {page.xf_outside}"
