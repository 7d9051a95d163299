r"""N-LEEP: LEEP on the posteriors of a Gaussian mixture (Li et al., CVPR 2021).

"Ranking Neural Checkpoints" replaces LEEP's source classifier by a Gaussian mixture
fitted to the target features, so that the score needs no source head:

1. reduce the features by PCA to the fewest components that keep ``variance`` (80 %) of
   their variance;
2. fit a Gaussian mixture of ``C = component_ratio * K`` components (full covariances,
   EM from a k-means initialisation) to the reduced features;
3. score LEEP (:func:`transfer_nb.estimators.leep`) with the mixture's posteriors
   :math:`p(c \mid x_i)` in place of the source model's softmax:

.. math::

    \mathrm{N\text{-}LEEP} = \frac1n \sum_i \log \sum_c \hat P(y_i \mid c)\, p(c \mid x_i).

Defaults and where they come from
---------------------------------
``variance = 0.8`` (``pca_reduction = 0.8`` in the config of ``google-research/
stable_transfer``, the Agostinelli et al. ECCV 2022 code, and ``PCA(n_components=0.8)`` in
``TencentARC/SFDA``); ``component_ratio = 5`` ("5 * target class number in the paper",
``stable_transfer/transferability/nleep.py``; SFDA's script uses 1 for its two data sets
with the most classes); scikit-learn's ``GaussianMixture`` defaults otherwise (full
covariance, ``reg_covar = 1e-6``, ``max_iter = 100``, ``tol = 1e-3``, one k-means
initialisation), as both codes use them.  SFDA's copy drops the log of LEEP; this keeps
it, as the paper and ``stable_transfer`` do.

Determinism
-----------
EM finds a local optimum that depends on its initialisation, and k-means++ picks its
first centre by row index, so the authors' score changes when the rows are shuffled.
Here the PCA is exact (:mod:`transfer_nb.estimators._pca`), the reduced features are
divided by their overall scale (``reg_covar`` is absolute), and the rows are given to
the mixture in a canonical order (sorted by their first principal score) with a fixed
``seed``: the score is then a function of the labelled set, the same for any order of
the rows, any rotation and any scale of the features.  Different seeds can still give
different local optima; :func:`nleep` with ``seed=s`` is reproducible.

Cost
----
EM with full covariances costs ``O(iterations * n * C * p^2)`` for ``p`` PCA
components.  On the benchmark's features (``benchmarks/bench_estimators.py``:
EfficientNet-Lite0, 2000 glyphs, 10 classes) 80 % of the variance lies in 8 components
and N-LEEP takes about 1.6x LogME's time; features with a flatter spectrum keep many
more components and the cost grows with their square.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_fraction, check_scalar, encode_labels
from transfer_nb.estimators._pca import pca_scores
from transfer_nb.estimators.leep import leep

__all__ = ["nleep", "gmm_posteriors"]


def gmm_posteriors(X: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """Posteriors ``(n, n_components)`` of a full-covariance Gaussian mixture fitted to X.

    Rows are fitted in a canonical order (by their first column, then the next) so
    that the result does not depend on the order they come in; returned in the input
    order.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    order = np.lexsort(X.T[::-1])
    gmm = GaussianMixture(n_components=n_components, covariance_type="full",
                          random_state=seed)
    with warnings.catch_warnings():
        # max_iter=100 as the authors; a mixture that is still moving is still a score
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(X[order])
    return gmm.predict_proba(X)


def nleep(Z, y, variance: float = 0.8, component_ratio: int = 5, seed: int = 0) -> float:
    """N-LEEP of features ``Z`` for labels ``y`` (<= 0, higher = more transferable).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    variance : float, default 0.8
        Fraction of the feature variance the PCA keeps (in ``(0, 1]``).
    component_ratio : int, default 5
        Mixture components per target class.
    seed : int, default 0
        Seed of the mixture's k-means initialisation.

    Returns
    -------
    float
        LEEP of the mixture's posteriors (see the module docstring).

    Raises
    ------
    ValueError
        On bad features or labels, a bad option, constant features, or more mixture
        components (``component_ratio * K``) than examples.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    variance = check_fraction(variance, "variance")
    component_ratio = check_scalar(component_ratio, "component_ratio", int, min_val=1)
    seed = check_scalar(seed, "seed", int, min_val=0)
    n = F.shape[0]
    C = component_ratio * lab.n_classes
    if C > n:
        raise ValueError(
            f"N-LEEP fits component_ratio * K = {component_ratio} * {lab.n_classes} = {C} "
            f"Gaussian components but there are only {n} examples; expected at most one "
            "component per example: pass a smaller component_ratio.")
    X = pca_scores(F, variance if variance < 1 else F.shape[1])
    if X.shape[1] == 0:
        raise ValueError("Z is constant (every row the same): N-LEEP has nothing to fit.")
    X = X / np.sqrt(np.mean(X * X))                   # reg_covar is absolute: unit scale
    return leep(gmm_posteriors(X, C, seed), lab.codes)
