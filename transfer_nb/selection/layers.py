"""score_layers: the one layer-selection procedure (protocol: :mod:`transfer_nb.selection`)."""
from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np

from transfer_nb.estimators import registry
from transfer_nb.selection._target import (TEST_FRACTION, check_class_counts,
                                           dataset_labels as _dataset_labels, is_folder,
                                           load_target, model_input_size, normalized_for,
                                           source_image_size, split_indices,
                                           subset as _subset, target_parts, upsampling_note)

__all__ = ["score_layers", "score_layer_features", "extract_layer_features",
           "feature_estimators", "LAYER_TRUTHS", "LAYER_ESTIMATORS", "TRUTHS"]

#: ground-truth protocols of layer selection: ``"fine_tune_reinit"`` keeps the layers up
#: to the scored one, re-initialises every later layer and fine-tunes everything
LAYER_TRUTHS = ("linear_probe", "fine_tune_reinit")
TRUTHS = LAYER_TRUTHS
#: score_models' default estimators that read a layer's features (LEEP and NCE read the
#: model's outputs, which are the same whichever layer is scored)
LAYER_ESTIMATORS = ("transrate", "logme", "hscore")
# former spellings, still accepted with a DeprecationWarning
_OLD_TRUTHS = {"finetune_reinit": "fine_tune_reinit"}

# virtual layer name of transfer_nb.features: the classifier's input
_PENULTIMATE = "penultimate"


def _renamed(old, old_name: str, new, new_name: str, default):
    """The value of a renamed keyword: ``old`` (with a DeprecationWarning) when given."""
    if old is None:
        return new
    if new is not default and new != default and new != old:
        raise ValueError(f"{old_name} is the former name of {new_name}: pass only {new_name}")
    warnings.warn(f"{old_name}= is now {new_name}=", DeprecationWarning, stacklevel=3)
    return old


def _truth_choice(ground_truth, truth, choices, where: str):
    """``ground_truth`` checked against ``choices`` (``truth=`` and the old spellings
    accepted with a DeprecationWarning)."""
    ground_truth = _renamed(truth, "truth", ground_truth, "ground_truth", None)
    if ground_truth in _OLD_TRUTHS:
        warnings.warn(f"ground_truth={ground_truth!r} is now {_OLD_TRUTHS[ground_truth]!r}",
                      DeprecationWarning, stacklevel=3)
        ground_truth = _OLD_TRUTHS[ground_truth]
    if ground_truth not in (None, *choices):
        hint = (" (layer selection fine-tunes with the layers after each one re-initialised: "
                "'fine_tune_reinit')" if ground_truth == "fine_tune" else "")
        raise ValueError(f"ground_truth must be None or one of {list(choices)} {where}, got "
                         f"{ground_truth!r}{hint}")
    return ground_truth


def feature_estimators() -> list:
    """Registered estimators that read only a layer's features and the labels (the
    names ``estimators=`` accepts)."""
    return [name for name in registry.list_estimators("features")
            if registry.get(name).inputs == ("features", "labels")]


def _estimator_functions(estimators, eps: float) -> dict:
    """``{column name: fn(Z, y)}`` from names of the estimator registry that take
    ``(features, labels)`` and/or a mapping ``name -> callable(Z, y)``.  TransRate
    entries get ``eps``."""
    if isinstance(estimators, str):
        estimators = [estimators]
    items = estimators.items() if isinstance(estimators, Mapping) else \
        [(name, None) for name in estimators]
    out = {}
    for name, fn in items:
        if fn is None:
            entry = registry.get(name)  # ValueError listing the names
            if entry.inputs != ("features", "labels"):
                raise ValueError(f"estimator {name!r} takes {list(entry.inputs)}, not a layer's "
                                 f"features and labels: choose from {feature_estimators()} "
                                 "or pass {name: callable(Z, y)}")
            fn = (lambda f: lambda Z, y: f(Z, y, eps=eps))(entry.func) \
                if name.startswith("transrate") else entry.func
        elif not callable(fn):
            raise ValueError(f"estimator {name!r} must be callable(Z, y), got {type(fn).__name__}")
        out[str(name)] = fn
    if not out:
        raise ValueError("estimators is empty: pass at least one estimator")
    return out


