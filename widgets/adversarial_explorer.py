"""AdversarialExplorer: adversarial examples of a robust source, and the transfer curve.

Computation lives in :mod:`transfer_nb.experiments.adversarial`; this widget only wires
an eps slider to it and shows the results.
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from ._common import ErrorArea, fmt, html_table, new_figure, show_figure

__all__ = ["AdversarialExplorer"]

_EXPLANATION = (
    "<b>Pick a source by the radius eps of the adversary it was trained against.</b> "
    "Top row: source test images and the source's prediction; middle row: the same "
    "images after an L2 PGD attack of the evaluation radius, and the prediction then; "
    "bottom row: the perturbation, amplified. Right: target accuracy of every source, "
    "the chosen one circled.")


class AdversarialExplorer(W.VBox):
    """Adversarial examples against the source trained at the chosen eps, and the transfer curve.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`transfer_nb.experiments.adversarial.run` (one row per source and seed).
    cfg : AdversarialConfig
        The configuration ``results`` were computed with.
    seed : int
        Which seed's source models to attack.
    n_images : int
        Source test images shown.
    data : dict, optional
        :func:`~transfer_nb.experiments.adversarial.source_data` (loaded when omitted).

    Traits
    ------
    eps : float
        The chosen source (its adversary's radius); follows the slider.
    examples : dict
        ``l2`` (perturbation norms), ``pred_clean``, ``pred_adversarial`` (class names)
        and ``robust`` (fraction of the shown images whose prediction survived).
    selected : dict
        The :func:`~transfer_nb.experiments.adversarial.summary` row of the chosen source.
    curve : dict
        ``eps`` and the mean ``linear_probe`` / ``fine_tune`` target accuracy per eps.
    """

    eps = traitlets.Float(0.0)
    examples = traitlets.Dict()
    selected = traitlets.Dict()
    curve = traitlets.Dict()

    def __init__(self, results, cfg, seed: int | None = None, n_images: int = 6, data=None):
        from transfer_nb.experiments import adversarial as ex
        self._ex, self.cfg, self.results = ex, cfg, results
        self.seed = int(cfg.seeds[0] if seed is None else seed)
        self.data = data if data is not None else ex.source_data(cfg)
        x, y = self.data["test"].tensors(np.arange(min(int(n_images), len(self.data["test"]))))
        self._images, self._labels = x, y
        self.summary = ex.summary(results)
        adv = self.summary[self.summary.kind.isin(["standard", "adversarial"])].sort_values("eps")
        self.curve = {"eps": [float(e) for e in adv.eps],
                      "linear_probe": [float(v) for v in adv.linear_probe],
                      "fine_tune": [float(v) for v in adv.fine_tune]}
        self.slider = W.SelectionSlider(options=[(f"{e:g}", float(e)) for e in adv.eps],
                                        value=float(adv.eps.iloc[0]), description="eps",
                                        continuous_update=False)
        self.table = W.HTML()
        self.plot = W.Output()
        self.errors = ErrorArea()
        super().__init__([W.HTML(_EXPLANATION), self.slider, self.errors, self.table, self.plot])
        self.add_class("tnb-adversarial-explorer")
        traitlets.link((self.slider, "value"), (self, "eps"))
        self.observe(self._on_eps, names="eps")
        self._refresh()

    def _on_eps(self, change) -> None:
        self._refresh()

    def _refresh(self) -> None:
        ex, cfg = self._ex, self.cfg
        try:
            eps = float(self.eps)
            kind = "standard" if eps == 0 else "adversarial"
            model = ex.build_source(cfg, kind, eps, self.seed, self.data)
            # eps of the config are fractions of the source images' typical norm
            out = ex.adversarial_examples(model, self._images, self._labels,
                                          cfg.eval_eps * self.data["norm"],
                                          norm=cfg.norm, steps=cfg.eval_steps, seed=self.seed)
            classes = self.data["test"].classes
            self.examples = {
                "l2": [float(v) for v in out["l2"]],
                "pred_clean": [classes[k] for k in out["pred_clean"]],
                "pred_adversarial": [classes[k] for k in out["pred_adversarial"]],
                "robust": float(np.mean(out["pred_clean"] == out["pred_adversarial"]))}
            row = self.summary[(self.summary.kind == kind) & np.isclose(self.summary.eps, eps)]
            self.selected = {k: (float(v) if isinstance(v, (float, np.floating)) else
                                 (int(v) if isinstance(v, (int, np.integer)) else str(v)))
                             for k, v in row.iloc[0].items()}
            self._draw(out, classes)
            self.errors.clear()
        except Exception as exc:  # shown in the widget, which stays usable
            self.errors.show(exc)

    def _draw(self, out, classes) -> None:
        s = self.selected
        rows = [[html.escape(m.replace("_", " ")), fmt(s[m]),
                 f"[{fmt(s[m + '_low'])}, {fmt(s[m + '_high'])}]"]
                for m in ("linear_probe", "fine_tune", "source_clean", "source_robust")]
        self.table.value = html_table(["source eps " + f"{self.eps:g}", "mean", "95% interval"], rows)
        n = len(out["clean"])
        fig, _ = new_figure(1, width=1.2 * n + 4.5, height=3.6)
        fig.clear()
        grid = fig.add_gridspec(3, n + 4)
        axes = [[fig.add_subplot(grid[r, j]) for j in range(n)] for r in range(3)]
        self._ex.plots.plot_examples(out, classes, axes=axes)
        ax = fig.add_subplot(grid[:, n + 1:])
        c = self.curve
        for t, color in (("linear_probe", "C0"), ("fine_tune", "C1")):
            ax.plot(range(len(c["eps"])), c[t], marker="o", color=color, label=t.replace("_", " "))
            i = c["eps"].index(float(self.eps))
            ax.plot([i], [c[t][i]], marker="o", markersize=12, fillstyle="none", color="k")
        ax.set_xticks(range(len(c["eps"])), [f"{e:g}" for e in c["eps"]])
        ax.set_xlabel("source eps")
        ax.set_ylabel("target accuracy")
        ax.legend(fontsize=7)
        show_figure(self.plot, fig)
