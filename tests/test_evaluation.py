"""evaluate_estimators and plot_estimators on tables with known answers."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from transfer_nb import stats
from transfer_nb.evaluation import evaluate_estimators, score_columns


def zoo_table(seed=0, n=12):
    """Two targets of n models: ``exact`` = truth, ``noisy`` = truth + noise,
    ``anti`` = -truth, ``const`` = constant, ``params`` a weak baseline."""
    rng = np.random.default_rng(seed)
    rows = []
    for target in ("textures", "digits"):
        truth = rng.uniform(0.3, 0.9, size=n)
        for i in range(n):
            rows.append({"target": target, "model": f"m{i}", "accuracy": truth[i],
                         "logme": truth[i], "knn": truth[i] + rng.normal(0, 0.15),
                         "nce": -truth[i], "transrate": 1.0,
                         "params": rng.normal(), "n_train": 50, "n_classes": 10,
                         "logme_seconds": 0.1})
    return pd.DataFrame(rows)


def test_score_columns_leave_bookkeeping_out():
    t = zoo_table()
    assert score_columns(t, exclude=["accuracy"]) == ["logme", "knn", "nce", "transrate",
                                                       "params"]


def test_a_column_equal_to_the_truth_is_best_with_r_one_and_a_constant_is_nan():
    t = zoo_table()
    with _no_warning():                              # NaN with a note, no warning
        ev = evaluate_estimators(t, "accuracy", groups="target", n_boot=200)
    assert list(ev.index[:1]) == ["logme"]
    best = ev.loc["logme"]
    assert best["pearson"] == pytest.approx(1.0, abs=1e-8)
    assert best["kendall"] == pytest.approx(1.0) and best["weighted_tau"] == pytest.approx(1.0)
    assert best["verdict"] == "best" and best["difference"] == 0.0
    assert best["loo_min"] == pytest.approx(1.0) and best["loo_max"] == pytest.approx(1.0)
    assert best["kind"] == "estimator" and ev.loc["params", "kind"] == "baseline"
    assert ev.attrs["against"] == "logme" and ev.attrs["statistic"] == "kendall"
    # the exact negative is -1 and significantly worse than the best
    assert ev.loc["nce", "kendall"] == pytest.approx(-1.0)
    assert ev.loc["nce", "difference"] == pytest.approx(-2.0)
    assert ev.loc["nce", "verdict"] == "worse than logme"
    # the constant column: NaN everywhere, with the reason, listed last
    const = ev.loc["transrate"]
    assert ev.index[-1] == "transrate"
    assert np.isnan(const[["pearson", "kendall", "weighted_tau", "difference"]].astype(float)
                    ).all()
    assert "constant within every group" in const["note"]
    assert const["verdict"] == "" and const["n"] == 24


class _no_warning:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def test_values_are_the_pooled_within_statistics_of_stats():
    t = zoo_table(seed=1)
    ev = evaluate_estimators(t, "accuracy", groups="target", n_boot=300, seed=4,
                             statistic="pearson")
    for col in ("knn", "params"):
        for s in ("pearson", "kendall", "weighted_tau"):
            ref = stats.pooled_within(t[col], t["accuracy"], t["target"], method=s,
                                      n_boot=300, seed=4)
            assert ev.loc[col, s] == pytest.approx(ref["estimate"])
            assert ev.loc[col, f"{s}_low"] == pytest.approx(ref["low"])
            assert ev.loc[col, f"{s}_high"] == pytest.approx(ref["high"])
        lo, hi = stats.leave_one_out_range(t[col], t["accuracy"], "pearson", t["target"])
        assert (ev.loc[col, "loo_min"], ev.loc[col, "loo_max"]) == pytest.approx((lo, hi))
        d = stats.paired_correlation_difference(t[col], t["logme"], t["accuracy"], t["target"],
                                                method="pearson", n_boot=300, seed=4)
        assert ev.loc[col, "difference"] == pytest.approx(d["estimate"])
        assert ev.loc[col, "difference_low"] == pytest.approx(d["low"])
    # pooled within targets = Fisher-z mean of the per-target Pearson r
    per = [sps.pearsonr(g["knn"], g["accuracy"])[0] for _, g in t.groupby("target")]
    assert ev.loc["knn", "pearson"] == pytest.approx(np.tanh(np.mean(np.arctanh(per))))


def test_without_groups_it_is_the_plain_correlation():
    t = zoo_table(seed=2)
    ev = evaluate_estimators(t, t["accuracy"].to_numpy(), columns=["knn", "params"],
                             n_boot=100)
    assert ev.loc["knn", "kendall"] == pytest.approx(sps.kendalltau(t["knn"], t["accuracy"])[0])
    assert ev.loc["knn", "weighted_tau"] == pytest.approx(
        sps.weightedtau(t["knn"], t["accuracy"])[0])
    assert ev.attrs["groups"] is None and ev.attrs["truth"] is None


def test_against_a_named_baseline_and_missing_values():
    t = zoo_table(seed=3)
    t.loc[:3, "knn"] = np.nan                       # e.g. LEEP on layers without a head
    ev = evaluate_estimators(t, "accuracy", groups="target", against="params", n_boot=200)
    assert ev.attrs["against"] == "params"
    assert ev.loc["params", "verdict"] == "reference"
    assert ev.loc["logme", "verdict"] == "better than params"
    assert ev.loc["knn", "n"] == 20
    assert "4 item(s) without a finite value left out" in ev.loc["knn", "note"]
    assert "difference on the 20 items both have" in ev.loc["knn", "note"]


def test_lower_is_better_scores_are_flipped():
    t = zoo_table(seed=5)
    t["pge"] = -t["accuracy"]                        # a distance: lower = better
    ev = evaluate_estimators(t, "accuracy", groups="target", columns=["pge", "knn"],
                             n_boot=100)
    assert ev.loc["pge", "kendall"] == pytest.approx(1.0)
    assert "sign flipped" in ev.loc["pge", "note"]


def test_bad_inputs_say_what_was_wrong():
    t = zoo_table()
    with pytest.raises(ValueError, match="truth 'acc' is not a column"):
        evaluate_estimators(t, "acc")
    with pytest.raises(ValueError, match="truth has 3 values but the table has 24 rows"):
        evaluate_estimators(t, [1, 2, 3])
    with pytest.raises(ValueError, match=r"statistic must be one of \['pearson'"):
        evaluate_estimators(t, "accuracy", statistic="spearman")
    with pytest.raises(ValueError, match="against must be 'best' or one of"):
        evaluate_estimators(t, "accuracy", against="width")
    with pytest.raises(ValueError, match=r"columns \['width'\] are not in the table"):
        evaluate_estimators(t, "accuracy", columns=["width"])


def test_plot_estimators_draws_one_row_per_column():
    import matplotlib
    matplotlib.use("Agg")
    from transfer_nb.plots import plot_estimators

    ev = evaluate_estimators(zoo_table(), "accuracy", groups="target", n_boot=100)
    fig = plot_estimators(ev)
    ax = fig.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == list(ev.index[::-1])           # best at the top
    assert any(t.get_text().startswith("n/a") for t in ax.texts)   # the constant column
    with pytest.raises(ValueError, match="statistic must be one of"):
        plot_estimators(ev, statistic="r2")


def test_etran_and_ncti_columns_are_estimators():
    t = zoo_table().rename(columns={"knn": "etran", "nce": "ncti"})
    ev = evaluate_estimators(t, "accuracy", groups="target", n_boot=50)
    assert ev.loc["etran", "kind"] == "estimator" and ev.loc["ncti", "kind"] == "estimator"
    assert ev.loc["ncti", "kendall"] == pytest.approx(-1.0)       # the exact negative


# ------------------------------------------------ issue 37 point 1: nothing degenerate crowned
def _zoo(n=8, seed=3):
    rng = np.random.default_rng(seed)
    acc = np.linspace(0.40, 0.75, n)
    return pd.DataFrame({
        "accuracy": acc, "n_test": 400, "n_classes": 5,
        "transrate": acc * 100 + rng.normal(0, 2.0, n),
        "logme": acc + rng.normal(0, 0.05, n),
        # H-score at K - 1 = 4 up to rounding (the values the issue printed)
        "hscore": 4.0 + np.array([6.2, -2.7, 3.6, 0.0, 1.1, -0.4, 2.2, -1.8][:n]) * 1e-15,
    }, index=pd.Index([f"m{i}" for i in range(n)], name="model"))


def test_hscore_at_k_minus_1_is_left_out_and_never_best():
    ev = evaluate_estimators(_zoo(), "accuracy", n_boot=300)
    h = ev.loc["hscore"]
    assert np.isnan(h[["pearson", "kendall", "weighted_tau"]].astype(float)).all()
    assert h["verdict"] == ""
    assert "left out: at its bound K - 1 = 4 for every item" in h["note"]
    assert ev.index[-1] == "hscore" and ev.attrs["best"] != "hscore"
    # at the bound for a few models only: still left out, naming them
    some = _zoo().assign(hscore=[4.0, 3.1, 4.0, 2.9, 3.3, 2.5, 3.8, 2.0])
    note = evaluate_estimators(some, "accuracy", n_boot=100).loc["hscore", "note"]
    assert "at its bound K - 1 = 4 for m0, m2" in note
    # constant up to rounding without a bound (no n_classes): left out too
    ev2 = evaluate_estimators(_zoo().drop(columns="n_classes"), "accuracy", n_boot=100)
    assert "left out: constant up to rounding" in ev2.loc["hscore", "note"]


def test_best_only_when_the_paired_interval_against_the_runner_up_excludes_0():
    ev = evaluate_estimators(_zoo(), "accuracy", n_boot=300)
    top, runner = ev.index[0], ev.index[1]
    assert ev.attrs["runner_up"] == runner
    high = ev.loc[runner, "difference_high"]
    if high < 0:
        assert ev.loc[top, "verdict"] == "best" and ev.attrs["best"] == top
    else:
        assert ev.loc[top, "verdict"] == f"not separable from {runner}"
        assert ev.attrs["best"] is None and "best" not in set(ev["verdict"])
        assert ev.attrs["conclusion"].startswith(
            "no estimator is separable from the others on these models")
        need = ev.attrs["models_needed"]
        assert need > 8 and f"about {need} models would be needed" in ev.attrs["conclusion"]
    # two columns that are the truth itself: tied, never a winner, no number of models helps
    tied = _zoo().assign(transrate=lambda t: t["accuracy"] * 2, logme=lambda t: t["accuracy"])
    ev = evaluate_estimators(tied, "accuracy", columns=["transrate", "logme"], n_boot=200)
    assert ev.attrs["best"] is None and ev.attrs["models_needed"] is None
    assert "rank these models the same" in ev.attrs["conclusion"]
    # a clear winner: the truth against noise
    clear = _zoo(n=8).assign(transrate=lambda t: t["accuracy"],
                             logme=np.random.default_rng(0).normal(size=8))
    ev = evaluate_estimators(clear, "accuracy", columns=["transrate", "logme"], n_boot=300)
    assert ev.attrs["best"] == "transrate" and ev.loc["transrate", "verdict"] == "best"
    assert ev.attrs["conclusion"].startswith("transrate ranks these models best: its paired "
                                             "interval against the runner-up logme excludes 0")


def test_three_models_or_an_inseparable_truth_is_one_sentence():
    three = evaluate_estimators(_zoo().iloc[:3], "accuracy", n_boot=100)
    assert three.attrs["best"] is None and "best" not in set(three["verdict"])
    assert three.attrs["conclusion"] == (
        "3 models are too few to evaluate the estimators: a correlation needs at least 5 "
        "(with 4 the smallest two-sided permutation p is 0.083)")
    ceiling = _zoo().assign(accuracy=[0.99, 1.0, 0.98, 1.0, 0.99, 1.0, 0.97, 0.99],
                            n_test=250)
    ev = evaluate_estimators(ceiling, "accuracy", n_boot=100)
    assert (ev["verdict"] == "").all() and ev.attrs["best"] is None
    assert ev.attrs["conclusion"].startswith("the ground truth cannot separate these models "
                                             "(a model reaches 1.000 >= 0.97")
