"""Head2Toe: selection, fractions, validation, layer counts, the sweep and the widget."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transfer_nb.head2toe import (Head2Toe, Head2ToeCV, concat_features, fraction_sweep,
                                  group_lasso_penalty)


def _planted(n=90, k=3, noise_layers=4, d=20, seed=0):
    """One layer whose first ``k`` features carry the class (one-hot centres); every
    other feature is noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    feats = {f"noise{i}": rng.normal(size=(n, d)).astype(np.float32)
             for i in range(noise_layers)}
    signal = 0.05 * rng.normal(size=(n, d)).astype(np.float32)
    signal[:, :k] += 3.0 * np.eye(k)[y]
    feats = {"noise0": feats.pop("noise0"), "signal": signal, **feats}
    return feats, y


@pytest.fixture(scope="module")
def planted():
    return _planted()


@pytest.fixture(scope="module")
def sweep(planted):
    feats, y = planted
    return fraction_sweep(feats, y, feats, y, [0.2, 0.03], group_lasso=1e-2, steps=100)


@pytest.fixture(scope="module")
def fitted(planted):
    feats, y = planted
    return Head2Toe(keep_fraction=0.03, group_lasso=1e-2, steps=100).fit(feats, y)


def test_planted_group_is_selected(fitted, planted):
    feats, y = planted
    # 100 features, 3 kept: exactly the 3 informative ones (columns 20..22: layer 1)
    assert fitted.selected_.tolist() == [20, 21, 22]
    assert fitted.layer_counts_ == {"noise0": 0, "signal": 3, "noise1": 0, "noise2": 0,
                                    "noise3": 0}
    assert fitted.score(feats, y) == 1.0
    assert list(fitted.predict(feats)[:3]) == [0, 0, 0]


def test_layer_counts_sum_to_kept(fitted):
    assert sum(fitted.layer_counts_.values()) == len(fitted.selected_) == 3
    assert fitted.fit_steps_ == 200  # selection head + final head


def test_keep_all_keeps_every_feature(planted):
    feats, y = planted
    m = Head2Toe(keep_fraction=1.0, steps=5).fit(feats, y)
    assert m.selected_.tolist() == list(range(100))
    assert m.layer_counts_ == {name: 20 for name in feats}
    assert m.fit_steps_ == 5  # no selection head when everything is kept


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5])
def test_bad_fraction_raises(planted, bad):
    feats, y = planted
    with pytest.raises(ValueError, match=r"keep_fraction must lie in \(0, 1\]"):
        Head2Toe(keep_fraction=bad).fit(feats, y)


def test_bad_shapes_raise(planted):
    feats, y = planted
    with pytest.raises(ValueError, match="one label per row"):
        Head2Toe(steps=2).fit(feats, y[:-1])
    ragged = dict(feats, noise1=feats["noise1"][:-1])
    with pytest.raises(ValueError, match="different numbers of rows"):
        Head2Toe(steps=2).fit(ragged, y)
    m = Head2Toe(keep_fraction=1.0, steps=2).fit(feats, y)
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['signal'"):
        m.predict({"noise0": feats["noise0"]})
    with pytest.raises(ValueError, match="features, but Head2Toe is expecting"):
        m.predict(dict(feats, noise0=feats["noise0"][:, :5]))
    # extra layers and another order are fine: the fitted layers are picked by name
    assert m.predict(dict(reversed(list(feats.items())), extra=feats["noise0"])).shape == (90,)
    with pytest.raises(ValueError, match="not fitted"):
        Head2Toe().predict(feats)
    with pytest.raises(ValueError, match="at least 2 classes"):
        Head2Toe(steps=2).fit(feats, np.zeros(len(y)))
    with pytest.raises(ValueError, match="group_lasso"):
        Head2Toe(group_lasso=-1.0).fit(feats, y)


def test_concat_normalises_each_layer():
    rng = np.random.default_rng(1)
    feats = {"a": rng.normal(size=(5, 3)) * 10, "b": rng.normal(size=(5, 7))}
    X, idx, names = concat_features(feats)
    assert X.shape == (5, 10) and names == ["a", "b"]
    assert idx.tolist() == [0] * 3 + [1] * 7
    np.testing.assert_allclose(np.linalg.norm(X[:, :3], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X[:, 3:], axis=1), 1.0, rtol=1e-6)


def test_group_lasso_penalty_value():
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]]))
    # columns (input features) have norms 5, 0, 1
    assert float(group_lasso_penalty(0.5)(lin).detach()) == pytest.approx(3.0)


def test_fraction_sweep_shares_the_selection(sweep, fitted):
    out = sweep
    assert [r["keep_fraction"] for r in out] == [0.03, 0.2]
    assert [r["n_features"] for r in out] == [3, 20]
    # same seed and settings as ``fitted``: the same selection
    np.testing.assert_array_equal(out[0]["model"].selected_, fitted.selected_)
    np.testing.assert_array_equal(out[0]["model"].scores_, out[1]["model"].scores_)
    assert set(out[0]["model"].selected_) <= set(out[1]["model"].selected_)
    assert out[0]["accuracy"] == 1.0


def test_cv_picks_from_the_grid(planted):
    feats, y = planted
    cv = Head2ToeCV(keep_fractions=(0.03, 0.5), group_lassos=(1e-2,), n_folds=3,
                    steps=100).fit(feats, y)
    assert len(cv.cv_results_) == 2 and cv.cv_results_["folds"].tolist() == [3, 3]
    assert cv.best_params_["group_lasso"] == 1e-2
    # the 3 informative features classify held-out folds perfectly; ties go to the
    # smaller fraction
    assert cv.cv_results_["mean_accuracy"].tolist()[0] == 1.0
    assert cv.best_params_["keep_fraction"] == 0.03
    assert len(cv.selected_) == round(cv.best_params_["keep_fraction"] * 100)


def test_head2toe_features_on_a_real_model():
    from transfer_nb.head2toe import head2toe_features
    from transfer_nb.models import load_model

    torch.manual_seed(0)
    model = load_model("small_cnn", pretrained=False)
    x = torch.rand(6, 3, 32, 32)
    feats = head2toe_features(model, x, target=64, device="cpu")
    assert len(feats) >= 2 and all(v.shape[0] == 6 for v in feats.values())
    m = Head2Toe(keep_fraction=0.5, steps=3).fit(feats, np.array([0, 1] * 3))
    total = sum(v.shape[1] for v in feats.values())
    assert len(m.selected_) == round(0.5 * total) == sum(m.layer_counts_.values())


def test_widget_builds_and_slider_changes_traitlet(sweep):
    from transfer_nb_widgets import Head2ToeExplorer

    w = Head2ToeExplorer(sweep=sweep, baseline=0.5)
    assert w.errors.message is None
    assert w.fraction == 0.03  # the offered fraction closest to the paper's 0.1
    assert w.n_features == 3 and w.layer_counts["signal"] == 3
    seen = []
    w.observe(lambda ch: seen.append(ch["new"]), names="fraction")
    w.slider.value = 1
    assert w.fraction == 0.2 and seen == [0.2]
    assert w.n_features == 20 and sum(w.layer_counts.values()) == 20
    assert w.accuracy == sweep[1]["accuracy"]
    assert len(w.plot.outputs) == 1


def test_widget_shows_errors():
    from transfer_nb_widgets import Head2ToeExplorer

    w = Head2ToeExplorer()
    assert "sweep" in w.errors.message
