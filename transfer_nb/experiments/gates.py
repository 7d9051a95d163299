"""The validity gates (docs/contributing.md, rule 1): can this ground truth be trusted on
this target?

Each gate takes plain per-seed numbers and returns a dict with ``passes`` (bool) and
``reason`` (plain words, ``""`` when it passes), so a report can print every check per
target before any verdict and exclude -- by name -- a target that fails one.

* :func:`discrimination_gate` -- the items' mean truths spread over at least ``N_SE``
  standard errors, where the SE counts seed noise (:func:`transfer_nb.stats.seed_aware_se`),
  and no item reaches the ceiling.
* :func:`training_gate` -- the training that defines the truth converged (its curve
  plateaus), no seed collapsed, and it reaches at least the frozen linear probe on most
  items (else it is under-trained: LP-FT is the remedy).
* :func:`plateau` -- has a training curve stopped rising?
* :func:`gate_table` -- all gates of all targets as one table.
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats

__all__ = ["discrimination_gate", "training_gate", "ceiling_gate", "plateau", "collapsed_seeds",
           "gate_table", "passing"]


def _per_item(table, item: str, seed: str, value: str) -> dict:
    return {k: g.sort_values(seed)[value].to_numpy(dtype=np.float64)
            for k, g in table.groupby(item, sort=False)}


def discrimination_gate(table, *, item: str = "model", seed: str = "seed",
                        value: str = "accuracy", n_test: int, ceiling: float = stats.CEILING,
                        n_se: float = stats.N_SE) -> dict:
    """Does the truth tell the items apart, beyond test sampling *and* seed noise?

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (item, seed) of one target, with columns ``item``, ``seed``, ``value``.
    n_test : int
        Test images behind each value (for R^2 or other non-accuracies pass the number
        of test items: the binomial term is then a conservative stand-in).

    Returns
    -------
    dict
        ``passes, reason, spread, se, spread_in_se, top`` (``se`` from
        :func:`transfer_nb.stats.seed_aware_se`).
    """
    per = _per_item(table, item, seed, value)
    means = np.array([np.nanmean(v) for v in per.values()])
    se = stats.seed_aware_se(list(per.values()), int(n_test))
    out = stats.discrimination(means, se, ceiling=ceiling, n_se=n_se)
    out["top"] = float(np.nanmax(means))
    return out


def plateau(curve, tail: float = 0.25, frac: float = 0.1, tol: float = 0.01) -> bool:
    """True when a training curve (higher is better: accuracy, or minus the loss) gained
    at most ``frac`` of its total gain (plus ``tol``) over its last ``tail`` fraction: it
    converged rather than being stopped mid-climb."""
    c = np.asarray(curve, dtype=np.float64).ravel()
    c = c[np.isfinite(c)]
    if c.size < 4:
        return False
    k = max(2, int(round(c.size * tail)))
    last = c[-k:]
    total = max(float(c.max() - c[0]), 0.0)
    return bool(last[-1] - last[0] <= frac * total + tol)


def collapsed_seeds(per_seed, chance: float, n_test: int) -> list[int]:
    """Positions of seeds at most ``chance + 2 SE`` while the item's other seeds average
    more than ``chance + 6 SE`` (a run that failed, not a hard target)."""
    v = np.asarray(per_seed, dtype=np.float64)
    se = stats.accuracy_se(max(chance, 1e-3), n_test)
    out = []
    for i, x in enumerate(v):
        others = np.delete(v, i)
        if others.size and x <= chance + 2 * se and np.nanmean(others) > chance + 6 * se:
            out.append(i)
    return out


def training_gate(table, *, item: str = "model", seed: str = "seed", value: str = "accuracy",
                  probe: str | None = "linear_probe", chance: float, n_test: int,
                  curves=None, most: float = 0.5, min_plateaued: float = 0.9) -> dict:
    """Did the training that defines the truth converge and is it competitive?

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (item, seed) of one target: the truth ``value`` and, when ``probe``
        is given, the frozen linear probe's accuracy on the same seed.
    chance : float
        Chance accuracy (1 / classes).
    curves : sequence of array-like, optional
        Training-accuracy curves (one per run): each must :func:`plateau`.
    most : float
        The truth must reach the probe's mean on more than this fraction of items.
    min_plateaued : float
        At least this fraction of the curves must :func:`plateau` (0.9: one run in 69
        still climbing at its last epochs does not make a target's truth untrained; a
        failed run shows as a collapsed seed instead).

    Returns
    -------
    dict
        ``passes, reason, collapsed`` (list of ``"item/seed"``), ``above_probe``
        (fraction of items), ``plateaued`` (fraction of curves, nan when none given).
    """
    reasons = []
    collapsed = []
    for k, g in table.groupby(item, sort=False):
        g = g.sort_values(seed)
        for i in collapsed_seeds(g[value].to_numpy(), chance, n_test):
            collapsed.append(f"{k}/seed {g[seed].iloc[i]}")
    if collapsed:
        reasons.append(f"collapsed seed(s): {', '.join(collapsed)}")
    above = float("nan")
    if probe is not None and probe in table:
        means = table.groupby(item, sort=False)[[value, probe]].mean()
        above = float((means[value] >= means[probe]).mean())
        if not above > most:
            reasons.append(f"reaches the linear probe on {above:.0%} of items (needs > "
                           f"{most:.0%}): under-trained")
    flat = float("nan")
    if curves is not None:
        flags = [plateau(c) for c in curves]
        flat = float(np.mean(flags)) if flags else float("nan")
        if flags and flat < min_plateaued:
            reasons.append(f"{flags.count(False)} of {len(flags)} training curves still rising "
                           f"(at most {1 - min_plateaued:.0%} may be)")
    return {"passes": not reasons, "reason": "; ".join(reasons), "collapsed": collapsed,
            "above_probe": above, "plateaued": flat}


def gate_table(rows: dict):
    """``{target: {gate name: gate dict}}`` -> one row per target: each gate's pass flag,
    ``passes`` (all of them) and ``reason`` (the failing gates' reasons)."""
    import pandas as pd
    out = []
    for target, gates in rows.items():
        row = {"target": target}
        reasons = []
        for name, g in gates.items():
            row[name] = bool(g["passes"])
            if not g["passes"]:
                reasons.append(f"{name}: {g['reason']}")
        row["passes"] = all(bool(g["passes"]) for g in gates.values())
        row["reason"] = "; ".join(reasons)
        out.append(row)
    return pd.DataFrame(out)


def passing(gates) -> list:
    """Targets of a :func:`gate_table` that pass every gate."""
    return list(gates.loc[gates["passes"], "target"])


def ceiling_gate(means: dict, ceiling: float = stats.CEILING) -> dict:
    """No method's mean accuracy reaches the ceiling (a difference between methods at the
    ceiling measures the test set, not the methods).  ``means``: method -> mean."""
    top = {k: float(v) for k, v in means.items() if float(v) >= ceiling}
    reason = "; ".join(f"{k} reaches {v:.3f} (ceiling {ceiling})" for k, v in top.items())
    return {"passes": not top, "reason": reason}
