"""Small computations behind the widgets, the magics and the tutorials.

Everything here is plain numerics on arrays (plus one helper that wires
``load_model`` / ``load_dataset`` / ``extract_features`` together), so that the
widgets in ``widgets/`` only connect controls to these functions and draw.

* :func:`make_gaussian_classes` -- a toy labelled point cloud whose class separation
  and within-class spread are explicit, to see how the coding-rate terms react.
* :func:`pca_2d` -- a deterministic 2-D PCA projection for scatter plots.
* :func:`stratified_split` -- train/test indices with every class on both sides.
* :func:`rank_correlations` -- Pearson and Kendall tau between two score vectors.
* :func:`extract_dataset_features` -- model + dataset (names or objects) -> features,
  in chunks so that a caller can show progress.
* :func:`layer_table` -- TransRate (and optionally linear-probe accuracy) per layer.

This module never imports ipywidgets; torch is imported only where it is needed.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

__all__ = ["make_gaussian_classes", "pca_2d", "stratified_split", "rank_correlations",
           "resolve_layers", "extract_dataset_features", "layer_table"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_nonneg(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def make_gaussian_classes(n: int = 300, k: int = 3, dim: int = 2, separation: float = 2.0,
                          spread: float = 1.0, seed: int = 0):
    """Sample ``k`` isotropic Gaussian classes whose means are ``separation`` apart.

    Parameters
    ----------
    n : int
        Total number of points (split as evenly as possible over the classes,
        every class gets at least one point).
    k : int
        Number of classes (>= 1).
    dim : int
        Dimension of the points (>= 1).
    separation : float
        Distance between neighbouring class means.  The means sit on a regular
        ``k``-gon in the first two coordinates (on a line when ``dim == 1``), so every
        pair of neighbouring classes is exactly ``separation`` apart and the geometry
        does not change with ``dim``.
    spread : float
        Standard deviation of every coordinate inside a class.
    seed : int
        Seed of the random generator (same seed, same points).

    Returns
    -------
    Z : numpy.ndarray, shape (n, dim), float64
    y : numpy.ndarray, shape (n,), int64
        Class labels ``0 .. k-1``, grouped by class.
    """
    n = _check_int("n", n, 1)
    k = _check_int("k", k, 1)
    dim = _check_int("dim", dim, 1)
    separation = _check_nonneg("separation", separation)
    spread = _check_nonneg("spread", spread)
    if n < k:
        raise ValueError(f"n ({n}) must be at least the number of classes k ({k})")
    rng = np.random.default_rng(seed)
    means = np.zeros((k, dim))
    if k > 1:
        if dim == 1:
            means[:, 0] = separation * (np.arange(k) - (k - 1) / 2)
        else:
            # Radius of the regular k-gon whose side is `separation` (k == 2: a segment).
            radius = separation / (2 * np.sin(np.pi / k))
            angles = 2 * np.pi * np.arange(k) / k
            means[:, 0] = radius * np.cos(angles)
            means[:, 1] = radius * np.sin(angles)
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    y = np.repeat(np.arange(k, dtype=np.int64), sizes)
    Z = means[y] + spread * rng.standard_normal((n, dim))
    return Z, y


def pca_2d(Z) -> np.ndarray:
    """Project rows of ``Z`` on their first two principal components.

    Parameters
    ----------
    Z : array-like, shape (n, d)
        Numpy array or torch tensor of any float dtype.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float64
        Coordinates on the top two components.  Signs are fixed (the entry of largest
        magnitude of each component is positive) so the picture does not flip between
        runs.  With ``d == 1`` (or rank < 2) the missing coordinates are zero.
    """
    if hasattr(Z, "detach"):
        Z = Z.detach().cpu().numpy()
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"Z must be a non-empty 2-D array (n, d), got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise ValueError("Z contains NaN or infinite values")
    Zc = Z - Z.mean(axis=0)
    out = np.zeros((Z.shape[0], 2))
    # SVD of the centred data: right singular vectors are the principal axes.
    _, s, vt = np.linalg.svd(Zc, full_matrices=False)
    m = min(2, vt.shape[0])
    for j in range(m):
        if s[j] <= 1e-12 * max(s[0], 1e-300):
            break
        v = vt[j]
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        out[:, j] = Zc @ v
    return out


def stratified_split(y, test_size: float = 0.3, seed: int = 0):
    """Split sample indices into train and test, class by class.

    Parameters
    ----------
    y : array-like, shape (n,)
        Labels of any type.
    test_size : float
        Fraction of every class that goes to the test side, in ``(0, 1)``.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray of int64
        Sorted indices.  Every class with at least two samples appears on both sides,
        which a linear probe needs to be meaningful.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size < 2:
        raise ValueError(f"y must be a 1-D array of at least 2 labels, got shape {y.shape}")
    if not 0 < float(test_size) < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        if idx.size == 1:
            train.extend(idx)
            continue
        n_test = int(round(test_size * idx.size))
        n_test = min(max(n_test, 1), idx.size - 1)
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    if not test:
        raise ValueError("every class has a single sample: nothing left to test on")
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def rank_correlations(a, b) -> dict:
    """Pearson r and Kendall tau between two score vectors.

    Parameters
    ----------
    a, b : array-like, shape (m,)
        Paired scores (e.g. TransRate and linear-probe accuracy of ``m`` layers).

    Returns
    -------
    dict
        ``{"pearson": float, "kendall": float, "n": m}``; a coefficient is ``nan`` when
        it is undefined (fewer than two pairs, or a constant vector).
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length, got {a.size} and {b.size}")
    out = {"pearson": float("nan"), "kendall": float("nan"), "n": int(a.size)}
    # scipy warns (and returns nan) on constant input; decide it here instead.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return out
    out["pearson"] = float(stats.pearsonr(a, b)[0])
    out["kendall"] = float(stats.kendalltau(a, b)[0])
    return out


def resolve_layers(model, layers) -> list:
    """Turn a layer request into a list of layer names.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`transfer_nb.load_model` (or any module).
    layers : None, "all", "default", str or iterable of str
        ``None``, ``"all"`` or ``"default"``: the model's default layers (every block
        output and the penultimate features, :func:`transfer_nb.default_layers`), as
        ``extract_features(layers="all")`` reads it; a comma-separated string or a list:
        those names (validated by :func:`transfer_nb.extract_features`, whose message
        suggests close names).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        The request names no layer.
    """
    from transfer_nb.features import default_layers

    if layers is None or (isinstance(layers, str) and layers.strip() in ("all", "default")):
        names = list(default_layers(model))
    else:
        if isinstance(layers, str):
            layers = layers.split(",")
        names = [str(name).strip() for name in layers if str(name).strip()]
    if not names:
        raise ValueError("no layers selected: choose at least one layer")
    return names


def extract_dataset_features(model, data, layers=None, n: int | None = None,
                             image_size: int | None = None, split: str = "train",
                             seed: int = 0, batch_size: int = 64, n_chunks: int = 1,
                             on_progress: Callable[[int, int], None] | None = None,
                             progress: bool = False):
    """Load (if needed) a model and a dataset and extract per-layer features.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name for :func:`transfer_nb.load_model`, or a module.
    data : str or torch.utils.data.Dataset
        A name for :func:`transfer_nb.load_dataset` (loaded with the model's input
        normalisation, ``n`` samples at ``image_size``), or a dataset of
        ``(image, label)`` pairs that is used as is.
    layers : see :func:`resolve_layers`
    n, image_size, split, seed : passed to :func:`transfer_nb.load_dataset`.
    batch_size : int
        Forward-pass batch size.
    n_chunks : int
        The data is cut into at most this many consecutive chunks of whole batches,
        each extracted in one pass over all layers, and ``on_progress(done, total)`` is
        called after each one.  This is how a caller without a terminal (a widget)
        shows progress.
    on_progress : callable, optional
    progress : bool
        Show ``extract_features``' own tqdm bar.

    Returns
    -------
    features : dict[str, numpy.ndarray]
        Layer name -> ``(len(data), d)`` features, in the order of ``layers``.
    labels : numpy.ndarray, shape (len(data),)
    dataset : the dataset used
    model : the model used
    """
    import transfer_nb as tnb

    if isinstance(model, str):
        model = tnb.load_model(model)
    names = resolve_layers(model, layers)
    if isinstance(data, str):
        normalize = getattr(model, "transfer_nb_normalize", None)
        data = tnb.load_dataset(data, split=split, n=n, image_size=image_size, seed=seed,
                                normalize=normalize)
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
    parts: dict[str, list] = {name: [] for name in names}
    if on_progress is not None:
        on_progress(0, total)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        chunk = data if n_chunks == 1 else _subset(data, range(start, stop))
        feats = tnb.extract_features(model, chunk, layers=names, batch_size=batch_size,
                                     progress=progress)
        for name in names:
            parts[name].append(np.asarray(feats[name]))
        if on_progress is not None:
            on_progress(int(stop), total)
    features = {name: np.concatenate(parts[name], axis=0) for name in names}
    return features, labels, data, model


def _subset(data, indices):
    from torch.utils.data import Subset
    return Subset(data, list(indices))


def _dataset_labels(data) -> np.ndarray:
    """Labels of a dataset without decoding images when it exposes ``.targets``."""
    targets = getattr(data, "targets", None)
    if targets is not None and len(targets) == len(data):
        return np.asarray(targets)
    tensors = getattr(data, "tensors", None)  # TensorDataset
    if tensors is not None and len(tensors) >= 2:
        return np.asarray(tensors[1].cpu().numpy())
    return np.asarray([int(data[i][1]) for i in range(len(data))])


def layer_table(features: Mapping, labels, eps: float = 1e-4, probe: bool = False,
                test_size: float | None = None, seed: int = 0,
                on_progress: Callable[[int, int], None] | None = None):
    """Per-layer TransRate, and optionally linear-probe test accuracy.

    Parameters
    ----------
    features : mapping layer name -> (n, d) array
    labels : array-like, shape (n,)
    eps : float
        Distortion of the coding rate.
    probe : bool
        Also measure the ground truth: :func:`transfer_nb.transfer.linear_probe` trained
        on the training part and scored on the test part, for every layer.
    test_size : float, optional
        When given (and always with ``probe``, default 0.3), the samples are split with
        :func:`stratified_split` and TransRate is computed on the training part only --
        what an estimator is allowed to see -- so that the TransRate column does not
        change when the probe column is added.  ``None``: TransRate on all samples.
    seed : int
        Seed of the split and of the probe.
    on_progress : callable, optional
        ``on_progress(done, total)`` after each probed layer.

    Returns
    -------
    pandas.DataFrame
        Index: layer names (in the mapping's order); columns ``dim``, ``transrate`` and,
        with ``probe``, ``probe_accuracy``.
    """
    import pandas as pd

    from transfer_nb.coding_rate import transrate_per_layer

    if not features:
        raise ValueError("features is empty: extract at least one layer")
    labels = np.asarray(labels)
    names = list(features)
    arrays = {}
    for name in names:
        Z = features[name]
        arrays[name] = Z.detach().cpu().numpy() if hasattr(Z, "detach") else np.asarray(Z)
        if len(arrays[name]) != len(labels):
            raise ValueError(f"layer {name!r} has {len(arrays[name])} rows but there are "
                             f"{len(labels)} labels")
    if probe and test_size is None:
        test_size = 0.3
    if test_size is not None:
        train, test = stratified_split(labels, test_size=test_size, seed=seed)
        rates = transrate_per_layer({name: arrays[name][train] for name in names},
                                    labels[train], eps=eps)
    else:
        rates = transrate_per_layer(arrays, labels, eps=eps)
    table = pd.DataFrame({"dim": [int(arrays[name].shape[1]) for name in names],
                          "transrate": [float(rates[name]) for name in names]},
                         index=pd.Index(names, name="layer"))
    if probe:
        from transfer_nb.transfer import linear_probe

        accuracy = []
        for i, name in enumerate(names):
            Z = arrays[name]
            accuracy.append(float(linear_probe(Z[train], labels[train], Z[test], labels[test],
                                               seed=seed)))
            if on_progress is not None:
                on_progress(i + 1, len(names))
        table["probe_accuracy"] = accuracy
    return table
