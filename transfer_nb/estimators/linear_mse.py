r"""Linear MSE for regression (Nguyen et al., "Simple Transferability Estimation
for Regression Tasks", UAI 2023).

.. math::

    \mathrm{LinearMSE}(f) = -\min_{A, b}\ \frac1n \sum_i \|y_i - A f_i - b\|^2
                            + \lambda \|A\|_F^2

The intercept ``b`` is not penalised, so it absorbs the means: with centred
features ``X`` (thin SVD ``X = U S V^T``) and centred targets ``Yc``, the
minimum is the ridge residual

.. math::

    \frac1n\Big(\|Y_c\|_F^2 - \|U^T Y_c\|_F^2
      + \sum_i \frac{n\lambda}{s_i^2 + n\lambda} \|(U^T Y_c)_i\|^2\Big),

(for ``lambda = 0`` the least-squares residual; rank-deficient features are fine).
Higher (closer to 0) = more transferable.

Defaults: targets scaled column-wise to ``[0, 1]`` (min-max, as in the paper,
so that scores of different targets are comparable; a constant column becomes
0), and ``alpha = 1.0`` (the paper's :math:`\lambda \in \{0, 1\}`; 1 is the
regularised choice, robust when ``n <= d``).  ``alpha="cv"`` picks
:math:`\lambda` from a log grid by k-fold cross-validated MSE and reports the
training objective above at that :math:`\lambda`.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import (as_features, as_targets, check_same_length, check_scalar,
                                     plain)

__all__ = ["linear_mse", "ridge_objective", "ridge_fit", "standardize_columns", "minmax_scale"]

CV_GRID = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def minmax_scale(Y: np.ndarray) -> np.ndarray:
    """Each column of ``Y`` scaled to ``[0, 1]`` by its own minimum and maximum (a
    constant column becomes 0): the paper's target scaling."""
    Y = np.asarray(Y)
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (Y - lo) / span


def ridge_objective(X: np.ndarray, Y: np.ndarray, lam: float) -> float:
    """``min_{A,b} 1/n sum_i ||y_i - A x_i - b||^2 + lam ||A||_F^2`` in closed form.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d), float64
    Y : numpy.ndarray of shape (n, m), float64
    lam : float >= 0

    Returns
    -------
    float
    """
    n = X.shape[0]
    Xc = X - X.mean(axis=0, keepdims=True)
    Yc = Y - Y.mean(axis=0, keepdims=True)
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    if lam == 0:
        keep = s > s[0] * max(Xc.shape) * np.finfo(np.float64).eps if s[0] > 0 else s > 0
        U, s = U[:, keep], s[keep]
    P = U.T @ Yc
    p2 = (P * P).sum(axis=1)
    shrink = (n * lam) / (s * s + n * lam) if lam > 0 else np.zeros_like(s)
    val = (Yc * Yc).sum() - p2.sum() + float(np.sum(shrink * p2))
    return float(max(val, 0.0) / n)


def standardize_columns(X: np.ndarray) -> np.ndarray:
    """Each column of ``X`` centred and divided by its standard deviation (a constant
    column becomes 0): the scaling under which a ridge penalty ``lam`` means the same
    thing for every model (features in units of their own spread)."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def ridge_fit(X: np.ndarray, Y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """The minimiser ``(A, b)`` of ``1/n sum_i ||y_i - A x_i - b||^2 + lam ||A||_F^2``:
    ``A`` of shape (m, d), ``b`` of shape (m,) (``lam = 0``: minimum-norm least squares)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mx, Y - my
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    if lam > 0:
        filt = s / (s * s + n * lam)
    else:
        tol = s[0] * max(Xc.shape) * np.finfo(np.float64).eps if s.size and s[0] > 0 else 0
        filt = np.where(s > tol, 1.0 / np.where(s > tol, s, 1.0), 0.0)
    W = Vt.T @ (filt[:, None] * (U.T @ Yc))        # (d, m)
    return W.T, my - mx @ W


