"""Plots of the TransRate experiment's tables."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.transrate.report import layer_correlation, timing_table

__all__ = ["plot_model_selection", "plot_eps_sweep", "plot_timings", "plot_layer_selection"]


def plot_model_selection(df, estimators=("transrate_projected", "logme", "source_epochs"),
                         zoo: str = "small_cnn", check=None):
    """One row per target, one scatter per score: score vs mean fine-tuned accuracy,
    with the seed spread as error bars; failing targets are marked in the title."""
    import matplotlib.pyplot as plt
    part = df[df["zoo"] == zoo]
    targets = list(dict.fromkeys(part["target"]))
    fig, axes = plt.subplots(len(targets), len(estimators),
                             figsize=(3.3 * len(estimators), 2.8 * len(targets)), squeeze=False)
    for i, t in enumerate(targets):
        p = part[part["target"] == t]
        fails = ""
        if check is not None:
            row = check[(check["zoo"] == zoo) & (check["target"] == t)]
            fails = "" if row["passes"].all() else " (fails check)"
        for j, est in enumerate(estimators):
            ax = axes[i][j]
            ax.errorbar(p[est], p["accuracy"], yerr=p["accuracy_std"], fmt="o", ms=4, capsize=2)
            ax.set_xlabel(est, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{t}{fails}\nfine-tuned accuracy", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_eps_sweep(sweep):
    """Pearson of the projected TransRate vs eps (log axis), one line per target, with
    the 95 % interval as a band; the paper's CIFAR-100 eps marked."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for t in [c for c in sweep.columns if not c.endswith(("_low", "_high"))]:
        ax.plot(sweep.index, sweep[t], "o-", label=t)
        ax.fill_between(sweep.index, sweep[f"{t}_low"], sweep[f"{t}_high"], alpha=0.15)
    ax.axvline(1.5e-2, color="k", ls=":", lw=1, label="paper (CIFAR-100)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("eps (projected variant)")
    ax.set_ylabel("Pearson with accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_timings(df):
    """Bar chart (log scale) of the median wall-clock per estimator, feature pass and
    fine-tuning."""
    import matplotlib.pyplot as plt
    t = timing_table(df)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(t.index, t.values)
    ax.set_yscale("log")
    ax.set_ylabel("median seconds")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_title("wall-clock per (model, target)")
    fig.tight_layout()
    return fig


def plot_layer_selection(df):
    """Per layer: accuracy after re-init + fine-tune (bars with seed spread, right axis),
    TransRate snippet / layerwise and the width (lines, left axes, standardised)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.4))
    x = np.arange(len(df))
    ax2 = ax.twinx()
    ax2.bar(x, df["accuracy"], yerr=df["accuracy_std"], color="C1", alpha=0.35, capsize=3)
    ax2.set_ylabel("re-init + fine-tune accuracy", color="C1")
    for col, style in (("transrate", "o-"), ("transrate_layerwise", "s-"), ("width", "k^--")):
        v = df[col].to_numpy(dtype=float)
        z = (v - v.mean()) / (v.std() or 1.0)
        ax.plot(x, z, style, label=col)
    ax.set_ylabel("score (standardised)")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{l}\n(w={w})" for l, w in zip(df["layer"], df["width"])], fontsize=8)
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=8, loc="upper left")
    c = layer_correlation(df)
    ax.set_title("Pearson with accuracy: " + ", ".join(
        f"{k} {c.loc[k, 'pearson']:.2f}" for k in c.index), fontsize=9)
    fig.tight_layout()
    return fig
