"""The boundary of :mod:`transfer_nb.stats`: what every rule checks before it computes.

* :func:`check_rule_args` -- ``n_boot`` (an integer >= 1), ``confidence`` (in (0, 1)),
  ``seed`` (an integer >= 0), in plain words.
* :func:`numeric` -- a score or truth as floats, refused in plain words when it holds
  strings or other non-numbers (numpy would say "could not convert string to float").
* :func:`rule_items` -- scores, truth and groups of one rule with equal lengths checked
  and the items where any value is not finite dropped *pairwise* (an item missing its
  score or its truth leaves, its group stays), with the count.
* :data:`MIN_GROUP_ITEMS` and :data:`MIN_GROUP_REASON` -- the smallest group a
  within-group rule uses, and why.
* :func:`usable_groups` -- which groups reach it, and the plain-words note on the others.
"""
from __future__ import annotations

import numbers

import numpy as np

from transfer_nb._validation import check_scalar, plain

__all__ = ["check_rule_args", "numeric", "rule_items", "usable_groups", "MIN_GROUP_ITEMS",
           "MIN_GROUP_REASON"]

#: the smallest group (items with a finite score and truth) a within-group rule uses
MIN_GROUP_ITEMS = 5
#: why (numbers measured with ``tests/test_bad_input.py``'s coverage simulation)
MIN_GROUP_REASON = (
    "a bootstrap resample of a group needs 3 distinct items for a correlation (with 2 it "
    "is +-1 by construction, with 1 undefined), and with fewer than 5 items too many "
    "resamples fall short (78% at 3 items, 34% at 4, 10% at 5): the interval would rest on "
    "the few resamples left and miss the true correlation far more often than its level "
    "says (95% intervals over 3 groups of 4 items covered 77% of simulated data sets, "
    "over groups of 5: 91%)")


def check_rule_args(n_boot=None, confidence=None, seed=None, n_name: str = "n_boot") -> None:
    """Refuse a resample count, interval level or seed that cannot give an interval.

    ``None`` skips a check.  Raises a ValueError such as ``"confidence must lie in (0, 1)
    (an interval level such as 0.95), got 2"``.
    """
    if n_boot is not None:
        check_scalar(n_boot, n_name, int, min_val=1)
    if confidence is not None:
        try:
            check_scalar(confidence, "confidence", float, min_val=0, max_val=1,
                         include_boundaries="neither")
        except ValueError:
            raise ValueError(f"confidence must lie in (0, 1) (an interval level such as "
                             f"0.95), got {plain(confidence)!r}") from None
    if seed is not None:
        check_scalar(seed, "seed", int, min_val=0)


def _is_number(v) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)))


def numeric(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float64 array; a ValueError naming ``name`` when it holds
    anything but numbers (``None`` and NaN are numbers here: missing values, dropped
    later with a count)."""
    a = np.asarray(values)
    if a.dtype.kind == "O":
        flat = a.ravel()
        bad = [v for v in flat if not _is_number(v)]
        if not bad:
            a = np.array([np.nan if v is None else float(v) for v in flat], dtype=np.float64)
        else:
            raise ValueError(f"{name} must hold numbers, got {type(bad[0]).__name__} values "
                             f"such as {plain(bad[0])!r}")
    if a.dtype.kind not in "iuf":
        example = plain(a.ravel()[0]) if a.size else None
        kind = {"U": "text", "S": "bytes", "b": "True/False", "M": "date", "m": "duration"
                }.get(a.dtype.kind, str(a.dtype))
        raise ValueError(f"{name} must hold numbers, got {kind} values such as {example!r}")
    return a.astype(np.float64).ravel()


def rule_items(truth, *scores, groups=None):
    """Check and align the items of one rule.

    Parameters
    ----------
    truth : array-like, shape (n,)
    *scores : ``(name, array-like)`` pairs, each of shape (n,)
    groups : array-like, shape (n,), optional

    Returns
    -------
    truth, scores, groups, n_dropped
        The items where the truth and every score are finite (groups as strings, or
        None), and how many items were dropped for a missing value.
    """
    y = numeric(truth, "truth")
    xs = []
    for name, x in scores:
        x = numeric(x, name)
        if x.shape != y.shape:
            raise ValueError(f"{name} has {x.size} values but truth has {y.size}; expected "
                             "one per item")
        xs.append(x)
    g = None
    if groups is not None:
        g = np.asarray(groups).ravel()
        if g.size != y.size:
            raise ValueError(f"groups has {g.size} values but truth has {y.size}; expected "
                             "one group label per item")
        g = g.astype(str)
    ok = np.isfinite(y)
    for x in xs:
        ok &= np.isfinite(x)
    n_dropped = int((~ok).sum())
    if n_dropped:
        y, xs = y[ok], [x[ok] for x in xs]
        g = None if g is None else g[ok]
    return y, xs, g, n_dropped


def usable_groups(sizes: dict, min_items: int = MIN_GROUP_ITEMS) -> tuple[list, str]:
    """``(labels of the groups with >= min_items items, note on the others)``.

    ``sizes`` maps group label -> item count (after dropping missing values).  The note
    is ``""`` when every group is usable, else it says "too few items" and names them.
    """
    used = [k for k, n in sizes.items() if n >= min_items]
    small = {k: n for k, n in sizes.items() if n < min_items}
    if not small:
        return used, ""
    if len(sizes) == 1:
        n = next(iter(small.values()))
        return used, (f"too few items: {n} with a finite score and truth, a correlation "
                      f"interval needs at least {min_items}")
    listed = ", ".join(f"{k} ({n})" for k, n in small.items())
    head = "too few items in every group" if not used else "too few items in group(s)"
    return used, (f"{head} {listed}: a group needs at least {min_items} items with a "
                  f"finite score and truth; {'none used' if not used else 'those left out'}")
