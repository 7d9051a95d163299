"""The notebook-07 experiment: zoo sizes, gates and verdicts that follow the numbers."""
import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import base
from transfer_nb.experiments import which_estimator as W
from transfer_nb.experiments.which_estimator.report import _loo_difference
SourceSpec, TargetSpec = W.SourceSpec, W.TargetSpec


def test_parameters_up_to_counts_the_truncated_model():
    from transfer_nb.models import load_model
    from transfer_nb.models.small import build_small_model

    m = build_small_model("small_cnn", num_classes=10, width=8, depth=3)
    # stage 0: conv 3->8 (216) + bn (16) + conv 8->8 (576) + bn (16)
    assert W.parameters_up_to(m, "stages.0") == 824
    total = sum(p.numel() for p in m.parameters())
    assert W.parameters_up_to(m, "penultimate") == total - (32 * 10 + 10)
    lite = load_model("efficientnet_lite0")
    assert W.parameters_up_to(lite, "penultimate") == 4652008 - (1280 * 1000 + 1000)
    assert W.parameters_up_to(lite, "blocks.2") < W.parameters_up_to(lite, "blocks.3")
    with pytest.raises(ValueError, match="layer 'blocks.9' is not a module"):
        W.parameters_up_to(lite, "blocks.9")


def test_presets_are_the_documented_ones():
    fast, full = W.config("fast"), W.config("full")
    assert [t.name for t in fast.targets] == ["shapes-shift", "lowercase-3"]
    assert len(fast.sources) == 10 and fast.sources[0].epochs == 0     # random init is in
    assert fast.seeds == (0, 1) and full.seeds == (0, 1, 2)
    assert "zoo: 28 items per target" in W.describe(fast)
    assert "zoo: 42 items per target" in W.describe(full)
    assert [t.name for t in full.targets][0] == "shapes-shift"
    assert {t.n_test for t in full.targets} == {500}
    assert all(base.split_option(t) == "fixed" for t in full.targets)
    assert "PARC" in full.primary and full.primary == fast.primary


def _results(truth_from, seed=0, n_img=12, n_cnn=10):
    """A synthetic run: two targets, two draws; the truth follows ``truth_from`` (plus
    small noise per draw); the small CNNs share one size, as in the zoo."""
    rng = np.random.default_rng(seed)
    rows = []
    for target in ("a", "b"):
        n = n_img + n_cnn
        cols = {c: rng.normal(size=n) for c in W.score_names()}
        cols["params"] = np.r_[rng.uniform(1e4, 1e6, size=n_img), np.full(n_cnn, 5e4)]
        z = (cols[truth_from] - cols[truth_from].mean()) / cols[truth_from].std()
        truth = 0.5 + 0.15 * np.tanh(z)
        for i in range(n):
            family = "imagenet" if i < n_img else "small_cnn"
            for s in (0, 1):
                rows.append({"target": target, "family": family, "model": f"m{i}",
                             "layer": "penultimate", "item": f"m{i}", "seed": s,
                             **{c: cols[c][i] for c in cols},
                             "linear_probe": truth[i] + 0.003 * rng.normal(),
                             "n_train": 100, "n_test": 500, "num_classes": 10})
    cfg = W.WhichEstimatorConfig("test", (), n_boot=300)
    return base.Results("which_estimator", pd.DataFrame(rows), {}, {"mode": "test"}, cfg)


@pytest.mark.parametrize("truth_from,primary", [("parc", "reproduced"),
                                                ("params", "not reproduced")])
def test_verdicts_follow_the_numbers_either_way(truth_from, primary):
    res = _results(truth_from)
    chk = W.checks(res)
    assert chk["passes"].all() and chk["imagenet_passes"].all()
    v = W.verdicts(res)
    row = v[v["primary"]].iloc[0]
    assert row["verdict"] == primary
    assert row["loo_low"] <= row["estimate"] <= row["loo_high"]
    assert set(v["family"]) == {"all", "imagenet", "small_cnn"}
    # no size claim within the small CNNs: they all have one size
    assert not v[(v["family"] == "small_cnn") & v["claim"].str.contains("params")].shape[0]
    text = W.summary(res, v, chk)
    assert f"**{primary}**" in text and "**small_cnn items alone**" in text
    ev = W.evaluate(res)
    assert ev.attrs["against"] == truth_from
    assert W.per_target_best(res)[1] == {"a": truth_from, "b": truth_from}


