"""experiments.regression (Linear MSE / Label MSE, notebook 04) and the LambdaExplorer."""
import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import log_softmax, softmax
from torch import nn

from transfer_nb import stats
from transfer_nb.experiments import base
from transfer_nb.estimators import label_mse, linear_mse
from transfer_nb.estimators.logme import logme_evidence
from transfer_nb.experiments import base
from transfer_nb.experiments import regression as R


def _tiny_config():
    sources = (base.SourceSpec("random-init", "digits", 0, 60),
               base.SourceSpec("digits-1ep", "digits", 1, 60),
               base.SourceSpec("shapes-1ep", "shapes", 1, 60))
    return R.config("fast", sources=sources, targets=["rotated_digits"], width=8, depth=2,
                    image_size=8, n_train=12, n_test=20, epochs=2, seeds=(0, 1),
                    lr_grid=(0.003,), recipe_models=1, timing_repeats=1, n_boot=50,
                    lambdas=(0.0, 1.0))


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
                                 head_lr_mult=1.0, weight_decay=0.0, seed=0,
                                 head_init="random", device="cpu")
    var = float(Yt.var(axis=0).mean())
    assert res["mse"] < 1e-3 * var and res["r2"] > 0.999
    assert res["model"][1].out_features == 2
    for k, v in model.state_dict().items():            # the caller's model is untouched
        assert torch.equal(v, before[k])


