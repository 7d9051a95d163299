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

**Scale.**  The maximum evidence is invariant to the scale of the features: the
evidence of :math:`cF` at :math:`(\alpha, \beta)` is that of :math:`F` at
:math:`(\alpha / c^2, \beta)` (the prior :math:`N(0, \alpha^{-1} I)` absorbs
:math:`c`), so the maximum over :math:`\alpha` is the same.  The *fixed point* is
not: it starts from :math:`\alpha = \beta = 1` and stops at a tolerance, and
:math:`F^T F` overflows for :math:`F \sim 10^{200}` (NaN) or loses the iteration
for :math:`10^{100}`.  So the features are first divided by a power of two near their
largest entry (exact in floating point): the score is then the same bit for bit for
``Z`` and ``2**k * Z``, equal to within the fixed point's tolerance (``tol``, ~1e-9
in practice) for any ``c * Z``, and finite at any scale.  ``alpha`` returned by :func:`logme_evidence` refers to the features as given.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels
from transfer_nb.gram import pow2_scale

__all__ = ["logme", "logme_evidence"]


def _evidence(alpha, beta, s2, z2, y_perp2, n, d):
    """Log evidence / n at (alpha, beta), in a form that stays finite as beta -> inf."""
    r = s2.shape[0]
    lam = alpha / beta
    den = lam + s2                                   # (alpha + beta sigma) / beta
    m2 = float(np.sum(s2 * z2 / den ** 2))           # ||m||^2
    res2 = y_perp2 + float(np.sum(lam ** 2 * z2 / den ** 2))  # ||y - F m||^2
    # log det A = sum_{i<=r} log(alpha + beta sigma_i) + (d - r) log(alpha): the
    # d - r zero eigenvalues of F^T F count too (the n < d fix)
    logdet_a = float(np.sum(np.log(den))) + r * np.log(beta) + (d - r) * np.log(alpha)
    ev = (0.5 * d * np.log(alpha) + 0.5 * n * np.log(beta) - 0.5 * n * np.log(2 * np.pi)
          - 0.5 * beta * res2 - 0.5 * alpha * m2 - 0.5 * logdet_a)
    return ev / n, m2, res2


