"""experiments.adversarial (Deng et al. 2021) and the AdversarialExplorer widget, on tiny settings."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from transfer_nb import adversarial, stats, training
from transfer_nb.training import transfer
from transfer_nb.data.base import ImageDataset
from transfer_nb.experiments import adversarial as ex
from transfer_nb.experiments.base import Results, TargetSpec
from transfer_nb.features import extract_features
from transfer_nb.models import train_source


def _tiny_cfg(**kw):
    base = dict(n_labeled=40, n_unlabeled=40, n_source_test=24, width=4, source_epochs=4,
                seeds=(0,), eps=(0.0, 0.2), attack_steps=2, eval_steps=2, semi_eps=0.2,
                threshold=0.2, n_boot=50, val_per_class=3, ft_grid=((0.003, 2),),
                targets=(TargetSpec("textures", "textures", 3, 30),))
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
        yield cfg, data, ex.run(cfg, progress=False)
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
    # the learning curve: one running training accuracy per epoch
    assert len(plain.transfer_nb_train_curve) == 2
    assert all(0 <= a <= 1 for a in plain.transfer_nb_train_curve)


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
    cfg, data, res = tiny_results
    df = res.table
    row = df[(df.kind == "adversarial") & (df.seed == 0)].iloc[0]
    model = ex.build_source(cfg, "adversarial", 0.2, 0, data)  # cached: the same weights
    fit, val, te = ex.target_data(cfg, 0)
    feats = {k: extract_features(model, d, layers=["pool"], device="cpu", progress=False)["pool"]
             for k, d in (("fit", fit), ("val", val), ("test", te))}
    clean = training.evaluate(model, data["test"])
    expected = ex.score_features(feats["fit"], fit.targets, clean)
    # run() uses one thread, this recomputation the default: float32 sums differ in order
    assert row.transrate == pytest.approx(expected["transrate"], rel=1e-5)
    assert row.logme == pytest.approx(expected["logme"], rel=1e-5)
    assert row.source_accuracy == row.source_clean == clean
    assert row.linear_probe == transfer.linear_probe(feats["fit"], fit.targets, feats["test"],
                                                     te.targets, seed=0)
    assert row.val_probe == transfer.linear_probe(feats["fit"], fit.targets, feats["val"],
                                                  val.targets, seed=0)
    # eps is a fraction of the typical norm: the attack in pixels is eps * norm
    assert row.eps_pixels == pytest.approx(0.2 * data["norm"])
    assert row.source_robust == adversarial.robust_accuracy(
        model, data["test"], cfg.eval_eps * data["norm"], norm=cfg.norm, steps=cfg.eval_steps,
        seed=0)


def test_run_has_every_source_kind_pseudo_labels_and_curves(tiny_results):
    cfg, data, res = tiny_results
    df = res.table
    assert list(df.kind) == ["standard", "adversarial", "semi", "semi+adversarial"]
    assert list(df.eps) == [0.0, 0.2, 0.0, 0.2]
    assert (df.n_pseudo.iloc[:2] == 0).all()
    # threshold 0.2 with 8 classes: pseudo-labels for the images the teacher is 20 % sure of
    assert 0 < df.n_pseudo.iloc[2] == df.n_pseudo.iloc[3] <= cfg.n_unlabeled
    curves = res.tables["curves"]
    src = curves[curves.curve == "source_curve"]
    assert len(src) == 4 * cfg.source_epochs and src.epoch.max() == cfg.source_epochs
    ft = curves[curves.curve == "ft_curve"]
    assert len(ft) == 4 * cfg.ft_grid[0][1]
    assert res.meta["source_norm"] == pytest.approx(data["norm"], abs=1e-4)


def test_run_does_not_depend_on_the_number_of_processes(tiny_results, monkeypatch, tmp_path):
    cfg, _, res = tiny_results
    monkeypatch.setenv("TRANSFER_NB_WORKERS", "2")
    two = ex.run(cfg, progress=False, use_cache=False)
    assert two.meta["workers"] == 2
    cols = ["kind", "eps", "seed", "source_clean", "source_robust", "linear_probe",
            "val_probe", "fine_tune", "n_pseudo"]
    pd.testing.assert_frame_equal(two.table[cols], res.table[cols])


def test_source_data_parts_are_disjoint_and_the_norm_is_measured():
    cfg = _tiny_cfg()
    d = ex.source_data(cfg)
    lab, unl = set(d["labeled"].source_indices), set(d["unlabeled"].source_indices)
    assert len(lab) == cfg.n_labeled and len(unl) == cfg.n_unlabeled and not lab & unl
    x, _ = d["labeled"].tensors()
    assert d["norm"] == pytest.approx(float(x.flatten(1).norm(dim=1).pow(2).mean().sqrt()),
                                      rel=1e-5)
    with pytest.raises(ValueError, match="train split"):
        ex.source_data(_tiny_cfg(n_unlabeled=10**6))


def test_target_fit_and_validation_images_are_disjoint():
    cfg = _tiny_cfg()
    fit, val, test = ex.target_data(cfg, 1)
    assert np.bincount(fit.targets).tolist() == [3] * 5
    assert np.bincount(val.targets).tolist() == [cfg.val_per_class] * 5
    assert not set(fit.source_indices) & set(val.source_indices)
    assert len(test) == 30
    fit2, _, test2 = ex.target_data(cfg, 2)
    assert set(fit.source_indices) != set(fit2.source_indices)     # the seed draws the labels
    assert np.array_equal(test.targets, test2.targets)               # one test set for all


def test_typical_norm_of_known_images():
    x = np.full((4, 3, 4, 4), 0.5)
    assert ex.typical_norm(x) == pytest.approx(np.sqrt(48 * 0.25))
    x[0] = 0.0                                  # RMS of the norms, not their mean
    assert ex.typical_norm(x) == pytest.approx(np.sqrt(3 * 48 * 0.25 / 4))


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
                             val_probe=acc, fine_tune=acc, transrate=acc, logme=acc,
                             source_accuracy=clean, source_plateau=True))
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
        "fast", eps=cfg.pop("eps", (0.0, 0.2)), semi_eps=0.2, **cfg))


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
    # the premise's own rows are not gated by it
    assert v.set_index("claim").loc["clean source accuracy falls from eps 0 to eps 0.2",
                                    "verdict"] == "reproduced"


def test_unconverged_sources_exclude_the_transfer_verdicts():
    df = _with_premise(_synthetic_df())
    res = _results(df)
    assert ex.report.checks(res).iloc[0]["source training"]
    curves = pd.DataFrame([{"kind": k, "eps": e, "seed": s, "curve": "source_curve",
                            "epoch": i + 1, "accuracy": 0.1 * (i + 1)}
                           for k, e, s in df[["kind", "eps", "seed"]].itertuples(index=False)
                           for i in range(8)])       # still climbing at the last epoch
    res.tables["curves"] = curves
    chk = ex.report.checks(res).iloc[0]
    assert not chk["source training"] and chk["source_plateaued"] == 0.0
    v = ex.report.verdicts(res)
    assert v[v.primary].iloc[0]["verdict"] == "excluded"
    assert "source training" in v[v.primary].iloc[0]["gates"]


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


def _two_eps(df):
    """Add an adversarial source at eps 0.1 whose *validation* probe is best but whose
    *test* probe is worst."""
    extra = df[df.kind == "adversarial"].copy()
    extra["eps"] = 0.1
    extra["val_probe"] += 0.5
    extra["linear_probe"] -= 0.3
    return pd.concat([df, extra], ignore_index=True)


def test_the_primary_eps_is_chosen_on_validation_never_on_test():
    df = _two_eps(_with_premise(_synthetic_df()))
    res = _results(df, eps=(0.0, 0.1, 0.2))
    assert ex.report.moderate_choice(res) == {0: 0.1, 1: 0.1, 2: 0.1}
    v = ex.report.verdicts(res)
    p = v[v.primary].iloc[0]
    # eps 0.1 is 0.2 below the standard source on test: chosen on validation, it loses
    assert p["estimate"] == pytest.approx(-0.2) and p["verdict"] == "not reproduced"
    assert "chosen on validation" in p["claim"]
    # fixed in advance instead: eps 0.2, +0.1 on every seed
    fixed = _results(df, eps=(0.0, 0.1, 0.2), moderate_eps=0.2)
    assert ex.report.moderate_choice(fixed) == {0: 0.2, 1: 0.2, 2: 0.2}
    pf = ex.report.verdicts(fixed)
    assert pf[pf.primary].iloc[0]["estimate"] == pytest.approx(0.1)
    # the not-monotone row: the chosen eps against the largest one, paired
    row = ex.report.verdicts(res).set_index("claim").filter(like="not monotone", axis=0).iloc[0]
    assert row["estimate"] == pytest.approx(-0.3) and row["verdict"] == "not reproduced"


def test_a_second_target_gets_its_own_gates_and_its_own_eps_choice():
    glyphs = _with_premise(_synthetic_df()).assign(target="glyphs")
    textures = glyphs.assign(target="textures")
    textures.loc[textures.kind == "adversarial", "linear_probe"] -= 0.2   # robust loses here
    res = _results(pd.concat([glyphs, textures], ignore_index=True),
                   targets=["glyphs", "textures"])
    chk = ex.report.checks(res)
    assert list(chk.target) == ["glyphs", "textures"]
    v = ex.report.verdicts(res).set_index("claim")
    assert v[v.primary].iloc[0]["estimate"] == pytest.approx(0.1)      # the first target
    second = v.loc["the eps chosen on validation transfers better than eps 0 on textures "
                   "(linear probe)"]
    assert second["estimate"] == pytest.approx(-0.1) and second["verdict"] == "not reproduced"
    assert ex.report.source_summary(res, "textures").set_index("kind").loc[
        "adversarial", "linear_probe"] == pytest.approx(0.5)


def test_pooled_primary_averages_the_targets_that_pass_per_seed():
    """``pool_targets``: per seed, the mean over passing targets of (chosen - eps 0); the
    first target's row stays as a secondary; a target failing its gate leaves the pool."""
    glyphs = _with_premise(_synthetic_df()).assign(target="glyphs")          # +0.1 per seed
    textures = glyphs.assign(target="textures")
    textures.loc[textures.kind == "adversarial", "linear_probe"] -= 0.5     # -0.4 per seed
    digits = glyphs.assign(target="digits")
    digits.loc[digits.kind == "adversarial", "linear_probe"] -= (
        0.1 * digits.loc[digits.kind == "adversarial", "seed"])             # +0.1, 0, -0.1
    df = pd.concat([glyphs, textures, digits], ignore_index=True)
    res = _results(df, targets=["glyphs", "textures", "digits"], pool_targets=True)
    v = ex.report.verdicts(res)
    p = v[v.primary].iloc[0]
    assert "pooled over targets" in p["claim"] and p["n_seeds"] == 3
    per_seed = np.array([(0.1 - 0.4 + 0.1) / 3, (0.1 - 0.4 + 0.0) / 3, (0.1 - 0.4 - 0.1) / 3])
    m, lo, hi = stats.mean_interval(per_seed)
    assert (p["estimate"], p["low"], p["high"]) == pytest.approx((m, lo, hi))
    assert p["verdict"] == "not reproduced" and "3 of 3 targets" in p["gates"]
    first = v.set_index("claim").loc["the eps chosen on validation transfers better than eps "
                                     "0 on glyphs (linear probe)"]
    assert not first["primary"] and first["estimate"] == pytest.approx(0.1)
    # textures made non-discriminating (every source alike): pooled over the other two
    flat = df.copy()
    flat.loc[flat.target == "textures", "linear_probe"] = 0.5
    p = ex.report.verdicts(_results(flat, targets=["glyphs", "textures", "digits"],
                                    pool_targets=True))
    p = p[p.primary].iloc[0]
    assert "2 of 3 targets" in p["gates"] and "textures" in p["gates"]
    assert p["estimate"] == pytest.approx(np.mean([(0.1 + 0.1 - 0.1 * s) / 2 for s in range(3)]))
    assert ex.config_hash(ex.config("full")) == ex.config_hash(
        dataclasses.replace(ex.config("full"), pool_targets=False))


