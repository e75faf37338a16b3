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
        parts += [audio, np.zeros(int(0.7 * rate), dtype=np.float32)]
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


def _pick(page, elem_id: str, option: str) -> None:
    """Choose an option of a Gradio dropdown by (part of) its label."""
    page.locator(f"#{elem_id} input").click()
    page.locator("ul.options li", has_text=option).first.click()


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
        page.wait_for_selector("#ds-media :text('my_recording_take_1_.wav'), #ds-media :text('my recording (take 1).wav')")
        _type_custom(page, "ds-whisper", str(tiny_whisper))
        page.locator("#ds-create").click()
        _wait_status(page, "#ds-job", {"finished"})
        page.wait_for_function("document.querySelectorAll('#ds-clips tbody tr').length >= 2")
        assert "Clips (train / eval)" in page.locator("#ds-stats").inner_text()
        uploads = list((workspace / "uploads").rglob("*.wav"))
        assert uploads and all(workspace in p.parents for p in uploads)
        page.locator("#ds-clips tbody tr").first.locator("td").nth(3).click()  # clip browser: select -> play
        page.wait_for_function("() => { const a = document.querySelector('#tab-dataset audio'); return a && a.src; }")
        _shot(page, "1-dataset")

        # 2. Train: a long run first, to see it survive a page refresh, refuse a second start, and stop.
        _tab(page, "Train")
        _type_custom(page, "tr-base", str(tiny_xtts))
        page.locator("#tr-start").click()
        page.wait_for_function("() => /\\d+%/.test(document.querySelector('#tr-job .xf-badge')?.innerText || '')",
                               timeout=120_000)
        page.reload()
        page.wait_for_selector("#tr-start", state="attached")
        _tab(page, "Train")
        badge = page.locator("#tr-job .xf-badge")
        badge.wait_for()
        assert _status(page, "#tr-job") == "running" and "%" in badge.inner_text()
        _shot(page, "2-train-running")
        _type_custom(page, "tr-base", str(tiny_xtts))
        page.locator("#tr-start").click()
        page.get_by_text("training job is already running").first.wait_for()
        page.locator("#tr-stop").click()
        _wait_status(page, "#tr-job", {"stopped"})

        # ... then one epoch to the end.
        page.locator("#tr-start").click()  # the epochs field still says 10: set 1
        ...
        browser.close()
