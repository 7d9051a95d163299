"""The notebook-07 experiment: zoo sizes, gates and verdicts that follow the numbers."""
import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import which_estimator as W
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


def test_fast_config_is_the_documented_one():
    cfg = W.config(fast=True)
    assert cfg.mode == "fast" and [t.name for t in cfg.targets] == ["digits", "shapes-shift"]
    assert len(cfg.sources) == 10 and cfg.sources[0].epochs == 0     # random init is in
    assert "zoo: 28 items per target" in W.describe(cfg)
    assert W.config(fast=False).targets[0].n_test == 500


def _table(truth_from, seed=0, n=12):
    """A synthetic run table: the truth equals ``truth_from`` (plus small noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for target in ("a", "b"):
        cols = {c: rng.normal(size=n) for c in W.score_names()}
        cols["params"] = rng.uniform(1e4, 1e6, size=n)
        z = (cols[truth_from] - cols[truth_from].mean()) / cols[truth_from].std()
        truth = 0.5 + 0.1 * np.tanh(z) + 0.005 * rng.normal(size=n)
        for i in range(n):
            rows.append({"target": target, "family": "imagenet", "item": f"m{i}",
                         **{c: cols[c][i] for c in cols}, "linear_probe": truth[i],
                         "n_test": 250})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("truth_from,expected", [
    ("knn", "**knn** is better than the size baseline"),
    ("params", "**knn** is worse than the size baseline"),
])
def test_summary_verdicts_follow_the_numbers_either_way(truth_from, expected):
    table = _table(truth_from)
    cfg = W.WhichEstimatorConfig("test", (), n_boot=300)
    check = W.checks(table)
    assert check["passes"].all()
    ev = W.evaluate(table, cfg, check)
    ev_size = W.evaluate(table, cfg, check, against="params")
    best = W.per_target_best(table, cfg, check)[1]
    text = W.summary(check, ev, ev_size, best)
    assert expected in text
    assert f"pooled: **{truth_from}**" in text
    assert ev.attrs["against"] == truth_from and best == {"a": truth_from, "b": truth_from}


def test_checks_exclude_a_saturated_target_and_say_why():
    table = _table("knn")
    table.loc[table["target"] == "b", "linear_probe"] += 0.45     # reaches the ceiling
    check = W.checks(table)
    assert bool(check.loc["a", "passes"]) and not bool(check.loc["b", "passes"])
    assert ">= 0.97" in check.loc["b", "reason"]
    cfg = W.WhichEstimatorConfig("test", (), n_boot=100)
    text = W.summary(check, W.evaluate(table, cfg, check),
                     W.evaluate(table, cfg, check, against="params"))
    assert "Targets used: a; *b excluded*" in text


def test_a_cell_holds_the_estimators_applied_to_the_same_features(tmp_path, monkeypatch):
    """A tiny zoo end to end: every score in the table equals the registry function on
    features extracted again here; params and the probe likewise."""
    from transfer_nb.estimators import registry
    from transfer_nb.features import extract_features
    from transfer_nb.models import load_model
    from transfer_nb.transfer import linear_probe

    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    target = TargetSpec("digits", "digits", 5, 60)
    cfg = W.WhichEstimatorConfig("test", (target,), pretrained=("efficientnet_lite0",),
                                 pretrained_layers=("blocks.3", "penultimate"),
                                 pretrained_image_size=32,
                                 sources=(SourceSpec("random-init", "glyphs", 0, 100),))
    table = W.run(cfg, progress=False, use_cache=False)
    assert list(table["item"]) == ["efficientnet_lite0@blocks.3",
                                   "efficientnet_lite0@penultimate", "random-init"]
    model = load_model("efficientnet_lite0")
    train, test = W.target_data(target, 32, 0, model.transfer_nb_normalize)
    f = extract_features(model, train, layers=["blocks.3"], progress=False)["blocks.3"]
    g = extract_features(model, test, layers=["blocks.3"], progress=False)["blocks.3"]
    y = np.asarray(train.targets)
    row = table.iloc[0]
    for name in W.feature_estimators():
        expected = registry.get(name).func(f, y, **W.OPTIONS.get(name, {}))
        assert row[name] == pytest.approx(expected, rel=1e-9), name
    assert np.isnan(row["leep"]) and np.isfinite(table.iloc[1]["leep"])
    assert row["params"] == W.parameters_up_to(model, "blocks.3")
    assert row["width"] == f.shape[1]
    assert row["linear_probe"] == pytest.approx(linear_probe(f, y, g, np.asarray(test.targets)))