def test_small_cnns_that_do_not_discriminate_leave_the_family_claims_out():
    res = _results("params")           # truth constant (+ noise) within the small CNNs
    chk = W.checks(res)
    assert not chk["small_cnn_passes"].any()
    assert "spread" in chk["small_cnn_reason"].iloc[0]
    v = W.verdicts(res)
    fam = v[v["family"] == "small_cnn"]
    assert len(fam) == 4 and set(fam["verdict"]) == {"excluded"}
    assert W.by_family(res).loc["parc", "small_cnn only"] == "-"


def test_checks_exclude_a_saturated_target_and_say_why():
    res = _results("parc")
    t = res.table
    t.loc[t["target"] == "b", "linear_probe"] += 0.4     # reaches the ceiling
    chk = W.checks(res).set_index("target")
    assert bool(chk.loc["a", "passes"]) and not bool(chk.loc["b", "passes"])
    assert ">= 0.97" in chk.loc["b", "reason"]
    assert "excluded: b (discrimination" in W.summary(res)


def test_the_leave_one_out_range_of_a_paired_difference():
    """Dropping each item once: the range brackets the full-data difference, which is
    the paired claim's own estimate."""
    res = _results("parc", seed=3)
    means = W.item_table(res)
    lo, hi = _loo_difference(means, "parc", "params", ["a", "b"])
    row = base.paired_claim(means, "parc", "params", "linear_probe", "target", claim="x",
                            paper="-", method="kendall", n_boot=50)
    assert lo <= row["estimate"] <= hi and lo < hi


def test_a_cell_holds_the_estimators_applied_to_the_same_features(tmp_path, monkeypatch):
    """A tiny zoo end to end: every score in the table equals the registry function on
    features extracted again here; params and the probe likewise."""
    from transfer_nb.estimators import registry
    from transfer_nb.features import extract_features
    from transfer_nb.models import load_model
    from transfer_nb.training.transfer import linear_probe

    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    target = TargetSpec("digits", "digits", 5, 60, (("split", "fixed"),))
    cfg = W.WhichEstimatorConfig("test", (target,), pretrained=("efficientnet_lite0",),
                                 pretrained_layers=("blocks.3", "penultimate"),
                                 pretrained_image_size=32, seeds=(1,),
                                 sources=(SourceSpec("random-init", "glyphs", 0, 100),))
    res = W.run(cfg, progress=False, use_cache=False)
    table = res.table
    assert res.meta["paper"] == "which_estimator" and res.meta["config_hash"] == W.config_hash(cfg)
    assert list(table["item"]) == ["efficientnet_lite0@blocks.3",
                                   "efficientnet_lite0@penultimate", "random-init"]
    assert set(table["seed"]) == {1}
    model = load_model("efficientnet_lite0")
    train, test = W.target_data(target, 32, 1, model.transfer_nb_normalize)
    f = extract_features(model, train, layers=["blocks.3"], progress=False)["blocks.3"]
    g = extract_features(model, test, layers=["blocks.3"], progress=False)["blocks.3"]
    y = np.asarray(train.targets)
    row = table.iloc[0]
    for name in W.feature_estimators():
        expected = registry.get(name).func(f, y, **W.OPTIONS.get(name, {}))
        assert row[name] == pytest.approx(expected, rel=1e-9), name
    assert np.isnan(row["leep"]) and np.isfinite(table.iloc[1]["leep"])
    assert row["params"] == W.parameters_up_to(model, "blocks.3")
    assert row["width"] == f.shape[1] and row["num_classes"] == 10
    assert row["linear_probe"] == pytest.approx(linear_probe(f, y, g, np.asarray(test.targets)))
