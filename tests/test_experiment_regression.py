"""experiments.regression (Linear MSE / Label MSE notebook) and the LambdaExplorer widget."""
import dataclasses
import os

import numpy as np
import pytest
import torch
from torch import nn

from transfer_nb.estimators import label_mse, linear_mse
from transfer_nb.estimators.logme import logme_evidence
from transfer_nb.experiments import regression as R


def _tiny_config():
    sources = (R.SourceSpec("random-init", "digits", 0, 60),
               R.SourceSpec("digits-1ep", "digits", 1, 60),
               R.SourceSpec("shapes-1ep", "shapes", 1, 60))
    return R.RegressionConfig("test", sources, targets=("rotated_digits",), width=8,
                              image_size=8, n_train=12, n_test=20, epochs=1, seeds=(0, 1),
                              timing_repeats=1, n_boot=50, lambdas=(0.0, 1.0))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    old = os.environ.get("TRANSFER_NB_CACHE")
    os.environ["TRANSFER_NB_CACHE"] = str(tmp_path_factory.mktemp("regression_cache"))
    try:
        yield R.run(_tiny_config(), progress=False)
    finally:
        if old is None:
            os.environ.pop("TRANSFER_NB_CACHE", None)
        else:
            os.environ["TRANSFER_NB_CACHE"] = old


# ------------------------------------------------------------------ fine-tuning
def _linear_toy(seed=0, n=64):
    """Targets that are an exact linear map (fixed W) of the inputs."""
    W = np.random.default_rng(0).normal(size=(4, 2))
    X = np.random.default_rng(seed + 1).normal(size=(n, 4)).astype(np.float32)
    return X, (X @ W).astype(np.float32)


def test_fine_tune_regression_fits_a_linear_toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))   # the head gets replaced
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, Y = _linear_toy(0)
    Xt, Yt = _linear_toy(1, n=50)
    res = R.fine_tune_regression(model, (X, Y), (Xt, Yt), epochs=150, lr=0.01, batch_size=16,
                                 head_lr_mult=1.0, weight_decay=0.0, seed=0, device="cpu")
    var = float(Yt.var(axis=0).mean())
    # a linear map is exactly representable: the error falls to a tiny fraction of the variance
    assert res["mse"] < 1e-3 * var
    assert res["r2"] > 0.999
    assert res["model"][1].out_features == 2
    pred = res["model"](torch.as_tensor(Xt)).detach().numpy()
    assert res["mse"] == pytest.approx(float(((pred - Yt) ** 2).mean()), rel=1e-5)
    for k, v in model.state_dict().items():            # the caller's model is untouched
        assert torch.equal(v, before[k])


def test_fine_tune_regression_without_steps_is_the_fresh_head():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    X, Y = _linear_toy(0)
    res = R.fine_tune_regression(model, (X, Y), (X, Y), epochs=0, seed=3, device="cpu")
    head = nn.Linear(8, 2)
    with torch.no_grad():
        bound = 1 / np.sqrt(8)
        head.weight.copy_(torch.empty(2, 8).uniform_(-bound, bound,
                                                     generator=torch.Generator().manual_seed(3)))
        head.bias.zero_()
        pred = head(model[0](torch.as_tensor(X))).numpy()
    assert res["mse"] == pytest.approx(float(((pred - Y) ** 2).mean()), rel=1e-5)


def test_fine_tune_regression_rejects_1d_targets():
    X, Y = _linear_toy(0)
    with pytest.raises(ValueError, match="targets must be"):
        R.fine_tune_regression(nn.Linear(4, 2), (X, Y[:, 0]), (X, Y), epochs=1)


def test_scale_targets():
    Y = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    S = R.scale_targets(Y, Y.min(0), Y.max(0))
    np.testing.assert_allclose(S, [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])


# ------------------------------------------------------------------- experiment
def test_cell_scores_equal_estimators_on_the_same_features(results):
    t = results.table.set_index(["target", "model"])
    assert len(t) == 3
    for key, c in results.cells.items():
        assert c.Z.shape == (12, 32) and c.Y.shape == (12, 3) and c.probs.shape[0] == 12
        np.testing.assert_allclose(c.Y.min(0), 0.0)
        np.testing.assert_allclose(c.Y.max(0), 1.0)
        row = t.loc[key]
        assert row["linear_mse"] == linear_mse(c.Z, c.Y, alpha=1.0)
        assert row["label_mse"] == label_mse(c.probs, c.Y, alpha=1.0)
        assert row["logme"] == float(np.mean(logme_evidence(c.Z, c.Y)))
        assert row["neg_mse"] == -float(np.mean(c.mse))
        assert c.mse.shape == (2,)


def test_cell_features_come_from_the_source_model(results):
    from transfer_nb.features import extract_features
    cfg = results.cfg
    spec = cfg.sources[1]
    model = R._build_source(spec, cfg, progress=False)   # cached: the same weights
    assert model.transfer_nb_source_accuracy == results.cells[("rotated_digits", spec.name)].source_accuracy
    train = R._load("rotated_digits", "train", cfg.n_train, cfg)
    Z = extract_features(model, train, layers=["penultimate"], progress=False)["penultimate"]
    np.testing.assert_allclose(results.cells[("rotated_digits", spec.name)].Z, Z, rtol=1e-5,
                               atol=1e-6)


