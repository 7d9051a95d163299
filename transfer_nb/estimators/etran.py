r"""ETran: energy-based transferability estimation (Gholami et al., ICCV 2023).

"ETran: Energy-Based Transferability Estimation" (arXiv 2308.02027, code
``mgholamikn/ETran``, ``metrics.py``, ``evaluate_metric.py``, ``tw.py``).  Three terms
on the target features :math:`Z` (rows :math:`z_i`, labels :math:`y_i`):

1. **Energy score** (is the target in-distribution for the source model?).  The free
   energy of an example is :math:`E(z) = -\log\sum_j e^{z_j}`; the term is the mean of
   :math:`-E = \operatorname{logsumexp}(z_i)` over the fraction ``energy_fraction`` of
   examples with the *lowest* values (the most out-of-distribution ones):

   .. math:: S_{en} = \frac1m \sum_{i \in \text{lowest } m} \log\sum_j e^{z_{ij}},
       \qquad m = \max(1, \lfloor 0.005\, n \rfloor).

   **Which matrix.**  The energy of Liu et al. (2020) is taken over a classifier's
   logits.  The authors' code computes it over the *penultimate features* (the input of
   the source classifier, captured by a forward hook on ``fc`` and passed to
   ``Energy_Score``), so that is the default here: ``etran(Z, y)`` reads only features,
   like LogME.  Pass ``logits=`` (the source head's outputs on the target examples,
   the same outputs that LEEP reads through ``softmax`` and NCE through ``argmax``)
   to take the energy over the logits instead.  Probabilities cannot be used: the
   log-sum-exp of log-probabilities is 0 for every example.

2. **LDA classification score**: the mean probability of the true class under a
   linear discriminant classifier fitted on :math:`Z`,
   :math:`S_{cls} = \frac1n\sum_i p(y_i \mid z_i)`.  ``lda="fisher"`` (default) is the
   LDA the paper describes: the shrinkage LDA of SFDA's first step (class covariance
   shrunk by :math:`\lambda = \max(e^{-5\sigma_{\max}(S_W)}, 10^{-10})`, see
   :mod:`transfer_nb.estimators.sfda`).  ``lda="public_code"`` is what the authors'
   ``LDA`` class computes: it calls ``np.linalg.eigh`` on the *non-symmetric*
   :math:`S_\lambda^{-1} S_B`, which reads one triangle only and returns an orthonormal
   basis ``E``, so ``means @ E @ E.T = means``: the classifier becomes
   :math:`\operatorname{softmax}_k(z^T\mu_k - \tfrac12\|\mu_k\|^2 + \ln\pi_k)`, an
   identity-covariance nearest-mean rule (shrinkage and scatter drop out).  The
   published numbers come from that code.

3. **SVD regression score** (``regression=True``): the negative mean squared error of
   the least-squares fit of the one-hot labels :math:`Y` from :math:`Z` through the
   SVD (pseudo-inverse), :math:`S_{reg} = -\frac{1}{nK}\|Y - Z Z^+ Y\|_F^2`.  The
   authors' ``_solve_eigen2`` fits their regression targets (box coordinates in
   detection) this way, without an intercept; their classification pipeline does not
   use it, so it is off by default.  Degenerate when ``n <= d`` and :math:`Z` has full
   row rank: the fit is exact and the term is 0 for every model.

Combining.  :func:`etran` returns the plain sum :math:`S_{en} + S_{cls}` (
:math:`+ S_{reg}`), a score of one model.  The authors instead rescale each term to
``[0, 1]`` over the models being ranked and weight them, ``0.15 * energy + 0.85 *
lda`` (``tw.py``, classification); :func:`etran_across_models` does that for a set of
models.  The plain sum is in the units of the features (the energy term, typically
several units, outweighs the probability in ``[0, 1]``), so for ranking a zoo prefer
:func:`etran_across_models`.

Defaults and where they come from: ``energy_fraction = 0.005`` (``Energy_Score(X,
0.5, 'bot')`` keeps ``int(0.5 * 10) * n // 1000`` examples, the lowest; with fewer
than 200 examples that is none and their mean is NaN: here at least one is kept),
``a = 5`` and the floor ``1e-10`` of the shrinkage (their ``LDA`` class, as SFDA).

Invariant to the order of the rows and the label names.  The energy term depends on
the coordinates and scale of the features (no rotation or scale invariance).
Cost: one ``n x d`` log-sum-exp, a ``d x d`` scatter and Cholesky solve; with
``regression=True`` a least-squares solve (``O(n d min(n, d))``).
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import (as_features, check_fraction, check_same_length,
                                     check_scalar, encode_labels)
from transfer_nb.estimators._across_models import minmax_combine
from transfer_nb.estimators.sfda import _fisher_probs

__all__ = ["etran", "etran_terms", "etran_across_models", "ETRAN_LDA", "ETRAN_WEIGHTS"]

#: classifiers of the classification term
ETRAN_LDA = ("fisher", "public_code")
#: the authors' weights after min-max normalisation across models (``tw.py``)
ETRAN_WEIGHTS = {"energy": 0.15, "classification": 0.85}


def _energy(M: np.ndarray, fraction: float) -> float:
    from scipy.special import logsumexp

    neg_energy = logsumexp(M, axis=1)
    m = max(1, int(np.floor(fraction * M.shape[0] + 1e-9)))
    return float(np.mean(np.partition(neg_energy, m - 1)[:m]))


def _classification(F: np.ndarray, codes: np.ndarray, counts: np.ndarray, lda: str,
                    a: float) -> float:
    from scipy.special import softmax

    if lda == "fisher":
        probs = _fisher_probs(F, codes, counts, None, a)[0]
    else:
        means = np.zeros((counts.size, F.shape[1]))
        np.add.at(means, codes, F)
        means /= counts[:, None]
        logits = F @ means.T - 0.5 * np.einsum("kd,kd->k", means, means) \
            + np.log(counts / counts.sum())
        probs = softmax(logits, axis=1)
    return float(np.mean(probs[np.arange(F.shape[0]), codes]))


def _regression(F: np.ndarray, codes: np.ndarray, n_classes: int) -> float:
    Y = np.eye(n_classes)[codes]
    B = np.linalg.lstsq(F, Y, rcond=None)[0]
    return float(-np.mean((Y - F @ B) ** 2))


def etran_terms(Z, y, logits=None, energy_fraction: float = 0.005, lda: str = "fisher",
                regression: bool = True, a: float = 5.0) -> dict:
    """The three ETran terms of one model: ``{"energy", "classification", "regression"}``.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Target features (penultimate layer); any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    logits : array-like of shape (n, n_source_classes), optional
        The source head's logits on the same examples: the energy is then taken over
        them instead of over ``Z`` (module docstring).
    energy_fraction : float in (0, 1], default 0.005
        Fraction of the examples, those of lowest log-sum-exp, averaged in the energy term.
    lda : {"fisher", "public_code"}, default "fisher"
        Classifier of the classification term (module docstring).
    regression : bool, default True
        Compute the SVD regression term (else it is NaN).
    a : float, default 5.0
        Strength of the adaptive shrinkage (``lda="fisher"``).

    Returns
    -------
    dict
        ``energy``, ``classification``, ``regression`` (floats; higher = better).

    Raises
    ------
    ValueError
        On bad features, labels or logits, a length mismatch, or bad parameters.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    fraction = check_fraction(energy_fraction, "energy_fraction")
    a = check_scalar(a, "a", float, min_val=0)
    if lda not in ETRAN_LDA:
        raise ValueError(f"lda must be one of {list(ETRAN_LDA)}; got {lda!r}.")
    if logits is None:
        M = F
    else:
        M = as_features(logits, "logits")
        check_same_length(M, F, "logits", "Z")
    if lda == "fisher" and not np.any(np.ptp(F, axis=0) > 0):
        raise ValueError("Z is constant (every row the same): ETran's LDA has no class "
                         "to separate.")
    counts = lab.counts.astype(np.float64)
    return {"energy": _energy(M, fraction),
            "classification": _classification(F, lab.codes, counts, lda, a),
            "regression": _regression(F, lab.codes, lab.n_classes) if regression
            else float("nan")}


