"""Figures of the adversarial-sources experiment."""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments.adversarial.report import source_summary as summary

__all__ = ["plot_transfer_curve", "plot_tradeoff", "plot_examples", "plot_learning_curves"]


def plot_transfer_curve(df, truths=("linear_probe", "fine_tune"), ax=None):
    """Target accuracy against eps (mean and 95 % interval), semi-supervised sources as markers."""
    import matplotlib.pyplot as plt
    s = summary(getattr(df, "table", df))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    adv = s[s.kind.isin(["standard", "adversarial"])].sort_values("eps")
    x = np.arange(len(adv))
    for i, t in enumerate(truths):
        ax.errorbar(x, adv[t], yerr=[adv[t] - adv[t + "_low"], adv[t + "_high"] - adv[t]],
                    marker="o", capsize=3, label=t.replace("_", " "), color=f"C{i}")
        for j, kind in enumerate(("semi", "semi+adversarial")):
            r = s[s.kind == kind].iloc[0]
            xi = int(np.argmin(np.abs(adv.eps.to_numpy() - r.eps)))
            err = [[r[t] - r[t + "_low"]], [r[t + "_high"] - r[t]]]
            ax.errorbar(xi + 0.15 * (j + 1), r[t], yerr=err,
                        marker="s^"[j], color=f"C{i}", capsize=3, linestyle="none",
                        label=f"{kind} ({t.replace('_', ' ')})")
    ax.set_xticks(x, [f"{e:g}" for e in adv.eps])
    ax.set_xlabel("source adversary eps (L2, fraction of ||x||)")
    ax.set_ylabel("target test accuracy")
    ax.legend(fontsize=7)
    return ax


def plot_tradeoff(df, ax=None):
    """Source clean and robust accuracy against eps (mean and 95 % interval)."""
    import matplotlib.pyplot as plt
    s = summary(getattr(df, "table", df))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    adv = s[s.kind.isin(["standard", "adversarial"])].sort_values("eps")
    x = np.arange(len(adv))
    for i, m in enumerate(("source_clean", "source_robust")):
        ax.errorbar(x, adv[m], yerr=[adv[m] - adv[m + "_low"], adv[m + "_high"] - adv[m]],
                    marker="o", capsize=3, label=m.replace("_", " "), color=f"C{i + 2}")
    ax.set_xticks(x, [f"{e:g}" for e in adv.eps])
    ax.set_xlabel("source adversary eps (L2, fraction of ||x||)")
    ax.set_ylabel("source test accuracy")
    ax.legend(fontsize=8)
    return ax


def plot_examples(examples: dict, classes=None, axes=None):
    """Rows: clean images, adversarial images, amplified perturbation."""
    import matplotlib.pyplot as plt
    n = len(examples["clean"])
    if axes is None:
        _, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    scale = max(float(np.abs(examples["delta"]).max()), 1e-12)
    name = (lambda k: classes[k]) if classes is not None else str
    for j in range(n):
        axes[0][j].imshow(examples["clean"][j])
        axes[0][j].set_title(name(int(examples["pred_clean"][j])), fontsize=7)
        axes[1][j].imshow(np.clip(examples["adversarial"][j], 0, 1))
        axes[1][j].set_title(name(int(examples["pred_adversarial"][j])), fontsize=7)
        axes[2][j].imshow(0.5 + 0.5 * examples["delta"][j] / scale)
        for r in range(3):
            axes[r][j].axis("off")
    return axes


def plot_learning_curves(results, curve: str = "source_curve", ax=None):
    """Running training accuracy per epoch of every source (``curve="source_curve"``) or
    every LP-FT run (``"ft_curve"``), one colour per eps; the plateau gate reads these."""
    import matplotlib.pyplot as plt
    c = results.tables["curves"]
    c = c[c["curve"] == curve]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    styles = {"standard": "-", "adversarial": "-", "semi": ":", "semi+adversarial": "--"}
    eps = sorted(c["eps"].unique())
    for (kind, e, _), g in c.groupby(["kind", "eps", "seed"], sort=False):
        g = g.sort_values("epoch")
        ax.plot(g["epoch"], g["accuracy"], styles.get(kind, "-"), lw=0.8, alpha=0.7,
                color=f"C{eps.index(e)}")
    for i, e in enumerate(eps):
        ax.plot([], [], color=f"C{i}", label=f"eps {e:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("running training accuracy")
    ax.legend(fontsize=7)
    return ax
