"""experiments.adversarial (Deng et al. 2021) and the AdversarialExplorer widget, on tiny settings."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from transfer_nb import adversarial, training, transfer
from transfer_nb.data.base import ImageDataset
from transfer_nb.experiments import adversarial as ex
from transfer_nb.experiments.base import Results, TargetSpec
from transfer_nb.features import extract_features
from transfer_nb.models import train_source


def _tiny_cfg(**kw):
    base = dict(n_labeled=40, n_unlabeled=40, n_source_test=24, width=4, source_epochs=1,
                ft_epochs=1, seeds=(0,), eps=(0.0, 0.2), attack_steps=1, moderate_eps=0.2,
                eval_steps=1, semi_eps=0.2, threshold=0.2, n_boot=50,
                targets=(TargetSpec("textures", "textures", 3, 10_000),))
    base.update(kw)
    return ex.config("fast", **base)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    """One seed of every source kind (module-scoped cache: trained once for the widget tests)."""
    import os
    old = os.environ.get("TRANSFER_NB_CACHE")
    os.environ["TRANSFER_NB_CACHE"] = str(tmp_path_factory.mktemp("adv-cache"))
    try:
        cfg = _tiny_cfg()
        data = ex.source_data(cfg)
        yield cfg, data, ex.run(cfg, progress=False).table
    finally:
        if old is None:
            os.environ.pop("TRANSFER_NB_CACHE", None)
        else:
            os.environ["TRANSFER_NB_CACHE"] = old


# ------------------------------------------------------------------ training
def test_eps_zero_training_equals_standard_training():
    g = torch.Generator().manual_seed(0)
    data = ImageDataset(torch.rand(16, 3, 8, 8, generator=g).numpy(), [0, 1] * 8, ["a", "b"],
                        name="tiny-eps0")
    kw = dict(epochs=2, batch_size=4, width=4, depth=1, seed=3, cache=False, progress=False,
              device="cpu")
    plain = train_source("small_cnn", data, **kw)
    zero = train_source("small_cnn", data, perturb=adversarial.pgd_perturbation(0.0), **kw)
    a, b = plain.state_dict(), zero.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and an adversary that does something changes the weights
    adv = train_source("small_cnn", data, perturb=adversarial.pgd_perturbation(0.5, steps=2),
                       adversarial_eps=0.5, **kw)
    assert not torch.equal(adv.state_dict()["fc.weight"], a["fc.weight"])


def test_build_source_checks_kind_and_eps():
    cfg = _tiny_cfg()
    with pytest.raises(ValueError, match="kind must be one of"):
        ex.build_source(cfg, "robust", 0.2, 0, {})
    with pytest.raises(ValueError, match="needs eps > 0"):
        ex.build_source(cfg, "adversarial", 0.0, 0, {})
    with pytest.raises(ValueError, match="needs eps = 0"):
        ex.build_source(cfg, "semi", 0.2, 0, {})


# ------------------------------------------------------------------ one cell
def test_cell_equals_estimators_on_the_same_features(tiny_results):
    cfg, data, df = tiny_results
    row = df[(df.kind == "adversarial") & (df.seed == 0)].iloc[0]
    model = ex.build_source(cfg, "adversarial", 0.2, 0, data)  # cached: the same weights
    tr, te = ex.target_data(cfg, 0)
    z_tr = extract_features(model, tr, layers=["pool"], device="cpu", progress=False)["pool"]
    z_te = extract_features(model, te, layers=["pool"], device="cpu", progress=False)["pool"]
    clean = training.evaluate(model, data["test"])
    expected = ex.score_features(z_tr, tr.targets, clean)
    # run() uses one thread, this recomputation the default: float32 sums differ in order
    assert row.transrate == pytest.approx(expected["transrate"], rel=1e-5)
    assert row.logme == pytest.approx(expected["logme"], rel=1e-5)
    assert row.source_accuracy == row.source_clean == clean
    assert row.linear_probe == transfer.linear_probe(z_tr, tr.targets, z_te, te.targets, seed=0)
    assert row.source_robust == adversarial.robust_accuracy(
        model, data["test"], cfg.eval_eps, norm=cfg.norm, steps=cfg.eval_steps, seed=0)


def test_run_has_every_source_kind_and_pseudo_labels(tiny_results):
    cfg, data, df = tiny_results
    assert list(df.kind) == ["standard", "adversarial", "semi", "semi+adversarial"]
    assert list(df.eps) == [0.0, 0.2, 0.0, 0.2]
    assert (df.n_pseudo.iloc[:2] == 0).all()
    # threshold 0.2 with 8 classes: pseudo-labels for the images the teacher is 20 % sure of
    assert 0 < df.n_pseudo.iloc[2] == df.n_pseudo.iloc[3] <= cfg.n_unlabeled


def test_source_data_parts_are_disjoint():
    cfg = _tiny_cfg()
    d = ex.source_data(cfg)
    lab, unl = set(d["labeled"].source_indices), set(d["unlabeled"].source_indices)
    assert len(lab) == cfg.n_labeled and len(unl) == cfg.n_unlabeled and not lab & unl
    with pytest.raises(ValueError, match="train split"):
        ex.source_data(_tiny_cfg(n_unlabeled=10**6))


# ------------------------------------------------------------------ analysis
def _synthetic_df():
    rows = []
    for seed, (s, a, semi, both) in enumerate([(0.5, 0.6, 0.55, 0.7), (0.6, 0.7, 0.65, 0.8),
                                               (0.7, 0.8, 0.75, 0.9)]):
        for kind, eps, acc, clean in (("standard", 0.0, s, 0.99), ("adversarial", 0.2, a, 0.9),
                                      ("semi", 0.0, semi, 0.99),
                                      ("semi+adversarial", 0.2, both, 0.9)):
            rows.append(dict(kind=kind, eps=eps, seed=seed, eval_eps=0.3, n_pseudo=0,
                             source_clean=clean, source_robust=0.5, linear_probe=acc,
                             fine_tune=acc, transrate=acc, logme=acc, source_accuracy=clean))
    return pd.DataFrame(rows)


def test_summary_t_interval_is_exact():
    s = ex.summary(_synthetic_df()).set_index("kind")
    assert s.loc["standard", "linear_probe"] == pytest.approx(0.6)
    sem = 0.1 / np.sqrt(3)
    assert s.loc["standard", "linear_probe_sem"] == pytest.approx(sem)
    assert s.loc["standard", "linear_probe_high"] == pytest.approx(0.6 + 4.302652729911275 * sem)


def _results(df, **cfg):
    df = df.assign(n_test=250, num_classes=5)
    return Results("adversarial", df, {}, {"mode": "fast"}, ex.config(
        "fast", eps=(0.0, 0.2), moderate_eps=0.2, semi_eps=0.2, **cfg))


def _with_premise(df, clean_drop=0.1, robust_gain=0.2):
    """The synthetic runs with adversarial training costing clean accuracy and buying
    robustness by the same amount on every seed (plus a little seed noise)."""
    df = df.copy()
    adv = df.kind.str.endswith("adversarial")
    df.loc[adv, "source_clean"] = 0.99 - clean_drop + 0.01 * df.loc[adv, "seed"]
    df.loc[adv, "source_robust"] = 0.5 + robust_gain + 0.01 * df.loc[adv, "seed"]
    return df


def test_premise_gate_excludes_every_transfer_verdict_when_it_fails():
    res = _results(_synthetic_df())          # clean accuracy 0.99 -> 0.9, robustness flat
    chk = ex.report.checks(res).iloc[0]
    assert not chk["premise"] and chk["robust_gain"] == pytest.approx(0.0)
    v = ex.report.verdicts(res)
    assert v[v.primary].iloc[0]["verdict"] == "excluded"
    assert "premise" in v[v.primary].iloc[0]["gates"]


def test_verdicts_are_paired_by_seed_and_can_go_either_way():
    res = _results(_with_premise(_synthetic_df()))
    chk = ex.report.checks(res).iloc[0]
    assert chk["premise"] and chk["clean_drop"] == pytest.approx(-0.09)
    v = ex.report.verdicts(res).set_index("claim")
    primary = v[v.primary].iloc[0]
    # every seed gains exactly 0.1: the t-interval of the differences has zero width
    assert primary["estimate"] == pytest.approx(0.1) and primary["low"] == pytest.approx(0.1)
    assert primary["verdict"] == "reproduced" and primary["n_seeds"] == 3
    worse = _with_premise(_synthetic_df())
    worse.loc[worse.kind == "adversarial", "linear_probe"] -= 0.2     # now 0.1 below
    v = ex.report.verdicts(_results(worse))
    assert v[v.primary].iloc[0]["verdict"] == "not reproduced"
    assert v[v.primary].iloc[0]["estimate"] == pytest.approx(-0.1)


def test_estimator_claims_are_within_seed():
    v = ex.report.verdicts(_results(_with_premise(_synthetic_df()))).set_index("claim")
    row = v.loc["TransRate sees the better representation (within seed)"]
    assert "within seed" in row["rule"] and row["n_items"] == 12


def test_summary_prints_the_premise_and_the_primary_verdict():
    text = ex.report.summary(_results(_with_premise(_synthetic_df())))
    assert "Premise" in text and "holds" in text
    assert "+0.100 [+0.100, +0.100] over 3 seeds: **reproduced**" in text


def test_imagenet_equivalent():
    assert ex.imagenet_equivalent(0.1, 16) == pytest.approx(1.4)  # sqrt(3*224^2 / 3*16^2) = 14
    assert ex.imagenet_equivalent(1.0, 224) == pytest.approx(1.0)


def test_config_fixes_the_moderate_eps_in_advance():
    with pytest.raises(ValueError, match="moderate_eps 0.3 must be one of eps"):
        ex.config("fast", moderate_eps=0.3)


# ------------------------------------------------------------------ widget
def test_widget_builds_and_slider_updates_the_traits(tiny_results):
    from transfer_nb_widgets import AdversarialExplorer
    cfg, data, df = tiny_results
    w = AdversarialExplorer(df, cfg, n_images=3, data=data)
    assert w.errors.message is None
    assert w.eps == 0.0 and w.selected["kind"] == "standard"
    assert w.curve["eps"] == [0.0, 0.2]
    assert len(w.examples["l2"]) == 3
    assert max(w.examples["l2"]) <= cfg.eval_eps + 1e-5
    w.slider.value = 0.2
    assert w.eps == 0.2
    assert w.selected["kind"] == "adversarial" and w.selected["eps"] == 0.2
    assert w.selected["linear_probe"] == df.linear_probe.iloc[1]
    w.eps = 0.0  # the trait drives the slider too
    assert w.slider.value == 0.0
