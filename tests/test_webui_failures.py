"""The failure journey in a real browser: bad files, offline Whisper and base model, a bad reference, a
mistyped model path and an empty Resume, with a reload after each. Every failure must be readable on the
page itself (never only in the log), keep the last good output, and never become the form's new state.

One app, one Chromium and one page for the module; each test is a step that builds on the one before.
Screenshots (desktop, 390 px wide, dark mode) go to artifacts/screenshots/."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from browser import PHONE, open_page, running_app, shot, status, tab, type_custom, wait_status

from speech import espeak


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory, tiny_export):
    """The app with no way to download a model, and one exported model already in its workspace."""
    from huggingface_hub import constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(constants, "HF_HUB_OFFLINE", True)
        with running_app(tmp_path_factory.mktemp("failures"), models=(tiny_export,)) as served:
            yield served


@pytest.fixture(scope="module")
def page(offline_app, browser):
    return open_page(browser, offline_app[1])


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """A good recording and two bad files a newcomer might mix in: an empty wav and a text file named .wav."""
    folder = tmp_path_factory.mktemp("up")
    good = espeak("Good morning, and welcome to the recording.", folder / "hello.wav")
    empty, text = folder / "empty.wav", folder / "notes.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 22050)
    text.write_text("these are my notes, not a recording")
    return {"good": good, "empty": empty, "text": text, "folder": folder}


def _reload(page, name: str) -> None:
    page.reload()
    page.wait_for_selector("#ds-create")
    tab(page, name)


def _wait_value(page, selector: str, value: str) -> None:
    """Until the field shows `value` (a reloaded form is filled by the page's load event, a moment later)."""
    page.wait_for_function("([sel, v]) => document.querySelector(sel)?.value === v", arg=[selector, value], timeout=20_000)


def _no_error_badges(page, *elem_ids: str) -> None:
    """Gradio marks a component an event failed on with an error badge; these fields must carry none."""
    for elem_id in elem_ids:
        assert page.locator(f"#{elem_id} .error").count() == 0, f"#{elem_id} shows an error badge"


def test_two_bad_files_are_both_visible_without_opening_the_log(page, uploads, tiny_whisper):
    page.locator("#ds-media input[type=file]").set_input_files([str(uploads[k]) for k in ("good", "empty", "text")])
    page.locator("#ds-media").get_by_text("notes").wait_for()
    page.locator("#ds-speaker :is(input, textarea)").first.fill("anna")
    type_custom(page, "ds-whisper", str(tiny_whisper))
    page.locator("#ds-create").click()
    wait_status(page, "#ds-job", {"partial"})
    assert not page.locator("#tab-dataset .xf-log textarea").is_visible()  # the log stays closed ...
    for name in ("empty.wav", "notes.wav"):  # ... and each failure is on screen, named once, with its fix
        item = page.locator("#ds-job .xf-problems li", has_text=name)
        assert item.count() == 1 and item.is_visible() and "Fix:" in item.inner_text()
    panel = page.locator("#ds-job").inner_text()
    assert "Finished with problems" in panel and panel.count(str(uploads["folder"])) == 0  # names, not doubled paths
    assert page.locator("#ds-job [role=progressbar]").count() == 1
    assert page.locator("#ds-job [aria-live=polite]").count() == 1
    shot(page, "failures-1-dataset-partial")


def test_offline_whisper_fails_red_and_the_form_keeps_what_worked(page, uploads, tiny_whisper):
    _reload(page, "Dataset")
    _wait_value(page, "#ds-whisper input", str(tiny_whisper))  # the form survived the reload
    _wait_value(page, "#ds-speaker :is(input, textarea)", "anna")
    other = espeak("The quick brown fox jumps over the lazy dog.", uploads["folder"] / "more" / "fox.wav")
    page.locator("#ds-media input[type=file]").set_input_files(str(other))
    page.locator("#ds-media").get_by_text("fox").wait_for()
    type_custom(page, "ds-whisper", "tiny")
    page.locator("#ds-create").click()
    page.wait_for_function("() => document.querySelector('#ds-job .xf-job')?.dataset.status === 'failed'",
                           timeout=120_000)
    panel = page.locator("#ds-job").inner_text()
    assert "fox.wav" in panel and "Whisper model field" in panel and "--" not in panel
    _reload(page, "Dataset")  # the reloaded form comes from the last job that worked, not the failed one
    _wait_value(page, "#ds-whisper input", str(tiny_whisper))


def test_offline_training_fails_red_with_a_fix_and_is_not_restored(page):
    tab(page, "Train")
    type_custom(page, "tr-base", "v2.0.3")
    page.locator("#tr-epochs input").fill("1")
    page.locator("#tr-start").click()
    wait_status(page, "#tr-job", {"failed"})
    panel = page.locator("#tr-job").inner_text()
    assert "not downloaded" in panel and "Fix: go online" in panel and "xtts-finetune" not in panel
    shot(page, "failures-2-train-offline")
    _reload(page, "Train")
    assert page.locator("#tr-base input").input_value() != "v2.0.3"


def test_resume_with_nothing_to_resume_is_refused_without_a_job(page, offline_app):
    jobs = offline_app[0] / "jobs"
    before = len(list(jobs.glob("*-train-*.json")))
    page.locator("#tr-resume").click()
    page.get_by_text("press Start training for a new run").first.wait_for()
    assert len(list(jobs.glob("*-train-*.json"))) == before
    _reload(page, "Train")
    assert status(page, "#tr-job") == "failed"  # still the offline one, not a job for the refused Resume


def test_bad_reference_and_model_path_keep_the_last_audio(page, offline_app, uploads):
    tab(page, "Speak")
    page.wait_for_function("() => document.querySelector('#sp-model-info')?.innerText.includes('tiny-voice')")
    page.locator("#sp-text textarea").fill("Hello there.")
    page.locator("#sp-count", has_text="12 / 4,000 characters").wait_for()  # counted as you type
    page.locator("#sp-speak").click()
    page.wait_for_function("() => document.querySelector('#sp-audio audio')?.src", timeout=120_000)
    page.locator("#sp-status", has_text="Spoke 1 sentence").wait_for()
    src = page.locator("#sp-audio audio").first.evaluate("a => a.src")
    page.locator("#sp-source").get_by_text("Upload").click()
    page.locator("#sp-upload input[type=file]").set_input_files(str(uploads["empty"]))
    page.locator("#sp-upload").get_by_text("empty").wait_for()
    page.locator("#sp-speak").click()
    page.locator("#sp-status", has_text="holds no sound").wait_for()
    assert "Fix: Upload a wav" in page.locator("#sp-status").inner_text()
    assert page.locator("#sp-audio audio").first.evaluate("a => a.src") == src
    page.locator("#sp-source").get_by_text("Model voice").click()
    voice = page.locator("#sp-voice input").input_value()
    type_custom(page, "sp-model", str(offline_app[0] / "models" / "no-such-model"))
    page.locator("#sp-model-info", has_text="no-such-model").wait_for()
    assert "tiny-voice" not in page.locator("#sp-model-info").inner_text()
    assert page.locator("#sp-voice input").input_value() == voice
    _no_error_badges(page, "sp-voice", "sp-language", "sp-audio")
    shot(page, "failures-3-speak")
    _reload(page, "Speak")
    page.wait_for_function("() => document.querySelector('#sp-model-info')?.innerText.includes('tiny-voice')")


def test_failures_read_on_a_phone_in_dark_mode(browser, offline_app):
    phone = open_page(browser, offline_app[1], PHONE, dark=True)
    phone.locator("#ds-job .xf-problems li").first.wait_for()  # the last dataset job's failures, still listed
    assert phone.locator("#ds-job .xf-problems li").first.is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "failures-4-phone-dark-dataset")
    tab(phone, "Train")
    phone.locator("#tr-job [data-status=failed]", has_text="Fix:").wait_for()  # red, with its fix, on a phone
    shot(phone, "failures-5-phone-dark-train")
    phone.close()
