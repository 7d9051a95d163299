"""Which estimator to trust on one's own zoo: every score column against a ground truth.

A researcher who has measured a ground truth on their own models (e.g.
``score_models(..., ground_truth="linear_probe")``) asks which column of the table -- an
estimator, or a static baseline such as the parameter count or the feature width --
ranks the models best.  :func:`evaluate_estimators` answers with the project's rules
(docs/contributing.md, "Experiments that mean something"):

* each column's Pearson r, Kendall tau and weighted tau with bootstrap intervals,
  computed **within groups** (e.g. per target) and pooled (Fisher-z for Pearson, plain
  mean for the taus) when ``groups`` is given: :func:`transfer_nb.stats.pooled_within`;
* its leave-one-out range (min and max of the statistic over dropping each item): a wide
  range means one model carries the correlation (:func:`transfer_nb.stats.leave_one_out_range`);
* its **paired** difference against the best column (or a named one), bootstrapped on the
  same resamples of the items (:func:`transfer_nb.stats.paired_correlation_difference`):
  "A beats B" is decided by that interval, not by two overlapping ones.

Recent comparisons (Agostinelli et al. ECCV 2022; Chaves et al. TMLR 2024) find that
which metric wins changes with the model pool, the target and the statistic, and that
few beat a plain ImageNet-accuracy or model-size ranking: the table shows both kinds
side by side so the answer on one's own data is read from the intervals.
"""
from __future__ import annotations

import warnings

import numpy as np

from transfer_nb import stats
from transfer_nb.stats._inputs import check_rule_args, numeric, usable_groups
from transfer_nb.estimators import registry
from transfer_nb.stats import MIN_GROUP_ITEMS
from transfer_nb.stats import STATISTICS  # pearson, kendall, weighted_tau

__all__ = ["evaluate_estimators", "score_columns", "STATISTICS", "degenerate_reason",
           "truth_separation", "models_needed", "constant_up_to_rounding"]

# bookkeeping columns of score_models / score_layers / the experiments: never scores
_NOT_SCORES = ("n_train", "n_test", "num_classes", "n_classes", "seed", "n")
_NOT_PREFIXES = ("time_", "accuracy")
_NOT_SUFFIXES = ("_seconds", "_std", "_low", "_high")


