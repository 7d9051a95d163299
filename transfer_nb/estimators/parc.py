r"""PARC: Pairwise Annotation Representation Comparison (Bolya et al., NeurIPS 2021).

"Scalable Diverse Model Selection for Accessible Transfer Learning": compare how the
features and the labels arrange the target examples.  Two representational
dissimilarity matrices over the ``n`` examples,

.. math::

    D^Z_{ij} = 1 - \operatorname{corr}(\tilde z_i, \tilde z_j), \qquad
    D^Y_{ij} = 1 - \operatorname{corr}(e_{y_i}, e_{y_j}),

where :math:`\tilde z_i` is example ``i``'s feature vector after PCA and per-feature
standardisation and :math:`e_{y}` the one-hot label (so :math:`D^Y` is 0 within a class
and :math:`1 + 1/(K-1)` across classes), are compared by the Spearman correlation of
their entries above the diagonal:

.. math::

    \mathrm{PARC} = \rho_{\text{Spearman}}\left(\{D^Z_{ij}\}_{i<j},\ \{D^Y_{ij}\}_{i<j}\right).

Higher (examples of a class closer to each other than to others) is more transferable.

Defaults and where they come from
---------------------------------
PCA to ``n_components = 32`` dimensions (``'PARC f=32': PARC(n_dims=32)`` in the README
and ``demo.py`` of ``dbolya/parc``, and ``ndims = 32`` in ``TencentARC/SFDA``'s
``PARC_Score``), then scikit-learn's ``StandardScaler`` (``methods.py``).  The authors'
PCA is randomised with one power iteration (``random_state=1919``); this one is exact
(:mod:`transfer_nb.estimators._pca`), so the value does not depend on a seed and is the
same for any rotation of the features.  The authors multiply by 100; this returns the
correlation itself, in ``[-1, 1]``.

Since :math:`D^Y` takes two values, the Spearman correlation is the Pearson correlation
of the ranks of :math:`D^Z` (ties averaged) with the "different class" indicator.  (The
authors compute :math:`D^Y` with ``np.corrcoef``, whose entries equal 0 and
:math:`1 + 1/(K-1)` only up to rounding; ``spearmanr`` then ranks that rounding noise
instead of averaging the ties, which moves their value slightly: 0.126 instead of 0.128
on a 45-example test case.)

Cost: the ``n x n`` correlation matrix and a sort of its ``n (n - 1) / 2`` entries
(``O(n^2 log n)`` time, ``O(n^2)`` memory); the SFDA code subsamples above 15000 examples.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels
from transfer_nb.estimators._pca import pca_scores

__all__ = ["parc"]


def parc(Z, y, n_components: int = 32) -> float:
    """PARC of features ``Z`` for labels ``y`` (in [-1, 1], higher = more transferable).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    n_components : int, default 32
        PCA components kept before the standardisation (capped at the rank of the
        centred features; at least 2 are needed for a correlation between examples).

    Returns
    -------
    float
        Spearman correlation of the feature and label dissimilarities (module
        docstring).  Invariant to the order of the rows, the label names, orthogonal
        rotations and the scale of ``Z``.

    Raises
    ------
    ValueError
        On bad features or labels, ``n_components`` < 2, features of rank < 2, or an
        example whose standardised features are all equal (its correlation with the
        others is undefined).
    """
    from scipy.stats import rankdata

    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    n_components = check_scalar(n_components, "n_components", int, min_val=2)
    X = pca_scores(F, n_components)
    if X.shape[1] < 2:
        raise ValueError(f"PARC correlates examples across feature dimensions, but the "
                         f"features have rank {X.shape[1]}; expected at least 2.")
    X = X / X.std(axis=0)                               # StandardScaler (already centred)
    R = X - X.mean(axis=1, keepdims=True)               # np.corrcoef of the rows
    norms = np.linalg.norm(R, axis=1)
    if np.any(norms <= 1e-12 * np.sqrt(X.shape[1])):
        raise ValueError("an example's standardised features are all equal, so its "
                         "correlation with the others is undefined; drop that row.")
    R /= norms[:, None]
    i, j = np.triu_indices(F.shape[0], k=1)
    dz = 1.0 - (R @ R.T)[i, j]                          # feature dissimilarities
    different = (lab.codes[i] != lab.codes[j]).astype(np.float64)
    rz = rankdata(dz)
    rz -= rz.mean()
    different -= different.mean()
    return float(rz @ different / np.sqrt((rz @ rz) * (different @ different)))