def test_lp_ft_starts_from_the_ridge_probe():
    """With no training step, LP-FT predicts what the ridge probe on the frozen head
    inputs predicts -- here exactly the linear map, since it is representable."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    X, Y = _linear_toy(0)
    Xt, Yt = _linear_toy(1, n=50)
    res = R.fine_tune_regression(model, (X, Y), (Xt, Yt), epochs=0, seed=3, device="cpu")
    Ztr = model[0](torch.as_tensor(X)).detach().double().numpy()
    Zte = model[0](torch.as_tensor(Xt)).detach().double().numpy()
    probe = R.probe_regression(Ztr, Y.astype(float), Zte, Yt.astype(float))
    assert res["mse"] == pytest.approx(probe["mse"], rel=1e-3, abs=1e-7)
    assert probe["mse"] < 1e-3 * float(Yt.var(axis=0).mean())
    rand = R.fine_tune_regression(model, (X, Y), (Xt, Yt), epochs=0, seed=3,
                                  head_init="random", device="cpu")
    assert rand["mse"] > 100 * res["mse"]          # a random head is far from the probe


def test_fine_tune_regression_rejects_bad_input():
    X, Y = _linear_toy(0)
    with pytest.raises(ValueError, match="targets must be"):
        R.fine_tune_regression(nn.Linear(4, 2), (X, Y[:, 0]), (X, Y), epochs=1)
    with pytest.raises(ValueError, match="head_init"):
        R.fine_tune_regression(nn.Linear(4, 2), (X, Y), (X, Y), epochs=1, head_init="lp")


# --------------------------------------------------- scores that measure what they claim
def _synthetic_zoo(n=60, d=32, models=10, seed=0):
    """Models whose features carry a planted amount of target information (``info``)
    at a scale (``variance``) drawn independently of it."""
    rng = np.random.default_rng(seed)
    Y = rng.uniform(size=(n, 3))
    info = np.linspace(0.0, 1.0, models)
    variance = 10.0 ** rng.permutation(np.linspace(-2, 2, models))
    zoo = []
    for a, v in zip(info, variance):
        signal = (Y - 0.5) @ rng.normal(size=(3, d))
        noise = rng.normal(size=(n, d))
        Z = np.sqrt(v) * (a * signal / signal.std() + (1 - a) * noise)
        zoo.append(Z)
    return Y, zoo, info, variance


def test_standardised_linear_mse_follows_information_not_variance():
    Y, zoo, info, variance = _synthetic_zoo()
    cv = [linear_mse(Z, Y, alpha="cv", scale_features=True) for Z in zoo]
    raw = [linear_mse(Z, Y, alpha=1.0) for Z in zoo]
    r_info = stats.rank_correlations({"cv": cv, "raw": raw}, info, n_boot=10)["kendall"]
    r_var = stats.rank_correlations({"cv": cv, "raw": raw}, np.log(variance),
                                    n_boot=10)["kendall"]
    assert r_info["cv"] > 0.8 and abs(r_var["cv"]) < 0.5
    # the raw score at lambda = 1 is what the scaling fixes: it tracks the variance
    assert r_var["raw"] > 0.5 and r_info["raw"] < r_info["cv"] - 0.3
    # and the standardised score is invariant to rescaling a model's features
    assert linear_mse(zoo[3] * 1e3, Y, alpha=1.0, scale_features=True) == pytest.approx(
        linear_mse(zoo[3], Y, alpha=1.0, scale_features=True))


def test_label_mse_on_log_probabilities_varies_where_softmax_saturates():
    rng = np.random.default_rng(1)
    Y = rng.uniform(size=(40, 2))
    scores_p, scores_l = [], []
    for k in range(6):   # confident models (logits ~30 apart) encoding Y[:, 0] more or less
        a = k / 5
        logits = 30 * rng.normal(size=(40, 10))
        logits[:, 0] = 30 * (a * 4 * (Y[:, 0] - 0.5) + (1 - a) * rng.normal(size=40))
        scores_p.append(label_mse(softmax(logits, axis=1), Y, alpha=1.0))
        scores_l.append(label_mse(log_softmax(logits, axis=1), Y, alpha="cv", kind="raw",
                                  scale_features=True))
    assert np.ptp(scores_p) < 0.1 * np.ptp(scores_l)
    assert np.corrcoef(scores_l, np.arange(6))[0, 1] > 0.8


# ------------------------------------------------------------------- experiment
def test_table_scores_equal_the_estimators_on_the_same_inputs(results):
    t = results.table
    assert len(t) == 3 * 2 and set(t["seed"]) == {0, 1}
    cfg = results.cfg
    assert cfg.targets[0].name == "rotated_digits" and cfg.targets[0].n_train == 12
    (Xtr, Ytr), _ = R.load_regression_target(cfg.targets[0], cfg)
    np.testing.assert_allclose(Ytr.min(0), 0.0)
    np.testing.assert_allclose(Ytr.max(0), 1.0)
    spec = cfg.sources[1]
    from transfer_nb.experiments.transrate.runner import build_source
    from transfer_nb.features import extract_features
    model, _ = build_source(spec, cfg)               # cached: the same weights
    f = extract_features(model, Xtr, layers=["penultimate", "output"], progress=False)
    want = R.score_features(f["penultimate"], f["output"], Ytr, cfg.alpha, 1, cfg.cv_grid)
    row = t[t["model"] == spec.name].iloc[0]
    for e in R.ESTIMATORS:
        assert row[e] == pytest.approx(want[e], rel=1e-6), e
    assert row["linear_mse"] == pytest.approx(linear_mse(
        f["penultimate"], Ytr, alpha=row["lambda_linear_mse"], scale_features=True), rel=1e-6)
    assert row["logme"] == pytest.approx(float(np.mean(logme_evidence(f["penultimate"], Ytr))),
                                         rel=1e-6)
    # the shuffled control: the same estimators on the permuted training targets
    perm = np.random.default_rng(cfg.data_seed).permutation(12)
    shuf = R.score_features(f["penultimate"], f["output"], Ytr[perm], cfg.alpha, 1, cfg.cv_grid)
    for e in R.ESTIMATORS:
        assert row[f"{e}_shuffled"] == pytest.approx(shuf[e], rel=1e-6), e
    assert row["neg_mse"] == -row["mse"] and row["mse"] > 0


def test_second_run_reads_the_cache(results):
    again = R.run(results.cfg, progress=False)
    for col in ("mse", "r2", "linear_mse", "probe_mse"):
        np.testing.assert_array_equal(again.table[col], results.table[col])


def test_worker_processes_give_the_same_cells(results):
    """jobs=2 (loky processes, one torch thread each) recomputes every cell and gets the
    same numbers as the run here; only the timings may differ."""
    par = R.run(dataclasses.replace(results.cfg, jobs=2), progress=False, use_cache=False)
    assert par.meta["jobs"] == 2 and results.meta["jobs"] == 1
    for col in ("mse", "r2", "se", "probe_mse", "lr", "linear_mse", "label_mse", "logme",
                "linear_mse_shuffled", "source_accuracy"):
        np.testing.assert_array_equal(par.table[col], results.table[col], err_msg=col)
    np.testing.assert_array_equal(par.tables["curves"]["train_loss"],
                                  results.tables["curves"]["train_loss"])
    np.testing.assert_array_equal(par.tables["recipe"]["val_mse"],
                                  results.tables["recipe"]["val_mse"])


def test_lambda_scores_and_zero_lambda_interpolates(results):
    s = R.lambda_scores(results, "rotated_digits", 0.0)
    # 12 training images, 32-d features: ridge without penalty fits them exactly
    np.testing.assert_allclose(s["linear_mse"], 0.0, atol=1e-9)
    assert (R.lambda_scores(results, "rotated_digits", 1.0)["linear_mse"] < -1e-3).all()
    with pytest.raises(ValueError, match="target must be one of"):
        R.lambda_scores(results, "nope", 1.0)
    with pytest.raises(ValueError, match="lambda must be one of"):
        R.lambda_scores(results, "rotated_digits", 0.5)


def test_report_faces_on_a_tiny_run(results):
    chk = R.report.checks(results)
    assert list(chk["target"]) == ["rotated_digits"]
    v = R.report.verdicts(results, n_boot=50)
    assert int(v["primary"].sum()) == 1 and v[v["primary"]].iloc[0]["claim"].startswith(
        "linear_mse")
    assert len(v[v["claim"].str.startswith("control:")]) == len(R.ESTIMATORS)
    assert isinstance(R.report.summary(results), str)


# --------------------------------------------------------------- report on known tables
def _fake(control_keeps: bool, one_model_spread: bool = False, seed=0):
    """2 targets x 10 models x 2 seeds; every estimator equals the truth plus noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for target in ("a", "b"):
        truth = np.linspace(-0.05, -0.02, 10)
        if one_model_spread:
            truth = np.r_[-0.05, np.full(9, -0.02)] + rng.normal(0, 1e-4, 10)
        score = truth + rng.normal(0, 0.002, 10)
        shuffled = score if control_keeps else rng.normal(size=10)
        for m in range(10):
            for s in (0, 1):
                row = {"target": target, "model": f"m{m}", "seed": s,
                       "neg_mse": truth[m] + rng.normal(0, 1e-4), "se": 5e-4, "r2": 0.6,
                       "probe_r2": 0.5, "n_test": 400.0, "source_accuracy": 0.5,
                       "source_n": 100.0, "time_finetune": 1.0}
                for e in R.ESTIMATORS:
                    row[e], row[f"{e}_shuffled"] = score[m], shuffled[m]
                    row[f"time_{e}"] = 0.001 if e != "logme" else 0.01
                rows.append(row)
    return base.Results("regression", pd.DataFrame(rows), {"curves": pd.DataFrame()},
                        {"mode": "test"}, R.config("fast", n_boot=200))


