"""score_models: rank a researcher's models on their data (one row per model).

The model-level sibling of :func:`transfer_nb.selection.layers.score_layers`; both read the
data by one rule (:mod:`transfer_nb.selection._target`) and use the same estimator
functions.  A model that cannot be scored loses nothing else: its row says why.
"""
from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb._validation import check_scalar
from transfer_nb.estimators import registry
from transfer_nb.selection import _jobs
from transfer_nb.selection._target import (TEST_FRACTION, check_class_counts, dataset_labels,
                                           model_input_size, normalized_for,
                                           source_image_size, target_parts,
                                           upsampling_note)
from transfer_nb.selection.baselines import imagenet_top1, parameter_count
from transfer_nb.selection.layers import _estimator_functions, _renamed

__all__ = ["score_models", "MODEL_ESTIMATORS", "DEFAULT_ESTIMATORS", "MODEL_TRUTHS",
           "BACKENDS", "ERRORS", "UPSAMPLING_NOTE_RATIO"]


# ------------------------------------------------------------------ model selection
#: what :func:`score_models` computes by default (``score_layers``: the ones that read
#: a layer's features; LEEP and NCE read the model's outputs, the same for every layer)
DEFAULT_ESTIMATORS = ("transrate", "logme", "leep", "nce", "hscore")
MODEL_ESTIMATORS = DEFAULT_ESTIMATORS
#: ground-truth protocols of :func:`score_models`
MODEL_TRUTHS = ("linear_probe", "fine_tune")
#: job engines of :func:`score_models` (``None``: joblib's default, loky processes)
BACKENDS = _jobs.BACKENDS
#: what a failing model does: ``"note"`` (its row says why, the others go on) or ``"raise"``
ERRORS = ("note", "raise")
#: a note is added when the images are enlarged by more than this factor
UPSAMPLING_NOTE_RATIO = 2.0


