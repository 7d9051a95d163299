"""Head2Toe's hyper-parameter searches: a sweep over kept fractions sharing one
selection (:func:`fraction_sweep`) and cross-validation (:class:`Head2ToeCV`)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import NotFittedError

from transfer_nb._validation import check_fraction, check_scalar
from transfer_nb.head2toe.estimator import (
    GROUP_LASSOS,
    KEEP_FRACTIONS,
    Head2Toe,
    check_labels,
    concat_features,
)

__all__ = ["Head2ToeCV", "fraction_sweep"]


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
        out.append({"keep_fraction": f, "n_features": len(model.selected_),
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


class Head2ToeCV(ClassifierMixin, TransformerMixin, BaseEstimator):
    """:class:`Head2Toe` whose ``keep_fraction`` and ``group_lasso`` are chosen by
    stratified k-fold cross-validation on the training set, then refitted on all of it.

    One group-lasso head is trained per (fold, ``group_lasso``); the kept fractions share
    its scores, so the cost is ``n_folds * len(group_lassos) * (1 + len(keep_fractions))``
    heads.  Ties in mean accuracy go to the smaller fraction, then the smaller
    coefficient.  Like scikit-learn's ``GridSearchCV``, the search never rewrites its own
    parameters: the choice is in ``best_params_`` and the refitted model in
    ``best_estimator_``, which ``predict`` / ``score`` / ``transform`` use.

    Parameters
    ----------
    keep_fractions : sequence of float
        Candidates (default :data:`KEEP_FRACTIONS`, the paper's 0.01 .. 0.2).
    group_lassos : sequence of float
        Candidates (default :data:`GROUP_LASSOS`).
    n_folds : int
        Folds (3; fewer when the smallest class is smaller).
    steps, lr, batch_size, layers, seed, device :
        As for :class:`Head2Toe`.

    Attributes
    ----------
    cv_results_ : pandas.DataFrame
        One row per (group_lasso, keep_fraction): mean and std of the fold accuracies.
    best_params_ : dict
        The chosen ``keep_fraction`` and ``group_lasso``.
    best_estimator_ : Head2Toe
        Head2Toe with ``best_params_``, fitted on all the training data.
    classes_, selected_, layer_counts_, n_features_in_ :
        Those of ``best_estimator_``.
    fit_steps_ : int
        Optimisation steps of the whole search and the refit.
    """

    def __init__(self, keep_fractions: Sequence[float] = KEEP_FRACTIONS,
                 group_lassos: Sequence[float] = GROUP_LASSOS, n_folds: int = 3, *,
                 steps: int = 300, lr: float = 0.01, batch_size: int = 128,
                 layers: Sequence[str] | None = None, seed: int = 0, device="cpu"):
        self.keep_fractions = keep_fractions
        self.group_lassos = group_lassos
        self.n_folds = n_folds
        self.steps = steps
        self.lr = lr
        self.batch_size = batch_size
        self.layers = layers
        self.seed = seed
        self.device = device

    def _head2toe(self, keep_fraction, group_lasso) -> Head2Toe:
        return Head2Toe(keep_fraction, group_lasso, steps=self.steps, lr=self.lr,
                        batch_size=self.batch_size, layers=self.layers, seed=self.seed,
                        device=self.device)

    def fit(self, features, y, scores=None):
        """Cross-validate every (fraction, coefficient) pair, then refit the best one.

        Parameters are those of :meth:`Head2Toe.fit`; ``scores`` is passed to the refit.
        """
        import pandas as pd

        fracs = [check_fraction(f, "keep_fractions") for f in self.keep_fractions]
        coefs = [check_scalar(c, "group_lassos", float, min_val=0) for c in self.group_lassos]
        if not fracs or not coefs:
            raise ValueError("keep_fractions and group_lassos need at least one value each")
        n_folds = check_scalar(self.n_folds, "n_folds", int, min_val=2)
        seed = check_scalar(self.seed, "seed", int, min_val=0)
        y = check_labels(y, type(self).__name__)
        X, layer_index, names = concat_features(features, self.layers)
        if y.ndim != 1 or len(y) != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row: features have "
                             f"{X.shape[0]} rows, y has shape {tuple(y.shape)}")
        _, y_idx = np.unique(y, return_inverse=True)
        acc = {(c, f): [] for c in coefs for f in fracs}
        steps = 0
        for tr, te in _folds(y_idx, n_folds, seed):
            for c in coefs:
                # the selection head at the smallest fraction gives the shared scores
                base = self._head2toe(min(fracs), c)._fit_matrix(X[tr], layer_index, names,
                                                                 y[tr])
                steps += base.fit_steps_
                for f in fracs:
                    model = base if f == min(fracs) else self._head2toe(f, c)._fit_matrix(
                        X[tr], layer_index, names, y[tr], scores=base.scores_)
                    steps += 0 if model is base else model.fit_steps_
                    acc[(c, f)].append(float(np.mean(model._predict_matrix(X[te]) == y[te])))
        rows = [{"group_lasso": c, "keep_fraction": f, "mean_accuracy": float(np.mean(v)),
                 "std_accuracy": float(np.std(v)), "folds": len(v)}
                for (c, f), v in acc.items()]
        self.cv_results_ = pd.DataFrame(rows)
        best = max(rows, key=lambda r: (round(r["mean_accuracy"], 12), -r["keep_fraction"],
                                        -r["group_lasso"]))
        self.best_params_ = {"keep_fraction": best["keep_fraction"],
                             "group_lasso": best["group_lasso"]}
        self.best_estimator_ = self._head2toe(**self.best_params_).fit(features, y,
                                                                      scores=scores)
        b = self.best_estimator_
        self.classes_, self.selected_ = b.classes_, b.selected_
        self.layer_counts_, self.n_features_in_ = b.layer_counts_, b.n_features_in_
        self.fit_steps_ = steps + b.fit_steps_
        return self

    def _fitted(self) -> Head2Toe:
        if not hasattr(self, "best_estimator_"):
            raise NotFittedError("this Head2ToeCV is not fitted yet; call fit(features, y) first")
        return self.best_estimator_

    def decision_function(self, features) -> np.ndarray:
        """Logits of ``best_estimator_``."""
        return self._fitted().decision_function(features)

    def predict(self, features) -> np.ndarray:
        """Labels predicted by ``best_estimator_``."""
        return self._fitted().predict(features)

    def score(self, features, y) -> float:
        """Accuracy of ``best_estimator_``."""
        return self._fitted().score(features, y)

    def transform(self, features) -> np.ndarray:
        """The features ``best_estimator_`` kept."""
        return self._fitted().transform(features)
