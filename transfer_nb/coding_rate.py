r"""Coding rate :math:`R(Z, \epsilon)`, :math:`R(Z \mid Y)` and TransRate.

TransRate (Huang et al., "Frustratingly Easy Transferability Estimation",
ICML 2022, arXiv 2106.09362) measures the mutual information between features
and labels with the coding rate of Ma et al. (2007)::

    R(Z, eps)    = 1/2 logdet(I_d + Z^T Z / (n eps))          Z of shape (n, d)
    TransRate    = R(Z, eps) - 1/K sum_k R(Z_k, eps)

Two variants are offered.

``variant="snippet"`` (default) is faithful to the code snippet printed in the
paper:

1. ``Z`` is centred **once**, on the global mean;
2. the class subsets ``Z_k`` are rows of that globally centred ``Z``; they are
   **not** re-centred on their class mean (the coding rate is *not* invariant to
   centring, so this matters: the class term then also counts the offset of the
   class mean from the global mean);
3. ``n`` in each term is the number of rows of the matrix in that term (``n_k``
   for class ``k``);
4. ``K`` is the number of classes present in ``y`` and every class weighs
   ``1/K`` (the snippet loops over ``range(y.max() + 1)``, which equals the
   classes present when labels are ``0..K-1``; labels here are encoded first, so
   gaps and strings are fine).

``variant="official"`` follows the authors' full pipeline in their repository
(the numbers in the paper's tables): rows L2-normalised, centred, L2-normalised
again; eigenvalues of ``Z^T Z / n`` and ``Z_k^T Z_k / n_k`` divided by the trace
of the global matrix; each term ``1/2 sum_i log(1 + lambda_i / eps)`` divided by
``rank(Z)``; class terms weighted ``n_k / n`` instead of ``1/K``.  This variant is
scale invariant and less biased by the feature dimension; the snippet is not
(features x10 change it a lot, and it grows with ``d``).

Speed
-----
:math:`Z^T Z` (d x d) and :math:`Z Z^T` (n x n) share their non-zero
eigenvalues, so by Sylvester's determinant identity

.. math::  \det(I_d + c\, Z^T Z) = \det(I_n + c\, Z Z^T),

and each term is computed on the *smaller* Gram matrix, in float64, with a
Cholesky factorisation ``M = L L^T`` (``logdet M = 2 sum log diag L``).  The
matrix is ``I + (PSD)``, so it is symmetric positive definite with every
eigenvalue >= 1 and Cholesky is well conditioned; if it nevertheless fails
(non-finite entries from overflow), the code warns with the reason and falls back
to ``eigvalsh``.  When ``n <= d`` one n x n Gram matrix of the centred ``Z``
serves every class (class Gram matrices are its diagonal blocks), otherwise each
class uses its own smaller Gram matrix; equal-sized class matrices are factorised
in one batched call.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from transfer_nb._validation import as_features, check_positive, encode_labels

__all__ = [
    "coding_rate",
    "transrate",
    "transrate_official",
    "coding_rate_terms",
    "transrate_per_layer",
    "logdet_identity_plus_gram",
]

_VARIANTS = ("snippet", "official")
_BATCH_MAX_SIDE = 512  # batch Cholesky of equal-sized class matrices up to this side


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


def _gram_small(X: np.ndarray) -> np.ndarray:
    """The smaller of ``X X^T`` (n x n) and ``X^T X`` (d x d)."""
    n, d = X.shape
    with np.errstate(over="ignore", invalid="ignore"):
        G = X @ X.T if n <= d else X.T @ X
    _check_finite_gram(G)
    return G


def _logdet_i_plus(G: np.ndarray, c: float) -> float:
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
    return _logdet_i_plus(_gram_small(X), c)


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _check_variant(variant: str) -> str:
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}; got {variant!r}.")
    return variant


def _class_indices(codes: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(counts)[:-1])


def _class_grams(Z: np.ndarray, idx: list[np.ndarray],
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
        out.append(_gram_small(Z[ix]))
    return out


def _batched_logdets(grams: list[np.ndarray], scales: np.ndarray) -> np.ndarray:
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
                res[k] = _logdet_i_plus(grams[k], scales[k])
    return res


def _label_key(v):
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #
def coding_rate(Z, eps: float = 1e-4, center: bool = False) -> float:
    r"""Coding rate :math:`R(Z, \epsilon) = \frac12 \log\det(I_d + Z^T Z / (n \epsilon))`.

    As in the paper's snippet, ``coding_rate`` does **not** centre ``Z`` (pass
    ``center=True`` to subtract the column means first; :func:`transrate`
    centres before calling it).  ``n`` is the number of rows of ``Z``.

    Computed on the smaller of the ``n x n`` and ``d x d`` Gram matrices (they
    share their non-zero eigenvalues, so
    :math:`\det(I_d + c Z^T Z) = \det(I_n + c Z Z^T)`, Sylvester), in float64,
    with a Cholesky log-determinant.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    eps : float, default 1e-4
        Distortion :math:`\epsilon` (the paper's :math:`\epsilon^2`), > 0.
    center : bool, default False
        Subtract the mean row first.

    Returns
    -------
    float
        The coding rate in nats.

    Raises
    ------
    ValueError
        On non-2-D, empty or non-finite ``Z`` or ``eps <= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> round(coding_rate(np.eye(3), eps=1.0), 6)  # 1/2 * 3 * log(1 + 1/3)
    0.431523
    """
    Z = as_features(Z, "Z")
    eps = check_positive(eps, "eps")
    if center:
        Z = Z - Z.mean(axis=0, keepdims=True)
    n = Z.shape[0]
    return 0.5 * _logdet_i_plus(_gram_small(Z), 1.0 / (n * eps))


def _terms_snippet(Z: np.ndarray, codes, counts, eps: float):
    n, d = Z.shape
    Z = Z - Z.mean(axis=0, keepdims=True)
    G = _gram_small(Z)
    R = 0.5 * _logdet_i_plus(G, 1.0 / (n * eps))
    idx = _class_indices(codes, counts)
    grams = _class_grams(Z, idx, G)
    Rk = 0.5 * _batched_logdets(grams, 1.0 / (counts * eps))
    R_given_y = float(Rk.mean())
    return R, R_given_y, Rk


def _l2_rows(Z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.maximum(norms, 1e-12)  # zero rows stay zero (as torch normalize)


def _eigs_small(X: np.ndarray) -> np.ndarray:
    w = np.linalg.eigvalsh(_gram_small(X))
    return np.clip(w, 0.0, None)


def _terms_official(Z: np.ndarray, codes, counts, eps: float):
    n, d = Z.shape
    Z = _l2_rows(Z)
    Z = Z - Z.mean(axis=0, keepdims=True)
    # rows had unit norm: after centring, values at rounding level mean "all equal"
    if np.abs(Z).max() <= 1e-10:
        trace = 0.0
    else:
        Z = _l2_rows(Z)
        lam = _eigs_small(Z) / n                  # eigenvalues of Z^T Z / n
        trace = lam.sum()
    if trace <= 0:
        raise ValueError(
            "All feature rows are identical after centring (Z^T Z = 0); expected "
            "features that vary across samples.")
    rank = int(np.count_nonzero(lam > lam.max() * d * np.finfo(np.float64).eps))
    R = 0.5 * np.log1p(lam / (trace * eps)).sum() / rank
    Rk = np.empty(len(counts))
    for k, ix in enumerate(_class_indices(codes, counts)):
        lam_k = _eigs_small(Z[ix]) / len(ix)
        Rk[k] = 0.5 * np.log1p(lam_k / (trace * eps)).sum() / rank
    R_given_y = float(np.sum(Rk * counts / n))
    return float(R), R_given_y, Rk


def _terms(Z, y, eps, variant):
    _check_variant(variant)
    Z = as_features(Z, "Z")
    eps = check_positive(eps, "eps")
    lab = encode_labels(y, Z.shape[0], "y")
    fn = _terms_snippet if variant == "snippet" else _terms_official
    R, R_given_y, Rk = fn(Z, lab.codes, lab.counts, eps)
    return R, R_given_y, Rk, lab


def transrate(Z, y, eps: float = 1e-4, variant: str = "snippet") -> float:
    r"""TransRate: :math:`R(Z, \epsilon) - R(Z \mid Y, \epsilon)`.

    ``variant="snippet"`` (default), faithful to the code printed in the paper:
    ``Z`` is centred once on its global mean;
    :math:`R(Z) = \frac12\log\det(I + Z^T Z/(n\epsilon))`; class subsets ``Z_k`` are
    taken from that centred ``Z`` **without re-centring** and use their own row
    count ``n_k``; :math:`R(Z \mid Y) = \frac1K \sum_k R(Z_k)` over the ``K``
    classes present.  ``variant="official"``: the authors' full pipeline (see
    :func:`transrate_official`).

    Each log-determinant is taken on the smaller Gram matrix
    (:math:`\det(I_d + cZ^TZ) = \det(I_n + cZZ^T)`) with Cholesky, in float64.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features of the target examples; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Target labels of any values (ints with gaps, strings); encoded with
        ``numpy.unique``.  At least two classes, two samples per class.
    eps : float, default 1e-4
        Distortion :math:`\epsilon`, > 0.
    variant : {"snippet", "official"}
        Which definition to use (see the module docstring).

    Returns
    -------
    float
        TransRate in nats (higher = more transferable).

    Raises
    ------
    ValueError
        On bad features or labels, ``eps <= 0`` or an unknown variant.
    """
    R, R_given_y, _, _ = _terms(Z, y, eps, variant)
    return float(R - R_given_y)


def transrate_official(Z, y, eps: float = 1e-4) -> float:
    r"""TransRate as computed by the authors' full pipeline (their repository).

    1. rows of ``Z`` L2-normalised, the matrix centred on its mean, rows
       L2-normalised again (zero rows stay zero);
    2. :math:`\lambda_i` eigenvalues of :math:`Z^T Z / n`, :math:`\lambda_{k,i}`
       of :math:`Z_k^T Z_k / n_k` (``Z_k`` rows of the processed ``Z``, not
       re-centred), all divided by the trace of :math:`Z^T Z / n`;
    3. :math:`R = \frac{1}{2r}\sum_i \log(1 + \lambda_i/\epsilon)` and
       :math:`R_k = \frac{1}{2r}\sum_i \log(1 + \lambda_{k,i}/\epsilon)` with
       :math:`r = \mathrm{rank}(Z^T Z)` (numpy's ``matrix_rank`` tolerance,
       :math:`\lambda_{max} \cdot d \cdot \mathrm{eps}`);
    4. TransRate :math:`= R - \sum_k \frac{n_k}{n} R_k`.

    The authors tuned ``eps`` per experiment (1e-5 .. 1e-1).  Eigenvalues come
    from the smaller Gram matrix (same non-zero spectrum).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
    y : array-like of shape (n,)
    eps : float, default 1e-4

    Returns
    -------
    float
    """
    return transrate(Z, y, eps=eps, variant="official")


def coding_rate_terms(Z, y, eps: float = 1e-4, variant: str = "snippet") -> dict:
    """Every term of TransRate, for widgets and teaching.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
    y : array-like of shape (n,)
    eps : float, default 1e-4
    variant : {"snippet", "official"}

    Returns
    -------
    dict
        ``"R"``: coding rate of the (centred) features; ``"R_given_y"``: the
        class-conditional term (mean over classes for the snippet, weighted by
        ``n_k/n`` for the official variant); ``"per_class"``: ``{label: R_k}``
        keyed by the original label values; ``"transrate"``: ``R - R_given_y``;
        also ``"counts"`` (``{label: n_k}``), ``"eps"`` and ``"variant"``.
    """
    R, R_given_y, Rk, lab = _terms(Z, y, eps, variant)
    keys = [_label_key(c) for c in lab.classes]
    return {
        "R": float(R),
        "R_given_y": float(R_given_y),
        "per_class": {k: float(v) for k, v in zip(keys, Rk)},
        "transrate": float(R - R_given_y),
        "counts": {k: int(c) for k, c in zip(keys, lab.counts)},
        "eps": float(eps),
        "variant": variant,
    }


def transrate_per_layer(features: Mapping, y, eps: float = 1e-4,
                        variant: str = "snippet"):
    """TransRate of every layer's features, in the dict's order.

    Parameters
    ----------
    features : mapping of str to array-like of shape (n, d_layer)
        E.g. the output of :func:`transfer_nb.extract_features`.
    y : array-like of shape (n,)
    eps : float, default 1e-4
    variant : {"snippet", "official"}

    Returns
    -------
    pandas.Series
        Index: layer names; values: TransRate; name ``"transrate"``.

    Notes
    -----
    The snippet variant grows with the feature dimension (a class with fewer
    samples than ``d`` is rank-capped), which biases comparisons between layers
    of different width; the official variant divides by ``rank(Z)``.
    """
    import pandas as pd

    if not isinstance(features, Mapping) or len(features) == 0:
        raise ValueError(
            "features must be a non-empty dict mapping layer names to (n, d) arrays; "
            f"got {type(features).__name__} of length "
            f"{len(features) if hasattr(features, '__len__') else '?'}.")
    values = {}
    for name, Z in features.items():
        try:
            values[name] = transrate(Z, y, eps=eps, variant=variant)
        except ValueError as exc:
            raise ValueError(f"layer {name!r}: {exc}") from None
    return pd.Series(values, name="transrate", dtype=float)
