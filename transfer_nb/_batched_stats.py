"""Batched correlation kernels for :mod:`transfer_nb.stats`: Pearson, Kendall tau-b and
scipy's weighted tau of every row pair of two ``(B, n)`` arrays at once (pairwise sign
matrices), so a bootstrap of 1000 resamples is one call."""
from __future__ import annotations

import numpy as np

def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every row pair of ``x`` and ``y`` (shape (B, n)); nan if constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx = np.einsum("bi,bi->b", xc, xc)
    syy = np.einsum("bi,bi->b", yc, yc)
    sxy = np.einsum("bi,bi->b", xc, yc)
    # a row is constant when its spread is at rounding level of its values
    scale_x = np.maximum(np.abs(x).max(axis=1), 1e-300) ** 2 * x.shape[1] * 1e-24
    scale_y = np.maximum(np.abs(y).max(axis=1), 1e-300) ** 2 * y.shape[1] * 1e-24
    ok = (sxx > scale_x) & (syy > scale_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, sxy / np.sqrt(sxx * syy), np.nan)
    return np.clip(r, -1.0, 1.0)


def _tau(sx: np.ndarray, sy: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Tau-b from pair signs ``sx, sy`` (B, P) and optional pair weights ``w`` (B, P)."""
    prod = sx * sy
    if w is None:
        num, dx, dy = prod.sum(axis=1), np.abs(sx).sum(axis=1), np.abs(sy).sum(axis=1)
    else:
        num = (w * prod).sum(axis=1)
        dx, dy = (w * np.abs(sx)).sum(axis=1), (w * np.abs(sy)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where((dx > 0) & (dy > 0), num / np.sqrt(dx * dy), np.nan)
    return np.clip(t, -1.0, 1.0)


def _pair_weights(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Additive hyperbolic weights ``1/(r_i+1) + 1/(r_j+1)`` of every pair, where ``r`` is
    the rank by decreasing lexicographic order of ``(a, b)`` (scipy's rule, ties in both
    broken by position exactly as :func:`scipy.stats.weightedtau` does)."""
    B, n = a.shape
    perm = np.lexsort((b, a), axis=-1)[:, ::-1]          # decreasing (a, b)
    rank = np.empty_like(perm)
    np.put_along_axis(rank, perm, np.broadcast_to(np.arange(n), (B, n)), axis=1)
    w = 1.0 / (rank + 1.0)
    return w[:, i] + w[:, j]


def _all_stats(x: np.ndarray, y: np.ndarray) -> dict:
    """Pearson, Kendall tau-b and weighted tau of each row pair of (B, n) arrays."""
    n = x.shape[1]
    i, j = np.triu_indices(n, k=1)
    sx = np.sign(x[:, i] - x[:, j])
    sy = np.sign(y[:, i] - y[:, j])
    # scipy's default (rank=True): mean of the tau ranked by (x, y) and by (y, x)
    wt = 0.5 * (_tau(sx, sy, _pair_weights(x, y, i, j)) + _tau(sx, sy, _pair_weights(y, x, i, j)))
    return {"pearson": _pearson(x, y), "kendall": _tau(sx, sy), "weighted_tau": wt}