def test_a_control_that_keeps_the_effect_blocks_reproduced():
    kept = R.report.verdicts(_fake(control_keeps=True)).set_index("claim")
    lost = R.report.verdicts(_fake(control_keeps=False)).set_index("claim")
    claim = "linear_mse correlates with -test MSE after fine-tuning"
    assert lost.loc[claim, "low"] > 0.5 and kept.loc[claim, "low"] > 0.5
    assert lost.loc[claim, "verdict"] == "reproduced"
    assert kept.loc[claim, "verdict"] == "inconclusive"
    assert "control keeps the effect" in kept.loc[claim, "gates"]
    ctl = "control: linear_mse loses its correlation on shuffled targets"
    assert kept.loc[ctl, "estimate"] == pytest.approx(0.0)
    assert lost.loc[ctl, "verdict"] == "reproduced"
    speed = lost.loc["Linear MSE (lambda = 1) is >= 27% faster than LogME"]
    assert speed["estimate"] == pytest.approx(np.log(0.1)) and speed["verdict"] == "reproduced"


def test_discrimination_must_not_rely_on_one_model():
    chk = R.report.checks(_fake(False, one_model_spread=True)).set_index("target")
    assert chk.loc["a", "spread_in_se"] > 3 and chk.loc["a", "loo_min_spread_in_se"] < 3
    assert not chk.loc["a", "passes"] and "relies on one model" in chk.loc["a", "reason"]
    ok = R.report.checks(_fake(False)).set_index("target")
    assert ok["passes"].all() and (ok["loo_min_spread_in_se"] > 3).all()


