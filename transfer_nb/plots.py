"""Plot helpers shared by the widgets, the magics and the experiments.

* :func:`pca_2d` -- a deterministic 2-D PCA projection for scatter plots (numpy only).
* :func:`new_figure` -- the one figure factory of the widgets and the ``%transrate`` magic:
  legible at about 110 dpi (:data:`FIGURE_DPI`), tick labels of at least 9 pt.
* :func:`style_axes` -- axis labels, title and tick sizes in the shared style.
* :func:`scatter_classes` -- a 2-D scatter coloured by class, legend with class names
  (outside the points when there are many classes).
* :func:`plot_layer_scores` -- bars of a score (and the ground truth) per layer, from a
  :func:`transfer_nb.selection.score_layers` table.
* :func:`plot_estimators` -- each estimator's and baseline's correlation with the ground
  truth, bootstrap interval and leave-one-out range, from
  :func:`transfer_nb.evaluation.evaluate_estimators`.

matplotlib is imported inside the functions that draw.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pca_2d", "plot_layer_scores", "plot_estimators", "new_figure", "style_axes",
           "scatter_classes", "FIGURE_DPI", "FONT_SIZES"]

#: Resolution of every figure of the widgets and magics: about 110 px per inch, so a
#: 9 pt tick label is ~14 px on screen (80 dpi made them ~6 px once squeezed).
FIGURE_DPI = 110
#: Font sizes in points: ticks and legends never below 9 pt.
FONT_SIZES = {"tick": 9, "label": 10, "title": 10.5, "legend": 9, "annotation": 9}
#: Above this many classes the legend goes outside the axes (it would cover points).
LEGEND_INSIDE_MAX = 2


def new_figure(ncols: int = 1, width: float = 2.8, height: float = 2.6, nrows: int = 1,
               sharex: bool = False, pyplot: bool = False):
    """A figure of ``nrows x ncols`` axes in the shared, legible style.

    Parameters
    ----------
    ncols, nrows : int
        Grid of axes.
    width, height : float
        Size in inches of *one* axis cell (the figure is ``width * ncols`` by
        ``height * nrows``) at :data:`FIGURE_DPI`.
    sharex : bool
        Share the x axis between rows (tick labels only on the bottom row).
    pyplot : bool
        Create it through pyplot (registered with the active backend, so ``plt.show()``
        shows it: what the magics want).  The default, a bare
        ``matplotlib.figure.Figure``, is what widgets want: the inline backend would
        otherwise display it a second time at the end of the cell.

    Returns
    -------
    (matplotlib.figure.Figure, list of Axes)
        The axes in row-major order.
    """
    size = (width * ncols, height * nrows)
    if pyplot:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=size, dpi=FIGURE_DPI, layout="constrained")
    else:
        from matplotlib.figure import Figure
        fig = Figure(figsize=size, dpi=FIGURE_DPI, layout="constrained")
    axes = []
    for i in range(nrows * ncols):
        share = axes[i - ncols] if sharex and i >= ncols else None
        axes.append(fig.add_subplot(nrows, ncols, i + 1, sharex=share))
    for ax in axes:
        style_axes(ax)
    return fig, axes


def style_axes(ax, xlabel: str | None = None, ylabel: str | None = None,
               title: str | None = None) -> None:
    """Set labels and title (when given) and the tick size of ``ax`` in the shared style."""
    ax.tick_params(labelsize=FONT_SIZES["tick"])
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=FONT_SIZES["label"])
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=FONT_SIZES["label"])
    if title is not None:
        ax.set_title(title, fontsize=FONT_SIZES["title"])


def class_name(label, class_names=None) -> str:
    """Display name of ``label``: ``class_names[label]`` for an integer index into it."""
    if class_names is not None and isinstance(label, (int, np.integer)) \
            and 0 <= int(label) < len(class_names):
        return str(class_names[int(label)])
    return str(label.item() if isinstance(label, np.generic) else label)


def scatter_classes(ax, P, y, class_names=None, size: float = 10.0) -> None:
    """Scatter the 2-D points ``P`` coloured by class with a legend of class names.

    Parameters
    ----------
    ax : matplotlib Axes
    P : array-like, shape (n, 2)
        E.g. from :func:`pca_2d`.
    y : array-like, shape (n,)
        Labels.
    class_names : sequence of str, optional
        Names of integer labels (``class_names[i]`` for label ``i``), e.g. a dataset's
        ``.classes``; other labels are shown as they are.
    size : float
        Marker size.

    Notes
    -----
    Up to :data:`LEGEND_INSIDE_MAX` classes the legend sits inside the axes at the best
    place; with more it goes outside, on the right, so it never covers points.
    """
    P = np.asarray(P, dtype=float)
    y = np.asarray(y)
    labels = np.unique(y)
    cmap = "tab10" if len(labels) <= 10 else "tab20"
    import matplotlib

    colors = matplotlib.colormaps[cmap].colors
    for i, label in enumerate(labels):
        mask = y == label
        ax.scatter(P[mask, 0], P[mask, 1], s=size, alpha=0.75, color=colors[i % len(colors)],
                   label=class_name(label, class_names))
    if len(labels) > 20:
        return  # a legend of more classes than colours would mislead
    if len(labels) <= LEGEND_INSIDE_MAX:
        ax.legend(fontsize=FONT_SIZES["legend"], markerscale=1.5, loc="best")
    else:
        ax.legend(fontsize=FONT_SIZES["legend"], markerscale=1.5, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                  ncols=1 if len(labels) <= 12 else 2, handletextpad=0.2)


def pca_2d(Z) -> np.ndarray:
    """Project rows of ``Z`` on their first two principal components.

    Parameters
    ----------
    Z : array-like, shape (n, d)
        Numpy array or torch tensor of any float dtype.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64
        Coordinates on the top two components.  Signs are fixed (the entry of largest
        magnitude of each component is positive) so the picture does not flip between
        runs.  With ``d == 1`` (or rank < 2) the missing coordinates are zero.
    """
    if hasattr(Z, "detach"):
        Z = Z.detach().cpu().numpy()
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"Z must be a non-empty 2-D array (n, d), got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z contains NaN or infinite values")
    Zc = Z - Z.mean(axis=0)
    out = np.zeros((Z.shape[0], 2))
    # SVD of the centred data: right singular vectors are the principal axes.
    _, s, vt = np.linalg.svd(Zc, full_matrices=False)
    m = min(2, vt.shape[0])
    for j in range(m):
        if s[j] <= 1e-12 * max(s[0], 1e-300):
            break
        v = vt[j]
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        out[:, j] = Zc @ v
    return out


def plot_layer_scores(table, score: str = "transrate", truth: str = "accuracy",
                      axes=None, highlight=None, title: str | None = None):
    """Bars of ``table[score]`` per layer and, when present, of ``table[truth]`` below it.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per layer, indexed by layer name (e.g. from
        :func:`transfer_nb.selection.score_layers`).
    score, truth : str
        Columns to draw; ``truth`` is skipped when the table has no such column.
    axes : sequence of matplotlib Axes, optional
        One axis, or two when the truth is drawn; a new pyplot figure (from
        :func:`new_figure`, score above truth with a shared layer axis) when ``None``.
    highlight : str, optional
        Layer drawn in orange (e.g. the chosen layer).
    title : str, optional
        Added to the score panel's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if score not in table.columns:
        raise ValueError(f"table has no column {score!r}; it has {list(table.columns)}")
    has_truth = truth in table.columns
    if axes is None:
        _, axes = new_figure(nrows=2 if has_truth else 1, width=max(4.5, 0.45 * len(table)),
                             height=2.2 if has_truth else 2.8, sharex=has_truth,
                             pyplot=True)
    names = [str(name) for name in table.index]
    x = np.arange(len(names))
    colors = ["tab:orange" if name == highlight else "tab:blue" for name in names]
    label = "TransRate" if score == "transrate" else score
    axes[0].bar(x, table[score].to_numpy(dtype=float), color=colors)
    style_axes(axes[0], ylabel=f"{label} (nats)" if score == "transrate" else label,
               title=f"{label} per layer" + (f": {title}" if title else ""))
    axes[0].axhline(0, color="black", linewidth=0.6)
    shown = [axes[0]]
    if has_truth and len(axes) > 1:
        axes[1].bar(x, table[truth].to_numpy(dtype=float),
                    color=["tab:orange" if name == highlight else "tab:green" for name in names])
        axes[1].set_ylim(0, 1.05)
        style_axes(axes[1], ylabel="probe accuracy" if truth == "accuracy" else truth)
        shown.append(axes[1])
    stacked = len(shown) == 2 and shown[0].get_shared_x_axes().joined(shown[0], shown[1])
    for i, ax in enumerate(shown):
        if stacked and i == 0:
            ax.tick_params(labelbottom=False)
            continue
        ax.set_xticks(x, names, rotation=45, ha="right", rotation_mode="anchor",
                      fontsize=FONT_SIZES["tick"])
        style_axes(ax, xlabel="layer")
    return axes[0].figure


