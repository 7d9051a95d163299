"""Issue 33: on the docs site at 1366 px, no table of a lesson before its appendix runs
past the text column (a student reads the lesson on a laptop screen; the appendix's wide
audit tables may scroll)."""
from __future__ import annotations

import importlib.util

import pytest

from tests._docs import REPO, built_site

pytestmark = [pytest.mark.browser, pytest.mark.docs]
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark.append(pytest.mark.timeout(600))

LESSONS = sorted(p.stem for p in (REPO / "notebooks").glob("0[1-7]_*.ipynb"))

#: for each table before the heading "Appendix: the evidence": how far its right edge runs
#: past the right edge of the article's text column (px; <= 0 fits)
_OVERFLOW = """() => {
  const article = document.querySelector('article') || document.body;
  const right = article.getBoundingClientRect().right;
  const heads = Array.from(article.querySelectorAll('h2'));
  const appendix = heads.find(h => h.textContent.toLowerCase().includes('the evidence'));
  const before = el => !appendix ||
    (appendix.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  return Array.from(article.querySelectorAll('table')).filter(before).map(t => ({
    over: Math.round(t.getBoundingClientRect().right - right),
    scroll: t.scrollWidth - t.clientWidth,
    head: (t.querySelector('tr') || t).textContent.trim().slice(0, 60)}));
}"""


@pytest.fixture
def viewport() -> dict:
    return {"width": 1366, "height": 768}


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_tables_fit_the_text_column(lesson, page):
    site = built_site()
    page.goto((site / "tutorials" / f"{lesson}.html").as_uri(), wait_until="load")
    tables = page.evaluate(_OVERFLOW)
    assert tables, f"{lesson}: no table before the appendix (is the notebook executed?)"
    wide = [t for t in tables if t["over"] > 0 or t["scroll"] > 0]
    assert not wide, f"{lesson}: tables wider than the text column at 1366 px: {wide}"
