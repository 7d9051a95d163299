"""Head2ToeExplorer: how many features from which layers? A kept-fraction slider."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from transfer_nb.head2toe import KEEP_FRACTIONS, fraction_sweep

from ._common import ErrorArea, fmt, html_table, new_figure, show_figure

__all__ = ["Head2ToeExplorer"]

_EXPLANATION = (
    "<p><b>Head2Toe.</b> Features from <i>every</i> layer are pooled, L2-normalised per "
    "layer and concatenated; a linear head with a group-lasso penalty (one group per "
    "feature) scores them, and only the top <i>kept fraction</i> feeds the final linear "
    "head. The selection is computed once; moving the slider only shows the head "
    "trained on that fraction: its test accuracy and where its features come from.</p>")


class Head2ToeExplorer(W.VBox):
    """Explore Head2Toe's kept fraction: test accuracy and the layer histogram.

    Everything is computed once at construction (:func:`transfer_nb.head2toe.fraction_sweep`:
    one group-lasso selection, one final head per fraction); the slider then only
    switches between the stored results.

    Parameters
    ----------
    train_features, test_features : dict of str -> (n, d) arrays, optional
        Head2Toe features (:func:`transfer_nb.head2toe.head2toe_features`).
    y_train, y_test : array-like, optional
    fractions : sequence of float
        Kept fractions offered by the slider (default: the paper's 0.01 .. 0.2).
    group_lasso, steps, lr, seed :
        As for :class:`transfer_nb.head2toe.Head2Toe`.
    sweep : list of dict, optional
        A precomputed ``fraction_sweep`` result (then no features are needed).
    baseline : float, optional
        An accuracy to show beside (e.g. the last-layer linear probe).

    Attributes (traitlets: ``observe`` / ``link`` work)
    ----------------------------------------------------
    fraction : float
        The kept fraction shown (follows the slider).
    accuracy : float
        Test accuracy of the head on that fraction.
    n_features : int
        Number of kept features.
    layer_counts : dict
        Layer name -> kept features.
    """

    fraction = traitlets.Float(float("nan"))
    accuracy = traitlets.Float(float("nan"))
    n_features = traitlets.Int(0)
    layer_counts = traitlets.Dict()

    def __init__(self, train_features=None, y_train=None, test_features=None, y_test=None, *,
                 fractions=KEEP_FRACTIONS, group_lasso: float = 1e-4, steps: int = 300,
                 lr: float = 0.01, seed: int = 0, sweep=None, baseline: float | None = None):
        self.errors = ErrorArea()
        self.summary = W.HTML()
        self.summary.add_class("tnb-head2toe")
        self.plot = W.Output()
        self.baseline = baseline
        self.results: list[dict] = []
        self.slider = W.SelectionSlider(options=[("-", 0)], description="kept fraction",
                                        continuous_update=False,
                                        style={"description_width": "110px"},
                                        layout=W.Layout(width="420px"))
        super().__init__([W.HTML(_EXPLANATION), self.slider, self.errors, self.summary,
                          self.plot])
        try:
            if sweep is None:
                if train_features is None or test_features is None:
                    raise ValueError("pass train/test features and labels, or sweep=")
                sweep = fraction_sweep(train_features, y_train, test_features, y_test,
                                       fractions, group_lasso=group_lasso, steps=steps,
                                       lr=lr, seed=seed)
            if not sweep:
                raise ValueError("sweep is empty; expected one result per kept fraction")
            self.results = sorted(sweep, key=lambda r: r["keep_fraction"])
        except Exception as exc:  # shown inside the widget, which stays usable
            self.errors.show(exc)
            return
        self.slider.options = [(f"{r['keep_fraction']:g}", i) for i, r in enumerate(self.results)]
        self.slider.observe(self._on_slider, names="value")
        # start at the paper's default fraction when offered
        fr = [r["keep_fraction"] for r in self.results]
        start = int(np.argmin(np.abs(np.asarray(fr) - 0.1)))
        if self.slider.value == start:
            self._show(start)
        else:
            self.slider.value = start

    def _on_slider(self, change) -> None:
        self._show(int(change["new"]))

    def _show(self, i: int) -> None:
        try:
            r = self.results[i]
            self.layer_counts = dict(r["layer_counts"])
            self.n_features = int(r["n_features"])
            self.accuracy = float(r["accuracy"])
            self.fraction = float(r["keep_fraction"])
            rows = [["kept fraction", fmt(self.fraction, 3)],
                    ["kept features", str(self.n_features)],
                    ["test accuracy", fmt(self.accuracy)]]
            if self.baseline is not None:
                rows.append(["last-layer probe", fmt(self.baseline)])
            self.summary.value = html_table(["", ""], [[html.escape(a), b] for a, b in rows])
            self._draw()
            self.errors.clear()
        except Exception as exc:
            self.errors.show(exc)

    def _draw(self) -> None:
        fig, (ax_h, ax_a) = new_figure(ncols=2, width=4.0, height=3.0)
        names = list(self.layer_counts)
        ax_h.bar(np.arange(len(names)), [self.layer_counts[n] for n in names], color="C0")
        ax_h.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax_h.set_ylabel("kept features")
        ax_h.set_title("where the kept features come from", fontsize=9)
        fr = [r["keep_fraction"] for r in self.results]
        acc = [r["accuracy"] for r in self.results]
        ax_a.plot(fr, acc, "o-", color="C1")
        ax_a.plot([self.fraction], [self.accuracy], "o", ms=10, mfc="none", color="k")
        if self.baseline is not None:
            ax_a.axhline(self.baseline, ls="--", color="grey", label="last-layer probe")
            ax_a.legend(fontsize=7)
        ax_a.set_xscale("log")
        ax_a.set_xlabel("kept fraction")
        ax_a.set_ylabel("test accuracy")
        ax_a.set_title("accuracy vs kept fraction", fontsize=9)
        show_figure(self.plot, fig)
