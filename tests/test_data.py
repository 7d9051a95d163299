"""Tests for transfer_nb.data: embedded sets offline, online readers on test-written files."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from transfer_nb.data import (DatasetNotAvailableError, ImageDataset, dataset_info,
                              list_datasets, load_dataset)

EMBEDDED = ["digits", "textures", "lfw_faces", "glyphs", "shapes"]
ONLINE = ["cifar10", "cifar100", "svhn", "flowers102", "dtd"]
# small generated sets keep the suite fast; defaults are checked once below
SMALL = {"glyphs": {"n_per_class": 12}, "shapes": {"n_per_class": 12},
         "textures": {"n_per_class": 16}}


@pytest.fixture(autouse=True)
def _no_download(monkeypatch, tmp_path):
    # never touch the network or the user's data folder from the tests
    monkeypatch.delenv("TRANSFER_NB_DOWNLOAD", raising=False)
    monkeypatch.setenv("TRANSFER_NB_DATA", str(tmp_path / "no-data-here"))


def _check_dataset(ds: ImageDataset, n_classes: int, size: tuple[int, int]):
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds.classes) == n_classes and all(isinstance(c, str) for c in ds.classes)
    assert ds.targets.dtype == np.int64 and ds.targets.shape == (len(ds),)
    assert ds.targets.min() >= 0 and ds.targets.max() < n_classes
    x, y = ds[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, *size)
    assert isinstance(y, int) and y == ds.targets[0]
    X, Y = ds.tensors()
    assert tuple(X.shape) == (len(ds), 3, *size)
    assert torch.equal(Y, torch.from_numpy(ds.targets))
    json.dumps(ds.spec)  # cache keys need a JSON-serialisable spec


# ----------------------------------------------------------------------------------------
# embedded data sets
# ----------------------------------------------------------------------------------------
def test_list_and_info():
    assert list_datasets(offline=True) == EMBEDDED
    assert list_datasets(offline=False) == ONLINE
    assert list_datasets() == EMBEDDED + ONLINE
    for name in EMBEDDED + ONLINE:
        info = dataset_info(name)
        assert info["offline"] == (name in EMBEDDED)
        assert info["description"] and "all" in info["splits"]
        json.dumps(info)
    assert dataset_info("cifar10")["downloaded"] is False


@pytest.mark.parametrize("name, n_classes, n_total, size", [
    ("digits", 10, 1797, (8, 8)),
    ("textures", 5, 1000, (32, 32)),
    ("lfw_faces", 2, 200, (25, 25)),
    ("glyphs", 10, 2000, (32, 32)),
    ("shapes", 8, 2400, (32, 32)),
])
def test_embedded_defaults(name, n_classes, n_total, size):
    train = load_dataset(name)
    test = load_dataset(name, split="test")
    _check_dataset(train, n_classes, size)
    _check_dataset(test, n_classes, size)
    assert len(train) + len(test) == n_total
    assert len(test) == pytest.approx(0.25 * n_total, abs=n_classes)
    # disjoint, and together the whole pool
    assert not set(train.source_indices) & set(test.source_indices)
    assert len(set(train.source_indices) | set(test.source_indices)) == n_total
    # every class on both sides, values in [0, 1] without normalisation
    assert set(np.unique(train.targets)) == set(np.unique(test.targets)) == set(range(n_classes))
    X, _ = train.tensors()
    assert X.min() >= 0 and X.max() <= 1 and X.std() > 0.01


def test_known_labels():
    digits = load_dataset("digits", split="all")
    assert digits.classes == [str(d) for d in range(10)]
    from sklearn.datasets import load_digits
    ref = load_digits()
    i = int(digits.source_indices[0])
    assert digits.targets[0] == ref.target[i]
    assert torch.allclose(digits[0][0][0], torch.tensor(ref.images[i] / 16.0, dtype=torch.float32))
    faces = load_dataset("lfw_faces", split="all")
    assert faces.classes == ["non-face", "face"]
    assert np.all(faces.targets == (faces.source_indices < 100))  # 100 faces come first
    assert load_dataset("textures", n=5, n_per_class=8).classes == [
        "brick", "grass", "gravel", "moon", "ihc"]


@pytest.mark.parametrize("name", EMBEDDED)
def test_deterministic_and_seeded(name):
    opts = SMALL.get(name, {})
    a = load_dataset(name, seed=3, **opts)
    b = load_dataset(name, seed=3, **opts)
    c = load_dataset(name, seed=4, **opts)
    assert torch.equal(a.tensors()[0], b.tensors()[0])
    assert np.array_equal(a.targets, b.targets) and a.spec == b.spec
    assert set(a.source_indices) != set(c.source_indices)  # another split
    assert a.spec != c.spec


def test_grey_images_become_rgb_and_resize():
    ds = load_dataset("digits", n=20, image_size=16)
    x, _ = ds[0]
    assert x.shape == (3, 16, 16)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert 0 <= x.min() and x.max() <= 1
    rect = load_dataset("lfw_faces", n=4, image_size=(20, 30))
    assert rect[0][0].shape == (3, 20, 30)
    assert rect.spec["image_size"] == [20, 30]


def test_normalize():
    raw = load_dataset("shapes", n=16, normalize=None, n_per_class=12)
    lite = load_dataset("shapes", n=16, normalize="lite", n_per_class=12)
    inet = load_dataset("shapes", n=16, normalize="imagenet", n_per_class=12)
    x = raw.tensors()[0]
    assert torch.allclose(lite.tensors()[0], (x - 0.5) / 0.5, atol=1e-6)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(inet.tensors()[0], (x - mean) / std, atol=1e-5)
    assert torch.allclose(inet[3][0], ((x - mean) / std)[3], atol=1e-5)
    assert lite.spec["normalize"] == "lite" and raw.spec["normalize"] == "none"


def test_n_subsample_is_stratified():
    ds = load_dataset("digits", split="train", n=100, seed=1)
    assert len(ds) == 100
    counts = np.bincount(ds.targets, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11
    full = load_dataset("digits", split="train", seed=1)
    assert set(ds.source_indices) <= set(full.source_indices)


def test_split_all_and_test_fraction():
    all_ = load_dataset("lfw_faces", split="all")
    assert len(all_) == 200 and sorted(all_.source_indices) == list(range(200))
    test = load_dataset("lfw_faces", split="test", test_fraction=0.5)
    assert len(test) == 100


def test_textures_split_shares_no_pixels():
    from transfer_nb.data.embedded import textures_source
    train = load_dataset("textures", split="train", n_per_class=40, seed=2)
    test = load_dataset("textures", split="test", n_per_class=40, seed=2)
    groups = textures_source(tuple(train.classes), 40, 96, 4, 0).groups
    for k in range(len(train.classes)):
        g_train = set(groups[train.source_indices[train.targets == k]])
        g_test = set(groups[test.source_indices[test.targets == k]])
        assert g_train and g_test and not g_train & g_test  # whole strips on one side


def test_glyph_options():
    ds = load_dataset("glyphs", chars="ABCxyz", fonts=["STIXGeneral", "cmr10"], n_per_class=4,
                      split="all")
    assert ds.classes == list("ABCxyz") and len(ds) == 24
    assert np.bincount(ds.targets).tolist() == [4] * 6
    upper = load_dataset("glyphs", chars="uppercase", n_per_class=2, split="all")
    assert len(upper.classes) == 26
    # fonts change the pixels, not the labels: a source/target domain pair
    a = load_dataset("glyphs", n_per_class=4, split="all", fonts="DejaVu Sans")
    b = load_dataset("glyphs", n_per_class=4, split="all", fonts="DejaVu Serif")
    assert np.array_equal(a.targets, b.targets)
    assert not torch.equal(a.tensors()[0], b.tensors()[0])
    assert a.spec["options"]["fonts"] == ["DejaVu Sans"]
    inv = load_dataset("glyphs", n_per_class=4, split="all", fonts="DejaVu Sans", invert=True)
    assert torch.allclose(inv.tensors()[0], 1 - a.tensors()[0], atol=1e-6)
    big = load_dataset("glyphs", n_per_class=2, n=4, image_size=96)
    assert big[0][0].shape == (3, 96, 96)
    with pytest.raises(ValueError, match="unknown font 'Comic Sans'"):
        load_dataset("glyphs", fonts=["Comic Sans"])
    with pytest.raises(ValueError, match="distinct"):
        load_dataset("glyphs", chars="AA")


def test_shapes_shift():
    clean = load_dataset("shapes", n_per_class=10, split="all", shift=0.0)
    hard = load_dataset("shapes", n_per_class=10, split="all", shift=1.0)
    assert np.array_equal(clean.targets, hard.targets)
    xc, xh = clean.tensors()[0], hard.tensors()[0]
    # clean: white shapes on black, the corners are background
    assert xc[:, :, 0, 0].max() == 0 and xc.max() == 1
    assert xh[:, :, 0, 0].mean() > 0.1  # coloured, textured, noisy background
    # each factor alone
    only_noise = load_dataset("shapes", n_per_class=10, split="all", noise=1.0)
    assert not torch.equal(only_noise.tensors()[0], xc)
    assert only_noise.spec != clean.spec
    sub = load_dataset("shapes", classes=["circle", "star"], n_per_class=5, split="all")
    assert sub.classes == ["circle", "star"]
    with pytest.raises(ValueError, match="shift must lie in"):
        load_dataset("shapes", shift=1.5)
    with pytest.raises(ValueError, match="unknown shape classes"):
        load_dataset("shapes", classes=["circle", "blob"])


def test_dataloader_and_subset():
    ds = load_dataset("digits", n=30)
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    xb, yb = next(iter(loader))
    assert xb.shape == (8, 3, 8, 8) and yb.dtype == torch.int64
    sub = ds.subset([0, 2, 4])
    assert len(sub) == 3 and torch.equal(sub[1][0], ds[2][0])
    assert sub.spec != ds.spec
    assert ds[-1][1] == ds.targets[-1]
    with pytest.raises(IndexError):
        ds[30]


def test_custom_image_dataset():
    arr = np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    ds = ImageDataset(arr, [0, 1, 0, 1, 1], ["a", "b"], normalize="lite")
    x, y = ds[1]
    assert x.shape == (3, 12, 10) and y == 1
    assert torch.allclose(x, (torch.from_numpy(arr[1]).permute(2, 0, 1) / 255.0 - 0.5) / 0.5)
    with pytest.raises(ValueError, match="targets must lie in"):
        ImageDataset(arr, [0, 1, 0, 1, 2], ["a", "b"])


# ----------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------
def test_bad_inputs():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*digits.*cifar10"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"unknown split 'val' for dataset 'digits'.*train"):
        load_dataset("digits", split="val")
    with pytest.raises(ValueError, match=r"n=5000 requested .* has only 1347 images"):
        load_dataset("digits", n=5000)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        load_dataset("digits", n=0)
    with pytest.raises(ValueError, match="image_size must be positive"):
        load_dataset("digits", image_size=0)
    with pytest.raises(ValueError, match="image_size must be positive"):
        load_dataset("digits", image_size=(8, -1))
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        load_dataset("digits", image_size="big")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\] for dataset 'shapes'"):
        load_dataset("shapes", colour=0.5)
    with pytest.raises(ValueError, match="unknown normalization"):
        load_dataset("digits", normalize="zscore")
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        load_dataset("digits", seed=0.5)


# ----------------------------------------------------------------------------------------
# online data sets, read from small files written here in torchvision's layout
# ----------------------------------------------------------------------------------------
def _write_pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_rows(rng, n):
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)


def test_offline_error_names_dataset_dir_and_alternatives(tmp_path):
    for name in ONLINE:
        with pytest.raises(DatasetNotAvailableError, match=name) as err:
            load_dataset(name, root=tmp_path)
        msg = str(err.value)
        assert str(tmp_path) in msg and "download=True" in msg
        assert all(alt in msg for alt in EMBEDDED)
        assert isinstance(err.value, RuntimeError)


def test_offline_error_uses_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_DATA", str(tmp_path / "envdir"))
    with pytest.raises(RuntimeError, match="envdir"):
        load_dataset("svhn")


def test_cifar10_reader(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    batches = {}
    for i in range(1, 6):
        rows, labels = _cifar_rows(rng, 4), [int(v) for v in rng.integers(0, 10, 4)]
        batches[i] = (rows, labels)
        _write_pickle(base / f"data_batch_{i}", {"data": rows, "labels": labels,
                                                  "batch_label": f"training batch {i} of 5"})
    test_rows = _cifar_rows(rng, 6)
    _write_pickle(base / "test_batch", {"data": test_rows, "labels": [0, 1, 2, 3, 4, 5]})
    _write_pickle(base / "batches.meta", {"label_names": names, "num_vis": 3072})

    # torchvision's own class refuses these files (MD5 check): hence our reader
    import torchvision
    with pytest.raises(RuntimeError):
        torchvision.datasets.CIFAR10(str(tmp_path), train=True, download=False)

    monkeypatch.setenv("TRANSFER_NB_DATA", str(tmp_path))
    train = load_dataset("cifar10")
    _check_dataset(train, 10, (32, 32))
    assert len(train) == 20 and train.classes == names
    all_rows = np.concatenate([batches[i][0] for i in range(1, 6)])
    all_labels = np.concatenate([batches[i][1] for i in range(1, 6)])
    i = int(train.source_indices[0])
    expect = torch.from_numpy(all_rows[i].reshape(3, 32, 32).astype(np.float32) / 255.0)
    assert torch.allclose(train[0][0], expect) and train.targets[0] == all_labels[i]
    test = load_dataset("cifar10", split="test", image_size=16, normalize="lite")
    assert len(test) == 6 and test[0][0].shape == (3, 16, 16)
    assert sorted(test.targets.tolist()) == [0, 1, 2, 3, 4, 5]
    assert len(load_dataset("cifar10", split="all")) == 26
    assert train.spec["options"]["root"] == str(tmp_path.resolve())


def test_cifar100_reader(tmp_path):
    rng = np.random.default_rng(1)
    base = tmp_path / "cifar-100-python"
    fine = [f"fine{i}" for i in range(100)]
    coarse = [f"coarse{i}" for i in range(20)]
    for split, n in [("train", 12), ("test", 5)]:
        fl = [int(v) for v in rng.integers(0, 100, n)]
        _write_pickle(base / split, {"data": _cifar_rows(rng, n), "fine_labels": fl,
                                     "coarse_labels": [v // 5 for v in fl]})
    _write_pickle(base / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})
    ds = load_dataset("cifar100", root=tmp_path)
    _check_dataset(ds, 100, (32, 32))
    assert len(ds) == 12 and ds.classes == fine
    cs = load_dataset("cifar100", root=tmp_path, label_type="coarse", seed=0)
    assert cs.classes == coarse and len(cs) == 12
    assert np.array_equal(cs.targets, ds.targets // 5)
    assert len(load_dataset("cifar100", root=tmp_path, split="test")) == 5
    with pytest.raises(ValueError, match="label_type"):
        load_dataset("cifar100", root=tmp_path, label_type="medium")


def test_svhn_reader(tmp_path):
    from scipy.io import savemat
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, 10), dtype=np.uint8)
    y = np.array([[1], [2], [3], [4], [5], [6], [7], [8], [9], [10]], dtype=np.uint8)
    savemat(tmp_path / "train_32x32.mat", {"X": x, "y": y})
    savemat(tmp_path / "test_32x32.mat", {"X": x[..., :4], "y": y[:4]})
    ds = load_dataset("svhn", root=tmp_path, seed=5)
    _check_dataset(ds, 10, (32, 32))
    assert sorted(ds.targets.tolist()) == list(range(10))  # label 10 means digit 0
    i = int(ds.source_indices[0])
    expect = torch.from_numpy(x[..., i].transpose(2, 0, 1).astype(np.float32) / 255.0)
    assert torch.allclose(ds[0][0], expect)
    assert ds.targets[0] == int(y[i, 0]) % 10
    assert len(load_dataset("svhn", root=tmp_path, split="test")) == 4
    with pytest.raises(DatasetNotAvailableError, match="extra_32x32.mat"):
        load_dataset("svhn", root=tmp_path, split="extra")


def _write_jpg(path, value, size):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


def test_flowers102_reader(tmp_path):
    from scipy.io import savemat
    base = tmp_path / "flowers-102"
    labels = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3], dtype=np.uint8)  # 1-based, as on disk
    for i, lab in enumerate(labels, start=1):
        _write_jpg(base / "jpg" / f"image_{i:05d}.jpg", 40 * int(lab), (40 + i, 30))
    savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    savemat(base / "setid.mat", {"trnid": np.array([[1, 2, 3]]), "valid": np.array([[4, 5, 6]]),
                                 "tstid": np.array([[7, 8, 9]])})
    ds = load_dataset("flowers102", root=tmp_path, image_size=24)
    _check_dataset(ds, 102, (24, 24))
    assert len(ds) == 3 and ds.classes[0] == "pink primrose"
    for k in range(3):
        # the solid colour of each file encodes its label
        assert ds[k][0].mean().item() * 255 == pytest.approx(40 * (ds.targets[k] + 1), abs=3)
    assert len(load_dataset("flowers102", root=tmp_path, split="val", image_size=8)) == 3
    every = load_dataset("flowers102", root=tmp_path, split="all", image_size=8)
    assert len(every) == 9 and sorted(every.targets.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert load_dataset("flowers102", root=tmp_path, n=1, split="test")[0][0].shape == (3, 224, 224)


def test_dtd_reader(tmp_path):
    data = tmp_path / "dtd" / "dtd"
    classes = ["banded", "dotted", "zigzagged"]
    split_files = {s: [] for s in ("train", "val", "test")}
    for k, cls in enumerate(classes):
        for j, s in enumerate(["train", "train", "val", "test"]):
            fname = f"{cls}_{j:04d}.jpg"
            _write_jpg(data / "images" / cls / fname, 60 * (k + 1), (50, 36))
            split_files[s].append(f"{cls}/{fname}")
    (data / "labels").mkdir(parents=True)
    for s, lines in split_files.items():
        (data / "labels" / f"{s}1.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset("dtd", root=tmp_path, image_size=16)
    _check_dataset(ds, 3, (16, 16))
    assert ds.classes == classes and len(ds) == 6
    for k in range(len(ds)):
        assert ds[k][0].mean().item() * 255 == pytest.approx(60 * (ds.targets[k] + 1), abs=3)
    assert len(load_dataset("dtd", root=tmp_path, split="test", image_size=16)) == 3
    with pytest.raises(DatasetNotAvailableError, match="train2.txt"):
        load_dataset("dtd", root=tmp_path, partition=2)
    with pytest.raises(ValueError, match="partition"):
        load_dataset("dtd", root=tmp_path, partition=11)


def test_download_switch_and_failure(tmp_path, monkeypatch):
    from scipy.io import savemat

    from transfer_nb.data import online
    calls = []

    def fake_download(name, root, split, partition):  # what torchvision would leave on disk
        calls.append((name, split))
        x = np.zeros((32, 32, 3, 3), dtype=np.uint8)
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": np.array([[1], [2], [10]])})

    monkeypatch.setattr(online, "_download", fake_download)
    assert len(load_dataset("svhn", root=tmp_path, download=True)) == 3
    assert calls == [("svhn", "train")]
    monkeypatch.setenv("TRANSFER_NB_DOWNLOAD", "1")  # the environment switch works too
    assert len(load_dataset("svhn", root=tmp_path, split="test")) == 3
    assert load_dataset("svhn", root=tmp_path).spec == load_dataset(
        "svhn", root=tmp_path, download=False).spec  # download is not part of the content

    def no_network(name, root, split, partition):
        raise OSError("network unreachable")

    monkeypatch.setattr(online, "_download", no_network)
    with pytest.raises(DatasetNotAvailableError, match=r"downloading dataset 'cifar10'.*digits"):
        load_dataset("cifar10", root=tmp_path)
