"""Tests for transfer_nb.selection.score_models: one row per model, each score equal to the
estimator applied to extract_features of the same images, the ground truth, the job engines.

Every comparison pins ``device="cpu"`` on both sides, so that a CUDA machine compares the
same CPU arithmetic (TF32 convolutions would otherwise differ in the 3rd digit).
"""
import numpy as np
import pytest
import torch
from torch import nn

import transfer_nb as tnb
from transfer_nb.coding_rate import transrate
from transfer_nb.data import load_dataset
from transfer_nb.data.base import stratified_split
from transfer_nb.estimators import hscore, leep, logme, nce
from transfer_nb.features import extract_features
from transfer_nb.selection import score_models
from transfer_nb.training.transfer import linear_probe

SCORES = ["transrate", "logme", "leep", "nce", "hscore"]
INFO = ["layer", "image_size", "width", "n_train", "n_classes"]


class Net(nn.Module):
    """conv -> pool -> linear classifier (10 source classes)."""

    def __init__(self, seed, normalize="none", head=True):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.flat = nn.Flatten()
        self.head = nn.Linear(48, 10) if head else nn.Identity()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.transfer_nb_normalize = normalize
        self.eval()

    def forward(self, x):
        return self.head(self.flat(self.pool(torch.relu(self.conv(x)))))


def _digits(split, n, normalize=None):
    return load_dataset("digits", split=split, n=n, image_size=12, seed=0, normalize=normalize)


@pytest.fixture(scope="module")
def parts():
    return _digits("train", 60), _digits("test", 40)


def _reference(model, split, n, layer="penultimate"):
    """Each estimator on extract_features of the images normalised the model's way."""
    data = _digits(split, n, normalize=model.transfer_nb_normalize)
    feats = extract_features(model, data, layers=[layer, "output"], device="cpu",
                             progress=False)
    Z, y = feats[layer], data.targets
    P = torch.softmax(torch.as_tensor(feats["output"], dtype=torch.float64), 1).numpy()
    return {"transrate": transrate(Z, y, eps=1e-4), "logme": logme(Z, y),
            "hscore": hscore(Z, y), "leep": leep(P, y),
            "nce": nce(feats["output"].argmax(1), y)}, Z, y, data


def test_dict_of_modules_each_normalised_its_own_way(parts):
    train, test = parts
    models = {"plain": Net(0, "none"), "imnet": Net(1, "imagenet")}
    table = score_models(models, train, test_data=test, device="cpu", cache=False)
    assert list(table.index) == ["plain", "imnet"]
    assert list(table.columns[:10]) == INFO + SCORES
    assert table["width"].tolist() == [48, 48] and table["n_train"].tolist() == [60, 60]
    assert table["n_classes"].tolist() == [10, 10] and table["image_size"].tolist() == [12, 12]
    # the static baselines: every parameter counted once, no published top-1 for a module
    assert table["params"].tolist() == [sum(p.numel() for p in m.parameters())
                                        for m in models.values()] == [826, 826]
    assert table["imagenet_top1"].isna().all()
    assert table.attrs["estimators"] == SCORES and table.attrs["failed"] == {}
    for name, model in models.items():
        ref, *_ = _reference(model, "train", 60)
        for score in SCORES:
            assert table.loc[name, score] == pytest.approx(ref[score], rel=1e-9, abs=1e-12)
            assert table.loc[name, f"{score}_seconds"] >= 0
    # the normalisation matters: the raw images give another TransRate for "imnet"
    raw = extract_features(models["imnet"], train, layers="penultimate", device="cpu",
                           progress=False)["penultimate"]
    assert table.loc["imnet", "transrate"] != pytest.approx(transrate(raw, train.targets))
    assert train.normalize == "none"  # the caller's dataset is left as it was


def test_names_and_modules(parts):
    train, _ = parts
    lite = tnb.load_model("efficientnet_lite0")
    table = score_models(["efficientnet_lite0", Net(2)], "digits", estimators=["transrate"],
                         n=40, image_size=32, device="cpu", cache=False)
    assert list(table.index) == ["efficientnet_lite0", "Net"]
    ref = load_dataset("digits", split="train", n=40, image_size=32, seed=0, normalize="lite")
    Z = extract_features(lite, ref, layers="penultimate", device="cpu",
                         progress=False)["penultimate"]
    assert table.loc["efficientnet_lite0", "width"] == 1280
    assert table.loc["efficientnet_lite0", "transrate"] == pytest.approx(
        transrate(Z, ref.targets, eps=1e-4), rel=1e-9)
    assert list(table.columns[:6]) == INFO + ["transrate"]
    # the zoo's published top-1 (TF-Lite model card, FP32) beside a parameter count
    assert table.loc["efficientnet_lite0", "imagenet_top1"] == 75.1
    assert table.loc["efficientnet_lite0", "params"] == sum(
        p.numel() for p in lite.parameters())


def test_model_without_classifier_gets_nan_and_a_note(parts):
    train, test = parts
    table = score_models({"headless": Net(3, head=False)}, train, test_data=test,
                         device="cpu", cache=False)
    row = table.loc["headless"]
    assert np.isnan(row["leep"]) and np.isnan(row["nce"])
    assert "no classifier" in row["note"] and "leep, nce" in row["note"]
    assert np.isfinite(row["transrate"])


