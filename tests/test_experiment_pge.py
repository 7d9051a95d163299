"""experiments.pge: the config, body-only PGE equal to the estimator, the control, the
truth's head replacement, and verdicts that could go either way."""
import dataclasses
import importlib

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from transfer_nb._threads import torch_threads  # noqa: E402
from transfer_nb import stats  # noqa: E402
from transfer_nb.estimators.pge import pge  # noqa: E402
from transfer_nb.experiments import base  # noqa: E402
from transfer_nb.experiments import pge as E  # noqa: E402
from transfer_nb.experiments.pge import runner  # noqa: E402


def _tiny(**kw):
    """Three glyph tasks, small everything (a few seconds end to end)."""
    tasks = E.TASKS[:3]
    opts = dict(tasks=tasks, n_source=150, source_epochs=2, n_test=60, epochs=5,
                seeds=(0, 1), n_pge=30, restarts=2, lr_grid=(0.01,), recipe_models=1,
                stability_pairs=((tasks[0].name, tasks[1].name), (tasks[0].name, tasks[2].name)),
                stability_seeds=3, stability_restarts=(1, 2), stability_batches=(1, 0),
                n_boot=100)
    opts.update(kw)
    return E.config("fast", **opts)


def test_presets_sizes_and_targets():
    fast, full = E.config("fast"), E.config("full")
    assert len(full.tasks) == 9 and len(full.targets) == 9 and len(full.seeds) >= 3
    assert len(fast.tasks) == 6
    assert len(full.stability_pairs) >= 4 and full.stability_seeds >= 10
    assert "72 ordered (source, target) pairs" in E.describe(full)
    assert [s.name for s in full.sources] == [t.name for t in full.tasks]
    assert all(t.per_class == full.per_class for t in full.tasks)
    one = E.config("fast", targets=["digits"])
    assert one.targets == ("digits",) and len(one.tasks) == 6
    assert E.config_hash(one) != E.config_hash(fast)
    with pytest.raises(ValueError, match="unknown target 'nope'.*task"):
        E.config("fast", targets=["nope"])


def test_folder_target_is_refused_with_a_task_message(tmp_path):
    (tmp_path / "mine" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="image folder.*a PGE target must be a task"):
        E.config("full", targets=[str(tmp_path / "mine")])


def test_label_permutation_is_a_fixed_derangement():
    for k in (2, 5, 10):
        p = E.label_permutation(k, 3)
        assert sorted(p.tolist()) == list(range(k))
        assert not np.any(p == np.arange(k))
        assert p.tolist() == E.label_permutation(k, 3).tolist()
    assert E.label_permutation(10, 1).tolist() != E.label_permutation(10, 2).tolist()


def test_body_params_leave_the_head_out():
    cfg = _tiny()
    model = runner.pge_model(cfg, 10)
    names = E.body_params(model)
    assert names and not any(n.startswith("fc.") for n in names)
    assert len(names) == len(list(model.parameters())) - 2


def test_pair_distances_equal_the_estimator_on_the_body():
    cfg = _tiny()
    with torch_threads(1):
        data = E.task_data(cfg)
        g = E.task_gradients(cfg, data)
        D = runner.pair_distances(g["source"], g["target"])
        Dp = runner.pair_distances(g["source"], g["target_permuted"])
        model = runner.pge_model(cfg, 5, cfg.seed)
        names = [t.name for t in cfg.tasks]
        src, tgt = data[names[0]]["pge"].tensors(), data[names[1]]["train"].tensors()
        direct = pge(model, F.cross_entropy, src, tgt, restarts=cfg.restarts,
                     batch_size=cfg.pge_batch_size, init="reinit", seed=cfg.seed,
                     params=E.body_params(model), progress=False)
    assert D[0, 1] == pytest.approx(direct, rel=1e-9)
    assert np.isnan(np.diag(D)).all() and g["source"].shape[:2] == (3, cfg.restarts)
    # the head is excluded: the gradient vector has the body's size only
    assert g["source"].shape[2] == sum(int(s) for s in g["param_sizes"])
    assert not any(str(n).startswith("fc.") for n in g["param_names"])
    # the control moves the distances (a real change, not a copy)
    assert np.nanmax(np.abs(D - Dp)) > 1e-6


