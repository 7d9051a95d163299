r"""Coding rate :math:`R(Z, \epsilon)`, :math:`R(Z \mid Y)` and TransRate.

TransRate (Huang et al., "Frustratingly Easy Transferability Estimation",
ICML 2022, arXiv 2106.09362) measures the mutual information between features
and labels with the coding rate of Ma et al. (2007)::

    R(Z, eps)    = 1/2 logdet(I_d + Z^T Z / (n eps))          Z of shape (n, d)
    TransRate    = R(Z, eps) - sum_k w_k R(Z_k, eps)

The paper and the authors' code compute it in three different ways; all three are
offered, named for what they are (``variant=``):

``"snippet"`` (default): the code printed with the paper.

1. ``Z`` is centred **once**, on the global mean;
2. the class subsets ``Z_k`` are rows of that globally centred ``Z``; they are
   **not** re-centred on their class mean (the coding rate is not invariant to
   centring: the class term also counts the offset of the class mean, so with two
   balanced classes ``R(Z_k) ~ R(Z)`` and the score sits near 0 whatever the
   separation);
3. ``n`` in each term is the number of rows of the matrix in that term (``n_k``
   for class ``k``); every class weighs ``w_k = 1/K`` over the ``K`` classes
   present (labels are encoded first, so gaps and strings are fine).

*Rank cap.*  Each non-zero eigenvalue :math:`\lambda` of :math:`Z^TZ/n` adds
:math:`\frac12\log(1 + \lambda/\epsilon)` to ``R``, about
:math:`\frac12\ln(1/\epsilon)` plus a term in :math:`\log\lambda`.  A class with
``n_k < d`` rows has rank at most ``n_k``, so every direction counted in ``R(Z)``
but not in ``R(Z_k)`` adds about :math:`\frac12\ln(1/\epsilon)` (4.6 nats at
``eps = 1e-4``) to the score: with few samples per class the snippet mostly counts
dimensions, :math:`\approx \frac12(\mathrm{rank}\,Z - \mathrm{rank}\,Z_k)\ln(1/\epsilon)`,
it grows with the feature width and changes when the features are rescaled.

``"layerwise"``: the authors' layer-selection code (``layer_selection.py`` with
the eigenvalues of ``generate_transrate/transrate.py``; formerly called
``"official"`` here).  Rows L2-normalised, centred, L2-normalised again;
:math:`\lambda_i` the eigenvalues of :math:`Z^TZ/n`, :math:`\lambda_{k,i}` those of
:math:`Z_k^TZ_k/n_k` (rows of the processed ``Z``, not re-centred), all divided by
the trace of the global matrix; each term
:math:`\frac{1}{2r}\sum_i\log(1 + \lambda_i/\epsilon)` with
:math:`r = \mathrm{rank}(Z)`; class terms weighted ``w_k = n_k / n``.  Scale
invariant, and the division by the rank removes most of the width bias.

``"projected"``: the authors' model-selection code
(``extra_result_model_selection.py`` with ``use_Z_proj=True``, behind every
model-selection number in the paper), on the raw features:
``covf`` the centred feature covariance (``1/n``), ``covg`` the between-class
scatter :math:`\sum_k n_k(\mu_k-\mu)(\mu_k-\mu)^T`,
:math:`P = \mathrm{pinv}(\mathrm{covf})\,\mathrm{covg}/n` (rank at most ``K - 1``);
the spectra of ``covf P`` (which is ``covg / n``) and of
:math:`S_k P / n_k` with :math:`S_k` the scatter of class ``k`` about its own mean;
then the same :math:`\frac{1}{2r}\sum\log(1+\lambda/\epsilon)` and ``n_k / n``
weights as ``"layerwise"``, ``r`` the rank of ``covf P`` (at most ``K - 1``).
``normalize_eigenvalues=True`` divides every spectrum by the trace of ``covf P``
as ``"layerwise"`` does (the authors did so for Caltech and SUN397, not for
CIFAR-100); the default ``False`` leaves the score in the units of the features
(squared): it is then **not** scale invariant.  :math:`S_k P` is not symmetric;
like the authors (``numpy.linalg.svd`` in ``eigens_and_rank``) its *singular
values* are used (for ``covf P`` they are its eigenvalues).  The authors chose
``eps`` per target (1.5e-2 for CIFAR-100, 1e-2 .. 2e-2 elsewhere), on the
answer: a tuning pitfall, not a default.  With ``n <= d + 1`` (wide features, few
samples) the centred features span all ``n - 1`` directions, whitening makes the
within-class scatter orthogonal to the class means and every class term is
exactly 0: the score is then the coding rate of the class means alone (the same
degeneracy as the H-score's).

Speed
-----
:math:`Z^T Z` (d x d) and :math:`Z Z^T` (n x n) share their non-zero
eigenvalues, so by Sylvester's determinant identity

.. math::  \det(I_d + c\, Z^T Z) = \det(I_n + c\, Z Z^T),

and each snippet term is computed on the *smaller* Gram matrix, in float64, with a
Cholesky factorisation ``M = L L^T`` (``logdet M = 2 sum log diag L``).  The
matrix is ``I + (PSD)``, so it is symmetric positive definite with every
eigenvalue >= 1 and Cholesky is well conditioned; if it nevertheless fails
(non-finite entries from overflow), the code warns with the reason and falls back
to ``eigvalsh``.  When ``n <= d`` one n x n Gram matrix of the centred ``Z``
serves every class (class Gram matrices are its diagonal blocks), otherwise each
class uses its own smaller Gram matrix; equal-sized class matrices are factorised
in one batched call.  ``"layerwise"`` takes ``eigvalsh`` of the same smaller Gram
matrices.  ``"projected"`` diagonalises the smaller Gram matrix of the centred
features once, works in the coordinates of its ``r`` non-null directions (where
``covf`` is diagonal), and takes the singular values of ``r x K`` products: no
``d x d`` matrix is formed, inverted or decomposed.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from transfer_nb._validation import as_features, check_positive, encode_labels
from transfer_nb.gram import (batched_logdets, class_grams, class_indices, gram_small,
                              logdet_i_plus, logdet_identity_plus_gram, pow2_scale)

__all__ = [
    "coding_rate",
    "transrate",
    "transrate_official",
    "coding_rate_terms",
    "transrate_per_layer",
    "logdet_identity_plus_gram",
]

_VARIANTS = ("snippet", "layerwise", "projected")
_ALIASES = {"official": "layerwise"}  # deprecated names -> current names
# default of ``normalize_eigenvalues`` per variant (the authors' settings)
_NORMALIZE_DEFAULT = {"layerwise": True, "projected": False}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _check_variant(variant: str, stacklevel: int = 4) -> str:
    """The canonical variant name; ``"official"`` warns and maps to ``"layerwise"``."""
    if isinstance(variant, str) and variant in _ALIASES:
        new = _ALIASES[variant]
        warnings.warn(
            f"variant={variant!r} is deprecated and will be removed: it is the authors' "
            f"layer-selection pipeline, now called variant={new!r}.",
            FutureWarning, stacklevel=stacklevel)
        return new
    if not isinstance(variant, str) or variant not in _VARIANTS:
        choices = ", ".join(repr(v) for v in _VARIANTS)
        raise ValueError(f"variant must be one of {choices}; got {variant!r}.")
    return variant


def _check_normalize(normalize, variant: str) -> bool | None:
    if normalize is None:
        return _NORMALIZE_DEFAULT.get(variant)
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError("normalize_eigenvalues must be True, False or None; got "
                         f"{normalize!r}.")
    if variant == "snippet":
        raise ValueError(
            "normalize_eigenvalues applies to variant='layerwise' or 'projected' only "
            "(the snippet uses log-determinants, no eigenvalue normalisation); got "
            f"normalize_eigenvalues={bool(normalize)} with variant='snippet'.")
    return bool(normalize)


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
    return 0.5 * logdet_i_plus(gram_small(Z), 1.0 / (n * eps))


def _terms_snippet(Z: np.ndarray, codes, counts, eps: float):
    n, d = Z.shape
    Z = Z - Z.mean(axis=0, keepdims=True)
    G = gram_small(Z)
    R = 0.5 * logdet_i_plus(G, 1.0 / (n * eps))
    idx = class_indices(codes, counts)
    grams = class_grams(Z, idx, G)
    Rk = 0.5 * batched_logdets(grams, 1.0 / (counts * eps))
    R_given_y = float(Rk.mean())
    return R, R_given_y, Rk


def _l2_rows(Z: np.ndarray, floor: float | None = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm; zero rows stay zero (as torch ``normalize``).

    ``floor=None``: scale-free -- every non-zero row gets unit norm however small or
    large it is (each row is first divided by a power of two near its largest entry,
    so its norm neither overflows nor underflows).  ``floor=1e-12``: torch's floor on
    the norm, meaningful only for rows already of unit scale.
    """
    if floor is None:
        Z = Z / pow2_scale(Z, axis=1)
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        return Z / np.where(norms > 0, norms, 1.0)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.maximum(norms, floor)