def test_estimator_claims_are_within_seed():
    v = ex.report.verdicts(_results(_with_premise(_synthetic_df()))).set_index("claim")
    row = v.loc["TransRate sees the better representation (within seed, linear probe)"]
    assert "within seed" in row["rule"]
    # 4 sources per seed: below stats.MIN_GROUP_ITEMS, so no seed is a group the rule can
    # use, and the claim is excluded with the reason rather than decided on 12 pooled items
    assert row["n_items"] == 0 and row["verdict"] == "excluded"
    assert "too few items in every group 0 (4), 1 (4), 2 (4)" in row["gates"]


def test_summary_prints_the_premise_and_the_primary_verdict():
    text = ex.report.summary(_results(_with_premise(_synthetic_df())))
    assert "Premise" in text and "**holds**" in text
    assert "+0.100 [+0.100, +0.100] over 3 seeds: **reproduced**" in text
    assert "seed 0: 0.2, seed 1: 0.2, seed 2: 0.2" in text


def test_imagenet_scale():
    # mean pixel power from ImageNet's channel means and SDs, over 3 x 224 x 224 pixels
    power = np.mean(np.square([0.485, 0.456, 0.406]) + np.square([0.229, 0.224, 0.225]))
    assert ex.IMAGENET_NORM == pytest.approx(np.sqrt(3 * 224 * 224 * power))
    assert ex.IMAGENET_NORM == pytest.approx(195.4, abs=0.1)
    assert ex.imagenet_equivalent(ex.imagenet_fraction(3.0)) == pytest.approx(3.0)
    assert ex.imagenet_fraction(5.0) == pytest.approx(0.0256, abs=1e-4)
    text = ex.describe(ex.config("full"))
    assert "5->0.026" in text and "195.4" in text


