"""Power of the primary claim, measured on a stored run: how the width of the pooled-within
interval depends on the number of targets, models and seeds.

The primary statistic is Pearson r between a score and the negative test MSE, computed
per target over the models' seed means, averaged over targets through Fisher's z
(:func:`transfer_nb.stats.pooled_within`).  Its bootstrap resamples *models within each
target*; the targets are fixed (not resampled) and the seeds enter only through the
seed means of the truth.  :func:`subsample_widths` draws smaller designs from a stored
run (a subset of the targets that passed the gates, of the models, of the seeds) and
records the interval's half-width; :func:`fit_width` fits the large-sample law of a
Fisher-z average, ``half-width = c / sqrt(T * (M - 3))``, to those widths, so that a
larger design can be sized before it is run.
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats

__all__ = ["subsample_widths", "fit_width", "predicted_half_width", "design_for"]


def subsample_widths(table, score: str, truth: str, targets, models, designs, reps: int = 20,
                     n_boot: int = 300, seed: int = 0):
    """Half-widths of the pooled-within Pearson interval on sub-designs of a stored run.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (target, model, seed) with columns ``target, model, seed``, ``score``
        and ``truth`` (the stored run's ``Results.table``).
    score, truth : str
        Column names (e.g. ``"linear_mse"``, ``"neg_mse"``).
    targets, models : sequence of str
        The targets (those that passed the gates) and the models (declared-degenerate
        ones out) to draw from.
    designs : iterable of (n_targets, n_models, n_seeds)
        Each is drawn ``reps`` times: that many targets, models (the same models on every
        target, as one zoo is scored on every target) and seeds, without replacement.
        More targets than the run has are drawn *with* replacement, each copy a target of
        its own (its models resampled independently): the width of a design whose new
        targets behave like the measured ones.
    reps, n_boot, seed : int
        Draws per design, bootstrap resamples per interval, seed of the draws.

    Returns
    -------
    pandas.DataFrame
        One row per design: ``n_targets, n_models, n_seeds``, mean ``estimate``, mean
        ``half_width`` and its SD over the draws.
    """
    import pandas as pd

    targets, models = list(targets), list(models)
    seeds = sorted(set(table["seed"]))
    rng = np.random.default_rng(seed)
    rows = []
    for nt, nm, ns in designs:
        if nt < 1 or nm > len(models) or ns > len(seeds) or nm < 4 or ns < 1:
            raise ValueError(f"design ({nt}, {nm}, {ns}) needs >= 1 target, 4 to {len(models)} "
                             f"models and 1 to {len(seeds)} seeds")
        est, hw = [], []
        for _ in range(reps):
            t = rng.choice(targets, nt, replace=nt > len(targets))
            m = rng.choice(models, nm, replace=False)
            s = rng.choice(seeds, ns, replace=False)
            part = table[table["model"].isin(m) & table["seed"].isin(s)]
            means = pd.concat([part[part["target"] == name].groupby("model")[[score, truth]]
                               .mean().assign(group=i) for i, name in enumerate(t)])
            out = stats.pooled_within(means[score].to_numpy(float), means[truth].to_numpy(float),
                                      means["group"].to_numpy(), "pearson", n_boot,
                                      seed=int(rng.integers(2 ** 31)))
            est.append(out["estimate"])
            hw.append((out["high"] - out["low"]) / 2)
        rows.append({"n_targets": nt, "n_models": nm, "n_seeds": ns,
                     "estimate": float(np.mean(est)), "half_width": float(np.mean(hw)),
                     "half_width_sd": float(np.std(hw, ddof=1)) if reps > 1 else np.nan})
    return pd.DataFrame(rows)


def fit_width(widths) -> dict:
    """Least-squares fit of ``log(half_width) = log(c) - b * log(T * (M - 3))`` to the rows
    of :func:`subsample_widths`: ``c``, the slope ``b`` (0.5 for the Fisher-z law), and
    ``c_half``: ``c`` with ``b`` fixed at 0.5 (what :func:`predicted_half_width` uses)."""
    x = np.log(widths["n_targets"].to_numpy(float) * (widths["n_models"].to_numpy(float) - 3))
    y = np.log(widths["half_width"].to_numpy(float))
    slope, icpt = np.polyfit(x, y, 1)
    return {"c": float(np.exp(icpt)), "b": float(-slope),
            "c_half": float(np.exp(np.mean(y + 0.5 * x)))}


def predicted_half_width(c_half: float, n_targets: int, n_models: int) -> float:
    """``c_half / sqrt(n_targets * (n_models - 3))``."""
    if n_models <= 3 or n_targets < 1:
        raise ValueError(f"need >= 1 target and > 3 models, got {n_targets} and {n_models}")
    return float(c_half / np.sqrt(n_targets * (n_models - 3)))


def design_for(c_half: float, half_width: float, n_models: int) -> int:
    """The number of targets that brings the predicted half-width to ``half_width`` with
    ``n_models`` models (the inverse of :func:`predicted_half_width`, rounded up)."""
    if not 0 < half_width < 1:
        raise ValueError(f"half_width must be in (0, 1), got {half_width!r}")
    return int(np.ceil((c_half / half_width) ** 2 / (n_models - 3)))
