"""Head2Toe's features and its estimator (the method and its defaults are described in
:mod:`transfer_nb.head2toe`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import NotFittedError

from transfer_nb._validation import as_features, check_fraction, check_scalar

__all__ = [
    "DEFAULT_TARGET",
    "GROUP_LASSOS",
    "KEEP_FRACTIONS",
    "Head2Toe",
    "concat_features",
    "feature_scores",
    "group_lasso_penalty",
    "head2toe_features",
    "select_top",
]

#: kept fractions of the paper's sweeps (0.01 .. 0.2)
KEEP_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
#: group-lasso coefficients cross-validated by default (1e-4 and a decade either side)
GROUP_LASSOS = (1e-5, 1e-4, 1e-3)
#: features per layer aimed at by the pooling rule (the paper's 8192)
DEFAULT_TARGET = 8192


# ----------------------------------------------------------------------- features
def head2toe_features(model, data, layers="all", target: int = DEFAULT_TARGET,
                      batch_size: int = 64, device=None, progress: bool = False,
                      cache=None) -> dict:
    """Head2Toe-pooled features of every layer, from one forward pass.

    A thin call of :func:`transfer_nb.features.extract_features` with
    ``pool="head2toe"`` (see :func:`transfer_nb.features.pool_features` for the rule).

    Parameters
    ----------
    model : torch.nn.Module
        Any model ``extract_features`` supports; ``data`` must already be normalised
        the way it expects.
    data : Dataset, DataLoader or tensor of images
    layers : "all", None, str or list of str
        ``"all"`` / ``None``: the model's feature layers (every block and the
        penultimate representation).
    target : int
        Features per layer the pooling aims at (8192 in the paper).
    batch_size, device, progress, cache :
        Passed to ``extract_features``.

    Returns
    -------
    dict of str -> numpy.ndarray
        Layer name -> ``(n, d_layer)`` float32, in network order.
    """
    from transfer_nb.features import extract_features

    target = check_scalar(target, "target", int, min_val=1)
    return extract_features(model, data, layers=layers, pool="head2toe", batch_size=batch_size,
                            device=device, progress=progress, cache=cache,
                            head2toe_target=target)


def concat_features(features, layers: Sequence[str] | None = None):
    """L2-normalise each layer's vector per example and concatenate the layers.

    Parameters
    ----------
    features : dict of str -> array-like (n, d) or one array-like (n, d)
        One array counts as a single layer named ``"features"``.
    layers : list of str, optional
        Layers to use, in this order (default: all, in the dict's order).

    Returns
    -------
    X : numpy.ndarray
        ``(n, D)`` float32, ``D`` the sum of the layers' widths.
    layer_index : numpy.ndarray
        ``(D,)`` int: which layer (position in ``names``) each column comes from.
    names : list of str
        The layer names.

    Raises
    ------
    ValueError
        Empty input, unknown layer names, or layers with different row counts.
    """
    if isinstance(features, Mapping):
        if not features:
            raise ValueError("features is an empty dict; expected layer name -> (n, d) array")
        names = list(features) if layers is None else list(layers)
        unknown = [n for n in names if n not in features]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; the features have {list(features)}")
        arrays = [as_features(features[n], f"features[{n!r}]") for n in names]
    else:
        if layers is not None:
            raise ValueError("layers= needs features as a dict layer name -> array")
        names = ["features"]
        arrays = [as_features(features, "features")]
    if not names:
        raise ValueError("layers is empty; expected at least one layer name")
    rows = {n: a.shape[0] for n, a in zip(names, arrays)}
    if len(set(rows.values())) > 1:
        raise ValueError(f"layers have different numbers of rows {rows}; every layer needs "
                         "one row per example")
    parts = []
    for a in arrays:
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        parts.append((a / np.maximum(norm, 1e-12)).astype(np.float32))
    X = np.concatenate(parts, axis=1)
    layer_index = np.concatenate([np.full(a.shape[1], i, dtype=np.int64)
                                  for i, a in enumerate(arrays)])
    return X, layer_index, names


def group_lasso_penalty(coef: float):
    """``regularizer`` for :func:`transfer_nb.training.fit`: one group per input feature.

    Returns ``f(model) = coef * sum_i ||W[:, i]||_2`` for the ``nn.Linear`` ``model``
    (torch stores ``W`` as ``(K, D)``, so the group of input feature ``i`` is column
    ``i``: the paper's row ``W_i,:`` of its ``D x K`` matrix).
    """
    coef = check_scalar(coef, "group_lasso", float, min_val=0)

    def penalty(model):
        return coef * model.weight.norm(dim=0).sum()

    return penalty


def feature_scores(weight) -> np.ndarray:
    """Each input feature's score from a trained head: ``sum_j W_ij^2`` (length ``D``).

    ``weight`` is laid out as torch's ``nn.Linear`` stores it, ``(K, D)`` (classes x
    features), so the paper's row ``W_i,:`` of its ``D x K`` matrix is column ``i``
    here: the score is the squared L2 norm of the group the lasso switches off.
    """
    W = np.asarray(weight, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"weight must be 2-D (classes, features); got shape {W.shape}")
    return (W ** 2).sum(axis=0)


def select_top(scores, keep_fraction: float) -> np.ndarray:
    """Indices (ascending) of the ``max(1, round(keep_fraction * D))`` highest scores.

    ``round`` is Python's (half to even); ties keep the earlier feature (a stable sort).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep_fraction = check_fraction(keep_fraction, "keep_fraction")
    k = max(1, int(round(keep_fraction * scores.size)))
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:k])