def score_columns(table, exclude=()) -> list:
    """Numeric columns of ``table`` that are scores or baselines (bookkeeping left out).

    Left out: ``exclude``, ``n_train``, ``n_test``, ``num_classes``, ``n_classes``,
    ``seed``, ``n``,
    names starting with ``time_`` or ``accuracy`` (ground truths and their seeds) and
    names ending with ``_seconds``, ``_std``, ``_low`` or ``_high``.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    out = []
    for c in table.columns:
        name = str(c)
        if c in exclude or name in _NOT_SCORES or name.startswith(_NOT_PREFIXES) \
                or name.endswith(_NOT_SUFFIXES):
            continue
        if is_numeric_dtype(table[c]) and not is_bool_dtype(table[c]):
            out.append(c)
    return out


def _vector(table, value, name: str, kind: str):
    """A column name of ``table`` or an array-like of one value per row."""
    if isinstance(value, str):
        if value not in table.columns:
            raise ValueError(f"{name} {value!r} is not a column of the table; it has "
                             f"{[str(c) for c in table.columns]}")
        return table[value].to_numpy(), value
    v = np.asarray(value).ravel()
    if v.size != len(table):
        raise ValueError(f"{name} has {v.size} values but the table has {len(table)} rows; "
                         f"expected one {kind} per row")
    return v, None


def _orientation(column: str) -> tuple[float, str]:
    """-1 and a note for registered scores where lower is better (distances)."""
    if column in registry.REGISTRY and not registry.REGISTRY[column].higher_is_better:
        return -1.0, "lower is better: sign flipped"
    return 1.0, ""


def _kind(column: str) -> str:
    base = column.split("=")[0]
    return "estimator" if column in registry.REGISTRY or base in registry.REGISTRY \
        else "baseline"


def _usable(x, truth, groups):
    """Items with a finite score and truth; notes on dropped items, groups with too few
    items (:data:`transfer_nb.stats.MIN_GROUP_ITEMS`) and constant groups; whether no
    group is left to correlate."""
    ok = np.isfinite(x) & np.isfinite(truth)
    notes = []
    if (~ok).any():
        notes.append(f"{int((~ok).sum())} item(s) without a finite value left out")
    g = groups if groups is not None else np.zeros(x.size, dtype=int)
    labels = list(dict.fromkeys(g[ok].tolist()))
    if not labels:
        notes.append("no item with a finite value: correlations undefined")
        return ok, notes, True
    sizes = {lab: int((ok & (g == lab)).sum()) for lab in labels}
    if groups is None:
        sizes = {"all": sizes[labels[0]]}
    used, small = usable_groups(sizes, MIN_GROUP_ITEMS)
    if small:
        notes.append(small)
    if groups is None:
        used = labels if used else []
    constant = [lab for lab in used if np.ptp(x[ok & (g == lab)]) == 0]
    if used and len(constant) == len(used):
        notes.append("constant" + (" within every group" if groups is not None else "")
                     + ": correlations undefined")
    elif constant:
        notes.append(f"constant within {', '.join(map(str, constant))}: those groups left out")
    return ok, notes, len(constant) == len(used)


def evaluate_estimators(table, truth, groups=None, columns=None, statistic: str = "kendall",
                        against: str = "best", n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95):
    """Every estimator and baseline column against a ground truth, in one table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per item (model, or model x target); numeric columns are scores, e.g.
        the output of :func:`transfer_nb.selection.score_models` (several targets
        concatenated, with a column naming the target, for ``groups``).
    truth : str or array-like
        The ground-truth column (e.g. ``"accuracy"``), or one value per row.
    groups : str or array-like, optional
        Column (or values) grouping the rows, e.g. the target: every statistic is then
        computed within each group and pooled (Fisher-z for Pearson, plain mean for the
        taus), and the bootstrap resamples within groups.  Groups with fewer than
        :data:`transfer_nb.stats.MIN_GROUP_ITEMS` (5) usable items are left out, and
        the ``note`` says "too few items" (:data:`transfer_nb.stats.MIN_GROUP_REASON`).
    columns : sequence of str, optional
        Columns to evaluate.  Default: :func:`score_columns` (numeric columns other
        than the truth, the groups and bookkeeping such as ``n_train`` or ``*_seconds``).
    statistic : {"kendall", "pearson", "weighted_tau"}, default "kendall"
        The statistic that picks the best column and that the leave-one-out range and
        the paired differences are computed for (all three are reported).
    against : str, default "best"
        Column every other is compared with: ``"best"`` (highest ``statistic``) or a
        column name (e.g. a baseline such as ``"params"``).
    n_boot, seed, confidence : int, int, float
        Bootstrap resamples (the same resamples for every column, so the differences
        are paired), their seed and the interval level.

    Returns
    -------
    pandas.DataFrame
        Index ``score`` (the columns, best first by ``statistic``; undefined ones last).
        Columns: ``kind`` (``"estimator"`` for a name of the estimator registry, else
        ``"baseline"``); for each of ``pearson``, ``kendall``, ``weighted_tau`` the
        pooled value and ``_low`` / ``_high``; ``loo_min``, ``loo_max`` (of
        ``statistic``); ``difference``, ``difference_low``, ``difference_high`` (this
        column's ``statistic`` minus the reference's, paired bootstrap on the items
        both have); ``verdict`` (``"best"`` / ``"reference"``, ``"worse than X"``,
        ``"better than X"`` or ``"not separable from X"``: the paired interval
        decides); ``n`` (items used); ``note`` (why a value is NaN, items left out,
        sign flips).  ``attrs``: ``statistic``, ``against`` (the reference column),
        ``truth``, ``groups``, ``n_boot``.  A registered score where lower is better
        (``pge``) is negated first, so higher is better in every row.

    Raises
    ------
    ValueError
        On a missing column, a length mismatch, a truth that is not numbers, an unknown
        ``statistic``, ``against`` not a column, no column to evaluate, ``n_boot < 1``
        or ``confidence`` outside (0, 1).
    """
    import pandas as pd

    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {list(STATISTICS)}; got {statistic!r}")
    check_rule_args(n_boot, confidence, seed)
    y, truth_name = _vector(table, truth, "truth", "ground truth")
    y = numeric(y, "truth" if truth_name is None else f"truth column {truth_name!r}")
    g, group_name = (None, None) if groups is None else _vector(table, groups, "groups", "group")
    if g is not None:
        g = np.asarray(g).astype(str)
    if columns is None:
        columns = score_columns(table, exclude=[c for c in (truth_name, group_name) if c])
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the table; it has "
                         f"{[str(c) for c in table.columns]}")
    if not columns:
        raise ValueError("no score column to evaluate: pass columns=[...]")
    if against != "best" and against not in columns:
        raise ValueError(f"against must be 'best' or one of the evaluated columns "
                         f"{[str(c) for c in columns]}; got {against!r}")

    values, rows = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # nanmean of empty groups
        for c in columns:
            sign, flip_note = _orientation(str(c))
            x = sign * pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64)
            ok, notes, undefined = _usable(x, y, g)
            why = None if undefined else degenerate_reason(
                x[ok], None if g is None else g[ok], _classes_of(table, ok), str(c),
                _row_names(table, ok))
            if why:  # never ranked: constant up to rounding, or at its bound
                notes.append(f"left out: {why}")
                undefined = True
            notes = ([flip_note] if flip_note else []) + notes
            values[c] = x
            row = {"kind": _kind(str(c)), "n": int(ok.sum())}
            for s in STATISTICS:
                row[s] = row[f"{s}_low"] = row[f"{s}_high"] = np.nan
            row["loo_min"] = row["loo_max"] = np.nan
            if not undefined:
                gs = None if g is None else g[ok]
                for s in STATISTICS:
                    res = stats.pooled_within(x[ok], y[ok], gs, method=s, n_boot=n_boot,
                                              seed=seed, confidence=confidence)
                    row[s], row[f"{s}_low"], row[f"{s}_high"] = (res["estimate"], res["low"],
                                                                 res["high"])
                row["n"] = int(res["n_items"])          # items of the groups used
                row["loo_min"], row["loo_max"] = stats.leave_one_out_range(
                    x[ok], y[ok], method=statistic, groups=gs)
            if not np.isfinite(row[statistic]) and not notes:
                notes.append(f"{statistic} undefined")
            row["note"] = "; ".join(notes)
            rows[c] = row

        defined = [c for c in columns if np.isfinite(rows[c][statistic])]
        ref = against
        if against == "best":
            ref = max(defined, key=lambda c: rows[c][statistic]) if defined else None
        for c in columns:
            row = rows[c]
            row["difference"] = row["difference_low"] = row["difference_high"] = np.nan
            if ref is None or not np.isfinite(row[statistic]):
                row["verdict"] = ""
                continue
            if c == ref:
                row["difference"] = 0.0
                row["verdict"] = "best" if against == "best" else "reference"
                continue
            both = np.isfinite(values[c]) & np.isfinite(values[ref]) & np.isfinite(y)
            res = stats.paired_correlation_difference(
                values[c][both], values[ref][both], y[both],
                None if g is None else g[both], method=statistic, n_boot=n_boot, seed=seed,
                confidence=confidence)
            row["difference"], row["difference_low"], row["difference_high"] = (
                res["estimate"], res["low"], res["high"])
            row["verdict"] = _verdict(res["low"], res["high"], str(ref))
            if both.sum() < max(row["n"], rows[ref]["n"]):
                row["note"] = "; ".join(filter(None, [row["note"], (
                    f"difference on the {int(both.sum())} items both have")]))

    order = ["kind", *[f"{s}{suf}" for s in STATISTICS for suf in ("", "_low", "_high")],
             "loo_min", "loo_max", "difference", "difference_low", "difference_high",
             "verdict", "n", "note"]
    out = pd.DataFrame.from_dict(rows, orient="index")[order]
    out.index = [str(c) for c in out.index]
    out.index.name = "score"
    out = out.sort_values(statistic, ascending=False, na_position="last", kind="stable")
    out.attrs.update(statistic=statistic, against=None if ref is None else str(ref),
                     truth=truth_name, groups=group_name, n_boot=int(n_boot))
    problem = _truth_problem(table, y, g)
    if against == "best":
        _conclude(out, statistic, problem, int(np.isfinite(y).sum()))
    return out


def _verdict(low: float, high: float, ref: str) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"not separable from {ref}"
    if high < 0:
        return f"worse than {ref}"
    if low > 0:
        return f"better than {ref}"
    return f"not separable from {ref}"


# ------------------------------------------------ what may be ranked, and what it says
#: relative spread below which a column counts as constant (rounding noise, e.g. H-score
#: at K - 1 = 4 printed as 4.0000000000000062 and 3.9999999999999973)
ROUNDING = 1e-9


def constant_up_to_rounding(values) -> bool:
    """Whether the finite ``values`` (two or more) differ only by rounding."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return len(v) >= 2 and np.ptp(v) <= ROUNDING * max(1.0, float(np.abs(v).mean()))