def _as_arrays(features, labels, what: str) -> tuple[dict, np.ndarray]:
    if not isinstance(features, Mapping) or not features:
        raise ValueError(f"{what} is empty: extract at least one layer")
    labels = np.asarray(labels).ravel()
    arrays = {}
    for name, Z in features.items():
        Z = Z.detach().cpu().numpy() if hasattr(Z, "detach") else np.asarray(Z)
        if Z.ndim != 2:
            raise ValueError(f"layer {name!r} of {what} must be (n, d), got shape {list(Z.shape)}")
        if len(Z) != len(labels):
            raise ValueError(f"layer {name!r} of {what} has {len(Z)} rows but there are "
                             f"{len(labels)} labels")
        arrays[str(name)] = Z
    return arrays, labels


def score_layer_features(features: Mapping, labels, *, test=None,
                         estimators=LAYER_ESTIMATORS, ground_truth: str | None = None,
                         test_fraction: float = TEST_FRACTION, seed: int = 0,
                         eps: float = 1e-4, hold_out: bool | None = None,
                         on_progress: Callable[[int, int], None] | None = None,
                         truth=None, test_size=None):
    """:func:`score_layers` on features that are already extracted.

    Parameters
    ----------
    features : mapping layer name -> (n, d) array
    labels : array-like, shape (n,)
    test : tuple (test_features, test_labels), optional
        Held-out features of the same layers for the ground truth.  ``None`` with a
        ground truth: ``features`` is split with
        :func:`transfer_nb.data.base.stratified_split` (``test_fraction``, ``seed``);
        without one, every row is scored.
    estimators : sequence of names of :func:`feature_estimators`, or mapping name -> callable(Z, y)
    ground_truth : None or "linear_probe"
        ``"fine_tune_reinit"`` needs the model: use :func:`score_layers`.
    test_fraction, seed : the split (and the probe's seed).
    eps : float
        Distortion of TransRate's coding rate.
    hold_out : bool, optional
        Without ``test``: whether the held-out part is cut out of ``features``.  Default
        (``None``): when a ground truth is asked.  ``True`` keeps the scores of a caller
        that asks for the ground truth later (the ``LayerSelector`` widget) the same
        before and after.
    on_progress : callable, optional
        ``on_progress(done, total)`` after each probed layer.
    truth, test_size : former names of ``ground_truth`` and ``test_fraction``.

    Returns
    -------
    pandas.DataFrame
        Index ``layer`` (in the mapping's order); columns ``depth`` (1-based position),
        ``width`` (feature dimension), one column per estimator (computed on the
        scored rows) and, with a ground truth, ``accuracy`` (held-out).
    """
    import pandas as pd

    ground_truth = _truth_choice(ground_truth, truth, LAYER_TRUTHS, "for features")
    test_fraction = _renamed(test_size, "test_size", test_fraction, "test_fraction",
                             TEST_FRACTION)
    if ground_truth == "fine_tune_reinit":
        raise ValueError("ground_truth='fine_tune_reinit' needs the model: use score_layers")
    fns = _estimator_functions(estimators, eps)
    arrays, labels = _as_arrays(features, labels, "features")
    names = list(arrays)
    test_arrays = test_labels = None
    if hold_out is None:
        hold_out = ground_truth is not None
    if test is None and hold_out:
        train, held = split_indices(labels, test_fraction, seed)
        test_arrays = {k: v[held] for k, v in arrays.items()}
        test_labels = labels[held]
        arrays = {k: v[train] for k, v in arrays.items()}
        labels = labels[train]
        check_class_counts(labels, test_labels, split_made=True)
    else:
        check_class_counts(labels)
        if test is not None:
            test_arrays, test_labels = _as_arrays(test[0], test[1], "test features")
            missing = [k for k in names if k not in test_arrays]
            if missing:
                raise ValueError(f"test features lack the layers {missing}")
    table = pd.DataFrame({"depth": np.arange(1, len(names) + 1),
                          "width": [int(arrays[k].shape[1]) for k in names]},
                         index=pd.Index(names, name="layer"))
    for col, fn in fns.items():
        values = []
        for k in names:
            try:
                values.append(float(fn(arrays[k], labels)))
            except ValueError as exc:
                raise ValueError(f"layer {k!r}: {col}: {exc}") from None
        table[col] = values
    if ground_truth == "linear_probe":
        from transfer_nb.training.transfer import linear_probe  # lazy: pulls in torch

        accuracy = []
        for i, k in enumerate(names):
            accuracy.append(float(linear_probe(arrays[k], labels, test_arrays[k], test_labels,
                                               seed=seed)))
            if on_progress is not None:
                on_progress(i + 1, len(names))
        table["accuracy"] = accuracy
    table.attrs["ground_truth"] = ground_truth
    # what reading the table needs (H-score's bound K - 1): ranking_notes
    table.attrs.update(n_classes=int(np.unique(labels).size), n_train=int(len(labels)))
    return table


