"""Issue 4: the CodingRateExplorer widget works in a real JupyterLab, in a real browser.

JupyterLab serves a fresh notebook that displays ``CodingRateExplorer()``; Debian's
Chromium (driven by Playwright) opens it, waits for the kernel to be idle, runs all
cells from the Run menu, checks that the widget renders (slider and TransRate text,
no "Error displaying widget"), then focuses the eps slider handle, moves it with the
keyboard and checks that the TransRate shown changes.  Screenshots:
``build/browser/before.png`` and ``build/browser/after.png`` (``failure.png`` on error).

Run: ``make test-browser`` or ``.venv/bin/python -m pytest tests/browser -m browser``.
``TNB_BROWSER_WIDGET_CODE`` (optional) replaces the widget cell's code, to debug the
harness against a stand-in (a FloatLogSlider labelled eps + an HTML with class
``tnb-transrate``); the default is the real ``CodingRateExplorer``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(180))

NOTEBOOK_NAME = "coding_rate_explorer_browser.ipynb"
KERNEL_MARK = "KERNEL_PYTHON="
TRANSRATE_RE = re.compile(r"TransRate\s*=\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")

# Timeouts in milliseconds; generous, but the whole test stays well under 3 minutes.
LAB_LOAD_MS = 60_000
KERNEL_IDLE_MS = 60_000
RUN_START_MS = 20_000
WIDGET_RENDER_MS = 90_000
TRANSRATE_UPDATE_MS = 45_000

WIDGET_CODE = (
    "from transfer_nb_widgets import CodingRateExplorer\n"
    "explorer = CodingRateExplorer()\n"
    "explorer"
)


def _write_notebook(path: Path, widget_code: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(f"import sys\nprint({KERNEL_MARK!r} + sys.executable)"),
        nbformat.v4.new_code_cell(widget_code),
    ]
    nbformat.write(nb, str(path))


def _transrate(text: str) -> float:
    m = TRANSRATE_RE.search(text)
    assert m, f"no 'TransRate = <number>' in the widget text {text!r}"
    return float(m.group(1))


def _kernels(base_url: str) -> list:
    try:
        with urllib.request.urlopen(base_url + "/api/kernels", timeout=5) as r:
            return json.loads(r.read().decode())
    except (OSError, ValueError):
        return []


def _wait_kernel_idle(page, base_url: str, timeout_ms: int = KERNEL_IDLE_MS) -> None:
    """Wait until the notebook's kernel is really started, connected and idle.

    JupyterLab's toolbar indicator reads "idle" for a moment *before* any kernel exists
    (the status bar then says "No Kernel | Initializing"), and cells run in that window
    are silently dropped.  So require, twice in a row half a second apart: the toolbar
    indicator idle, the status bar "<kernel> | Idle", and the server's own record of a
    kernel that is idle with at least one connection.
    """
    indicator = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")
    statusbar = page.locator("#jp-main-statusbar")
    deadline = time.monotonic() + timeout_ms / 1000
    streak, state = 0, ""
    while time.monotonic() < deadline:
        try:
            ui_status = indicator.first.get_attribute("data-status", timeout=1_000)
            bar = statusbar.inner_text(timeout=1_000)
        except Exception:  # noqa: BLE001 - not rendered yet
            ui_status, bar = None, ""
        kernels = _kernels(base_url)
        server_ok = any(
            k.get("execution_state") == "idle" and k.get("connections", 0) >= 1 for k in kernels
        )
        bar_ok = re.search(r"\) \| Idle", bar) is not None
        state = f"indicator={ui_status!r} statusbar={bar!r} kernels={kernels!r}"
        streak = streak + 1 if (ui_status == "idle" and bar_ok and server_ok) else 0
        if streak >= 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"kernel not idle after {timeout_ms / 1000:.0f}s: {state}")


def _click_run_all_cells(page) -> None:
    """Run > Run All Cells from JupyterLab's main menu bar."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    item = page.locator(
        ".lm-Menu-content .lm-Menu-item", has_text=re.compile(r"^Run All Cells$")
    ).first
    item.wait_for(state="visible")
    item.click()


