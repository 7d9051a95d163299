"""Embedded regression sets (shape_keypoints, rotated_digits) and float targets in
ImageDataset: shapes, determinism, and labels that match the pixels."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transfer_nb.data import ImageDataset, dataset_info, list_datasets, load_dataset
from transfer_nb.data import synthetic
from transfer_nb.data.regression import heart_keypoints, rotation_angle, warp_points

REGRESSION = {"shape_keypoints": (2000, 10), "rotated_digits": (1797, 3)}


def test_registry_task_field():
    assert list_datasets(task="regression") == list(REGRESSION)
    assert not set(REGRESSION) & set(list_datasets())          # default: classification
    assert set(list_datasets(task=None)) == set(list_datasets()) | set(REGRESSION)
    assert dataset_info("digits")["task"] == "classification"
    for name, (_, m) in REGRESSION.items():
        info = dataset_info(name)
        assert info["task"] == "regression" and info["num_classes"] is None
        assert info["num_outputs"] == m == len(info["target_names"])
        json.dumps(info)
    with pytest.raises(ValueError, match="task must be"):
        list_datasets(task="segmentation")


@pytest.mark.parametrize("name", list(REGRESSION))
def test_shapes_dtypes_splits(name):
    n_total, m = REGRESSION[name]
    train, test = load_dataset(name), load_dataset(name, split="test")
    assert len(train) + len(test) == n_total
    assert len(test) == pytest.approx(0.25 * n_total, abs=10)
    assert not set(train.source_indices) & set(test.source_indices)
    for ds in (train, test):
        assert ds.task == "regression" and ds.classes is None and ds.num_classes is None
        assert ds.targets.dtype == np.float32 and ds.targets.shape == (len(ds), m)
        assert ds.num_outputs == m and len(ds.target_names) == m
        x, y = ds[3]
        assert x.dtype == torch.float32 and tuple(x.shape) == (3, 32, 32)
        assert y.dtype == torch.float32 and torch.equal(y, torch.from_numpy(ds.targets[3]))
        X, Y = ds.tensors()
        assert Y.dtype == torch.float32 and torch.equal(Y, torch.from_numpy(ds.targets))
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
        assert tuple(batch[1].shape) == (8, m)
        json.dumps(ds.spec)
    sub = train.subset([0, 5])
    assert sub.target_names == train.target_names
    np.testing.assert_array_equal(sub.targets, train.targets[[0, 5]])
    small = load_dataset(name, n=40, seed=3)
    assert len(small) == 40 and small.targets.shape == (40, m)


@pytest.mark.parametrize("name, gen_option", [("shape_keypoints", {"n_images": 200}),
                                              ("rotated_digits", {})])
def test_determinism(name, gen_option):
    a = load_dataset(name, seed=1, **gen_option)
    b = load_dataset(name, seed=1, **gen_option)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert torch.equal(a.images, b.images)
    c = load_dataset(name, seed=2, **gen_option)          # another split / order
    assert not np.array_equal(a.source_indices, c.source_indices)
    # content is fixed by gen_seed: same image -> same label whatever the split seed
    pos = {int(i): k for k, i in enumerate(c.source_indices)}
    shared = [k for k, i in enumerate(a.source_indices) if int(i) in pos]
    np.testing.assert_array_equal(a.targets[shared],
                                  c.targets[[pos[int(a.source_indices[k])] for k in shared]])
    d = load_dataset(name, seed=1, gen_seed=1, **gen_option)
    assert not np.allclose(a.targets, d.targets)
    # labels do not depend on the rendering size
    big = load_dataset(name, seed=1, image_size=64, **gen_option)
    np.testing.assert_array_equal(a.targets, big.targets)


def test_warp_points_matches_render():
    """A canonical dot rendered by synthetic._warp lands where warp_points says."""
    res, size = 64, (48, 48)
    c = (np.arange(res) + 0.5) / res * 2 - 1
    q = np.array([[0.5, -0.3]])                          # grid coordinates, y down
    dot = np.exp(-((c[None, :] - q[0, 0]) ** 2 + (c[:, None] - q[0, 1]) ** 2) / 0.005)
    canon = torch.from_numpy(dot.astype(np.float32))[None, None].repeat(3, 1, 1, 1)
    angle, scale, tx, ty = np.array([0.0, 1.0, -2.5]), np.array([1.0, 0.8, 0.6]), \
        np.array([0.0, 0.1, -0.2]), np.array([0.0, -0.1, 0.15])
    img = synthetic._warp(canon, angle, scale, tx, ty, size)[:, 0].numpy()
    where = warp_points(q, angle, scale, tx, ty)[:, 0]
    for k in range(3):
        ys, xs = np.mgrid[:size[0], :size[1]]
        w = img[k] / img[k].sum()
        centroid = np.array([((xs + 0.5) * w).sum() / size[1], ((ys + 0.5) * w).sum() / size[0]])
        np.testing.assert_allclose(centroid, where[k], atol=0.3 / size[0])
    # +90 degrees moves a point right of the centre to above it: counter-clockwise
    np.testing.assert_allclose(warp_points(np.array([[0.5, 0.0]]), [np.pi / 2], [1.0], [0.0],
                                           [0.0])[0, 0], [0.5, 0.25], atol=1e-12)


def _rerender_from_keypoints(kp_frac, size):
    """Fit the similarity that maps the canonical heart keypoints onto ``kp_frac`` and
    draw the heart with it; also return the fit's largest residual."""
    q = heart_keypoints()
    p = 2.0 * kp_frac - 1.0                              # fractions -> normalised coords
    design = np.c_[q, np.ones(len(q))]                   # p = q B^T + t
    coef, *_ = np.linalg.lstsq(design, p, rcond=None)
    B, t = coef[:2].T, coef[2]
    resid = np.abs(design @ coef - p).max()
    angle, scale = np.arctan2(B[0, 1], B[0, 0]), np.sqrt(abs(np.linalg.det(B)))
    res = synthetic._canonical_res((size, size))
    canon = torch.from_numpy(synthetic._shape_mask("heart", res, 0.0))[None, None]
    img = synthetic._warp(canon, [angle], [scale], [t[0]], [t[1]], (size, size))
    return img[0, 0].clamp(0, 1).numpy(), resid


