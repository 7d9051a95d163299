"""load_dataset("folder", root=...) / load_image_folder on image folders written here with PIL."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from transfer_nb.data import dataset_info, list_datasets, load_dataset, load_image_folder
from transfer_nb.data.base import stratified_split
from transfer_nb.cache import hash_inputs

CLASSES = ["cat", "dog", "emu"]
# a uniform colour per class: checks that labels follow the folder an image came from
COLOURS = {"cat": (200, 10, 10), "dog": (10, 200, 10), "emu": (10, 10, 200)}


def _write(path, colour, size=(12, 16), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size[::-1], colour).convert(mode).save(path)
    return path


def _flat(root, per_class=(8, 4, 6), size=(12, 16)):
    for c, k in zip(CLASSES, per_class):
        for i in range(k):
            _write(root / c / f"{i:02d}.png", COLOURS[c], size)
    return root


def _colour_labels(ds):
    """The class each image's colour says it is (images are uniform)."""
    X, _ = ds.tensors()
    return X.mean(dim=(2, 3)).argmax(dim=1).numpy()


def test_flat_layout_uses_the_one_stratified_split(tmp_path):
    root = _flat(tmp_path / "pets")
    train = load_dataset("folder", root=root, split="train", image_size=8, seed=3)
    test = load_dataset("folder", root=str(root), split="test", image_size=8, seed=3)
    full = load_dataset("folder", root=root, split="all", image_size=8, seed=3)
    assert train.classes == test.classes == CLASSES
    assert len(full) == 18 and full.class_counts() == {"cat": 8, "dog": 4, "emu": 6}
    # round(0.25 * n_k) per class in test: 2, 1, 2 (stratified_split itself)
    assert test.class_counts() == {"cat": 2, "dog": 1, "emu": 2}
    _, expect_test = stratified_split(full.targets[np.argsort(full.source_indices)], 0.25, 3)
    assert sorted(test.source_indices.tolist()) == expect_test.tolist()
    assert not set(train.source_indices) & set(test.source_indices)
    # labels follow the folders; images are RGB float (3, 8, 8)
    for ds in (train, test):
        np.testing.assert_array_equal(_colour_labels(ds), ds.targets)
        x, y = ds[0]
        assert x.dtype == torch.float32 and tuple(x.shape) == (3, 8, 8) and isinstance(y, int)
    json.dumps(train.spec)
    assert train.spec["options"]["root"] == str(root.resolve())


def test_split_is_deterministic_for_a_seed(tmp_path):
    root = _flat(tmp_path / "pets", per_class=(20, 20, 20))
    a = load_image_folder(root, split="test", image_size=4, seed=1)
    b = load_image_folder(root, split="test", image_size=4, seed=1)
    c = load_image_folder(root, split="test", image_size=4, seed=2)
    np.testing.assert_array_equal(a.source_indices, b.source_indices)
    assert torch.equal(a.images, b.images)
    assert sorted(a.source_indices) != sorted(c.source_indices)
    assert len(a) == len(c) == 15
    # test_fraction and n
    half = load_image_folder(root, split="test", image_size=4, test_fraction=0.5)
    assert half.class_counts() == {"cat": 10, "dog": 10, "emu": 10}
    few = load_image_folder(root, split="train", n=6, image_size=4)
    assert few.class_counts() == {"cat": 2, "dog": 2, "emu": 2}


def test_train_test_subfolders_are_the_split(tmp_path):
    root = tmp_path / "data"
    for split, k in (("train", 3), ("test", 2)):
        for c in CLASSES[:2]:
            for i in range(k):
                _write(root / split / c / f"{split}{i}.jpg", COLOURS[c])
    _write(root / "train" / "emu" / "nested" / "e.bmp", COLOURS["emu"])  # only in train
    train = load_dataset("folder", root=root, split="train", image_size=6)
    test = load_dataset("folder", root=root, split="test", image_size=6, seed=5)
    assert train.classes == test.classes == CLASSES
    assert train.class_counts() == {"cat": 3, "dog": 3, "emu": 1}
    assert test.class_counts() == {"cat": 2, "dog": 2, "emu": 0}
    np.testing.assert_array_equal(_colour_labels(train), train.targets)
    np.testing.assert_array_equal(_colour_labels(test), test.targets)
    assert len(load_dataset("folder", root=root, split="all", image_size=6)) == 11


def test_grey_rgba_and_palette_images_become_rgb(tmp_path):
    root = tmp_path / "modes"
    _write(root / "a" / "grey.png", (90, 90, 90), mode="L")
    _write(root / "a" / "rgba.png", (10, 200, 30), mode="RGBA")
    pal = Image.new("P", (16, 12), 1)
    pal.putpalette([0, 0, 0, 200, 10, 10])
    (root / "b").mkdir(parents=True)
    pal.save(root / "b" / "palette.gif")
    _write(root / "b" / "grey16.tif", (50, 50, 50), mode="I;16")
    ds = load_dataset("folder", root=root, split="all", image_size=(5, 7))
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (4, 3, 5, 7)
    by_file = {}
    for img, i in zip(ds.images, ds.source_indices):
        by_file[int(i)] = img[:, 0, 0].tolist()
    # all-files order: a/grey.png, a/rgba.png, b/grey16.tif, b/palette.gif
    assert by_file[0] == [90, 90, 90]
    assert by_file[1] == [10, 200, 30]
    assert by_file[3] == [200, 10, 10]
    assert by_file[2][0] == by_file[2][1] == by_file[2][2]


