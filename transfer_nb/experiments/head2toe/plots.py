"""Plots of the Head2Toe experiment."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.head2toe.report import accuracy_table

__all__ = ["plot_accuracy", "plot_layer_counts"]


def plot_accuracy(results, ax=None):
    """Accuracy per target and method (mean, 95% interval over seeds); near targets
    first, far ones after the dashed line."""
    import matplotlib.pyplot as plt
    acc = accuracy_table(results)
    order = list(acc.sort_values("group", key=lambda g: g.map({"near": 0, "far": 1}),
                                 kind="stable")["target"].unique())
    methods = list(dict.fromkeys(acc["method"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 1.2 * len(order), 3.4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        g = acc[acc["method"] == m].set_index("target").reindex(order)
        x = np.arange(len(order)) + (i - (len(methods) - 1) / 2) * width
        err = np.vstack([g["mean"] - g["low"], g["high"] - g["mean"]])
        ax.bar(x, g["mean"], width, label=m)
        ax.errorbar(x, g["mean"], yerr=np.nan_to_num(err), fmt="none", ecolor="k", lw=1)
    n_near = int((acc.drop_duplicates("target")["group"] == "near").sum())
    if 0 < n_near < len(order):
        ax.axvline(n_near - 0.5, ls="--", color="grey")
    ax.set_xticks(np.arange(len(order)), order)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("near the source (photos) | far (renderings)" if 0 < n_near < len(order)
                 else "accuracy per target")
    ax.legend(fontsize=7, loc="lower left")
    return ax


def plot_layer_counts(results, keep_fraction: float = 0.1, ax=None):
    """Kept features per layer at ``keep_fraction`` (mean over seeds), one bar group per
    target: where Head2Toe takes its features from."""
    import matplotlib.pyplot as plt
    lay = results.tables["layers"]
    lay = lay[np.isclose(lay["keep_fraction"], keep_fraction)]
    tab = lay.groupby(["target", "layer"], sort=False)["count"].mean().unstack("layer")
    layers = list(dict.fromkeys(lay["layer"]))
    tab = tab[layers]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(tab)
    for i, (target, row) in enumerate(tab.iterrows()):
        x = np.arange(len(layers)) + (i - (len(tab) - 1) / 2) * width
        ax.bar(x, row.to_numpy(), width, label=target)
    ax.set_xticks(np.arange(len(layers)), layers, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("kept features")
    ax.set_title(f"kept features per layer (keep_fraction={keep_fraction:g})")
    ax.legend(fontsize=8)
    return ax