def test_shuffled_control_scores_are_estimators_on_permuted_targets(results):
    perm = results.permutations["rotated_digits"]
    assert sorted(perm.tolist()) == list(range(12)) and (perm != np.arange(12)).any()
    s = results.shuffled.set_index(["target", "model"])
    t = results.table.set_index(["target", "model"])
    for key, c in results.cells.items():
        assert s.loc[key, "linear_mse"] == linear_mse(c.Z, c.Y[perm], alpha=1.0)
        assert s.loc[key, "label_mse"] == label_mse(c.probs, c.Y[perm], alpha=1.0)
        assert s.loc[key, "logme"] == float(np.mean(logme_evidence(c.Z, c.Y[perm])))
        assert s.loc[key, "neg_mse"] == t.loc[key, "neg_mse"]     # same ground truth


def test_second_run_reads_the_cache(results):
    again = R.run(results.cfg, progress=False)
    for key, c in results.cells.items():
        np.testing.assert_array_equal(again.cells[key].Z, c.Z)
        np.testing.assert_array_equal(again.cells[key].mse, c.mse)


def test_lambda_zero_interpolates_when_n_below_d(results):
    s = R.lambda_scores(results, "rotated_digits", 0.0)
    # 12 training images, 32-d features: ridge without penalty fits them exactly
    np.testing.assert_allclose(s["linear_mse"], 0.0, atol=1e-9)
    one = R.lambda_scores(results, "rotated_digits", 1.0)
    t = results.table.set_index("model")
    np.testing.assert_array_equal(one["linear_mse"], t.loc[one.index, "linear_mse"])
    with pytest.raises(ValueError, match="target must be one of"):
        R.lambda_scores(results, "nope", 1.0)


def test_ground_truth_check_values():
    import pandas as pd
    table = pd.DataFrame({"target": ["a"] * 3 + ["b"] * 3,
                          "neg_mse": [-0.10, -0.12, -0.16, -0.10, -0.101, -0.102],
                          "se": [0.01, 0.01, 0.02, 0.01, 0.01, 0.01],
                          "r2": [0.5, 0.4, 0.3, 0.5, 0.5, 0.5]})
    res = R.RegressionResults(_tiny_config(), {}, table, table)
    check = R.ground_truth_check(res)
    assert check.loc["a", "spread"] == pytest.approx(0.06)
    assert check.loc["a", "spread_in_se"] == pytest.approx(6.0)
    assert bool(check.loc["a", "discriminates"]) is True
    assert bool(check.loc["b", "discriminates"]) is False
    assert check.loc["b", "reason"].startswith("spread") and "< 3 SE" in check.loc["b", "reason"]


def test_verdict_rule():
    assert R._verdict_better(0.5, 0.9, 0.7, 0.3, 0.1, 0.5) == "reproduced"
    assert R._verdict_better(0.0, 0.4, 0.2, 0.6, 0.45, 0.8) == "not reproduced"
    assert R._verdict_better(0.2, 0.9, 0.6, 0.5, 0.3, 0.7) == "inconclusive"
    assert R._verdict_better(np.nan, 0.9, 0.6, 0.5, 0.3, 0.7) == "inconclusive"


def test_control_rule():
    assert R._verdict_control(0.1, -0.5, 0.6, 0.8) == "reproduced"
    assert R._verdict_control(-0.2, -0.7, 0.4, 0.3) == "reproduced"
    assert R._verdict_control(0.6, -0.6, 0.9, 0.7) == "inconclusive"
    assert R._verdict_control(0.7, 0.2, 0.9, 0.8) == "not reproduced"


def test_paper_table_and_report(results):
    corr = R.correlations(results, n_boot=50)
    assert set(corr["score"]) == {*R.ESTIMATORS, *R.BASELINES}
    table = R.paper_vs_measured(results, corr, R.shuffled_correlations(results, n_boot=50))
    speed = table[table["claim"] == "linear_mse at least 27% faster than LogME"].iloc[0]
    saving = 1 - R.timing_table(results).loc["linear_mse", "relative to logme"]
    assert speed["verdict"] == ("reproduced" if saving >= 0.27 else "not reproduced")
    text = R.report(results, corr)
    assert "rotated_digits" in text and "Verdicts:" in text


def test_config_presets():
    fast, full = R.config(fast=True), R.config(fast=False)
    for cfg in (fast, full):
        assert len(cfg.sources) >= 8 and len(cfg.seeds) >= 3
        assert cfg.targets == ("rotated_digits", "shape_keypoints")
        assert {s.epochs for s in cfg.sources} >= {0}
    assert R.describe(fast).splitlines()[0] == "mode: fast"
    with pytest.raises(ValueError, match="RegressionConfig"):
        R.run("fast")


# ------------------------------------------------------------------------ widget
def test_lambda_explorer_slider_changes_the_result(results):
    from transfer_nb_widgets import LambdaExplorer
    w = LambdaExplorer(results, n_boot=20)
    assert w.lam == 1.0 and w.target == "rotated_digits"
    at_one = dict(w.scores["linear_mse"])
    t = results.table.set_index("model")
    for model, v in at_one.items():
        assert v == t.loc[model, "linear_mse"]
    seen = []
    w.observe(lambda ch: seen.append(ch["new"]), names="lam")
    w.slider.value = 0.0
    assert w.lam == 0.0 and seen == [0.0]
    np.testing.assert_allclose(list(w.scores["linear_mse"].values()), 0.0, atol=1e-9)
    assert w.scores["linear_mse"] != at_one
    assert w.error.message is None
    with pytest.raises(ValueError, match="lam must be one of"):
        w.set_lambda(0.5)
