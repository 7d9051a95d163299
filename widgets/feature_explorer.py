"""FeatureExplorer: pick a dataset, a model and layers, extract features, look at them."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets

from transfer_nb.data import dataset_info, list_datasets
from transfer_nb.models import list_models, load_model, model_info
from transfer_nb.models.layers import feature_layers
from transfer_nb.plots import pca_2d, scatter_classes, style_axes
from transfer_nb.selection import extract_layer_features

from ._common import (ErrorArea, NoteArea, RepeatGuard, about as about_box, columns, new_figure,
                      plain, prose, show_figure)

__all__ = ["FeatureExplorer"]

EXPLANATION = (
    "<p>A pretrained network turns every image into one feature vector per layer "
    "(the layer's output, averaged over space). Pick a target dataset, a model and "
    "the layers to read, then <b>Extract</b>: one forward pass hooks all the chosen "
    "layers. The scatter shows a layer's features projected to 2-D by PCA, one colour "
    "per class: classes that already separate here are easy to transfer to.</p>")
_EXPLANATION = EXPLANATION  # the old name


def data_problems(features, labels) -> list:
    """Plain-word reasons why ``features`` / ``labels`` cannot be scored well.

    Parameters
    ----------
    features : dict[str, array-like]
        Layer name -> ``(n, d)`` features.
    labels : array-like, shape (n,)

    Returns
    -------
    list of (str, bool)
        ``(text, blocking)`` pairs: ``blocking`` when TransRate cannot be computed at
        all (a class with fewer than 2 samples), not when it is only hard to read
        (fewer samples than dimensions).
    """
    labels = np.asarray(labels)
    values, counts = np.unique(labels, return_counts=True)
    problems = []
    small = plain(values[counts < 2])
    if small:
        problems.append((f"{len(small)} class(es) have fewer than 2 samples ({small}): "
                         "TransRate and the probes need at least 2 images per class. "
                         f"Raise n (now {len(labels)} images for {len(values)} classes).",
                         True))
    wide = {name: int(np.shape(Z)[1]) for name, Z in features.items()
            if np.shape(Z)[1] > len(labels)}
    if wide:
        listed = ", ".join(f"{name} (d = {d})" for name, d in wide.items())
        problems.append((f"Fewer samples (n = {len(labels)}) than dimensions in "
                         f"{listed}: there the coding rate counts directions more than "
                         "class separation; compare those layers with care.", False))
    return problems


def _offline_datasets() -> list:
    """Names of the datasets that work without a network (the embedded ones)."""
    names = []
    for name in list_datasets():
        try:
            if dataset_info(name).get("offline", False):
                names.append(name)
        except Exception:  # an entry without info is simply not offered
            continue
    return names


def _offline_models() -> list:
    """Pretrained models whose weights load without a network (EfficientNet-Lite here).

    The small source models are left out: they are trained by an experiment, they
    have no ImageNet weights to explore.
    """
    names = []
    for name in list_models():
        try:
            info = model_info(name)
        except Exception:
            continue
        if info.get("offline", False) and info.get("family") != "small":
            names.append(name)
    return names


class FeatureExplorer(W.VBox):
    """Extract per-layer features of a pretrained model on an embedded dataset.

    Extraction runs synchronously in the button's callback (no thread): the kernel is
    busy while it runs, but the ``IntProgress`` bar still moves because widget updates
    are sent as they happen; a thread would let cells run concurrently with the hooks
    and make the widget's state racy to read from code and tests.

    Parameters
    ----------
    datasets : list of str or dict[str, torch.utils.data.Dataset], optional
        Dataset names for :func:`transfer_nb.load_dataset` (default: the offline ones of
        :func:`transfer_nb.list_datasets`), or ready datasets by display name (used as
        they are: ``n`` and ``image_size`` do not apply to them).
    models : list of str or dict[str, torch.nn.Module], optional
        Model names for :func:`transfer_nb.load_model` (default: the pretrained models
        of :func:`transfer_nb.list_models` usable offline), or ready modules by display
        name.
    n : int
        Number of images to load.
    image_size : int
        Side of the images fed to the model (small is fast; the models' native size is
        larger).
    layers : list of str, optional
        Layers selected initially (default: all of the model's default layers).
    seed : int
        Seed of the dataset subsample.
    batch_size : int
        Forward-pass batch size.
    n_chunks : int
        The data is extracted in up to this many pieces of whole batches so that the
        progress bar moves (the batches, hence the features, are the same as in one
        call).

    Attributes
    ----------
    features : dict[str, numpy.ndarray] or None
        Layer name -> ``(n, d)`` features of the last successful extraction.  A failed
        extraction leaves the previous result in place.
    labels : numpy.ndarray or None
        Labels of those samples.
    dataset : torch.utils.data.Dataset or None
        The dataset they came from (``.classes`` gives the class names when it has it).
    model : torch.nn.Module or None
        The model currently selected.
    features_summary : dict (traitlet)
        Summary of the last extraction: ``dataset``, ``model``, ``n``, ``n_classes``,
        ``widths`` (layer -> feature dim), ``problems`` (plain-word texts, see
        :func:`data_problems`) and ``scorable`` (False when a problem prevents any
        TransRate, e.g. a class with one sample); ``{}`` before any.  ``features`` is
        a traitlet too, so ``observe`` / ``link`` see every extraction.
    busy : bool (traitlet)
        True while an extraction runs; clicks on Extract are then ignored (so is a
        second click arriving right after one, e.g. a double click).
    notes : NoteArea
        Plain-word warnings about the extracted data (CSS class ``tnb-warning``).
    errors : ErrorArea
        Shows the last error (CSS class ``tnb-error``).
    """

    features = traitlets.Any(None)
    features_summary = traitlets.Dict()
    busy = traitlets.Bool(False)

    def __init__(self, datasets=None, models=None, n: int = 200, image_size: int = 64,
                 layers=None, seed: int = 0, batch_size: int = 32, n_chunks: int = 10,
                 about: str | None = None):
        self.labels = None
        self.dataset = None
        self.model = None
        self.seed = seed
        self.batch_size = batch_size
        self.n_chunks = n_chunks
        self._callbacks = []
        self._models: dict = {}
        self.errors = ErrorArea()
        self.notes = NoteArea()
        self._guard = RepeatGuard()

        style = {"description_width": "80px"}
        wide = W.Layout(width="320px")
        dataset_names, self._dataset_objects = self._options(datasets, _offline_datasets)
        model_names, self._model_objects = self._options(models, _offline_models)
        self.dataset_dropdown = W.Dropdown(options=dataset_names, description="Dataset",
                                           style=style, layout=wide)
        self.model_dropdown = W.Dropdown(options=model_names, description="Model",
                                         style=style, layout=wide)
        self.layers = W.SelectMultiple(options=[], description="Layers", rows=6,
                                       style=style, layout=wide)
        self.n = W.BoundedIntText(value=n, min=2, max=100_000, description="n",
                                  style=style, layout=W.Layout(width="150px"))
        self.image_size = W.BoundedIntText(value=image_size, min=8, max=1024,
                                           description="pixels",
                                           style={"description_width": "50px"},
                                           layout=W.Layout(width="165px"))
        self.extract_button = W.Button(description="Extract", button_style="primary",
                                       icon="play", layout=W.Layout(width="120px"))
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="190px"))
        self.summary = W.HTML()
        self.view_layer = W.Dropdown(options=[], description="Show layer", style=style,
                                     layout=W.Layout(width="320px", display="none"))
        self.plot = W.Output()

        self.model_dropdown.observe(self._on_model_change, names="value")
        self.view_layer.observe(lambda change: self._draw(), names="value")
        self.extract_button.on_click(self._guard(self.extract))

        text = EXPLANATION if about is None else about
        self.about = about_box(text) if text else None
        body = columns([self.dataset_dropdown, self.model_dropdown, self.layers,
                        W.HBox([self.n, self.image_size]),
                        W.HBox([self.extract_button, self.progress],
                               layout=W.Layout(align_items="center")),
                        self.summary, self.notes],
                       [self.errors, self.view_layer, self.plot])
        super().__init__(([self.about] if self.about is not None else []) + [body])
        self.add_class("tnb-feature-explorer")

        self._on_model_change(None)
        if layers is not None:
            self.select_layers(layers)

    # ------------------------------------------------------------------ helpers
    def _options(self, given, default):
        """(names, objects) for a dropdown from a list of names, a dict, or the default."""
        if isinstance(given, dict):
            return list(given), dict(given)
        if given is None:
            try:
                given = default()
            except Exception as exc:  # library not importable: say so, stay usable
                self.errors.show(exc)
                given = []
        return [str(name) for name in given], {}

    def _get_model(self, name):
        if name in self._model_objects:
            return self._model_objects[name]
        if name not in self._models:
            # Cached per widget: switching back and forth must not reload weights.
            self._models[name] = load_model(name)
        return self._models[name]

    @property
    def dataset_name(self) -> str | None:
        """Name of the selected dataset."""
        return self.dataset_dropdown.value

    @property
    def model_name(self) -> str | None:
        """Name of the selected model."""
        return self.model_dropdown.value

    @property
    def class_names(self) -> list | None:
        """Class names of the extracted dataset (its ``.classes``), if it has them."""
        return list(getattr(self.dataset, "classes", None) or []) or None

    def on_extract(self, callback) -> None:
        """Call ``callback(explorer)`` after every successful extraction."""
        self._callbacks.append(callback)

    def select_layers(self, layers) -> None:
        """Select ``layers`` (names from the layer list) in the layer box."""
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in layers if name not in self.layers.options]
        if unknown:
            self.errors.show(ValueError(f"unknown layer(s) {unknown}; expected names from "
                                        f"{list(self.layers.options)}"))
            return
        self.layers.value = tuple(layers)

    # ------------------------------------------------------------------ callbacks
    def _on_model_change(self, change) -> None:
        if change is not None:  # at construction keep errors from listing the options
            self.errors.clear()
        self.layers.options = []
        self.model = None
        name = self.model_dropdown.value
        if name is None:
            return
        try:
            self.model = self._get_model(name)
            names = feature_layers(self.model)
        except Exception as exc:
            self.errors.show(exc)
            return
        self.layers.options = names
        self.layers.value = tuple(names)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(int(total), 1)
        self.progress.value = int(done)

    def extract(self) -> bool:
        """Run the extraction with the current controls (what the button does).

        Returns
        -------
        bool
            True on success; on failure the error is shown and the previous result kept.
        """
        if self.busy:  # an extraction is running: this request is ignored
            return False
        self.busy = True
        self.errors.clear()
        self.extract_button.disabled = True
        self.progress.bar_style = ""
        self.progress.value = 0
        try:
            if self.model is None:
                raise ValueError(f"model {self.model_dropdown.value!r} is not loaded; pick "
                                 "another model")
            if self.dataset_dropdown.value is None:
                raise ValueError("no dataset to choose from")
            layers = list(self.layers.value)
            if not layers:
                raise ValueError("no layers selected: select at least one layer")
            name = self.dataset_dropdown.value
            data = self._dataset_objects.get(name, name)
            features, labels, dataset, _ = extract_layer_features(
                self.model, data, layers=layers, n=self.n.value,
                image_size=self.image_size.value, seed=self.seed,
                batch_size=self.batch_size, n_chunks=self.n_chunks,
                on_progress=self._on_progress)
        except Exception as exc:
            self.progress.bar_style = "danger"
            self.errors.show(exc)
            return False
        finally:
            self.extract_button.disabled = False
            self.busy = False
        self.progress.bar_style = "success"
        labels = np.asarray(labels)
        problems = data_problems(features, labels)
        widths = {layer: int(np.shape(Z)[1]) for layer, Z in features.items()}
        self.labels, self.dataset = labels, dataset
        self.features_summary = {
            "dataset": str(name), "model": str(self.model_dropdown.value),
            "n": int(len(labels)), "n_classes": int(len(np.unique(labels))),
            "widths": widths, "problems": [text for text, _ in problems],
            "scorable": not any(blocking for _, blocking in problems)}
        self.features = features
        listed = ", ".join(f"{html.escape(layer)}&nbsp;({d})" for layer, d in widths.items())
        self.summary.value = prose(
            f"<p style='margin:6px 0'>{len(labels)} images of "
            f"<b>{html.escape(str(name))}</b>, {len(np.unique(labels))} classes, through "
            f"<b>{html.escape(str(self.model_dropdown.value))}</b>. Feature width per "
            f"layer: {listed}.</p>")
        self.notes.show([html.escape(text) for text, _ in problems])
        self.view_layer.layout.display = None
        self.view_layer.options = list(features)
        # Default view: the last layer (the penultimate features).
        if self.view_layer.value != layers[-1]:
            self.view_layer.value = layers[-1]
        else:
            self._draw()
        for callback in self._callbacks:
            try:
                callback(self)
            except Exception as exc:  # a listener's bug must not break the explorer
                self.errors.show(exc)
        return True

    def _draw(self) -> None:
        if self.features is None or self.view_layer.value not in self.features:
            return
        try:
            Z = self.features[self.view_layer.value]
            P = pca_2d(Z)
            fig, (ax,) = new_figure(ncols=1, width=5.0, height=3.0)
            scatter_classes(ax, P, self.labels, class_names=self.class_names)
            style_axes(ax, xlabel="PC 1", ylabel="PC 2",
                       title=f"{self.view_layer.value}: d = {Z.shape[1]}, PCA to 2-D")
            show_figure(self.plot, fig)
        except Exception as exc:
            self.errors.show(exc)