def test_keypoints_match_pixels():
    """Re-rendering the heart at the labelled keypoints gives back the image; the
    labelled centre is the ink's intensity centroid (within a pixel)."""
    size = 64
    ds = load_dataset("shape_keypoints", split="all", n_images=60, image_size=size)
    X = ds.images[:, 0].numpy()                          # shift=0: white heart on black
    ys, xs = np.mgrid[:size, :size]
    px, py = (xs + 0.5) / size, (ys + 0.5) / size
    border = np.concatenate([X[:, 0], X[:, -1], X[:, :, 0], X[:, :, -1]], axis=1)
    inside = np.flatnonzero(border.max(1) < 1e-3)         # hearts that are not clipped
    assert len(inside) > 30
    for i in range(len(ds)):
        kp = ds.targets[i].reshape(5, 2).astype(np.float64)
        img, resid = _rerender_from_keypoints(kp, size)
        assert resid < 1e-5
        assert np.abs(img - X[i]).max() < 1e-3
        if i in inside:
            w = X[i] / X[i].sum()
            centroid = np.array([(px * w).sum(), (py * w).sum()])
            assert np.abs(centroid - kp[4]).max() < 1.0 / size
    # a wrong label (tip and notch swapped) is no similarity of the heart and draws
    # another image
    kp = ds.targets[0].reshape(5, 2).astype(np.float64)[[1, 0, 2, 3, 4]]
    img, resid = _rerender_from_keypoints(kp, size)
    assert resid > 0.05 and np.abs(img - X[0]).max() > 0.5