def _classes_of(table, ok):
    for col in ("n_classes", "num_classes"):
        if col in table.columns:
            return np.asarray(table[col], dtype=np.float64)[ok]
    return None


def _row_names(table, ok) -> list:
    names = table["model"] if "model" in table.columns else table.index
    return [str(v) for v in np.asarray(names)[ok]]


def degenerate_reason(x, groups=None, n_classes=None, column: str = "", names=None):
    """Why a score column cannot rank these items, or ``None``.

    * constant up to rounding within every group (:func:`constant_up_to_rounding`);
    * H-score at its bound ``K - 1`` (``n_classes`` per item) for any item: with images
      <= feature width the pseudo-inverse explains every direction, so the value says
      nothing about the model.

    Parameters
    ----------
    x : array-like
        The column's finite values, one per item.
    groups : array-like, optional
        Group of each item (constancy is judged within each group).
    n_classes : array-like, optional
        Classes per item (``K``).
    column : str
        The column's name (the bound is checked for ``hscore``).
    names : list of str, optional
        Item names, for the message.
    """
    x = np.asarray(x, dtype=np.float64)
    if column.split("=")[0] == "hscore" and n_classes is not None:
        k1 = np.asarray(n_classes, dtype=np.float64) - 1
        at = np.isclose(x, k1, rtol=1e-6, atol=1e-9)
        if at.any():
            who = "every item" if at.all() else ", ".join(
                (names or [str(i) for i in range(x.size)])[i] for i in np.flatnonzero(at))
            bound = f" = {k1[at][0]:g}" if np.ptp(k1[at]) == 0 else ""
            return (f"at its bound K - 1{bound} for {who} (images <= feature width: every "
                    "direction is 'explained'), so it cannot rank them")
    g = np.zeros(x.size, dtype=int) if groups is None else np.asarray(groups)
    labels = list(dict.fromkeys(g.tolist()))
    if labels and all(constant_up_to_rounding(x[g == lab]) or (g == lab).sum() < 2
                      for lab in labels) and any((g == lab).sum() >= 2 for lab in labels):
        return "constant up to rounding" + (" within every group" if groups is not None
                                            else "") + ", so it cannot rank them"
    return None


