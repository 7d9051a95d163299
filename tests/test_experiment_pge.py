"""experiments.pge: tasks, matrices equal to the estimator, checks, tables, widget."""
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from transfer_nb.estimators.pge import pge  # noqa: E402
from transfer_nb.experiments import pge as E  # noqa: E402


@pytest.fixture(scope="module")
def fast():
    """The fast config with its own tasks, PGE matrix and baseline (no transfer runs)."""
    cfg = E.config(fast=True)
    with E.torch_threads(1):
        tasks = E.build_tasks(cfg)
        mat = E.pge_matrix(cfg, tasks)
        base = E.baseline_matrix(cfg, tasks)
    return cfg, tasks, mat, base


def test_fast_config_tasks():
    cfg = E.config(fast=True)
    assert cfg.mode == "fast" and len(cfg.tasks) == 6
    assert E.config(fast=False).mode == "full" and len(E.config(fast=False).tasks) == 9
    assert E.describe(cfg).splitlines()[1].startswith("tasks (6, 5 classes each): glyphs 0-4 sans")


def test_load_task_relabels_class_subset():
    spec = E.TaskSpec("digits 5-9", "digits", (5, 6, 7, 8, 9))
    ds = E.load_task(spec, "train", 50, 8, seed=0)
    assert ds.classes == ["5", "6", "7", "8", "9"]
    assert np.bincount(ds.targets).tolist() == [10, 10, 10, 10, 10]
    with pytest.raises(ValueError, match=r"classes \[12\] are not classes of 'digits'"):
        E.load_task(E.TaskSpec("bad", "digits", (1, 12)), "train", 10, 8)
    with pytest.raises(ValueError, match="n=5000 requested"):
        E.load_task(spec, "train", 5000, 8)


def test_matrix_cells_equal_the_estimator(fast):
    cfg, tasks, mat, _ = fast
    names = [t.name for t in cfg.tasks]
    D = mat["distance"]
    assert D.shape == (6, 6) and np.allclose(D, D.T) and np.all(np.diag(D) == 0)
    model = E.build_model(cfg, cfg.seed)
    with E.torch_threads(1):
        for a, b in [(0, 1), (0, 5), (3, 4)]:
            direct = pge(model, F.cross_entropy, tasks[names[a]]["pge"].tensors(),
                         tasks[names[b]]["pge"].tensors(), **E._pge_kwargs(cfg))
            assert D[a, b] == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # the two fonts of the same digits are the closest pair of the first task
    row = D[0].copy()
    row[0] = np.inf
    assert names[int(np.argmin(row))] == "glyphs 0-4 serif"


def test_baseline_is_a_distance(fast):
    _, _, _, base = fast
    D = base["distance"]
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0) and D.max() <= 2


def _fake_results(cfg, mat, base, gain):
    S = gain.shape[0]
    return {"config": cfg, "names": [t.name for t in cfg.tasks], "pge": mat,
            "baseline": base,
            "gain": {"gain": gain, "transfer": gain + 0.5, "scratch": np.full((S, 6), 0.5),
                     "seconds": 10.0}}


def test_discrimination_check_and_correlations(fast):
    pytest.importorskip("transfer_nb.stats")   # lands on main from h/stats
    cfg, _, mat, base = fast
    # gain = 0.3 - PGE exactly: -PGE ranks the pairs perfectly
    g = 0.3 - mat["distance"].copy()
    np.fill_diagonal(g, np.nan)
    res = _fake_results(cfg, mat, base, np.stack([g, g, g]))
    chk = E.discrimination_check(cfg, res["gain"])
    assert list(chk.index) == res["names"]
    assert chk.loc["glyphs 0-4 sans", "best transfer"] == pytest.approx(
        0.8 - np.sort(mat["distance"][1:, 0])[0])
    res["check"] = chk
    rc = E.correlations(res, n_boot=200)
    n_ok = int(chk["discriminates"].sum())
    assert rc.loc["-PGE", "kendall"] == pytest.approx(1.0)
    assert rc.loc["-PGE", "n"] == 5 * n_ok
    assert len(E.pair_frame(res)) == 30


def test_discrimination_check_flags_ceiling_and_flat_targets(fast):
    cfg, _, mat, base = fast
    t = np.full((1, 6, 6), 0.6)
    t[0, :, 0] = 0.98                       # target 0 at the ceiling
    t[0, :, 2] = np.linspace(0.3, 0.9, 6)   # target 2 spreads
    gain = {"transfer": t, "scratch": np.full((1, 6), 0.5)}
    chk = E.discrimination_check(cfg, gain)
    names = [x.name for x in cfg.tasks]
    assert "reaches" in chk.loc[names[0], "why not"] and ">= 0.97" in chk.loc[names[0], "why not"]
    assert chk.loc[names[1], "why not"].startswith("spread") and "< 3 SE" in chk.loc[names[1], "why not"]
    assert bool(chk.loc[names[2], "discriminates"])


def test_per_layer_similarity_reference_and_errors():
    names = ["a.weight", "a.bias", "b.weight"]
    sizes = [2, 1, 2]
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    y = np.array([1.0, 0.0, -1.0, 0.0, 3.0])
    s = E.per_layer_similarity(x, y, names, sizes)
    assert list(s.index) == ["a", "b"]
    assert s["a"] == pytest.approx(0.0)            # (1,0,1).(1,0,-1) = 0
    assert s["b"] == pytest.approx(0.0)
    s2 = E.per_layer_similarity(x, 2 * x, names, sizes)
    assert s2.tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="param_names has 3 entries but param_sizes has 2"):
        E.per_layer_similarity(x, y, names, [2, 3])
    with pytest.raises(ValueError, match="gradients have 5 and 5 entries but the parameters "
                                         "hold 6"):
        E.per_layer_similarity(x, y, names, [2, 2, 2])


def test_widget_pair_selection_updates_result(fast):
    widgets = pytest.importorskip("widgets")
    cfg, _, mat, base = fast
    res = {"names": [t.name for t in cfg.tasks], "pge": mat}
    w = widgets.PGEExplorer(res)
    assert (w.source, w.target) == ("glyphs 0-4 sans", "glyphs 0-4 serif")
    assert w.distance == pytest.approx(mat["distance"][0, 1])
    seen = []
    w.observe(lambda ch: seen.append(ch["new"]), names="similarity")
    w.target_box.value = "textures"
    assert w.target == "textures"
    assert w.distance == pytest.approx(mat["distance"][0, 5])
    expected = E.per_layer_similarity(mat["gradients"][0].mean(0), mat["gradients"][5].mean(0),
                                      mat["param_names"], mat["param_sizes"])
    assert w.similarity == pytest.approx(expected.to_dict())
    assert seen and seen[-1] == w.similarity
    assert w.errors.message is None
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        widgets.PGEExplorer(res, source="nope")


def test_config_is_hashable_for_the_cache():
    cfg = E.config(fast=True)
    other = dataclasses.replace(cfg, threads=4)
    assert E._key(cfg, "gain") == E._key(other, "gain")
    assert E._key(cfg, "gain") != E._key(dataclasses.replace(cfg, n_target=30), "gain")
