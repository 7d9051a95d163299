"""Issue 16: the four widgets in a real JupyterLab at 1366x768, as a student uses them.

One notebook per widget, each test with its own JupyterLab server and workspace (see
``conftest.py``), opened in Chromium with a 1366x768 viewport (the smallest common
laptop screen):

* the stepper through its three steps: Next refused before extraction (the refusal is
  shown), Extract (the refusal is gone), Next to the coding rate, Next (the copy at the
  bottom) to the layer selection, the probe measured;
* the ``LayerSelector`` on its own: the linear probe measured, the correlation shown;
* the ``CodingRateExplorer``: the separation slider and the eps slider moved with the
  keyboard, the TransRate shown changes;
* the ``FeatureExplorer``: an extraction, the scatter drawn.

Everywhere: no "Error displaying widget", no visible ``tnb-error`` text, no traceback.
The first cell checks that the kernel imports *this* checkout's ``transfer_nb`` and
``widgets`` (the server passes its PYTHONPATH on). Every wait keys on state: the
kernel's status and each cell's execution count and output (``lab.py``), or the widget
element awaited. Screenshots of the viewport go to ``build/browser/`` (``w1366_*.png``,
listed in :data:`SCREENSHOTS`); a failure leaves ``<test>.failure.png``,
``<test>.server.log`` and ``<test>.failure.txt`` (the step it was in) there.
"""
from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest

from transfer_nb_widgets._common import REPEAT_WINDOW_S

from .conftest import REPO_ROOT
from .lab import open_notebook, run_all_cells, wait_images_decoded, wait_kernel_idle

pytestmark = [pytest.mark.browser]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(600))

MARK = "TNB_PATHS="
# Milliseconds; generous for a loaded 2-core machine (a pass never waits them out).
LAB_LOAD_MS = 120_000
RUN_START_MS = 60_000
RENDER_MS = 240_000  # first import of torch + the model on a busy 2-core machine
ACTION_MS = 180_000

SCREENSHOTS = {
    "w1366_stepper_1_refused.png": "stepper, step 1: Next pressed before Extract, refusal",
    "w1366_stepper_1_extracted.png": "stepper, step 1 after Extract: refusal gone, scatter",
    "w1366_stepper_2.png": "stepper, step 2: coding-rate terms and PCA of a real layer",
    "w1366_stepper_3.png": "stepper, step 3: TransRate and probe accuracy per layer",
    "w1366_layer_selector.png": "LayerSelector alone after the linear probe",
    "w1366_coding_rate.png": "CodingRateExplorer after moving separation and eps",
    "w1366_feature_explorer.png": "FeatureExplorer after an extraction",
}

PATHS_CELL = (
    "import sys, transfer_nb, widgets\n"
    f"print({MARK!r} + repr([sys.executable, transfer_nb.__file__, widgets.__file__]))"
)
MODEL = "models=['efficientnet_lite0'], datasets=['digits'], n=80, image_size=32"


@pytest.fixture
def viewport() -> dict:
    return {"width": 1366, "height": 768}


def _open_and_run(page, lab, steps, name: str, code: str):
    """Open a fresh notebook holding ``code``, run it; return the widget cell's output."""
    from playwright.sync_api import expect

    with steps(f"open {name}, kernel idle"):
        notebook = open_notebook(page, lab, name, [PATHS_CELL, code], LAB_LOAD_MS)
    with steps("Run > Run All Cells, every cell executed"):
        run_all_cells(page, name, RUN_START_MS, RENDER_MS)
    with steps("cell 1: this checkout's packages"):
        first = notebook.locator(".jp-Cell").nth(0).locator(".jp-OutputArea-output")
        expect(first).to_contain_text(MARK)
        paths = eval(first.inner_text().split(MARK, 1)[1].strip().splitlines()[0])  # noqa: S307
        for path in paths[1:]:  # this checkout's packages, not an installed copy
            assert Path(path).resolve().is_relative_to(REPO_ROOT.resolve()), paths
    return notebook.locator(".jp-Cell").nth(1).locator(".jp-Cell-outputArea").first


def _assert_clean(page, output) -> None:
    """No widget error, no visible error text, no traceback."""
    assert page.get_by_text("Error displaying widget").count() == 0
    errors = [e.inner_text() for e in output.locator(".tnb-error").all() if e.is_visible()]
    assert not [e for e in errors if e.strip()], errors
    text = output.inner_text()
    assert "Traceback" not in text and "Error:" not in text, text[-2000:]


