"""Checks, verdicts and generated prose of the "which estimator" experiment (the
contract's ``report.checks`` / ``report.verdicts`` / ``report.summary``), and the lesson's
exploratory views (:func:`evaluate`, :func:`by_family`, :func:`per_target_best`).

Every check comes from :mod:`transfer_nb.experiments.gates`, every verdict from the rules
in :mod:`transfer_nb.stats` through :func:`transfer_nb.experiments.base.correlation_claim`
and :func:`~transfer_nb.experiments.base.paired_claim`: a selection claim is
within-target (Kendall tau per target, pooled over the targets that pass every gate),
"A beats B" is a paired difference on the same resamples, and a verdict that leaving
one item out flips is *fragile*.  Beside the pooled claims, the same claims within each
model family (ImageNet truncations alone, small CNNs alone), on the targets where that
family's items alone pass the discrimination gate: two families far apart in accuracy
can carry a pooled correlation that ranks nothing within either.
"""
from __future__ import annotations

import numpy as np

from transfer_nb.experiments import base, gates
from transfer_nb.experiments._results import fmt, gate_text, summary_start, undecided_line
from transfer_nb.experiments.which_estimator.presets import (FAMILIES, NAMED, PAPER,
                                                             PRIMARY_SCORE, score_names)
from transfer_nb.evaluation import evaluate_estimators
from transfer_nb.stats import MIN_GROUP_ITEMS

__all__ = ["checks", "verdicts", "summary", "item_table", "evaluate", "by_family",
           "per_target_best", "family_targets"]

_TRUTH = "linear_probe"
_CLAIM = "kendall"


def _kept(results):
    t = results.table
    return t[~t["item"].isin(base.declared_out(results) if results.cfg is not None
                             else set())]


def item_table(results):
    """One row per (target, item): every score, baseline and the probe accuracy averaged
    over the draws (``probe_sd``: their SD), with ``family``, ``model``, ``layer``."""
    t = _kept(results)
    cols = [c for c in [*score_names(), _TRUTH] if c in t]
    g = t.groupby(["target", "family", "model", "layer", "item"], sort=False)
    out = g[cols].mean().reset_index()
    out["probe_sd"] = g[_TRUTH].std(ddof=1).to_numpy() if t["seed"].nunique() > 1 else 0.0
    out["n_test"] = g["n_test"].first().to_numpy()
    return out


def checks(results):
    """The gates per target: seed-aware discrimination of the probe accuracies (the draws
    are the seeds) with the ceiling, and the probe gate (no draw collapsed to chance while
    the others learn); then, per family, the discrimination gate on that family's items
    alone (``<family>_passes``, ``<family>_spread_in_se``; not part of ``passes``: it
    decides only which targets a within-family claim uses)."""
    t = _kept(results)
    per_target, fam = {}, {}
    for target, part in t.groupby("target", sort=False):
        n_test = int(part["n_test"].iloc[0])
        chance = 1.0 / float(part["num_classes"].iloc[0])
        per_target[target] = {
            "discrimination": gates.discrimination_gate(part, item="item", value=_TRUTH,
                                                        n_test=n_test),
            "probe": gates.training_gate(part, item="item", value=_TRUTH, probe=None,
                                         chance=chance, n_test=n_test)}
        fam[target] = {f: gates.discrimination_gate(part[part["family"] == f], item="item",
                                                    value=_TRUTH, n_test=n_test)
                       for f in FAMILIES if (part["family"] == f).sum() >= 2}
    table = gates.gate_table(per_target)
    for key in ("spread", "se", "spread_in_se", "top"):
        table[key] = [per_target[tg]["discrimination"][key] for tg in table["target"]]
    for f in FAMILIES:
        table[f"{f}_passes"] = [bool(fam[tg][f]["passes"]) if f in fam[tg] else False
                                for tg in table["target"]]
        table[f"{f}_spread_in_se"] = [fam[tg][f]["spread_in_se"] if f in fam[tg] else np.nan
                                      for tg in table["target"]]
        table[f"{f}_reason"] = [fam[tg][f]["reason"] if f in fam[tg] else "no items"
                                for tg in table["target"]]
    return table


def family_targets(check_table, family: str) -> list:
    """Targets that pass every gate and whose ``family`` items alone discriminate."""
    ok = check_table["passes"] & check_table[f"{family}_passes"]
    return list(check_table.loc[ok, "target"])


def _family_gate_text(check_table, family: str) -> str:
    used = family_targets(check_table, family)
    bad = [f"{r['target']} ({r[f'{family}_reason'] or 'fails a target gate'})"
           for _, r in check_table.iterrows() if r["target"] not in used]
    return (f"{len(used)} of {len(check_table)} targets pass for {family} items alone"
            + (f"; excluded: {', '.join(bad)}" if bad else ""))


