"""PGE experiment: figures."""
from __future__ import annotations


import numpy as np

from transfer_nb.experiments.pge.report import pair_frame, stability_table

def plot_matrices(res: dict):
    """Heatmaps: PGE distance, baseline distance and mean transfer gain (source x target)."""
    import matplotlib.pyplot as plt

    names = res["names"]
    gain = np.mean(res["gain"]["gain"], axis=0)
    mats = [(res["pge"]["distance"], "PGE distance (lower = closer)", "viridis_r"),
            (res["baseline"]["distance"], "baseline: mean-feature distance", "viridis_r"),
            (gain, "transfer gain (row source -> column target)", "RdBu")]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
    for ax, (m, title, cmap) in zip(axes, mats):
        m = np.array(m, dtype=float)
        if cmap == "RdBu":
            lim = np.nanmax(np.abs(m))
            im = ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
        else:
            m = m.copy()
            np.fill_diagonal(m, np.nan)
            im = ax.imshow(m, cmap=cmap)
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.7)
    return fig


def plot_scatter(res: dict):
    """Gain vs PGE and vs the baseline, one point per pair (seed spread as error bars)."""
    import matplotlib.pyplot as plt

    df = pair_frame(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, col, label in zip(axes, ("pge", "baseline"),
                              ("PGE distance", "baseline mean-feature distance")):
        for ok, marker in ((True, "o"), (False, "x")):
            sub = df[df["target_ok"] == ok]
            if len(sub):
                ax.errorbar(sub[col], sub["gain"], yerr=sub["gain_sd"], fmt=marker, alpha=0.7,
                            label="target discriminates" if ok else "target excluded")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("transfer gain (accuracy)")
        ax.legend(fontsize=8)
    return fig


def plot_stability(res: dict):
    """Seed-to-seed spread of the distance and wall-clock vs the number of restarts."""
    import matplotlib.pyplot as plt

    tab = stability_table(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for (m, bt), sub in tab.groupby(["method", "batches"], sort=False):
        label = f"{m}, batches: {bt}" if m == "PGE" else "baseline (mean features)"
        axes[0].plot(sub["restarts"], sub["noise/signal"], "o-", label=label)
        axes[1].plot(sub["restarts"], sub["seconds"], "o-", label=label)
    axes[0].set_ylabel("spread across seeds / spread across pairs")
    axes[1].set_ylabel("seconds per distance (wall-clock)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("restarts")
        ax.legend(fontsize=8)
    return fig