def score_models(models, data, estimators=DEFAULT_ESTIMATORS, layer: str = "penultimate",
                 ground_truth: str | None = None, test_data=None, device=None,
                 n_jobs: int = 1, backend: str | None = None, *, scheduler=None,
                 n: int | None = None, n_test: int | None = None, image_size=None,
                 seed: int = 0, test_fraction: float = TEST_FRACTION, eps: float = 1e-4,
                 batch_size: int = 64, cache=True, finetune: Mapping | None = None,
                 skip_bad: bool = False, errors: str = "note", progress: bool = True,
                 on_progress: Callable[[int, int], None] | None = None, test_size=None,
                 drop_classes=()):
    """Score several source models on one target: one row per model.

    Each model is one independent job: load it (a name), extract ``layer`` and, when it
    has a classifier, its own output in the same forward pass
    (:func:`transfer_nb.features.extract_features`, cached), run every estimator on
    them, and measure the ground truth when asked.  Which images are scored and which
    are held out follows :mod:`transfer_nb.selection`'s one rule: without a ground truth
    every image is scored; with one, the estimators see the training part only.  The
    class counts are checked before any model is loaded.

    Parameters
    ----------
    models : sequence of str / torch.nn.Module, or mapping name -> str / module
        Names from :func:`transfer_nb.models.list_models` (or ``"timm:..."``,
        ``"torchvision:..."``), modules (named by ``transfer_nb_name`` or their class),
        or a dict ``row name -> name or module``.
    data : str, path-like or torch Dataset
        Target: a folder of images (one subfolder per class, see
        :mod:`transfer_nb.data.folder`), a name from :func:`transfer_nb.data.list_datasets`,
        or a dataset of ``(image, label)``.  An :class:`~transfer_nb.data.ImageDataset`
        (every folder and named set is one) is shown to each model normalised the
        model's way (``model.transfer_nb_normalize``); other datasets are used as they are.
    estimators : sequence of str, or mapping name -> callable(Z, y)
        Registry names (:mod:`transfer_nb.estimators.registry`) that read the layer's
        features (``transrate``, ``logme``, ``hscore``, ...) or the source model's outputs
        (``leep``: softmax of the outputs, ``nce``: their argmax).  The latter are NaN,
        with a ``note``, for a model without a classifier.
    layer : str
        One layer of every model (:func:`transfer_nb.models.layers.resolve_layers`);
        ``"penultimate"``: the classifier's input.
    ground_truth : None, "linear_probe" or "fine_tune"
        ``"linear_probe"``: logistic regression on the training part's features, accuracy
        on the held-out features (:func:`transfer_nb.training.transfer.linear_probe`);
        ``"fine_tune"``: new head, every layer fine-tuned
        (:func:`transfer_nb.training.transfer.fine_tune`, options from ``finetune``).
    test_data : str, path-like or Dataset, optional
        Held-out set of the ground truth, used whole (a dataset name: its test split).
        Default: the data's own test split (a dataset name, a folder with ``train/`` and
        ``test/``), else a stratified split (``test_fraction``, ``seed``).
    device : None, str or torch.device
        Where each job runs (:func:`transfer_nb.training.resolve_device`; ``None``: CUDA
        when available).
    n_jobs : int
        Jobs at a time: 1 runs them here one by one; more use joblib threads or processes
        (``backend``) or, with ``backend="dask"``, the workers of a local cluster.  Each
        job then runs torch and BLAS on ``cores // n_jobs`` threads, so that the jobs do
        not fight over the cores (the last ``len(models) % n_jobs`` jobs share all of
        them).
    backend : None, "threading", "loky" or "dask"
        ``None``: ``"threading"`` (no worker start-up: torch and BLAS release the GIL), or
        ``"loky"`` processes for ``ground_truth="fine_tune"``, whose training seeds
        torch's global random generator (threads would share it).  ``"dask"``: each job
        is a task on a ``dask.distributed`` cluster: ``scheduler``, or a ``LocalCluster``
        of ``n_jobs`` single-threaded worker processes.
    scheduler : str, distributed.Client or cluster, optional
        Scheduler address (``"tcp://host:8786"``) or a client / cluster to use.
    n, n_test : int, optional
        Images of a path to use (of its training split when it has one; drawn stratified
        by ``seed``) and of the held-out set (default ``n``).
    image_size : int, optional
        Resize the images of a path to this size for every model.  Default: **each
        model at the resolution it was trained at** (224 px for EfficientNet-Lite0, 240
        for Lite1, 260 for Lite2, the weights' own for torchvision/timm), the protocol
        of the papers and what the weights expect; a module that does not declare it
        (``transfer_nb_input_size``) gets the loader's default (224 for folders, the
        native size of a named set).  When that enlarges the images by more than 2x,
        the row's ``note`` says so: a separate run at a smaller ``image_size`` is much
        faster, but it is another experiment (scores at different sizes are not
        comparable and the ranking can differ).  A dataset object is used as it is.
    seed : int
        Seeds the subsample, the split, the probes and the fine-tunings.
    test_fraction : float
        Held-out share of a split made here (``test_size`` is its former name).
    eps : float
        TransRate's distortion.
    batch_size : int
        Forward-pass batch size.
    cache : bool or path
        :func:`transfer_nb.features.extract_features`' ``cache``.
    finetune : mapping, optional
        Extra :func:`transfer_nb.training.transfer.fine_tune` arguments (``epochs``, ``lr``, ...).
    skip_bad : bool
        A folder's unreadable images are left out with a warning instead of failing.
    drop_classes : sequence of str
        A folder's class subfolders left out (e.g. one with too few images).  Every
        problem of a folder (empty classes, classes with one image, unreadable files) is
        reported in one ValueError before any model is loaded.
    errors : "note" or "raise"
        ``"note"``: a model that fails (weights unavailable, a load error, an exception
        or NaN in an estimator or the ground truth) keeps its row with NaN where it
        failed and the reason in ``note`` (and a warning); the other models go on.
        ``"raise"``: stop at the first failure.
    progress : bool
        A tqdm bar over the models (``False`` silences it).
    on_progress : callable, optional
        ``on_progress(done, total)`` as models finish.

    Returns
    -------
    pandas.DataFrame
        Index ``model`` (in the given order); columns ``layer`` (resolved name),
        ``image_size`` (px seen by the model), ``width`` (feature dimension), ``n_train``,
        ``n_classes``, with a ground truth ``n_test``, one column per estimator,
        ``accuracy`` with a ground truth, the static baselines ``params`` and
        ``imagenet_top1`` (:mod:`transfer_nb.selection.baselines`), the wall-clock
        seconds ``extract_seconds``, ``<estimator>_seconds`` (and ``truth_seconds``),
        and ``note``.  ``attrs``: ``ground_truth`` (the protocol), ``estimators`` (the
        score columns), ``failed`` (``{model: reason}`` of the models that could not be
        scored).  :func:`transfer_nb.selection.rank_table` ranks it.

    Raises
    ------
    ValueError
        A bad argument, too few images in a class (named), or no model could be scored
        (each reason listed).
    """
    import pandas as pd

    test_fraction = _renamed(test_size, "test_size", test_fraction, "test_fraction",
                             TEST_FRACTION)
    named = _named_models(models)
    feature_fns, source_names = _model_estimators(estimators, eps)
    if ground_truth not in (None, *MODEL_TRUTHS):
        raise ValueError(f"ground_truth must be None, 'linear_probe' or 'fine_tune', "
                         f"got {ground_truth!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'note' or 'raise', got {errors!r}")
    n_jobs = check_scalar(n_jobs, "n_jobs", int, min_val=1)
    if not isinstance(layer, str) or not layer:
        raise ValueError(f"layer must be one layer name, got {layer!r}")
    if device is not None:
        from transfer_nb import training  # lazy: pulls in torch
        training.resolve_device(device)  # an unavailable device fails before any work

    parts, notes = _parts_per_size(named, data, test_data, ground_truth is not None,
                                   n=n, n_test=n_test, image_size=image_size, seed=seed,
                                   test_fraction=test_fraction, skip_bad=skip_bad,
                                   drop_classes=drop_classes)
    if backend is None:
        backend = "loky" if ground_truth == "fine_tune" else "threading"
    jobs = [dict(name=name, model=model, train=parts[size][0], test=parts[size][1],
                 layer=layer, feature_fns=feature_fns, source_names=source_names,
                 ground_truth=ground_truth, device=device, seed=seed,
                 batch_size=batch_size, cache=cache, finetune=dict(finetune or {}),
                 errors=errors, threads=None, note=notes.get(name, ""))
            for name, model, size in named_sizes(named, data, image_size)]
    rows = _jobs.run_jobs(_score_model_job, jobs, n_jobs, backend, scheduler, progress,
                          on_progress, desc="score_models")
    return _table(rows, named, estimators, feature_fns, source_names, ground_truth)


