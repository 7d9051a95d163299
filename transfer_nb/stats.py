"""Correlation between transferability scores and ground truth, with uncertainty.

The one place of the library that correlates scores with accuracies:

* :func:`rank_correlations` -- Pearson r, Kendall tau (tau-b) and weighted tau (the
  hyperbolic weighted tau of :func:`scipy.stats.weightedtau`, as the TransRate paper
  reports), each with a 95 % percentile bootstrap interval (resampling the items: models
  or layers) and a two-sided permutation p-value.
* :func:`interval_verdict` -- "reproduced" / "not reproduced" / "inconclusive" from an
  interval and a threshold: the interval decides, not the point estimate.

With 10-30 items the bootstrap intervals are wide; reading them instead of the point
estimate is the point of this module.  All three statistics are computed for a whole
batch of resamples at once (pairwise sign matrices), so one call with 1000 resamples
takes a few milliseconds per score.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

__all__ = ["rank_correlations", "interval_verdict", "discrimination", "accuracy_se", "mean_interval",
           "STATISTICS", "CEILING", "N_SE"]

#: DESIGN's standard: a target discriminates when the models' ground truth spreads over at
#: least N_SE standard errors of a single measurement and none reaches CEILING
CEILING, N_SE = 0.97, 3.0

#: the statistics of :func:`rank_correlations`, in column order
STATISTICS = ("pearson", "kendall", "weighted_tau")

_COLUMNS = [f"{s}{suffix}" for s in STATISTICS for suffix in ("", "_low", "_high", "_p")] + ["n"]


# --------------------------------------------------------------- batched statistics
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


# ------------------------------------------------------------------------ public
def _as_columns(scores) -> dict:
    """``{name: 1-D float array}`` from a mapping, a DataFrame, a Series or one array."""
    if hasattr(scores, "columns") and hasattr(scores, "to_numpy"):        # DataFrame
        return {str(c): np.asarray(scores[c], dtype=np.float64) for c in scores.columns}
    if isinstance(scores, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    name = getattr(scores, "name", None)                                  # Series / array
    return {str(name) if name is not None else "score": np.asarray(scores, dtype=np.float64)}


def rank_correlations(scores, truth, n_boot: int = 1000, seed: int = 0):
    """Pearson, Kendall tau and weighted tau of each score against the ground truth.

    Parameters
    ----------
    scores : mapping name -> array-like, pandas.DataFrame, or one array-like
        One score per item (model or layer) for each estimator; a DataFrame's columns
        are the estimators; a single array (or Series) is one score.
    truth : array-like, shape (n,)
        The ground truth of the same items (e.g. fine-tuned accuracy).
    n_boot : int
        Bootstrap resamples for the intervals, and permutations for the p-values.
    seed : int
        Seeds the resamples and permutations (every score uses the same ones, so two
        scores' intervals are paired).

    Returns
    -------
    pandas.DataFrame
        Index: score names.  Columns ``pearson, pearson_low, pearson_high, pearson_p``,
        the same for ``kendall`` (tau-b) and ``weighted_tau`` (scipy's hyperbolic
        weighted tau), and ``n`` (items used).  ``*_low`` / ``*_high``: 95 % percentile
        bootstrap interval over resampled items (resamples where the statistic is
        undefined, e.g. all items equal, are skipped).  ``*_p``: two-sided permutation
        p-value ``(1 + #{|stat_perm| >= |stat|}) / (1 + n_boot)`` with the truth
        permuted.  Items where the score or the truth is not finite are dropped.
        Everything is ``nan`` (with a warning saying why) for a score with fewer than
        3 usable items or a constant score or truth.

    Raises
    ------
    ValueError
        Lengths differ, ``scores`` is empty or ``n_boot`` is not a positive integer.
    """
    import pandas as pd

    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    n_boot = int(n_boot)
    columns = _as_columns(scores)
    if not columns:
        raise ValueError("scores is empty: pass at least one score")
    truth = np.asarray(truth, dtype=np.float64).ravel()
    rows = {}
    for name, x in columns.items():
        x = x.ravel()
        if x.shape != truth.shape:
            raise ValueError(f"score {name!r} has {x.size} values but truth has {truth.size}")
        rows[name] = _one_score(name, x, truth, n_boot, seed)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS)
    out["n"] = out["n"].astype(int)
    out.index.name = "score"
    return out


def _one_score(name: str, x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict:
    row = dict.fromkeys(_COLUMNS, np.nan)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = row["n"] = int(x.size)
    why = None
    if n < 3:
        why = f"only {n} items with a finite score and truth (need at least 3)"
    elif np.ptp(x) == 0:
        why = "the score is constant"
    elif np.ptp(y) == 0:
        why = "the truth is constant"
    if why is not None:
        warnings.warn(f"rank_correlations: {name!r}: {why}; its correlations are nan",
                      RuntimeWarning, stacklevel=3)
        return row
    obs = _all_stats(x[None, :], y[None, :])
    # one generator per call: the same resamples and permutations for every score
    rng = np.random.default_rng([int(seed), 0xC0AA])
    idx = rng.integers(0, n, size=(n_boot, n))
    perm = rng.permuted(np.broadcast_to(np.arange(n), (n_boot, n)), axis=1)
    boot = _all_stats(x[idx], y[idx])
    null = _all_stats(np.broadcast_to(x, (n_boot, n)), y[perm])
    for stat in STATISTICS:
        value = float(obs[stat][0])
        row[stat] = value
        b = boot[stat][np.isfinite(boot[stat])]
        if b.size:
            row[f"{stat}_low"], row[f"{stat}_high"] = (float(v) for v in
                                                       np.percentile(b, [2.5, 97.5]))
        if np.isfinite(value):
            extreme = np.abs(null[stat]) >= abs(value) - 1e-12
            row[f"{stat}_p"] = float((1 + np.count_nonzero(extreme)) / (1 + n_boot))
    return row


def interval_verdict(low, high, threshold: float) -> str:
    """Decide a claim "the statistic exceeds ``threshold``" from an interval.

    Returns ``"reproduced"`` when the whole interval is above the threshold (``low >
    threshold``), ``"not reproduced"`` when it is entirely below (``high < threshold``)
    and ``"inconclusive"`` when it straddles it or is undefined (nan).
    """
    low, high, threshold = float(low), float(high), float(threshold)
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if low > threshold:
        return "reproduced"
    if high < threshold:
        return "not reproduced"
    return "inconclusive"


def accuracy_se(p: float, n_test: int) -> float:
    """Standard error of one accuracy ``p`` measured on ``n_test`` items (binomial)."""
    return float(np.sqrt(max(p * (1 - p), 1e-12) / n_test))


def discrimination(values, se: float, top: float | None = None, ceiling: float = CEILING,
                   n_se: float = N_SE) -> dict:
    """Does a ground truth tell the models apart?  The project's one rule.

    Parameters
    ----------
    values : array-like
        The models' ground truth on one target (e.g. seed-mean accuracies).
    se : float
        Standard error of a single measurement (:func:`accuracy_se` for accuracies).
    top : float, optional
        The value compared with ``ceiling`` (default ``max(values)``; e.g. an R^2 for
        regression, or the best of transfer and scratch accuracy).
    ceiling, n_se : float
        A target passes when ``max - min >= n_se * se`` and ``top < ceiling``.

    Returns
    -------
    dict
        ``spread``, ``se``, ``spread_in_se``, ``passes`` (bool) and ``reason`` (plain
        words; ``""`` when it passes).
    """
    v = np.asarray(values, dtype=np.float64)
    spread = float(v.max() - v.min())
    top = float(v.max() if top is None else top)
    reasons = []
    if spread < n_se * se:
        reasons.append(f"spread {spread:.3f} < {n_se:g} SE ({n_se * se:.3f})")
    if top >= ceiling:
        reasons.append(f"a model reaches {top:.3f} >= {ceiling:g}")
    return {"spread": spread, "se": float(se),
            "spread_in_se": spread / se if se > 0 else float("inf"),
            "passes": not reasons, "reason": "; ".join(reasons)}


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean over seeds: ``(mean, low, high)``.

    Non-finite values are dropped; fewer than two values give ``(mean, nan, nan)``.
    """
    from scipy import stats as st

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(st.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half

