"""Batched correlation kernels for :mod:`transfer_nb.stats`: Pearson, Kendall tau-b and
scipy's weighted tau of every row pair of two ``(B, n)`` arrays at once (pairwise sign
matrices), so a bootstrap of 1000 resamples is one call."""
from __future__ import annotations

import numpy as np

from transfer_nb.stats._inputs import usable_groups

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
        raise ValueError(f"groups has {g.size} values but truth has {truth.size}; expected "
                         "one group label per item")
    if g.size == 0:
        return []
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


def _few_distinct(idx: np.ndarray) -> np.ndarray:
    """Which resamples (rows of item indices) hold fewer than 3 distinct items: their
    correlation is +-1 (two points lie on a line) or undefined by construction."""
    if idx.shape[1] < 3:
        return np.ones(idx.shape[0], dtype=bool)
    s = np.sort(idx, axis=1)
    return (np.diff(s, axis=1) != 0).sum(axis=1) < 2


def _pooled_from(scores: list, truth: np.ndarray, members: list, resamples: list,
                 use: list, method: str):
    """Observed pooled statistic (one per score), its bootstrap draws (scores x B) and the
    per-group values, over the groups flagged in ``use``.

    A resample in which any used group holds fewer than 3 distinct items is dropped (nan
    for every score): its correlation there is +-1 or undefined by construction, not a
    measurement, and its Fisher z would swamp the average.  Returns also the number of
    resamples dropped so.
    """
    n_boot = resamples[0].shape[0] if resamples else 0
    per_group = np.full((len(scores), len(members)), np.nan)
    boots = np.full((len(scores), n_boot, len(members)), np.nan)
    degenerate = np.zeros(n_boot, dtype=bool)
    for k, (m, idx) in enumerate(zip(members, resamples)):
        if not use[k]:
            continue
        degenerate |= _few_distinct(idx)
        for s, x in enumerate(scores):
            per_group[s, k] = _one_stat(x[m][None, :], truth[m][None, :], method)[0]
            boots[s, :, k] = _one_stat(x[idx], truth[idx], method)
    boots[:, degenerate, :] = np.nan
    return _pool(per_group, method), _pool(boots, method), per_group, int(degenerate.sum())


# ------------------------------------------------- the rules' shared core
def _grouping(truth: np.ndarray, g) -> tuple[list, list, list, str]:
    """``(members, labels, use, note)``: the items of each group, its label, whether it
    reaches :data:`MIN_GROUP_ITEMS`, and the plain-words note on the ones that do not."""
    members = _groups_of(truth, g)
    labels = ["all"] if g is None else [str(g[m[0]]) for m in members]
    used, note = usable_groups({lab: m.size for lab, m in zip(labels, members)})
    return members, labels, [lab in used for lab in labels], note


def _pooled_interval(xs: list, truth: np.ndarray, members: list, use: list, method: str,
                     n_boot: int, seed: int, confidence: float, diff: bool = False) -> dict:
    """Pooled statistic(s) over the used groups with their bootstrap interval: of the one
    score, or of ``xs[0] - xs[1]`` on the same resamples when ``diff``."""
    resamples = _within_resamples(members, n_boot, seed)
    obs, boot, per_group, dropped = _pooled_from(xs, truth, members, resamples, use, method)
    low, high = _percentile(boot[0] - boot[1] if diff else boot[0], confidence)
    est = float(obs[0] - obs[1]) if diff else float(obs[0])
    return {"estimate": est, "low": low, "high": high, "obs": obs, "per_group": per_group,
            "n_resamples": int(n_boot - dropped)}


def _note(*parts) -> str:
    return "; ".join(p for p in parts if p)


def _dropped_note(n_dropped: int) -> str:
    return (f"{n_dropped} item(s) without a finite score and truth left out"
            if n_dropped else "")


def _constant_note(labels, use, per_group: np.ndarray) -> str:
    flat = [lab for lab, u, v in zip(labels, use, per_group) if u and not np.isfinite(v)]
    if not flat:
        return ""
    where = "" if labels == ["all"] else f" within {', '.join(flat)}"
    return f"correlation undefined (score or truth constant){where}: left out"


def _loo_values(x, truth, members, use, method) -> np.ndarray:
    """The pooled statistic with each item of a used group left out once (the groups used
    stay those of the full data)."""
    values = []
    for k, m in enumerate(members):
        if not use[k]:
            continue
        for i in m:
            per = []
            for j, mj in enumerate(members):
                if not use[j]:
                    continue
                mm = mj[mj != i]
                per.append(_one_stat(x[mm][None, :], truth[mm][None, :], method)[0])
            values.append(float(_pool(np.asarray(per), method)))
    return np.asarray(values, dtype=np.float64)