def truth_separation(values, n_test) -> dict:
    """:func:`transfer_nb.stats.discrimination` of held-out accuracies measured on
    ``n_test`` images each: spread against the median binomial standard error, and the
    0.97 ceiling."""

    v = np.asarray(values, dtype=np.float64)
    se = float(np.median([stats.accuracy_se(p, int(k)) for p, k in zip(v, n_test)]))
    return stats.discrimination(v, se)


def _truth_problem(table, y, groups) -> str:
    """Why the truth cannot separate the items ("" when it can or cannot be told): the
    same value for every item, or (one target with ``n_test``) a spread within 3 standard
    errors or a model at the ceiling."""
    finite = np.isfinite(y)
    if finite.sum() >= 2 and constant_up_to_rounding(y[finite]):
        return "it is the same for every model"
    if groups is None and "n_test" in table.columns and finite.sum() >= 2:
        n_test = np.asarray(table["n_test"], dtype=np.float64)[finite]
        v = y[finite]
        if np.isfinite(n_test).all() and (n_test > 0).all() and ((v >= 0) & (v <= 1)).all():
            check = truth_separation(v, n_test)
            if not check["passes"]:
                return check["reason"]
    return ""


def models_needed(difference: float, high: float, n: int) -> int | None:
    """Items it would take for the paired interval of ``difference`` (runner-up minus
    best, upper bound ``high``) to exclude 0, if its width shrinks as 1/sqrt(n);
    ``None`` when the difference is 0 (the two rank the items identically)."""
    if not (np.isfinite(difference) and np.isfinite(high)) or difference >= 0:
        return None
    reach = (high - difference) / abs(difference)  # upper half-width in units of |d|
    return int(max(n + 1, np.ceil(n * reach ** 2)))