def test_truth_replaces_the_head_so_label_indices_do_not_matter():
    """LP-FT on a target whose labels are deranged reaches the same accuracy: the
    source's class indices never reach the target."""
    from transfer_nb.data.base import ImageDataset
    from transfer_nb.training.transfer import fine_tune
    cfg = _tiny()
    train, test = base.load_target(cfg.tasks[0], cfg.image_size, 0)
    perm = E.label_permutation(len(train.classes), 0)
    relabel = lambda d: ImageDataset(d._images, perm[np.asarray(d.targets)], d.classes,  # noqa
                                     name=d.name, spec=d.spec, normalize=d.normalize)
    model = runner.pge_model(cfg, 5, 1)
    kw = dict(epochs=3, lr=0.01, batch_size=8, seed=0, progress=False, normalize="none",
              head_init="probe")
    with torch_threads(1):
        a = fine_tune(model, train, test, **kw)["accuracy"]
        b = fine_tune(model, relabel(train), relabel(test), **kw)["accuracy"]
    assert abs(a - b) <= 2.0 / len(test)


def test_pooled_within_permutation_ignores_between_group_signal():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(6), 6)
    level = np.repeat(np.arange(6.0), 6)
    # between groups: score and truth rise together; within: unrelated
    s, t = level + 0.01 * rng.random(36), level + 0.01 * rng.random(36)
    assert stats.rank_correlations({"s": s}, t, n_boot=50).loc["s", "kendall"] > 0.8
    assert stats.pooled_within_permutation(s, t, g, n_perm=500)["p"] > 0.05
    # within groups: perfect agreement, between: reversed (Simpson)
    s2 = -10 * level + np.tile(np.arange(6.0), 6)
    t2 = np.tile(np.arange(6.0), 6)
    out = stats.pooled_within_permutation(s2, t2, g, n_perm=500)
    assert out["estimate"] == pytest.approx(1.0) and out["p"] < 0.01


def _synthetic(noise_perm: float, seed: int = 0):
    """A Results whose truth follows -PGE within every target, the control scrambled by
    ``noise_perm``, and every gate passing."""
    rng = np.random.default_rng(seed)
    rows, curves, scratch = [], [], []
    targets = [f"t{k}" for k in range(6)]
    for k, t in enumerate(targets):
        d = rng.random(6)
        for i, s in enumerate(f"s{j}" for j in range(6)):
            for seed_ in (0, 1, 2):
                rows.append({"target": t, "source": s, "seed": seed_,
                             "accuracy": 0.9 - 0.5 * d[i] + 0.005 * rng.standard_normal(),
                             "linear_probe": 0.3, "source_accuracy": 0.9,
                             "time_finetune": 2.0, "time_pge": 0.01, "n_test": 250,
                             "num_classes": 5, "pge": d[i], "pge_mean_distance": d[i],
                             "pge_permuted": d[i] + noise_perm * rng.random(),
                             "baseline": rng.random()})
                curves += [{"target": t, "source": s, "seed": seed_, "epoch": e,
                            "train_loss": 1 / e, "train_accuracy": min(1, e / 5)}
                           for e in range(1, 21)]
        scratch += [{"target": t, "seed": s_, "accuracy": 0.4, "linear_probe": 0.3}
                    for s_ in (0, 1, 2)]
    st = []
    for k in range(10):
        for p in range(4):
            for R in (1, 8):
                noise = 0.3 if R == 1 else 0.05
                for red in ("expectation", "mean_distance"):
                    st.append({"method": "PGE", "reduce": red, "restarts": R, "batches": 0,
                               "seed": k, "pair": f"p{p}",
                               "distance": p + noise * rng.standard_normal()})
                st.append({"method": "baseline", "reduce": "expectation", "restarts": R,
                           "batches": 0, "seed": k, "pair": f"p{p}",
                           "distance": p + 0.5 * rng.standard_normal()})
    return base.Results("pge", pd.DataFrame(rows),
                        {"scratch": pd.DataFrame(scratch), "curves": pd.DataFrame(curves),
                         "stability": pd.DataFrame(st)}, {"mode": "full"}, None)