def _table(rows, named, estimators, feature_fns, source_names, ground_truth):
    import pandas as pd

    failed = {row["model"]: row.pop("_failed") for row in rows if "_failed" in row}
    for row in rows:
        error = row.pop("_error", None)
        if row["model"] in failed:
            warnings.warn(f"model {row['model']!r} could not be scored: {error}",
                          UserWarning, stacklevel=3)
    if len(failed) == len(rows):
        raise ValueError("no model could be scored: " + "; ".join(
            f"{name!r}: {why}" for name, why in failed.items()))
    table = pd.DataFrame(rows).set_index("model")
    scores = _ordered(estimators, list(feature_fns) + source_names)
    first = ["layer", "image_size", "width", "n_train", "n_classes"]
    first += (["n_test"] if ground_truth is not None else []) + scores
    first += (["accuracy"] if ground_truth is not None else []) + ["params", "imagenet_top1"]
    for col in first:
        if col not in table.columns:
            table[col] = np.nan
    rest = [c for c in table.columns if c not in first and c != "note"]
    table = table[first + rest + ["note"]]
    for col in ("image_size", "width", "n_train", "n_classes", "n_test", "params"):
        if col in table.columns and table[col].notna().all():
            table[col] = table[col].astype(np.int64)
    table["note"] = table["note"].fillna("")
    table.attrs.update(ground_truth=ground_truth, estimators=scores, failed=failed)
    return table


def named_sizes(named, data, image_size):
    """``[(row name, model, image size or None)]``: each model's resolution (see
    :func:`score_models`' ``image_size``); ``None`` for a dataset object."""
    import os

    by_path = isinstance(data, (str, os.PathLike))
    out = []
    for name, model in named:
        size = None
        if by_path:
            size = image_size if image_size is not None else model_input_size(model)
        out.append((name, model, size))
    return out


def _parts_per_size(named, data, test_data, held_out, *, n, n_test, image_size, seed,
                    test_fraction, skip_bad, drop_classes=()):
    """``({size: (train, test)}, {row name: note})``; the class counts are checked on
    the first part loaded, before the others and before any model."""
    parts, notes = {}, {}
    for _, _, size in named_sizes(named, data, image_size):
        if size in parts:
            continue
        train, test, made = target_parts(data, test_data, held_out, n=n, n_test=n_test,
                                         image_size=size, seed=seed,
                                         test_fraction=test_fraction, skip_bad=skip_bad,
                                         drop_classes=drop_classes)
        if not parts:
            check_class_counts(train, test, made)
        parts[size] = (train, test)
    own = source_image_size(data, skip_bad, drop_classes=drop_classes) if any(parts) \
        else None
    if own:
        for name, _, size in named_sizes(named, data, image_size):
            side = size if isinstance(size, int) else (min(size) if size else None)
            if side and side / own > UPSAMPLING_NOTE_RATIO:
                notes[name] = upsampling_note(own, side)
    return parts, notes