def _fixed_point(s2: np.ndarray, z: np.ndarray, y_perp2: float, n: int, d: int,
                 tol: float, max_iter: int):
    """Maximise the evidence for one target column; return (evidence/n, alpha, beta).

    MacKay's updates written with ``lam = alpha / beta`` so that nothing cancels
    or overflows when the targets lie in the span of the features (``n <= d``):
    the supremum is then approached as ``beta -> inf`` and the iteration stops
    once the evidence no longer changes (relative ``tol``).
    """
    alpha, beta = 1.0, 1.0
    z2 = z * z
    r = s2.shape[0]
    ev, m2, res2 = _evidence(alpha, beta, s2, z2, y_perp2, n, d)
    for _ in range(max_iter):
        lam = alpha / beta
        den = lam + s2
        gamma = float(np.sum(s2 / den))
        n_minus_gamma = (n - r) + float(np.sum(lam / den))   # no cancellation
        if m2 <= 0 or res2 <= 0 or n_minus_gamma <= 0:
            break                                            # limit reached
        new_alpha, new_beta = gamma / m2, n_minus_gamma / res2
        if not (np.isfinite(new_alpha) and np.isfinite(new_beta)) or new_alpha <= 0:
            break
        new_ev, new_m2, new_res2 = _evidence(new_alpha, new_beta, s2, z2, y_perp2, n, d)
        if not np.isfinite(new_ev):
            break
        params_done = (abs(new_alpha - alpha) <= tol * alpha
                       and abs(new_beta - beta) <= tol * beta)
        ev_done = abs(new_ev - ev) <= tol * max(1.0, abs(new_ev))
        alpha, beta, ev, m2, res2 = new_alpha, new_beta, new_ev, new_m2, new_res2
        if params_done or ev_done:
            break
    if y_perp2 == 0.0 and r == n and s2.min() > 0:
        # y in the span of F (n <= d, full row rank): the evidence has a limit as
        # beta -> inf, max over alpha in closed form (alpha = n / Q); the iteration
        # only approaches it geometrically (1e-8 .. 1e-11 short), so take the limit
        # when it is higher (when the maximum is at finite beta, the iterate is)
        Q = float(np.sum(z2 / s2))                             # y^T (F F^T)^-1 y
        if Q > 0:
            limit = 0.5 * (np.log(n / Q) - float(np.mean(np.log(s2)))
                           - np.log(2 * np.pi) - 1.0)
            ev = max(ev, limit)
    return ev, alpha, beta


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
        Relative change of both ``alpha`` and ``beta``, or of the evidence,
        below which the fixed point stops.
    max_iter : int, default 1000
    return_params : bool, default False
        Also return the maximising ``alpha`` and ``beta`` of every column.  When
        the supremum is the limit ``beta -> inf`` (targets in the span of ``Z``,
        ``n <= d``), the evidence returned is that limit (closed form) and
        ``alpha, beta`` are the last iterate of the fixed point on the way to it.

    Returns
    -------
    numpy.ndarray of shape (m,), or (evidence, alpha, beta) if ``return_params``
        :math:`\\max_{\\alpha,\\beta} \\mathcal L / n` for each column.
    """
    F = as_features(Z, "Z")
    T = as_features(Y, "Y", allow_1d=True)
    tol, max_iter = _check_iteration(tol, max_iter)
    if T.shape[0] != F.shape[0]:
        raise ValueError(
            f"Y has {T.shape[0]} rows but Z has {F.shape[0]}; expected one target per row.")
    n, d = F.shape
    # the maximum evidence is scale-invariant (module docstring): iterate on features
    # of unit scale, exactly rescaled, so that F^T F neither overflows nor underflows
    c = pow2_scale(F)
    F = F / c
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    s2 = s * s
    Zt = U.T @ T                                   # (r, m)
    # the part of y outside the column space of F, as a residual (the difference
    # ||y||^2 - ||U^T y||^2 of two large numbers would be ~1e-16 ||y||^2 off, which
    # caps beta and leaves the n <= d score short of its supremum); exactly 0 when
    # U spans R^n
    if U.shape[1] == n:
        y_perp2 = np.zeros(T.shape[1])
    else:
        resid = T - U @ Zt
        y_perp2 = (resid * resid).sum(0)
    out = np.array([_fixed_point(s2, Zt[:, j], float(y_perp2[j]), n, d, tol, max_iter)
                    for j in range(T.shape[1])])
    # evidence(F / c, alpha, beta) = evidence(F, alpha * c^2, beta): alpha of F as given
    return (out[:, 0], out[:, 1] * (c * c), out[:, 2]) if return_params else out[:, 0]


def _check_iteration(tol, max_iter) -> tuple[float, int]:
    tol = check_scalar(tol, "tol", float, min_val=0, include_boundaries="neither")
    max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)
    return tol, max_iter


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
        The fixed point stops when both ``alpha`` and ``beta``, or the evidence,
        change by less than this (relative).  The public code stops at 1e-2 on
        ``alpha / beta``; a tighter tolerance makes the score reproducible to
        many digits at negligible cost.  When ``n <= d`` the one-hot targets lie
        in the span of the features and the supremum may be the limit
        ``beta -> inf``; the iteration is written in ``alpha / beta`` (no overflow
        or cancellation) and that limit, which has a closed form
        (:math:`\alpha = n / y^T (ZZ^T)^{-1} y`), is returned when it is higher.
    max_iter : int, default 1000

    Returns
    -------
    float
        Invariant to the scale of ``Z`` (see the module docstring): ``Z`` is divided
        by a power of two near ``max |Z|`` first, so ``logme(Z * 1e200)`` equals
        ``logme(Z)`` to within the fixed point's tolerance.

    Raises
    ------
    ValueError
        On bad features or labels, ``tol`` not a finite number > 0, ``max_iter`` not
        an integer >= 1.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    _check_iteration(tol, max_iter)
    onehot = np.zeros((F.shape[0], lab.n_classes))
    onehot[np.arange(F.shape[0]), lab.codes] = 1.0
    return float(np.mean(logme_evidence(F, onehot, tol=tol, max_iter=max_iter)))
