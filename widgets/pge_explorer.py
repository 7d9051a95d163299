"""PGEExplorer: pick a source and a target task, see where their principal gradients agree."""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import traitlets

from transfer_nb.estimators.pge import pge_distance
from transfer_nb.experiments.pge import per_layer_similarity

from ._common import ErrorArea, new_figure, show_figure

__all__ = ["PGEExplorer"]

_EXPLANATION = (
    "<p><b>Principal gradients, layer by layer.</b> PGE compares two tasks by the "
    "direction of their average loss gradient at the same random weights. Here the "
    "cosine similarity of the two principal gradients is split by layer: +1 means the two "
    "tasks push that layer the same way, 0 unrelated directions.</p>")


class PGEExplorer(W.VBox):
    """Per-layer similarity of the principal gradients of two tasks.

    Parameters
    ----------
    results : dict
        The output of :func:`transfer_nb.experiments.pge.run` (uses ``names``,
        ``pge["gradients"]`` (T, R, p), ``pge["param_names"]``, ``pge["param_sizes"]``
        and, when present, ``gain["gain"]``).
    source, target : str, optional
        Initial pair (default: the first two tasks).

    Attributes (traitlets, so ``observe`` and ``link`` work)
    ----------
    source, target : str
        The selected pair (also the dropdowns' values).
    similarity : dict
        Layer -> cosine similarity of the two principal gradients.
    distance : float
        PGE distance of the pair (:func:`transfer_nb.estimators.pge_distance`).
    gain : float
        Measured transfer gain source -> target (seed mean), NaN when not measured.
    """

    source = traitlets.Unicode()
    target = traitlets.Unicode()
    similarity = traitlets.Dict()
    distance = traitlets.Float(float("nan"))
    gain = traitlets.Float(float("nan"))

    def __init__(self, results: dict, source: str | None = None, target: str | None = None):
        names = list(results["names"])
        if len(names) < 2:
            raise ValueError(f"results must hold at least 2 tasks; got {names}")
        self._names = names
        self._grads = np.asarray(results["pge"]["gradients"])
        self._param_names = list(results["pge"]["param_names"])
        self._param_sizes = list(results["pge"]["param_sizes"])
        gain = results.get("gain")
        self._gain = None if gain is None else np.mean(np.asarray(gain["gain"]), axis=0)
        self.errors = ErrorArea()
        self.source_box = W.Dropdown(options=names, description="source")
        self.target_box = W.Dropdown(options=names, description="target")
        self.summary = W.HTML()
        self.plot = W.Output()
        super().__init__([W.HTML(_EXPLANATION), W.HBox([self.source_box, self.target_box]),
                          self.summary, self.plot, self.errors])
        traitlets.link((self.source_box, "value"), (self, "source"))
        traitlets.link((self.target_box, "value"), (self, "target"))
        self.observe(self._update, names=["source", "target"])
        self.source = names[0] if source is None else self._check(source)
        self.target = names[1] if target is None else self._check(target)
        self._update()

    def _check(self, name: str) -> str:
        if name not in self._names:
            raise ValueError(f"unknown task {name!r}; expected one of {self._names}")
        return name

    def _update(self, change=None) -> None:
        if not self.source or not self.target:
            return
        try:
            i, j = self._names.index(self.source), self._names.index(self.target)
            gs, gt = self._grads[i].mean(axis=0), self._grads[j].mean(axis=0)
            sim = per_layer_similarity(gs, gt, self._param_names, self._param_sizes)
            self.distance = pge_distance(self._grads[i], self._grads[j])
            self.gain = (float("nan") if self._gain is None or i == j
                         else float(self._gain[i, j]))
            self.similarity = {k: float(v) for k, v in sim.items()}
            gain = "" if np.isnan(self.gain) else f", measured transfer gain {self.gain:+.3f}"
            self.summary.value = (f"<p>PGE distance <b>{self.distance:.3f}</b>{gain}.</p>")
            fig, (ax,) = new_figure(width=6.5, height=3.2)
            ax.barh(list(sim.index)[::-1], sim.to_numpy()[::-1], color="tab:blue")
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_xlim(-1, 1)
            ax.set_xlabel("cosine similarity of principal gradients")
            ax.set_title(f"{self.source} vs {self.target}", fontsize=9)
            show_figure(self.plot, fig)
            self.errors.clear()
        except Exception as exc:  # shown in the widget, which stays usable
            self.errors.show(exc)
