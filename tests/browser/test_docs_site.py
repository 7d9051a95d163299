"""Issue 26: the documentation site renders offline in the Chromium the browser tests use.

The site is built once per session (:mod:`tests._docs`, the same ``sphinx-build -W`` as
``tests/test_docs.py``) into ``build/docs/`` and opened from disk (``file://``) with every
request that is not a local file aborted and recorded.  For the landing page, tutorial
01 (math and widget stills) and the API page of ``transfer_nb``: no console error, no
request to the network, every image loaded and decoded, every math element typeset by
MathJax (no MathJax error).  Screenshots, for people to look at:
``build/docs-screenshots/landing.png``, ``tutorial.png`` (tutorial 01 at its first widget
still) and ``api.png``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests._docs import REPO, built_site

pytestmark = [pytest.mark.browser, pytest.mark.docs]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(600))

SHOTS = REPO / "build" / "docs-screenshots"
PAGE_MS = 60_000

# name -> (page under the site, CSS selector to scroll to before the screenshot or None,
#          whether the page must contain typeset math)
PAGES = {
    "landing": ("index.html", None, True),
    "tutorial": ("tutorials/01_coding_rate.html", 'img[alt^="A still image of"]', True),
    "api": ("api/transfer_nb.html", None, False),
}

_MATH_STATE = """() => {
  const math = Array.from(document.querySelectorAll('.math'));
  return {
    mathjax: !!(window.MathJax && window.MathJax.startup),
    elements: math.length,
    typeset: math.filter(m => m.querySelector('mjx-container') || m.tagName === 'MJX-CONTAINER').length,
    containers: document.querySelectorAll('mjx-container').length,
    errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent).slice(0, 5),
  };
}"""

_IMAGES = """() => Array.from(document.images).map(i => ({src: i.getAttribute('src'),
  ok: i.complete && i.naturalWidth > 0}))"""


@pytest.fixture(scope="module")
def site():
    return built_site()


@pytest.mark.parametrize("name", list(PAGES))
def test_docs_page_renders_offline(name, site, page):
    rel, scroll_to, has_math = PAGES[name]
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    page.goto((site / rel).as_uri(), wait_until="load", timeout=PAGE_MS)
    # Lazy images below the fold: load them all, then wait until each is decoded.
    page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=PAGE_MS)
    if has_math:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=PAGE_MS)
        page.evaluate("() => MathJax.startup.promise")
        state = page.evaluate(_MATH_STATE)
        assert state["mathjax"], f"{rel}: MathJax did not load"
        assert state["elements"] > 0, f"{rel}: no math on the page"
        assert state["typeset"] == state["elements"], f"{rel}: math not typeset: {state}"
        assert not state["errors"], f"{rel}: MathJax errors {state['errors']}"
    broken = [i["src"] for i in page.evaluate(_IMAGES) if not i["ok"]]
    assert not broken, f"{rel}: images that did not load: {broken}"
    if name == "tutorial":
        stills = page.locator('img[alt^="A still image of"]')
        assert stills.count() == 3, \
            "tutorial 01 shows three widgets (two CodingRateExplorer, one FeatureExplorer)"
        assert "interactive" in page.locator("body").inner_text()
    if name == "api":
        assert page.locator('dt[id="transfer_nb.transrate"]').count() == 1
        assert page.locator('dt[id="transfer_nb.coding_rate"]').count() == 1
    if scroll_to:
        page.locator(scroll_to).first.scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, -120)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert not blocked, f"{rel}: requests to the network: {blocked}"
    assert not page.console_errors, f"{rel}: console errors: {page.console_errors}"
    assert Path(SHOTS / f"{name}.png").stat().st_size > 10_000
