"""The whole journey in a real browser: upload -> dataset -> train -> export -> speak, on the tiny models.

Drives the Gradio page with headless Chromium (Debian's package, through Python Playwright) and saves a
screenshot of each tab to artifacts/screenshots/.
"""

from __future__ import annotations

import socket
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech import espeak

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SENTENCES = [
    "Good morning, and welcome to the recording.",
    "Today we read a few short sentences aloud.",
    "Each one is clear and spoken at an even pace.",
    "The quick brown fox jumps over the lazy dog.",
    "Small models learn quickly but remember little.",
    "Thank you for listening to this test.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recording(folder: Path) -> Path:
    """One ~15-20 s recording: the sentences with pauses between them, as a user would upload it."""
    parts, rate = [], 22050
    for i, sentence in enumerate(SENTENCES):
        audio, rate = sf.read(espeak(sentence, folder / f"part{i}.wav"), dtype="float32")
        parts += [audio, np.zeros(int(0.5 * rate), dtype=np.float32)]
    out = folder / "my recording (take 1).wav"
    sf.write(out, np.concatenate(parts), rate)
    return out


def _status(page, panel: str) -> str:
    return page.locator(f"{panel} .xf-job").get_attribute("data-status") or ""


def _wait_status(page, panel: str, wanted: set[str], timeout_s: float = 150) -> str:
    page.wait_for_function(
        "([sel, wanted]) => { const el = document.querySelector(sel + ' .xf-job');"
        " return el && wanted.includes(el.dataset.status); }",
        arg=[panel, sorted(wanted | {"failed", "interrupted"})], timeout=timeout_s * 1000,
    )
    status = _status(page, panel)
    assert status in wanted, page.locator(panel).inner_text()
    return status


def _wait_progress(page) -> None:
    """Until the training panel shows a running job with a percentage."""
    page.wait_for_function(
        "() => { const el = document.querySelector('#tr-job .xf-job');"
        " return el && el.dataset.status === 'running' && /\\d+%/.test(el.innerText); }", timeout=120_000)


def _pick(page, elem_id: str, option: str) -> None:
    """Choose an option of a Gradio dropdown by (part of) its label."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id} [role=option]", has_text=option).first.click()


def _type_custom(page, elem_id: str, value: str) -> None:
    """Type a free value (a folder path) into a Gradio dropdown that allows custom values."""
    box = page.locator(f"#{elem_id} input")
    box.fill(value)
    box.press("Enter")
    box.blur()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture()
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("XTTS_FINETUNE_HOME", str(tmp_path / "home"))  # no shared caches
    from xtts_finetune.webui.app import launch

    workspace = tmp_path / "workspace"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(workspace / "uploads" / ".gradio"))  # as `launch` sets it
    demo, url = launch(workspace, port=_free_port(), block=False, quiet=True)
    yield workspace, url
    demo.close()


def test_whole_journey_in_the_browser(app, tiny_xtts, tiny_whisper, tmp_path):
    from playwright.sync_api import sync_playwright

    workspace, url = app
    recording = _recording(tmp_path / "upload")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
        page.goto(url)
        page.wait_for_selector("#ds-create")

        # 1. Dataset: upload the recording, transcribe with the tiny Whisper (typed in as a folder path).
        page.locator("#ds-media input[type=file]").set_input_files(str(recording))
        page.locator("#ds-media").get_by_text("my recording (take 1)").wait_for()
        _type_custom(page, "ds-whisper", str(tiny_whisper))
        page.locator("#ds-create").click()
        _wait_status(page, "#ds-job", {"finished"})
        rows = page.locator("#ds-clips div[role=row]")  # Gradio 6 renders data rows as divs
        rows.nth(1).wait_for()
        assert "Clips (train / eval)" in page.locator("#ds-stats").inner_text()
        uploads = list((workspace / "uploads").rglob("*.wav"))
        assert uploads and all(workspace in p.parents for p in uploads)
        clip_id = rows.first.inner_text().split()[0]
        rows.first.click()  # the clip browser: select a row -> its clip plays, its transcript is editable
        page.wait_for_function("() => { const a = document.querySelector('#tab-dataset audio'); return a && a.src; }")
        assert page.locator("#ds-clip-id :is(input, textarea)").first.input_value() == clip_id
        page.locator("#ds-clip-text textarea").fill("hello, this transcript was corrected.")
        page.locator("#ds-clip-save").click()
        page.locator("#ds-clips div[role=row]", has_text="hello, this transcript was corrected.").wait_for()
        from xtts_finetune.dataset import list_segments

        assert next(s for s in list_segments(workspace) if s.id == clip_id).text == "hello, this transcript was corrected."
        _shot(page, "1-dataset")

        # 2. Train: a long run first, to refresh the page while it trains, refuse a second start, and stop it.
        _tab(page, "Train")
        page.locator("#tr-start").click()  # a mistake reads as a message in the page, not a traceback
        page.get_by_text("No base model chosen.").first.wait_for()
        assert "Traceback" not in page.content()
        _type_custom(page, "tr-base", str(tiny_xtts))
        page.locator("#tr-epochs input").fill("50")
        _type_custom(page, "tr-batch", "1")
        page.locator("#tr-start").click()
        _wait_status(page, "#tr-job", {"running"})
        job_id = page.locator("#tr-job .xf-job").get_attribute("data-job")
        page.locator("#tr-start").click()  # a second start while one trains is refused, readably
        page.get_by_text("A training job is already running").first.wait_for()
        _wait_progress(page)
        page.reload()  # the running job, with its progress, is read back after a refresh
        _tab(page, "Train")
        _wait_progress(page)
        assert page.locator("#tr-job .xf-job").get_attribute("data-job") == job_id
        assert page.locator("#tr-base input").input_value() == str(tiny_xtts)  # so is the form
        assert page.locator("#tr-epochs input").input_value() == "50"
        _shot(page, "2-train-running")
        page.locator("#tr-stop").click()
        _wait_status(page, "#tr-job", {"stopped"})

        # ... then one epoch to the end.
        page.locator("#tr-epochs input").fill("1")
        page.locator("#tr-start").click()
        page.wait_for_function(f"() => document.querySelector('#tr-job .xf-job')?.dataset.job !== {job_id!r}")
        _wait_status(page, "#tr-job", {"finished"})
        assert "3 · Export" in page.locator("#tr-job").inner_text()  # the panel points to the next step
        page.wait_for_function("document.querySelectorAll('#tr-plot canvas, #tr-plot svg').length > 0")
        trainer_log = page.locator("#tr-log textarea").input_value()
        assert "loss" in trainer_log.lower() and "\x1b[" not in trainer_log
        _shot(page, "2-train")

        # 3. Export the run's best checkpoint and download the zip.
        from xtts_finetune.train import list_runs

        assert sorted(r.status for r in list_runs(workspace)) == ["finished", "stopped"]
        run_name = next(r.name for r in list_runs(workspace) if r.status == "finished")
        _tab(page, "Export")
        _pick(page, "ex-run", run_name)
        page.locator("#ex-name input, #ex-name textarea").first.fill("e2e-voice")
        page.locator("#ex-export").click()
        _wait_status(page, "#ex-job", {"finished"})
        assert "4 · Speak" in page.locator("#ex-job").inner_text()  # the panel points to the next step
        assert not (workspace / "exports_zip").exists()  # a zip is built only when asked for
        page.locator("#ex-zip").click()
        link = page.locator("#ex-download a[href]").first
        link.wait_for()
        archive = page.request.get(link.evaluate("a => a.href"))  # the link, resolved as the browser follows it
        assert archive.ok and "e2e-voice/model.pth" in zipfile.ZipFile(BytesIO(archive.body())).namelist()
        _shot(page, "3-export")

        # 4. Speak with the exported model and its own reference clips.
        _tab(page, "Speak")
        page.wait_for_function("() => document.querySelector('#sp-model input')?.value.includes('e2e-voice')")
        page.locator("#sp-text textarea").fill("Hello there. This voice was trained in the browser.")
        page.locator("#sp-speak").click()
        page.wait_for_function("() => document.querySelector('#sp-audio audio')?.src", timeout=120_000)
        src = page.locator("#sp-audio audio").first.evaluate("a => a.src")
        wav = page.request.get(src)
        assert wav.ok and wav.body()[:4] == b"RIFF" and wav.body()[8:12] == b"WAVE"
        audio, rate = sf.read(BytesIO(wav.body()))
        assert rate == 24000 and len(audio) > 2400
        _shot(page, "4-speak")
        page.locator("#sp-source").get_by_text("Dataset clip").click()  # a dataset clip as the reference
        _pick(page, "sp-clip", clip_id)
        page.locator("#sp-speak").click()
        page.wait_for_function(f"() => (document.querySelector('#sp-audio audio')?.src || {src!r}) !== {src!r}",
                               timeout=120_000)
        assert page.request.get(page.locator("#sp-audio audio").first.evaluate("a => a.src")).body()[:4] == b"RIFF"
        assert outside == [], f"the page reached outside the app: {outside}"
        browser.close()
