"""Log-determinants of ``I + c * Gram`` on the smaller Gram matrix, batched over classes.

The linear algebra under :mod:`transfer_nb.coding_rate`: float64, Cholesky (with an
eigenvalue fallback), the ``n x n`` or ``d x d`` Gram matrix, whichever is smaller, and
equal-sized class matrices factorised in one batch.
"""
from __future__ import annotations

import warnings

import numpy as np

from transfer_nb._validation import as_features, check_positive

__all__ = ["pow2_scale", "logdet_identity_plus_gram", "gram_small", "logdet_i_plus",
           "class_indices", "class_grams", "batched_logdets"]

_BATCH_MAX_SIDE = 512  # batch Cholesky of equal-sized class matrices up to this side


# --------------------------------------------------------------------------- #
# scale
# --------------------------------------------------------------------------- #
def pow2_scale(X: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """A power of two close to the largest ``|X|`` (per row with ``axis=1``).

    Dividing by a power of two is exact in floating point (short of subnormals), so a
    scale-invariant score computed on ``X / pow2_scale(X)`` gives bit for bit the same
    result for ``X`` and ``2**k X``, and the same up to rounding for ``c X``, while
    squares and Gram matrices of ``X * 1e200`` (overflow) or ``X * 1e-200`` (underflow)
    stay representable.  Zero (rows) get scale 1.
    """
    peak = np.max(np.abs(X), axis=axis, keepdims=axis is not None)
    with np.errstate(divide="ignore"):
        exp = np.where(peak > 0, np.floor(np.log2(np.where(peak > 0, peak, 1.0))), 0.0)
    scale = np.ldexp(1.0, exp.astype(np.int64))
    return float(scale) if axis is None else scale


# --------------------------------------------------------------------------- #
# log-determinants
# --------------------------------------------------------------------------- #
def _check_finite_gram(G: np.ndarray) -> None:
    if not np.isfinite(G).all():
        raise ValueError(
            "The Gram matrix of the features overflows float64 (values too large); "
            "expected features of moderate magnitude. Rescale Z (e.g. divide by its "
            "largest absolute value).")


def _logdet_spd_stack(M: np.ndarray) -> np.ndarray:
    """log-determinants of symmetric positive definite matrices, shape (..., m, m).

    Cholesky first; on failure a RuntimeWarning gives the reason and the
    eigenvalues (``eigvalsh``) are used instead.
    """
    try:
        L = np.linalg.cholesky(M)
        return 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    except np.linalg.LinAlgError as exc:
        warnings.warn(
            f"Cholesky factorisation of I + c Z Z^T failed ({exc}: the matrix is not "
            "numerically positive definite, which happens only with extreme feature "
            "values); falling back to eigvalsh.", RuntimeWarning, stacklevel=3)
    w = np.linalg.eigvalsh(M)
    if (w <= 0).any():
        raise ValueError(
            "I + c Z^T Z is not positive definite even with eigvalsh (smallest "
            f"eigenvalue {w.min():.3g}); expected finite features of moderate "
            "magnitude. Rescale Z.")
    return np.log(w).sum(axis=-1)


def gram_small(X: np.ndarray) -> np.ndarray:
    """The smaller of ``X X^T`` (n x n) and ``X^T X`` (d x d)."""
    n, d = X.shape
    with np.errstate(over="ignore", invalid="ignore"):
        G = X @ X.T if n <= d else X.T @ X
    _check_finite_gram(G)
    return G


def logdet_i_plus(G: np.ndarray, c: float) -> float:
    """logdet(I + c G) for a PSD Gram matrix G (a copy is made)."""
    M = G * c
    M.flat[:: M.shape[0] + 1] += 1.0
    return float(_logdet_spd_stack(M))


def logdet_identity_plus_gram(X, c: float) -> float:
    r"""``logdet(I_d + c X^T X)`` computed on the smaller Gram matrix.

    Sylvester's identity :math:`\det(I_d + c X^T X) = \det(I_n + c X X^T)` lets
    the factorisation run on an ``min(n, d)``-sized matrix.

    Parameters
    ----------
    X : array-like of shape (n, d)
    c : float
        Positive scale.

    Returns
    -------
    float
    """
    X = as_features(X, "X")
    c = check_positive(c, "c")
    return logdet_i_plus(gram_small(X), c)


def class_indices(codes: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(counts)[:-1])


def class_grams(Z: np.ndarray, idx: list[np.ndarray],
                 G_global: np.ndarray | None) -> list[np.ndarray]:
    """Smaller-side Gram matrix of every class.

    If the global Gram matrix is the n x n one, class matrices are its diagonal
    blocks (no new matrix products); otherwise each class gets its own.
    """
    d = Z.shape[1]
    out = []
    for ix in idx:
        if G_global is not None and G_global.shape[0] == Z.shape[0]:
            if len(ix) <= d:
                out.append(G_global[np.ix_(ix, ix)])
                continue
        out.append(gram_small(Z[ix]))
    return out


def batched_logdets(grams: list[np.ndarray], scales: np.ndarray) -> np.ndarray:
    """logdet(I + scales[k] * grams[k]) for every k, batching equal sizes."""
    res = np.empty(len(grams))
    sizes = np.array([g.shape[0] for g in grams])
    for m in np.unique(sizes):
        members = np.flatnonzero(sizes == m)
        if len(members) > 1 and m <= _BATCH_MAX_SIDE:
            M = np.stack([grams[k] for k in members]) * scales[members, None, None]
            M[:, np.arange(m), np.arange(m)] += 1.0
            res[members] = _logdet_spd_stack(M)
        else:
            for k in members:
                res[k] = logdet_i_plus(grams[k], scales[k])
    return res
