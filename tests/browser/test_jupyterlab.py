"""Issue 4: the CodingRateExplorer widget works in a real JupyterLab, in a real browser.

This test's own JupyterLab serves a fresh notebook that displays ``CodingRateExplorer()``;
Debian's Chromium (driven by Playwright) opens it, waits for the kernel to be connected
and idle, runs all cells from the Run menu and waits until each cell has its execution
count and output, checks that the widget renders (slider and TransRate text, no "Error
displaying widget"), then focuses the eps slider handle, moves it with the keyboard and
checks that the TransRate shown changes. Screenshots: ``build/browser/before.png`` and
``build/browser/after.png`` (on failure: ``<test>.failure.png``, ``.server.log``,
``.failure.txt``; see ``conftest.py``).

Run: ``make test-browser`` or ``.venv/bin/python -m pytest tests/browser -m browser``.
``TNB_BROWSER_WIDGET_CODE`` (optional) replaces the widget cell's code, to debug the
harness against a stand-in (a FloatLogSlider labelled eps + an HTML with class
``tnb-transrate``); the default is the real ``CodingRateExplorer``.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from pathlib import Path

import pytest

from .lab import open_notebook, run_all_cells, wait_kernel_idle

pytestmark = [pytest.mark.browser]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(360))

NOTEBOOK_NAME = "coding_rate_explorer_browser.ipynb"
KERNEL_MARK = "KERNEL_PYTHON="
TRANSRATE_RE = re.compile(r"TransRate\s*=\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")

# Timeouts in milliseconds: generous for a loaded 2-core machine; a pass never waits them out.
LAB_LOAD_MS = 120_000
RUN_START_MS = 60_000
RUN_DONE_MS = 180_000
WIDGET_RENDER_MS = 90_000
TRANSRATE_UPDATE_MS = 90_000

WIDGET_CODE = (
    "from transfer_nb_widgets import CodingRateExplorer\n"
    "explorer = CodingRateExplorer()\n"
    "explorer"
)


def _transrate(text: str) -> float:
    m = TRANSRATE_RE.search(text)
    assert m, f"no 'TransRate = <number>' in the widget text {text!r}"
    return float(m.group(1))


def _eps_slider(output):
    """The explorer's eps FloatLogSlider: the slider whose label mentions eps/ε, else the first."""
    sliders = output.locator(".widget-slider")
    labelled = sliders.filter(has_text=re.compile(r"eps|ε|epsilon", re.IGNORECASE))
    return labelled.first if labelled.count() else sliders.first


def test_coding_rate_explorer_in_jupyterlab(jupyter_lab, page, steps, screenshot_dir):
    from playwright.sync_api import expect

    widget_code = os.environ.get("TNB_BROWSER_WIDGET_CODE", WIDGET_CODE)
    name = NOTEBOOK_NAME
    for old in ("before.png", "after.png"):
        (screenshot_dir / old).unlink(missing_ok=True)

    with steps("open the notebook, kernel idle"):
        notebook = open_notebook(
            page, jupyter_lab, name,
            [f"import sys\nprint({KERNEL_MARK!r} + sys.executable)", widget_code],
            LAB_LOAD_MS)

    with steps("Run > Run All Cells, every cell executed"):
        run_all_cells(page, name, RUN_START_MS, RUN_DONE_MS)

    with steps("cell 1: the kernel is this interpreter"):
        first_out = notebook.locator(".jp-Cell").nth(0).locator(".jp-OutputArea-output")
        expect(first_out).to_contain_text(KERNEL_MARK)
        kernel_python = first_out.inner_text().split(KERNEL_MARK, 1)[1].strip().splitlines()[0]
        assert Path(kernel_python).resolve() == Path(sys.executable).resolve(), (
            f"kernel runs {kernel_python}, expected this environment's {sys.executable}"
        )

    with steps("cell 2: the widget renders"):
        output = notebook.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
        transrate = output.locator(".tnb-transrate").first
        expect(transrate).to_be_visible(timeout=WIDGET_RENDER_MS)
        expect(transrate).to_contain_text("TransRate", timeout=WIDGET_RENDER_MS)
        slider = _eps_slider(output)
        expect(slider).to_be_visible()
        handle = slider.locator(".noUi-handle").first
        expect(handle).to_be_visible()
        assert page.get_by_text("Error displaying widget").count() == 0, (
            "JupyterLab shows 'Error displaying widget'"
        )
        # any computation still triggered by the first render has finished
        wait_kernel_idle(page, name, TRANSRATE_UPDATE_MS)
        before_text = transrate.inner_text()
        before = _transrate(before_text)
        assert math.isfinite(before), before_text
        transrate.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "before.png"))

    with steps("move eps with the keyboard, TransRate changes"):
        # One arrow step must move the slider (its readout changes); then PageUp makes a
        # large move (eps * ~10^3.75), so TransRate changes well beyond its 3 decimals.
        readout = slider.locator(".widget-readout").first
        eps_before = readout.inner_text() if readout.count() else None
        handle.focus()
        handle.press("ArrowRight")
        if eps_before is not None:
            expect(readout).not_to_have_text(eps_before, timeout=TRANSRATE_UPDATE_MS)
        for _ in range(3):
            handle.press("PageUp")
        expect(transrate).not_to_have_text(before_text, timeout=TRANSRATE_UPDATE_MS)
        wait_kernel_idle(page, name, TRANSRATE_UPDATE_MS)
        after_text = transrate.inner_text()
        after = _transrate(after_text)
        transrate.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "after.png"))
        print(f"before: {before_text!r} (eps {eps_before}); after: {after_text!r} "
              f"(eps {readout.inner_text() if eps_before is not None else '?'})")

        assert math.isfinite(after), after_text
        assert after != before, f"TransRate did not change: {before_text!r} -> {after_text!r}"
        assert page.get_by_text("Error displaying widget").count() == 0