def test_errors_say_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="needs root=PATH"):
        load_dataset("folder")
    with pytest.raises(ValueError, match=r"'.*nowhere' does not exist; expected a folder"):
        load_dataset("folder", root=tmp_path / "nowhere")
    afile = tmp_path / "file.png"
    _write(afile, (1, 2, 3))
    with pytest.raises(ValueError, match="is a file, not a folder"):
        load_dataset("folder", root=afile)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no class subfolders; expected one subfolder"):
        load_dataset("folder", root=empty)
    loose = tmp_path / "loose"
    _write(loose / "x.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"holds 1 image file\(s\) directly"):
        load_dataset("folder", root=loose)
    one = tmp_path / "one"
    _write(one / "cat" / "x.png", (1, 2, 3))
    _write(one / ".hidden" / "x.png", (1, 2, 3))  # hidden folders are not classes
    with pytest.raises(ValueError, match=re.escape("has only one class folder ['cat']; "
                                                   "expected at least 2")):
        load_dataset("folder", root=one)
    no_img = _flat(tmp_path / "noimg")
    (no_img / "yak").mkdir()
    (no_img / "yak" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"class folder '.*yak' holds no image files"):
        load_dataset("folder", root=no_img)
    half = tmp_path / "half"
    _write(half / "train" / "a" / "x.png", (1, 2, 3))
    with pytest.raises(ValueError, match="has a 'train' subfolder but no 'test' one"):
        load_dataset("folder", root=half)
    good = _flat(tmp_path / "good")
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\), got 1.5"):
        load_dataset("folder", root=good, test_fraction=1.5)
    with pytest.raises(ValueError, match="skip_bad must be True or False, got 'yes'"):
        load_dataset("folder", root=good, skip_bad="yes")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['download'\]"):
        load_dataset("folder", root=good, download=True)


def test_corrupt_file_is_named_or_skipped_with_a_warning(tmp_path):
    root = _flat(tmp_path / "pets")
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ValueError, match=r"cannot read image file '.*broken\.png' .*"
                                         r"pass skip_bad=True"):
        load_dataset("folder", root=root)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file in .*broken\.png"):
        ds = load_dataset("folder", root=root, split="all", image_size=4, skip_bad=True)
    assert ds.class_counts() == {"cat": 8, "dog": 4, "emu": 6}
    assert ds.spec["options"]["skip_bad"] is True
    # a truncated JPEG passes the header check: skip_bad decodes every file up front
    jpg = _write(root / "emu" / "cut.jpg", (5, 5, 5), size=(64, 64))
    jpg.write_bytes(jpg.read_bytes()[:200])
    with pytest.warns(UserWarning, match=r"skipped 2 .*broken\.png.*cut\.jpg"):
        ds = load_dataset("folder", root=root, split="all", image_size=4, skip_bad=True)
    assert len(ds) == 18
    # a class left without a readable image is an error even with skip_bad
    lone = tmp_path / "lone"
    _write(lone / "a" / "x.png", (1, 2, 3))
    (lone / "b").mkdir()
    (lone / "b" / "y.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"'.*b' holds no readable"):
        load_dataset("folder", root=lone, skip_bad=True)


def test_fingerprint_keys_caches_on_folder_content(tmp_path):
    a = _flat(tmp_path / "a", per_class=(3, 3, 3))
    b = tmp_path / "b"
    for c in CLASSES:
        for i in range(3):
            _write(b / c / f"{i:02d}.png", COLOURS[c], size=(20, 20))  # same names and count
    da = load_dataset("folder", root=a, image_size=4)
    db = load_dataset("folder", root=b, image_size=4)
    assert len(da) == len(db)
    assert da.spec["fingerprint"] != db.spec["fingerprint"]
    assert hash_inputs(data=da.spec) != hash_inputs(data=db.spec)
    # the same folder: same key; one file rewritten: a new key
    assert load_dataset("folder", root=a, image_size=4).spec == da.spec
    f = a / "cat" / "00.png"
    _write(f, (0, 0, 0), size=(13, 16))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_dataset("folder", root=a, image_size=4).spec["fingerprint"] != \
        da.spec["fingerprint"]


def test_registry_entry():
    info = dataset_info("folder")
    assert info["needs_root"] is True and info["offline"] is False
    assert info["options"] == {"root": None, "skip_bad": False, "drop_classes": [],
                               "test_fraction": 0.25}
    assert info["native_size"] == [224, 224] and info["splits"] == ["train", "test", "all"]
    assert "folder" not in list_datasets(task=None)  # it loads nothing without root
    json.dumps(info)