def _loo_difference(means, a: str, b: str, used) -> tuple:
    """Min and max of the pooled Kendall tau(a) - tau(b) with each item left out once
    (point estimates; groups of fewer than 5 usable items are left out, as the rules')."""
    from scipy.stats import kendalltau


    parts = []
    for _, g in means[means["target"].isin(list(used))].groupby("target", sort=False):
        g = g[np.isfinite(g[[a, b, _TRUTH]].to_numpy(float)).all(axis=1)]
        if len(g) >= MIN_GROUP_ITEMS:
            parts.append(g[[a, b, _TRUTH]].to_numpy(float))

    def diff(x):
        return (kendalltau(x[:, 0], x[:, 2]).statistic - kendalltau(x[:, 1], x[:, 2]).statistic)

    full = [diff(p) for p in parts]
    values = []
    for k, p in enumerate(parts):
        for i in range(len(p)):
            per = list(full)
            per[k] = diff(np.delete(p, i, axis=0))
            values.append(float(np.nanmean(per)))
    return (min(values), max(values)) if values else (np.nan, np.nan)


def _paired(means, a: str, used, g: str, n_boot: int, claim: str, primary: bool = False,
            paper="-") -> dict:
    """A paired claim "``a`` ranks better than params" with the leave-one-out range of
    the difference; a decided verdict that one item moves to or across 0 is *fragile*."""
    row = base.paired_claim(means, a, "params", _TRUTH, "target", claim=claim, paper=paper,
                            method=_CLAIM, groups_used=used, gates=g, n_boot=n_boot)
    lo, hi = _loo_difference(means, a, "params", used) if used else (np.nan, np.nan)
    if row["verdict"] in ("reproduced", "not reproduced") and not (lo * hi > 0):
        row["verdict"] = "fragile"
    row.update(primary=bool(primary), loo_low=lo, loo_high=hi,
               n_items=int(means["target"].isin(list(used)).sum()))
    return row


def _corr(means, col: str, used, g: str, n_boot: int, claim: str, paper="-") -> dict:
    return base.correlation_claim(means, col, _TRUTH, "target", claim=claim, primary=False,
                                  paper=paper, method=_CLAIM, groups_used=used, gates=g,
                                  n_boot=n_boot)


