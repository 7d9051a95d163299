"""Plot helpers shared by the widgets, the magics and the experiments.

* :func:`pca_2d` -- a deterministic 2-D PCA projection for scatter plots (numpy only).
* :func:`plot_layer_scores` -- bars of a score (and the ground truth) per layer, from a
  :func:`transfer_nb.selection.score_layers` table.

matplotlib is imported inside the functions that draw.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pca_2d", "plot_layer_scores"]


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
    """Bars of ``table[score]`` per layer and, when present, of ``table[truth]``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per layer, indexed by layer name (e.g. from
        :func:`transfer_nb.selection.score_layers`).
    score, truth : str
        Columns to draw; ``truth`` is skipped when the table has no such column.
    axes : sequence of matplotlib Axes, optional
        One axis, or two when the truth is drawn; a new figure when ``None``.
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
    new = axes is None
    if new:
        import matplotlib.pyplot as plt
        fig, grid = plt.subplots(1, 2 if has_truth else 1, figsize=(9 if has_truth else 5, 3.2),
                                 squeeze=False)
        axes = list(grid[0])
    names = [str(name) for name in table.index]
    x = np.arange(len(names))
    colors = ["tab:orange" if name == highlight else "tab:blue" for name in names]
    axes[0].bar(x, table[score].to_numpy(dtype=float), color=colors)
    axes[0].set_title(f"{score} per layer" + (f": {title}" if title else ""), fontsize=9)
    if has_truth and len(axes) > 1:
        axes[1].bar(x, table[truth].to_numpy(dtype=float),
                    color=["tab:orange" if name == highlight else "tab:green" for name in names])
        axes[1].set_ylim(0, 1)
        axes[1].set_title(f"{truth} per layer", fontsize=9)
    for ax in axes:
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    fig = axes[0].figure
    if new:
        fig.tight_layout()
    return fig
