r"""Label MSE for regression (Nguyen et al., "Simple Transferability Estimation for
Regression Tasks", UAI 2023).

The paper's second estimator: label every target input with the source model's
prediction (its *dummy label* :math:`z_i = \theta(x_i)`), then score the target by
how well a ridge regression from dummy labels to target labels fits,

.. math::

    \mathrm{LabelMSE}(\theta) = -\min_{A, b}\ \frac1n \sum_i \|y_i - A z_i - b\|^2
                                + \lambda \|A\|_F^2 ,

i.e. :func:`~transfer_nb.estimators.linear_mse.linear_mse` with the dummy labels in
place of the features (this module only turns source outputs into dummy labels and
calls it: same closed form, target scaling, ``alpha`` and ``alpha="cv"``).  Higher
(closer to 0) = more transferable.

**What a dummy label is.**  The paper's sources are keypoint *regressors*, so
:math:`\theta(x_i)` is a real vector: the model's full prediction, not a class.  For a
classification source the same object is its predicted distribution over the source
classes, LEEP's "dummy label distribution" (Nguyen et al. 2020, same group), so the
default ``kind="probs"`` takes softmax probabilities as given.  ``kind="dummy"``
takes the hard prediction instead (argmax, one-hot encoded): it discards the model's
confidence, and the regression then reduces to fitting one mean target per predicted
source class (an NCE-like score).  ``kind="raw"`` uses any real outputs unchanged:
the paper's own setting (a regression source) or logits.

**Regularisation.**  ``alpha`` is the paper's :math:`\lambda` on the mean squared
error.  The authors fit sklearn ``Ridge(alpha=n * lambda)``, which minimises
:math:`\|Y - ZA - b\|^2 + n\lambda\|A\|^2`; dividing by ``n`` gives the objective
above, so ``alpha = sklearn_alpha / n``.  The squared error is summed over the ``m``
outputs (not averaged as sklearn's ``mean_squared_error`` does): a factor ``m`` that
never changes the ranking of sources for one target.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import (as_features, as_probabilities, as_targets,
                                     check_same_length, encode_labels, to_numpy)
from transfer_nb.estimators.linear_mse import CV_GRID, linear_mse

__all__ = ["label_mse", "dummy_labels"]

KINDS = ("probs", "dummy", "raw")


def dummy_labels(source_outputs, kind: str = "probs", atol: float = 1e-3) -> np.ndarray:
    """The source model's outputs as the regressors of :func:`label_mse`.

    Parameters
    ----------
    source_outputs : array-like or torch.Tensor of shape (n, k); (n,) or (n, 1) labels for ``"dummy"``
        ``"probs"``: softmax probabilities (rows non-negative, summing to 1);
        ``"dummy"``: any per-class scores (probabilities or logits; the argmax is
        taken) or 1-D predicted source labels of any values; ``"raw"``: any real
        outputs (e.g. a source regressor's predictions).
    kind : {"probs", "dummy", "raw"}, default "probs"
    atol : float, default 1e-3
        ``"probs"`` only: tolerance on the row sums (float16/32 softmax is not exact).

    Returns
    -------
    numpy.ndarray of shape (n, k), float64
        The probabilities or raw outputs, or the one-hot hard labels (one column per
        predicted source class that occurs).

    Raises
    ------
    ValueError
        On an unknown ``kind``, NaN/Inf, or rows that are not probabilities.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}; got {kind!r}.")
    if kind == "dummy":
        a = to_numpy(source_outputs, "source_outputs")
        if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1):   # predicted labels
            codes = encode_labels(a, None, "source_outputs", min_classes=1,
                                  min_per_class=1).codes
        else:                                                  # per-class scores
            codes = np.argmax(as_features(a, "source_outputs"), axis=1)
            codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
        onehot = np.zeros((codes.shape[0], int(codes.max()) + 1))
        onehot[np.arange(codes.shape[0]), codes] = 1.0
        return onehot
    if kind == "probs":
        return as_probabilities(source_outputs, "source_outputs", atol,
                                hint="apply softmax to logits, or pass kind='raw'")
    return as_features(source_outputs, "source_outputs")


def label_mse(source_outputs, Y, alpha=1.0, scale_targets: bool = True, kind: str = "probs",
              cv_folds: int = 5, cv_grid=CV_GRID, seed: int = 0, return_alpha: bool = False,
              atol: float = 1e-3, scale_features: bool = False):
    r"""Negative regularised MSE of a ridge regression from dummy labels to targets.

    Parameters
    ----------
    source_outputs : array-like or torch.Tensor of shape (n, k)
        The source model's outputs on the ``n`` target inputs, as ``kind`` says
        (see :func:`dummy_labels`; ``"dummy"`` also takes 1-D predicted labels).
    Y : array-like of shape (n,) or (n, m)
        Real targets, one or several outputs (1-D means one output).
    alpha : float >= 0 or "cv", default 1.0
        The paper's :math:`\lambda` (0 or 1 in the paper); sklearn's
        ``Ridge(alpha=n * lambda)`` in the authors' code.  ``"cv"``: chosen from
        ``cv_grid`` by ``cv_folds``-fold cross-validation, as in ``linear_mse``.
    scale_targets : bool, default True
        Min-max scale each target column to ``[0, 1]`` first (the paper's setting).
    kind : {"probs", "dummy", "raw"}, default "probs"
        Soft predictions (the paper's dummy label: the model's prediction itself),
        one-hot hard predictions, or real outputs as given.
    cv_folds, cv_grid, seed
        For ``alpha="cv"`` (see :func:`~transfer_nb.estimators.linear_mse.linear_mse`).
    return_alpha : bool, default False
        Also return the :math:`\lambda` used.
    atol : float, default 1e-3
        Tolerance on probability row sums (``kind="probs"``).
    scale_features : bool, default False
        Standardise each dummy-label column first (as in ``linear_mse``): softmax
        outputs that saturate vary far less than :math:`\lambda = 1`, and the ridge then
        shrinks every model to the mean target.  With ``kind="raw"`` on
        log-probabilities this gives a score that varies across models.

    Returns
    -------
    float, or (float, float) if ``return_alpha``
        :math:`-\min_{A,b}\frac1n\sum_i\|y_i - Az_i - b\|^2 + \lambda\|A\|_F^2` (<= 0).

    Raises
    ------
    ValueError
        On bad outputs (NaN, not probabilities for ``"probs"``), bad targets
        (NaN, 3-D), mismatched ``n``, an unknown ``kind`` or a bad ``alpha``.
    """
    Z = dummy_labels(source_outputs, kind, atol)
    T = as_targets(Y, "Y")
    check_same_length(Z, T, "source_outputs", "Y")
    return linear_mse(Z, T, alpha=alpha, scale_targets=scale_targets, cv_folds=cv_folds,
                      cv_grid=cv_grid, seed=seed, return_alpha=return_alpha,
                      scale_features=scale_features)
