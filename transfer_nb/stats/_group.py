"""Differences between groups of targets, paired claims over targets with each target
left out once, and the within-group permutation test (re-exported by
:mod:`transfer_nb.stats`)."""
from __future__ import annotations

import numpy as np

from transfer_nb.stats._batched import _grouping, _one_stat, _percentile, _pool
from transfer_nb.stats._inputs import MIN_GROUP_ITEMS, check_rule_args, numeric, rule_items

__all__ = ["group_difference", "pooled_within_permutation", "paired_over_targets"]


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
        ``estimate``, ``low``, ``high``, ``n_a``, ``n_b``, ``n_seeds``, ``n_dropped``
        (targets left out because a seed's value is not finite: a seed pairs the
        methods on every target, so a target is used with all its seeds or not at all)
        and ``note``; ``nan`` estimates when a group has no target ("too few items").
    """
    check_rule_args(n_boot, confidence, seed)
    raw = np.asarray(values)
    v = numeric(raw, "values").reshape(raw.shape)
    a = np.asarray(in_a).ravel()
    if a.dtype.kind != "b":
        raise ValueError(f"in_a must hold True/False per target, got {a.dtype} values")
    if v.ndim != 2 or v.shape[0] != a.size:
        raise ValueError(f"values must be (n_targets, n_seeds) with one in_a flag per "
                         f"target: got values {v.shape} and {a.size} flags")
    ok = np.isfinite(v).all(axis=1)
    n_dropped = int((~ok).sum())
    ia, ib = np.flatnonzero(a & ok), np.flatnonzero(~a & ok)
    note = (f"{n_dropped} target(s) with a missing value left out" if n_dropped else "")
    out = {"n_a": int(ia.size), "n_b": int(ib.size), "n_seeds": int(v.shape[1]),
           "n_dropped": n_dropped}
    if not ia.size or not ib.size:
        why = "too few items: group " + ("A" if not ia.size else "B") + " has no target"
        return {**out, "estimate": np.nan, "low": np.nan, "high": np.nan,
                "note": "; ".join(p for p in (note, why) if p)}
    rng = np.random.default_rng(seed)
    s = rng.integers(0, v.shape[1], size=(n_boot, v.shape[1]))
    ra = ia[rng.integers(0, ia.size, size=(n_boot, ia.size))]
    rb = ib[rng.integers(0, ib.size, size=(n_boot, ib.size))]
    # mean over resampled targets of the mean over resampled seeds
    boot_a = np.array([v[ra[k]][:, s[k]].mean() for k in range(n_boot)])
    boot_b = np.array([v[rb[k]][:, s[k]].mean() for k in range(n_boot)])
    low, high = _percentile(boot_a - boot_b, confidence)
    return {**out, "estimate": float(v[ia].mean() - v[ib].mean()), "low": low, "high": high,
            "note": note}


def pooled_within_permutation(scores, truth, groups, method: str = "kendall",
                              n_perm: int = 1000, seed: int = 0) -> dict:
    """Permutation test of :func:`pooled_within`: scores shuffled *within* each group.

    Null: inside every group the score says nothing about which item is better.
    Between-group differences are kept intact, so they cannot produce a small p-value.
    Items and groups as in :func:`pooled_within` (missing values dropped, groups of at
    least :data:`MIN_GROUP_ITEMS` items).

    Returns ``{"estimate": observed pooled statistic, "p": two-sided
    (1 + #{|null| >= |observed|}) / (1 + n_perm), "n_perm", "n_dropped"}``.

    Raises
    ------
    ValueError
        No group holds :data:`MIN_GROUP_ITEMS` items ("too few items").
    """
    methods = ["pearson", "kendall", "weighted_tau"]
    if method not in methods:
        raise ValueError(f"method must be one of {methods}, got {method!r}")
    check_rule_args(n_perm, None, seed, n_name="n_perm")
    truth, (x,), g, n_dropped = rule_items(truth, ("scores", scores), groups=groups)
    all_members, _, use, note = _grouping(truth, g)
    members = [m for m, u in zip(all_members, use) if u]
    if not members:
        raise ValueError(f"{note or 'too few items: no item'}; a within-group permutation "
                         f"test needs a group of {MIN_GROUP_ITEMS}")
    rng = np.random.default_rng([int(seed), 0x9E47])
    obs = np.full(len(members), np.nan)
    null = np.full((int(n_perm), len(members)), np.nan)
    for k, m in enumerate(members):
        obs[k] = _one_stat(x[m][None, :], truth[m][None, :], method)[0]
        shuffled = x[m][rng.permuted(np.tile(np.arange(m.size), (int(n_perm), 1)), axis=1)]
        null[:, k] = _one_stat(shuffled, np.broadcast_to(truth[m], shuffled.shape), method)
    est, draws = float(_pool(obs, method)), _pool(null, method)
    p = (1 + np.sum(np.abs(draws) >= abs(est) - 1e-12)) / (1 + int(n_perm))
    return {"estimate": est, "p": float(p), "n_perm": int(n_perm), "n_dropped": n_dropped}


def _per_seed(v: np.ndarray, in_a, keep: np.ndarray) -> np.ndarray:
    """Per seed: mean over the kept targets (or mean over kept A minus mean over kept B)."""
    if in_a is None:
        return v[keep].mean(axis=0)
    return v[keep & in_a].mean(axis=0) - v[keep & ~in_a].mean(axis=0)


def paired_over_targets(diff, decide, in_a=None, names=None, confidence: float = 0.95
                        ) -> dict:
    """A paired claim over targets (per-seed differences averaged over targets, t-interval
    over seeds), with each target left out once: the *fragile* check of the correlation
    claims (:func:`transfer_nb.stats.correlation_verdict`) for paired differences.

    Parameters
    ----------
    diff : array-like, shape (n_targets, n_seeds)
        Per target and seed, method A minus method B (paired within seed: the same seed
        draws the same images for both).
    decide : callable
        ``decide(low, high) -> verdict`` (e.g. :func:`transfer_nb.stats.direction_verdict`
        with its direction bound, or a non-inferiority rule).
    in_a : array-like of bool, shape (n_targets,), optional
        Given: the per-seed statistic is mean over group A's targets minus mean over group
        B's (e.g. far minus near); else the mean over all targets.
    names : sequence of str, optional
        Target names (for ``flips``); default ``"0"``, ``"1"``, ...

    Returns
    -------
    dict
        ``estimate``, ``low``, ``high`` (t-interval of the per-seed statistic), ``n``
        (seeds), ``n_targets``, ``loo_low`` / ``loo_high`` (min and max of the estimate
        with each target left out; a target whose group would be left empty is not left
        out), ``flips`` (the targets whose leaving out changes a decisive verdict) and
        ``verdict``: ``decide``'s, or ``"fragile"`` when it is "reproduced" or "not
        reproduced" and leaving one target out changes it.  A target with a non-finite
        value is dropped first (``n_dropped``).

    Raises
    ------
    ValueError
        ``diff`` is not 2-D, or ``in_a`` / ``names`` do not have one entry per target.
    """
    from transfer_nb.stats import mean_interval  # here: transfer_nb.stats imports this module
    check_rule_args(confidence=confidence)
    raw = np.asarray(diff)
    v = numeric(raw, "diff").reshape(raw.shape)
    if v.ndim != 2:
        raise ValueError(f"diff must be (n_targets, n_seeds), got shape {v.shape}")
    n_t = v.shape[0]
    a = None
    if in_a is not None:
        a = np.asarray(in_a).ravel()
        if a.dtype.kind != "b" or a.size != n_t:
            raise ValueError(f"in_a must hold one True/False per target ({n_t}), got "
                             f"{a.size} {a.dtype} values")
    names = [str(k) for k in range(n_t)] if names is None else [str(x) for x in names]
    if len(names) != n_t:
        raise ValueError(f"names must name each of the {n_t} targets, got {len(names)}")
    ok = np.isfinite(v).all(axis=1)
    out = {"n": int(v.shape[1]), "n_targets": int(ok.sum()), "n_dropped": int((~ok).sum()),
           "flips": []}
    usable = ok.any() if a is None else (ok & a).any() and (ok & ~a).any()
    if not usable:
        return {**out, "estimate": np.nan, "low": np.nan, "high": np.nan, "loo_low": np.nan,
                "loo_high": np.nan, "verdict": decide(np.nan, np.nan)}
    est, low, high = mean_interval(_per_seed(v, a, ok), confidence)
    verdict = decide(low, high)
    loo = []
    for t in np.flatnonzero(ok):
        keep = ok.copy()
        keep[t] = False
        if not (keep.any() if a is None else (keep & a).any() and (keep & ~a).any()):
            continue
        m, lo, hi = mean_interval(_per_seed(v, a, keep), confidence)
        loo.append(m)
        if verdict in ("reproduced", "not reproduced") and decide(lo, hi) != verdict:
            out["flips"].append(names[t])
    return {**out, "estimate": est, "low": low, "high": high,
            "loo_low": float(min(loo)) if loo else np.nan,
            "loo_high": float(max(loo)) if loo else np.nan,
            "verdict": "fragile" if out["flips"] else verdict}
