r"""SFDA: Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022).

"Not All Models Are Equal: Predicting Model Transferability in a Self-challenging
Fisher Space" (arXiv 2207.03036, code ``TencentARC/SFDA``, ``metrics.py``):

1. **Regularised Fisher space.**  With class priors :math:`\pi_k = n_k / n`, class
   means :math:`\mu_k` and the within-class scatter
   :math:`S_W = \sum_k \pi_k \operatorname{cov}(Z_k)` (population covariances),
   shrink it towards its mean eigenvalue,
   :math:`S_\lambda = (1-\lambda) S_W + \lambda \frac{\operatorname{tr} S_W}{d} I`, with
   the adaptive strength :math:`\lambda = \max(e^{-a\,\sigma_{\max}(S_W)}, 10^{-10})`,
   ``a = 5``.  The classifier of the Fisher space is

   .. math::

       p(k \mid z) = \operatorname{softmax}_k\left(z^T S_\lambda^{-1} \mu_k
           - \tfrac12 \mu_k^T S_\lambda^{-1} \mu_k + \ln \pi_k\right).

2. **Self-challenge (ConfMix).**  Soften those probabilities,
   :math:`q = \operatorname{softmax}(p)`, and move every example towards the mean
   of the *other* classes' means, :math:`\bar\mu_{-k} = \frac1{K-1}\sum_{l\ne k}\mu_l`,
   the less it is confidently classified:
   :math:`z_i \leftarrow q_{y_i}(z_i)\, z_i + (1 - q_{y_i}(z_i))\, \bar\mu_{-y_i}`.

3. Refit step 1 on the mixed features with the same :math:`\lambda`; the score is the
   mean probability of the true class, :math:`\frac1n \sum_i p(y_i \mid z_i)` (no log:
   "ignored in case of instability" in the authors' code).

Defaults and where they come from
---------------------------------
``a = 5`` and the floor ``1e-10`` (``shrinkage = max(np.exp(-5 * largest_evals_w),
1e-10)`` in ``SFDA._solve_eigen``), priors from the class counts, population
covariances (``np.cov(..., bias=1)``), raw features.  The authors estimate
:math:`\sigma_{\max}(S_W)` with three steps of power iteration (``iterative_A``); this
uses the exact largest eigenvalue.

Their code projects onto *all* ``d`` generalised eigenvectors ``E`` of
:math:`(S_B, S_\lambda)` and forms ``means @ E @ E.T``.  Since :math:`E^T S_\lambda E = I`,
:math:`E E^T = S_\lambda^{-1}`: the classifier is exactly the one above, a shrinkage
LDA, computed here by one Cholesky solve (the between-class scatter and the
eigenvectors do not enter the score).

Invariant to the order of the rows, the label names and orthogonal rotations of ``Z``;
not to its scale (:math:`\lambda` depends on :math:`\sigma_{\max}` in absolute units).
Cost: a ``d x d`` scatter, its largest eigenvalue and two ``d x d`` Cholesky
factorisations (``O(n d^2 + d^3)``).
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels

__all__ = ["sfda", "sfda_shrinkage"]


def _class_stats(X: np.ndarray, codes: np.ndarray, counts: np.ndarray):
    """Class means ``(K, d)`` and prior-weighted within-class scatter ``S_W`` ``(d, d)``."""
    means = np.zeros((counts.size, X.shape[1]))
    np.add.at(means, codes, X)
    means /= counts[:, None]
    R = X - means[codes]
    # sum_k (n_k/n) * (1/n_k) R_k^T R_k = R^T R / n
    return means, R.T @ R / X.shape[0]


def sfda_shrinkage(Sw: np.ndarray, a: float = 5.0) -> float:
    """``max(exp(-a * largest eigenvalue of Sw), 1e-10)``: SFDA's adaptive strength."""
    from scipy.linalg import eigh

    d = Sw.shape[0]
    top = float(eigh(Sw, eigvals_only=True, subset_by_index=[d - 1, d - 1])[0])
    return max(float(np.exp(-a * top)), 1e-10)


def _fisher_probs(X: np.ndarray, codes: np.ndarray, counts: np.ndarray, lam: float | None,
                  a: float):
    """Shrinkage-LDA class probabilities of the rows of X; returns (probs, lam, means)."""
    from scipy.linalg import cho_factor, cho_solve, LinAlgError
    from scipy.special import softmax

    means, Sw = _class_stats(X, codes, counts)
    if lam is None:
        lam = sfda_shrinkage(Sw, a)
    d = Sw.shape[0]
    S = (1.0 - lam) * Sw
    S.flat[:: d + 1] += lam * np.trace(Sw) / d
    try:
        W = cho_solve(cho_factor(S, lower=True), means.T).T          # (K, d) = means S^-1
    except LinAlgError:
        W = np.linalg.lstsq(S, means.T, rcond=None)[0].T
    logits = X @ W.T - 0.5 * np.einsum("kd,kd->k", W, means) + np.log(counts / counts.sum())
    return softmax(logits, axis=1), lam, means


def sfda(Z, y, a: float = 5.0) -> float:
    """SFDA score of features ``Z`` for labels ``y`` (in (0, 1], higher = more transferable).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    a : float, default 5.0
        Strength of the adaptive shrinkage ``exp(-a * sigma_max(S_W))``.

    Returns
    -------
    float
        Mean probability of the true class after the self-challenge (module docstring).

    Raises
    ------
    ValueError
        On bad features or labels, ``a`` not a number >= 0, or constant features.
    """
    from scipy.special import softmax

    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    a = check_scalar(a, "a", float, min_val=0)
    if not np.any(np.ptp(F, axis=0) > 0):
        raise ValueError("Z is constant (every row the same): SFDA has no class to separate.")
    codes, counts = lab.codes, lab.counts.astype(np.float64)
    probs, lam, means = _fisher_probs(F, codes, counts, None, a)
    q = softmax(probs, axis=1)[np.arange(F.shape[0]), codes][:, None]   # softened, own class
    K = lab.n_classes
    others = (means.sum(axis=0) - means) / (K - 1)                      # mean of other classes
    mixed = q * F + (1.0 - q) * others[codes]
    probs, _, _ = _fisher_probs(mixed, codes, counts, lam, a)
    return float(np.mean(probs[np.arange(F.shape[0]), codes]))