def test_config_checks_the_eps_grid_and_the_fixed_eps():
    with pytest.raises(ValueError, match="moderate_eps 0.3 must be one of the eps > 0"):
        ex.config("fast", moderate_eps=0.3)
    with pytest.raises(ValueError, match="eps must start at 0"):
        ex.config("fast", eps=(0.05, 0.1))
    with pytest.raises(ValueError, match="semi_eps 0.07 must be one of the eps > 0"):
        ex.config("fast", semi_eps=0.07)
    full = ex.config("full")
    assert full.moderate_eps is None and full.truth == "linear_probe"
    assert full.targets[0].n_test >= 1000 and full.attack_steps > 1


def test_the_full_preset_finds_its_data():
    """The full preset's source pool and targets hold what it asks for (checked before the
    30-minute run, not in it)."""
    full = ex.config("full")
    d = ex.source_data(full)
    assert len(d["labeled"]) == full.n_labeled and len(d["unlabeled"]) == full.n_unlabeled
    for i, spec in enumerate(full.targets):
        fit, val, test = ex.target_data(full, full.seeds[0], i)
        k = len(fit.classes)
        assert len(fit) == spec.per_class * k and len(val) == full.val_per_class * k
        assert len(test) == spec.n_test == 1000


# ------------------------------------------------------------------ widget
def test_widget_builds_and_slider_updates_the_traits(tiny_results):
    from transfer_nb_widgets import AdversarialExplorer
    cfg, data, res = tiny_results
    df = res.table
    w = AdversarialExplorer(df, cfg, n_images=3, data=data)
    assert w.errors.message is None
    assert w.eps == 0.0 and w.selected["kind"] == "standard"
    assert w.curve["eps"] == [0.0, 0.2]
    assert len(w.examples["l2"]) == 3
    assert max(w.examples["l2"]) <= cfg.eval_eps * data["norm"] + 1e-5
    w.slider.value = 0.2
    assert w.eps == 0.2
    assert w.selected["kind"] == "adversarial" and w.selected["eps"] == 0.2
    assert w.selected["linear_probe"] == df.linear_probe.iloc[1]
    w.eps = 0.0  # the trait drives the slider too
    assert w.slider.value == 0.0
