r"""LEEP: log expected empirical prediction (Nguyen et al., ICML 2020, arXiv 2002.12462).

Given the source model's predicted distribution :math:`\theta(x_i)` over its
``Z`` source classes and the target labels :math:`y_i`:

.. math::

    \hat P(y, z) = \frac1n \sum_{i: y_i = y} \theta(x_i)_z,\qquad
    \hat P(y \mid z) = \frac{\hat P(y, z)}{\sum_{y'} \hat P(y', z)},

    \mathrm{LEEP} = \frac1n \sum_i \log \sum_z \hat P(y_i \mid z)\, \theta(x_i)_z .

LEEP is at most 0; higher means more transferable.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import as_probabilities, check_scalar, encode_labels

__all__ = ["leep"]


def leep(source_probs, y, atol: float = 1e-3) -> float:
    """LEEP score of a source classifier's predictions for target labels.

    Parameters
    ----------
    source_probs : array-like or torch.Tensor of shape (n, n_source_classes)
        The source model's softmax outputs on the target examples (rows are
        probability vectors: non-negative, summing to 1).  Pass probabilities,
        not logits (``torch.softmax(logits, 1)``).
    y : array-like of shape (n,)
        Target labels of any values; at least two classes, two samples each.
    atol : float, default 1e-3
        Tolerance on the row sums (float16/32 softmax outputs are not exact).

    Returns
    -------
    float
        The LEEP score (<= 0, higher = more transferable).

    Raises
    ------
    ValueError
        If ``source_probs`` is not a matrix of probability rows, or on bad labels.
    """
    atol = check_scalar(atol, "atol", float, min_val=0)
    P = as_probabilities(source_probs, "source_probs", atol,
                         hint="did you pass logits? apply softmax first")
    lab = encode_labels(y, P.shape[0], "y", n_name="source_probs")
    n = P.shape[0]
    joint = np.zeros((lab.n_classes, P.shape[1]))
    np.add.at(joint, lab.codes, P)
    joint /= n                                     # P(y, z)
    marginal = joint.sum(axis=0)                   # P(z)
    cond = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    eep = np.einsum("iz,iz->i", P, cond[lab.codes])  # sum_z P(y_i|z) theta_z(x_i)
    return float(np.mean(np.log(eep)))