def _top(locator) -> None:
    """Scroll so that ``locator`` starts at the top of the notebook view."""
    locator.evaluate("e => e.scrollIntoView({block: 'start'})")


class NavClicks:
    """Clicks on the stepper's Back/Next as a person makes them, never as a double click.

    The stepper ignores a click on Next (either copy) that reaches the kernel less than
    ``REPEAT_WINDOW_S`` after the previous Next move *ended* (``widgets._common.RepeatGuard``:
    the second click of a double click). :meth:`moved` is called once the kernel is seen
    idle after a move, which is after that move ended in the kernel; :meth:`click` then
    sends the next click no sooner than ``REPEAT_WINDOW_S`` after that moment, so it
    reaches the kernel outside the window and is always honoured, however slow or fast
    the machine. (Waiting is needed only when the test outpaces a person.)
    """

    def __init__(self, page):
        self.page = page
        self.idle_after_move = None

    def moved(self, name: str) -> None:
        wait_kernel_idle(self.page, name, ACTION_MS)
        self.idle_after_move = time.monotonic()

    def click(self, button) -> None:
        if self.idle_after_move is not None:
            left = self.idle_after_move + REPEAT_WINDOW_S - time.monotonic()
            if left > 0:
                self.page.wait_for_timeout(1000 * left + 50)
        button.click()


def _shot(page, screenshot_dir: Path, name: str, widget) -> None:
    """Screenshot of the viewport once every image of ``widget`` is decoded."""
    assert name in SCREENSHOTS
    wait_images_decoded(page, widget)
    page.screenshot(path=str(screenshot_dir / name))


def test_stepper_three_steps_at_1366(jupyter_lab, page, steps, screenshot_dir):
    from playwright.sync_api import expect

    lab, name = jupyter_lab, "stepper_1366.ipynb"
    output = _open_and_run(page, lab, steps, name,
                           "from transfer_nb_widgets import TransferabilityStepper\n"
                           f"stepper = TransferabilityStepper({MODEL})\nstepper")
    with steps("the stepper renders"):
        stepper = output.locator(".tnb-stepper").first
        expect(stepper).to_be_visible(timeout=RENDER_MS)
        wait_kernel_idle(page, name, ACTION_MS)
        message = stepper.locator(".tnb-stepper-message").first
        next_top = stepper.get_by_role("button", name="Next").first
        next_bottom = stepper.locator(".tnb-stepper-bottom").get_by_role("button", name="Next")
        expect(next_bottom).to_have_count(1)

    nav = NavClicks(page)
    with steps("step 1: Next before Extract is refused, with the reason"):
        nav.click(next_top)
        expect(message).to_contain_text("needs features", timeout=ACTION_MS)
        nav.moved(name)
        _top(stepper)
        _shot(page, screenshot_dir, "w1366_stepper_1_refused.png", stepper)

    with steps("step 1: Extract, the refusal goes, the scatter appears"):
        stepper.get_by_role("button", name="Extract").click()
        expect(stepper.locator(".tnb-feature-explorer img").first).to_be_visible(
            timeout=ACTION_MS)
        wait_kernel_idle(page, name, ACTION_MS)
        expect(message).to_have_text("", timeout=ACTION_MS)
        assert "tnb-error" not in (message.get_attribute("class") or "")
        _shot(page, screenshot_dir, "w1366_stepper_1_extracted.png", stepper)

    with steps("step 2: Next, the coding rate of the extracted features"):
        nav.click(next_top)
        transrate = stepper.locator(".tnb-coding-rate-explorer .tnb-transrate").first
        expect(transrate).to_contain_text(re.compile(r"TransRate = \d"), timeout=ACTION_MS)
        expect(stepper).to_contain_text("Step 2 of 3")
        nav.moved(name)
        _top(stepper)
        _shot(page, screenshot_dir, "w1366_stepper_2.png", stepper)
        _assert_clean(page, output)

    with steps("step 3: the bottom Next, then the linear probe"):
        next_bottom.scroll_into_view_if_needed()
        nav.click(next_bottom)
        expect(stepper).to_contain_text("Step 3 of 3", timeout=ACTION_MS)
        selector = stepper.locator(".tnb-layer-selector").first
        expect(selector.locator("img").first).to_be_visible(timeout=ACTION_MS)
        wait_kernel_idle(page, name, ACTION_MS)
        selector.get_by_role("button", name="Measure linear-probe accuracy").click()
        expect(selector.locator(".tnb-correlation")).to_contain_text("Kendall",
                                                                       timeout=ACTION_MS)
        wait_kernel_idle(page, name, ACTION_MS)
        _top(stepper)
        _shot(page, screenshot_dir, "w1366_stepper_3.png", stepper)
        expect(message).to_have_text("")
        _assert_clean(page, output)


