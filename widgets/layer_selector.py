"""LayerSelector: TransRate of every layer, checked against linear-probe accuracy."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from transfer_nb.toy import extract_dataset_features, layer_table, rank_correlations

from ._common import ErrorArea, fmt, html_table, new_figure, show_figure

__all__ = ["LayerSelector"]

_EXPLANATION = (
    "<p><b>Layer selection.</b> Which layer of the pretrained model should feed the "
    "new task? TransRate scores every layer from its features alone (computed on the "
    "training part of the samples). <b>Measure linear-probe accuracy</b> trains a "
    "logistic regression on each layer's training features and scores it on held-out "
    "samples: the ground truth TransRate tries to predict. A good estimator ranks the "
    "layers the same way (high Pearson r and Kendall &tau;). Beware: the coding rate "
    "grows with the feature dimension, so wide layers are favoured.</p>")


class LayerSelector(W.VBox):
    """Rank the layers of one model on a target task with TransRate.

    Parameters
    ----------
    model : str or torch.nn.Module, optional
        Model to extract features from (ignored when ``features`` is given).
    dataset : str or torch.utils.data.Dataset
        Target data for ``model`` (a name for :func:`transfer_nb.load_dataset`).
    features : dict[str, array-like], optional
        Layer name -> ``(n, d)`` features (e.g. ``FeatureExplorer.features``).
    labels : array-like, optional
        Labels of ``features``.
    layers : optional
        Layers to extract from ``model`` (default: its default layers).
    n, image_size, seed : int
        Data settings when extracting from ``model``.
    eps : float
        Initial distortion of the coding rate (an ``eps`` slider changes it).
    test_size : float
        Fraction of every class held out to score the linear probes.

    Attributes
    ----------
    scores : pandas.DataFrame or None
        One row per layer: ``dim``, ``transrate`` and, once measured, ``probe_accuracy``
        (from :func:`transfer_nb.toy.layer_table`).
    transrates : pandas.Series or None
        TransRate per layer.
    accuracies : pandas.Series or None
        Linear-probe test accuracy per layer, once measured.
    correlation : dict or None
        ``{"pearson", "kendall", "n"}`` between the two, once measured.
    value, chosen_layer : str or None
        The selected layer: the TransRate argmax unless changed with the dropdown.
    errors : ErrorArea
        Shows the last error (CSS class ``tnb-error``).
    """

    def __init__(self, model=None, dataset="digits", features=None, labels=None,
                 layers=None, n: int = 200, image_size: int = 64, seed: int = 0,
                 eps: float = 1e-4, test_size: float = 0.3):
        self.features = None
        self.labels = None
        self.scores = None
        self.correlation = None
        self.test_size = test_size
        self.seed = seed
        self._user_chose = False
        self._setting = False

        style = {"description_width": "110px"}
        self.eps = W.FloatLogSlider(value=eps, base=10, min=-6, max=1, step=0.25,
                                    description="eps (ε)", readout_format=".1e",
                                    continuous_update=False, style=style)
        self.probe_button = W.Button(description="Measure linear-probe accuracy",
                                     icon="check", layout=W.Layout(width="260px"))
        self.progress = W.IntProgress(value=0, min=0, max=1, description="Probes",
                                      style=style)
        self.layer = W.Dropdown(options=[], description="Chosen layer", style=style,
                                layout=W.Layout(width="360px"))
        self.info = W.HTML()
        self.table = W.HTML()
        self.plot = W.Output()
        self.errors = ErrorArea()

        self.eps.observe(self._on_eps, names="value")
        self.layer.observe(self._on_layer, names="value")
        self.probe_button.on_click(lambda button: self.measure())

        super().__init__([W.HTML(_EXPLANATION), self.eps,
                          W.HBox([self.probe_button, self.progress]),
                          self.errors, self.layer, self.info,
                          W.HBox([self.table, self.plot])])
        self.add_class("tnb-layer-selector")

        if features is not None:
            self.set_features(features, labels)
        elif model is not None:
            try:
                features, labels, _, _ = extract_dataset_features(
                    model, dataset, layers=layers, n=n, image_size=image_size, seed=seed)
            except Exception as exc:
                self.errors.show(exc)
            else:
                self.set_features(features, labels)
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
    def chosen_layer(self) -> str | None:
        """The chosen layer (same as :attr:`value`)."""
        return self.layer.value

    @property
    def transrates(self):
        """TransRate per layer (``pandas.Series``), ``None`` before any features."""
        return None if self.scores is None else self.scores["transrate"]

    @property
    def accuracies(self):
        """Linear-probe test accuracy per layer (``pandas.Series``), once measured."""
        if self.scores is None or "probe_accuracy" not in self.scores:
            return None
        return self.scores["probe_accuracy"]

    def set_features(self, features, labels) -> bool:
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
            scores = layer_table(features, labels, eps=self.eps.value,
                                 test_size=self.test_size, seed=self.seed)
        except Exception as exc:
            self.errors.show(exc)
            return False
        self.features, self.labels = dict(features), np.asarray(labels)
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
        self.errors.clear()
        if self.features is None:
            self.errors.show("no features to probe yet: extract features first")
            return False
        self.probe_button.disabled = True
        self.progress.bar_style = ""
        try:
            scores = layer_table(self.features, self.labels, eps=self.eps.value, probe=True,
                                 test_size=self.test_size, seed=self.seed,
                                 on_progress=self._on_progress)
            correlation = rank_correlations(scores["transrate"], scores["probe_accuracy"])
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.errors.show(exc)
            return False
        finally:
            self.probe_button.disabled = False
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
            scores = layer_table(self.features, self.labels, eps=self.eps.value,
                                 test_size=self.test_size, seed=self.seed)
        except Exception as exc:
            self.errors.show(exc)
            return
        if self.accuracies is not None:
            # The probes do not depend on eps: keep them and re-rank against them.
            scores["probe_accuracy"] = self.accuracies.values
            self.correlation = rank_correlations(scores["transrate"],
                                                 scores["probe_accuracy"])
        self._set_scores(scores)

    def _on_layer(self, change) -> None:
        if self._setting:
            return
        self._user_chose = True
        self._draw()

    def _set_scores(self, scores) -> None:
        self.scores = scores
        names = list(scores.index)
        best = str(scores["transrate"].idxmax())
        keep = self._user_chose and self.layer.value in names
        self._setting = True
        try:
            self.layer.options = names
            self.layer.value = self.layer.value if keep else best
        finally:
            self._setting = False
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        scores = self.scores
        if scores is None:
            return
        chosen = self.layer.value
        best = str(scores["transrate"].idxmax())
        has_acc = "probe_accuracy" in scores
        header = ["layer", "dim", "TransRate"] + (["probe acc."] if has_acc else [])
        rows = []
        for name, row in scores.iterrows():
            label = html.escape(str(name))
            if name == chosen:
                label = f"<b>{label}</b> &larr;"
            cells = [label, str(int(row["dim"])), fmt(row["transrate"])]
            if has_acc:
                cells.append(fmt(row["probe_accuracy"]))
            rows.append(cells)
        text = (f"<p>Highest TransRate: <b>{html.escape(best)}</b>; chosen: "
                f"<b>{html.escape(str(chosen))}</b>.</p>")
        if self.correlation is not None:
            c = self.correlation
            text += (f'<p class="tnb-correlation">TransRate vs probe accuracy over '
                     f"{c['n']} layers: Pearson r = {fmt(c['pearson'])}, "
                     f"Kendall &tau; = {fmt(c['kendall'])}</p>")
        self.info.value = text
        self.table.value = html_table(header, rows)

        fig, axes = new_figure(ncols=2 if has_acc else 1, width=4.4, height=3.2)
        x = np.arange(len(scores))
        names = [str(name) for name in scores.index]
        colors = ["tab:orange" if name == chosen else "tab:blue" for name in names]
        axes[0].bar(x, scores["transrate"].values, color=colors)
        axes[0].set_title("TransRate per layer")
        axes[0].set_ylabel("nats")
        if has_acc:
            axes[1].bar(x, scores["probe_accuracy"].values, color=colors)
            axes[1].set_ylim(0, 1)
            axes[1].set_title("linear-probe test accuracy")
        for ax in axes:
            ax.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
        show_figure(self.plot, fig)
