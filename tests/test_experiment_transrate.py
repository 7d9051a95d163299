"""The TransRate experiment: presets, one cell's scores, the discrimination check, the
verdict rules, the eps sweep, a tiny end-to-end run and the stored full run."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from transfer_nb import estimators as est
from transfer_nb.coding_rate import transrate
from transfer_nb.experiments import transrate as E
from transfer_nb.experiments.transrate import run as R


def test_presets_are_equal_width_and_data_scarce():
    fast, full = E.config(fast=True), E.config(fast=False)
    assert (fast.mode, full.mode) == ("fast", "full")
    for cfg in (fast, full):
        ms = cfg.model_selection
        assert len(ms.sources) >= 8
        assert len(ms.seeds) >= 3 and len(cfg.layer_selection.seeds) >= 3
        assert {t.per_class for t in ms.targets} == {10}
        assert any(s.epochs == 0 for s in ms.sources)          # random init
        assert any(s.label_noise > 0 for s in ms.sources)      # label noise
        assert 4 <= cfg.layer_selection.depth <= 6
    assert fast.model_selection.pretrained == ()
    assert len(full.model_selection.pretrained) == 3
    text = E.describe(fast)
    assert "mode: fast" in text and "skipped in this mode" in text


def test_config_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_FAST", "1")
    assert E.config().mode == "fast"
    monkeypatch.setenv("TRANSFER_NB_FAST", "0")
    assert E.config().mode == "full"


def test_config_hash_tracks_the_config():
    full = E.config(fast=False)
    assert E.config_hash(full) == E.config_hash(E.config(fast=False))
    changed = dataclasses.replace(
        full, model_selection=dataclasses.replace(full.model_selection, epochs=31))
    assert E.config_hash(changed) != E.config_hash(full)


def test_score_features_equals_the_estimators_on_the_same_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 15)
    Z = rng.normal(size=(60, 12)) + y[:, None] * 0.5
    logits = rng.normal(size=(60, 7))
    out = E.score_features(Z, y, logits, eps=1e-3, projected_eps=2e-2)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = {
        "transrate": transrate(Z, y, eps=1e-3),
        "transrate_layerwise": transrate(Z, y, eps=1e-3, variant="layerwise"),
        "transrate_projected": transrate(Z, y, eps=2e-2, variant="projected",
                                         normalize_eigenvalues=False),
        "logme": est.logme(Z, y), "leep": est.leep(p, y),
        "nce": est.nce(np.argmax(logits, 1), y), "hscore": est.hscore(Z, y),
        "hscore_shrinkage": est.hscore(Z, y, shrinkage=True)}
    assert set(expected) == set(E.ESTIMATORS)
    for name, value in expected.items():
        assert out[name] == pytest.approx(value, rel=1e-12), name
        assert out["time_" + name] >= 0


def _table(acc_a, acc_b, n_test=100):
    rows = []
    for target, accs in (("a", acc_a), ("b", acc_b)):
        for i, a in enumerate(accs):
            rows.append({"zoo": "small_cnn", "target": target, "model": f"m{i}",
                         "accuracy": a, "n_test": n_test})
    return pd.DataFrame(rows)


def test_discrimination_check_on_a_constructed_table():
    # a: mean 0.7, SE = sqrt(0.21/100) = 0.0458, spread 0.2 = 4.36 SE -> passes
    # b: one model at the ceiling, and spread 0.02 < 3 SE -> fails for both reasons
    check = E.discrimination_check(_table([0.6, 0.7, 0.8], [0.96, 0.97, 0.965]))
    a, b = check.set_index("target").loc["a"], check.set_index("target").loc["b"]
    assert a["se"] == pytest.approx(np.sqrt(0.21 / 100))
    assert a["spread"] == pytest.approx(0.2)
    assert a["spread_in_se"] == pytest.approx(0.2 / np.sqrt(0.0021))
    assert bool(a["passes"]) and a["reason"] == ""
    assert not bool(b["passes"])
    assert "reaches 0.970" in b["reason"] and "< 3 SE" in b["reason"]
    # a spread of 2.9 SE fails on the spread alone
    se = np.sqrt(0.25 / 100)
    c = E.discrimination_check(_table([0.5 - 1.45 * se, 0.5 + 1.45 * se], [0.1, 0.5]))
    c = c.set_index("target").loc["a"]
    assert not bool(c["passes"]) and "reaches" not in c["reason"]


def test_verdict_rules_on_constructed_intervals():
    assert E.claim_verdict(0.1, 0.9) == "reproduced"
    assert E.claim_verdict(-0.9, -0.1) == "not reproduced"
    assert E.claim_verdict(-0.2, 0.9) == "inconclusive"
    assert E.claim_verdict(np.nan, 0.5) == "inconclusive"
    assert E.compare_verdict(0.5, 0.9, 0.0, 0.4) == "reproduced"
    assert E.compare_verdict(0.0, 0.4, 0.5, 0.9) == "not reproduced"
    assert E.compare_verdict(0.3, 0.9, 0.0, 0.4) == "inconclusive"
    assert E.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert E.combine_verdicts(["reproduced", "not reproduced"]) == "mixed"
    assert E.combine_verdicts(["reproduced", "inconclusive"]) == "inconclusive"
    assert E.combine_verdicts([]) == "not testable"


def _synthetic_ms():
    """Two targets x 6 models: scores built so that the verdicts are predictable."""
    rows = []
    acc = np.array([0.5, 0.55, 0.6, 0.65, 0.7, 0.75])
    for target, n_test in (("good", 400), ("flat", 400)):
        for i in range(6):
            a = acc[i] if target == "good" else 0.96 + 0.002 * i
            row = {"zoo": "small_cnn", "target": target, "model": f"m{i}", "accuracy": a,
                   "accuracy_std": 0.01, "n_test": n_test, "width": 32.0,
                   "source_epochs": float(i % 2)}
            for j, e in enumerate(E.ESTIMATORS):
                row[e] = a + 0.001 * j if e != "nce" else -a  # nce anti-correlated
                row["time_" + e] = 0.001
            row["time_features"], row["time_finetune"] = 0.01, 1.0
            for eps in (1e-2, 1.5e-2):
                row[f"projected_eps={eps:g}"] = a if eps == 1.5e-2 else -a
            rows.append(row)
    return pd.DataFrame(rows)


def test_paper_vs_measured_uses_only_passing_targets():
    ms = _synthetic_ms()
    check = E.discrimination_check(ms)
    assert check.set_index("target")["passes"].to_dict() == {"good": True, "flat": False}
    corr = E.correlations(ms, n_boot=200)
    # width is constant within the zoo: undefined, not a number
    assert np.isnan(corr.set_index(["target", "estimator"]).loc[("good", "width"), "pearson"])
    table = E.paper_vs_measured(ms, corr, check).set_index("claim")
    assert table.loc["model selection: transrate_projected Pearson > 0", "reproduced"] \
        == "reproduced"
    assert table.loc["model selection: nce Pearson > 0", "reproduced"] == "not reproduced"
    assert "flat" not in table.loc["model selection: logme Pearson > 0", "this run measured"]
    assert table.loc["model selection: width Pearson > 0", "reproduced"] == "(inconclusive)"
    sweep = E.eps_sweep(ms, check, n_boot=200)
    assert sweep.loc[1.5e-2, "good"] == pytest.approx(1.0)
    assert sweep.loc[1e-2, "good"] == pytest.approx(-1.0)
    assert "changes nothing visible" in E.report_eps_sweep(sweep, check)
    worse = sweep[["good"]].copy()
    worse["good"] = [1.0, 0.5]          # eps 0.01 (chosen on the answer) vs 0.015
    worse["good_low"], worse["good_high"] = worse["good"], worse["good"]
    assert "a gain of 0.50 bought by looking at the answer" in E.report_eps_sweep(worse, check)


def test_label_noise_copy_is_seeded_and_recorded():
    from transfer_nb.data import load_dataset
    data = load_dataset("digits", split="train", n=100, seed=0)
    noisy = R._with_label_noise(data, 0.5, seed=3)
    again = R._with_label_noise(data, 0.5, seed=3)
    np.testing.assert_array_equal(noisy.targets, again.targets)
    changed = np.mean(noisy.targets != data.targets)
    assert 0.3 < changed < 0.6   # half relabelled uniformly: 9/10 of them change
    assert noisy.spec["label_noise"] == 0.5
    assert R._with_label_noise(data, 0.0, seed=3) is data


def _tiny_config():
    src = (E.SourceSpec("random-init", "glyphs", 0, 60),
           E.SourceSpec("glyphs-1ep", "glyphs", 1, 60),
           E.SourceSpec("shapes-1ep", "shapes", 1, 60))
    ms = E.ModelSelectionConfig(targets=(E.TargetSpec("textures", "textures", 4, 40),),
                                sources=src, width=4, depth=2, image_size=8, epochs=1,
                                batch_size=10, seeds=(0, 1, 2), eps_sweep=(1e-2, 1.5e-2))
    ls = E.LayerSelectionConfig(source=src[1], target=E.TargetSpec("textures", "textures", 4, 40),
                                width=4, depth=4, image_size=16, epochs=1, seeds=(0, 1, 2))
    return E.TransRateConfig("test", ms, ls)


def test_tiny_model_selection_cell_matches_the_estimators():
    cfg = _tiny_config()
    ms = E.model_selection(cfg, progress=False)
    assert list(ms["model"]) == ["random-init", "glyphs-1ep", "shapes-1ep"]
    assert set(ms["width"]) == {8.0}                      # width 4 * 2**(depth-1)
    assert ms["accuracy"].to_numpy() == pytest.approx(
        ms[["accuracy_seed0", "accuracy_seed1", "accuracy_seed2"]].mean(axis=1).to_numpy())
    # the stored scores are the estimators applied to the same features
    from transfer_nb.features import extract_features
    m = cfg.model_selection
    model = E.build_source(m.sources[1], m.arch, m.width, m.depth, m.image_size)
    train, _ = R._target_data(m.targets[0], m.image_size, 0)
    f = extract_features(model, train, layers=["penultimate"], progress=False)["penultimate"]
    row = ms.set_index("model").loc["glyphs-1ep"]
    assert row["transrate"] == pytest.approx(transrate(f, train.targets, eps=m.eps), rel=1e-9)
    assert row["logme"] == pytest.approx(est.logme(f, train.targets), rel=1e-9)
    # cached: the second call returns the same table
    pd.testing.assert_frame_equal(ms.drop(columns=[c for c in ms if c.startswith("time_")]),
                                  E.model_selection(cfg, progress=False).drop(
                                      columns=[c for c in ms if c.startswith("time_")]))


def test_tiny_layer_selection_uses_finetune_reinit():
    layers = E.layer_selection(_tiny_config(), progress=False)
    assert list(layers["layer"]) == ["stages.0", "stages.1", "stages.2", "pool"]
    assert list(layers["width"]) == [4, 8, 16, 32]
    assert set(layers["protocol"]) == {"finetune_reinit"}
    assert layers["accuracy"].to_numpy() == pytest.approx(
        layers[["accuracy_seed0", "accuracy_seed1", "accuracy_seed2"]].mean(axis=1).to_numpy())


def test_save_and_load_full_run(tmp_path):
    df = _synthetic_ms()
    path = E.save_full_run(df, root=tmp_path)
    assert path == tmp_path / "results" / "transrate_model_selection.csv"
    loaded, meta = E.load_full_run(root=tmp_path)
    assert meta["config_hash"] == E.config_hash(E.config(fast=False))
    assert meta["stale"] is False and meta["mode"] == "full"
    assert len(loaded) == len(df)
    assert E.load_full_run(root=tmp_path / "nothing") == (None, None)
