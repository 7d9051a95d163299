"""Embedded regression data sets with exact continuous labels: ``shape_keypoints`` and
``rotated_digits``.

Both apply a random, *known* affine transform to a canonical drawing with the warp of
:mod:`transfer_nb.data.synthetic`, so their labels are exact functions of the
transform, not annotations:

* ``shape_keypoints`` -- a heart (the one shape of :data:`synthetic.SHAPE_CLASSES`
  without rotational symmetry, so every keypoint is identifiable from the image)
  under any rotation, scale 0.55 .. 0.9 and shift +-15%, drawn by
  :class:`synthetic.ShapeSource` (its ``shift``/``color``/``texture``/``noise``/``fill``
  domain shifts included).  Targets: ``(x, y)`` of 5 keypoints -- the bottom tip, the
  notch between the lobes, the top of the left and of the right lobe (left/right of
  the upright heart) and the centre (area centroid of the solid heart): 10 outputs.
* ``rotated_digits`` -- each of scikit-learn's 1797 handwritten digits, rotated by a
  random angle in ``[-max_angle, max_angle]`` degrees (counter-clockwise on screen is
  positive) and scaled so that its 8x8 box spans ``min_scale .. max_scale`` of the
  image side, centred.  Targets: ``(cos(angle), sin(angle), scale)``: 3 outputs.  The
  default ``max_angle=60`` stays well below 90 degrees, so that a 6 never looks like
  a 9 and the angle is a function of the image.

Coordinates are fractions of the image, origin at the top-left corner, ``x`` to the
right and ``y`` down: the pixel centre of column ``j`` is at ``x = (j + 0.5) / w``.
They do not depend on ``image_size`` (the same image rendered at 32 or 224 px has
the same labels).

Sources here have float32 ``targets`` of shape ``(n, m)``, ``classes = None``,
``target_names`` and ``strata`` (integer groups the train/test split stratifies on:
the digit for ``rotated_digits``, one group for ``shape_keypoints``).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from transfer_nb.data import embedded, synthetic

__all__ = ["ShapeKeypointSource", "RotatedDigitSource", "KEYPOINT_NAMES",
           "ROTATION_TARGETS", "heart_keypoints", "keypoint_target_names", "warp_points",
           "rotation_angle"]

KEYPOINT_NAMES = ("tip", "notch", "left_lobe", "right_lobe", "centre")
ROTATION_TARGETS = ("cos", "sin", "scale")


def keypoint_target_names() -> tuple[str, ...]:
    """``("tip_x", "tip_y", "notch_x", ...)``: the column names of ``shape_keypoints``."""
    return tuple(f"{k}_{c}" for k in KEYPOINT_NAMES for c in "xy")


@functools.lru_cache(maxsize=1)
def heart_keypoints() -> np.ndarray:
    """Keypoints of the canonical heart as ``(5, 2)`` grid coordinates in ``[-1, 1]``.

    Grid coordinates are those of ``grid_sample`` (``y`` down); the heart outline of
    :mod:`synthetic` has ``y`` up, hence the sign flip.  Rows follow
    :data:`KEYPOINT_NAMES`; each is a vertex of the polygon that is rasterised (the
    tip at parameter pi, the notch at 0, the highest vertex on each side), except the
    centre: the polygon's area centroid (shoelace formula).
    """
    pts = synthetic._polygon("heart")                     # (128, 2), y up
    x, y = pts[:, 0], pts[:, 1]
    tip = pts[len(pts) // 2]                              # t = pi: the bottom point
    notch = pts[0]                                        # t = 0: the dip between lobes
    left = pts[np.flatnonzero(x < 0)[np.argmax(y[x < 0])]]
    right = pts[np.flatnonzero(x > 0)[np.argmax(y[x > 0])]]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    centre = np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * area)
    kp = np.stack([tip, notch, left, right, centre]).astype(np.float64)
    kp[:, 1] *= -1.0
    return kp


def warp_points(points: np.ndarray, angle, scale, tx, ty) -> np.ndarray:
    """Where ``synthetic._warp`` puts canonical grid ``points``, as image fractions.

    ``_warp`` samples the canonical drawing at ``q = R(angle) (p - t) / scale`` for each
    output point ``p`` (normalised coordinates); a canonical point ``q`` therefore lands at
    ``p = scale * R(angle)^T q + t``.  Returns ``(n, k, 2)`` fractions ``(p + 1) / 2``.
    """
    a = np.asarray(angle, dtype=np.float64)[:, None]
    s = np.asarray(scale, dtype=np.float64)[:, None]
    c, sn = np.cos(a), np.sin(a)
    qx, qy = points[None, :, 0], points[None, :, 1]
    px = s * (c * qx + sn * qy) + np.asarray(tx, dtype=np.float64)[:, None]
    py = s * (-sn * qx + c * qy) + np.asarray(ty, dtype=np.float64)[:, None]
    return (np.stack([px, py], axis=-1) + 1.0) / 2.0


class ShapeKeypointSource:
    """Hearts under a random affine transform, labelled with 5 keypoints (10 outputs).

    Pixels come from :class:`synthetic.ShapeSource` with the single class ``"heart"``
    (same geometry jitter and domain-shift options); the labels are its per-image
    transform applied to :func:`heart_keypoints`.
    """

    def __init__(self, n_images: int, shift: float, color, texture, noise, fill,
                 gen_seed: int, size: int = 32):
        self._shapes = synthetic.ShapeSource(("heart",), int(n_images), shift, color, texture,
                                             noise, fill, gen_seed, size)
        self.native_size = self._shapes.native_size
        self.classes = None
        self.target_names = list(keypoint_target_names())
        sh = self._shapes
        kp = warp_points(heart_keypoints(), sh._angle, sh._scale, sh._tx, sh._ty)
        self.targets = kp.reshape(len(sh._angle), -1).astype(np.float32)
        self.strata = np.zeros(len(self.targets), dtype=np.int64)

    def images(self, indices, size=None) -> torch.Tensor:
        return self._shapes.images(indices, size)


class RotatedDigitSource:
    """scikit-learn's digits rotated and scaled about the image centre.

    Targets ``(cos(angle), sin(angle), scale)``: ``angle`` uniform in
    ``[-max_angle, max_angle]`` degrees, counter-clockwise on screen; ``scale`` uniform
    in ``[min_scale, max_scale]``, the side of the digit's 8x8 box as a fraction of the
    image side.  Image ``i`` is digit ``i`` of ``load_digits`` (``strata`` = its class).
    """

    def __init__(self, max_angle: float, min_scale: float, max_scale: float, gen_seed: int,
                 size: int = 32):
        base = embedded.digits_source()
        self._digits = base.images(np.arange(len(base.targets)), None).float()  # (n,1,8,8)
        n = len(base.targets)
        rng = np.random.default_rng([int(gen_seed), 0x807])
        self._angle = np.deg2rad(rng.uniform(-max_angle, max_angle, n))
        self._scale = rng.uniform(min_scale, max_scale, n)
        self.native_size = (int(size), int(size))
        self.classes = None
        self.target_names = list(ROTATION_TARGETS)
        self.targets = np.stack([np.cos(self._angle), np.sin(self._angle), self._scale],
                                axis=1).astype(np.float32)
        self.strata = np.asarray(base.targets, dtype=np.int64)

    def images(self, indices, size=None) -> torch.Tensor:
        size = tuple(size) if size is not None else self.native_size
        idx = np.asarray(indices, dtype=np.int64)
        zeros = np.zeros(len(idx))
        out = []
        step = synthetic._render_chunk_size(*size)
        for s in range(0, len(idx), step):
            j = idx[s:s + step]
            out.append(synthetic._warp(self._digits[torch.from_numpy(j)], self._angle[j],
                                       self._scale[j], zeros[:len(j)], zeros[:len(j)],
                                       size).clamp_(0, 1))
        return torch.cat(out) if out else torch.zeros((0, 1, *size))


def rotation_angle(targets) -> np.ndarray:
    """Angles in degrees from ``rotated_digits`` targets (``atan2(sin, cos)``)."""
    t = np.asarray(targets, dtype=np.float64)
    return np.degrees(np.arctan2(t[:, 1], t[:, 0]))


