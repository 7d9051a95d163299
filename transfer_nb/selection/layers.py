"""score_layers: the one layer-selection procedure (protocol: :mod:`transfer_nb.selection`)."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

__all__ = ["score_layers", "score_layer_features", "extract_layer_features",
           "feature_estimators", "TRUTHS"]

#: ground-truth protocols
TRUTHS = ("linear_probe", "finetune_reinit")

# virtual layer name of transfer_nb.features: the classifier's input
_PENULTIMATE = "penultimate"


def feature_estimators() -> list:
    """Registered estimators that read only a layer's features and the labels (the
    names ``estimators=`` accepts)."""
    from transfer_nb.estimators import registry

    return [name for name in registry.list_estimators("features")
            if registry.get(name).inputs == ("features", "labels")]


def _estimator_functions(estimators, eps: float) -> dict:
    """``{column name: fn(Z, y)}`` from names of the estimator registry that take
    ``(features, labels)`` and/or a mapping ``name -> callable(Z, y)``.  TransRate
    entries get ``eps``."""
    from transfer_nb.estimators import registry

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


def _split(labels, test_size: float, seed: int):
    from transfer_nb.data.base import stratified_split

    train, test = stratified_split(labels, test_size, seed)
    if len(test) == 0:
        raise ValueError("every class has a single sample: nothing left to hold out")
    return train, test


def score_layer_features(features: Mapping, labels, *, test=None,
                         estimators=("transrate",), truth: str | None = None,
                         test_size: float = 0.3, seed: int = 0, eps: float = 1e-4,
                         on_progress: Callable[[int, int], None] | None = None):
    """:func:`score_layers` on features that are already extracted.

    Parameters
    ----------
    features : mapping layer name -> (n, d) array
    labels : array-like, shape (n,)
    test : tuple (test_features, test_labels), optional
        Held-out features of the same layers.  ``None``: ``features`` is split with
        :func:`transfer_nb.data.base.stratified_split` (``test_size``, ``seed``).
    estimators : sequence of names of :func:`feature_estimators`, or mapping name -> callable(Z, y)
    truth : None or "linear_probe"
        ``"finetune_reinit"`` needs the model: use :func:`score_layers`.
    test_size, seed : the split (and the probe's seed).
    eps : float
        Distortion of TransRate's coding rate.
    on_progress : callable, optional
        ``on_progress(done, total)`` after each probed layer.

    Returns
    -------
    pandas.DataFrame
        Index ``layer`` (in the mapping's order); columns ``depth`` (1-based position),
        ``width`` (feature dimension), one column per estimator (computed on the
        training part) and, with ``truth``, ``accuracy`` (held-out).
    """
    import pandas as pd

    if truth not in (None, "linear_probe"):
        raise ValueError(f"truth must be None or 'linear_probe' for features, got {truth!r}"
                         + (" (needs the model: use score_layers)"
                            if truth == "finetune_reinit" else ""))
    fns = _estimator_functions(estimators, eps)
    arrays, labels = _as_arrays(features, labels, "features")
    names = list(arrays)
    if test is None:
        train, held = _split(labels, test_size, seed)
        test_arrays = {k: v[held] for k, v in arrays.items()}
        test_labels = labels[held]
        arrays = {k: v[train] for k, v in arrays.items()}
        labels = labels[train]
    else:
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
    if truth == "linear_probe":
        from transfer_nb.transfer import linear_probe

        accuracy = []
        for i, k in enumerate(names):
            accuracy.append(float(linear_probe(arrays[k], labels, test_arrays[k], test_labels,
                                               seed=seed)))
            if on_progress is not None:
                on_progress(i + 1, len(names))
        table["accuracy"] = accuracy
    return table


def score_layers(model, data, layers=None, *, estimators=("transrate",),
                 truth: str | None = None, test_data=None, test_size: float = 0.3,
                 n: int | None = None, n_test: int | None = None,
                 image_size: int | None = None, split: str = "train", seed: int = 0,
                 eps: float = 1e-4, batch_size: int = 64, finetune: Mapping | None = None,
                 progress: bool = False,
                 on_progress: Callable[[int, int], None] | None = None):
    """Score every layer of ``model`` on ``data``: estimators and, optionally, ground truth.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name for :func:`transfer_nb.models.load_model`, or a module.
    data : str or torch.utils.data.Dataset
        Target data: a name for :func:`transfer_nb.data.load_dataset` or a folder of
        images (one subfolder per class, :mod:`transfer_nb.data.folder`) -- ``n`` images
        of ``split`` at ``image_size``, with the model's input normalisation -- or a
        dataset of ``(image, label)`` pairs used as is.
    layers : None, "all", str or list of str
        Passed to :func:`transfer_nb.features.extract_features`, which resolves it
        (``None``: the model's default layers).
    estimators : sequence of names or mapping name -> callable(Z, y)
        See :func:`feature_estimators`.
    truth : None, "linear_probe" or "finetune_reinit"
        Ground truth per layer (see the module docstring).
    test_data : str or Dataset, optional
        Held-out set for the ground truth.  Default: the ``"test"`` split (``n_test``
        images, default ``n``) when ``data`` is a name, else a stratified split of ``data``.
    test_size, seed : the split when there is no separate test set; ``seed`` also seeds
        the subsample, the probes and the fine-tunings.
    eps : float
        TransRate's distortion.
    batch_size : int
        Forward-pass batch size of the extraction.
    finetune : mapping, optional
        Extra :func:`transfer_nb.transfer.fine_tune` arguments for ``"finetune_reinit"``
        (``epochs``, ``lr``, ``batch_size``, ``optimizer``, ...).
    progress : bool
        tqdm bars for the extraction and the fine-tunings.
    on_progress : callable, optional
        ``on_progress(done, total)`` after each layer's ground truth.

    Returns
    -------
    pandas.DataFrame
        Index ``layer``; columns ``depth``, ``width``, one per estimator and, with
        ``truth``, ``accuracy``.
    """
    if truth not in (None, *TRUTHS):
        raise ValueError(f"truth must be None, 'linear_probe' or 'finetune_reinit', got {truth!r}")
    _estimator_functions(estimators, eps)  # bad names fail before the extraction
    # a dataset name has its own test split; a dataset object without test_data is split
    separate = test_data is not None or isinstance(data, str)
    if truth is not None and test_data is None and isinstance(data, str):
        test_data = data
    feats, labels, data, model = extract_layer_features(
        model, data, layers=layers, n=n, image_size=image_size, split=split, seed=seed,
        batch_size=batch_size, progress=progress)
    train_data = data
    if separate:
        test = (feats, labels)  # placeholder: no probe without truth
        if truth is not None:
            test_feats, test_labels, test_data, _ = extract_layer_features(
                model, test_data, layers=list(feats), n=n_test if n_test is not None else n,
                image_size=image_size, split="test", seed=seed, batch_size=batch_size,
                progress=progress)
            test = (test_feats, test_labels)
    else:
        # the same split score_layer_features makes, kept here for the fine-tunings
        train, held = _split(labels, test_size, seed)
        test = ({k: v[held] for k, v in feats.items()}, labels[held])
        train_data, test_data = _subset(data, train), _subset(data, held)
        feats = {k: v[train] for k, v in feats.items()}
        labels = labels[train]
    table = score_layer_features(
        feats, labels, test=test, estimators=estimators,
        truth="linear_probe" if truth == "linear_probe" else None, seed=seed, eps=eps,
        on_progress=on_progress)
    if truth == "finetune_reinit":
        table["accuracy"] = _finetune_per_layer(model, list(table.index), train_data, test_data,
                                                seed, dict(finetune or {}), progress, on_progress)
    return table


def _finetune_per_layer(model, layers, train, test, seed, options, progress, on_progress):
    from transfer_nb.transfer import fine_tune

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
    from transfer_nb.features import extract_features

    if isinstance(model, str):
        from transfer_nb.models import load_model
        model = load_model(model)
    if isinstance(data, str):
        data = _normalized_for(_load_target(data, split, n, image_size, seed), model)
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


def _subset(data, indices):
    if hasattr(data, "subset"):  # ImageDataset keeps its attributes (normalize, classes)
        return data.subset(indices)
    from torch.utils.data import Subset
    return Subset(data, [int(i) for i in indices])


def _dataset_labels(data) -> np.ndarray:
    """Labels of a dataset without decoding images when it exposes ``.targets``."""
    targets = getattr(data, "targets", None)
    if targets is not None and len(targets) == len(data):
        return np.asarray(targets)
    tensors = getattr(data, "tensors", None)  # TensorDataset
    if tensors is not None and len(tensors) >= 2:
        return np.asarray(tensors[1].cpu().numpy())
    return np.asarray([int(data[i][1]) for i in range(len(data))])


def _load_target(data, split, n, image_size, seed):
    """A folder path or dataset name -> an unnormalised ImageDataset; a Dataset as is."""
    import os

    if isinstance(data, (str, os.PathLike)):
        from transfer_nb.data import load_dataset

        if not _is_folder(data):
            return load_dataset(data, split=split, n=n, image_size=image_size, seed=seed)
        from transfer_nb.data import list_datasets
        from transfer_nb.data.folder import check_root
        if not os.path.exists(os.fspath(data)):
            raise ValueError(f"data {os.fspath(data)!r} does not exist as a folder and is not "
                             f"a dataset name (list_datasets(): {list_datasets()})")
        root = check_root(data)  # ValueError: a file, not a folder
        return load_dataset("folder", root=root, split=split, n=n, image_size=image_size,
                            seed=seed)
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise ValueError(f"data must be a folder, a dataset name or a torch Dataset, got "
                         f"{type(data).__name__}")
    return data


def _is_folder(data) -> bool:
    """Whether :func:`_load_target` reads ``data`` as a folder (not a dataset name)."""
    import os

    if isinstance(data, os.PathLike):
        return True
    if not isinstance(data, str):
        return False
    from transfer_nb.data import list_datasets
    return os.path.isdir(data) or data not in list_datasets()


def _normalized_for(data, model):
    """``data`` as ``model`` expects it: an ImageDataset re-normalised the model's way
    (its stored images are in [0, 1]); anything else unchanged."""
    import copy

    from transfer_nb.data.base import ImageDataset

    norm = getattr(model, "transfer_nb_normalize", None)
    if not isinstance(data, ImageDataset) or norm is None or data.normalize == norm:
        return data
    view = copy.copy(data)  # shares the image tensor
    view.normalize = str(norm)
    view.spec = {**data.spec, "normalize": str(norm)}  # the cache key sees the change
    return view