def _run_all_cells(page, notebook) -> None:
    """Run all cells from the menu; if no cell has started after a while, try once more."""
    first_prompt = notebook.locator(".jp-Cell").first.locator(".jp-InputPrompt")
    started = re.compile(r"\[(\*|\d+)\]")
    from playwright.sync_api import expect

    for attempt in range(2):
        _click_run_all_cells(page)
        try:
            expect(first_prompt).to_have_text(started, timeout=RUN_START_MS)
            return
        except AssertionError:
            if attempt:
                raise
            print("Run All Cells started nothing; retrying once")
            page.keyboard.press("Escape")


def _eps_slider(output):
    """The explorer's eps FloatLogSlider: the slider whose label mentions eps/ε, else the first."""
    sliders = output.locator(".widget-slider")
    labelled = sliders.filter(has_text=re.compile(r"eps|ε|epsilon", re.IGNORECASE))
    return labelled.first if labelled.count() else sliders.first


def test_coding_rate_explorer_in_jupyterlab(jupyter_lab, page, screenshot_dir):
    from playwright.sync_api import expect

    widget_code = os.environ.get("TNB_BROWSER_WIDGET_CODE", WIDGET_CODE)
    _write_notebook(jupyter_lab["root"] / NOTEBOOK_NAME, widget_code)
    for old in ("before.png", "after.png", "failure.png"):
        (screenshot_dir / old).unlink(missing_ok=True)

    try:
        page.goto(f"{jupyter_lab['url']}/lab/tree/{NOTEBOOK_NAME}", timeout=LAB_LOAD_MS)
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
        expect(notebook).to_be_visible(timeout=LAB_LOAD_MS)
        expect(notebook.locator(".jp-Cell")).to_have_count(2, timeout=LAB_LOAD_MS)
        # The kernel must have started and settled before cells are run.
        _wait_kernel_idle(page, jupyter_lab["url"])
        _run_all_cells(page, notebook)

        # Cell 1: the kernel is this interpreter (the venv's ipykernel).
        first_out = notebook.locator(".jp-Cell").nth(0).locator(".jp-OutputArea-output")
        expect(first_out).to_contain_text(KERNEL_MARK, timeout=WIDGET_RENDER_MS)
        kernel_python = first_out.inner_text().split(KERNEL_MARK, 1)[1].strip().splitlines()[0]
        assert Path(kernel_python).resolve() == Path(sys.executable).resolve(), (
            f"kernel runs {kernel_python}, expected this environment's {sys.executable}"
        )

        # Cell 2: the widget renders.
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
        # Let any computation still triggered by the first render finish.
        _wait_kernel_idle(page, jupyter_lab["url"])
        before_text = transrate.inner_text()
        before = _transrate(before_text)
        assert math.isfinite(before), before_text
        transrate.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "before.png"))

        # Move eps: focus the slider handle and use the keyboard, as a user would.
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
        _wait_kernel_idle(page, jupyter_lab["url"])
        after_text = transrate.inner_text()
        after = _transrate(after_text)
        transrate.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "after.png"))
        print(f"before: {before_text!r} (eps {eps_before}); after: {after_text!r} "
              f"(eps {readout.inner_text() if eps_before is not None else '?'})")

        assert math.isfinite(after), after_text
        assert after != before, f"TransRate did not change: {before_text!r} -> {after_text!r}"
        assert page.get_by_text("Error displaying widget").count() == 0
    except BaseException:
        try:
            page.screenshot(path=str(screenshot_dir / "failure.png"))
        except Exception:  # noqa: BLE001 - the original failure matters more
            pass
        log = jupyter_lab["log"]
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
        errors = "\n".join(getattr(page, "console_errors", [])[-20:])
        print(f"--- browser console errors ---\n{errors}\n--- server log tail ---\n{tail}")
        raise
