"""Correlation between transferability scores and ground truth, with uncertainty.

The one place of the library that correlates scores with accuracies:

* :func:`rank_correlations` -- Pearson r, Kendall tau (tau-b) and weighted tau (the
  hyperbolic weighted tau of :func:`scipy.stats.weightedtau`, as the TransRate paper
  reports), each with a 95 % percentile bootstrap interval (resampling the items: models
  or layers) and a two-sided permutation p-value.
* :func:`interval_verdict` -- "reproduced" / "not reproduced" / "inconclusive" from an
  interval and a threshold: the interval decides, not the point estimate.
* :func:`seed_aware_se`, :func:`discrimination` -- does a ground truth tell items apart,
  counting seed noise as well as test-set sampling (DESIGN rule 1).
* The rules of DESIGN rule 3: :func:`pooled_within` (selection claims are within-target),
  :func:`paired_correlation_difference` and :func:`paired_difference` ("A beats B" is a
  paired difference), :func:`noninferiority_verdict` ("matches" with a stated margin, and
  "beats" when the interval clears it), :func:`leave_one_out_range` and
  :func:`correlation_verdict` (the *fragile* label when one item flips a verdict).

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
           "group_difference", "pooled_within_permutation",
           "STATISTICS", "CEILING", "N_SE", "VERDICTS"]

#: DESIGN's standard: a target discriminates when the models' ground truth spreads over at
#: least N_SE standard errors of a single measurement and none reaches CEILING
CEILING, N_SE = 0.97, 3.0

#: the statistics of :func:`rank_correlations`, in column order
STATISTICS = ("pearson", "kendall", "weighted_tau")

_COLUMNS = [f"{s}{suffix}" for s in STATISTICS for suffix in ("", "_low", "_high", "_p")] + ["n"]


from transfer_nb._batched_stats import (_all_stats, _groups_of, _pearson,  # noqa: E402
                                        _percentile, _pool, _prepare, _within_resamples)
from transfer_nb._group_stats import group_difference  # noqa: E402


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



# ------------------------------------------------------------- gates (DESIGN rule 1)
#: the verdict words every report uses
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "fragile", "excluded")


def seed_aware_se(per_seed, n_test: int) -> float:
    """Standard error of one item's seed-mean accuracy, counting seeds and test sampling.

    ``sqrt(p (1 - p) / n_test + s_seed^2 / n_seeds)`` per item (``p`` its mean, ``s_seed``
    the standard deviation over its seeds), and the median over items: DESIGN rule 1.
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


# ------------------------------------------------------------- rules (DESIGN rule 3)


def _check_method(method: str) -> str:
    if method not in STATISTICS:
        raise ValueError(f"method must be one of {list(STATISTICS)}, got {method!r}")
    return method








