r"""GBC: Gaussian Bhattacharyya Coefficient (Pandy et al., CVPR 2022, arXiv 2111.12780).

"Transferability Estimation using Bhattacharyya Class Separability": model each target
class as a Gaussian in the (PCA-reduced) feature space and measure how much the classes
overlap.  For classes :math:`i, j` with means :math:`\mu_i` and covariances
:math:`\Sigma_i` (diagonal or spherical), :math:`\Sigma = (\Sigma_i + \Sigma_j)/2` and

.. math::

    D_B(i, j) = \frac18 (\mu_i - \mu_j)^T \Sigma^{-1} (\mu_i - \mu_j)
              + \frac12 \ln \frac{\det \Sigma}{\sqrt{\det \Sigma_i \det \Sigma_j}},
    \qquad
    \mathrm{GBC} = -\sum_{i} \sum_{j \ne i} e^{-D_B(i, j)} .

:math:`e^{-D_B}` is the Bhattacharyya coefficient (the overlap of the two densities), so
GBC is at most 0 and higher (less overlap) is more transferable.  Every unordered pair
is counted twice, as in the authors' code.

Defaults and where they come from
---------------------------------
From ``google-research/stable_transfer`` (``transferability/gbc.py`` and the config of
``config_transferability_source_selection.py``, the authors' code): PCA to
``n_components = 64`` (exact PCA), ``gaussian = "spherical"`` (the default there;
``"diagonal"`` the other option), per-class mean and population variance (``1/n_k``),
variances floored at ``1e-4`` ("avoid 0 variance in cases of constant features"); a
spherical class has variance ``mean`` of its per-dimension variances.

One difference from that code: for spherical Gaussians it adds the log-determinant term
once, ``0.5 * ln(s / sqrt(s_i s_j))``, where the formula above (``det`` of a
``p x p`` matrix ``s I``) gives ``p`` times that.  This follows the formula; the two
agree for diagonal Gaussians and whenever the classes have equal spread.

The score is not invariant to the scale of the features (the variance floor is absolute).
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels
from transfer_nb.estimators._pca import pca_scores

__all__ = ["gbc", "GBC_GAUSSIANS", "bhattacharyya_distances"]

#: class models :func:`gbc` accepts
GBC_GAUSSIANS = ("spherical", "diagonal")
_VAR_FLOOR = 1e-4


def bhattacharyya_distances(means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """``(K, K)`` Bhattacharyya distances between Gaussians with diagonal covariances.

    Parameters
    ----------
    means, variances : numpy.ndarray of shape (K, p)
        Per-class means and per-dimension variances (> 0); a spherical class repeats
        one variance ``p`` times.
    """
    avg = 0.5 * (variances[:, None, :] + variances[None, :, :])           # (K, K, p)
    diff2 = (means[:, None, :] - means[None, :, :]) ** 2
    log_v = np.log(variances)
    return (np.sum(diff2 / avg, axis=2) / 8.0
            + 0.5 * (np.sum(np.log(avg), axis=2)
                     - 0.5 * (log_v.sum(1)[:, None] + log_v.sum(1)[None, :])))


def gbc(Z, y, n_components: int = 64, gaussian: str = "spherical") -> float:
    """GBC of features ``Z`` for labels ``y`` (<= 0, higher = more transferable).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    n_components : int, default 64
        PCA components kept (capped at the rank of the centred features).
    gaussian : {"spherical", "diagonal"}, default "spherical"
        Covariance model of each class.

    Returns
    -------
    float
        ``-sum_{i != j} exp(-D_B(i, j))`` (module docstring).  Invariant to the order
        of the rows, the label names and orthogonal rotations of ``Z``.

    Raises
    ------
    ValueError
        On bad features or labels, a bad option, or constant features.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    n_components = check_scalar(n_components, "n_components", int, min_val=1)
    if gaussian not in GBC_GAUSSIANS:
        raise ValueError(f"gaussian must be one of {list(GBC_GAUSSIANS)}; got {gaussian!r}.")
    X = pca_scores(F, n_components)
    if X.shape[1] == 0:
        raise ValueError("Z is constant (every row the same): GBC has no class to separate.")
    K, counts = lab.n_classes, lab.counts.astype(np.float64)
    means = np.zeros((K, X.shape[1]))
    np.add.at(means, lab.codes, X)
    means /= counts[:, None]
    sq = np.zeros_like(means)
    np.add.at(sq, lab.codes, (X - means[lab.codes]) ** 2)
    variances = np.maximum(sq / counts[:, None], _VAR_FLOOR)
    if gaussian == "spherical":
        variances = np.repeat(variances.mean(axis=1, keepdims=True), X.shape[1], axis=1)
    coef = np.exp(-bhattacharyya_distances(means, variances))
    np.fill_diagonal(coef, 0.0)
    return float(-coef.sum())
