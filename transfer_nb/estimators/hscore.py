r"""H-score (Bao et al., ICIP 2019) and its shrinkage variant.

.. math::

    H(f) = \mathrm{tr}\left(\mathrm{cov}(f)^{-1}\, \mathrm{cov}(\mathbb E[f \mid y])\right)

``cov(f)`` is the covariance of the features and ``cov(E[f|y])`` the covariance
of the features after each one is replaced by its class mean.  Both use the same
``1/n`` normalisation (the score is a ratio, so ``1/(n-1)`` in both would give
the same value).  Higher = more transferable.

The pseudo-inverse of ``cov(f)`` is unstable for large ``d`` (and for ``n <= d``
the plain score depends on the labels only: every class mean lies in the span
of the samples).  ``shrinkage=True`` is the regularised H-score of Ibrahim et al.,
"Newer is not always better: rethinking transferability metrics, their
peculiarities, stability and performance" (2022):

.. math::

    H_\alpha(f) = \mathrm{tr}\left(\mathrm{cov}_\alpha(f)^{-1}\,
                  (1-\alpha)\,\mathrm{cov}(\mathbb E[f \mid y])\right),\qquad
    \mathrm{cov}_\alpha(f) = (1-\alpha)\,S + \alpha\,\mu I,

with :math:`S` the empirical covariance, :math:`\mu = \mathrm{tr} S / d` and
:math:`\alpha` the Ledoit-Wolf intensity (Ledoit & Wolf 2004, the formula
scikit-learn uses).  The :math:`(1-\alpha)` factor shrinks the between-class
covariance as much as the total one, so :math:`\alpha = 0` gives the plain score.

Computation: one thin SVD of the centred features ``X = U S V^T``; with
:math:`q_k` the mean of the rows of ``U`` in class ``k``,
:math:`H = \sum_k n_k \sum_i q_{k,i}^2` over the kept singular values (plain)
or :math:`(1-\alpha)\sum_k \frac{n_k}{n}\sum_i s_i^2 q_{k,i}^2 / ((1-\alpha)s_i^2/n + \alpha\mu)`
(shrinkage): no ``d x d`` matrix is formed or inverted.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels, plain
from transfer_nb.gram import pow2_scale

__all__ = ["hscore", "ledoit_wolf_shrinkage"]


def ledoit_wolf_shrinkage(X: np.ndarray, s: np.ndarray | None = None) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage intensity and target scale for centred data.

    Parameters
    ----------
    X : numpy.ndarray of shape (n, d)
        Centred data (float64).
    s : numpy.ndarray, optional
        Singular values of ``X`` if already known.

    Returns
    -------
    (delta, mu) : tuple of float
        The shrunk covariance is ``(1 - delta) X^T X / n + delta * mu * I``.
    """
    n, d = X.shape
    if s is None:
        s = np.linalg.svd(X, compute_uv=False)
    s2 = s * s
    mu = float(s2.sum() / n / d)                  # tr(S) / d
    if d == 1:
        # S is its own target mu I: no shrinkage (as scikit-learn); the formula
        # below would divide a rounding residue by another
        return 0.0, mu
    frob2 = float(np.sum(s2 * s2)) / n ** 2        # ||S||_F^2
    row4 = float(np.sum(np.einsum("ij,ij->i", X, X) ** 2))  # sum_i ||x_i||^4
    beta = (row4 / n - frob2) / (d * n)
    delta = (frob2 - d * mu * mu) / d
    beta = min(beta, delta)
    shrink = 0.0 if beta <= 0 or delta <= 0 else beta / delta
    return float(shrink), mu


def hscore(Z, y, shrinkage: bool = False, rcond: float | None = None) -> float:
    r"""H-score of features ``Z`` for labels ``y`` (higher = more transferable).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    shrinkage : bool, default False
        The regularised score :math:`H_\alpha` of Ibrahim et al. (2022): the
        Ledoit-Wolf covariance :math:`(1-\alpha)S + \alpha\mu I` instead of the
        pseudo-inverse of the empirical one, and the between-class covariance
        scaled by :math:`(1-\alpha)` (recommended when ``d`` is large compared
        with ``n``).
    rcond : float, optional
        Plain score only: singular values of the centred features below
        ``rcond * s_max`` are treated as zero in the pseudo-inverse.  Default
        ``max(n, d) * machine epsilon`` (numpy's ``matrix_rank`` rule).  Must lie
        in ``[0, 1]``.

    Returns
    -------
    float
        The H-score; ``0 <= H <= K - 1`` for the plain score.  Both scores are
        invariant to the scale of ``Z``: it is divided by a power of two near
        ``max |Z|`` first, so ``Z * 1e100`` scores as ``Z``.

    Raises
    ------
    ValueError
        On bad features or labels, features that are constant, or ``rcond``
        outside ``[0, 1]``.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    if rcond is not None:
        rcond = check_scalar(rcond, "rcond", float, min_val=0, max_val=1)
    if not isinstance(shrinkage, (bool, np.bool_)):
        raise ValueError(f"shrinkage must be True or False, got {plain(shrinkage)!r}")
    n, d = F.shape
    # both scores are scale-invariant: work on features of unit scale (an exact
    # power-of-two rescaling), so that s^2, mu and ||x||^4 in the Ledoit-Wolf
    # intensity neither overflow (Z * 1e100 gave 0.0) nor underflow
    F = F / pow2_scale(F)
    X = F - F.mean(axis=0, keepdims=True)
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        raise ValueError("Z is constant across samples (zero covariance); expected "
                         "features that vary.")
    Q = np.zeros((lab.n_classes, U.shape[1]))
    np.add.at(Q, lab.codes, U)
    Q /= lab.counts[:, None]                        # class means of the rows of U
    if not shrinkage:
        tol = (max(n, d) * np.finfo(np.float64).eps) if rcond is None else float(rcond)
        keep = s > tol * s[0]
        return float(np.sum(lab.counts[:, None] * Q[:, keep] ** 2))
    delta, mu = ledoit_wolf_shrinkage(X, s)
    s2 = s * s
    den = (1.0 - delta) * s2 / n + delta * mu
    num = s2[None, :] * Q ** 2
    ratio = np.divide(num, den[None, :], out=np.zeros_like(num), where=den[None, :] > 0)
    return float((1.0 - delta) * np.sum(lab.counts[:, None] / n * ratio))
