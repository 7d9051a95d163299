"""Toy labelled point clouds whose class geometry is explicit.

:func:`make_gaussian_classes` -- ``k`` isotropic Gaussian classes with a chosen
separation and spread, to see how the coding-rate terms (and every estimator) react.
Numpy only.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import check_scalar

__all__ = ["make_gaussian_classes"]


def make_gaussian_classes(n: int = 300, k: int = 3, dim: int = 2, separation: float = 2.0,
                          spread: float = 1.0, seed: int = 0):
    """Sample ``k`` isotropic Gaussian classes whose means are ``separation`` apart.

    Parameters
    ----------
    n : int
        Total number of points (split as evenly as possible over the classes,
        every class gets at least one point).
    k : int
        Number of classes (>= 1).
    dim : int
        Dimension of the points (>= 1).
    separation : float
        Distance between neighbouring class means.  The means sit on a regular
        ``k``-gon in the first two coordinates (on a line when ``dim == 1``), so every
        pair of neighbouring classes is exactly ``separation`` apart and the geometry
        does not change with ``dim``.
    spread : float
        Standard deviation of every coordinate inside a class.
    seed : int
        Seed of the random generator (same seed, same points).

    Returns
    -------
    Z : numpy.ndarray, shape (n, dim), float64
    y : numpy.ndarray, shape (n,), int64
        Class labels ``0 .. k-1``, grouped by class.
    """
    n = check_scalar(n, "n", int, min_val=1)
    k = check_scalar(k, "k", int, min_val=1)
    dim = check_scalar(dim, "dim", int, min_val=1)
    separation = check_scalar(separation, "separation", float, min_val=0)
    spread = check_scalar(spread, "spread", float, min_val=0)
    if n < k:
        raise ValueError(f"n ({n}) must be at least the number of classes k ({k})")
    rng = np.random.default_rng(seed)
    means = np.zeros((k, dim))
    if k > 1:
        if dim == 1:
            means[:, 0] = separation * (np.arange(k) - (k - 1) / 2)
        else:
            # Radius of the regular k-gon whose side is `separation` (k == 2: a segment).
            radius = separation / (2 * np.sin(np.pi / k))
            angles = 2 * np.pi * np.arange(k) / k
            means[:, 0] = radius * np.cos(angles)
            means[:, 1] = radius * np.sin(angles)
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    y = np.repeat(np.arange(k, dtype=np.int64), sizes)
    Z = means[y] + spread * rng.standard_normal((n, dim))
    return Z, y
