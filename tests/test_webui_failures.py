"""The failure journey in a real browser: bad files, offline Whisper and base model, a bad reference, a
mistyped model path and an empty Resume, with a reload after each. Every failure must be readable on the
page itself (never only in the log), keep the last good output, and never become the form's new state.
Screenshots (desktop, 390 px wide, dark mode) go to artifacts/screenshots/."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from speech import espeak
from test_webui_e2e import CHROMIUM, CHROMIUM_ARGS, _free_port, _shot, _status, _tab, _type_custom, _wait_status


@pytest.fixture()
def offline_app(tmp_path, monkeypatch, tiny_export):
    """The app with no way to download a model, and one exported model already in its workspace."""
    from huggingface_hub import constants

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    from xtts_finetune.webui.app import launch

    workspace = tmp_path / "workspace"
    shutil.copytree(tiny_export, workspace / "models" / tiny_export.name)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(workspace / "uploads" / ".gradio"))
    demo, url = launch(workspace, port=_free_port(), block=False, quiet=True)
    yield workspace, url
    demo.close()


def _bad_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    empty, text = folder / "empty.wav", folder / "notes.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 22050)
    text.write_text("these are my notes, not a recording")
    return empty, text


def _reload(page, tab: str) -> None:
    page.reload()
    page.wait_for_selector("#ds-create")
    _tab(page, tab)


def _wait_value(page, selector: str, value: str) -> None:
    """Until the field shows `value` (a reloaded form is filled by the page's load event, a moment later)."""
    page.wait_for_function("([sel, v]) => document.querySelector(sel)?.value === v", arg=[selector, value], timeout=20_000)


def _no_error_badges(page, *elem_ids: str) -> None:
    """Gradio marks a component an event failed on with an error badge; these fields must carry none."""
    for elem_id in elem_ids:
        assert page.locator(f"#{elem_id} .error").count() == 0, f"#{elem_id} shows an error badge"


def test_failures_are_visible_and_leave_good_state_alone(offline_app, tiny_whisper, tmp_path):
    from playwright.sync_api import sync_playwright

    workspace, url = offline_app
    good = espeak("Good morning, and welcome to the recording.", tmp_path / "up" / "hello.wav")
    empty, text = _bad_files(tmp_path / "up")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("#ds-create")

        # 1. A newcomer's upload with two bad files mixed in: amber, both failures named in the panel.
        page.locator("#ds-media input[type=file]").set_input_files([str(good), str(empty), str(text)])
        page.locator("#ds-media").get_by_text("notes").wait_for()
        page.locator("#ds-speaker :is(input, textarea)").first.fill("anna")
        _type_custom(page, "ds-whisper", str(tiny_whisper))
        page.locator("#ds-create").click()
        _wait_status(page, "#ds-job", {"partial"})
        panel = page.locator("#ds-job").inner_text()
        assert "Finished with problems" in panel and "empty.wav" in panel and "notes.wav" in panel
        assert "Fix:" in panel and panel.count(str(tmp_path)) == 0  # names, not doubled paths
        assert page.locator("#ds-job [role=progressbar]").count() == 1
        assert page.locator("#ds-stats .xf-help[title]").count() >= 5  # every statistic explains itself
        _shot(page, "failures-1-dataset-partial")

        # 2. Whisper cannot be downloaded offline: red, with the fix in the UI's words ...
        _reload(page, "Dataset")
        _wait_value(page, "#ds-whisper input", str(tiny_whisper))  # the form survived
        _wait_value(page, "#ds-speaker :is(input, textarea)", "anna")
        other = espeak("The quick brown fox jumps over the lazy dog.", tmp_path / "up2" / "fox.wav")
        page.locator("#ds-media input[type=file]").set_input_files(str(other))
        page.locator("#ds-media").get_by_text("fox").wait_for()
        _type_custom(page, "ds-whisper", "tiny")
        page.locator("#ds-create").click()
        page.wait_for_function("() => document.querySelector('#ds-job .xf-job')?.dataset.status === 'failed'",
                               timeout=120_000)
        panel = page.locator("#ds-job").inner_text()
        assert "fox.wav" in panel and "Whisper model field" in panel and "--" not in panel
        # ... and the reloaded form comes from the last job that worked, not the failed one.
        _reload(page, "Dataset")
        _wait_value(page, "#ds-whisper input", str(tiny_whisper))

        # 3. Training from a release with no network: red, a fix, no stale curves; the form keeps no failed base.
        _tab(page, "Train")
        _type_custom(page, "tr-base", "v2.0.3")
        page.locator("#tr-epochs input").fill("1")
        page.locator("#tr-start").click()
        _wait_status(page, "#tr-job", {"failed"})
        panel = page.locator("#tr-job").inner_text()
        assert "not downloaded" in panel and "Fix: go online" in panel and "xtts-finetune" not in panel
        _shot(page, "failures-2-train-offline")
        _reload(page, "Train")
        assert page.locator("#tr-base input").input_value() != "v2.0.3"

        # 4. Resume with nothing to resume: a readable refusal, and no failed job left behind.
        jobs_before = len(list((workspace / "jobs").glob("*-train-*.json")))
        page.locator("#tr-resume").click()
        page.get_by_text("press Start training for a new run").first.wait_for()
        assert len(list((workspace / "jobs").glob("*-train-*.json"))) == jobs_before
        _reload(page, "Train")
        assert _status(page, "#tr-job") == "failed"  # still the offline one, not a job for the refused Resume

        # 5. Speak: good audio first, then a bad reference and a mistyped model path leave it in place.
        _tab(page, "Speak")
        page.wait_for_function("() => document.querySelector('#sp-model-info')?.innerText.includes('tiny-voice')")
        page.locator("#sp-text textarea").fill("Hello there.")
        page.locator("#sp-count", has_text="12 / 4,000 characters").wait_for()  # counted as you type
        page.locator("#sp-speak").click()
        page.wait_for_function("() => document.querySelector('#sp-audio audio')?.src", timeout=120_000)
        page.locator("#sp-status", has_text="Spoke 1 sentence").wait_for()
        src = page.locator("#sp-audio audio").first.evaluate("a => a.src")
        page.locator("#sp-source").get_by_text("Upload").click()
        page.locator("#sp-upload input[type=file]").set_input_files(str(empty))
        page.locator("#sp-upload").get_by_text("empty").wait_for()
        page.locator("#sp-speak").click()
        page.locator("#sp-status", has_text="holds no sound").wait_for()
        assert "Fix: Upload a wav" in page.locator("#sp-status").inner_text()
        assert page.locator("#sp-audio audio").first.evaluate("a => a.src") == src
        page.locator("#sp-source").get_by_text("Model voice").click()
        voice = page.locator("#sp-voice input").input_value()
        _type_custom(page, "sp-model", str(workspace / "models" / "no-such-model"))
        page.locator("#sp-model-info", has_text="no-such-model").wait_for()
        assert "tiny-voice" not in page.locator("#sp-model-info").inner_text()
        assert page.locator("#sp-voice input").input_value() == voice
        _no_error_badges(page, "sp-voice", "sp-language", "sp-audio")
        _shot(page, "failures-3-speak")
        _reload(page, "Speak")
        page.wait_for_function("() => document.querySelector('#sp-model-info')?.innerText.includes('tiny-voice')")

        # 6. A phone-sized screen in dark mode: all four tabs in view, nothing wider than the screen.
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(f"{url}?__theme=dark")
        phone.wait_for_selector("#ds-create")
        phone.locator("#ds-stats .xf-stats").wait_for()
        phone.locator("#ds-histogram :is(canvas, svg)").first.wait_for()  # a native plot, drawn in the dark theme
        right = phone.evaluate("(() => { const i = document.querySelector('#ds-whisper input');"
                               " return parseFloat(getComputedStyle(i).paddingRight); })()")
        assert right > 10  # a long value ends in an ellipsis before the arrow, not under it
        assert all(phone.get_by_role("tab", name=n).is_visible() for n in ("Dataset", "Train", "Export", "Speak"))
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.evaluate("document.body.classList.contains('dark') || document.querySelector('.dark') !== null")
        _shot(phone, "failures-4-phone-dark-dataset")
        _tab(phone, "Speak")
        _shot(phone, "failures-5-phone-dark-speak")
        browser.close()
