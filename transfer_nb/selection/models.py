"""score_models: rank a researcher's models on their data (one row per model).

The model-level sibling of :func:`transfer_nb.selection.layers.score_layers`; both use the
same split and estimator functions.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from transfer_nb.selection.layers import (_dataset_labels, _estimator_functions, _is_folder,
                                          _load_target, _normalized_for, _split, _subset)

__all__ = ["score_models", "MODEL_ESTIMATORS", "MODEL_TRUTHS", "BACKENDS"]


# ------------------------------------------------------------------ model selection
#: what :func:`score_models` computes by default
MODEL_ESTIMATORS = ("transrate", "logme", "leep", "nce", "hscore")
#: ground-truth protocols of :func:`score_models`
MODEL_TRUTHS = ("linear_probe", "fine_tune")
#: job engines of :func:`score_models` (``None``: joblib's default, loky processes)
BACKENDS = (None, "loky", "threading", "dask")
# estimator inputs that come from the source model's own outputs (its classifier)
_SOURCE_INPUTS = ("source_probs", "source_labels")


def score_models(models, data, estimators=MODEL_ESTIMATORS, layer: str = "penultimate",
                 ground_truth: str | None = None, test_data=None, device=None,
                 n_jobs: int = 1, backend: str | None = None, *, scheduler=None,
                 n: int | None = None, n_test: int | None = None, image_size=None,
                 seed: int = 0, test_size: float = 0.3, eps: float = 1e-4,
                 batch_size: int = 64, cache=True, finetune: Mapping | None = None,
                 progress: bool = False,
                 on_progress: Callable[[int, int], None] | None = None):
    """Score several source models on one target: one row per model.

    Each model is one independent job: load it (a name), extract ``layer`` and, when it
    has a classifier, its own output in the same forward pass
    (:func:`transfer_nb.features.extract_features`, cached), run every estimator on
    them, and measure the ground truth when asked.  The held-out protocol is
    :func:`score_layers`' (module docstring): estimators see the training part only.

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
        on the held-out features (:func:`transfer_nb.transfer.linear_probe`);
        ``"fine_tune"``: new head, every layer fine-tuned
        (:func:`transfer_nb.transfer.fine_tune`, options from ``finetune``).
    test_data : str, path-like or Dataset, optional
        Held-out set of the ground truth (a folder is used whole).  Default: the
        ``"test"`` split of a folder or named set; a stratified split (``test_size``,
        ``seed``) of a dataset object.
    device : None, str or torch.device
        Where each job runs (:func:`transfer_nb.training.resolve_device`; ``None``: CUDA
        when available).
    n_jobs : int
        Jobs at a time: 1 runs them here one by one; more use joblib (``backend``
        ``None``/``"loky"``: processes, ``"threading"``) or, with ``backend="dask"``,
        the workers of a local cluster.
    backend : None, "loky", "threading" or "dask"
        ``"dask"``: each job is a task on a ``dask.distributed`` cluster: ``scheduler``,
        or a ``LocalCluster`` of ``n_jobs`` single-threaded worker processes.
    scheduler : str, distributed.Client or cluster, optional
        Scheduler address (``"tcp://host:8786"``) or a client / cluster to use.
    n, n_test, image_size, seed : passed to :func:`transfer_nb.data.load_dataset` for a
        folder or name (``image_size`` default: the set's own, 224 for folders);
        ``seed`` also seeds the split, the probes and the fine-tunings.
    test_size : float
        Held-out share of a dataset object without ``test_data``.
    eps : float
        TransRate's distortion.
    batch_size : int
        Forward-pass batch size.
    cache : bool or path
        :func:`transfer_nb.features.extract_features`' ``cache``.
    finetune : mapping, optional
        Extra :func:`transfer_nb.transfer.fine_tune` arguments (``epochs``, ``lr``, ...).
    progress : bool
        A tqdm bar over the models.
    on_progress : callable, optional
        ``on_progress(done, total)`` as models finish.

    Returns
    -------
    pandas.DataFrame
        Index ``model`` (in the given order); columns ``layer`` (resolved name),
        ``width`` (feature dimension), ``n_train``, one per estimator, ``accuracy`` with
        ``ground_truth``, then the wall-clock seconds ``extract_seconds``,
        ``<estimator>_seconds`` (and ``truth_seconds``), and ``note``.
        ``attrs["ground_truth"]`` names the protocol.
    """
    import pandas as pd

    from transfer_nb._validation import check_scalar

    named = _named_models(models)
    feature_fns, source_names = _model_estimators(estimators, eps)
    if ground_truth not in (None, *MODEL_TRUTHS):
        raise ValueError(f"ground_truth must be None, 'linear_probe' or 'fine_tune', "
                         f"got {ground_truth!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    n_jobs = check_scalar(n_jobs, "n_jobs", int, min_val=1)
    if not isinstance(layer, str) or not layer:
        raise ValueError(f"layer must be one layer name, got {layer!r}")
    if device is not None:
        from transfer_nb import training
        training.resolve_device(device)  # an unavailable device fails before any work

    train_ds, test_ds = _target_parts(data, test_data, ground_truth, n=n, n_test=n_test,
                                      image_size=image_size, seed=seed, test_size=test_size)
    jobs = [dict(name=name, model=model, train=train_ds, test=test_ds, layer=layer,
                 feature_fns=feature_fns, source_names=source_names,
                 ground_truth=ground_truth, device=device, seed=seed,
                 batch_size=batch_size, cache=cache, finetune=dict(finetune or {}))
            for name, model in named]
    rows = _run_jobs(jobs, n_jobs, backend, scheduler, progress, on_progress)
    table = pd.DataFrame(rows).set_index("model")
    scores = list(feature_fns) + source_names
    first = ["layer", "width", "n_train"] + [s for s in _ordered(estimators, scores)]
    if ground_truth is not None:
        first.append("accuracy")
    rest = [c for c in table.columns if c not in first and c != "note"]
    table = table[first + rest + ["note"]]
    table.attrs["ground_truth"] = ground_truth
    return table


def _ordered(estimators, scores):
    names = list(estimators) if not isinstance(estimators, str) else [estimators]
    return [str(e) for e in names if str(e) in scores]


def _named_models(models) -> list:
    """``[(row name, str or module)]``; unknown names fail here, before any work."""
    import torch.nn as nn

    from transfer_nb.models import zoo

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
    from transfer_nb.estimators import registry

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
                             f"model's outputs, e.g. {list(MODEL_ESTIMATORS)}")
    if not features and not source:
        raise ValueError("estimators is empty: pass at least one estimator")
    return (_estimator_functions(features, eps) if features else {}), source


def _target_parts(data, test_data, ground_truth, *, n, n_test, image_size, seed, test_size):
    """``(training part, held-out part or None)`` with :func:`score_layers`' protocol."""
    import os

    by_path = isinstance(data, (str, os.PathLike))
    if test_data is not None:
        # a separate held-out set: a folder is used whole, a named set its train split
        train = _load_target(data, "all" if _is_folder(data) else "train", n, image_size, seed)
        if ground_truth is None:
            test = None
            if _is_folder(test_data) or isinstance(test_data, os.PathLike):
                from transfer_nb.data.folder import check_root
                check_root(test_data)  # a wrong path fails even when unused
        else:
            test = _load_target(test_data, "all" if _is_folder(test_data) else "test",
                                n_test if n_test is not None else n, image_size, seed)
    elif by_path:  # a folder or named set has its own test split
        train = _load_target(data, "train", n, image_size, seed)
        test = _load_target(data, "test", n_test if n_test is not None else n, image_size,
                            seed) if ground_truth is not None else None
    else:
        whole = _load_target(data, "train", n, image_size, seed)
        tr, held = _split(_dataset_labels(whole), test_size, seed)
        train = _subset(whole, tr)
        test = _subset(whole, held) if ground_truth is not None else None
    if len(train) == 0:
        raise ValueError("the dataset is empty")
    return train, test


def _score_model_job(name, model, train, test, layer, feature_fns, source_names,
                     ground_truth, device, seed, batch_size, cache, finetune) -> dict:
    """One (model, target) job of :func:`score_models`: a row as a dict."""
    import time

    from transfer_nb import training
    from transfer_nb.features import extract_features
    from transfer_nb.models.layers import find_classifier, resolve_layers

    device = training.resolve_device(device)
    if isinstance(model, str):
        from transfer_nb.models import load_model
        model = load_model(model)
    resolved = resolve_layers(model, layer)
    if len(resolved) != 1:
        raise ValueError(f"layer must name one layer, got {layer!r} -> {resolved}")
    layer = resolved[0]
    has_head = find_classifier(model) is not None
    want_outputs = bool(source_names) and has_head
    layers = [layer] + (["output"] if want_outputs and layer != "output" else [])
    train = _normalized_for(train, model)
    row = {"model": name, "layer": layer, "note": ""}

    start = time.perf_counter()
    feats = extract_features(model, train, layers=layers, batch_size=batch_size,
                             device=device, cache=cache, progress=False)
    row["extract_seconds"] = time.perf_counter() - start
    Z, y = feats[layer], _dataset_labels(train)
    row["width"], row["n_train"] = int(Z.shape[1]), int(len(y))
    for col, fn in feature_fns.items():
        start = time.perf_counter()
        try:
            row[col] = float(fn(Z, y))
        except ValueError as exc:
            raise ValueError(f"model {name!r}: {col}: {exc}") from None
        row[f"{col}_seconds"] = time.perf_counter() - start
    if source_names:
        _source_scores(row, source_names, feats.get("output") if want_outputs else None, y)
    if ground_truth is not None:
        start = time.perf_counter()
        test = _normalized_for(test, model)
        if ground_truth == "linear_probe":
            from transfer_nb.transfer import linear_probe
            Zt = extract_features(model, test, layers=[layer], batch_size=batch_size,
                                  device=device, cache=cache, progress=False)[layer]
            row["accuracy"] = float(linear_probe(Z, y, Zt, _dataset_labels(test), seed=seed))
        else:
            from transfer_nb.transfer import fine_tune
            res = fine_tune(model, train, test, seed=seed, device=device, progress=False,
                            **finetune)
            row["accuracy"] = float(res["accuracy"])
        row["truth_seconds"] = time.perf_counter() - start
    return row


def _source_scores(row, names, logits, y):
    """LEEP / NCE from the source model's outputs (NaN and a note without a classifier)."""
    import time

    from transfer_nb.estimators import registry

    if logits is None:
        for col in names:
            row[col], row[f"{col}_seconds"] = float("nan"), float("nan")
        row["note"] = f"no classifier: {', '.join(names)} need the source model's outputs"
        return
    logits = np.asarray(logits, dtype=np.float64)
    for col in names:
        entry = registry.get(col)
        start = time.perf_counter()
        if entry.inputs[0] == "source_probs":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            row[col] = float(entry.func(shifted / shifted.sum(axis=1, keepdims=True), y))
        else:
            row[col] = float(entry.func(logits.argmax(axis=1), y))
        row[f"{col}_seconds"] = time.perf_counter() - start


def _run_jobs(jobs, n_jobs, backend, scheduler, progress, on_progress) -> list:
    """Run :func:`_score_model_job` on every job (here, joblib or Dask); rows in job order."""
    from tqdm.auto import tqdm

    total = len(jobs)
    bar = tqdm(total=total, desc="score_models", unit="model", disable=not progress)

    def done(k):
        bar.update(1)
        if on_progress is not None:
            on_progress(k, total)

    if on_progress is not None:
        on_progress(0, total)
    try:
        if backend == "dask":
            return _run_dask(jobs, n_jobs, scheduler, done)
        if n_jobs == 1 or total == 1:
            rows = []
            for job in jobs:
                bar.set_postfix_str(str(job["name"]))
                rows.append(_score_model_job(**job))
                done(len(rows))
            return rows
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=min(n_jobs, total), backend=backend or "loky",
                            return_as="generator")
        rows = []
        for row in parallel(delayed(_score_model_job)(**job) for job in jobs):
            rows.append(row)
            done(len(rows))
        return rows
    finally:
        bar.close()


def _run_dask(jobs, n_jobs, scheduler, done) -> list:
    """Each job a task on a dask.distributed cluster: ``scheduler`` (address, client or
    cluster) or a local cluster of ``n_jobs`` single-threaded worker processes."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a dependency of the dask extra
        raise ImportError("backend='dask' needs dask.distributed: "
                          "pip install 'transfer-nb[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    elif isinstance(scheduler, Client):
        client = None
    else:
        client = Client(scheduler)  # an address or a cluster object
    use = client if client is not None else scheduler
    try:
        futures = [use.submit(_score_model_job, pure=False, **job) for job in jobs]
        for k, _ in enumerate(as_completed(futures), start=1):
            done(k)
        return use.gather(futures)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