def _ridge_fit_predict(Xtr, Ytr, Xte, lam):
    A, b = ridge_fit(Xtr, Ytr, lam)
    return Xte @ A.T + b


def _cv_alpha(X, Y, grid, folds, seed):
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"alpha='cv' needs at least 2 samples to cross-validate; got n={n}.")
    k = min(folds, n)
    perm = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(perm, k)
    errs = []
    for lam in grid:
        e = 0.0
        for j in range(k):
            te = parts[j]
            tr = np.concatenate([parts[i] for i in range(k) if i != j])
            pred = _ridge_fit_predict(X[tr], Y[tr], X[te], lam)
            e += float(((Y[te] - pred) ** 2).sum())
        errs.append(e / n)
    return float(grid[int(np.argmin(errs))])


def linear_mse(Z, Y, alpha=1.0, scale_targets: bool = True, cv_folds: int = 5,
               cv_grid=CV_GRID, seed: int = 0, return_alpha: bool = False,
               scale_features: bool = False):
    r"""Negative regularised MSE of a linear (ridge) regressor from features to targets.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    Y : array-like of shape (n,) or (n, m)
        Real targets, one or several outputs.
    alpha : float >= 0 or "cv", default 1.0
        The :math:`\lambda` of the objective (the paper uses 0 or 1; ``1.0`` by
        default).  ``"cv"``: the :math:`\lambda` in ``cv_grid`` with the lowest
        ``cv_folds``-fold cross-validated MSE.
    scale_targets : bool, default True
        Min-max scale each target column to ``[0, 1]`` first (the paper's
        setting); a constant column becomes 0.
    cv_folds : int >= 2, default 5
        Number of folds for ``alpha="cv"`` (capped at ``n``).
    cv_grid : sequence of float, default (0, 1e-6, ..., 1, 10)
    seed : int, default 0
        Seed of the fold split for ``alpha="cv"``.
    return_alpha : bool, default False
        Also return the :math:`\lambda` used.
    scale_features : bool, default False
        Standardise each feature column first (:func:`standardize_columns`), so that
        :math:`\lambda` is measured against features of unit spread: without it a
        model whose features vary little is shrunk to the mean target whatever they
        encode, and the score ranks feature variance.

    Returns
    -------
    float, or (float, float) if ``return_alpha``
        :math:`-\min_{A,b} \frac1n\sum_i\|y_i - Af_i - b\|^2 + \lambda\|A\|_F^2`
        (<= 0; higher = more transferable).

    Raises
    ------
    ValueError
        On bad features or targets, mismatched lengths, or a bad ``alpha``.
    """
    X = as_features(Z, "Z")
    T = as_targets(Y, "Y")
    check_same_length(X, T, "Z", "Y")
    if isinstance(alpha, str):
        if alpha != "cv":
            raise ValueError(f"alpha must be a number >= 0, or 'cv'; got {alpha!r}.")
        cv_folds = check_scalar(cv_folds, "cv_folds", int, min_val=2)
        seed = check_scalar(seed, "seed", int)
        try:
            grid = [check_scalar(g, "cv_grid values", float, min_val=0) for g in cv_grid]
        except (TypeError, ValueError):
            raise ValueError(f"cv_grid must hold finite values >= 0; got {plain(cv_grid)!r}."
                             ) from None
        if not grid:
            raise ValueError("cv_grid is empty; expected at least one value >= 0.")
    else:
        if isinstance(alpha, (bool, np.bool_)) or not np.isscalar(alpha):
            raise ValueError(f"alpha must be a number >= 0, or 'cv'; got {plain(alpha)!r}.")
        lam = check_scalar(alpha, "alpha", float, min_val=0)
    if scale_targets:
        T = minmax_scale(T)
    if scale_features:
        X = standardize_columns(X)
    if isinstance(alpha, str):
        lam = _cv_alpha(X, T, grid, cv_folds, seed)
    score = -ridge_objective(X, T, lam)
    return (score, lam) if return_alpha else score