# ----------------------------------------------------------------------- config
def test_config_presets_have_the_power_the_issue_asks_for():
    fast, full = R.config("fast"), R.config("full")
    # sized by the power analysis of the second stored run (presets.py): 15 targets (12
    # passing expected), 23 models declared in, 3 seeds, 2 worker processes
    assert len(full.targets) == 15 and full.seeds == (0, 1, 2) and full.jobs == 2
    assert {t.dataset for t in full.targets} == {"rotated_digits", "shape_keypoints"}
    assert len({t.options for t in full.targets if t.dataset == "rotated_digits"}) == 8
    assert len({dict(full.columns)[t.name] for t in full.targets
                if t.dataset == "shape_keypoints"}) == 7
    assert fast.jobs == 1 and len(fast.seeds) == 2     # CI: one process, one torch thread
    real = [s for s in full.sources if s.name not in dict(full.degenerate)]
    assert len(real) == 23 and dict(full.degenerate)["random-init"] == "out"
    assert {s.epochs for s in real} == {full.source_epochs}          # one epoch budget
    assert dict(full.columns)["heart-lobes"] == (4, 5, 6, 7)
    assert R.describe(fast).splitlines()[0] == "mode: fast"
    assert R.config("fast", seeds=(0,)).seeds == (0,)
    with pytest.raises(ValueError, match="regression.config"):
        R.run("fast")


def test_config_targets_take_regression_sets_and_refuse_folders(tmp_path):
    cfg = R.config("fast", targets=["shape_keypoints"])
    assert cfg.targets[0].dataset == "shape_keypoints" and cfg.targets[0].n_train == 40
    assert cfg.columns == ()
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="needs regression targets"):
        R.config("fast", targets=[tmp_path])
    with pytest.raises(ValueError, match="unknown target"):
        R.config("fast", targets=["digits"])


# ------------------------------------------------------------------------ widget
def test_lambda_explorer_slider_changes_the_result(results):
    from transfer_nb_widgets import LambdaExplorer
    w = LambdaExplorer(R.report.lambda_view(results), n_boot=20)
    assert w.lam == 1.0 and w.target == "rotated_digits"
    at_one = dict(w.scores["linear_mse"])
    s = R.lambda_scores(results, "rotated_digits", 1.0)
    for model, v in at_one.items():
        assert v == s.loc[model, "linear_mse"]
    seen = []
    w.observe(lambda ch: seen.append(ch["new"]), names="lam")
    w.slider.value = 0.0
    assert w.lam == 0.0 and seen == [0.0]
    np.testing.assert_allclose(list(w.scores["linear_mse"].values()), 0.0, atol=1e-9)
    assert w.error.message is None


def test_lambda_explorer_leaves_the_declared_out_model_out_until_asked(results):
    from transfer_nb import stats
    from transfer_nb_widgets import LambdaExplorer
    view = R.report.lambda_view(results)
    w = LambdaExplorer(view, n_boot=20)
    out = base.declared_out(view)
    assert out and not w.include_declared_out
    s = R.lambda_scores(results, w.target, w.lam)
    kept = s[~s.index.isin(out)]
    # the tiny zoo keeps 2 models: a correlation over 2 items is undefined, and says so
    assert len(kept) == len(s) - 1 == 2 and "over 2 models" in w.summary.value
    assert np.isnan(w.pearson["linear_mse"])
    w.out_box.value = True
    assert "over 3 models" in w.summary.value
    everyone = stats.rank_correlations({"linear_mse": s["linear_mse"].to_numpy()},
                                       s["neg_mse"].to_numpy(), n_boot=20)
    assert w.include_declared_out
    assert w.pearson["linear_mse"] == pytest.approx(everyone.loc["linear_mse", "pearson"])


def test_confirm_preset_keeps_random_init_in_and_out_of_the_recipe():
    """The confirmation declares random-init in (its Linear MSE is not constant by
    construction); the recipe is still chosen by the same two trained models."""
    from transfer_nb.experiments.zoo import recipe_sources
    cfg, full = R.config("confirm"), R.config("full")
    assert dict(cfg.degenerate)["random-init"] == "in"
    assert [s.name for s in recipe_sources(cfg.sources, cfg.degenerate, cfg.recipe_models)] == [
        s.name for s in recipe_sources(full.sources, full.degenerate, full.recipe_models)]
    assert len(cfg.targets) == len(full.targets) and len(cfg.sources) == len(full.sources)
    assert len(cfg.seeds) == len(full.seeds)
    assert all(dict(t.options)["gen_seed"] == 1 for t in cfg.targets)
