"""Helpers for the browser tests: headless Chromium (Debian's package, through Python Playwright) on a running
app, Gradio's widgets driven as a user would, and layout checks measured from element geometry.

Screenshots go to artifacts/screenshots/ (kept by CI as test artifacts)."""

from __future__ import annotations

import io
import socket
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(root: Path, models: tuple[Path, ...] = ()):
    """The app as `launch` serves it, on a workspace of its own (with copies of `models` exported into it)."""
    import shutil

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.setenv("XTTS_FINETUNE_HOME", str(root / "home"))  # no shared caches
        from xtts_finetune.webui.app import launch

        workspace = root / "workspace"
        for model in models:
            shutil.copytree(model, workspace / "models" / model.name)
        mp.setenv("GRADIO_TEMP_DIR", str(workspace / "uploads" / ".gradio"))  # as `launch` sets it
        demo, url = launch(workspace, port=free_port(), block=False, quiet=True)
        try:
            yield workspace, url
        finally:
            demo.close()


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, viewport: dict = DESKTOP, dark: bool = False):
    page = browser.new_page(viewport=viewport)
    page.goto(f"{url}?__theme=dark" if dark else url)
    page.wait_for_selector("#ds-create")
    return page


def status(page, panel: str) -> str:
    return page.locator(f"{panel} .xf-job").get_attribute("data-status") or ""


def wait_status(page, panel: str, wanted: set[str], timeout_s: float = 150) -> str:
    """Until the panel's job is in one of `wanted` (or failed: then the panel's text is the assertion message)."""
    page.wait_for_function(
        "([sel, wanted]) => { const el = document.querySelector(sel + ' .xf-job');"
        " return el && wanted.includes(el.dataset.status); }",
        arg=[panel, sorted(wanted | {"failed", "interrupted"})], timeout=timeout_s * 1000,
    )
    found = status(page, panel)
    assert found in wanted, page.locator(panel).inner_text()
    return found


def pick(page, elem_id: str, option: str) -> None:
    """Choose an option of a Gradio dropdown by (part of) its label."""
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id} [role=option]", has_text=option).first.click()


def type_custom(page, elem_id: str, value: str) -> None:
    """Type a free value (a folder path) into a Gradio dropdown that allows custom values."""
    box = page.locator(f"#{elem_id} input")
    box.fill(value)
    box.press("Enter")
    box.blur()


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ---- layout, measured ------------------------------------------------------------------------------

_CUT = """(sel) => [...document.querySelectorAll(sel)].filter(e => e.getClientRects().length && !e.closest('.sr-only'))
  .filter(e => (e.value || e.innerText || '').trim())  // text, not a box of other widgets
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow !== 'ellipsis')
  .map(e => `${e.tagName.toLowerCase()}#${e.closest('[id]')?.id}: ${(e.value || e.innerText || '').slice(0, 60)}`)"""

_BROKEN = """(sel) => {
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (!el.getClientRects().length) continue;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) out.push(`${el.closest('[id]')?.id}: ${m[0]}`);
      }
    }
  }
  return out;
}"""

_UNDER_ARROW = """(id) => {
  const input = document.querySelector(`#${id} input[role=combobox]`);
  const arrow = document.querySelector(`#${id} .icon-wrap`);
  const box = input.getBoundingClientRect(), style = getComputedStyle(input);
  const textEnd = box.right - parseFloat(style.paddingRight);
  return {overflows: input.scrollWidth > input.clientWidth, ellipsis: style.textOverflow === 'ellipsis',
          textEnd, arrowStart: arrow ? arrow.getBoundingClientRect().left : Infinity};
}"""


def cut_off(page, selector: str) -> list[str]:
    """Visible elements under `selector` whose text is wider than their box, with no ellipsis to say so."""
    return page.evaluate(_CUT, selector)


def broken_words(page, selector: str) -> list[str]:
    """Words split over two lines in these elements: a label cut mid-word, a header one letter a line."""
    return page.evaluate(_BROKEN, selector)


def dropdown_fits(page, elem_id: str) -> dict:
    """Whether a dropdown's value ends before its arrow (and in an ellipsis when too long for its box)."""
    found = page.evaluate(_UNDER_ARROW, elem_id)
    assert found["textEnd"] <= found["arrowStart"] + 0.5, f"#{elem_id}: the value runs under the arrow: {found}"
    assert found["ellipsis"], f"#{elem_id}: a long value would be cut without an ellipsis"
    return found


def wait_for_bars(page, selector: str) -> None:
    """Until a native (Vega, SVG) plot has drawn at least one bar of some height."""
    page.wait_for_function("(sel) => [...document.querySelectorAll(sel + ' .mark-rect path')]"
                           ".some(p => p.getBoundingClientRect().height > 2)", arg=selector)


def brightness(page, selector: str) -> float:
    """Mean brightness (0 black .. 255 white) of what an element shows on screen."""
    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(page.locator(selector).screenshot()))
    return float(np.asarray(image.convert("L")).mean())
