"""Figures of the "which estimator" experiment (each returns the matplotlib Figure)."""
from __future__ import annotations

from transfer_nb.experiments.which_estimator.report import _passing_items
from transfer_nb.plots import new_figure, style_axes

__all__ = ["plot_items"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def plot_items(results, columns=("params", "parc", "knn", "logme"), check_table=None):
    """Scatter of each column (item means over the draws) against the probe accuracy on
    the targets that pass the gates: one colour per target, circles for the ImageNet
    items, triangles for the small CNNs (``params`` on a log axis)."""
    sub = _passing_items(results, check_table)
    fig, axes = new_figure(ncols=len(columns), width=3.0, height=2.6, pyplot=True)
    for ax, col in zip(axes, columns):
        for (target, g), color in zip(sub.groupby("target", sort=False), _COLORS):
            for family, marker in (("imagenet", "o"), ("small_cnn", "^")):
                h = g[g["family"] == family]
                ax.scatter(h[col], h["linear_probe"], s=18, color=color, marker=marker,
                           alpha=0.8, label=f"{target}, {family}")
        if col == "params":
            ax.set_xscale("log")
        style_axes(ax, xlabel=col, ylabel="probe accuracy" if ax is axes[0] else None)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
