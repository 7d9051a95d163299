"""Head2Toe (Evci et al., ICML 2022): a linear head on features selected from every layer.

The method, as the paper and its code describe it:

1. **Features from head to toe.**  One forward pass (:func:`head2toe_features`, i.e.
   :func:`transfer_nb.features.extract_features` with ``pool="head2toe"``): a layer whose
   feature map has ``C >= target`` channels is globally averaged, otherwise it is
   average-pooled to about ``target / C`` positions and flattened (``target`` = 8192 in
   the paper), so that every layer contributes a comparable number of features.
2. **Per-layer L2 normalisation, then concatenation** (:func:`concat_features`): each
   layer's vector is divided by its Euclidean norm per example, so that no layer
   dominates by scale.
3. **Selection by group lasso**: a linear head ``W`` (``D x K``) is trained with the
   cross-entropy plus ``group_lasso * sum_i ||W_i,:||_2`` -- one group per *input
   feature*, so whole features are switched off -- and each feature is scored by
   ``sum_j W_ij^2``.
4. **Keep the top ``keep_fraction``** of the features and retrain an *unregularised*
   linear head on them (Adam, cosine decay, a few hundred steps).
5. Hyper-parameters (``keep_fraction``, ``group_lasso``) are chosen by cross-validation
   on the training set (:class:`Head2ToeCV`).

Every head is trained by :func:`transfer_nb.training.fit` (the project's only training
loop); the group lasso enters through its ``regularizer=`` hook.

Defaults and their sources
--------------------------
``keep_fraction = 0.1``
    the paper's default fraction (its sweeps use 0.01 .. 0.2, :data:`KEEP_FRACTIONS`).
``group_lasso = 1e-4``
    the order of the coefficient the paper's code uses (DESIGN.md "Head2Toe");
    :data:`GROUP_LASSOS` spans a decade either side for cross-validation.
``steps = 300``, ``optimizer = Adam``, cosine decay
    "a few hundred steps" of Adam with cosine decay, as in the paper's head training.
``lr = 0.01``
    Adam's usual rate for a linear head (the paper tunes it in {0.1, 0.01}; features
    are L2-normalised per layer, so the scale does not change between models).
``batch_size = 128``
    the paper's head batch size; small targets are thus trained full-batch.
``n_folds = 3``
    three stratified folds: the data-scarce targets of the notebook have few images
    per class, and each class needs an example in every fold.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from transfer_nb._validation import as_features, check_fraction, check_scalar

__all__ = ["Head2Toe", "Head2ToeCV", "head2toe_features", "concat_features", "fraction_sweep",
           "group_lasso_penalty", "KEEP_FRACTIONS", "GROUP_LASSOS", "DEFAULT_TARGET"]

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


# --------------------------------------------------------------------- estimator
class Head2Toe:
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
    def _check_params(self) -> None:
        self.keep_fraction = check_fraction(self.keep_fraction, "keep_fraction")
        self.group_lasso = check_scalar(self.group_lasso, "group_lasso", float, min_val=0)
        self.steps = check_scalar(self.steps, "steps", int, min_val=1)
        self.lr = check_scalar(self.lr, "lr", float, min_val=0, include_boundaries="neither")
        self.batch_size = check_scalar(self.batch_size, "batch_size", int, min_val=1)
        self.seed = check_scalar(self.seed, "seed", int, min_val=0)

    def _train_head(self, X: np.ndarray, y_idx: np.ndarray, regularizer=None):
        import torch
        from torch import nn
        from transfer_nb import training

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            head = nn.Linear(X.shape[1], len(self.classes_))
        res = training.fit(head, (X, y_idx), steps=self.steps, lr=self.lr,
                           batch_size=self.batch_size, optimizer="adam", schedule="cosine",
                           regularizer=regularizer, seed=self.seed, device=self.device)
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
            raise ValueError(f"features have {X.shape[1]} columns in all but the model was "
                             f"fitted on {len(self.layer_index_)}")
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
        self._check_params()
        for attr in ("layer_names_", "layer_index_"):
            self.__dict__.pop(attr, None)
        X, layer_index, names = self._prepare(features)
        return self._fit_matrix(X, layer_index, names, y, scores)

    def _fit_matrix(self, X, layer_index, names, y, scores=None):
        """:meth:`fit` on the already normalised concatenation ``X``."""
        self._check_params()
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row: features have "
                             f"{X.shape[0]} rows, y has shape {tuple(y.shape)}")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must contain at least 2 classes, got {len(self.classes_)}")
        self.layer_names_, self.layer_index_ = list(names), layer_index
        D = X.shape[1]
        k = max(1, int(round(self.keep_fraction * D)))
        steps = 0
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            if scores.shape != (D,):
                raise ValueError(f"scores has {scores.size} entries but the features have "
                                 f"{D} columns")
        elif k >= D:
            scores = np.ones(D)
        else:
            head, steps = self._train_head(X, y_idx, group_lasso_penalty(self.group_lasso))
            W = head.weight.detach().numpy().astype(np.float64)  # (K, D)
            scores = (W ** 2).sum(axis=0)
        self.scores_ = scores
        # stable top-k: ties (e.g. all ones) keep the earlier feature
        order = np.argsort(-scores, kind="stable")
        self.selected_ = np.sort(order[:k])
        counts = np.bincount(layer_index[self.selected_], minlength=len(names))
        self.layer_counts_ = {n: int(c) for n, c in zip(names, counts)}
        self.head_, head_steps = self._train_head(X[:, self.selected_], y_idx)
        self.fit_steps_ = steps + head_steps
        return self

    def _predict_matrix(self, X) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.head_(torch.as_tensor(X[:, self.selected_])).numpy()
        return self.classes_[logits.argmax(axis=1)]

    def _check_fitted(self):
        if not hasattr(self, "head_"):
            raise ValueError("this Head2Toe is not fitted yet; call fit(features, y) first")

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


# ------------------------------------------------------------------------ sweeps
def fraction_sweep(train_features, y_train, test_features, y_test, fractions, *,
                   group_lasso: float = 1e-4, steps: int = 300, lr: float = 0.01,
                   seed: int = 0, layers=None) -> list[dict]:
    """Head2Toe at several kept fractions sharing one group-lasso selection.

    The group-lasso head is trained once (at the smallest fraction); every other fraction
    reuses its scores and trains only its final head.

    Parameters
    ----------
    train_features, test_features : dict of str -> (n, d) arrays, or (n, D) arrays
    y_train, y_test : array-like
    fractions : sequence of float
        Kept fractions in (0, 1].
    group_lasso, steps, lr, seed, layers :
        As for :class:`Head2Toe`.

    Returns
    -------
    list of dict
        One per fraction, in increasing order: ``keep_fraction``, ``n_features``,
        ``accuracy`` (test), ``layer_counts`` (dict), ``time`` (seconds: the shared
        selection head plus this fraction's head), ``steps`` (the same count) and
        ``model`` (the fitted :class:`Head2Toe`).
    """
    import time

    fractions = sorted(check_fraction(f, "fractions") for f in fractions)
    if not fractions:
        raise ValueError("fractions is empty; expected at least one kept fraction")
    kw = dict(group_lasso=group_lasso, steps=steps, lr=lr, seed=seed, layers=layers)
    t0 = time.perf_counter()
    base = Head2Toe(fractions[0], **kw).fit(train_features, y_train)
    t_base = time.perf_counter() - t0
    # the selection head's share: the base fit trained two heads of equal steps
    t_select = t_base / 2 if base.fit_steps_ > steps else 0.0
    out = []
    for f in fractions:
        t0 = time.perf_counter()
        model = base if f == fractions[0] else \
            Head2Toe(f, **kw).fit(train_features, y_train, scores=base.scores_)
        t = t_base if f == fractions[0] else t_select + time.perf_counter() - t0
        out.append({"keep_fraction": f, "n_features": int(len(model.selected_)),
                    "accuracy": model.score(test_features, y_test),
                    "layer_counts": dict(model.layer_counts_), "time": t,
                    "steps": int(base.fit_steps_ if f == fractions[0] else
                                 model.fit_steps_ + (base.fit_steps_ - steps)),
                    "model": model})
    return out


# ----------------------------------------------------------------------------- CV
def _folds(y_idx: np.ndarray, n_folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y_idx).min())
    if smallest < 2:
        raise ValueError(f"cross-validation needs at least 2 examples per class; the "
                         f"smallest class has {smallest}")
    k = min(n_folds, smallest)
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(
        np.zeros(len(y_idx)), y_idx))


class Head2ToeCV(Head2Toe):
    """:class:`Head2Toe` whose ``keep_fraction`` and ``group_lasso`` are chosen by
    stratified k-fold cross-validation on the training set, then refitted on all of it.

    One group-lasso head is trained per (fold, ``group_lasso``); the kept fractions share
    its scores, so the cost is ``n_folds * len(group_lassos) * (1 + len(keep_fractions))``
    heads.  Ties in mean accuracy go to the smaller fraction, then the smaller
    coefficient.

    Parameters
    ----------
    keep_fractions : sequence of float
        Candidates (default :data:`KEEP_FRACTIONS`, the paper's 0.01 .. 0.2).
    group_lassos : sequence of float
        Candidates (default :data:`GROUP_LASSOS`).
    n_folds : int
        Folds (3; fewer when the smallest class is smaller).
    **kwargs
        ``steps``, ``lr``, ``batch_size``, ``layers``, ``seed``, ``device`` of
        :class:`Head2Toe`.

    Attributes
    ----------
    cv_results_ : pandas.DataFrame
        One row per (group_lasso, keep_fraction): mean and std of the fold accuracies.
    best_params_ : dict
        The chosen ``keep_fraction`` and ``group_lasso``.
    """

    def __init__(self, keep_fractions: Sequence[float] = KEEP_FRACTIONS,
                 group_lassos: Sequence[float] = GROUP_LASSOS, n_folds: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.keep_fractions = keep_fractions
        self.group_lassos = group_lassos
        self.n_folds = n_folds

    def fit(self, features, y, scores=None):
        import pandas as pd

        fracs = [check_fraction(f, "keep_fractions") for f in self.keep_fractions]
        coefs = [check_scalar(c, "group_lassos", float, min_val=0) for c in self.group_lassos]
        if not fracs or not coefs:
            raise ValueError("keep_fractions and group_lassos need at least one value each")
        n_folds = check_scalar(self.n_folds, "n_folds", int, min_val=2)
        X, layer_index, names = concat_features(features, self.layers)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row: features have "
                             f"{X.shape[0]} rows, y has shape {tuple(y.shape)}")
        _, y_idx = np.unique(y, return_inverse=True)
        kw = dict(steps=self.steps, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                  device=self.device)
        acc = {(c, f): [] for c in coefs for f in fracs}
        for tr, te in _folds(y_idx, n_folds, self.seed):
            for c in coefs:
                # the selection head at the smallest fraction gives the shared scores
                base = Head2Toe(min(fracs), c, **kw)._fit_matrix(X[tr], layer_index, names,
                                                                 y[tr])
                for f in fracs:
                    model = base if f == min(fracs) else Head2Toe(f, c, **kw)._fit_matrix(
                        X[tr], layer_index, names, y[tr], scores=base.scores_)
                    acc[(c, f)].append(float(np.mean(model._predict_matrix(X[te]) == y[te])))
        rows = [{"group_lasso": c, "keep_fraction": f, "mean_accuracy": float(np.mean(v)),
                 "std_accuracy": float(np.std(v)), "folds": len(v)}
                for (c, f), v in acc.items()]
        self.cv_results_ = pd.DataFrame(rows)
        best = max(rows, key=lambda r: (round(r["mean_accuracy"], 12), -r["keep_fraction"],
                                        -r["group_lasso"]))
        self.best_params_ = {"keep_fraction": best["keep_fraction"],
                             "group_lasso": best["group_lasso"]}
        self.keep_fraction = best["keep_fraction"]
        self.group_lasso = best["group_lasso"]
        return super().fit(features, y, scores=scores)
