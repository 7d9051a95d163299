"""Teaching helpers of notebook 01 (the coding rate and TransRate on toy and real data).

Reference ("textbook") implementations to check the fast code against, and small sweeps
that show how TransRate reacts to the distortion, the class separation, rescaling,
shuffled labels and extra noise dimensions.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from transfer_nb.coding_rate import coding_rate_terms, transrate
from transfer_nb.data.toy import make_gaussian_classes
from transfer_nb.experiments._timing import timed

__all__ = ["textbook_coding_rate", "textbook_transrate", "compare_with_textbook",
           "eps_sweep", "separation_sweep", "pitfall_table", "dimension_sweep"]


def textbook_coding_rate(Z, eps: float = 1e-4) -> float:
    """Reference ``R(Z) = 1/2 logdet(I_d + Z^T Z / (n eps))`` by ``slogdet`` of the
    ``d x d`` matrix: the formula as written, to check the fast Gram-side code against."""
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    return 0.5 * float(np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))[1])


def textbook_transrate(Z, y, eps: float = 1e-4) -> float:
    """Reference TransRate (the paper's snippet) with one ``d x d`` slogdet per term."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z - Z.mean(axis=0, keepdims=True)
    y = np.asarray(y)
    classes = np.unique(y)
    return textbook_coding_rate(Z, eps) - float(np.mean(
        [textbook_coding_rate(Z[y == c], eps) for c in classes]))


def compare_with_textbook(Z, y, eps: float = 1e-4, repeats: int = 3) -> dict:
    """Fast :func:`transfer_nb.coding_rate.transrate` vs :func:`textbook_transrate`: values, relative
    difference and best-of-``repeats`` wall-clock of each."""
    fast, t_fast = timed(lambda: transrate(Z, y, eps=eps), repeats)
    ref, t_ref = timed(lambda: textbook_transrate(Z, y, eps=eps), repeats)
    return {"fast": fast, "textbook": ref,
            "relative_difference": abs(fast - ref) / max(abs(ref), 1e-300),
            "seconds_fast": t_fast, "seconds_textbook": t_ref,
            "speedup": t_ref / max(t_fast, 1e-12), "n": int(np.shape(Z)[0]),
            "d": int(np.shape(Z)[1])}


def eps_sweep(Z, y, eps_values: Iterable[float] = (1e-6, 1e-4, 1e-2, 1.0)):
    """R(Z), R(Z|Y) and TransRate (snippet) for several distortions ``eps``."""
    import pandas as pd
    rows = []
    for eps in eps_values:
        t = coding_rate_terms(Z, y, eps=eps)
        rows.append({"eps": eps, "R(Z)": t["R"], "R(Z|Y)": t["R_given_y"],
                     "TransRate": t["transrate"]})
    return pd.DataFrame(rows).set_index("eps")


def separation_sweep(separations: Iterable[float] = (0.0, 1.0, 2.0, 4.0, 8.0), n: int = 300,
                     k: int = 3, dim: int = 2, spread: float = 1.0, eps: float = 1e-4,
                     seed: int = 0):
    """TransRate of toy Gaussian classes as the class means move apart."""
    import pandas as pd
    rows = []
    for sep in separations:
        Z, y = make_gaussian_classes(n=n, k=k, dim=dim, separation=sep, spread=spread, seed=seed)
        t = coding_rate_terms(Z, y, eps=eps)
        rows.append({"separation": sep, "R(Z)": t["R"], "R(Z|Y)": t["R_given_y"],
                     "TransRate": t["transrate"]})
    return pd.DataFrame(rows).set_index("separation")


def pitfall_table(Z, y, eps: float = 1e-4, seed: int = 0):
    """TransRate (snippet and layerwise variants) of real features under the pitfalls of
    the snippet: rescaled features and shuffled labels.

    Rows: ``features``, ``features x 10``, ``features / 10``, ``shuffled labels``;
    columns ``snippet`` and ``layerwise`` (the authors' scale-invariant pipeline).
    """
    import pandas as pd
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y)
    y_shuffled = np.random.default_rng(seed).permutation(y)
    cases = {"features": (Z, y), "features x 10": (10 * Z, y), "features / 10": (Z / 10, y),
             "shuffled labels": (Z, y_shuffled)}
    rows = {}
    for name, (Zc, yc) in cases.items():
        rows[name] = {"snippet": float(transrate(Zc, yc, eps=eps)),
                      "layerwise": float(transrate(Zc, yc, eps=eps, variant="layerwise"))}
    return pd.DataFrame(rows).T


def dimension_sweep(dims: Iterable[int] = (4, 16, 64, 256), n: int = 150, k: int = 3,
                    separation: float = 4.0, eps: float = 1e-4, seed: int = 0):
    """TransRate when the *same* class structure is padded with pure-noise dimensions.

    The first 2 coordinates hold ``k`` Gaussian classes; every extra coordinate is
    noise of the same spread, carrying no label information.  The snippet's TransRate
    grows with the dimension anyway (a class with fewer samples than dimensions is
    rank-capped, the whole set less so), which biases comparisons between layers or
    models of different width.
    """
    import pandas as pd
    Z2, y = make_gaussian_classes(n=n, k=k, dim=2, separation=separation, spread=1.0, seed=seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for d in dims:
        if d < 2:
            raise ValueError(f"dims must be >= 2, got {d}")
        Z = np.hstack([Z2, rng.normal(size=(len(Z2), d - 2))])
        rows.append({"dim": int(d), "snippet": float(transrate(Z, y, eps=eps)),
                     "layerwise": float(transrate(Z, y, eps=eps, variant="layerwise"))})
    return pd.DataFrame(rows).set_index("dim")
