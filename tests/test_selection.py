"""transfer_nb.selection (the one layer-selection procedure), transfer_nb.plots.pca_2d,
transfer_nb.data.toy and the one stratified split."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from transfer_nb import estimators as est
from transfer_nb.coding_rate import transrate
from transfer_nb.data.base import stratified_split
from transfer_nb.data.toy import make_gaussian_classes
from transfer_nb.features import extract_features
from transfer_nb.plots import pca_2d, plot_layer_scores
from transfer_nb.selection import extract_layer_features, score_layer_features, score_layers
from transfer_nb.training.transfer import linear_probe


def _layer_features(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 30)
    feats = {"low": rng.normal(size=(90, 6)) + 0.2 * y[:, None],
             "mid": rng.normal(size=(90, 8)) + 1.0 * y[:, None],
             "high": rng.normal(size=(90, 5)) + 3.0 * y[:, None]}
    return feats, y


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


def _images(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.rand(n, 3, 8, 8, generator=g) + 0.5 * y[:, None, None, None].float()
    return TensorDataset(x, y)


# ----------------------------------------------------------------- score_layer_features
def test_scores_equal_the_estimators_on_the_training_part():
    feats, y = _layer_features()
    table = score_layer_features(feats, y, estimators=("transrate", "transrate_layerwise",
                                                       "logme", "hscore"),
                                 ground_truth="linear_probe", test_fraction=0.3, seed=4,
                                 eps=1e-3)
    train, test = stratified_split(y, 0.3, seed=4)
    assert list(table.index) == ["low", "mid", "high"] and table.index.name == "layer"
    assert list(table["depth"]) == [1, 2, 3] and list(table["width"]) == [6, 8, 5]
    for name, Z in feats.items():
        assert table.loc[name, "transrate"] == pytest.approx(transrate(Z[train], y[train], eps=1e-3))
        assert table.loc[name, "transrate_layerwise"] == pytest.approx(
            transrate(Z[train], y[train], eps=1e-3, variant="layerwise"))
        assert table.loc[name, "logme"] == pytest.approx(est.logme(Z[train], y[train]))
        assert table.loc[name, "hscore"] == pytest.approx(est.hscore(Z[train], y[train]))
        assert table.loc[name, "accuracy"] == pytest.approx(
            linear_probe(Z[train], y[train], Z[test], y[test], seed=4))
    assert table["accuracy"].idxmax() == "high"
    # without a ground truth nothing is held out: every row is scored
    plain = score_layer_features(feats, y, estimators=("transrate", "logme"), seed=4, eps=1e-3)
    assert "accuracy" not in plain.columns
    for name, Z in feats.items():
        assert plain.loc[name, "transrate"] == pytest.approx(transrate(Z, y, eps=1e-3))
        assert plain.loc[name, "logme"] == pytest.approx(est.logme(Z, y))


def test_separate_test_set_and_callable_estimators():
    feats, y = _layer_features(0)
    test_feats, test_y = _layer_features(1)
    calls = []
    table = score_layer_features(
        feats, y, test=(test_feats, test_y), ground_truth="linear_probe",
        estimators={"mean_norm": lambda Z, lab: float(np.linalg.norm(Z.mean(0)))},
        on_progress=lambda done, total: calls.append((done, total)))
    for name, Z in feats.items():  # all of `feats` is the training part
        assert table.loc[name, "mean_norm"] == pytest.approx(np.linalg.norm(Z.mean(0)))
        assert table.loc[name, "accuracy"] == pytest.approx(
            linear_probe(Z, y, test_feats[name], test_y, seed=0))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_score_layer_features_errors():
    feats, y = _layer_features()
    with pytest.raises(ValueError, match="rows but there are 10 labels"):
        score_layer_features(feats, y[:10])
    with pytest.raises(ValueError, match="empty"):
        score_layer_features({}, y)
    with pytest.raises(ValueError, match="'leep' takes"):
        score_layer_features(feats, y, estimators=("leep",))
    with pytest.raises(ValueError, match="needs the model"):
        score_layer_features(feats, y, ground_truth="fine_tune_reinit")
    with pytest.raises(ValueError, match=r"class 2 has 1 image.*at least 2 images per class"):
        score_layer_features(feats, np.r_[y[:-30], np.zeros(29, int), [2]])


# -------------------------------------------------------------------------- score_layers
def test_score_layers_equals_estimators_on_the_same_extracted_features():
    model, data = _tiny_net(), _images()
    table = score_layers(model, data, layers=["1", "3"], ground_truth="linear_probe",
                         estimators=("transrate", "logme"), seed=2, progress=False)
    feats = extract_features(model, data, layers=["1", "3"], progress=False)
    y = data.tensors[1].numpy()
    expected = score_layer_features(feats, y, estimators=("transrate", "logme"),
                                    ground_truth="linear_probe", seed=2)
    pd.testing.assert_frame_equal(table, expected)
    train, test = stratified_split(y, 0.25, seed=2)  # test_fraction's default
    assert table.loc["3", "transrate"] == pytest.approx(transrate(feats["3"][train], y[train]))
    assert list(table["width"]) == [4, 6]


def test_score_layers_with_test_data_and_finetune_reinit():
    model, data, held = _tiny_net(), _images(45, seed=0), _images(30, seed=1)
    table = score_layers(model, data, layers=["1", "3"], ground_truth="fine_tune_reinit",
                         test_data=held, seed=0, progress=False,
                         finetune={"epochs": 1, "batch_size": 15, "lr": 0.01})
    feats = extract_features(model, data, layers=["1", "3"], progress=False)
    y = data.tensors[1].numpy()
    assert table.loc["1", "transrate"] == pytest.approx(transrate(feats["1"], y))
    # fine-tuning is seeded: running it again gives the same accuracies
    again = score_layers(model, data, layers=["1", "3"], ground_truth="fine_tune_reinit",
                         test_data=held, seed=0, progress=False,
                         finetune={"epochs": 1, "batch_size": 15, "lr": 0.01})
    np.testing.assert_array_equal(table["accuracy"].values, again["accuracy"].values)
    assert set(np.round(table["accuracy"] * 30, 6)) <= set(range(31))  # k / 30 test images
    with pytest.raises(ValueError, match="ground_truth must be"):
        score_layers(model, data, ground_truth="magic")
    with pytest.raises(ValueError, match="'fine_tune_reinit'"):  # the layer protocol's name
        score_layers(model, data, ground_truth="fine_tune")


def test_extract_layer_features_chunks_match_one_pass():
    model, data = _tiny_net(), _images(50)
    seen = []
    feats, labels, ds, m = extract_layer_features(model, data, layers=["3"], batch_size=8,
                                                  n_chunks=3, on_progress=lambda d, t:
                                                  seen.append(d))
    whole = extract_features(model, data, layers=["3"], batch_size=8, progress=False)
    np.testing.assert_allclose(feats["3"], whole["3"], rtol=1e-6)
    np.testing.assert_array_equal(labels, data.tensors[1].numpy())
    assert seen[0] == 0 and seen[-1] == 50 and len(seen) == 4 and ds is data and m is model


# ------------------------------------------------------------- split, toy data, plots
def test_stratified_split_is_the_one_split():
    y = np.repeat(["a", "b", "c"], [10, 5, 1])
    train, test = stratified_split(y, 0.3, seed=0)
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(16))
    assert sorted(y[test]) == ["a", "a", "a", "b", "b"]  # round(0.3 n_k); "c" stays in train
    again = stratified_split(list(y), 0.3, seed=0)
    assert all(np.array_equal(u, v) for u, v in zip((train, test), again))
    assert not np.array_equal(test, stratified_split(y, 0.3, seed=1)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(y, 1.5, seed=0)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((3, 2)), 0.3, seed=0)


def test_gaussian_classes_geometry():
    Z, y = make_gaussian_classes(n=31, k=3, dim=4, separation=2.5, spread=0.0, seed=0)
    assert Z.shape == (31, 4) and list(np.bincount(y)) == [11, 10, 10]
    means = np.stack([Z[y == c][0] for c in range(3)])
    d = np.linalg.norm(means[:, None] - means[None], axis=-1)
    np.testing.assert_allclose(d[np.triu_indices(3, 1)], 2.5)  # a triangle of side 2.5
    np.testing.assert_array_equal(Z[:, 2:], 0.0)
    Z1, _ = make_gaussian_classes(n=30, k=3, seed=5)
    Z2, _ = make_gaussian_classes(n=30, k=3, seed=5)
    np.testing.assert_array_equal(Z1, Z2)
    with pytest.raises(ValueError, match="at least the number of classes"):
        make_gaussian_classes(n=2, k=3)


def test_pca_2d_projects_on_the_main_axes():
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    Z = np.stack([t, t, np.zeros(5)], axis=1) + 5.0  # a line along (1, 1, 0)
    P = pca_2d(Z)
    np.testing.assert_allclose(P[:, 0], t * np.sqrt(2))  # sign fixed: largest entry positive
    np.testing.assert_allclose(P[:, 1], 0.0, atol=1e-12)  # rank 1: second coordinate zero
    np.testing.assert_allclose(pca_2d(torch.tensor(Z)), P)
    with pytest.raises(ValueError, match="NaN"):
        pca_2d(np.array([[np.nan, 1.0]]))


def test_plot_layer_scores():
    import matplotlib
    matplotlib.use("Agg")
    feats, y = _layer_features()
    table = score_layer_features(feats, y, estimators=("transrate",),
                                 ground_truth="linear_probe")
    fig = plot_layer_scores(table, highlight="mid")
    assert len(fig.axes) == 2
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, table["transrate"].values)
    with pytest.raises(ValueError, match="no column 'logme'"):
        plot_layer_scores(table, "logme")


def test_hold_out_keeps_the_scores_of_a_later_probe():
    feats, y = _layer_features()
    before = score_layer_features(feats, y, estimators=("transrate",), hold_out=True, seed=1)
    after = score_layer_features(feats, y, estimators=("transrate",), hold_out=True, seed=1,
                                 ground_truth="linear_probe")
    pd.testing.assert_series_equal(before["transrate"], after["transrate"])
    train, _ = stratified_split(y, 0.25, seed=1)
    assert before.loc["mid", "transrate"] == pytest.approx(transrate(feats["mid"][train],
                                                                     y[train]))


def test_former_argument_names_still_work_with_a_warning():
    feats, y = _layer_features()
    with pytest.warns(DeprecationWarning, match="truth= is now ground_truth="):
        old = score_layer_features(feats, y, truth="linear_probe", estimators=("transrate",))
    new = score_layer_features(feats, y, ground_truth="linear_probe", estimators=("transrate",))
    pd.testing.assert_frame_equal(old, new)
    model, data = _tiny_net(), _images(45)
    with pytest.warns(DeprecationWarning, match="'finetune_reinit' is now 'fine_tune_reinit'"):
        table = score_layers(model, data, layers=["3"], ground_truth="finetune_reinit",
                             test_data=_images(30, seed=1), progress=False,
                             finetune={"epochs": 1, "batch_size": 15})
    assert table.attrs["ground_truth"] == "fine_tune_reinit"
    with pytest.raises(ValueError, match="test_size is the former name of test_fraction"):
        score_layer_features(feats, y, test_size=0.3, test_fraction=0.4)


def test_score_layers_defaults_match_score_models():
    from transfer_nb.selection import DEFAULT_ESTIMATORS, LAYER_ESTIMATORS
    from transfer_nb.estimators import registry
    assert LAYER_ESTIMATORS == tuple(e for e in DEFAULT_ESTIMATORS
                                     if registry.get(e).inputs == ("features", "labels"))
    model, data = _tiny_net(), _images()
    table = score_layers(model, data, layers=["1", "3"], progress=False)
    assert list(table.columns) == ["depth", "width", *LAYER_ESTIMATORS]
    feats = extract_features(model, data, layers=["1", "3"], progress=False)
    y = data.tensors[1].numpy()
    assert table.loc["3", "logme"] == pytest.approx(est.logme(feats["3"], y))  # every image
