"""Tables of the TransRate experiment: correlations with intervals, timings, and the
closing "paper says / this run measured" table.

Every correlation comes from :func:`transfer_nb.stats.rank_correlations` (95 % bootstrap
intervals over the models or layers, permutation p-values), and every verdict from
:func:`transfer_nb.stats.interval_verdict`: the interval decides, not the point estimate.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from transfer_nb.experiments.transrate.config import ESTIMATORS, PAPER
from transfer_nb.stats import STATISTICS, interval_verdict, rank_correlations

__all__ = ["correlations", "correlation_table", "layer_correlation", "timing_table",
           "paper_vs_measured", "STRONG"]

#: the threshold of "a strong positive correlation" in the verdicts
STRONG = 0.5


def correlations(df, estimators: Sequence[str] | None = None, truth: str = "accuracy",
                 n_boot: int = 1000, seed: int = 0):
    """Pearson r, Kendall tau and weighted tau of each score vs ``truth``, per target.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, estimator`` and those of
        :func:`transfer_nb.stats.rank_correlations` (each statistic with its 95 %
        bootstrap interval ``*_low``/``*_high`` and permutation p-value ``*_p``, and
        ``n``); ``nan`` where a coefficient is undefined (fewer than 3 models or a
        constant column).
    """
    import pandas as pd
    if truth not in df.columns:
        raise ValueError(f"df has no column {truth!r}")
    estimators = [e for e in (estimators or (*ESTIMATORS, "transrate_layerwise"))
                  if e in df.columns]
    if not estimators:
        raise ValueError(f"df has none of the estimator columns {list(ESTIMATORS)}")
    parts = []
    for target, part in df.groupby("target", sort=False):
        c = rank_correlations(part[estimators], part[truth], n_boot=n_boot, seed=seed)
        parts.append(c.rename_axis("estimator").reset_index().assign(target=target))
    out = pd.concat(parts, ignore_index=True)
    return out[["target", "estimator"] + [c for c in out.columns
                                          if c not in ("target", "estimator")]]


def correlation_table(corr, stat: str = "pearson"):
    """Pivot of :func:`correlations`: targets x estimators for one statistic, + a mean row."""
    if stat not in STATISTICS:
        raise ValueError(f"stat must be one of {list(STATISTICS)}, got {stat!r}")
    order = list(dict.fromkeys(corr["estimator"]))
    table = corr.pivot(index="target", columns="estimator", values=stat)[order]
    table = table.loc[list(dict.fromkeys(corr["target"]))]
    table.loc["mean"] = table.mean(axis=0)
    return table


def layer_correlation(df, score: str = "transrate", n_boot: int = 1000, seed: int = 0) -> dict:
    """:func:`transfer_nb.stats.rank_correlations` of ``df[score]`` vs ``df.accuracy``,
    as a dict (``pearson``, ``pearson_low``, ..., ``n``)."""
    if score not in df.columns or "accuracy" not in df.columns:
        raise ValueError(f"df needs the columns {score!r} and 'accuracy'")
    row = rank_correlations(df[[score]], df["accuracy"], n_boot=n_boot, seed=seed).iloc[0]
    return {k: (int(v) if k == "n" else float(v)) for k, v in row.items()}


def timing_table(df):
    """Median wall-clock seconds per estimator over all (target, model) rows."""
    import pandas as pd
    cols = [c for c in df.columns if c.startswith("time_")]
    return pd.Series({c[5:]: float(df[c].median()) for c in cols}, name="median seconds")


def _interval(c, stat: str = "pearson") -> str:
    return f"{c[stat]:.2f} [{c[stat + '_low']:.2f}, {c[stat + '_high']:.2f}]"


def _combine(verdicts) -> str:
    """One verdict from several (one per target)."""
    verdicts = set(verdicts)
    if len(verdicts) == 1:
        return verdicts.pop()
    if {"reproduced", "not reproduced"} <= verdicts:
        return "mixed"
    return "inconclusive"


def _beats(a, b) -> str:
    """``a`` beats ``b`` when their Pearson intervals do not overlap, a above b."""
    if not all(np.isfinite([a["pearson_low"], a["pearson_high"], b["pearson_low"],
                            b["pearson_high"]])):
        return "inconclusive"
    if a["pearson_low"] > b["pearson_high"]:
        return "reproduced"
    if a["pearson_high"] < b["pearson_low"]:
        return "not reproduced"
    return "inconclusive"


def paper_vs_measured(ms_df=None, corr=None, layer_df=None):
    """The closing table: each claim of the paper next to what this run measured.

    Pass the outputs of :func:`model_selection`, :func:`correlations` and
    :func:`layer_selection` (any may be ``None``).  The ``reproduced`` column reads the
    95 % bootstrap intervals (the ``rule`` column states how): ``reproduced``, ``not
    reproduced``, ``inconclusive`` (the interval straddles the threshold), ``mixed``
    (reproduced on some targets, not on others) or ``not measured``.
    """
    import pandas as pd
    rows = []
    if layer_df is not None:
        c = layer_correlation(layer_df)
        rows.append({
            "claim": "layer selection: TransRate tracks the accuracy of transferring up to a layer",
            "paper says": f"Pearson ~{PAPER['layer_pearson']} in {PAPER['layer_cases']} cases",
            "this run measured": f"Pearson {_interval(c)}, Kendall {_interval(c, 'kendall')} "
                                 f"({c['n']} layers, 1 case, {layer_df['protocol'].iloc[0]})",
            "reproduced": interval_verdict(c["pearson_low"], c["pearson_high"], STRONG),
            "rule": f"95% interval of Pearson r above {STRONG}: reproduced; below: not"})
    if corr is not None:
        by = corr.set_index(["target", "estimator"])
        targets = list(dict.fromkeys(corr["target"]))
        has_tr = "transrate" in set(corr["estimator"])
        tr = {t: by.loc[(t, "transrate")] for t in targets} if has_tr else {}
        verdicts = [interval_verdict(r["pearson_low"], r["pearson_high"], STRONG)
                    for r in tr.values()]
        rows.append({
            "claim": "model selection: TransRate correlates with fine-tuned accuracy",
            "paper says": f"Pearson {PAPER['cifar100_pearson_transrate']} on CIFAR-100",
            "this run measured": "Pearson per target: " + "; ".join(
                f"{t} {_interval(r)}" for t, r in tr.items()),
            "reproduced": _combine(verdicts) if verdicts else "not measured",
            "rule": f"per target, 95% interval of Pearson r above {STRONG}: reproduced; "
                    "below: not"})
        has_lm = "logme" in set(corr["estimator"])
        beats = [_beats(tr[t], by.loc[(t, "logme")]) for t in targets] if has_tr and has_lm \
            else []
        rows.append({
            "claim": "model selection: TransRate beats LogME",
            "paper says": f"Pearson {PAPER['cifar100_pearson_transrate']} vs LogME "
                          f"{PAPER['cifar100_pearson_logme']} (CIFAR-100)",
            "this run measured": "; ".join(
                f"{t}: TransRate {_interval(tr[t])} vs LogME {_interval(by.loc[(t, 'logme')])}"
                for t in targets) if beats else "no LogME column",
            "reproduced": _combine(beats) if beats else "not measured",
            "rule": "per target, TransRate's Pearson interval entirely above LogME's: "
                    "reproduced; entirely below: not"})
    if ms_df is not None:
        t = timing_table(ms_df)
        others = {e: t.get(e) for e in ("logme", "hscore", "leep", "nce") if e in t.index}
        heavy = [e for e in ("logme", "hscore") if e in t.index]
        cheaper = all(t["transrate"] < t[e] for e in heavy)
        fastest = cheaper and all(t["transrate"] < v for v in others.values())
        rows.append({
            "claim": "TransRate is cheap to compute (wall-clock)",
            "paper says": "cheaper than the baselines: one forward pass + a log-det",
            "this run measured": "median s: " + ", ".join(
                f"{k} {v:.4f}" for k, v in [("transrate", t["transrate"]), *others.items()])
                + f"; feature pass {t.get('features', np.nan):.2f}, fine-tuning "
                  f"{t.get('finetune', np.nan):.1f}",
            "reproduced": "reproduced" if fastest else ("mixed" if cheaper else "not reproduced"),
            "rule": "median time below all four baselines: reproduced; below LogME and "
                    "H-score only: mixed"})
    return pd.DataFrame(rows, columns=["claim", "paper says", "this run measured",
                                       "reproduced", "rule"])
