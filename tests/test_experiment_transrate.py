"""The TransRate experiment (transfer_nb.experiments.transrate) on the contract."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from transfer_nb import estimators as est
from transfer_nb.coding_rate import transrate
from transfer_nb.experiments import base
from transfer_nb.experiments import transrate as E


def test_full_preset_has_the_power_the_issue_asks_for():
    full = E.config("full")
    assert full.mode == "full"
    trained = [s for s in full.sources if s.epochs > 0]
    assert len(full.sources) >= 20
    assert {s.epochs for s in trained} == {full.source_epochs}      # one epoch budget
    assert len({(s.dataset, s.options) for s in trained}) >= 3       # source tasks vary
    assert len({s.n for s in trained}) >= 3 and len({s.label_noise for s in trained}) >= 2
    assert len(full.targets) >= 3 and all(t.per_class <= 10 for t in full.targets)
    assert len(full.seeds) >= 3 and len(full.layer_cases) >= 3 and full.layer_blocks >= 8
    assert dict(full.degenerate) == {"random-init": "out"}
    assert full.head_init == "probe" and full.projected_eps == 0.015


def test_config_modes_overrides_and_hash():
    fast = E.config("fast")
    assert fast.mode == "fast" and E.config_hash(fast) != E.config_hash(E.config("full"))
    assert E.config_hash(E.config("full")) == E.config_hash(E.config("full"))
    assert E.config("fast", seeds=(0,)).seeds == (0,)
    with pytest.raises(ValueError, match="mode must be one of"):
        E.config("medium")


def test_config_accepts_a_users_folder(tmp_path):
    from PIL import Image
    for c in ("a", "b"):
        (tmp_path / "mine" / c).mkdir(parents=True)
        for i in range(8):             # 6 training images per class >= per_class 5
            Image.new("RGB", (8, 8), (30 * i, 0, 0)).save(tmp_path / "mine" / c / f"{i}.png")
    cfg = E.config("fast", targets=[tmp_path / "mine"])
    assert [t.dataset for t in cfg.targets] == ["folder"]
    assert cfg.targets[0].per_class == 5
    with pytest.raises(ValueError, match="unknown target"):
        E.config("fast", targets=["no-such-set"])


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


def _results(acc, probe, scores, n_test=200, classes=10):
    """A constructed run: two targets x len(acc) models x 3 seeds."""
    rows = []
    for target in ("t1", "t2"):
        for i, (a, p, s) in enumerate(zip(acc, probe, scores)):
            for seed, jitter in enumerate((-0.005, 0.0, 0.005)):
                rows.append({"target": target, "model": f"m{i}", "seed": seed,
                             "accuracy": a + jitter, "linear_probe": p, "n_test": n_test,
                             "num_classes": classes, **{c: s for c in E.ESTIMATORS},
                             "source_accuracy": s, "source_n": 100.0, "width": 64.0,
                             "source_epochs": 8.0, "time_transrate_projected": 0.01,
                             "time_logme": 0.01, "time_finetune": 2.0})
    return base.Results("transrate", pd.DataFrame(rows), {}, {"mode": "fast"}, None)


def test_verdicts_follow_the_numbers_either_way():
    acc = np.linspace(0.4, 0.8, 12)
    up = E.report.verdicts(_results(acc, acc - 0.05, acc * 3), n_boot=300)
    primary = up[up["primary"]].iloc[0]
    assert primary["verdict"] == "reproduced" and primary["estimate"] == pytest.approx(1.0)
    down = E.report.verdicts(_results(acc, acc - 0.05, -acc), n_boot=300)
    assert down[down["primary"]].iloc[0]["verdict"] == "not reproduced"
    cost = up[up["claim"].str.contains("costs")].iloc[0]
    assert cost["estimate"] == pytest.approx(np.log10(200)) and cost["verdict"] == "reproduced"


def test_a_truth_below_the_probe_excludes_every_target():
    acc = np.linspace(0.4, 0.8, 12)
    res = _results(acc, acc + 0.1, acc)
    chk = E.report.checks(res)
    assert not chk["passes"].any() and chk["reason"].str.contains("under-trained").all()
    v = E.report.verdicts(res, n_boot=100)
    assert v[v["primary"]].iloc[0]["verdict"] == "excluded"


def test_tiny_run_end_to_end():
    src = (base.SourceSpec("random-init", "digits", 0, 200),
           base.SourceSpec("digits-a", "digits", 1, 200),
           base.SourceSpec("digits-b", "digits", 2, 300))
    cfg = E.config("fast", targets=[base.TargetSpec("digits", "digits", 3, 60)], sources=src,
                   seeds=(0, 1), epochs=3, lr_grid=(0.01,), recipe_models=1, layer_cases=(),
                   image_size=8, n_boot=50)
    res = E.run(cfg, progress=False, use_cache=False)
    assert len(res.table) == 3 * 2 and set(res.table["model"]) == {s.name for s in src}
    recipe = res.tables["recipe"]          # tuned on a non-degenerate model only
    assert recipe["chosen"].all() and recipe["model"].tolist() == ["digits-a"]
    assert (res.table["n_train"] == 30).all() and (res.table["n_test"] == 60).all()
    assert res.meta["config_hash"] == E.config_hash(cfg)
    v = E.report.verdicts(res, n_boot=50)
    assert int(v["primary"].sum()) == 1 and list(v.columns[:10]) == list(base.VERDICT_COLUMNS)


def test_the_experiment_runs_on_a_users_image_folder(tmp_path):
    """config(targets=[folder]) runs the paper's protocol on a researcher's own images."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for k, colour in enumerate(((220, 40, 40), (40, 200, 40), (40, 40, 220))):
        (tmp_path / "mine" / f"class{k}").mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "mine" / f"class{k}" / f"{i}.png")
    src = (base.SourceSpec("digits-a", "digits", 1, 200), base.SourceSpec("digits-b", "digits", 2, 200),
           base.SourceSpec("digits-c", "digits", 1, 300))
    cfg = E.config("fast", targets=[tmp_path / "mine"], sources=src, seeds=(0,), epochs=2,
                   lr_grid=(0.01,), recipe_models=1, layer_cases=(), image_size=8, n_boot=20)
    assert cfg.targets[0].per_class == 5
    res = E.run(cfg, progress=False, use_cache=False)
    assert set(res.table["target"]) == {"mine"} and len(res.table) == 3
    assert (res.table["n_train"] == 15).all() and (res.table["num_classes"] == 3).all()
