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


def _rank_stats(x: np.ndarray, y: np.ndarray, methods=("kendall", "weighted_tau")) -> dict:
    """Kendall tau-b and/or weighted tau of each row pair of (B, n) arrays (one set of
    pair signs shared by both)."""
    n = x.shape[1]
    i, j = np.triu_indices(n, k=1)
    sx = np.sign(x[:, i] - x[:, j])
    sy = np.sign(y[:, i] - y[:, j])
    out = {}
    if "kendall" in methods:
        out["kendall"] = _tau(sx, sy)
    if "weighted_tau" in methods:
        # scipy's default (rank=True): mean of the tau ranked by (x, y) and by (y, x)
        out["weighted_tau"] = 0.5 * (_tau(sx, sy, _pair_weights(x, y, i, j)) +
                                     _tau(sx, sy, _pair_weights(y, x, i, j)))
    return out


def _all_stats(x: np.ndarray, y: np.ndarray) -> dict:
    """Pearson, Kendall tau-b and weighted tau of each row pair of (B, n) arrays."""
    return {"pearson": _pearson(x, y), **_rank_stats(x, y)}


def _one_stat(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """One statistic of each row pair: Pearson skips the O(n^2) pair matrices, which
    dominate the leave-one-out and fragile checks' many bootstraps."""
    if method == "pearson":
        return _pearson(x, y)
    return _rank_stats(x, y, (method,))[method]




# ------------------------------------------------- grouping and resampling helpers
_FISHER_CLIP = 1 - 1e-9

def _pool(values: np.ndarray, method: str) -> np.ndarray:
    """Average per-group statistics (last axis): Fisher-z for Pearson, plain mean else."""
    import warnings
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-nan groups -> nan, said upstream
        if method == "pearson":
            return np.tanh(np.nanmean(np.arctanh(np.clip(values, -_FISHER_CLIP, _FISHER_CLIP)),
                                      axis=-1))
        return np.nanmean(values, axis=-1)


def _groups_of(truth: np.ndarray, groups) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(truth.size)]
    g = np.asarray(groups).ravel()
    if g.size != truth.size:
        raise ValueError(f"groups has {g.size} values but truth has {truth.size}")
    _, codes = np.unique(g.astype(str), return_inverse=True)
    return [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]


def _within_resamples(members: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Bootstrap indices per group (items resampled within their own group)."""
    rng = np.random.default_rng([int(seed), 0xB007])
    return [m[rng.integers(0, m.size, size=(n_boot, m.size))] for m in members]


def _percentile(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    d = draws[np.isfinite(draws)]
    if d.size == 0:
        return float("nan"), float("nan")
    a = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(d, [a, 100 - a])
    return float(lo), float(hi)


def _prepare(truth, *scores):
    truth = np.asarray(truth, dtype=np.float64).ravel()
    out = []
    for name, x in scores:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.shape != truth.shape:
            raise ValueError(f"{name} has {x.size} values but truth has {truth.size}")
        out.append(x)
    return truth, out
