"""Figures of the PGE experiment (from a :class:`~transfer_nb.experiments.base.Results`,
stored or fresh)."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.pge.report import pair_means, stability_table

__all__ = ["plot_matrices", "plot_within_target", "plot_stability"]


def _matrix(means, col: str, names: list) -> np.ndarray:
    m = np.full((len(names), len(names)), np.nan)
    for _, r in means.iterrows():
        if r["source"] in names and r["target"] in names:
            m[names.index(r["source"]), names.index(r["target"])] = r[col]
    return m


def plot_matrices(results):
    """Heatmaps (row source, column target): PGE distance, the control's distance, the
    baseline's distance and the seed-mean LP-FT transfer accuracy."""
    import matplotlib.pyplot as plt
    means = pair_means(results)
    names = list(dict.fromkeys(list(means["source"]) + list(means["target"])))
    mats = [("pge", "PGE distance (lower = closer)", "viridis_r"),
            ("pge_permuted", "PGE, target labels permuted", "viridis_r"),
            ("baseline", "baseline: mean-feature distance", "viridis_r"),
            ("accuracy", "LP-FT transfer accuracy", "viridis")]
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.6), layout="constrained")
    for ax, (col, title, cmap) in zip(axes, mats):
        m = _matrix(means, col, names)
        im = ax.imshow(m, cmap=cmap)
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.6)
    return fig


def plot_within_target(results):
    """One panel per target: transfer accuracy (seed mean) against PGE distance over its
    sources -- the within-target question the primary claim asks."""
    import matplotlib.pyplot as plt
    means = pair_means(results)
    targets = list(dict.fromkeys(means["target"]))
    cols = min(5, len(targets))
    rows = int(np.ceil(len(targets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.9 * rows),
                             layout="constrained", squeeze=False)
    for ax, t in zip(axes.ravel(), targets):
        part = means[means["target"] == t]
        ax.scatter(part["pge"], part["accuracy"], s=18, label="PGE")
        ax.scatter(part["pge_permuted"], part["accuracy"], s=18, marker="x",
                   label="labels permuted")
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("PGE distance", fontsize=8)
        ax.set_ylabel("transfer accuracy", fontsize=8)
    for ax in axes.ravel()[len(targets):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    return fig


def plot_stability(results):
    """Noise/signal (95% bootstrap interval over seeds) against the number of restarts,
    per method, reduction and number of batches."""
    import matplotlib.pyplot as plt
    tab = stability_table(results)
    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    for (m, red, b), sub in tab.groupby(["method", "reduce", "batches"], sort=False):
        label = (f"PGE, {red}, batches: {'all' if b == 0 else b}" if m == "PGE"
                 else "baseline (mean features)")
        err = np.vstack([sub["noise_signal"] - sub["low"], sub["high"] - sub["noise_signal"]])
        ax.errorbar(sub["restarts"], sub["noise_signal"], yerr=err, fmt="o-", capsize=3,
                    label=label, alpha=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("restarts")
    ax.set_ylabel("noise / signal")
    ax.legend(fontsize=7)
    return fig