def _stat_rows(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    # Pearson alone needs no pairwise sign matrices (the same kernel as _all_stats uses;
    # computing Kendall and weighted tau too cost ~97% of a Pearson bootstrap)
    if method == "pearson":
        return _pearson(x, y)
    return _all_stats(x, y)[method]


def _pooled_from(scores: list[np.ndarray], truth: np.ndarray, members, resamples,
                 method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed pooled statistic, its bootstrap draws (one per score) and per-group values."""
    per_group = np.full((len(scores), len(members)), np.nan)
    boots = np.full((len(scores), resamples[0].shape[0], len(members)), np.nan)
    for k, (m, idx) in enumerate(zip(members, resamples)):
        if m.size < 3:
            continue
        for s, x in enumerate(scores):
            per_group[s, k] = _stat_rows(x[m][None, :], truth[m][None, :], method)[0]
            boots[s, :, k] = _stat_rows(x[idx], truth[idx], method)
    return _pool(per_group, method), _pool(boots, method), per_group






def pooled_within(scores, truth, groups, method: str = "pearson", n_boot: int = 1000,
                  seed: int = 0, confidence: float = 0.95) -> dict:
    """Within-group correlation, averaged over groups, with a within-group bootstrap.

    Choosing a model for a given target is a within-target question (DESIGN rule 3): the
    statistic is computed per group (target), then averaged -- through Fisher's z for
    Pearson, plainly for Kendall and weighted tau -- and the bootstrap resamples items
    within each group, never across.  A pooled correlation over all items mixes
    between-group differences in (Simpson's paradox).

    Parameters
    ----------
    scores, truth : array-like, shape (n,)
        One score and one ground truth per item.
    groups : array-like, shape (n,) or None
        Group label of each item (None: one group).  Groups with fewer than 3 items
        are left out (a correlation needs 3).
    method : {"pearson", "kendall", "weighted_tau"}
    n_boot, seed, confidence : bootstrap resamples, their seed, interval level.

    Returns
    -------
    dict
        ``estimate, low, high, n_groups`` (groups used), ``n_items`` and ``per_group``
        (group label -> statistic).
    """
    _check_method(method)
    truth, (x,) = _prepare(truth, ("scores", scores))
    members = _groups_of(truth, groups)
    labels = (["all"] if groups is None else
              [str(np.asarray(groups).ravel()[m[0]]) for m in members])
    resamples = _within_resamples(members, int(n_boot), seed)
    obs, boot, per_group = _pooled_from([x], truth, members, resamples, method)
    low, high = _percentile(boot[0], confidence)
    used = [m for m in members if m.size >= 3]
    return {"estimate": float(obs[0]), "low": low, "high": high, "n_groups": len(used),
            "n_items": int(sum(m.size for m in used)),
            "per_group": dict(zip(labels, per_group[0].tolist()))}


def paired_correlation_difference(a, b, truth, groups=None, method: str = "pearson",
                                  n_boot: int = 1000, seed: int = 0,
                                  confidence: float = 0.95) -> dict:
    """Does score ``a`` correlate better with ``truth`` than score ``b``?  Paired.

    The difference ``r_a - r_b`` (pooled within groups when ``groups`` is given) is
    bootstrapped on the *same* resamples of the items for both scores, so the shared
    item-to-item noise cancels; two separate intervals that overlap can still give a
    paired difference that excludes 0 (DESIGN rule 3).

    Returns
    -------
    dict
        ``estimate`` (r_a - r_b), ``low``, ``high``, ``a``, ``b`` (each score's
        statistic) and ``n_items``.
    """
    _check_method(method)
    truth, (xa, xb) = _prepare(truth, ("a", a), ("b", b))
    members = _groups_of(truth, groups)
    resamples = _within_resamples(members, int(n_boot), seed)
    obs, boot, _ = _pooled_from([xa, xb], truth, members, resamples, method)
    low, high = _percentile(boot[0] - boot[1], confidence)
    return {"estimate": float(obs[0] - obs[1]), "low": low, "high": high,
            "a": float(obs[0]), "b": float(obs[1]),
            "n_items": int(sum(m.size for m in members if m.size >= 3))}


def paired_difference(x, y, confidence: float = 0.95) -> dict:
    """Mean and Student-t interval of the per-seed differences ``x - y``.

    "Method A beats method B on the same seeds" is decided on the paired differences
    (DESIGN rule 3), not on the overlap of two separate intervals.  Pairs where either
    value is not finite are dropped.

    Returns
    -------
    dict
        ``estimate`` (mean difference), ``low``, ``high`` and ``n`` (pairs used).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} values but y has {y.size}: pair them by seed")
    d = x - y
    mean, low, high = mean_interval(d[np.isfinite(d)], confidence)
    return {"estimate": mean, "low": low, "high": high, "n": int(np.isfinite(d).sum())}


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
    random-init model whose score is constant by construction).
    """
    _check_method(method)
    truth, (x,) = _prepare(truth, ("scores", scores))
    g = None if groups is None else np.asarray(groups).ravel()
    values = []
    for i in range(truth.size):
        keep = np.arange(truth.size) != i
        if groups is None:
            xs, ys = x[keep][None, :], truth[keep][None, :]
            values.append(float(_stat_rows(xs, ys, method)[0]) if keep.sum() >= 3 else np.nan)
        else:
            members = _groups_of(truth[keep], g[keep])
            per = [_stat_rows(x[keep][m][None, :], truth[keep][m][None, :], method)[0]
                   for m in members if m.size >= 3]
            values.append(float(_pool(np.asarray(per), method)) if per else np.nan)
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else (float("nan"), float("nan"))


def correlation_verdict(scores, truth, groups=None, method: str = "pearson",
                        threshold: float = 0.0, n_boot: int = 1000, seed: int = 0) -> dict:
    """Decide "the score correlates above ``threshold``", and say if one item flips it.

    The pooled-within interval decides (:func:`interval_verdict`); the verdict is
    recomputed with each item left out, and a decisive verdict that any single item
    flips is labelled ``"fragile"``.

    Returns
    -------
    dict
        Those of :func:`pooled_within` plus ``verdict``, ``loo_low``, ``loo_high``.
    """
    out = pooled_within(scores, truth, groups, method, n_boot, seed)
    verdict = interval_verdict(out["low"], out["high"], threshold)
    truth_a, (x,) = _prepare(truth, ("scores", scores))
    out["loo_low"], out["loo_high"] = leave_one_out_range(x, truth_a, method, groups)
    if verdict in ("reproduced", "not reproduced"):
        g = None if groups is None else np.asarray(groups).ravel()
        for i in range(truth_a.size):
            keep = np.arange(truth_a.size) != i
            sub = pooled_within(x[keep], truth_a[keep], None if g is None else g[keep],
                                method, n_boot, seed)
            if interval_verdict(sub["low"], sub["high"], threshold) != verdict:
                verdict = "fragile"
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


def pooled_within_permutation(scores, truth, groups, method: str = "kendall",
                              n_perm: int = 1000, seed: int = 0) -> dict:
    """Permutation test of :func:`pooled_within`: scores shuffled *within* each group.

    Null: inside every group the score says nothing about which item is better.
    Between-group differences are kept intact, so they cannot produce a small p-value.

    Returns ``{"estimate": observed pooled statistic, "p": two-sided
    (1 + #{|null| >= |observed|}) / (1 + n_perm), "n_perm"}``.
    """
    _check_method(method)
    truth, (x,) = _prepare(truth, ("scores", scores))
    members = [m for m in _groups_of(truth, groups) if m.size >= 3]
    if not members:
        raise ValueError("no group holds 3 items: a within-group test needs 3 per group")
    rng = np.random.default_rng([int(seed), 0x9E47])
    obs = np.full(len(members), np.nan)
    null = np.full((int(n_perm), len(members)), np.nan)
    for k, m in enumerate(members):
        obs[k] = _stat_rows(x[m][None, :], truth[m][None, :], method)[0]
        shuffled = x[m][rng.permuted(np.tile(np.arange(m.size), (int(n_perm), 1)), axis=1)]
        null[:, k] = _stat_rows(shuffled, np.broadcast_to(truth[m], shuffled.shape), method)
    est, draws = float(_pool(obs, method)), _pool(null, method)
    p = (1 + np.sum(np.abs(draws) >= abs(est) - 1e-12)) / (1 + int(n_perm))
    return {"estimate": est, "p": float(p), "n_perm": int(n_perm)}