def _numerical_rank(lam: np.ndarray, d: int) -> int:
    """``numpy.linalg.matrix_rank`` of a d x d PSD matrix with spectrum ``lam``."""
    top = lam.max() if lam.size else 0.0
    return int(np.count_nonzero(lam > top * d * np.finfo(np.float64).eps))


def _log_rate(lam: np.ndarray, eps: float, rank: int) -> float:
    """``1/(2 rank) * sum log(1 + lam / eps)``: the authors' normalised term."""
    return float(0.5 * np.log1p(np.clip(lam, 0.0, None) / eps).sum() / rank)


def _terms_layerwise(Z: np.ndarray, codes, counts, eps: float, normalize: bool):
    n, d = Z.shape
    # scale-free first normalisation: the pipeline is invariant to the scale of the
    # features, so rows of 1e-30 or 1e200 must not hit torch's 1e-12 floor on the norm
    # (which made tiny rows "all identical") or overflow the norm
    Z = _l2_rows(Z, floor=None)
    Z = Z - Z.mean(axis=0, keepdims=True)
    # rows had unit norm: after centring, values at rounding level mean "all equal"
    if np.abs(Z).max() <= 1e-10:
        raise ValueError(
            "All feature rows are identical after centring (Z^T Z = 0); expected "
            "features that vary across samples.")
    Z = _l2_rows(Z)
    G = gram_small(Z)
    lam = np.clip(np.linalg.eigvalsh(G), 0.0, None) / n      # eigenvalues of Z^T Z / n
    scale = lam.sum() if normalize else 1.0
    rank = _numerical_rank(lam, d)
    R = _log_rate(lam / scale, eps, rank)
    idx = class_indices(codes, counts)
    Rk = np.empty(len(counts))
    for k, G_k in enumerate(class_grams(Z, idx, G)):
        lam_k = np.linalg.eigvalsh(G_k) / counts[k]           # of Z_k^T Z_k / n_k
        Rk[k] = _log_rate(lam_k / scale, eps, rank)
    return R, float(np.sum(Rk * counts / n)), Rk, rank


