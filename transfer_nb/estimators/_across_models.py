"""Min-max normalisation of score terms across a set of models (ETran, NCTI).

Both ETran and NCTI add terms of different units (nats, probabilities, nuclear
norms).  Their authors rescale each term to ``[0, 1]`` over the models being ranked
(``(t - min) / (max - min)``) before the weighted sum, so a model's final score
depends on the other models in the set.  :func:`minmax_combine` does that once for
both.
"""
from __future__ import annotations

import numpy as np

__all__ = ["minmax_combine"]


def minmax_combine(terms, weights: dict):
    """Weighted sum of min-max normalised terms, one row per model.

    Parameters
    ----------
    terms : pandas.DataFrame or mapping
        One row per model, one column per term (``DataFrame``), or a mapping
        ``model -> {term: value}`` (e.g. ``{name: etran_terms(Z, y) ...}``).
    weights : dict
        ``term -> weight``; every key must be a column of ``terms``.  A term that is
        the same for every model carries no ranking information: it contributes 0
        (the authors' code divides by zero there).

    Returns
    -------
    pandas.Series
        The combined score per model (index: the models), higher = more transferable.

    Raises
    ------
    ValueError
        On fewer than two models, a missing term or a non-finite value.
    """
    import pandas as pd

    table = terms if isinstance(terms, pd.DataFrame) else pd.DataFrame.from_dict(
        {k: dict(v) for k, v in dict(terms).items()}, orient="index")
    if len(table) < 2:
        raise ValueError(f"the across-model normalisation needs at least 2 models; got "
                         f"{len(table)}: with one model use the un-normalised score.")
    missing = [t for t in weights if t not in table.columns]
    if missing:
        raise ValueError(f"terms {missing} are missing; the table has "
                         f"{[str(c) for c in table.columns]}.")
    out = pd.Series(0.0, index=table.index, name="score")
    for term, w in weights.items():
        col = pd.to_numeric(table[term], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(col)):
            raise ValueError(f"term {term!r} has a NaN or Inf value; expected finite "
                             "values for every model.")
        span = col.max() - col.min()
        if span > 0:
            out += float(w) * (col - col.min()) / span
    return out
