"""The lesson shape (contributor page, "Lessons") held on every notebook 01-07, on its
committed (executed) outputs, and the helpers of :mod:`transfer_nb.lessons`."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import transfer_nb_widgets
from transfer_nb import lessons
from transfer_nb.experiments import base

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("0[1-7]_*.ipynb"))
#: the sections a student meets, in this order (markdown, case-insensitive)
SECTIONS = ("you will learn", "before this", "the data, seen", "the result", "what we learned",
            "exercises", "the evidence")


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell):
    return "".join(cell["source"]).lower() if isinstance(cell["source"], list) \
        else cell["source"].lower()


def _appendix_index(cells):
    return next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                and any(line.startswith("#") and "the evidence" in line
                        for line in _source(c).splitlines()))


def _html_tables(cell):
    for out in cell.get("outputs", []):
        html = out.get("data", {}).get("text/html")
        if html:
            yield "".join(html) if isinstance(html, list) else html


def test_there_are_seven_lessons():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_sections_in_order(path):
    # headings and bold lead-ins only: "the evidence" in a sentence is not the appendix
    md = ["\n".join(line for line in _source(c).splitlines() if line.startswith(("#", "**")))
          for c in _cells(path) if c["cell_type"] == "markdown"]
    positions = []
    for name in SECTIONS:
        hits = [i for i, text in enumerate(md) if name in text]
        assert hits, f"{path.name}: no section {name!r}"
        positions.append(hits[0])
    assert positions == sorted(positions), f"{path.name}: sections out of order {positions}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_three_exercises_and_a_checked_one(path):
    cells = _cells(path)
    text = next(_source(c) for c in cells if c["cell_type"] == "markdown"
                and _source(c).lstrip("# ").startswith("6. exercises")
                or c["cell_type"] == "markdown" and _source(c).startswith("## exercises"))
    assert len(re.findall(r"^\d+\. \*\*", text, flags=re.M)) >= 3
    assert any(c["cell_type"] == "code" and 'check("0' in _source(c) for c in cells)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_images_before_the_first_table(path):
    cells = _cells(path)
    first_image = first_table = None
    for i, c in enumerate(cells):
        for out in c.get("outputs", []):
            data = out.get("data", {})
            if first_image is None and "image/png" in data:
                first_image = i
            if first_table is None and "<table" in "".join(data.get("text/html", "")):
                first_table = i
    assert first_image is not None, f"{path.name}: no image (is it executed?)"
    assert first_table is None or first_image < first_table


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name[:2])
def test_tables_before_the_appendix_are_short(path):
    cells = _cells(path)
    for c in cells[:_appendix_index(cells)]:
        for html in _html_tables(c):
            for table in re.findall(r"<tbody>(.*?)</tbody>", html, flags=re.S):
                assert table.count("<tr") <= 8, f"{path.name}: a table of {table.count('<tr')} rows"
                cells_text = re.findall(r"<td[^>]*>(.*?)</td>", table, flags=re.S)
                long = [t for t in cells_text if re.search(r"\d\.\d{4,}", t)]
                assert not long, f"{path.name}: numbers with more than 3 decimals: {long[:3]}"


def test_every_widget_class_is_in_a_lesson():
    code = "\n".join(_source(c) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
                     for c in _cells(p) if c["cell_type"] == "code")
    missing = [name for name in transfer_nb_widgets.__all__ if f"{name.lower()}(" not in code]
    assert not missing, f"widget classes used by no notebook: {missing}"


# ------------------------------------------------------------------ lessons helpers
def _verdicts():
    rows = [base.verdict_row("A correlates", primary=True, paper=0.81, statistic="Pearson",
                             estimate=0.44, low=0.26, high=0.6, rule="r", verdict="reproduced"),
            base.verdict_row("A beats B", primary=False, paper="+0.24", statistic="diff",
                             estimate=-0.18, low=-0.32, high=-0.07, rule="d",
                             verdict="not reproduced")]
    return base.verdict_table(rows + [base.verdict_row(f"claim {i}", primary=False, paper="-",
                                                       statistic="s", estimate=float(i), low=0,
                                                       high=1, rule="r", verdict="inconclusive")
                                      for i in range(8)])


def test_result_table_puts_the_papers_number_beside_ours():
    v = _verdicts()
    fast = v.assign(estimate=v["estimate"] / 2)
    table = lessons.result_table(v, fast, claims=[0, "beats"])
    assert list(table.columns) == ["claim", "paper", "stored run", "verdict", "this run (fast)"]
    assert table.loc[0, "paper"] == "0.81"
    assert table.loc[0, "stored run"] == "+0.44 [+0.26, +0.60]"
    assert table.loc[1, "this run (fast)"] == "-0.09 (not reproduced)"


def test_result_table_refuses_more_than_eight_rows_and_unknown_claims():
    v = _verdicts()
    with pytest.raises(ValueError, match="at most 8 rows"):
        lessons.result_table(v, claims=list(range(9)))
    with pytest.raises(ValueError, match="no claim 'nothing like it'"):
        lessons.result_table(v, claims=["nothing like it"])
    assert len(lessons.result_table(v)) == 8


def test_read_aloud_and_said_use_the_numbers_and_the_verdict():
    v = _verdicts()
    text = lessons.read_aloud(v)
    assert "the paper reports 0.81" in text and "**0.44**" in text and "(**reproduced**)" in text
    assert lessons.said(v, "beats") == "-0.18 [-0.32, -0.07] (not reproduced)"
    assert lessons.interval_text(np.nan, 0, 1) == "-"
    assert lessons.interval_text(0.0, np.nan, np.nan) == "+0.00"


def test_provenance_is_one_sentence():
    meta = {"mode": "full", "commit": "0123456789abcdef", "device": "cpu", "wall_clock_s": 1800,
            "date": "2026-12-06T10:00:00", "stale": False}
    assert lessons.provenance(meta) == ("Stored full run of commit 0123456789, on cpu, "
                                        "30 minutes of wall-clock, dated 2026-12-06.")


def test_target_images_draws_per_class():
    spec = base.TargetSpec("symbols", "glyphs", options=(("chars", "!#$"),))
    images, labels, names, task = lessons.target_images(spec, image_size=16, per_class=2)
    assert images.shape[:3] == (6, 16, 16) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert names == ["!", "#", "$"] and task == "classification"
    with pytest.raises(ValueError, match="per_class"):
        lessons.target_images(spec, per_class=0)