def _terms_projected(Z: np.ndarray, codes, counts, eps: float, normalize: bool):
    n, d = Z.shape
    K = len(counts)
    X = Z - Z.mean(axis=0, keepdims=True)
    # coordinates of the centred rows in the eigenbasis of covf, from the smaller Gram
    G = gram_small(X)
    w, vec = np.linalg.eigh(G)                               # ascending
    top = w[-1] if w.size else 0.0
    if top <= 0:
        raise ValueError("Z is constant across samples (zero covariance); expected "
                         "features that vary.")
    # numerical rank of covf (matrix_rank's tolerance); centring removes one
    # direction, so at most min(n - 1, d) are kept
    keep = w > top * max(n, d) * np.finfo(np.float64).eps
    keep[: max(0, len(w) - min(n - 1, d))] = False
    w, vec = w[keep], vec[:, keep]
    Y = X @ vec if n > d else vec * np.sqrt(w)               # (n, r): covf = diag(w)/n
    # class means (the global mean is 0) and the between-class factor M:
    # covg = M^T M with rows sqrt(n_k) mu_k
    means = np.zeros((K, Y.shape[1]))
    np.add.at(means, codes, Y)
    means /= counts[:, None]
    M = np.sqrt(counts)[:, None] * means                     # (K, r)
    # covf P = covg / n: its spectrum is that of M M^T / n (K x K)
    lam = np.clip(np.linalg.eigvalsh(M @ M.T), 0.0, None) / n
    # covg / n <= covf (Loewner order): compare with covf's top eigenvalue top / n
    if lam.max() <= top / n * max(n, d) * np.finfo(np.float64).eps:
        raise ValueError("Every class has the same mean (between-class scatter is 0): "
                         "the projected TransRate is undefined; expected classes whose "
                         "features differ.")
    # sum_k sqrt(n_k) M_k = 0 (Y is centred): rank <= K - 1 exactly; the rounding
    # residue of that null direction must not count in the rank
    rank = min(_numerical_rank(lam, max(n, d)), K - 1, Y.shape[1])
    scale = lam.sum() if normalize else 1.0
    R = _log_rate(lam / scale, eps, rank)
    # S_k P / n_k = Y_k^T Y_k diag(1/w) M^T M / n_k (Y_k re-centred on its class mean);
    # with M^T = Q R_M its singular values are those of (Y_k^T Y_k diag(1/w) M^T) R_M^T
    _, RM = np.linalg.qr(M.T)                                # M = R_M^T Q^T
    MD = M / w                                               # M diag(1/w)
    Rk = np.empty(K)
    for k, ix in enumerate(class_indices(codes, counts)):
        Yk = Y[ix] - means[k]
        C = Yk.T @ (Yk @ MD.T)                               # (r, K)
        sv = np.linalg.svd(C @ RM.T, compute_uv=False) / counts[k]
        Rk[k] = _log_rate(sv / scale, eps, rank)
    return R, float(np.sum(Rk * counts / n)), Rk, rank