def score_layers(model, data, layers=None, *, estimators=LAYER_ESTIMATORS,
                 ground_truth: str | None = None, test_data=None,
                 test_fraction: float = TEST_FRACTION, n: int | None = None,
                 n_test: int | None = None, image_size: int | None = None,
                 split: str = "train", seed: int = 0, eps: float = 1e-4, batch_size: int = 64,
                 finetune: Mapping | None = None, skip_bad: bool = False,
                 progress: bool = True,
                 on_progress: Callable[[int, int], None] | None = None,
                 truth=None, test_size=None, drop_classes=()):
    """Score every layer of ``model`` on ``data``: estimators and, optionally, ground truth.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name for :func:`transfer_nb.models.load_model`, or a module.
    data : str, path-like or torch.utils.data.Dataset
        Target data: a folder of images (one subfolder per class,
        :mod:`transfer_nb.data.folder`) or a name for :func:`transfer_nb.data.load_dataset`
        -- ``n`` images at ``image_size``, with the model's input normalisation -- or a
        dataset of ``(image, label)`` pairs used as is.  Which images are scored and which
        held out: :mod:`transfer_nb.selection`'s one rule (without a ground truth every
        image is scored).
    layers : None, "all", str or list of str
        Passed to :func:`transfer_nb.features.extract_features`, which resolves it
        (``None``: the model's default layers).
    estimators : sequence of names or mapping name -> callable(Z, y)
        See :func:`feature_estimators`; default :data:`LAYER_ESTIMATORS`, the ones of
        :func:`score_models`' default that read a layer's features.
    ground_truth : None, "linear_probe" or "fine_tune_reinit"
        Ground truth per layer (see the module docstring).
    test_data : str or Dataset, optional
        Held-out set for the ground truth, used whole.  Default: the data's own test
        split (a dataset name, a folder with ``train/`` and ``test/``), else a stratified
        split of ``data`` (``test_fraction``, ``seed``).
    test_fraction, seed : the split when there is no separate test set; ``seed`` also
        seeds the subsample, the probes and the fine-tunings.
    n, n_test : images of a path (its training split when it has one) and of the
        held-out set (default ``n``).
    image_size : int, optional
        Default: the resolution the model was trained at (as :func:`score_models`).
    split : str
        The split of a dataset *name* that is scored.
    eps : float
        TransRate's distortion.
    batch_size : int
        Forward-pass batch size of the extraction.
    finetune : mapping, optional
        Extra :func:`transfer_nb.training.transfer.fine_tune` arguments for ``"fine_tune_reinit"``
        (``epochs``, ``lr``, ``batch_size``, ``optimizer``, ...).
    skip_bad : bool
        Leave a folder's unreadable images out (with a warning) instead of failing.
    drop_classes : sequence of str
        A folder's class subfolders left out.
    progress : bool
        tqdm bars for the extraction and the fine-tunings (``False`` silences them).
    on_progress : callable, optional
        ``on_progress(done, total)`` after each layer's ground truth.
    truth, test_size : former names of ``ground_truth`` and ``test_fraction``.

    Returns
    -------
    pandas.DataFrame
        Index ``layer``; columns ``depth``, ``width``, one per estimator and, with a
        ground truth, ``accuracy``.
    """
    from transfer_nb.features import extract_features  # lazy: pulls in torch

    ground_truth = _truth_choice(ground_truth, truth, LAYER_TRUTHS, "for layers")
    test_fraction = _renamed(test_size, "test_size", test_fraction, "test_fraction",
                             TEST_FRACTION)
    _estimator_functions(estimators, eps)  # bad names fail before any work
    if isinstance(model, str):
        from transfer_nb.models import load_model  # lazy: pulls in torch
        model = load_model(model)
    import os
    size = image_size
    if size is None and isinstance(data, (str, os.PathLike)):
        size = model_input_size(model)
    train, test, made = target_parts(data, test_data, ground_truth is not None, n=n,
                                     n_test=n_test, image_size=size, seed=seed,
                                     test_fraction=test_fraction, skip_bad=skip_bad,
                                     split=split, drop_classes=drop_classes)
    check_class_counts(train, test, made)
    own = source_image_size(data, skip_bad, drop_classes=drop_classes) \
        if size is not None else None
    if own and size / own > 2:
        warnings.warn(upsampling_note(own, size), UserWarning, stacklevel=2)
    train, test = normalized_for(train, model), normalized_for(test, model)
    feats = extract_features(model, train, layers=layers, batch_size=batch_size,
                             progress=progress)
    labels = _dataset_labels(train)
    held = None
    if ground_truth == "linear_probe":
        held = (extract_features(model, test, layers=list(feats), batch_size=batch_size,
                                 progress=progress), _dataset_labels(test))
    table = score_layer_features(
        feats, labels, test=held, estimators=estimators,
        ground_truth="linear_probe" if ground_truth == "linear_probe" else None, seed=seed,
        eps=eps, on_progress=on_progress)
    if ground_truth == "fine_tune_reinit":
        table["accuracy"] = _finetune_per_layer(model, list(table.index), train, test,
                                                seed, dict(finetune or {}), progress,
                                                on_progress)
    table.attrs["ground_truth"] = ground_truth
    return table


