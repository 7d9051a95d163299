"""Differences between groups of targets (re-exported by :mod:`transfer_nb.stats`)."""
from __future__ import annotations

import numpy as np

from transfer_nb._batched_stats import _percentile

__all__ = ["group_difference"]


def group_difference(values, in_a, n_boot: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """Mean over group A's targets minus mean over group B's, resampling targets and seeds.

    "The effect is larger on far targets than on near ones" is a claim about targets, not
    about one target: each bootstrap resample draws targets with replacement within each
    group *and* seeds with replacement (the same seeds for every target: a seed pairs
    the methods on all targets), so the interval counts both sources of noise.

    Parameters
    ----------
    values : array-like, shape (n_targets, n_seeds)
        The per-seed quantity of each target (e.g. accuracy(A) - accuracy(B)).
    in_a : array-like of bool, shape (n_targets,)
        Which targets form group A (the others form B).

    Returns
    -------
    dict
        ``estimate``, ``low``, ``high``, ``n_a``, ``n_b``, ``n_seeds``; ``nan`` estimates
        when a group has no target.
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.asarray(in_a, dtype=bool).ravel()
    if v.ndim != 2 or v.shape[0] != a.size:
        raise ValueError(f"values must be (n_targets, n_seeds) with one in_a flag per "
                         f"target: got values {v.shape} and {a.size} flags")
    ia, ib = np.flatnonzero(a), np.flatnonzero(~a)
    out = {"n_a": int(ia.size), "n_b": int(ib.size), "n_seeds": int(v.shape[1])}
    if not ia.size or not ib.size:
        return {**out, "estimate": np.nan, "low": np.nan, "high": np.nan}
    rng = np.random.default_rng(seed)
    s = rng.integers(0, v.shape[1], size=(n_boot, v.shape[1]))
    ra = ia[rng.integers(0, ia.size, size=(n_boot, ia.size))]
    rb = ib[rng.integers(0, ib.size, size=(n_boot, ib.size))]
    # mean over resampled targets of the mean over resampled seeds
    boot_a = np.array([v[ra[k]][:, s[k]].mean() for k in range(n_boot)])
    boot_b = np.array([v[rb[k]][:, s[k]].mean() for k in range(n_boot)])
    low, high = _percentile(boot_a - boot_b, confidence)
    return {**out, "estimate": float(v[ia].mean() - v[ib].mean()), "low": low, "high": high}