def _terms(Z, y, eps, variant, normalize=None):
    variant = _check_variant(variant)
    normalize = _check_normalize(normalize, variant)
    Z = as_features(Z, "Z")
    eps = check_positive(eps, "eps")
    lab = encode_labels(y, Z.shape[0], "y")
    if variant == "snippet":
        R, R_given_y, Rk = _terms_snippet(Z, lab.codes, lab.counts, eps)
        rank = None
    else:
        fn = _terms_layerwise if variant == "layerwise" else _terms_projected
        R, R_given_y, Rk, rank = fn(Z, lab.codes, lab.counts, eps, normalize)
    return R, R_given_y, Rk, lab, variant, normalize, rank


def transrate(Z, y, eps: float = 1e-4, variant: str = "snippet",
              normalize_eigenvalues: bool | None = None) -> float:
    r"""TransRate: :math:`R(Z, \epsilon) - R(Z \mid Y, \epsilon)`, in one of three variants.

    ``variant="snippet"`` (default), the code printed in the paper: ``Z`` centred
    once; :math:`R(Z) = \frac12\log\det(I + Z^T Z/(n\epsilon))`; class subsets
    ``Z_k`` of that centred ``Z`` **not re-centred**, each with its own ``n_k``;
    :math:`R(Z \mid Y) = \frac1K \sum_k R(Z_k)`.  With fewer samples per class
    than dimensions it mostly counts dimensions (each direction in ``R(Z)`` but
    not in ``R(Z_k)`` adds about :math:`\frac12\ln(1/\epsilon)`).

    ``variant="layerwise"``: the authors' layer-selection pipeline (rows
    L2-normalised, centred, L2-normalised; trace-normalised eigenvalues; terms
    divided by ``rank(Z)``; classes weighted ``n_k / n``).

    ``variant="projected"``: the authors' model-selection pipeline (features
    projected by :math:`\mathrm{pinv}(\mathrm{cov}\,f)\,\mathrm{cov}_g / n`, rank
    at most ``K - 1``; class scatter re-centred; same normalisation as
    ``"layerwise"``).  See the module docstring for the exact definitions.

    ``variant="official"`` is a deprecated alias of ``"layerwise"`` (a
    ``FutureWarning`` says so).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features of the target examples; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Target labels of any values (ints with gaps, strings); encoded with
        ``numpy.unique``.  At least two classes, two samples per class.
    eps : float, default 1e-4
        Distortion :math:`\epsilon`, > 0.  The authors tuned it per experiment
        (``"projected"``: 1e-2 .. 2e-2; ``"layerwise"``: 1e-5 .. 1e-2).
    variant : {"snippet", "layerwise", "projected"}
        Which computation (see above).
    normalize_eigenvalues : bool, optional
        ``"layerwise"`` and ``"projected"`` only: divide every spectrum by the
        trace of the global one.  Default: ``True`` for ``"layerwise"`` (as in
        ``layer_selection.py``), ``False`` for ``"projected"`` (the authors'
        CIFAR-100 setting; they used ``True`` for Caltech and SUN397).  Passing
        it with ``"snippet"`` is an error.

    Returns
    -------
    float
        TransRate in nats (higher = more transferable).

    Raises
    ------
    ValueError
        On bad features or labels, ``eps <= 0``, an unknown variant, constant
        features, or (``"projected"``) classes that all share one mean.
    """
    R, R_given_y, *_ = _terms(Z, y, eps, variant, normalize_eigenvalues)
    return float(R - R_given_y)