#: colours of :func:`plot_estimators`
_KIND_COLORS = {"estimator": "tab:blue", "baseline": "tab:gray", "best": "tab:orange"}
_STAT_LABELS = {"pearson": "Pearson r", "kendall": "Kendall tau", "weighted_tau": "weighted tau"}


def plot_estimators(evaluation, statistic: str | None = None, ax=None, title: str | None = None):
    """Each column's correlation with the ground truth: point, interval, leave-one-out range.

    Parameters
    ----------
    evaluation : pandas.DataFrame
        From :func:`transfer_nb.evaluation.evaluate_estimators`.
    statistic : {"pearson", "kendall", "weighted_tau"}, optional
        Default: the one the evaluation ranked by (``attrs["statistic"]``).
    ax : matplotlib Axes, optional
        A new pyplot figure (:func:`new_figure`) when ``None``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One row per column, best at the top: a dot at the pooled statistic, a thick bar
        for its bootstrap interval and, when drawn for this statistic, thin ticks at the
        leave-one-out min and max.  Estimators are blue, baselines grey, the best column
        (or the reference of ``against``) orange; undefined columns are listed with
        "n/a".
    """
    stat = statistic or evaluation.attrs.get("statistic", "kendall")
    if stat not in _STAT_LABELS:
        raise ValueError(f"statistic must be one of {list(_STAT_LABELS)}; got {stat!r}")
    for col in (stat, f"{stat}_low", f"{stat}_high"):
        if col not in evaluation.columns:
            raise ValueError(f"evaluation has no column {col!r}: pass the output of "
                             "evaluate_estimators")
    table = evaluation.sort_values(stat, ascending=True, na_position="first", kind="stable")
    if ax is None:
        _, (ax,) = new_figure(width=5.0, height=max(2.0, 0.3 * len(table) + 0.8), pyplot=True)
    names = [str(i) for i in table.index]
    yy = np.arange(len(names))
    ref = evaluation.attrs.get("against")
    loo = stat == evaluation.attrs.get("statistic")
    for i, (name, row) in enumerate(table.iterrows()):
        value = float(row[stat])
        if not np.isfinite(value):
            ax.text(-1.0, i, "n/a (see note)", va="center", ha="left",
                    fontsize=FONT_SIZES["annotation"], color="tab:gray")
            continue
        color = _KIND_COLORS["best"] if str(name) == ref else \
            _KIND_COLORS.get(str(row.get("kind", "estimator")), "tab:blue")
        lo, hi = float(row[f"{stat}_low"]), float(row[f"{stat}_high"])
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [i, i], color=color, linewidth=3, alpha=0.45,
                    solid_capstyle="butt")
        if loo and np.isfinite(row.get("loo_min", np.nan)):
            ax.plot([row["loo_min"], row["loo_max"]], [i, i], linestyle="none", marker="|",
                    markersize=9, color="black")
        ax.plot([value], [i], marker="o", color=color, markersize=5)
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_yticks(yy, names, fontsize=FONT_SIZES["tick"])
    ax.set_xlim(-1.05, 1.05)
    style_axes(ax, xlabel=_STAT_LABELS[stat] + " with the ground truth"
               + (" (pooled within groups)" if evaluation.attrs.get("groups") else ""),
               title=title or "interval (bar), drop-one range (|)")
    return ax.figure
