r"""NCE: negative conditional entropy (Tran et al., ICCV 2019, arXiv 1908.08142).

With the source model's hard predictions (or source labels) :math:`z_i` and the
target labels :math:`y_i` of the same examples,

.. math::

    \hat P(y, z) = \frac{|\{i: y_i = y, z_i = z\}|}{n},\qquad
    \mathrm{NCE} = -H(Y \mid Z) = \sum_{y,z} \hat P(y, z)\log\frac{\hat P(y, z)}{\hat P(z)} .

NCE is at most 0 (0 when ``z`` determines ``y``); higher = more transferable.
"""
from __future__ import annotations

import numpy as np

from transfer_nb._validation import encode_labels

__all__ = ["nce"]


def nce(source_labels, y) -> float:
    """Negative conditional entropy of target labels given source labels.

    Parameters
    ----------
    source_labels : array-like of shape (n,)
        Source-task labels of the target examples (e.g. the source model's
        argmax predictions), any values; a single source class is allowed.
    y : array-like of shape (n,)
        Target labels of any values; at least two classes, two samples each.

    Returns
    -------
    float
        :math:`-H(Y \\mid Z)` in nats (<= 0).

    Raises
    ------
    ValueError
        On a length mismatch or bad labels.
    """
    z = encode_labels(source_labels, None, "source_labels", min_classes=1, min_per_class=1)
    lab = encode_labels(y, z.codes.shape[0], "y", n_name="source_labels")
    n = lab.codes.shape[0]
    joint = np.zeros((lab.n_classes, z.n_classes))
    np.add.at(joint, (lab.codes, z.codes), 1.0)
    joint /= n
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))
