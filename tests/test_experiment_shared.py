"""The pieces every paper's runner and report share (transfer_nb.experiments._results)."""
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import PAPERS
from transfer_nb.experiments._results import fmt, gate_text, run_meta

ROOT = Path(__file__).resolve().parents[1]


class _Cfg:
    mode = "full"
    primary = "the score correlates with the truth"


def test_run_meta_keys_and_order():
    meta = run_meta("demo", _Cfg(), "abc123", time.perf_counter() - 2.04, jobs=3,
                    version="v1")
    assert list(meta) == ["paper", "mode", "config_hash", "wall_clock_s", "primary", "jobs",
                          "version"]
    assert meta["paper"] == "demo" and meta["mode"] == "full"
    assert meta["config_hash"] == "abc123" and meta["jobs"] == 3
    assert meta["primary"] == "the score correlates with the truth"
    assert meta["wall_clock_s"] == pytest.approx(2.0, abs=0.15)


def test_run_meta_refuses_to_overwrite_a_standard_key():
    with pytest.raises(ValueError, match=r"\['mode'\] are standard keys"):
        run_meta("demo", _Cfg(), "abc", time.perf_counter(), mode="fast")


@pytest.mark.parametrize("paper", PAPERS)
def test_stored_runs_hold_every_key_run_meta_writes(paper):
    path = ROOT / "results" / paper / "run.json"
    if not path.exists():
        pytest.skip(f"no stored run of {paper}")
    stored = json.loads(path.read_text())
    standard = run_meta(paper, _Cfg(), "h", time.perf_counter())
    assert set(standard) <= set(stored)


def test_gate_text_names_each_excluded_target_with_its_reason():
    chk = pd.DataFrame({"target": ["a", "b", "c"], "passes": [True, False, True],
                        "reason": ["", "ceiling: 0.99", ""]})
    assert gate_text(chk) == "2 of 3 targets pass; excluded: b (ceiling: 0.99)"
    assert gate_text(chk[chk["passes"]]) == "2 of 2 targets pass"
    cases = chk.rename(columns={"target": "case"})
    assert gate_text(cases, "case", "cases") == ("2 of 3 cases pass; excluded: "
                                                 "b (ceiling: 0.99)")
    assert gate_text(chk, noun="") == "2 of 3 pass; excluded: b (ceiling: 0.99)"


def test_fmt():
    assert fmt(0.456) == "0.46"
    assert fmt(np.float64(-0.0312), "+.3f") == "-0.031"
    assert fmt(0.0312, "+.3f") == "+0.031"
    assert fmt(np.nan) == "nan" and fmt(None) == "nan" and fmt(np.inf) == "nan"