# --------------------------------------------------------------------- estimator
def check_labels(y, name: str) -> np.ndarray:
    """``y`` as a 1-D array of class labels (a clear error for no labels or real numbers)."""
    from sklearn.utils.multiclass import type_of_target

    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 1 and y.size and type_of_target(y) == "continuous":
        raise ValueError(f"Unknown label type: continuous. {name} is a classifier: y must "
                         "hold class labels, not real numbers")
    return y



class Head2Toe(ClassifierMixin, TransformerMixin, BaseEstimator):
    """Group-lasso feature selection over all layers, then a linear head (Evci et al.).

    Parameters
    ----------
    keep_fraction : float
        Fraction of the concatenated features kept, in (0, 1] (paper default 0.1).
        ``1.0`` keeps every feature and skips the selection step.
    group_lasso : float
        Coefficient of ``sum_i ||W_i,:||_2`` in the selection head (>= 0; ``1e-4``).
    steps : int
        Adam steps of each head (selection head and final head), cosine decay.
    lr : float
        Adam learning rate.
    batch_size : int
        Head batch size (128; small targets are trained full-batch).
    layers : list of str, optional
        Use only these layers of a feature dict (default: all).
    seed : int
        Seeds head initialisation and shuffling.
    device : None, str or torch.device
        Where the heads train (:func:`transfer_nb.training.resolve_device`; default CPU).

    A scikit-learn estimator: the constructor stores its parameters as given (so
    ``sklearn.base.clone`` and ``get_params`` round-trip them); :meth:`fit` validates
    them into locals and never rewrites them.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The training labels, sorted.
    layer_names_ : list of str
    layer_index_ : numpy.ndarray
        ``(D,)`` layer (position in ``layer_names_``) of every concatenated feature.
    scores_ : numpy.ndarray
        ``(D,)`` ``sum_j W_ij^2`` of the group-lasso head (all ones when nothing was
        selected, i.e. ``keep_fraction=1``).
    selected_ : numpy.ndarray
        Sorted indices of the kept features in the concatenation.
    layer_counts_ : dict of str -> int
        Kept features per layer (every layer listed, zeros included).
    head_ : torch.nn.Linear
        The final unregularised head on the kept features.
    fit_steps_ : int
        Optimisation steps taken in total (selection + final head).
    """

    def __init__(self, keep_fraction: float = 0.1, group_lasso: float = 1e-4, *,
                 steps: int = 300, lr: float = 0.01, batch_size: int = 128,
                 layers: Sequence[str] | None = None, seed: int = 0, device="cpu"):
        self.keep_fraction = keep_fraction
        self.group_lasso = group_lasso
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.layers = layers
        self.seed = seed
        self.device = device

    # -- helpers
    def _validated(self) -> dict:
        """The parameters, checked (the attributes themselves are left as given)."""
        return {"keep_fraction": check_fraction(self.keep_fraction, "keep_fraction"),
                "group_lasso": check_scalar(self.group_lasso, "group_lasso", float, min_val=0),
                "steps": check_scalar(self.steps, "steps", int, min_val=1),
                "lr": check_scalar(self.lr, "lr", float, min_val=0,
                                   include_boundaries="neither"),
                "batch_size": check_scalar(self.batch_size, "batch_size", int, min_val=1),
                "seed": check_scalar(self.seed, "seed", int, min_val=0)}

    def _train_head(self, X: np.ndarray, y_idx: np.ndarray, p: dict, regularizer=None):
        import torch
        from torch import nn

        from transfer_nb import training

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p["seed"])
            head = nn.Linear(X.shape[1], len(self.classes_))
        res = training.fit(head, (X, y_idx), steps=p["steps"], lr=p["lr"],
                           batch_size=p["batch_size"], optimizer="adam", schedule="cosine",
                           regularizer=regularizer, seed=p["seed"], device=self.device)
        return head.cpu(), int(res["steps"])

    def _prepare(self, features):
        """Normalised concatenation; after fitting, of the fitted layers in their order."""
        layers = self.layers
        fitted = getattr(self, "layer_names_", None)
        if fitted is not None and isinstance(features, Mapping):
            layers = fitted
        X, layer_index, names = concat_features(features, layers)
        if fitted is not None and names != fitted:
            raise ValueError(f"features have layers {names} but the model was fitted on "
                             f"{fitted}")
        if fitted is not None and X.shape[1] != len(self.layer_index_):
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {len(self.layer_index_)} features as input (the "
                             "concatenated layers it was fitted on)")
        return X, layer_index, names

    # -- public API
    def fit(self, features, y, scores=None):
        """Select features with the group-lasso head, then train the final head.

        Parameters
        ----------
        features : dict of str -> array-like (n, d) or array-like (n, D)
            Head2Toe features (e.g. :func:`head2toe_features`); each layer is
            L2-normalised per example and the layers concatenated.
        y : array-like (n,)
            Labels of any values, at least 2 classes.
        scores : array-like (D,), optional
            Precomputed feature scores (e.g. another fit's ``scores_`` on the same
            data): the group-lasso head is then skipped.  Lets a sweep over
            ``keep_fraction`` share one selection.

        Returns
        -------
        self
        """
        p = self._validated()
        for attr in ("layer_names_", "layer_index_"):
            self.__dict__.pop(attr, None)
        X, layer_index, names = self._prepare(features)
        return self._fit_matrix(X, layer_index, names, y, scores, p)

    def _fit_matrix(self, X, layer_index, names, y, scores=None, p=None):
        """:meth:`fit` on the already normalised concatenation ``X``."""
        p = self._validated() if p is None else p
        y = check_labels(y, type(self).__name__)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row: features have "
                             f"{X.shape[0]} rows, y has shape {tuple(y.shape)}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must contain at least 2 classes, got {len(self.classes_)}")
        self.layer_names_, self.layer_index_ = list(names), layer_index
        D = X.shape[1]
        k = max(1, int(round(p["keep_fraction"] * D)))   # select_top's rule
        steps = 0
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            if scores.shape != (D,):
                raise ValueError(f"scores has {scores.size} entries but the features have "
                                 f"{D} columns")
        elif k >= D:
            scores = np.ones(D)
        else:
            head, steps = self._train_head(X, y_idx, p, group_lasso_penalty(p["group_lasso"]))
            scores = feature_scores(head.weight.detach().numpy())  # (K, D)
        self.scores_ = scores
        # stable top-k: ties (e.g. all ones) keep the earlier feature
        self.selected_ = select_top(scores, p["keep_fraction"])
        counts = np.bincount(layer_index[self.selected_], minlength=len(names))
        self.layer_counts_ = {n: int(c) for n, c in zip(names, counts)}
        self.head_, head_steps = self._train_head(X[:, self.selected_], y_idx, p)
        self.fit_steps_ = steps + head_steps
        self.n_features_in_ = D
        return self

    def _predict_matrix(self, X) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.head_(torch.as_tensor(X[:, self.selected_])).numpy()
        return self.classes_[logits.argmax(axis=1)]

    def _check_fitted(self):
        if not hasattr(self, "head_"):
            raise NotFittedError("this Head2Toe is not fitted yet; call fit(features, y) first")

    def decision_function(self, features) -> np.ndarray:
        """``(n, K)`` logits of the final head on the kept features."""
        import torch

        self._check_fitted()
        X, _, _ = self._prepare(features)
        with torch.no_grad():
            return self.head_(torch.as_tensor(X[:, self.selected_])).numpy()

    def predict(self, features) -> np.ndarray:
        """Predicted labels (values of ``classes_``)."""
        self._check_fitted()
        return self.classes_[self.decision_function(features).argmax(axis=1)]

    def score(self, features, y) -> float:
        """Accuracy on ``(features, y)``; labels unseen in training count as errors."""
        y = np.asarray(y)
        pred = self.predict(features)
        if y.ndim != 1 or len(y) != len(pred):
            raise ValueError(f"y must be 1-D with one label per row: features have "
                             f"{len(pred)} rows, y has shape {tuple(y.shape)}")
        return float(np.mean(pred == y))

    def transform(self, features) -> np.ndarray:
        """The kept columns of the normalised concatenation, ``(n, k)``."""
        self._check_fitted()
        X, _, _ = self._prepare(features)
        return X[:, self.selected_]


