"""LayerSelector: TransRate of every layer, checked against linear-probe accuracy."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from transfer_nb.plots import plot_layer_scores
from transfer_nb.selection import extract_layer_features, score_layer_features
from transfer_nb.stats import rank_correlations

from ._common import (ErrorArea, RepeatGuard, about as about_box, columns, fmt, html_table,
                      new_figure, prose, show_figure)

__all__ = ["LayerSelector"]

EXPLANATION = (
    "<p><b>Layer selection.</b> Which layer of the pretrained model should feed the "
    "new task? TransRate scores every layer from its features alone (computed on the "
    "training part of the samples). <b>Measure linear-probe accuracy</b> trains a "
    "logistic regression on each layer's training features and scores it on held-out "
    "samples: the ground truth TransRate tries to predict. A good estimator ranks the "
    "layers the same way (high Pearson r and Kendall &tau;; the brackets are 95% "
    "bootstrap intervals over layers: with few layers they are wide). Beware: the coding rate "
    "grows with the feature dimension, so wide layers are favoured.</p>")
_EXPLANATION = EXPLANATION  # the old name


class LayerSelector(W.VBox):
    """Rank the layers of one model on a target task with TransRate.

    Parameters
    ----------
    model : str or torch.nn.Module, optional
        Model to extract features from (ignored when ``features`` is given).
    dataset : str or torch.utils.data.Dataset
        Target data for ``model`` (a name for :func:`transfer_nb.load_dataset`).
    features : dict[str, array-like], optional
        Layer name -> ``(n, d)`` features (e.g. ``FeatureExplorer.features``); they are
        split with ``test_size`` for the probes.
    labels : array-like, optional
        Labels of ``features``.
    test : tuple (test_features, test_labels), optional
        Held-out features of the same layers (then ``features`` is all training part).
        With ``model`` and a dataset name, the dataset's test split (``n`` images) is
        used, as :func:`transfer_nb.selection.score_layers` does.
    layers : optional
        Layers to extract from ``model`` (default: its default layers).
    n, image_size, seed : int
        Data settings when extracting from ``model``.
    eps : float
        Initial distortion of the coding rate (an ``eps`` slider changes it).
    test_size : float
        Fraction of every class held out to score the linear probes when there is no
        separate test set.

    Attributes
    ----------
    scores : pandas.DataFrame or None
        One row per layer: ``depth``, ``width``, ``transrate`` and, once measured,
        ``accuracy`` (from :func:`transfer_nb.selection.score_layer_features`, the
        procedure of ``score_layers``).
    transrates : pandas.Series or None
        TransRate per layer.
    accuracies : pandas.Series or None
        Linear-probe test accuracy per layer, once measured.
    correlation : pandas.Series or None
        The ``transrate`` row of :func:`transfer_nb.stats.rank_correlations` (Pearson,
        Kendall, weighted tau with intervals and p-values), once measured.
    chosen_layer : str or None (traitlet, linked to the dropdown)
        The selected layer: the TransRate argmax unless changed (dropdown or code).
        ``value`` is the same.
    transrate : float (traitlet)
        TransRate of the chosen layer (``nan`` before any features).
    best_layer, best_probe_layer : str or None (traitlets)
        The TransRate argmax, and the layer of highest probe accuracy once measured.
    probe_ties : list of str (traitlet)
        Every layer that reaches the best probe accuracy (more than one: a tie).
    busy : bool (traitlet)
        True while the probes run; clicks on the button are then ignored.
    errors : ErrorArea
        Shows the last error (CSS class ``tnb-error``).
    """

    scores = traitlets.Any(None)
    chosen_layer = traitlets.Unicode(None, allow_none=True)
    transrate = traitlets.Float(float("nan"))
    best_layer = traitlets.Unicode(None, allow_none=True)
    best_probe_layer = traitlets.Unicode(None, allow_none=True)
    probe_ties = traitlets.List()
    busy = traitlets.Bool(False)

    def __init__(self, model=None, dataset="digits", features=None, labels=None, test=None,
                 layers=None, n: int = 200, image_size: int = 64, seed: int = 0,
                 eps: float = 1e-4, test_size: float = 0.3, about: str | None = None):
        self.features = None
        self.labels = None
        self.test = None
        self.correlation = None
        self._guard = RepeatGuard()
        self.test_size = test_size
        self.seed = seed
        self._user_chose = False
        self._setting = False

        style = {"description_width": "95px"}
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25,
                                    description="eps (ε)", readout_format=".1e",
                                    continuous_update=False, style=style,
                                    layout=W.Layout(width="320px"))
        self.probe_button = W.Button(description="Measure linear-probe accuracy",
                                     icon="check", layout=W.Layout(width="320px"))
        self.progress = W.IntProgress(value=0, min=0, max=1, description="Probes",
                                      style=style, layout=W.Layout(width="320px"))
        self.layer = W.Dropdown(options=[], description="Chosen layer", style=style,
                                layout=W.Layout(width="320px"))
        self.info = W.HTML()
        self.table = W.HTML()
        self.plot = W.Output()
        self.errors = ErrorArea()

        self.eps.observe(self._on_eps, names="value")
        self.layer.observe(self._on_layer, names="value")
        traitlets.link((self.layer, "value"), (self, "chosen_layer"))
        self.probe_button.on_click(self._guard(self.measure))

        text = EXPLANATION if about is None else about
        self.about = about_box(text) if text else None
        body = columns([self.eps, self.probe_button, self.progress, self.layer, self.info,
                        self.table],
                       [self.errors, self.plot])
        super().__init__(([self.about] if self.about is not None else []) + [body])
        self.add_class("tnb-layer-selector")

        if features is not None:
            self.set_features(features, labels, test=test)
        elif model is not None:
            try:
                features, labels, _, model = extract_layer_features(
                    model, dataset, layers=layers, n=n, image_size=image_size, seed=seed)
                if isinstance(dataset, str):  # its own test split, as score_layers does
                    tf, tl, _, _ = extract_layer_features(
                        model, dataset, layers=list(features), n=n, image_size=image_size,
                        split="test", seed=seed)
                    test = (tf, tl)
            except Exception as exc:
                self.errors.show(exc)
            else:
                self.set_features(features, labels, test=test)
        else:
            self.info.value = ("<p>No features yet: pass <code>features=</code> and "
                               "<code>labels=</code>, or a <code>model=</code>.</p>")
        self.probe_button.disabled = self.features is None

    # ------------------------------------------------------------------ public API
    @property
    def value(self) -> str | None:
        """The chosen layer."""
        return self.layer.value

    @value.setter
    def value(self, layer: str) -> None:
        self.layer.value = layer

    @property
    def transrates(self):
        """TransRate per layer (``pandas.Series``), ``None`` before any features."""
        return None if self.scores is None else self.scores["transrate"]

    @property
    def accuracies(self):
        """Linear-probe test accuracy per layer (``pandas.Series``), once measured."""
        if self.scores is None or "accuracy" not in self.scores:
            return None
        return self.scores["accuracy"]

    def _score(self, features, labels, test, probe=False):
        return score_layer_features(features, labels, test=test, estimators=("transrate",),
                                    ground_truth="linear_probe" if probe else None,
                                    test_fraction=self.test_size, hold_out=True,
                                    seed=self.seed,
                                    eps=self.eps.value,
                                    on_progress=self._on_progress if probe else None)

    def set_features(self, features, labels, test=None) -> bool:
        """Score the layers of new features (the probe results are reset).

        Returns
        -------
        bool
            True on success; on failure the error is shown and the state is unchanged.
        """
        self.errors.clear()
        try:
            if labels is None:
                raise ValueError("labels are required with features")
            scores = self._score(features, labels, test)
        except Exception as exc:
            self.errors.show(exc)
            return False
        self.features, self.labels, self.test = dict(features), np.asarray(labels), test
        self.correlation = None
        self.probe_button.disabled = False
        self.progress.value = 0
        self._user_chose = False
        self._set_scores(scores)
        return True

    def measure(self) -> bool:
        """Measure each layer's linear-probe accuracy (what the button does).

        Returns
        -------
        bool
            True on success; on failure the error is shown and the state is unchanged.
        """
        if self.busy:  # the probes are running: this request is ignored
            return False
        self.errors.clear()
        if self.features is None:
            self.errors.show("no features to probe yet: extract features first")
            return False
        self.busy = True
        self.probe_button.disabled = True
        self.progress.bar_style = ""
        try:
            scores = self._score(self.features, self.labels, self.test, probe=True)
            correlation = self._correlate(scores)
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.errors.show(exc)
            return False
        finally:
            self.probe_button.disabled = False
            self.busy = False
        self.progress.bar_style = "success"
        self.correlation = correlation
        self._set_scores(scores)
        return True

    # ------------------------------------------------------------------ callbacks
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(int(total), 1)
        self.progress.value = int(done)

    def _on_eps(self, change) -> None:
        if self.features is None:
            return
        self.errors.clear()
        try:
            scores = self._score(self.features, self.labels, self.test)
        except Exception as exc:
            self.errors.show(exc)
            return
        if self.accuracies is not None:
            # The probes do not depend on eps: keep them and re-rank against them.
            scores["accuracy"] = self.accuracies.values
            self.correlation = self._correlate(scores)
        self._set_scores(scores)

    def _correlate(self, scores):
        import warnings

        with warnings.catch_warnings():  # an undefined correlation shows as nan
            warnings.simplefilter("ignore", RuntimeWarning)
            return rank_correlations(scores[["transrate"]], scores["accuracy"],
                                     seed=self.seed).loc["transrate"]

    def _on_layer(self, change) -> None:
        if self._setting:
            return
        self._user_chose = True
        self._draw()

    def _set_scores(self, scores) -> None:
        names = list(scores.index)
        best = str(scores["transrate"].idxmax())
        keep = self._user_chose and self.layer.value in names
        self._setting = True
        try:
            self.layer.options = names
            self.layer.value = self.layer.value if keep else best
        finally:
            self._setting = False
        if "accuracy" in scores:
            acc = scores["accuracy"].to_numpy(dtype=float)
            top = np.nanmax(acc)
            ties = [str(name) for name, a in zip(names, acc) if abs(a - top) <= 1e-9]
            # among equal accuracies the best-probe layer is the one TransRate ranks higher
            best_probe = max(ties, key=lambda name: scores.loc[name, "transrate"])
        else:
            ties, best_probe = [], None
        self.best_layer = best
        self.probe_ties = ties
        self.best_probe_layer = best_probe
        self.scores = scores
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        scores = self.scores
        if scores is None:
            return
        chosen = self.layer.value
        self.transrate = (float(scores.loc[chosen, "transrate"]) if chosen in scores.index
                          else float("nan"))
        best = str(scores["transrate"].idxmax())
        has_acc = "accuracy" in scores
        header = ["", "layer", "d", "TransRate"] + (["probe"] if has_acc else [])
        rows = []
        for name, row in scores.iterrows():
            label = html.escape(str(name))
            mark = "&#9654;" if name == chosen else ""  # same column width either way
            cells = [mark, f"<b>{label}</b>" if name == chosen else label,
                     str(int(row["width"])), fmt(row["transrate"])]
            if has_acc:
                cells.append(fmt(row["accuracy"]))
            rows.append(cells)
        text = (f"<p style='margin:2px 0'>Highest TransRate: <b>{html.escape(best)}</b>; "
                f"chosen: <b>{html.escape(str(chosen))}</b>.</p>")
        if has_acc:
            acc = scores["accuracy"]
            text += (f"<p class='tnb-best-probe' style='margin:2px 0'>Best probe: "
                     f"<b>{html.escape(str(self.best_probe_layer))}</b> "
                     f"({fmt(acc.max())})")
            if len(self.probe_ties) > 1:
                text += (f"; tied at {fmt(acc.max())}: "
                         f"{html.escape(', '.join(self.probe_ties))} (the probe cannot "
                         "tell these layers apart, so neither can a ranking)")
            text += ".</p>"
        if self.correlation is not None:
            c = self.correlation
            text += (f'<p class="tnb-correlation" style="margin:2px 0">TransRate vs probe '
                     f"accuracy over {int(c['n'])} layers: Pearson r = {fmt(c['pearson'])} "
                     f"[{fmt(c['pearson_low'])}, {fmt(c['pearson_high'])}], "
                     f"Kendall &tau; = {fmt(c['kendall'])} "
                     f"[{fmt(c['kendall_low'])}, {fmt(c['kendall_high'])}]</p>")
        self.info.value = prose(text)
        self.table.value = html_table(header, rows)

        fig, axes = new_figure(nrows=2 if has_acc else 1, ncols=1,
                               width=max(5.2, 0.42 * len(scores)),
                               height=2.25 if has_acc else 3.0, sharex=has_acc)
        plot_layer_scores(scores, "transrate", axes=list(axes), highlight=chosen)
        show_figure(self.plot, fig)