def test_verdicts_decide_each_way():
    good = _synthetic(noise_perm=0.0)
    chk = E.report.checks(good)
    assert chk["passes"].all() and (chk["negative_transfer"] >= 0).all()
    v = E.report.verdicts(good, n_boot=200).set_index("claim")
    p = v[v["primary"]].iloc[0]
    assert p["verdict"] == "reproduced" and p["estimate"] > 0.9 and p["perm_p"] < 0.01
    control = v.loc[[c for c in v.index if c.startswith("label-permutation")][0]]
    assert control["verdict"] == "reproduced" and control["estimate"] == pytest.approx(0.0)
    beats = v.loc[[c for c in v.index if c.startswith("PGE beats")][0]]
    assert beats["verdict"] == "reproduced"
    restarts = v.loc[[c for c in v.index if c.startswith("averaging")][0]]
    assert restarts["verdict"] == "reproduced" and restarts["low"] > 0
    cost = v.loc[[c for c in v.index if c.startswith("PGE of a pair")][0]]
    assert cost["verdict"] == "reproduced" and cost["estimate"] == pytest.approx(np.log10(200))
    # a control that scrambles the distances loses the ranking: PGE leaned on it
    bad = E.report.verdicts(_synthetic(noise_perm=5.0), n_boot=200).set_index("claim")
    ctl = bad.loc[[c for c in bad.index if c.startswith("label-permutation")][0]]
    assert ctl["verdict"] == "not reproduced" and ctl["high"] < -E.report.CONTROL_MARGIN
    assert "**Primary claim**" in E.report.summary(good)


def test_ceiling_target_is_excluded_by_the_gate():
    res = _synthetic(0.0)
    t = res.table
    t.loc[t["target"] == "t0", "accuracy"] += 0.2          # best source >= 0.97
    chk = E.report.checks(res).set_index("target")
    assert not chk.loc["t0", "passes"] and ">= 0.97" in chk.loc["t0", "reason"]
    v = E.report.verdicts(res, n_boot=100)
    assert "excluded: t0" in v[v["primary"]].iloc[0]["gates"]


def test_tiny_run_end_to_end_and_the_explorer(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    cfg = _tiny(targets=[E.TASKS[1].name])
    res = E.run(cfg, progress=False, use_cache=False)
    t = res.table
    assert len(t) == 2 * 2 and set(t["target"]) == {E.TASKS[1].name}
    assert (t["source"] != t["target"]).all()
    assert {"pge", "pge_permuted", "baseline", "accuracy", "linear_probe"} <= set(t.columns)
    assert res.meta["config_hash"] == E.config_hash(cfg)
    st = res.tables["stability"]
    assert len(st) == 3 * 2 * (2 * 2 * 2 + 2)   # seeds x pairs x (R x B x reduce + baseline R)
    inp = E.explorer_input(res)
    assert np.asarray(inp["pge"]["gradients"]).shape[0] == 3
    try:
        widgets = importlib.import_module("transfer_nb_widgets")
    except ImportError:
        widgets = pytest.importorskip("widgets")
    w = widgets.PGEExplorer(inp, source=E.TASKS[0].name, target=E.TASKS[1].name)
    assert np.isfinite(w.gain) and 0 < w.distance <= 2 and w.similarity
    with pytest.raises(ValueError, match="hold no gradients"):
        E.explorer_input(dataclasses.replace(res))


def test_per_layer_similarity_reference_and_errors():
    names, sizes = ["a.weight", "a.bias", "b.weight"], [2, 1, 2]
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    y = np.array([1.0, 0.0, -1.0, 0.0, 3.0])
    s = E.per_layer_similarity(x, y, names, sizes)
    assert list(s.index) == ["a", "b"] and s.tolist() == pytest.approx([0.0, 0.0])
    assert E.per_layer_similarity(x, 2 * x, names, sizes).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="param_names has 3 entries but param_sizes has 2"):
        E.per_layer_similarity(x, y, names, [2, 3])


def test_per_seed_draws_give_seed_noise_and_keep_the_stored_hash(tmp_path, monkeypatch):
    """``train_draw="per seed"``: each seed fine-tunes on its own few-shot draw from a fixed
    split (seed SD > 0); the stored run's config (one seed-0 draw) keeps its hash."""
    from transfer_nb.experiments.pge import presets
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    full = E.config("full")
    assert full.train_draw == "seed 0" and presets.train_seeds(full) == (0, (0,) * 5)
    assert E.config_hash(full) != E.config_hash(dataclasses.replace(full, train_draw="per seed"))
    fixed = tuple(dataclasses.replace(t, options=t.options + (("split", "fixed"),))
                  for t in E.TASKS[:3])
    cfg = _tiny(tasks=fixed, targets=[fixed[1].name], seeds=(3, 4, 5), train_draw="per seed",
                stability_pairs=((fixed[0].name, fixed[1].name),), stability_seeds=2)
    assert presets.train_seeds(cfg) == (3, (3, 4, 5))
    assert [s.options for s in cfg.sources] == [t.options for t in E.TASKS[:3]]
    t = E.run(cfg, progress=False, use_cache=False).table
    sd = t.groupby("source")["accuracy"].std()
    assert (sd > 0).all(), sd
    with pytest.raises(ValueError, match="train_draw must be"):
        E.config("fast", train_draw="sometimes")