def verdicts(results, n_boot: int | None = None):
    """The "paper says / this run measured" table: the primary (PARC against the size
    baseline, paired), the pooled secondaries, then the pre-registered within-family
    analyses (``family`` column: ``all``, ``imagenet``, ``small_cnn``)."""
    n_boot = base.n_boot_of(results, n_boot)
    chk = checks(results)
    used, g = gates.passing(chk), gate_text(chk)
    means = item_table(results)
    p = PRIMARY_SCORE
    rows = [_paired(means, p, used, g, n_boot, primary=True,
                    claim=f"{p} ranks the items better than params (size)")]
    rows.append(_corr(means, p, used, g, n_boot, f"{p} correlates with probe accuracy"))
    rows.append(_corr(means, "params", used, g, n_boot, "params (size) correlates with "
                      "probe accuracy", paper=PAPER["params"]))
    for s in NAMED:
        paper = f"{PAPER[s] - PAPER['params']:+.2f}" if s in PAPER else "-"
        rows.append(_paired(means, s, used, g, n_boot, paper=paper,
                            claim=f"{s} ranks the items better than params (size)"))
    for row in rows:
        row["family"] = "all"
    for fam in FAMILIES:
        sub = means[means["family"] == fam]
        fused, fg = family_targets(chk, fam), _family_gate_text(chk, fam)
        fam_rows = []
        if sub["params"].nunique() > 1:   # the small CNNs share one size: no size claim
            fam_rows.append(_paired(sub, p, fused, fg, n_boot,
                                    claim=f"{fam} items alone: {p} ranks them better "
                                          "than params (size)"))
            fam_rows.append(_corr(sub, "params", fused, fg, n_boot,
                                  f"{fam} items alone: params correlates"))
        for s in (p, *NAMED):
            fam_rows.append(_corr(sub, s, fused, fg, n_boot, f"{fam} items alone: {s} "
                                  "correlates"))
        for row in fam_rows:
            row["family"] = fam
        rows += fam_rows
    return base.verdict_table(rows)


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown generated from the numbers: the gates, the primary verdict, the pooled
    claims and the within-family ones (pass ``verdict_table`` / ``check_table`` when
    already computed)."""
    chk, v, pr, first = summary_start(results, checks, verdicts, verdict_table, check_table)
    lines = [first]
    lines.append(f"**Primary claim** ({pr['claim']}): {pr['statistic']} "
                 f"{fmt(pr['estimate'], '+.2f')} [{fmt(pr['low'], '+.2f')}, "
                 f"{fmt(pr['high'], '+.2f')}] over {int(pr.get('n_items', 0) or 0)} (target, "
                 f"item) pairs, leave-one-out range [{fmt(pr['loo_low'], '+.2f')}, "
                 f"{fmt(pr['loo_high'], '+.2f')}]: **{pr['verdict']}**.")

    def said(row):
        return (f"{row['statistic']} {fmt(row['estimate'], '+.2f')} [{fmt(row['low'], '+.2f')}, "
                f"{fmt(row['high'], '+.2f')}]: {row['verdict']}")
    pooled = v[(v["family"] == "all") & ~v["primary"]]
    lines.append("**Pooled over both families.** " + "; ".join(
        f"{r['claim']}: {said(r)}" for _, r in pooled.iterrows()) + ".")
    for fam in FAMILIES:
        part = v[v["family"] == fam]
        if len(part):
            lines.append(f"**{fam} items alone** ({_family_gate_text(chk, fam)}). " + "; ".join(
                f"{r['claim'].split(': ', 1)[-1]}: {said(r)}" for _, r in part.iterrows()) + ".")
    undecided = undecided_line(results, v)
    if undecided:
        lines.append(undecided)
    return "\n\n".join(lines)


# ------------------------------------------------------------- the lesson's exploratory views
def _passing_items(results, check_table=None):
    chk = checks(results) if check_table is None else check_table
    means = item_table(results)
    return means[means["target"].isin(gates.passing(chk))]


def _stat(results) -> str:
    return getattr(results.cfg, "statistic", _CLAIM) if results.cfg is not None else _CLAIM


def evaluate(results, against: str = "best", check_table=None, n_boot: int | None = None):
    """:func:`transfer_nb.evaluation.evaluate_estimators` over every score and baseline,
    within target on the targets that pass :func:`checks` (the item means): each column's
    statistic with its interval and leave-one-out range, and its paired difference with
    ``against`` (``"best"``: the best column, picked after looking -- exploratory)."""

    sub = _passing_items(results, check_table)
    if sub.empty:
        raise ValueError("no target passes the ground-truth checks: nothing to evaluate")
    return evaluate_estimators(sub, _TRUTH, groups="target", columns=score_names(),
                               statistic=_stat(results), against=against,
                               n_boot=base.n_boot_of(results, n_boot), seed=0)


def per_target_best(results, check_table=None):
    """The statistic of every column on each passing target alone (columns: targets),
    and a dict naming each target's best column: does the winner change?"""
    import pandas as pd


    stat = _stat(results)
    cols = {}
    for target, sub in _passing_items(results, check_table).groupby("target", sort=False):
        ev = evaluate_estimators(sub, _TRUTH, columns=score_names(), statistic=stat,
                                 n_boot=100, seed=0)
        cols[target] = ev[stat]
    out = pd.DataFrame(cols)
    best = {t: out[t].idxmax() if out[t].notna().any() else "" for t in out.columns}
    return (out.sort_values(list(out.columns)[0], ascending=False) if len(out.columns)
            else out), best


def by_family(results, columns=("parc", "knn", "logme", "transrate", "params"),
              check_table=None, n_boot: int | None = None):
    """The statistic (with its interval) of ``columns`` over every item, and over each
    model family alone, on the targets that pass (for a family: where its items alone
    also discriminate): how much of a zoo-wide correlation is the gap between the
    families.  Rows: columns; one column per pool; ``"-"`` where undefined."""
    import pandas as pd


    chk = checks(results) if check_table is None else check_table
    means = item_table(results)
    stat, n_boot = _stat(results), base.n_boot_of(results, n_boot)
    pools = {"all items": means[means["target"].isin(gates.passing(chk))]}
    for f in FAMILIES:
        pools[f"{f} only"] = means[(means["family"] == f)
                                   & means["target"].isin(family_targets(chk, f))]
    out = {}
    for pool, g in pools.items():
        if g.empty:
            out[pool] = ["-"] * len(columns)
            continue
        ev = evaluate_estimators(g, _TRUTH, groups="target", columns=list(columns),
                                 statistic=stat, n_boot=n_boot, seed=0)
        out[pool] = [f"{ev.loc[c, stat]:+.2f} [{ev.loc[c, stat + '_low']:+.2f}, "
                     f"{ev.loc[c, stat + '_high']:+.2f}]" if np.isfinite(ev.loc[c, stat])
                     else "-" for c in columns]
    return pd.DataFrame(out, index=pd.Index(list(columns), name=stat))