def transrate_official(Z, y, eps: float = 1e-4) -> float:
    """Deprecated alias of ``transrate(Z, y, eps, variant="layerwise")``.

    The authors' layer-selection pipeline, formerly called "official" here; the
    paper's model-selection numbers come from ``variant="projected"`` instead, so
    the name was misleading.  Emits a ``FutureWarning``.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
    y : array-like of shape (n,)
    eps : float, default 1e-4

    Returns
    -------
    float
    """
    warnings.warn(
        "transrate_official is deprecated and will be removed: use "
        "transrate(Z, y, eps, variant='layerwise') (the authors' layer-selection "
        "pipeline) or variant='projected' (their model-selection pipeline).",
        FutureWarning, stacklevel=2)
    return transrate(Z, y, eps=eps, variant="layerwise")


def coding_rate_terms(Z, y, eps: float = 1e-4, variant: str = "snippet",
                      normalize_eigenvalues: bool | None = None) -> dict:
    """Every term of TransRate, for widgets and teaching.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
    y : array-like of shape (n,)
    eps : float, default 1e-4
    variant : {"snippet", "layerwise", "projected"}
        As in :func:`transrate` (``"official"``: deprecated alias of ``"layerwise"``).
    normalize_eigenvalues : bool, optional
        As in :func:`transrate`.

    Returns
    -------
    dict
        ``"R"``: coding rate of the (processed) features; ``"R_given_y"``: the
        class-conditional term (mean over classes for the snippet, weighted by
        ``n_k/n`` otherwise); ``"per_class"``: ``{label: R_k}`` keyed by the
        original label values; ``"transrate"``: ``R - R_given_y``; also
        ``"counts"`` (``{label: n_k}``), ``"eps"``, ``"variant"`` (the canonical
        name), ``"normalize_eigenvalues"`` and ``"rank"`` (the rank every term is
        divided by; ``None`` for the snippet).
    """
    R, R_given_y, Rk, lab, variant, normalize, rank = _terms(
        Z, y, eps, variant, normalize_eigenvalues)
    keys = [_label_key(c) for c in lab.classes]
    return {
        "R": float(R),
        "R_given_y": float(R_given_y),
        "per_class": {k: float(v) for k, v in zip(keys, Rk)},
        "transrate": float(R - R_given_y),
        "counts": {k: int(c) for k, c in zip(keys, lab.counts)},
        "eps": float(eps),
        "variant": variant,
        "normalize_eigenvalues": normalize,
        "rank": rank,
    }


def transrate_per_layer(features: Mapping, y, eps: float = 1e-4,
                        variant: str = "snippet",
                        normalize_eigenvalues: bool | None = None):
    """TransRate of every layer's features, in the dict's order.

    Parameters
    ----------
    features : mapping of str to array-like of shape (n, d_layer)
        E.g. the output of :func:`transfer_nb.extract_features`.
    y : array-like of shape (n,)
    eps : float, default 1e-4
    variant : {"snippet", "layerwise", "projected"}
        As in :func:`transrate` (``"official"``: deprecated alias of ``"layerwise"``).
    normalize_eigenvalues : bool, optional
        As in :func:`transrate`.

    Returns
    -------
    pandas.Series
        Index: layer names; values: TransRate; name ``"transrate"``.

    Notes
    -----
    The snippet variant grows with the feature dimension (a class with fewer
    samples than ``d`` is rank-capped), which biases comparisons between layers
    of different width; ``"layerwise"`` (the authors' choice for layer
    selection) divides by ``rank(Z)`` and is scale invariant.
    """
    import pandas as pd

    if not isinstance(features, Mapping) or len(features) == 0:
        raise ValueError(
            "features must be a non-empty dict mapping layer names to (n, d) arrays; "
            f"got {type(features).__name__} of length "
            f"{len(features) if hasattr(features, '__len__') else '?'}.")
    variant = _check_variant(variant, stacklevel=3)   # warn once, not per layer
    _check_normalize(normalize_eigenvalues, variant)
    values = {}
    for name, Z in features.items():
        try:
            values[name] = transrate(Z, y, eps=eps, variant=variant,
                                     normalize_eigenvalues=normalize_eigenvalues)
        except ValueError as exc:
            raise ValueError(f"layer {name!r}: {exc}") from None
    return pd.Series(values, name="transrate", dtype=float)
