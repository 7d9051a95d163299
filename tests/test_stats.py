"""transfer_nb.stats: correlations with bootstrap intervals and permutation p-values."""
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from transfer_nb.stats import STATISTICS, interval_verdict, rank_correlations

#: permutation p-values of the independent example below (seed 0, 999 permutations)
KENDALL_P_INDEP, PEARSON_P_INDEP = 0.661, 0.819

_SCIPY = {"pearson": sps.pearsonr, "kendall": sps.kendalltau, "weighted_tau": sps.weightedtau}


@pytest.mark.parametrize("seed", range(6))
def test_point_estimates_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 30))
    truth = rng.normal(size=n)
    scores = {"continuous": truth + rng.normal(size=n),
              # integer scores: many ties, where tau-b and weighted tau handle ties
              "ties": rng.integers(0, 4, size=n).astype(float) + (seed % 2) * truth.round()}
    out = rank_correlations(scores, truth, n_boot=50, seed=seed)
    for name, x in scores.items():
        for stat, fn in _SCIPY.items():
            assert out.loc[name, stat] == pytest.approx(fn(x, truth)[0], abs=1e-12), (name, stat)
        assert out.loc[name, "n"] == n
    assert list(out.columns) == [f"{s}{x}" for s in STATISTICS
                                 for x in ("", "_low", "_high", "_p")] + ["n"]


def test_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=20)
    x = truth + rng.normal(size=20)
    a = rank_correlations({"x": x}, truth, n_boot=300, seed=1)
    b = rank_correlations({"x": x}, truth, n_boot=300, seed=1)
    c = rank_correlations({"x": x}, truth, n_boot=300, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert a.loc["x", "pearson_low"] != c.loc["x", "pearson_low"]
    for s in STATISTICS:
        assert a.loc["x", f"{s}_low"] < a.loc["x", s] < a.loc["x", f"{s}_high"]


def test_perfectly_monotone_gives_one_with_interval_ending_at_one():
    truth = np.linspace(0.1, 0.9, 12)
    out = rank_correlations({"linear": 3 * truth + 1, "monotone": np.exp(5 * truth)}, truth,
                            n_boot=200)
    assert out.loc["linear", "pearson"] == pytest.approx(1.0)
    assert out.loc["linear", "pearson_low"] == pytest.approx(1.0)
    assert out.loc["linear", "pearson_high"] == pytest.approx(1.0)
    for s in ("kendall", "weighted_tau"):
        assert out.loc["monotone", s] == 1.0
        assert out.loc["monotone", f"{s}_low"] == 1.0 and out.loc["monotone", f"{s}_high"] == 1.0
    # a monotone but curved relation is not linear: Pearson < 1, its interval too
    assert out.loc["monotone", "pearson"] < 0.95
    # reversed order: -1
    rev = rank_correlations({"r": -truth}, truth, n_boot=50)
    assert rev.loc["r", "kendall"] == -1.0 and rev.loc["r", "kendall_high"] == -1.0


def test_permutation_p_values():
    truth = np.linspace(0, 1, 15)
    strong = rank_correlations({"s": truth}, truth, n_boot=999, seed=0)
    # no permutation of 15 items reaches |r| = 1: the smallest possible p
    for s in STATISTICS:
        assert strong.loc["s", f"{s}_p"] == pytest.approx(1 / 1000)
    rng = np.random.default_rng(7)
    indep = rank_correlations({"i": rng.normal(size=15)}, rng.normal(size=15), n_boot=999,
                              seed=0)
    for s in STATISTICS:
        assert indep.loc["i", f"{s}_p"] > 0.2
    # fixed seed: exact values (a regression check of the permutation scheme)
    assert indep.loc["i", "kendall_p"] == pytest.approx(KENDALL_P_INDEP)
    assert indep.loc["i", "pearson_p"] == pytest.approx(PEARSON_P_INDEP)


def test_p_value_matches_exact_kendall_null_on_average():
    # two-sided permutation p of Kendall tau vs scipy's exact p: close for n = 10
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=10), rng.normal(size=10)
    y = y + 0.8 * x
    out = rank_correlations({"x": x}, y, n_boot=4000, seed=0)
    assert out.loc["x", "kendall_p"] == pytest.approx(sps.kendalltau(x, y).pvalue, abs=0.02)


def test_undefined_cases_give_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="only 2 items"):
        out = rank_correlations({"a": [1.0, 2.0]}, [0.5, 0.7])
    assert out.loc["a"].drop("n").isna().all() and out.loc["a", "n"] == 2
    with pytest.warns(RuntimeWarning, match="score is constant"):
        out = rank_correlations({"c": [1.0, 1.0, 1.0, 1.0]}, [0.1, 0.2, 0.3, 0.4])
    assert np.isnan(out.loc["c", "pearson"])
    with pytest.warns(RuntimeWarning, match="truth is constant"):
        rank_correlations({"c": [1.0, 2.0, 3.0]}, [0.5, 0.5, 0.5])
    # non-finite items are dropped, n says how many were used
    out = rank_correlations({"a": [1.0, np.nan, 3.0, 4.0, 5.0]}, [1.0, 2.0, 3.0, 4.0, 5.5],
                            n_boot=20)
    assert out.loc["a", "n"] == 4 and out.loc["a", "kendall"] == 1.0


def test_dataframe_series_and_array_inputs():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=10)
    df = pd.DataFrame({"a": truth + rng.normal(size=10), "b": rng.normal(size=10)})
    from_df = rank_correlations(df, truth, n_boot=100)
    from_dict = rank_correlations({"a": df["a"].to_numpy(), "b": df["b"].to_numpy()}, truth,
                                  n_boot=100)
    pd.testing.assert_frame_equal(from_df, from_dict)
    assert list(from_df.index) == ["a", "b"]
    series = rank_correlations(df["a"], pd.Series(truth), n_boot=100)
    assert list(series.index) == ["a"]
    assert series.loc["a", "pearson_low"] == from_df.loc["a", "pearson_low"]
    assert list(rank_correlations(df["a"].to_numpy(), truth, n_boot=10).index) == ["score"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="has 3 values but truth has 4"):
        rank_correlations({"a": [1, 2, 3]}, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="n_boot"):
        rank_correlations({"a": [1, 2, 3]}, [1, 2, 3], n_boot=0)
    with pytest.raises(ValueError, match="empty"):
        rank_correlations({}, [1, 2, 3])


def test_fast_enough_for_notebooks():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    scores = {f"s{i}": truth + rng.normal(size=30) for i in range(3)}
    rank_correlations(scores, truth, n_boot=10)  # warm-up (imports)
    # CPU seconds of this process, not wall time: other processes' load does not count
    t0 = time.process_time()
    rank_correlations(scores, truth)
    assert time.process_time() - t0 < 2.0  # ~0.1 s alone


def test_interval_verdict():
    assert interval_verdict(0.6, 0.9, 0.5) == "reproduced"
    assert interval_verdict(-0.2, 0.3, 0.5) == "not reproduced"
    assert interval_verdict(0.2, 0.8, 0.5) == "inconclusive"
    assert interval_verdict(np.nan, np.nan, 0.5) == "inconclusive"
    with pytest.raises(ValueError, match="must not exceed"):
        interval_verdict(0.9, 0.1, 0.5)
