"""LambdaExplorer: how the ridge penalty lambda changes Linear MSE and Label MSE."""
from __future__ import annotations

import html

import ipywidgets as W
import traitlets

from ._common import ErrorArea, fmt, html_table, new_figure, show_figure

__all__ = ["LambdaExplorer"]


class LambdaExplorer(W.VBox):
    """Pick a target and a lambda; see every model's Linear / Label MSE and their
    correlation with the fine-tuned ground truth.

    All computation is :func:`transfer_nb.experiments.regression.lambda_scores` and
    :func:`transfer_nb.stats.rank_correlations` on the cached features of a
    :class:`~transfer_nb.experiments.regression.RegressionResults`.

    Parameters
    ----------
    results : RegressionResults
        What :func:`transfer_nb.experiments.regression.run` returned.
    target : str, optional
        Initial target (default: the first of the configuration).
    lam : float, optional
        Initial lambda, one of ``results.cfg.lambdas`` (default: ``results.cfg.alpha``).
    n_boot : int
        Bootstrap resamples for the intervals shown.
    include_declared_out : bool
        Start with the models the config declares out of the verdicts (the random init)
        included; off by default, as in the verdicts.  A checkbox toggles it: one leverage
        model can flip the sign of a correlation.

    Attributes (traitlets)
    ----------------------
    lam : float
        The lambda in use (the slider's value).
    target : str
    scores : dict
        ``{"linear_mse": {model: score}, "label_mse": {...}, "neg_mse": {...}}``.
    pearson : dict
        ``{"linear_mse": r, "label_mse": r}`` with the ground truth.
    include_declared_out : bool
        Whether the declared-out models (hollow in the plot) are in the correlation.
    """

    lam = traitlets.Float()
    target = traitlets.Unicode()
    scores = traitlets.Dict()
    pearson = traitlets.Dict()
    include_declared_out = traitlets.Bool(False)

    def __init__(self, results, target: str | None = None, lam: float | None = None,
                 n_boot: int = 200, include_declared_out: bool = False):
        from transfer_nb.experiments.base import declared_out
        self.results = results
        self.declared_out = declared_out(results)
        self.n_boot = int(n_boot)
        lambdas = [float(v) for v in results.cfg.lambdas]
        self.error = ErrorArea()
        self.slider = W.SelectionSlider(options=[(f"{v:g}", v) for v in lambdas],
                                        description="lambda", continuous_update=False)
        self.target_dropdown = W.Dropdown(options=list(results.cfg.targets),
                                          description="target")
        self.out_box = W.Checkbox(value=bool(include_declared_out), indent=False,
                                  description="include the models declared out: "
                                              + (", ".join(sorted(self.declared_out)) or "none"))
        self.summary = W.HTML()
        self.table_html = W.HTML()
        self.plot = W.Output()
        super().__init__(children=[W.HBox([self.target_dropdown, self.slider]), self.out_box,
                                   self.summary,
                                   W.HBox([self.plot, self.table_html]), self.error])
        start = float(results.cfg.alpha if lam is None else lam)
        if start not in lambdas:
            raise ValueError(f"lam must be one of {lambdas}, got {start}")
        self.slider.value = start
        self.target_dropdown.value = target or results.cfg.targets[0]
        self.slider.observe(lambda ch: self._update(), names="value")
        self.target_dropdown.observe(lambda ch: self._update(), names="value")
        self.out_box.observe(lambda ch: self._update(), names="value")
        self._update()

    def _update(self) -> None:
        from transfer_nb import stats
        from transfer_nb.experiments.regression import lambda_scores

        try:
            lam, target = float(self.slider.value), str(self.target_dropdown.value)
            include = bool(self.out_box.value)
            s = lambda_scores(self.results, target, lam)
            used = s if include else s[~s.index.isin(self.declared_out)]
            corr = stats.rank_correlations({"linear_mse": used["linear_mse"].to_numpy(),
                                            "label_mse": used["label_mse"].to_numpy()},
                                           used["neg_mse"].to_numpy(), n_boot=self.n_boot)
        except Exception as exc:  # shown in the widget, never raised out of a callback
            self.error.show(exc)
            return
        self.error.clear()
        self.scores = {c: {m: float(v) for m, v in s[c].items()} for c in s.columns}
        self.pearson = {e: float(corr.loc[e, "pearson"]) for e in ("linear_mse", "label_mse")}
        self.target, self.lam, self.include_declared_out = target, lam, include
        self.summary.value = f"Pearson r with &minus;test MSE over {len(used)} models: " + "; ".join(
            f"{e} <b>{fmt(corr.loc[e, 'pearson'], 2)}</b> "
            f"[{fmt(corr.loc[e, 'pearson_low'], 2)}, {fmt(corr.loc[e, 'pearson_high'], 2)}]"
            for e in ("linear_mse", "label_mse"))
        rows = [[html.escape(m), fmt(r["linear_mse"], 4), fmt(r["label_mse"], 4),
                 fmt(r["neg_mse"], 4)] for m, r in s.iterrows()]
        self.table_html.value = html_table(["model", "Linear MSE", "Label MSE", "&minus;test MSE"],
                                           rows)
        fig, axes = new_figure(ncols=2, width=3.4, height=2.8)
        for ax, e in zip(axes, ("linear_mse", "label_mse")):
            out = s.index.isin(self.declared_out)
            ax.scatter(s.loc[~out, e], s.loc[~out, "neg_mse"], color="C0")
            ax.scatter(s.loc[out, e], s.loc[out, "neg_mse"], facecolors="none",
                       edgecolors="C3", label="declared out")
            ax.set_xlabel(f"{e} (lambda={lam:g})")
            ax.set_ylabel("-test MSE")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        show_figure(self.plot, fig)

    @property
    def value(self) -> float:
        """The lambda in use (same as :attr:`lam`)."""
        return self.lam

    def set_lambda(self, lam: float) -> None:
        """Move the slider to ``lam`` (one of the configuration's lambdas)."""
        lam = float(lam)
        if lam not in [float(v) for v in self.results.cfg.lambdas]:
            raise ValueError(f"lam must be one of {list(self.results.cfg.lambdas)}, got {lam}")
        self.slider.value = lam

