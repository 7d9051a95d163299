"""Regression experiment: figures."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.regression.config import ESTIMATORS
from transfer_nb.experiments.regression.run import RegressionResults

# ------------------------------------------------------------------------- plots
def plot_scores(results: RegressionResults, columns=ESTIMATORS):
    """Each estimator vs the ground truth, one row of panels per target."""
    import matplotlib.pyplot as plt
    targets = list(results.cfg.targets)
    fig, axes = plt.subplots(len(targets), len(columns), figsize=(3.6 * len(columns),
                                                                  3.0 * len(targets)),
                             squeeze=False, layout="constrained")
    t = results.table
    for i, target in enumerate(targets):
        part = t[t["target"] == target]
        for j, col in enumerate(columns):
            ax = axes[i, j]
            ax.scatter(part[col], part["neg_mse"], c="C0")
            for _, r in part.iterrows():
                ax.annotate(r["model"], (r[col], r["neg_mse"]), fontsize=6)
            ax.set_xlabel(col)
            ax.set_ylabel(f"{target}: -test MSE" if j == 0 else "")
    return fig


def plot_correlations(corr, shuffled=None, stat: str = "pearson"):
    """Correlation with its 95 % interval per score and target (shuffled control beside)."""
    import matplotlib.pyplot as plt
    frames = [("real targets", corr)] + ([("shuffled targets", shuffled)]
                                         if shuffled is not None else [])
    targets = list(dict.fromkeys(corr["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.0 * len(targets), 3.2), squeeze=False,
                             layout="constrained")
    for ax, target in zip(axes[0], targets):
        for k, (label, df) in enumerate(frames):
            part = df[df["target"] == target]
            y = np.arange(len(part)) + 0.2 * k
            lo = part[stat] - part[f"{stat}_low"]
            hi = part[f"{stat}_high"] - part[stat]
            ax.errorbar(part[stat], y, xerr=[lo, hi], fmt="o", label=label, color=f"C{k}")
            if k == 0:
                ax.set_yticks(y, part["score"])
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(target)
        ax.set_xlabel(f"{stat} with -test MSE")
    axes[0, -1].legend(fontsize=7)
    return fig


def plot_lambda(table, target: str = ""):
    """Pearson r (and interval) of Linear / Label MSE against lambda."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    lam = table["lambda"].to_numpy()
    x = np.where(lam > 0, lam, lam[lam > 0].min() / 10 if (lam > 0).any() else 1e-5)
    for k, name in enumerate(("linear_mse", "label_mse")):
        ax.plot(x, table[f"{name}_pearson"], "o-", color=f"C{k}", label=name)
        ax.fill_between(x, table[f"{name}_pearson_low"], table[f"{name}_pearson_high"],
                        color=f"C{k}", alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("Pearson r with -test MSE")
    ax.set_title(target)
    ax.legend(fontsize=7)
    return fig
