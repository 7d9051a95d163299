"""CodingRateExplorer: see how R(Z), R(Z_k), R(Z|Y) and TransRate react to the data."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from transfer_nb.coding_rate import coding_rate_terms
from transfer_nb.data.toy import make_gaussian_classes
from transfer_nb.plots import pca_2d, scatter_classes, style_axes

from ._common import (ErrorArea, NoteArea, about as about_box, columns, fmt, html_table,
                      new_figure, show_figure)

__all__ = ["CodingRateExplorer"]

TOY, FEATURES = "toy", "features"
VARIANTS = (("snippet", "snippet"), ("layerwise", "layerwise"), ("projected", "projected"))
#: Up to this many classes every R(Z_k) gets its own bar and column; above, their range.
MAX_CLASS_BARS = 4

EXPLANATION = (
    "<p>TransRate measures how much the features <i>Z</i> say about the labels "
    "<i>Y</i> with the <b>coding rate</b> R(Z, &epsilon;) = &frac12; log det(I + "
    "Z<sup>T</sup>Z / (n&epsilon;)) of the centred features: the number of nats "
    "needed to encode them up to distortion &epsilon;. "
    "TransRate = R(Z) &minus; R(Z|Y), where R(Z|Y) averages the rate R(Z<sub>k</sub>) "
    "of each class alone. Well separated, compact classes give a large R(Z) and small "
    "R(Z<sub>k</sub>), so a large TransRate.</p>"
    "<p><i>Pitfall 1, two classes:</i> the <i>snippet</i> (the paper's code) and the "
    "<i>layerwise</i> variant (the authors' layer-selection code: L2-normalised rows, "
    "trace-normalised eigenvalues, divided by the rank) both leave each class "
    "un-centred, so R(Z<sub>k</sub>) still contains the offset of its class mean. With "
    "two balanced classes that offset is all the between-class information, and both "
    "give about 0 <i>whatever the separation</i>: compare 2 and 3 classes. The "
    "<i>projected</i> variant (the authors' model-selection code) centres each class "
    "and does not have this blind spot.</p>"
    "<p><i>Pitfall 2, few samples:</i> with fewer samples than dimensions the rate "
    "counts directions (about &frac12; ln(1/&epsilon;) nats each) rather than "
    "separation. The snippet also grows with the dimension and the scale of the "
    "features; the layerwise variant is scale-invariant.</p>")
_EXPLANATION = EXPLANATION  # the old name


class CodingRateExplorer(W.VBox):
    """Interactive view of the coding-rate terms behind TransRate.

    Two data sources: a toy set of 2 or 3 Gaussian classes whose separation,
    within-class spread, dimension and size are sliders, or real features (one layer
    at a time, e.g. from :class:`FeatureExplorer`).  The terms come from
    :func:`transfer_nb.coding_rate_terms`; they are shown as a bar chart next to the data
    projected to 2-D by PCA, and as a one-row table.  Controls on the left, results on
    the right, the explanation folded in an "About" accordion.

    Parameters
    ----------
    features : dict[str, array-like] or array-like, optional
        Layer name -> ``(n, d)`` features, or one ``(n, d)`` array.  When given, the
        explorer starts on these features instead of the toy data.
    labels : array-like, optional
        ``(n,)`` labels of ``features`` (required with ``features``).
    eps : float
        Initial distortion (``1e-4``, the paper's snippet).
    variant : {"snippet", "layerwise", "projected"}
        Initial TransRate variant (see :func:`transfer_nb.transrate`).
    n, k, dim, separation, spread, seed :
        Initial toy settings (see :func:`transfer_nb.data.toy.make_gaussian_classes`).
    about : str, optional
        HTML of the "About" accordion (default: the coding-rate explanation); ``""``
        leaves it out (the stepper shows its own).
    class_names : sequence of str, optional
        Names of integer labels of ``features`` (for the legend).

    Attributes
    ----------
    transrate : float (traitlet)
        ``terms["transrate"]`` (``nan`` after an error); ``observe`` / ``link`` work.
    terms : dict (traitlet)
        The last result of :func:`transfer_nb.coding_rate_terms` (``{}`` after an error).
    Z, y : numpy.ndarray
        The data the terms were computed on.
    transrate_label : ipywidgets.HTML
        Visible text ``"TransRate = 1.234"``; CSS class ``tnb-transrate``.
    notes : NoteArea
        Plain-word warnings (CSS class ``tnb-warning``): fewer samples than dimensions,
        two classes scored ~0 by a variant that does not centre each class.
    errors : ErrorArea
        Shows the last error (CSS class ``tnb-error``); ``errors.message`` is its text.
    """

    transrate = traitlets.Float(float("nan"))
    terms = traitlets.Dict()

    def __init__(self, features=None, labels=None, eps: float = 1e-4,
                 variant: str = "snippet", n: int = 200,
                 k: int = 3, dim: int = 2, separation: float = 2.0, spread: float = 1.0,
                 seed: int = 0, about: str | None = None, class_names=None):
        choices = [value for _, value in VARIANTS]
        if variant == "official":  # deprecated alias of the library
            variant = "layerwise"
        if variant not in choices:
            raise ValueError(f"variant must be one of {choices}; got {variant!r}")
        self.Z = None
        self.y = None
        self._features: dict = {}
        self._labels = None
        self._class_names = class_names
        self._updating = False

        style = {"description_width": "80px"}
        slider = dict(continuous_update=False, style=style, layout=W.Layout(width="320px"))
        self.source = W.ToggleButtons(options=[("toy Gaussians", TOY)], value=TOY,
                                      description="Data",
                                      style={"description_width": "80px",
                                             "button_width": "118px"})
        self.n_classes = W.ToggleButtons(options=[2, 3], value=3 if k not in (2, 3) else k,
                                         description="Classes",
                                         style={"description_width": "80px",
                                                "button_width": "60px"})
        self.separation = W.FloatSlider(value=separation, min=0.0, max=10.0, step=0.1,
                                        description="Separation", **slider)
        self.spread = W.FloatSlider(value=spread, min=0.05, max=5.0, step=0.05,
                                    description="Spread", **slider)
        self.dim = W.IntSlider(value=dim, min=1, max=64, description="Dimension", **slider)
        self.n = W.IntSlider(value=n, min=10, max=2000, step=10, description="n", **slider)
        self.seed = seed
        self.toy_box = W.VBox([self.n_classes, self.separation, self.spread, self.dim, self.n])
        self.layer = W.Dropdown(options=[], description="Layer", style=style,
                                layout=W.Layout(width="320px"))
        self.features_box = W.VBox([self.layer])
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25,
                                    description="eps (ε)", readout_format=".1e", **slider)
        self.variant = W.ToggleButtons(options=VARIANTS, value=variant,
                                       description="Variant",
                                       style={"description_width": "80px",
                                              "button_width": "92px"})

        self.transrate_label = W.HTML(value="TransRate = &ndash;")
        self.transrate_label.add_class("tnb-transrate")
        self.table = W.HTML()
        self.plot = W.Output()
        self.errors = ErrorArea()
        self.notes = NoteArea()
        text = EXPLANATION if about is None else about
        self.about = about_box(text) if text else None

        for control in (self.n_classes, self.separation, self.spread, self.dim, self.n):
            control.observe(self._on_toy_change, names="value")
        self.layer.observe(self._on_data_change, names="value")
        self.source.observe(self._on_source_change, names="value")
        self.eps.observe(self._on_eps_change, names="value")
        self.variant.observe(self._on_eps_change, names="value")

        body = columns([self.source, self.toy_box, self.features_box, self.eps, self.variant],
                       [self.errors, self.transrate_label, self.notes, self.plot, self.table])
        super().__init__(([self.about] if self.about is not None else []) + [body])
        self.add_class("tnb-coding-rate-explorer")

        if features is not None:
            self.set_features(features, labels, class_names=class_names)
        else:
            self._show_source_controls()
            self._refresh(new_data=True)

    # ------------------------------------------------------------------ public API
    def set_features(self, features, labels, layer: str | None = None,
                     class_names=None) -> bool:
        """Switch to real features.

        Parameters
        ----------
        features : dict[str, array-like] or array-like
            Layer name -> ``(n, d)`` features, or a single ``(n, d)`` array.
        labels : array-like, shape (n,)
        layer : str, optional
            Layer to show first (default: the last one, usually the penultimate layer).
        class_names : sequence of str, optional
            Names of integer labels, for the legend.

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
        self._class_names = class_names
        self._updating = True
        try:
            self.source.options = [("toy Gaussians", TOY), ("features", FEATURES)]
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
        # a choice of one ("Data: Toy Gaussians" alone) is no choice: hide it
        self.source.layout.display = None if len(self.source.options) > 1 else "none"
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
            terms = coding_rate_terms(self.Z, self.y, eps=self.eps.value,
                                      variant=self.variant.value)
        except Exception as exc:
            self.terms, self.transrate = {}, float("nan")
            self.transrate_label.value = "TransRate = &ndash;"
            self.table.value = ""
            self.plot.outputs = ()
            self.notes.clear()
            self.errors.show(exc)
            return
        self.errors.clear()
        self.terms = terms
        self.transrate = float(terms["transrate"])
        self.transrate_label.value = (f"<b style='font-size:1.15em'>TransRate = "
                                      f"{fmt(self.transrate)}</b> nats")
        self.notes.show(self._notes())
        self._draw()

    def _notes(self) -> list:
        """Plain-word warnings about what the number shown does not say."""
        notes = []
        n, d = np.shape(self.Z)
        if n < d:
            notes.append(f"Fewer samples than dimensions (n = {n} points in d = {d}): the "
                         "coding rate then counts directions more than separation, so this "
                         "TransRate mostly reflects n and d. Raise n or lower the dimension.")
        terms = self.terms
        if (len(terms["per_class"]) == 2 and terms["variant"] != "projected"
                and abs(terms["transrate"]) < 0.05 * max(abs(terms["R"]), 1e-12)):
            notes.append(f"Two classes give about 0 with the {terms['variant']} variant "
                         "whatever their separation: it does not centre each class, so "
                         "R(Z<sub>k</sub>) keeps the offset of the class mean, which is all "
                         "the between-class information of two classes (the snippet and "
                         "the layerwise variant share this). Try 3 classes or the "
                         "projected variant.")
        return notes

    def _draw(self) -> None:
        terms = self.terms
        per_class = terms["per_class"]
        rates = np.array(list(per_class.values()), dtype=float)
        many = len(per_class) > MAX_CLASS_BARS
        if many:  # a column per class would not fit: their range instead
            class_head = [f"R(Z<sub>k</sub>), {len(per_class)} classes"]
            class_cells = [f"{fmt(rates.min())} &ndash; {fmt(rates.max())}"]
        else:
            class_head = [f"R(Z<sub>{html.escape(str(k))}</sub>)" for k in per_class]
            class_cells = [fmt(v) for v in rates]
        header = ["R(Z)"] + class_head + ["R(Z|Y)", "<b>TransRate</b>"]
        row = ([fmt(terms["R"])] + class_cells
               + [fmt(terms["R_given_y"]), f"<b>{fmt(terms['transrate'])}</b>"])
        n, d = np.shape(self.Z)
        self.table.value = (html_table(header, [row]) +
                            f"<p style='margin:2px 0;line-height:1.4'>In nats; n = {n}, d = {d}, "
                            f"K = {len(per_class)}, &epsilon; = {self.eps.value:.1e}, "
                            f"{html.escape(terms['variant'])} variant.</p>")

        fig, (ax_bar, ax_pts) = new_figure(ncols=2, width=2.6, height=2.6)
        if many:
            names = ["R(Z)", "R(Z_k) avg", "R(Z|Y)", "TransRate"]
            values = [terms["R"], rates.mean(), terms["R_given_y"], terms["transrate"]]
            colors = ["tab:blue", "tab:gray", "tab:orange", "tab:green"]
        else:
            names = ["R(Z)"] + [f"R(Z_{k})" for k in per_class] + ["R(Z|Y)", "TransRate"]
            values = [terms["R"], *rates, terms["R_given_y"], terms["transrate"]]
            colors = ["tab:blue"] + ["tab:gray"] * len(rates) + ["tab:orange", "tab:green"]
        x = np.arange(len(values))
        bars = ax_bar.bar(x, values, color=colors)
        if many:  # the spread of the class terms, as a min-max bar
            ax_bar.errorbar([1], [rates.mean()], yerr=[[rates.mean() - rates.min()],
                                                       [rates.max() - rates.mean()]],
                            color="black", capsize=3, linewidth=1)
        # Numbers on the bars: TransRate is often tiny next to R(Z) and would be invisible.
        shown = [fmt(v, 1 if abs(v) >= 100 else 2) for v in values]
        for i in range(1, len(values) - 2):  # the class terms are in the table below
            shown[i] = ""
        ax_bar.bar_label(bars, labels=shown, fontsize=8.5, padding=1)
        ax_bar.set_xticks(x, names, rotation=40, ha="right",
                          rotation_mode="anchor")
        ax_bar.margins(y=0.15)
        style_axes(ax_bar, ylabel="nats", title="coding-rate terms")
        ax_bar.axhline(0, color="black", linewidth=0.5)

        P = pca_2d(self.Z)
        names = (self._class_names if self.source.value == FEATURES
                 else [f"class {k}" for k in range(len(per_class))])
        scatter_classes(ax_pts, P, self.y, class_names=names, size=8)
        style_axes(ax_pts, xlabel="PC 1", ylabel="PC 2", title="data, PCA to 2-D")
        show_figure(self.plot, fig)
