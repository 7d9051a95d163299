"""Plots of the TransRate experiment's tables."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.transrate.report import (correlation_table, layer_correlation,
                                                      timing_table)
from transfer_nb.stats import rank_correlations

__all__ = ["plot_model_selection", "plot_correlations", "plot_timings", "plot_layer_selection"]


def plot_model_selection(df, estimator: str = "transrate", annotate: bool = True):
    """One scatter per target: ``estimator`` score vs fine-tuned accuracy, per model."""
    import matplotlib.pyplot as plt
    if estimator not in df.columns:
        raise ValueError(f"df has no column {estimator!r}")
    targets = list(dict.fromkeys(df["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets):
        part = df[df["target"] == target]
        for kind, marker in (("ImageNet", "o"), ("trained source", "s")):
            sel = part[part["kind"] == kind] if "kind" in part else part
            ax.scatter(sel[estimator], sel["accuracy"], marker=marker, label=kind)
        if annotate:
            for _, r in part.iterrows():
                ax.annotate(str(r["model"]).replace("efficientnet_", ""),
                            (r[estimator], r["accuracy"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        c = rank_correlations(part[[estimator]], part["accuracy"]).iloc[0]
        ax.set_title(f"{target}: r={c['pearson']:.2f} [{c['pearson_low']:.2f}, "
                     f"{c['pearson_high']:.2f}]", fontsize=9)
        ax.set_xlabel(estimator)
        ax.set_ylabel("fine-tuned test accuracy")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_correlations(corr, stat: str = "pearson"):
    """Grouped bars: one group per target, one bar per estimator."""
    import matplotlib.pyplot as plt
    table = correlation_table(corr, stat)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    table.plot.bar(ax=ax, rot=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel(stat)
    ax.set_title(f"{stat} correlation with fine-tuned accuracy")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


def plot_timings(df):
    """Bar chart (log scale) of the median wall-clock per estimator."""
    import matplotlib.pyplot as plt
    t = timing_table(df)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(t.index, t.values)
    ax.set_yscale("log")
    ax.set_ylabel("median seconds")
    ax.set_title("wall-clock per (model, target)")
    fig.tight_layout()
    return fig


def plot_layer_selection(df, score: str = "transrate"):
    """TransRate (line, left axis) and accuracy (bars, right axis) per layer."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(df))
    ax2 = ax.twinx()
    ax2.bar(x, df["accuracy"], color="C1", alpha=0.35, label="accuracy")
    ax.plot(x, df[score], "o-", color="C0", label=score)
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(score, color="C0")
    ax2.set_ylabel(f"accuracy ({df['protocol'].iloc[0]})", color="C1")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    c = layer_correlation(df, score)
    ax.set_title(f"layer selection: pearson={c['pearson']:.2f} [{c['pearson_low']:.2f}, "
                 f"{c['pearson_high']:.2f}], kendall={c['kendall']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig
