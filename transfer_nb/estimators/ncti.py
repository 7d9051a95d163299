r"""NCTI: Neural Collapse Transferability Index (Wang et al., ICCV 2023).

"How Far Pre-trained Models Are from Neural Collapse on the Target Dataset Informs
their Transferability" (code ``BUserName/NCTI``, ``metrics.py: NCTI_Score`` and
``evaluate_metric_group1_cpu.py``).  A fine-tuned model's target features collapse:
small within-class variability, class means forming a simplex ETF (SELI geometry for
imbalanced classes), a nearest-centre classifier.  NCTI scores how close the
pre-trained features :math:`H` already are, with three terms:

* :math:`S_{seli} = \|\tilde H\|_*`: nuclear norm of the centred features (the paper:
  a higher rank is closer to the SELI geometry);
* :math:`S_{ncc} = \frac1n \sum_i p(y_i \mid h_i)`: mean probability of the true class
  under the Gaussian (LDA) classifier :math:`\log p(y = c \mid h) = -\tfrac12 (h -
  \mu_c)^T \Sigma^{-1} (h - \mu_c) + \log \pi_c + \text{const}`;
* :math:`S_{vc} = -\sum_c \|Z_c\|_*`: within-class variability, the nuclear norms of
  each class's rows of the classifier's outputs :math:`Z`.

How the authors' code computes them (this module follows it):

1. PCA of the features to 64 components (here: ``min(64, rank)``; scikit-learn's
   ``PCA(64)`` raises below 64 samples or dimensions).
2. Shrinkage :math:`\lambda = \max(e^{-v}, 10^{-10})`, :math:`v` the summed variance of
   the top 32 components (``explained_variance_``, ``n - 1`` in the denominator).
3. LDA on the PCA scores: with :math:`\lambda > 10^{-10}` scikit-learn's ``eigen``
   solver with that shrinkage (:math:`\Sigma = (1-\lambda) S_W + \lambda
   \frac{\operatorname{tr} S_W}{d} I`, :math:`S_W` the prior-weighted class covariances),
   else its ``svd`` solver without shrinkage: the same LDA with :math:`\lambda = 0`
   (:math:`\Sigma = S_W`, as the scikit-learn 1.9.1 used to check this computes it;
   a release whose ``svd`` solver divides the within scatter by ``n - K`` gives an
   :math:`S_{seli}` smaller by a factor :math:`\sqrt{(n-K)/n}` and slightly flatter
   probabilities).
4. :math:`\tilde H`: the LDA projection onto its ``min(K - 1, d)`` discriminant
   directions (generalised eigenvectors normalised to :math:`E^T \Sigma E = I`), centred:
   the nuclear norm is taken there, not on the raw features.
5. :math:`Z`: the LDA's predicted *probabilities* (the paper says logits);
   :math:`S_{ncc}` their mean on the true class (no log).
6. The within-class term enters as :math:`-\log \sum_c \|Z_c\|_*` (the code takes the
   log of the sum; the paper has no log).

Combining.  The authors min-max normalise each term across the models being ranked and
return ``seli + ncc - vc_raw`` (``vc_raw = log sum_c ||Z_c||_*``); since the min-max of
:math:`-x` is 1 minus that of :math:`x`, this is :math:`\hat S_{seli} + \hat S_{ncc} +
\hat S_{vc} - 1`.  :func:`ncti_across_models` returns exactly that.  A single model has
nothing to normalise against: :func:`ncti` returns the un-normalised sum
:math:`S_{seli} + S_{ncc} + S_{vc}`, which the nuclear norm dominates (it grows like
:math:`\sqrt n` and with the spread of the classes in within-class units); compare
models with it on the same target and sample only, and prefer
:func:`ncti_across_models` to rank a zoo the authors' way.

Invariant to the order of the rows, the label names and orthogonal rotations of the
features; not to their scale (the shrinkage depends on the absolute variance).
Cost: a thin SVD of the ``n x d`` features and ``64 x 64`` linear algebra.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels
from transfer_nb.estimators._across_models import minmax_combine
from transfer_nb.estimators._pca import pca_scores

__all__ = ["ncti", "ncti_terms", "ncti_across_models", "NCTI_WEIGHTS"]

#: weights of the authors' combination (after min-max normalisation across models)
NCTI_WEIGHTS = {"seli": 1.0, "ncc": 1.0, "vc": 1.0}
_FLOOR = 1e-10


def _lda_svd(X: np.ndarray, codes: np.ndarray, counts: np.ndarray, tol: float = 1e-4):
    """scikit-learn's ``solver="svd"`` LDA (the authors' choice at the shrinkage floor):
    whitening by the SVD of the scaled within-class residuals, directions below ``tol``
    dropped, so a singular within-class scatter (more dimensions than n - K) is fine."""
    from scipy.special import softmax

    n, d = X.shape
    K = counts.size
    priors = counts / n
    means = np.zeros((K, d))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    R = X - means[codes]
    xbar = priors @ means
    std = R.std(axis=0)
    std[std == 0] = 1.0
    # residuals scaled by 1/n, as the scikit-learn the authors' numbers are checked against
    # here (1.9); older releases divide by n - K, which scales the coordinates by
    # sqrt(n / (n - K)) (see the module docstring)
    _, S, Vt = np.linalg.svd(np.sqrt(1.0 / n) * (R / std), full_matrices=False)
    rank = int(np.sum(S > tol))
    scalings = (Vt[:rank] / std).T / S[:rank]
    B = (np.sqrt(n * priors / max(K - 1, 1)) * (means - xbar).T).T @ scalings
    _, S2, Vt2 = np.linalg.svd(B, full_matrices=False)
    rank2 = int(np.sum(S2 > tol * S2[0]))
    scalings = scalings @ Vt2.T[:, :rank2]
    coef = (means - xbar) @ scalings
    intercept = -0.5 * np.sum(coef ** 2, axis=1) + np.log(priors)
    W = coef @ scalings.T
    intercept = intercept - xbar @ W.T
    H = ((X - xbar) @ scalings)[:, :min(K - 1, d)]
    return H - H.mean(axis=0), softmax(X @ W.T + intercept, axis=1)


def _lda(X: np.ndarray, codes: np.ndarray, counts: np.ndarray, lam: float):
    """Discriminant coordinates (n, r) and class probabilities (n, K) of LDA on X."""
    from scipy.linalg import eigh
    from scipy.special import softmax

    if lam <= _FLOOR:                                  # at the floor: sklearn's svd solver
        return _lda_svd(X, codes, counts)
    n, d = X.shape
    K = counts.size
    means = np.zeros((K, d))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    R = X - means[codes]
    Sw = R.T @ R / n                                   # sum_k pi_k cov_k (biased)
    Xc = X - X.mean(axis=0)
    St = Xc.T @ Xc / n
    lam = 0.0 if lam <= _FLOOR else lam               # at the floor: sklearn's svd solver
    shrink = np.eye(d) * lam / d                       # else: eigen solver, shrinkage
    S = (1.0 - lam) * Sw + shrink * np.trace(Sw)
    A = (1.0 - lam) * St + shrink * np.trace(St) - S
    S = (S + S.T) / 2
    evals, E = eigh((A + A.T) / 2, S)
    r = min(K - 1, d)
    H = X @ E[:, np.argsort(evals)[::-1][:r]]
    W = np.linalg.solve(S, means.T).T                  # means S^-1
    logits = X @ W.T - 0.5 * np.einsum("kd,kd->k", W, means) + np.log(counts / n)
    return H - H.mean(axis=0), softmax(logits, axis=1)


def ncti_terms(Z, y, n_components: int = 64, n_shrink: int = 32) -> dict:
    """The three NCTI terms of one model: ``{"seli", "ncc", "vc"}`` (higher = better).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Target features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    n_components : int, default 64
        PCA components kept (capped at the rank of the centred features).
    n_shrink : int, default 32
        Top components whose summed variance sets the shrinkage ``exp(-v)``.

    Returns
    -------
    dict
        ``seli`` (nuclear norm of the centred discriminant coordinates), ``ncc`` (mean
        true-class probability), ``vc`` (``-log sum_c ||P_c||_*``).

    Raises
    ------
    ValueError
        On bad features or labels, constant features, or fewer samples than classes + 1.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    n_components = check_scalar(n_components, "n_components", int, min_val=1)
    n_shrink = check_scalar(n_shrink, "n_shrink", int, min_val=1)
    n, K = F.shape[0], lab.n_classes
    if n <= K:
        raise ValueError(f"NCTI needs more samples than classes; got {n} samples for "
                         f"{K} classes.")
    X = pca_scores(F, n_components)
    if X.shape[1] == 0:
        raise ValueError("Z is constant (every row the same): NCTI has no direction "
                         "to score.")
    var = np.sum(X ** 2, axis=0) / (n - 1)             # explained variance, descending
    lam = max(float(np.exp(-var[:n_shrink].sum())), _FLOOR)
    counts = lab.counts.astype(np.float64)
    H, P = _lda(X, lab.codes, counts, lam)
    vc = sum(np.linalg.norm(P[lab.codes == c], ord="nuc") for c in range(K))
    return {"seli": float(np.linalg.norm(H, ord="nuc")),
            "ncc": float(np.mean(P[np.arange(n), lab.codes])),
            "vc": float(-np.log(vc))}


def ncti(Z, y, n_components: int = 64, n_shrink: int = 32) -> float:
    """NCTI of one model, un-normalised: ``seli + ncc + vc`` (higher = more transferable).

    Parameters
    ----------
    Z, y, n_components, n_shrink
        As in :func:`ncti_terms`.

    Returns
    -------
    float
        The sum of the three terms of :func:`ncti_terms`.  The authors' score of a set
        of models (min-max per term across the set) is :func:`ncti_across_models`.

    Raises
    ------
    ValueError
        As :func:`ncti_terms`.
    """
    t = ncti_terms(Z, y, n_components=n_components, n_shrink=n_shrink)
    return t["seli"] + t["ncc"] + t["vc"]


def ncti_across_models(terms):
    """The authors' NCTI over a set of models: each term min-max normalised across them.

    Parameters
    ----------
    terms : mapping or pandas.DataFrame
        ``model -> ncti_terms(Z_model, y)`` (or a table with columns ``seli``, ``ncc``,
        ``vc``).

    Returns
    -------
    pandas.Series
        ``minmax(seli) + minmax(ncc) - minmax(log sum_c ||P_c||_*)`` per model, the
        value of the authors' ``evaluate_metric_group1_cpu.py`` (in ``[-1, 2]``).
    """
    return minmax_combine(terms, NCTI_WEIGHTS) - 1.0
