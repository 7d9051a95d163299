r"""Leave-one-out k-nearest-neighbour accuracy on the target features.

Each example is classified by a majority vote of its ``k`` nearest *other* examples
(itself left out) and the score is the fraction classified correctly:

.. math::

    \mathrm{kNN}(Z, y) = \frac1n \sum_{i=1}^n
        \mathbf 1\left[\operatorname{vote}_k\left(\{y_j : j \in N_k(i)\}\right) = y_i\right],
    \qquad N_k(i) = \text{the } k \text{ nearest } j \ne i .

It is the simplest reading of "are the classes already separated in this
representation?" and a strong baseline: Bolya et al. (NeurIPS 2021, the PARC paper,
code ``dbolya/parc``) report it as "1-NN CV" beside their score, and Sorkhei et al.
(2025) find plain k-NN accuracy ahead of 23 transferability metrics over 16 data sets.

Defaults and where they come from
---------------------------------
``k = 1`` and the Euclidean distance on the raw features (no PCA): the ``kNN(k=1,
metric='l2')`` of ``dbolya/parc`` (``methods.py``), shown there as ``'1-NN CV'``.
``metric="cosine"`` is offered for normalised embeddings.  The authors return a
percentage; this returns the fraction in ``[0, 1]``.

With ``k > 1`` the vote is a plurality; a tie between classes goes to the tied class
whose nearest member is closest (the authors' ``scipy.stats.mode`` takes the smallest
label, which would make the score depend on the label names).  Ties in *distance*
(duplicated rows) are broken by row order.

Cost: the ``n x n`` distance matrix (``O(n^2 d)`` time, ``O(n^2)`` memory: 32 MB at
``n = 2000``).
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels

__all__ = ["knn", "KNN_METRICS"]

#: distances :func:`knn` accepts
KNN_METRICS = ("euclidean", "cosine")


def _distances(F: np.ndarray, metric: str) -> np.ndarray:
    """Squared Euclidean or cosine distances between all rows (diagonal = +inf)."""
    if metric == "cosine":
        norms = np.linalg.norm(F, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("Z has an all-zero row: its cosine distance is undefined; "
                             "use metric='euclidean' or drop that row.")
        G = (F / norms) @ (F / norms).T
        D = 1.0 - G
    else:
        X = F - F.mean(axis=0)                      # distances are shift-invariant;
        sq = np.einsum("ij,ij->i", X, X)            # centring keeps the Gram accurate
        D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.fill_diagonal(D, np.inf)                     # leave one out
    return D


def knn(Z, y, k: int = 1, metric: str = "euclidean") -> float:
    """Leave-one-out k-NN accuracy of features ``Z`` for labels ``y`` (higher = better).

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features; any float dtype (promoted to float64).
    y : array-like of shape (n,)
        Labels of any values; at least two classes, two samples per class.
    k : int, default 1
        Neighbours that vote (``1 <= k < n``).
    metric : {"euclidean", "cosine"}, default "euclidean"

    Returns
    -------
    float
        Fraction of examples whose ``k`` nearest other examples vote for their class.
        Invariant to the order of the rows, the label names, orthogonal rotations and
        the scale of ``Z``.

    Raises
    ------
    ValueError
        On bad features or labels, ``k`` not an integer in ``[1, n - 1]``, an unknown
        metric, or (cosine) an all-zero row.
    """
    F = as_features(Z, "Z")
    lab = encode_labels(y, F.shape[0], "y")
    n = F.shape[0]
    k = check_scalar(k, "k", int, min_val=1, max_val=n - 1)
    if metric not in KNN_METRICS:
        raise ValueError(f"metric must be one of {list(KNN_METRICS)}; got {metric!r}.")
    D = _distances(F, metric)
    if k == 1:
        pred = lab.codes[np.argmin(D, axis=1)]
        return float(np.mean(pred == lab.codes))
    near = np.argpartition(D, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(D, near, axis=1), axis=1, kind="stable")
    votes = lab.codes[np.take_along_axis(near, order, axis=1)]       # (n, k), nearest first
    K = lab.n_classes
    rows = np.repeat(np.arange(n), k)
    counts = np.zeros((n, K))
    np.add.at(counts, (rows, votes.ravel()), 1.0)
    first = np.full((n, K), k)                                       # position of nearest
    np.minimum.at(first, (rows, votes.ravel()), np.tile(np.arange(k), n))
    key = counts * (k + 1) - first                                   # plurality, then nearest
    pred = np.argmax(key, axis=1)
    return float(np.mean(pred == lab.codes))
