"""experiments.regression.power: interval widths of sub-designs of a stored run."""
import numpy as np
import pandas as pd
import pytest

from transfer_nb import stats
from transfer_nb.experiments.regression import power


def _table(n_targets=3, n_models=12, n_seeds=2, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_targets):
        score = rng.normal(size=n_models)
        truth = 0.5 * score + rng.normal(size=n_models)
        for m in range(n_models):
            for s in range(n_seeds):
                rows.append({"target": f"t{t}", "model": f"m{m}", "seed": s,
                             "score": score[m], "truth": truth[m] + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def test_the_whole_design_is_the_pooled_within_statistic():
    t = _table()
    w = power.subsample_widths(t, "score", "truth", ["t0", "t1", "t2"],
                               [f"m{i}" for i in range(12)], [(3, 12, 2)], reps=1, n_boot=200)
    means = t.groupby(["target", "model"])[["score", "truth"]].mean().reset_index()
    ref = stats.pooled_within(means["score"], means["truth"], means["target"], "pearson", 200)
    assert w.loc[0, "estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
    assert 0.05 < w.loc[0, "half_width"] < 1.0


def test_more_targets_and_models_narrow_the_interval():
    t = _table(n_targets=4, n_models=20)
    models = [f"m{i}" for i in range(20)]
    w = power.subsample_widths(t, "score", "truth", ["t0", "t1", "t2", "t3"], models,
                               [(1, 20, 2), (4, 20, 2), (16, 20, 2), (4, 8, 2)], reps=6,
                               n_boot=300).set_index(["n_targets", "n_models"])["half_width"]
    assert w[(16, 20)] < w[(4, 20)] < w[(1, 20)]
    assert w[(4, 20)] < w[(4, 8)]
    # 16 targets drawn with replacement from 4: about half the width of 4 (1 / sqrt(4))
    assert w[(16, 20)] / w[(4, 20)] == pytest.approx(0.5, abs=0.12)


def test_fit_recovers_the_fisher_z_law_and_sizes_a_design():
    designs = pd.DataFrame({"n_targets": [1, 2, 4, 8, 4], "n_models": [10, 10, 13, 19, 25]})
    designs["half_width"] = 2.0 / np.sqrt(designs["n_targets"] * (designs["n_models"] - 3))
    fit = power.fit_width(designs)
    assert fit["b"] == pytest.approx(0.5) and fit["c"] == pytest.approx(2.0)
    assert fit["c_half"] == pytest.approx(2.0)
    assert power.predicted_half_width(2.0, 4, 28) == pytest.approx(0.2)
    assert power.design_for(2.0, 0.2, 28) == 4
    assert power.design_for(2.0, 0.15, 28) == 8          # 2/0.15 squared / 25 = 7.1
    with pytest.raises(ValueError, match="half_width"):
        power.design_for(2.0, 0.0, 28)
    with pytest.raises(ValueError, match="models"):
        power.subsample_widths(_table(), "score", "truth", ["t0"], ["m0", "m1", "m2"],
                               [(1, 3, 1)])