def test_linear_probe_truth_equals_transfer_linear_probe(parts):
    train, test = parts
    model = Net(4, "lite")
    table = score_models({"m": model}, train, estimators=["transrate"], test_data=test,
                         ground_truth="linear_probe", device="cpu", cache=False)
    _, Z, y, _ = _reference(model, "train", 60)
    _, Zt, yt, _ = _reference(model, "test", 40)
    assert table.attrs["ground_truth"] == "linear_probe"
    assert table.loc["m", "accuracy"] == linear_probe(Z, y, Zt, yt, seed=0)
    assert table.loc["m", "truth_seconds"] >= 0


def test_dataset_without_test_data_is_split_like_score_layers(parts):
    train, _ = parts
    model = Net(5)
    table = score_models([model], train, estimators=["transrate"],
                         ground_truth="linear_probe", device="cpu", cache=False)
    tr, held = stratified_split(train.targets, 0.25, 0)  # test_fraction's default
    Z = extract_features(model, train, layers="penultimate", device="cpu",
                         progress=False)["penultimate"]
    assert table.loc["Net", "n_train"] == len(tr)
    assert table.loc["Net", "transrate"] == pytest.approx(
        transrate(Z[tr], train.targets[tr]), rel=1e-9)
    assert table.loc["Net", "accuracy"] == linear_probe(
        Z[tr], train.targets[tr], Z[held], train.targets[held])


def test_fine_tune_truth_is_seeded(parts):
    train, test = parts
    kw = dict(estimators=["nce"], test_data=test, ground_truth="fine_tune", device="cpu",
              cache=False, finetune={"epochs": 1, "batch_size": 20})
    a = score_models({"m": Net(6)}, train, **kw)
    b = score_models({"m": Net(6)}, train, **kw)
    assert a.loc["m", "accuracy"] == b.loc["m", "accuracy"]


def test_layer_argument(parts):
    train, test = parts
    table = score_models([Net(7)], train, estimators=["transrate"], layer="conv",
                         test_data=test, device="cpu", cache=False)
    assert table.loc["Net", "layer"] == "conv" and table.loc["Net", "width"] == 12


@pytest.mark.parametrize("kwargs, match", [
    (dict(models=["no_such_model"]), "unknown model 'no_such_model'"),
    (dict(models=[]), "models is empty"),
    (dict(models=[Net(0), Net(1)]), "two models are called 'Net'"),
    (dict(models=[42]), "must be a name from list_models"),
    (dict(estimators=["pge"]), "score_models computes"),
    (dict(estimators=["bogus"]), "unknown estimator 'bogus'"),
    (dict(ground_truth="finetune_reinit"), "ground_truth must be"),
    (dict(backend="spark"), "backend must be one of"),
    (dict(n_jobs=0), "n_jobs"),
    (dict(device="banana"), "not a device name"),
    (dict(data="/no/such/folder"), "does not exist"),
    (dict(layer="nope"), "nope"),
])
def test_bad_arguments(parts, kwargs, match):
    args = dict(models=[Net(0)], data=parts[0], device="cpu", cache=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        score_models(**args)


def _scores(table):
    return table[["width", "n_train", *SCORES, "accuracy"]]


@pytest.mark.slow
def test_joblib_two_jobs_equals_serial(parts):
    train, test = parts
    models = {"a": Net(8), "b": Net(9, "imagenet")}
    kw = dict(test_data=test, ground_truth="linear_probe", device="cpu", cache=False)
    before = torch.get_num_threads()
    serial = score_models(models, train, **kw)
    for backend in (None, "loky"):  # None: threads (no fine-tuning here); loky: processes
        parallel = score_models(models, train, n_jobs=2, backend=backend, **kw)
        # another thread count may round differently: the same up to float rounding
        np.testing.assert_allclose(_scores(parallel).to_numpy(float),
                                   _scores(serial).to_numpy(float), rtol=1e-6)
        assert list(parallel.index) == ["a", "b"]
    assert torch.get_num_threads() == before  # the jobs' thread cap is undone


@pytest.mark.slow
def test_dask_local_cluster_equals_serial(parts):
    pytest.importorskip("dask.distributed")
    train, test = parts
    models = {"a": Net(10), "b": Net(11, "lite")}
    kw = dict(test_data=test, ground_truth="linear_probe", device="cpu", cache=False)
    serial = score_models(models, train, **kw)
    # no scheduler given: a LocalCluster of one single-threaded worker *process*, so the
    # jobs really are pickled and run elsewhere
    remote = score_models(models, train, backend="dask", n_jobs=1, **kw)
    np.testing.assert_allclose(_scores(remote).to_numpy(float),
                               _scores(serial).to_numpy(float), rtol=1e-6)
    assert list(remote.index) == ["a", "b"]


def test_package_exports():
    from transfer_nb import selection
    assert tnb.score_models is selection.score_models
    assert tnb.score_layers is selection.score_layers