def _conclude(out, statistic: str, truth_problem: str, n_models: int) -> None:
    """``attrs["best"]`` (a column only when its paired interval against the runner-up
    excludes 0), ``attrs["conclusion"]`` (one sentence), ``attrs["runner_up"]`` and
    ``attrs["models_needed"]``; the top row's verdict says "not separable" otherwise."""

    defined = out.index[out[statistic].notna()].tolist()
    n = int(out["n"].max()) if len(out) else 0
    out.attrs.update(best=None, runner_up=None, models_needed=None)
    besides = (f"; the ground truth cannot separate them either ({truth_problem})"
               if truth_problem else "")
    if n_models < MIN_GROUP_ITEMS:
        out["verdict"] = ""
        out.attrs["conclusion"] = (
            f"{n_models} models are too few to evaluate the estimators: a correlation needs "
            f"at least {MIN_GROUP_ITEMS} (with 4 the smallest two-sided permutation p is "
            f"0.083){besides}")
        return
    if truth_problem:
        out["verdict"] = ""
        out.attrs["conclusion"] = (f"the ground truth cannot separate these models "
                                   f"({truth_problem}): no estimator can be checked against "
                                   "it")
        return
    if not defined:
        out.attrs["conclusion"] = "no column has a defined correlation with the ground truth"
        return
    top = defined[0]
    if len(defined) == 1:
        out.loc[top, "verdict"] = ""
        out.attrs["conclusion"] = f"only {top} could be evaluated: nothing to compare it with"
        return
    runner = defined[1]
    row = out.loc[runner]
    d, low, high = (float(row["difference"]), float(row["difference_low"]),
                    float(row["difference_high"]))
    out.attrs["runner_up"] = runner
    if np.isfinite(high) and high < 0:
        out.attrs["best"] = top
        out.attrs["conclusion"] = (
            f"{top} ranks these models best: its paired interval against the runner-up "
            f"{runner} excludes 0 ({runner} minus {top}: {d:+.2f} [{low:+.2f}, {high:+.2f}])")
        return
    out.loc[top, "verdict"] = f"not separable from {runner}"
    need = models_needed(d, high, n)
    out.attrs["models_needed"] = need
    how = (f"about {need} models would be needed to separate {top} from {runner} "
           "(from the width of their paired interval)" if need is not None else
           f"{top} and {runner} rank these models the same, so more of these models would "
           "not separate them")
    out.attrs["conclusion"] = (
        f"no estimator is separable from the others on these models: {runner} minus {top} "
        f"is {d:+.2f} [{low:+.2f}, {high:+.2f}] over {n} models; {how}")
