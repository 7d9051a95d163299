r"""LogME: logarithm of maximum evidence (You et al., ICML 2021, arXiv 2102.11005).

For each class ``k`` the one-hot column :math:`y_k \in \{0,1\}^n` is modelled as
Bayesian linear regression on the features :math:`F \in \mathbb{R}^{n\times d}`:
:math:`w \sim N(0, \alpha^{-1} I_d)`, :math:`y_k = F w + N(0, \beta^{-1} I_n)`.
The log evidence is

.. math::

    \mathcal L(\alpha, \beta) = \frac d2 \log\alpha + \frac n2 \log\beta
      - \frac n2 \log 2\pi - \frac\beta2 \|y - F m\|^2 - \frac\alpha2 m^T m
      - \frac12 \log\det A,

with :math:`A = \alpha I_d + \beta F^T F` and :math:`m = \beta A^{-1} F^T y`.
It is maximised over :math:`\alpha, \beta` by MacKay's fixed point

.. math::

    \gamma = \sum_i \frac{\beta\sigma_i}{\alpha + \beta\sigma_i},\quad
    \alpha \leftarrow \frac{\gamma}{m^T m},\quad
    \beta \leftarrow \frac{n - \gamma}{\|y - F m\|^2},

where :math:`\sigma_i` are the eigenvalues of :math:`F^T F`.  LogME is the mean
over classes of :math:`\mathcal L / n`.

With the thin SVD :math:`F = U S V^T` (``r = min(n, d)`` singular values) and
:math:`z = U^T y` everything is a sum over ``r`` terms, plus the part of ``y``
outside the column space of ``F``.  **When n < d**, :math:`F^T F` has ``d - r``
zero eigenvalues that still enter :math:`\log\det A` as ``(d - r) log(alpha)``:
the public implementation drops them (it sums over the ``r`` singular values
only), which is wrong; here the spectrum is padded with zeros to length ``d``.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, encode_labels

__all__ = ["logme", "logme_evidence"]


def _fixed_point(s2: np.ndarray, z: np.ndarray, y_perp2: float, n: int, d: int,
                 tol: float, max_iter: int):
    """Maximise the evidence for one target column; return (evidence/n, alpha, beta)."""
    alpha, beta = 1.0, 1.0
    z2 = z * z
    for _ in range(max_iter):
        den = alpha + beta * s2
        gamma = float(np.sum(beta * s2 / den))
        m2 = float(np.sum(beta ** 2 * s2 * z2 / den ** 2))       # ||m||^2
        res2 = y_perp2 + float(np.sum(alpha ** 2 * z2 / den ** 2))  # ||y - F m||^2
        m2 = max(m2, 1e-300)
        res2 = max(res2, 1e-300)
        new_alpha = gamma / m2
        new_beta = max(n - gamma, 1e-300) / res2
        done = (abs(new_alpha - alpha) <= tol * abs(alpha)
                and abs(new_beta - beta) <= tol * abs(beta))
        alpha, beta = new_alpha, new_beta
        if done:
            break
    den = alpha + beta * s2
    m2 = float(np.sum(beta ** 2 * s2 * z2 / den ** 2))
    res2 = y_perp2 + float(np.sum(alpha ** 2 * z2 / den ** 2))
    # log det A over all d eigenvalues: r from the SVD, d - r zeros (the n < d fix)
    logdet_a = float(np.sum(np.log(den))) + (d - s2.shape[0]) * np.log(alpha)
    ev = (0.5 * d * np.log(alpha) + 0.5 * n * np.log(beta) - 0.5 * n * np.log(2 * np.pi)
          - 0.5 * beta * res2 - 0.5 * alpha * m2 - 0.5 * logdet_a)
    return ev / n, alpha, beta


def logme_evidence(Z, Y, tol: float = 1e-8, max_iter: int = 1000,
                   return_params: bool = False):
    """Maximum log evidence per sample for every column of a real target matrix.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        Features.
    Y : array-like of shape (n,) or (n, m)
        Real targets (one-hot columns for classification).
    tol : float, default 1e-8
        Relative change of both ``alpha`` and ``beta`` below which the fixed
        point stops.
    max_iter : int, default 1000
    return_params : bool, default False
        Also return the maximising ``alpha`` and ``beta`` of every column.

    Returns
    -------
    numpy.ndarray of shape (m,), or (evidence, alpha, beta) if ``return_params``
        :math:`\\max_{\\alpha,\\beta} \\mathcal L / n` for each column.
    """
    F = as_features(Z, "Z")
    T = as_features(Y, "Y", allow_1d=True)
    if T.shape[0] != F.shape[0]:
        raise ValueError(
            f"Y has {T.shape[0]} rows but Z has {F.shape[0]}; expected one target per row.")
    n, d = F.shape
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    s2 = s * s
    Zt = U.T @ T                                   # (r, m)
    y_perp2 = np.maximum((T * T).sum(0) - (Zt * Zt).sum(0), 0.0)
    out = np.array([_fixed_point(s2, Zt[:, j], float(y_perp2[j]), n, d, tol, max_iter)
                    for j in range(T.shape[1])])
    return (out[:, 0], out[:, 1], out[:, 2]) if return_params else out[:, 0]


def logme(Z, y, tol: float = 1e-8, max_iter: int = 1000) -> float:
    r"""LogME score of features ``Z`` for labels ``y`` (higher = more transferable).

    Mean over the ``K`` classes of the maximum log evidence per sample of a
    Bayesian linear regression from ``Z`` to the one-hot column of that class
    (see the module docstring for the formulas).  Computed in float64 from one
    thin SVD of ``Z``; correct for ``n < d`` (the ``d - r`` zero eigenvalues of
    :math:`Z^T Z` are kept in :math:`\log\det(\alpha I + \beta Z^T Z)`, which the
    public implementation gets wrong).  Features are used as given (no centring),
    as in the paper.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    tol : float, default 1e-8
        Relative tolerance of the fixed-point iteration on ``alpha`` and ``beta``
        (the public code stops at 1e-2 on their ratio; a tighter tolerance makes
        the score reproducible to many digits at negligible cost).
    max_iter : int, default 1000

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On bad features or labels.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    onehot = np.zeros((F.shape[0], lab.n_classes))
    onehot[np.arange(F.shape[0]), lab.codes] = 1.0
    return float(np.mean(logme_evidence(F, onehot, tol=tol, max_iter=max_iter)))