def etran(Z, y, logits=None, energy_fraction: float = 0.005, lda: str = "fisher",
          regression: bool = False, a: float = 5.0) -> float:
    """ETran score of one model: energy + LDA classification (+ SVD regression) terms.

    Parameters
    ----------
    Z, y, logits, energy_fraction, lda, a
        As in :func:`etran_terms`.
    regression : bool, default False
        Add the SVD regression term (the authors' classification pipeline leaves it out).

    Returns
    -------
    float
        :math:`S_{en} + S_{cls}` (:math:`+ S_{reg}`), un-normalised; higher = more
        transferable.  To rank several models the authors' way (min-max per term across
        the models, ``0.15 * energy + 0.85 * classification``) use
        :func:`etran_across_models`.

    Raises
    ------
    ValueError
        As :func:`etran_terms`.
    """
    t = etran_terms(Z, y, logits=logits, energy_fraction=energy_fraction, lda=lda,
                    regression=regression, a=a)
    return t["energy"] + t["classification"] + (t["regression"] if regression else 0.0)


def etran_across_models(terms, weights=None):
    """The authors' ETran over a set of models: min-max each term across them, weight.

    Parameters
    ----------
    terms : mapping or pandas.DataFrame
        ``model -> etran_terms(Z_model, y)`` (or a table with those columns).
    weights : dict, optional
        Default :data:`ETRAN_WEIGHTS` (``energy`` 0.15, ``classification`` 0.85, from
        the authors' ``tw.py``); add ``"regression"`` to use that term.

    Returns
    -------
    pandas.Series
        One score per model in ``[0, sum(weights)]``; higher = more transferable.
    """
    return minmax_combine(terms, dict(ETRAN_WEIGHTS if weights is None else weights))