def test_heart_keypoints_geometry():
    kp = heart_keypoints()
    tip, notch, left, right, centre = kp
    assert tip[1] > centre[1] > notch[1] > left[1]         # y down: tip at the bottom
    assert tip[0] == pytest.approx(0, abs=1e-12) and notch[0] == pytest.approx(0, abs=1e-12)
    assert left[0] == pytest.approx(-right[0]) and left[1] == pytest.approx(right[1])


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_rotated_digits_rotate_back():
    """Undoing the labelled rotation and scale recovers the upright digit; undoing a
    rotation 25 degrees off does not."""
    ds = load_dataset("rotated_digits", split="all", n=60, seed=0, image_size=48)
    from transfer_nb.data import embedded
    base = embedded.digits_source()
    upright = synthetic._warp(base.images(ds.source_indices, None).float(),
                              np.zeros(len(ds)), np.ones(len(ds)), np.zeros(len(ds)),
                              np.zeros(len(ds)), (48, 48))[:, 0].numpy()
    angle = np.radians(rotation_angle(ds.targets))
    scale = ds.targets[:, 2].astype(np.float64)
    imgs = ds.images.float()
    zeros = np.zeros(len(ds))

    def undo(offset):
        return synthetic._warp(imgs, -(angle + offset), 1.0 / scale, zeros, zeros,
                               (48, 48))[:, 0].numpy()

    right, off = undo(0.0), undo(np.radians(25))
    c_right = np.array([_corr(right[i], upright[i]) for i in range(len(ds))])
    c_off = np.array([_corr(off[i], upright[i]) for i in range(len(ds))])
    assert np.median(c_right) > 0.95
    assert (c_right > c_off).mean() > 0.95
    np.testing.assert_allclose(ds.targets[:, 0] ** 2 + ds.targets[:, 1] ** 2, 1.0, atol=1e-6)
    assert np.abs(rotation_angle(ds.targets)).max() <= 60.0 + 1e-4


def test_rotated_digits_options():
    ds = load_dataset("rotated_digits", n=50, max_angle=10.0, min_scale=0.5, max_scale=0.5)
    assert np.abs(rotation_angle(ds.targets)).max() <= 10.0 + 1e-4
    np.testing.assert_allclose(ds.targets[:, 2], 0.5)
    for bad, match in [({"max_angle": 200}, "max_angle"), ({"max_angle": "x"}, "max_angle"),
                       ({"min_scale": 0.8, "max_scale": 0.5}, "min_scale"),
                       ({"min_scale": float("nan")}, "min_scale")]:
        with pytest.raises(ValueError, match=match):
            load_dataset("rotated_digits", **bad)
    with pytest.raises(ValueError, match="n_images"):
        load_dataset("shape_keypoints", n_images=1)
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("shape_keypoints", n_per_class=5)


def test_image_dataset_float_targets():
    imgs = torch.zeros(4, 1, 8, 8)
    ds = ImageDataset(imgs, np.arange(4.0), None)
    assert ds.targets.shape == (4, 1) and ds.target_names == ["y0"]
    assert ds[2][1].tolist() == [2.0] and ds.num_outputs == 1
    assert "targets=['y0']" in repr(ds)
    with pytest.raises(ValueError, match="regression set"):
        ds.class_counts()
    with pytest.raises(ValueError, match="NaN"):
        ImageDataset(imgs, [0.0, np.nan, 1.0, 2.0], None)
    with pytest.raises(ValueError, match="target_names"):
        ImageDataset(imgs, np.zeros((4, 2)), None, target_names=["a"])
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, m\)"):
        ImageDataset(imgs, np.zeros((4, 2, 2)), None)
    with pytest.raises(ValueError, match="4 images but 3 targets"):
        ImageDataset(imgs, np.zeros((3, 2)), None)
    # classification unchanged: int labels, class names, num_outputs = classes
    cl = ImageDataset(imgs, [0, 1, 1, 0], ["a", "b"])
    assert cl.task == "classification" and cl.target_names is None
    assert cl.targets.dtype == np.int64 and cl.num_outputs == cl.num_classes == 2