def _ordered(estimators, scores):
    names = list(estimators) if not isinstance(estimators, str) else [estimators]
    return [str(e) for e in names if str(e) in scores]


def _named_models(models) -> list:
    """``[(row name, str or module)]``; unknown names fail here, before any work."""
    import torch.nn as nn

    from transfer_nb.models import zoo  # lazy: pulls in torch

    if isinstance(models, (str, nn.Module)):
        models = [models]
    items = list(models.items()) if isinstance(models, Mapping) else \
        [(None, m) for m in models]
    if not items:
        raise ValueError("models is empty: pass at least one model name or module")
    out, seen = [], set()
    for name, model in items:
        if isinstance(model, str):
            zoo.resolve(model)  # ValueError listing the valid names
            label = model
        elif isinstance(model, nn.Module):
            label = getattr(model, "transfer_nb_name", type(model).__name__)
        else:
            raise ValueError(f"a model must be a name from list_models() or a torch.nn.Module, "
                             f"got {type(model).__name__}")
        label = str(name) if name is not None else label
        if label in seen:
            raise ValueError(f"two models are called {label!r}: pass a dict name -> model")
        seen.add(label)
        out.append((label, model))
    return out


def _model_estimators(estimators, eps):
    """``(feature functions {name: fn(Z, y)}, [registry names that read the source
    model's outputs])``; bad names fail here."""
    if isinstance(estimators, str):
        estimators = [estimators]
    if isinstance(estimators, Mapping):
        return _estimator_functions(estimators, eps), []
    features, source = [], []
    for name in estimators:
        entry = registry.get(name)  # ValueError listing the names
        if entry.inputs == ("features", "labels"):
            features.append(name)
        elif entry.inputs in (("source_probs", "labels"), ("source_labels", "labels")):
            source.append(str(name))
        else:
            raise ValueError(f"estimator {name!r} takes {list(entry.inputs)}: score_models "
                             "computes the ones reading a layer's features or the source "
                             f"model's outputs, e.g. {list(DEFAULT_ESTIMATORS)}")
    if not features and not source:
        raise ValueError("estimators is empty: pass at least one estimator")
    return (_estimator_functions(features, eps) if features else {}), source


# ----------------------------------------------------------------------- one job
def _score_model_job(name, model, train, test, layer, feature_fns, source_names,
                     ground_truth, device, seed, batch_size, cache, finetune, errors,
                     threads, note) -> dict:
    """One (model, target) job of :func:`score_models`: a row as a dict.  With
    ``errors="note"`` nothing escapes: a failure is a NaN and a note (``_failed`` /
    ``_error`` mark a model that could not be scored at all)."""
    row = {"model": name, "layer": layer,
           "imagenet_top1": imagenet_top1(model)}
    notes = [note] if note else []
    try:
        with torch_threads(threads, blas=True):
            _fill_row(row, notes, name, model, train, test, layer, feature_fns,
                      source_names, ground_truth, device, seed, batch_size, cache,
                      finetune, errors)
    except Exception as exc:  # noqa: BLE001 - reported in the row, the others go on
        if errors == "raise":
            raise
        row["_failed"], row["_error"] = _reason(exc), _reason(exc, full=True)
        notes.append(f"failed: {row['_failed']}")
    else:
        wanted = list(feature_fns) + list(source_names) + \
            (["accuracy"] if ground_truth else [])
        if not any(np.isfinite(row.get(c, np.nan)) for c in wanted):
            row["_failed"] = row["_error"] = "no score could be computed (" + \
                "; ".join(notes) + ")"
    row["note"] = "; ".join(dict.fromkeys(notes))
    return row