def test_layer_selector_probe_at_1366(jupyter_lab, page, steps, screenshot_dir):
    from playwright.sync_api import expect

    lab, name = jupyter_lab, "layer_selector_1366.ipynb"
    output = _open_and_run(
        page, lab, steps, name,
        "from transfer_nb_widgets import LayerSelector\n"
        "selector = LayerSelector(model='efficientnet_lite0', dataset='digits', n=80, "
        "image_size=32)\nselector")
    with steps("the layer selector renders its TransRate plot"):
        selector = output.locator(".tnb-layer-selector").first
        expect(selector.locator("img").first).to_be_visible(timeout=RENDER_MS)
        wait_kernel_idle(page, name, ACTION_MS)
    with steps("Measure linear-probe accuracy, the correlation shown"):
        selector.get_by_role("button", name="Measure linear-probe accuracy").click()
        expect(selector.locator(".tnb-correlation")).to_contain_text("Pearson",
                                                                       timeout=ACTION_MS)
        expect(selector.locator(".tnb-best-probe")).to_contain_text("Best probe")
        wait_kernel_idle(page, name, ACTION_MS)
        _top(selector)
        _shot(page, screenshot_dir, "w1366_layer_selector.png", selector)
        _assert_clean(page, output)


def _slider(container, label: str):
    return container.locator(".widget-slider").filter(has_text=label).first


def test_coding_rate_sliders_at_1366(jupyter_lab, page, steps, screenshot_dir):
    from playwright.sync_api import expect

    lab, name = jupyter_lab, "coding_rate_1366.ipynb"
    output = _open_and_run(page, lab, steps, name,
                           "from transfer_nb_widgets import CodingRateExplorer\n"
                           "explorer = CodingRateExplorer()\nexplorer")
    with steps("the explorer renders a TransRate"):
        explorer = output.locator(".tnb-coding-rate-explorer").first
        transrate = explorer.locator(".tnb-transrate").first
        expect(transrate).to_contain_text(re.compile(r"TransRate = \d"), timeout=RENDER_MS)
        wait_kernel_idle(page, name, ACTION_MS)
    for label, key, presses in (("Separation", "ArrowRight", 10), ("eps", "PageUp", 2)):
        with steps(f"move the {label} slider ({presses} x {key}), TransRate changes"):
            before = transrate.inner_text()
            handle = _slider(explorer, label).locator(".noUi-handle").first
            handle.focus()
            for _ in range(presses):
                handle.press(key)
            expect(transrate).not_to_have_text(before, timeout=ACTION_MS)
            wait_kernel_idle(page, name, ACTION_MS)
    with steps("screenshot, no error shown"):
        _top(explorer)
        _shot(page, screenshot_dir, "w1366_coding_rate.png", explorer)
        _assert_clean(page, output)


def test_feature_explorer_at_1366(jupyter_lab, page, steps, screenshot_dir):
    from playwright.sync_api import expect

    lab, name = jupyter_lab, "feature_explorer_1366.ipynb"
    output = _open_and_run(page, lab, steps, name,
                           "from transfer_nb_widgets import FeatureExplorer\n"
                           f"explorer = FeatureExplorer({MODEL})\nexplorer")
    with steps("the explorer renders its Extract button"):
        explorer = output.locator(".tnb-feature-explorer").first
        button = explorer.get_by_role("button", name="Extract")
        expect(button).to_be_visible(timeout=RENDER_MS)
        wait_kernel_idle(page, name, ACTION_MS)
    with steps("Extract, the scatter drawn"):
        button.click()
        expect(explorer.locator("img").first).to_be_visible(timeout=ACTION_MS)
        expect(explorer).to_contain_text("images of digits")
        wait_kernel_idle(page, name, ACTION_MS)
        _top(explorer)
        _shot(page, screenshot_dir, "w1366_feature_explorer.png", explorer)
        _assert_clean(page, output)
