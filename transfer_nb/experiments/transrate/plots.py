"""Figures of the TransRate experiment (each returns the matplotlib Figure)."""
from __future__ import annotations

from transfer_nb.experiments import base
from transfer_nb.experiments.transrate.report import recipe_table

__all__ = ["plot_model_selection", "plot_layer_selection", "plot_curves", "plot_recipe"]


def plot_model_selection(results, scores=("transrate_projected", "logme", "source_accuracy")):
    """Fine-tuned accuracy (seed mean, bars: seed SD) against each score, one row per
    target; the declared-degenerate models are hollow markers."""
    import matplotlib.pyplot as plt

    t = results.table
    targets = list(dict.fromkeys(t["target"]))
    fig, axes = plt.subplots(len(targets), len(scores), squeeze=False,
                             figsize=(3.6 * len(scores), 2.8 * len(targets)))
    out = base.declared_out(results)
    for i, target in enumerate(targets):
        part = t[t["target"] == target]
        g = part.groupby("model", sort=False)
        mean, sd = g["accuracy"].mean(), g["accuracy"].std(ddof=1)
        for j, s in enumerate(scores):
            ax = axes[i, j]
            x = g[s].mean()
            kept = [m for m in mean.index if m not in out]
            ax.errorbar(x[kept], mean[kept], yerr=sd[kept], fmt="o", ms=4, capsize=2)
            gone = [m for m in mean.index if m in out]
            ax.plot(x[gone], mean[gone], "o", mfc="none", color="gray", label="declared out")
            ax.set_xlabel(s)
            ax.set_ylabel(f"{target}: LP-FT accuracy" if j == 0 else "")
            if i == 0 and j == 0 and gone:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_layer_selection(results):
    """Per case: layer-selection accuracy (re-init after the layer + fine-tune) and the
    layerwise TransRate, by depth (equal width: width cannot explain the trend)."""
    import matplotlib.pyplot as plt
    layers = results.tables["layers"]
    cases = list(dict.fromkeys(layers["case"]))
    fig, axes = plt.subplots(1, max(len(cases), 1), squeeze=False, figsize=(4 * len(cases), 3))
    for ax, case in zip(axes[0], cases):
        part = layers[layers["case"] == case]
        g = part.groupby("depth")
        ax.errorbar(g["accuracy"].mean().index, g["accuracy"].mean(), yerr=g["accuracy"].std(),
                    fmt="o-", label="accuracy", capsize=2)
        ax.set_xlabel("layer (block) kept")
        ax.set_ylabel("accuracy")
        ax2 = ax.twinx()
        ax2.plot(g["transrate_layerwise"].mean().index, g["transrate_layerwise"].mean(), "s--",
                 color="C1", label="TransRate (layerwise)")
        ax2.set_ylabel("TransRate (layerwise)")
        ax.set_title(case, fontsize=9)
    fig.tight_layout()
    return fig


def plot_curves(results):
    """Training accuracy per epoch of every fine-tuning run, one panel per target: the
    training gate asks that each curve has flattened."""
    import matplotlib.pyplot as plt
    curves = results.tables["curves"]
    targets = list(dict.fromkeys(curves["target"]))
    fig, axes = plt.subplots(1, len(targets), squeeze=False, figsize=(4 * len(targets), 2.8))
    for ax, target in zip(axes[0], targets):
        for _, g in curves[curves["target"] == target].groupby(["model", "seed"]):
            ax.plot(g["epoch"], g["train_accuracy"], color="C0", alpha=0.25, lw=0.8)
        ax.set_title(f"{target}: LP-FT training accuracy", fontsize=9)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def plot_recipe(results):
    """Validation accuracy of each learning rate of the grid, per target."""
    import matplotlib.pyplot as plt

    r = recipe_table(results)
    fig, ax = plt.subplots(figsize=(4, 2.8))
    for target, g in r.groupby("target", sort=False):
        ax.plot(g["lr"], g["val_accuracy"], "o-", label=target)
        chosen = g[g["chosen"]]
        ax.plot(chosen["lr"], chosen["val_accuracy"], "k*", ms=10)
    ax.set_xscale("log")
    ax.set_xlabel("fine-tuning lr")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
