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
(duplicated rows, equidistant neighbours) are broken by row order, as in the
authors' code: the fast Gram-matrix distances are re-measured pair by pair for every
candidate within their rounding error of the ``k``-th nearest, so an exact tie stays
exact (with ``Z = [[7], [1], [3], [6], [5]]``, the row ``6`` is at distance 1 from
``7`` and ``5`` and takes ``7``'s label).

Cost: the ``n x n`` distance matrix (``O(n^2 d)`` time, ``O(n^2)`` memory: 32 MB at
``n = 2000``).
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_features, check_scalar, encode_labels

__all__ = ["knn", "KNN_METRICS"]

#: distances :func:`knn` accepts
KNN_METRICS = ("euclidean", "cosine")


def _unit_rows(F: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("Z has an all-zero row: its cosine distance is undefined; "
                         "use metric='euclidean' or drop that row.")
    return F / norms


def _distances(F: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Fast (Gram-matrix) distances between all rows (diagonal = +inf) and a bound on
    their rounding error per row: squared Euclidean or cosine distances."""
    eps = np.finfo(np.float64).eps * 4 * (F.shape[1] + 2)
    if metric == "cosine":
        U = _unit_rows(F)
        D = 1.0 - U @ U.T
        slack = np.full(F.shape[0], eps * 4)
    else:
        X = F - F.mean(axis=0)                      # distances are shift-invariant;
        sq = np.einsum("ij,ij->i", X, X)            # centring keeps the Gram accurate
        D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
        slack = eps * 2 * (sq + sq.max())
    np.fill_diagonal(D, np.inf)                     # leave one out
    return D, slack


def _exact(F: np.ndarray, rows: np.ndarray, cols: np.ndarray, metric: str) -> np.ndarray:
    """Distances of the pairs ``(rows[t], cols[t])`` computed pair by pair, the same
    operations for every pair: equal differences give bit-equal distances."""
    if metric == "cosine":
        U = _unit_rows(F)
        return 1.0 - np.einsum("ij,ij->i", U[rows], U[cols])
    diff = F[rows] - F[cols]
    return np.einsum("ij,ij->i", diff, diff)


def _neighbours(F: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Indices ``(n, k)`` of the ``k`` nearest other rows, nearest first; ties in
    distance go to the lower row index.

    The Gram-matrix distances are fast but round: an exact tie can come out as
    ``1.0`` against ``0.9999999999999998``.  So every candidate within the rounding
    bound of the ``k``-th smallest fast distance is re-measured pair by pair (exact
    for exact ties) and the candidates are ordered by (distance, row index).
    """
    D, slack = _distances(F, metric)
    kth = np.partition(D, k - 1, axis=1)[:, k - 1]
    rows, cols = np.nonzero(D <= (kth + 2.0 * slack)[:, None])
    dist = _exact(F, rows, cols, metric)
    order = np.lexsort((cols, dist, rows))                   # by row, distance, index
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(F.shape[0]))
    return cols[starts[:, None] + np.arange(k)]


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
    near = _neighbours(F, k, metric)                                 # (n, k), nearest first
    votes = lab.codes[near]
    if k == 1:
        return float(np.mean(votes[:, 0] == lab.codes))
    K = lab.n_classes
    rows = np.repeat(np.arange(n), k)
    counts = np.zeros((n, K))
    np.add.at(counts, (rows, votes.ravel()), 1.0)
    first = np.full((n, K), k)                                       # position of nearest
    np.minimum.at(first, (rows, votes.ravel()), np.tile(np.arange(k), n))
    key = counts * (k + 1) - first                                   # plurality, then nearest
    pred = np.argmax(key, axis=1)
    return float(np.mean(pred == lab.codes))
