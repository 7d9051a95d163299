"""CodingRateExplorer: see how R(Z), R(Z_k), R(Z|Y) and TransRate react to the data."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

import transfer_nb as tnb
from transfer_nb.data.toy import make_gaussian_classes
from transfer_nb.plots import pca_2d

from ._common import ErrorArea, fmt, html_table, new_figure, show_figure

__all__ = ["CodingRateExplorer"]

TOY, FEATURES = "toy", "features"

_EXPLANATION = (
    "<p>TransRate measures how much the features <i>Z</i> say about the labels "
    "<i>Y</i> with the <b>coding rate</b> R(Z, &epsilon;) = &frac12; log det(I + "
    "Z<sup>T</sup>Z / (n&epsilon;)) of the centred features: the number of nats "
    "needed to encode them up to distortion &epsilon;. "
    "TransRate = R(Z) &minus; R(Z|Y), where R(Z|Y) = (1/K) &Sigma;<sub>k</sub> "
    "R(Z<sub>k</sub>) averages the rate of each class alone. Well separated, compact "
    "classes give a large R(Z) and small R(Z<sub>k</sub>), so a large TransRate.</p>"
    "<p><i>Pitfall:</i> the paper's snippet centres Z once, not each class, so R(Z<sub>k"
    "</sub>) still contains the class mean. With two balanced classes the class terms "
    "then average to about R(Z) and TransRate stays near 0 <i>whatever the "
    "separation</i>: compare 2 and 3 classes. The <i>layerwise</i> variant (the authors' "
    "full pipeline: L2-normalised rows, trace-normalised eigenvalues, divided by the "
    "rank) is scale-invariant; the snippet is not and grows with the dimension.</p>")


class CodingRateExplorer(W.VBox):
    """Interactive view of the coding-rate terms behind TransRate.

    Two data sources: a toy set of 2 or 3 Gaussian classes whose separation,
    within-class spread, dimension and size are sliders, or real features (one layer
    at a time, e.g. from :class:`FeatureExplorer`).  The terms come from
    :func:`transfer_nb.coding_rate_terms`; they are shown as an HTML table, a bar chart
    and, next to it, the data projected to 2-D by PCA.

    Parameters
    ----------
    features : dict[str, array-like] or array-like, optional
        Layer name -> ``(n, d)`` features, or one ``(n, d)`` array.  When given, the
        explorer starts on these features instead of the toy data.
    labels : array-like, optional
        ``(n,)`` labels of ``features`` (required with ``features``).
    eps : float
        Initial distortion (``1e-4``, the paper's snippet).
    variant : {"snippet", "layerwise"}
        Initial TransRate variant (see :func:`transfer_nb.transrate`).
    n, k, dim, separation, spread, seed :
        Initial toy settings (see :func:`transfer_nb.data.toy.make_gaussian_classes`).

    Attributes
    ----------
    Z, y : numpy.ndarray
        The data the terms were computed on.
    terms : dict
        The last result of :func:`transfer_nb.coding_rate_terms` (``{}`` after an error).
    transrate : float
        ``terms["transrate"]`` (``nan`` after an error).
    transrate_label : ipywidgets.HTML
        Visible text ``"TransRate = 1.234"``; CSS class ``tnb-transrate``.
    errors : ErrorArea
        Shows the last error (CSS class ``tnb-error``); ``errors.message`` is its text.
    """

    def __init__(self, features=None, labels=None, eps: float = 1e-4,
                 variant: str = "snippet", n: int = 200,
                 k: int = 3, dim: int = 2, separation: float = 2.0, spread: float = 1.0,
                 seed: int = 0):
        self.Z = None
        self.y = None
        self.terms: dict = {}
        self.transrate = float("nan")
        self._features: dict = {}
        self._labels = None
        self._updating = False

        style = {"description_width": "110px"}
        slider = dict(continuous_update=False, style=style, layout=W.Layout(width="380px"))
        self.source = W.ToggleButtons(options=[("Toy Gaussians", TOY)], value=TOY,
                                      description="Data", style=style)
        self.n_classes = W.ToggleButtons(options=[2, 3], value=3 if k not in (2, 3) else k,
                                         description="Classes", style=style)
        self.separation = W.FloatSlider(value=separation, min=0.0, max=10.0, step=0.1,
                                        description="Separation", **slider)
        self.spread = W.FloatSlider(value=spread, min=0.05, max=5.0, step=0.05,
                                    description="Spread", **slider)
        self.dim = W.IntSlider(value=dim, min=1, max=64, description="Dimension", **slider)
        self.n = W.IntSlider(value=n, min=10, max=2000, step=10, description="n", **slider)
        self.seed = seed
        self.toy_box = W.VBox([self.n_classes, self.separation, self.spread, self.dim, self.n])
        self.layer = W.Dropdown(options=[], description="Layer", style=style,
                                layout=W.Layout(width="380px"))
        self.features_box = W.VBox([self.layer])
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25,
                                    description="eps (ε)", readout_format=".1e", **slider)
        self.variant = W.ToggleButtons(options=[("paper snippet", "snippet"),
                                                ("authors' layerwise", "layerwise")],
                                       value=variant, description="Variant", style=style)

        self.transrate_label = W.HTML(value="TransRate = &ndash;")
        self.transrate_label.add_class("tnb-transrate")
        self.table = W.HTML()
        self.plot = W.Output()
        self.errors = ErrorArea()

        for control in (self.n_classes, self.separation, self.spread, self.dim, self.n):
            control.observe(self._on_toy_change, names="value")
        self.layer.observe(self._on_data_change, names="value")
        self.source.observe(self._on_source_change, names="value")
        self.eps.observe(self._on_eps_change, names="value")
        self.variant.observe(self._on_eps_change, names="value")

        super().__init__([W.HTML(_EXPLANATION), self.source, self.toy_box, self.features_box,
                          self.eps, self.variant, self.errors, self.transrate_label,
                          W.HBox([self.table, self.plot])])
        self.add_class("tnb-coding-rate-explorer")

        if features is not None:
            self.set_features(features, labels)
        else:
            self._show_source_controls()
            self._refresh(new_data=True)

    # ------------------------------------------------------------------ public API
    def set_features(self, features, labels, layer: str | None = None) -> bool:
        """Switch to real features.

        Parameters
        ----------
        features : dict[str, array-like] or array-like
            Layer name -> ``(n, d)`` features, or a single ``(n, d)`` array.
        labels : array-like, shape (n,)
        layer : str, optional
            Layer to show first (default: the last one, usually the penultimate layer).

        Returns
        -------
        bool
            True if the terms were computed on the new features; otherwise the error
            is shown (and, for invalid arguments, the previous data stays).
        """
        try:
            if labels is None:
                raise ValueError("labels are required with features")
            if not isinstance(features, dict):
                features = {"features": features}
            if not features:
                raise ValueError("features is empty: extract at least one layer")
            labels = np.asarray(labels)
            names = list(features)
            if layer is not None and layer not in features:
                raise ValueError(f"unknown layer {layer!r}; expected one of {names}")
        except Exception as exc:  # shown in the widget, which stays usable
            self.errors.show(exc)
            return False
        self._features = dict(features)
        self._labels = labels
        self._updating = True
        try:
            self.source.options = [("Toy Gaussians", TOY), ("Extracted features", FEATURES)]
            self.layer.options = names
            self.layer.value = layer if layer is not None else names[-1]
            self.source.value = FEATURES
        finally:
            self._updating = False
        self._show_source_controls()
        self._refresh(new_data=True)
        return bool(self.terms)

    @property
    def value(self) -> float:
        """The TransRate shown (same as :attr:`transrate`)."""
        return self.transrate

    # ------------------------------------------------------------------ callbacks
    def _on_toy_change(self, change) -> None:
        if not self._updating and self.source.value == TOY:
            self._refresh(new_data=True)

    def _on_data_change(self, change) -> None:
        if not self._updating and self.source.value == FEATURES:
            self._refresh(new_data=True)

    def _on_source_change(self, change) -> None:
        if self._updating:
            return
        self._show_source_controls()
        self._refresh(new_data=True)

    def _on_eps_change(self, change) -> None:
        if not self._updating:
            self._refresh(new_data=False)

    def _show_source_controls(self) -> None:
        toy = self.source.value == TOY
        self.toy_box.layout.display = None if toy else "none"
        self.features_box.layout.display = "none" if toy else None

    # ------------------------------------------------------------------ computation
    def _load_data(self):
        if self.source.value == TOY:
            return make_gaussian_classes(n=self.n.value, k=self.n_classes.value,
                                         dim=self.dim.value, separation=self.separation.value,
                                         spread=self.spread.value, seed=self.seed)
        if self.layer.value not in self._features:
            raise ValueError("no features to show: choose a layer")
        Z = self._features[self.layer.value]
        if hasattr(Z, "detach"):
            Z = Z.detach().cpu().numpy()
        return np.asarray(Z), self._labels

    def _refresh(self, new_data: bool) -> None:
        """Recompute (data if ``new_data``, then the terms) and redraw; errors are shown."""
        try:
            if new_data or self.Z is None:
                self.Z, self.y = None, None
                Z, y = self._load_data()
                self.Z, self.y = Z, y
            terms = tnb.coding_rate_terms(self.Z, self.y, eps=self.eps.value,
                                          variant=self.variant.value)
        except Exception as exc:
            self.terms, self.transrate = {}, float("nan")
            self.transrate_label.value = "TransRate = &ndash;"
            self.table.value = ""
            self.plot.outputs = ()
            self.errors.show(exc)
            return
        self.errors.clear()
        self.terms = terms
        self.transrate = float(terms["transrate"])
        self.transrate_label.value = f"<b>TransRate = {self.transrate:.3f}</b>"
        self._draw()

    def _draw(self) -> None:
        terms = self.terms
        per_class = terms["per_class"]
        rows = [["R(Z)", fmt(terms["R"])]]
        rows += [[f"R(Z<sub>{html.escape(str(k))}</sub>)", fmt(v)] for k, v in per_class.items()]
        rows += [["R(Z|Y)", fmt(terms["R_given_y"])],
                 ["<b>TransRate</b>", f"<b>{fmt(terms['transrate'])}</b>"]]
        n, d = np.shape(self.Z)
        self.table.value = (html_table(["term", "nats"], rows) +
                            f"<p>n = {n}, d = {d}, K = {len(per_class)}, "
                            f"&epsilon; = {self.eps.value:.1e}, {self.variant.value} variant</p>")

        fig, (ax_bar, ax_pts) = new_figure(ncols=2)
        names = ["R(Z)"] + [f"R(Z_{k})" for k in per_class] + ["R(Z|Y)", "TransRate"]
        values = [terms["R"], *per_class.values(), terms["R_given_y"], terms["transrate"]]
        colors = ["tab:blue"] + ["tab:gray"] * len(per_class) + ["tab:orange", "tab:green"]
        bars = ax_bar.bar(range(len(values)), values, color=colors)
        # Numbers on the bars: TransRate is often tiny next to R(Z) and would be invisible.
        ax_bar.bar_label(bars, fmt="%.2f", fontsize=7)
        ax_bar.set_xticks(range(len(values)), names, rotation=45, ha="right")
        ax_bar.set_ylabel("nats")
        ax_bar.set_title("coding-rate terms")
        ax_bar.axhline(0, color="black", linewidth=0.5)

        P = pca_2d(self.Z)
        for label in np.unique(self.y):
            mask = self.y == label
            ax_pts.scatter(P[mask, 0], P[mask, 1], s=8, alpha=0.7, label=str(label))
        ax_pts.set_title("data, PCA to 2-D")
        if len(np.unique(self.y)) <= 10:
            ax_pts.legend(fontsize=7, markerscale=1.5)
        show_figure(self.plot, fig)
