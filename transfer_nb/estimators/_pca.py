"""The PCA that N-LEEP, GBC and PARC apply to the features before scoring.

One exact, deterministic projection shared by the three scores (their authors call
scikit-learn's ``PCA``; GBC's with the exact solver, PARC's with a randomised one of a
single power iteration).  Here the thin SVD of the centred features is exact, so the
result does not depend on a random seed, and the sign of each component is fixed by its
*scores* (the entry of largest magnitude of each score column is positive).  Scores are
what every caller uses, and they are the same for ``Z`` and ``Z Q`` (an orthogonal
rotation) and for any permutation of the rows, so the scores built on them keep those
invariances.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["pca_scores"]


def pca_scores(F: np.ndarray, n_components) -> np.ndarray:
    """Principal-component scores of the rows of ``F`` (float64, already validated).

    Parameters
    ----------
    F : numpy.ndarray of shape (n, d)
    n_components : int or float
        An integer ``>= 1``: keep that many components, capped at the number with
        non-zero variance (at most ``min(n - 1, d)``).  A float in ``(0, 1)``: keep the
        fewest components whose explained variance exceeds that fraction of the total
        (scikit-learn's rule for ``PCA(n_components=0.8)``).

    Returns
    -------
    numpy.ndarray of shape (n, k)
        Centred data projected on the top ``k`` principal axes, signs fixed by the scores.
        ``k >= 1`` unless the features are constant (then ``k = 0``).
    """
    X = F - F.mean(axis=0)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    # components with variance at rounding level of the data are not directions
    tol = max(X.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
    rank = int(np.count_nonzero(s > tol))
    if isinstance(n_components, numbers.Integral):
        k = min(int(n_components), rank)
    else:
        var = s[:rank] ** 2
        ratio = np.cumsum(var) / var.sum() if rank else np.zeros(0)
        k = min(int(np.searchsorted(ratio, float(n_components), side="right")) + 1, rank)
    scores = U[:, :k] * s[:k]
    # sign convention on the scores: the largest |entry| of each column is positive
    pivot = scores[np.argmax(np.abs(scores), axis=0), np.arange(k)]
    return scores * np.where(pivot < 0, -1.0, 1.0)
