"""Figures of the regression experiment."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments import base
from transfer_nb.experiments.regression.report import model_means

__all__ = ["plot_scores", "plot_control", "plot_lambda"]


def plot_scores(results, columns=("linear_mse", "label_mse", "logme")):
    """Each score (seed-mean) against the truth, one row of panels per target; the
    declared-degenerate models drawn hollow."""
    import matplotlib.pyplot as plt
    t = model_means(results, include_degenerate=True)
    out = base.declared_out(results)
    targets = list(dict.fromkeys(t["target"]))
    fig, axes = plt.subplots(len(targets), len(columns), figsize=(3.2 * len(columns),
                                                                  2.6 * len(targets)),
                             squeeze=False, layout="constrained")
    for i, target in enumerate(targets):
        part = t[t["target"] == target]
        deg = part["model"].isin(out).to_numpy()
        for j, col in enumerate(columns):
            ax = axes[i, j]
            ax.scatter(part[col][~deg], part["neg_mse"][~deg], c="C0", s=18)
            ax.scatter(part[col][deg], part["neg_mse"][deg], facecolors="none",
                       edgecolors="C3", s=30, label="declared out")
            ax.set_xlabel(col, fontsize=8)
            ax.set_ylabel(f"{target}\n-test MSE" if j == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7)
    return fig


def plot_control(control):
    """Pooled-within Pearson per estimator on real and shuffled targets, with the paired
    difference's interval (:func:`report.control_table`)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(control) + 1.2), layout="constrained")
    y = np.arange(len(control))
    ax.scatter(control["real"], y, color="C0", label="real targets")
    ax.scatter(control["shuffled"], y, color="C1", marker="x", label="shuffled targets")
    ax.errorbar(control["difference"], y + 0.2, xerr=[control["difference"] - control["low"],
                                                     control["high"] - control["difference"]],
                fmt="s", color="C2", ms=4, label="real - shuffled (95% CI)")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, control["estimator"])
    ax.set_xlabel("Pearson r with -test MSE (pooled within target)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_lambda(table, target: str = ""):
    """Pearson r (and interval) of Linear / Label MSE against lambda
    (:func:`report.lambda_correlations`)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.0), layout="constrained")
    lam = table["lambda"].to_numpy(float)
    x = np.where(lam > 0, lam, lam[lam > 0].min() / 10 if (lam > 0).any() else 1e-5)
    for k, name in enumerate(("linear_mse", "label_mse")):
        ax.plot(x, table[f"{name}_pearson"], "o-", color=f"C{k}", label=name)
        ax.fill_between(x, table[f"{name}_pearson_low"], table[f"{name}_pearson_high"],
                        color=f"C{k}", alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("lambda on standardised inputs (leftmost point: lambda = 0)")
    ax.set_ylabel("Pearson r with -test MSE")
    ax.set_title(target)
    ax.legend(fontsize=7)
    return fig

