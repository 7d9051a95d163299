"""Correlation between transferability scores and ground truth, with uncertainty.

The one place of the library that correlates scores with accuracies:

* :func:`rank_correlations` -- Pearson r, Kendall tau (tau-b) and weighted tau (the
  hyperbolic weighted tau of :func:`scipy.stats.weightedtau`, as the TransRate paper
  reports), each with a 95 % percentile bootstrap interval (resampling the items: models
  or layers) and a two-sided permutation p-value.
* :func:`interval_verdict` -- "reproduced" / "not reproduced" / "inconclusive" from an
  interval and a threshold: the interval decides, not the point estimate.
* :func:`seed_aware_se`, :func:`discrimination` -- does a ground truth tell items apart,
  counting seed noise as well as test-set sampling (docs/contributing.md, rule 1).
* The rules of docs/contributing.md, rule 3: :func:`pooled_within` (selection claims are
  within-target), :func:`paired_correlation_difference` and :func:`paired_difference`
  ("A beats B" is a paired difference), :func:`noninferiority_verdict` ("matches" with a
  stated margin, and "beats" when the interval clears it), :func:`leave_one_out_range` and
  :func:`correlation_verdict` (the *fragile* label when one item flips a verdict), and
  :func:`paired_over_targets` (the same label for a paired claim over targets).

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
           "seed_aware_se", "pooled_within", "paired_correlation_difference", "paired_difference",
           "noninferiority_verdict", "leave_one_out_range", "correlation_verdict", "direction_verdict",
           "group_difference", "paired_over_targets", "pooled_within_permutation",
           "MIN_GROUP_ITEMS",
           "MIN_GROUP_REASON",
           "STATISTICS", "CEILING", "N_SE", "VERDICTS"]

#: the standard of docs/contributing.md, rule 1: a target discriminates when the models'
#: ground truth spreads over at least N_SE standard errors of a single measurement and none
#: reaches CEILING
CEILING, N_SE = 0.97, 3.0

#: the statistics of :func:`rank_correlations`, in column order
STATISTICS = ("pearson", "kendall", "weighted_tau")

_COLUMNS = [f"{s}{suffix}" for s in STATISTICS for suffix in ("", "_low", "_high", "_p")] + ["n"]


from transfer_nb.stats._batched import (_all_stats, _constant_note,  # noqa: E402
                                        _dropped_note, _grouping, _loo_values, _note,
                                        _one_stat, _pool, _pooled_interval)
from transfer_nb.stats._group import (group_difference, paired_over_targets,  # noqa: E402
                                      pooled_within_permutation)
from transfer_nb._validation import check_scalar  # noqa: E402
from transfer_nb.stats._inputs import (MIN_GROUP_ITEMS, MIN_GROUP_REASON,  # noqa: E402
                                       check_rule_args, numeric, rule_items, usable_groups)


# ------------------------------------------------------------------------ public
def _as_columns(scores) -> dict:
    """``{name: 1-D float array}`` from a mapping, a DataFrame, a Series or one array."""
    if hasattr(scores, "columns") and hasattr(scores, "to_numpy"):        # DataFrame
        return {str(c): scores[c].to_numpy() for c in scores.columns}
    if isinstance(scores, Mapping):
        return {str(k): v for k, v in scores.items()}
    name = getattr(scores, "name", None)                                  # Series / array
    return {str(name) if name is not None else "score": scores}


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

    check_rule_args(n_boot, None, seed)
    n_boot = int(n_boot)
    columns = _as_columns(scores)
    if not columns:
        raise ValueError("scores is empty: pass at least one score")
    truth = numeric(truth, "truth")
    rows = {}
    for name, x in columns.items():
        x = numeric(x, f"score {name!r}")
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
        why = f"too few items: only {n} items with a finite score and truth (need at least 3)"
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
        ``spread``, ``se``, ``spread_in_se``, ``passes`` (bool), ``n`` (values used),
        ``n_dropped`` (values that were not finite, left out) and ``reason`` (plain
        words; ``""`` when it passes).  Fewer than 2 finite values never pass ("too
        few items").
    """
    v = numeric(values, "values")
    se = check_scalar(se, "se", float, min_val=0)
    n_dropped = int((~np.isfinite(v)).sum())
    v = v[np.isfinite(v)]
    if v.size < 2:
        return {"spread": float("nan"), "se": se, "spread_in_se": float("nan"),
                "passes": False, "n": int(v.size), "n_dropped": n_dropped,
                "reason": f"too few items: {v.size} with a finite value (need 2 to compare)"}
    spread = float(v.max() - v.min())
    top = float(v.max() if top is None else top)
    reasons = []
    if not np.isfinite(top):
        reasons.append(f"the value compared with the ceiling is {top}")
    if spread < n_se * se:
        reasons.append(f"spread {spread:.3f} < {n_se:g} SE ({n_se * se:.3f})")
    if top >= ceiling:
        reasons.append(f"a model reaches {top:.3f} >= {ceiling:g}")
    return {"spread": spread, "se": float(se),
            "spread_in_se": spread / se if se > 0 else float("inf"),
            "passes": not reasons, "n": int(v.size), "n_dropped": n_dropped,
            "reason": "; ".join(reasons)}


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean over seeds: ``(mean, low, high)``.

    Non-finite values are dropped; fewer than two values give ``(mean, nan, nan)``.
    """
    from scipy import stats as st

    check_rule_args(confidence=confidence)
    v = numeric(values, "values")
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(st.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return m, m - half, m + half



# ------------------------------------- gates (docs/contributing.md, rule 1)
#: the verdict words every report uses
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "fragile", "excluded")


def seed_aware_se(per_seed, n_test: int) -> float:
    """Standard error of one item's seed-mean accuracy, counting seeds and test sampling.

    ``sqrt(p (1 - p) / n_test + s_seed^2 / n_seeds)`` per item (``p`` its mean, ``s_seed``
    the standard deviation over its seeds), and the median over items (docs/contributing.md,
    rule 1).
    The test-set term alone lets a target pass on seed noise.

    Parameters
    ----------
    per_seed : sequence of array-like
        One array of per-seed accuracies per item (model); NaNs are dropped.
    n_test : int
        Test images behind each accuracy.
    """
    if not isinstance(n_test, (int, np.integer)) or isinstance(n_test, bool) or n_test < 1:
        raise ValueError(f"n_test must be a positive integer, got {n_test!r}")
    ses = []
    for values in per_seed:
        v = np.asarray(values, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        p = float(v.mean())
        seed_var = float(v.var(ddof=1)) / v.size if v.size > 1 else 0.0
        ses.append(np.sqrt(max(p * (1 - p), 1e-12) / n_test + seed_var))
    if not ses:
        raise ValueError("per_seed holds no finite accuracy")
    return float(np.median(ses))


# ------------------------------------- rules (docs/contributing.md, rule 3)
def _check_method(method: str) -> str:
    if method not in STATISTICS:
        raise ValueError(f"method must be one of {list(STATISTICS)}, got {method!r}")
    return method


def pooled_within(scores, truth, groups, method: str = "pearson", n_boot: int = 1000,
                  seed: int = 0, confidence: float = 0.95) -> dict:
    """Within-group correlation, averaged over groups, with a within-group bootstrap.

    Choosing a model for a given target is a within-target question (docs/contributing.md,
    rule 3): the statistic is computed per group (target), then averaged -- through Fisher's z for
    Pearson, plainly for Kendall and weighted tau -- and the bootstrap resamples items
    within each group, never across.  A pooled correlation over all items mixes
    between-group differences in (Simpson's paradox).

    Parameters
    ----------
    scores, truth : array-like of numbers, shape (n,)
        One score and one ground truth per item.  An item whose score or truth is not
        finite (NaN, inf, None) is dropped, and only that item: ``n_dropped`` counts them.
    groups : array-like, shape (n,) or None
        Group label of each item (None: one group).  A group with fewer than
        :data:`MIN_GROUP_ITEMS` (5) items is left out, and ``note`` names it
        (:data:`MIN_GROUP_REASON` says why 5).
    method : {"pearson", "kendall", "weighted_tau"}
    n_boot, seed, confidence : bootstrap resamples (>= 1), their seed, interval level in
        (0, 1).  A resample in which a group holds fewer than 3 distinct items is dropped
        (its correlation is +-1 or undefined by construction); ``n_resamples`` counts the
        ones kept.

    Returns
    -------
    dict
        ``estimate, low, high`` (nan when no group is usable: ``note`` then says "too few
        items"), ``n_groups`` (groups used), ``n_items`` (their items), ``n_dropped``,
        ``n_resamples``, ``per_group`` (group label -> statistic, nan for a group left
        out) and ``note`` (plain words: items dropped, groups left out; "" when none).
    """
    _check_method(method)
    check_rule_args(n_boot, confidence, seed)
    truth, (x,), g, n_dropped = rule_items(truth, ("scores", scores), groups=groups)
    members, labels, use, note = _grouping(truth, g)
    out = _pooled_interval([x], truth, members, use, method, int(n_boot), seed, confidence)
    return {"estimate": out["estimate"], "low": out["low"], "high": out["high"],
            "n_groups": int(sum(use)),
            "n_items": int(sum(m.size for m, u in zip(members, use) if u)),
            "n_dropped": n_dropped, "n_resamples": out["n_resamples"],
            "per_group": dict(zip(labels, out["per_group"][0].tolist())),
            "note": _note(_dropped_note(n_dropped), note,
                          _constant_note(labels, use, out["per_group"][0]))}


def paired_correlation_difference(a, b, truth, groups=None, method: str = "pearson",
                                  n_boot: int = 1000, seed: int = 0,
                                  confidence: float = 0.95) -> dict:
    """Does score ``a`` correlate better with ``truth`` than score ``b``?  Paired.

    The difference ``r_a - r_b`` (pooled within groups when ``groups`` is given) is
    bootstrapped on the *same* resamples of the items for both scores, so the shared
    item-to-item noise cancels; two separate intervals that overlap can still give a
    paired difference that excludes 0 (docs/contributing.md, rule 3).  Items where ``a``,
    ``b`` or the truth is not finite are dropped (``n_dropped``); groups and resamples as in
    :func:`pooled_within`.

    Returns
    -------
    dict
        ``estimate`` (r_a - r_b), ``low``, ``high``, ``a``, ``b`` (each score's
        statistic), ``n_items``, ``n_dropped``, ``n_resamples`` and ``note``.
    """
    _check_method(method)
    check_rule_args(n_boot, confidence, seed)
    truth, (xa, xb), g, n_dropped = rule_items(truth, ("a", a), ("b", b), groups=groups)
    members, labels, use, note = _grouping(truth, g)
    out = _pooled_interval([xa, xb], truth, members, use, method, int(n_boot), seed,
                           confidence, diff=True)
    return {"estimate": out["estimate"], "low": out["low"], "high": out["high"],
            "a": float(out["obs"][0]), "b": float(out["obs"][1]),
            "n_items": int(sum(m.size for m, u in zip(members, use) if u)),
            "n_dropped": n_dropped, "n_resamples": out["n_resamples"],
            "note": _note(_dropped_note(n_dropped), note)}


def paired_difference(x, y, confidence: float = 0.95) -> dict:
    """Mean and Student-t interval of the per-seed differences ``x - y``.

    "Method A beats method B on the same seeds" is decided on the paired differences
    (docs/contributing.md, rule 3), not on the overlap of two separate intervals.  Pairs
    where either value is not finite are dropped (``n_dropped``); fewer than 2 pairs give a nan
    interval.

    Returns
    -------
    dict
        ``estimate`` (mean difference), ``low``, ``high``, ``n`` (pairs used) and
        ``n_dropped``.
    """
    check_rule_args(confidence=confidence)
    x, y = numeric(x, "x"), numeric(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} values but y has {y.size}: pair them by seed")
    d = x - y
    ok = np.isfinite(d)
    mean, low, high = mean_interval(d[ok], confidence)
    return {"estimate": mean, "low": low, "high": high, "n": int(ok.sum()),
            "n_dropped": int((~ok).sum())}


def noninferiority_verdict(low, high, margin: float) -> tuple[str, str]:
    """"A matches B" as non-inferiority: the interval of ``A - B`` against ``-margin``.

    Returns ``(verdict, note)``: ``"reproduced"`` when ``low > -margin`` (A is not worse
    than B by more than the margin), ``"not reproduced"`` when ``high < -margin``,
    ``"inconclusive"`` otherwise.  The note is ``"beats"`` when the whole interval lies
    above ``+margin`` (A is better, not just as good: ask why B lost -- usually an
    under-trained baseline), else ``""``.
    """
    if not (isinstance(margin, (int, float, np.floating)) and margin >= 0):
        raise ValueError(f"margin must be a number >= 0, got {margin!r}")
    verdict = interval_verdict(low, high, -float(margin))
    note = "beats" if np.isfinite(low) and low > margin else ""
    return verdict, note


def leave_one_out_range(scores, truth, method: str = "pearson", groups=None) -> tuple[float, float]:
    """Min and max of the (pooled-within) statistic over dropping each item once.

    A wide range means one item carries the correlation (a leverage point, e.g. a
    random-init model whose score is constant by construction).  Items without a finite
    score and truth are dropped first; the groups are those :func:`pooled_within` uses
    (at least :data:`MIN_GROUP_ITEMS` items); ``(nan, nan)`` when none is.
    """
    _check_method(method)
    truth, (x,), g, _ = rule_items(truth, ("scores", scores), groups=groups)
    members, _, use, _ = _grouping(truth, g)
    v = _loo_values(x, truth, members, use, method)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else (float("nan"), float("nan"))


def correlation_verdict(scores, truth, groups=None, method: str = "pearson",
                        threshold: float = 0.0, n_boot: int = 1000, seed: int = 0) -> dict:
    """Decide "the score correlates above ``threshold``", and say if one item flips it.

    The pooled-within interval decides (:func:`interval_verdict`); the verdict is
    recomputed with each item left out, and a decisive verdict that any single item
    flips is labelled ``"fragile"``.  No verdict is computed on a missing value: items
    without a finite score and truth are dropped first (``n_dropped``), and with too few
    items left (``note`` says so) the verdict is ``"inconclusive"``.

    Returns
    -------
    dict
        Those of :func:`pooled_within` plus ``verdict``, ``loo_low``, ``loo_high``.
    """
    out = pooled_within(scores, truth, groups, method, n_boot, seed)
    truth_a, (x,), g, _ = rule_items(truth, ("scores", scores), groups=groups)
    members, _, use, _ = _grouping(truth_a, g)
    loo = _loo_values(x, truth_a, members, use, method)
    loo = loo[np.isfinite(loo)]
    out["loo_low"], out["loo_high"] = ((float(loo.min()), float(loo.max())) if loo.size
                                       else (float("nan"), float("nan")))
    verdict = (interval_verdict(out["low"], out["high"], threshold)
               if np.isfinite(out["estimate"]) else "inconclusive")
    if verdict in ("reproduced", "not reproduced"):
        for k, m in enumerate(members):
            if not use[k]:
                continue
            for i in m:
                keep = [mj[mj != i] for mj in members]
                sub = _pooled_interval([x], truth_a, keep, use, method, int(n_boot), seed,
                                       0.95)
                if interval_verdict(sub["low"], sub["high"], threshold) != verdict:
                    verdict = "fragile"
                    break
            if verdict == "fragile":
                break
    out["verdict"] = verdict
    return out


def direction_verdict(low, high, direction: float) -> str:
    """A claim about the *sign* of a paired difference: ``direction > 0`` claims it is
    positive, ``< 0`` negative.  The interval decides: entirely on the claimed side
    "reproduced", entirely on the other "not reproduced", else "inconclusive"."""
    if direction == 0 or not np.isfinite(direction):
        raise ValueError(f"direction must be a non-zero number, got {direction!r}")
    if direction > 0:
        return interval_verdict(low, high, 0.0)
    flipped = interval_verdict(-float(high), -float(low), 0.0)
    return flipped