def _finetune_per_layer(model, layers, train, test, seed, options, progress, on_progress):
    from transfer_nb.training.transfer import fine_tune  # lazy: pulls in torch

    modules = {name for name, _ in model.named_modules()}
    for layer in layers:
        if layer not in modules and layer != _PENULTIMATE:
            raise ValueError(f"layer {layer!r} is not a module of the model: cannot "
                             "re-initialise the layers after it")
    it = layers
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(layers, desc="re-init after layer + fine-tune")
    accuracy = []
    for i, layer in enumerate(it):
        # "penultimate" is the classifier input: nothing after it but the new head
        after = layer if layer in modules else None
        res = fine_tune(model, train, test, seed=seed, progress=False, reinit_after=after,
                        normalize="none", **options)
        accuracy.append(float(res["accuracy"]))
        if on_progress is not None:
            on_progress(i + 1, len(layers))
    return accuracy


def extract_layer_features(model, data, layers=None, n: int | None = None,
                           image_size: int | None = None, split: str = "train",
                           seed: int = 0, batch_size: int = 64, n_chunks: int = 1,
                           on_progress: Callable[[int, int], None] | None = None,
                           progress: bool = False):
    """Load (if needed) a model and a dataset and extract per-layer features.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name for :func:`transfer_nb.models.load_model`, or a module.
    data : str or torch.utils.data.Dataset
        A name for :func:`transfer_nb.data.load_dataset` or an image folder (loaded with
        the model's input normalisation, ``n`` images of ``split`` at ``image_size``), or
        a dataset of ``(image, label)`` pairs used as is.
    layers : passed to :func:`transfer_nb.features.extract_features` (which resolves it).
    n, image_size, split, seed : passed to :func:`transfer_nb.data.load_dataset`.
    batch_size : int
        Forward-pass batch size.
    n_chunks : int
        The data is cut into at most this many consecutive chunks of whole batches, each
        extracted in one pass over all layers, and ``on_progress(done, total)`` is called
        after each one: how a caller without a terminal (a widget) shows progress.
    on_progress : callable, optional
    progress : bool
        Show ``extract_features``' own tqdm bar.

    Returns
    -------
    features : dict[str, numpy.ndarray]
        Layer name -> ``(len(data), d)`` features.
    labels : numpy.ndarray, shape (len(data),)
    dataset : the dataset used
    model : the model used
    """
    from transfer_nb.features import extract_features  # lazy: pulls in torch

    if isinstance(model, str):
        from transfer_nb.models import load_model  # lazy: pulls in torch
        model = load_model(model)
    if isinstance(data, str):
        data = normalized_for(load_target(data, split, n, image_size, seed), model)
    total = len(data)
    if total == 0:
        raise ValueError("the dataset is empty")
    labels = _dataset_labels(data)
    # Chunk borders fall on batch borders, so chunking changes no forward pass: the
    # batches are exactly those of a single call, only the progress is reported.
    n_batches = -(-total // int(batch_size))
    n_chunks = max(1, min(int(n_chunks), n_batches))
    bounds = np.minimum(
        np.round(np.linspace(0, n_batches, n_chunks + 1)).astype(int) * int(batch_size), total)
    parts: dict = {}
    if on_progress is not None:
        on_progress(0, total)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        chunk = data if n_chunks == 1 else _subset(data, np.arange(start, stop))
        feats = extract_features(model, chunk, layers=layers, batch_size=batch_size,
                                 progress=progress)
        layers = list(feats)  # the resolved names, for the next chunks
        for name in layers:
            parts.setdefault(name, []).append(np.asarray(feats[name]))
        if on_progress is not None:
            on_progress(int(stop), total)
    features = {name: np.concatenate(parts[name], axis=0) for name in parts}
    return features, labels, data, model