def _fill_row(row, notes, name, model, train, test, layer, feature_fns, source_names,
              ground_truth, device, seed, batch_size, cache, finetune, errors):
    import time

    from transfer_nb import training  # lazy: pulls in torch
    from transfer_nb.features import extract_features  # lazy: pulls in torch
    from transfer_nb.models.layers import find_classifier, resolve_layers  # lazy: pulls in torch

    device = training.resolve_device(device)
    if isinstance(model, str):
        from transfer_nb.models import load_model  # lazy: pulls in torch
        model = load_model(model)
    row["params"] = parameter_count(model)
    resolved = resolve_layers(model, layer)
    if len(resolved) != 1:
        raise ValueError(f"layer must name one layer, got {layer!r} -> {resolved}")
    layer = row["layer"] = resolved[0]
    want_outputs = bool(source_names) and find_classifier(model) is not None
    layers = [layer] + (["output"] if want_outputs and layer != "output" else [])
    train = normalized_for(train, model)

    start = time.perf_counter()
    feats = extract_features(model, train, layers=layers, batch_size=batch_size,
                             device=device, cache=cache, progress=False)
    row["extract_seconds"] = time.perf_counter() - start
    Z, y = feats[layer], dataset_labels(train)
    row["image_size"] = int(train[0][0].shape[-1])
    row["width"], row["n_train"] = int(Z.shape[1]), int(len(y))
    row["n_classes"] = int(len(np.unique(y)))
    for col, fn in feature_fns.items():
        start = time.perf_counter()
        row[col] = _guarded(lambda: fn(Z, y), name, col, notes, errors)
        row[f"{col}_seconds"] = time.perf_counter() - start
    if source_names:
        _source_scores(row, notes, source_names, feats.get("output") if want_outputs
                       else None, y, name, errors)
    if ground_truth is not None:
        start = time.perf_counter()
        row["n_test"] = int(len(test))
        row["accuracy"] = _guarded(
            lambda: _truth(model, layer, Z, y, train, test, ground_truth, seed, device,
                           batch_size, cache, finetune), name, "accuracy", notes, errors)
        row["truth_seconds"] = time.perf_counter() - start


def _truth(model, layer, Z, y, train, test, ground_truth, seed, device, batch_size, cache,
           finetune):
    """The held-out accuracy of ``ground_truth`` (``train`` already normalised)."""
    from transfer_nb.features import extract_features  # lazy: pulls in torch

    test = normalized_for(test, model)
    if ground_truth == "linear_probe":
        from transfer_nb.training.transfer import linear_probe  # lazy: pulls in torch
        Zt = extract_features(model, test, layers=[layer], batch_size=batch_size,
                              device=device, cache=cache, progress=False)[layer]
        return linear_probe(Z, y, Zt, dataset_labels(test), seed=seed)
    from transfer_nb.training.transfer import fine_tune  # lazy: pulls in torch
    res = fine_tune(model, train, test, seed=seed, device=device, progress=False, **finetune)
    return res["accuracy"]


def _guarded(compute, name, col, notes, errors) -> float:
    """``float(compute())``; an exception or a NaN is a note (``errors="note"``) or a
    ValueError naming the model and the column (``errors="raise"``)."""
    try:
        value = float(compute())
    except Exception as exc:  # noqa: BLE001
        if errors == "raise":
            if isinstance(exc, ValueError):
                raise ValueError(f"model {name!r}: {col}: {exc}") from None
            raise
        notes.append(f"{col} failed: {_reason(exc)}")
        return float("nan")
    if not np.isfinite(value):
        if errors == "raise":
            raise ValueError(f"model {name!r}: {col} is {value}")
        notes.append(f"{col} is {value}")
    return value


def _source_scores(row, notes, names, logits, y, name, errors):
    """LEEP / NCE from the source model's outputs (NaN and a note without a classifier)."""
    import time

    if logits is None:
        for col in names:
            row[col], row[f"{col}_seconds"] = float("nan"), float("nan")
        notes.append(f"no classifier: {', '.join(names)} need the source model's outputs")
        return
    logits = np.asarray(logits, dtype=np.float64)
    for col in names:
        entry = registry.get(col)
        start = time.perf_counter()
        if entry.inputs[0] == "source_probs":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
            row[col] = _guarded(lambda: entry.func(probs, y), name, col, notes, errors)
        else:
            row[col] = _guarded(lambda: entry.func(logits.argmax(axis=1), y), name, col,
                                notes, errors)
        row[f"{col}_seconds"] = time.perf_counter() - start


def _reason(exc: BaseException, full: bool = False) -> str:
    """``Type: message`` on one line; the first sentence only unless ``full``."""
    import re

    text = " ".join(str(exc).split()) or type(exc).__name__
    if not full:
        text = re.split(r"(?<=[.)])\s+(?=[A-Z])", text, maxsplit=1)[0]
        text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}"
