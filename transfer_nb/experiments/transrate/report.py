"""Checks, verdicts and generated prose of the TransRate experiment (the contract's
``report.checks`` / ``report.verdicts`` / ``report.summary``).

Every check comes from :mod:`transfer_nb.experiments.gates`, every verdict from the
rules in :mod:`transfer_nb.stats` through :func:`transfer_nb.experiments.base.correlation_claim`
and :func:`~transfer_nb.experiments.base.paired_claim`: selection claims are
within-target (pooled over the targets that pass every gate), "A beats B" is a paired
difference, and a verdict that one item flips is *fragile*.
"""
from __future__ import annotations

import warnings

import numpy as np

from transfer_nb import stats
from transfer_nb.experiments import base, gates
from transfer_nb.experiments._results import fmt, gate_text, summary_start, undecided_line
from transfer_nb.experiments.transrate.presets import BASELINES, ESTIMATORS, PAPER, PAPER_LAYER

__all__ = ["checks", "layer_checks", "verdicts", "summary", "correlation_table",
           "model_means", "recipe_table", "cost_table"]


def model_means(results, include_degenerate: bool = False):
    """One row per (target, model): seed-mean accuracy, scores and baselines."""
    t = results.table
    if not include_degenerate:
        t = t[~t["model"].isin(base.declared_out(results))]
    cols = [*ESTIMATORS, *BASELINES, "accuracy", "linear_probe", "time_transrate_projected",
            "time_logme", "time_finetune"]
    return base.item_means(t, "target", "model", [c for c in cols if c in t])


def checks(results):
    """The gates per target of the model-selection zoo (declared-degenerate models out):
    seed-aware discrimination with the ceiling, and the training gate (no collapsed
    seed, LP-FT reaches the linear probe on most models, training accuracy plateaued)."""
    t = results.table[~results.table["model"].isin(base.declared_out(results))]
    curves = results.tables.get("curves")
    per_target = {}
    for target, part in t.groupby("target", sort=False):
        n_test = int(part["n_test"].iloc[0])
        chance = 1.0 / float(part["num_classes"].iloc[0])
        c = None
        if curves is not None and len(curves):
            cc = curves[(curves["target"] == target) & curves["model"].isin(part["model"])]
            c = [g.sort_values("epoch")["train_accuracy"].to_numpy()
                 for _, g in cc.groupby(["model", "seed"])]
        per_target[target] = {
            "discrimination": gates.discrimination_gate(part, n_test=n_test),
            "training": gates.training_gate(part, chance=chance, n_test=n_test, curves=c)}
    table = gates.gate_table(per_target)
    extra = {k: [per_target[tg][g][k] for tg in table["target"]]
             for g, k in (("discrimination", "spread"), ("discrimination", "se"),
                          ("discrimination", "spread_in_se"), ("discrimination", "top"),
                          ("training", "above_probe"), ("training", "plateaued"))}
    for k, v in extra.items():
        table[k] = v
    return table


def layer_checks(results):
    """Discrimination of the layer-selection truth per case (layers as items)."""
    layers = results.tables.get("layers")
    per_case = {}
    if layers is None or layers.empty:
        return gates.gate_table({})
    n_test = int(results.table["n_test"].max()) if len(results.table) else 250
    for case, part in layers.groupby("case", sort=False):
        per_case[case] = {"discrimination": gates.discrimination_gate(
            part, item="layer", n_test=n_test)}
    return gates.gate_table(per_case).rename(columns={"target": "case"})


def verdicts(results, n_boot: int | None = None):
    """The "paper says / this run measured" table (one row per claim, one primary)."""
    n_boot = base.n_boot_of(results, n_boot)
    chk = checks(results)
    used = gates.passing(chk)
    g = gate_text(chk)
    means = model_means(results)
    rows = [base.correlation_claim(
        means, "transrate_projected", "accuracy", "target", primary=True, claim=
        "projected TransRate correlates with fine-tuned accuracy", paper=PAPER[
            "transrate_projected"]["pearson"], groups_used=used, gates=g, n_boot=n_boot)]
    rows.append(base.correlation_claim(
        means, "transrate_projected", "accuracy", "target", primary=False,
        claim="projected TransRate: weighted tau", method="weighted_tau",
        paper=PAPER["transrate_projected"]["weighted_tau"], groups_used=used, gates=g,
        n_boot=n_boot))
    for col in [c for c in ESTIMATORS if c != "transrate_projected"] + ["source_accuracy",
                                                                         "source_n"]:
        rows.append(base.correlation_claim(
            means, col, "accuracy", "target", primary=False, claim=f"{col} correlates",
            paper=PAPER.get(col, {}).get("pearson", "-"), groups_used=used, gates=g,
            n_boot=n_boot))
    for other in ("logme", "leep", "nce", "source_accuracy", "source_n"):
        paper_d = (PAPER["transrate_projected"]["pearson"] - PAPER[other]["pearson"]
                   if other in PAPER else None)
        direction = np.sign(paper_d) if paper_d else 1.0
        word = "beats" if direction > 0 else "loses to"
        rows.append(base.paired_claim(
            means, "transrate_projected", other, "accuracy", "target",
            claim=f"projected TransRate {word} {other}",
            paper=f"{paper_d:+.2f}" if paper_d is not None else "-", direction=direction,
            groups_used=used, gates=g, n_boot=n_boot))
    rows += _layer_rows(results, n_boot)
    rows.append(_cost_row(results))
    rows += base.exclusion_rows(results, verdicts, n_boot)
    return base.verdict_table(rows)


def _layer_rows(results, n_boot: int) -> list:
    layers = results.tables.get("layers")
    if layers is None or layers.empty:
        return []
    chk = layer_checks(results)
    means = base.item_means(layers, "case", "layer", ["transrate", "transrate_layerwise",
                                                      "width", "accuracy"])
    g = gate_text(chk, "case", "cases")
    used = list(chk.loc[chk["passes"], "case"])
    return [base.correlation_claim(means, col, "accuracy", "case", primary=False,
                                   claim=f"layer selection: {col} correlates",
                                   paper=PAPER_LAYER["pearson"], groups_used=used, gates=g,
                                   n_boot=n_boot)
            for col in ("transrate_layerwise", "transrate")]


def cost_table(results):
    """Wall-clock per (target, model): projected TransRate, LogME, one fine-tuning."""
    t = model_means(results, include_degenerate=True)
    out = t[["target", "model", "time_transrate_projected", "time_logme", "time_finetune"]].copy()
    out["finetune_over_projected"] = out["time_finetune"] / out["time_transrate_projected"]
    out["logme_over_projected"] = out["time_logme"] / out["time_transrate_projected"]
    return out


def _cost_row(results) -> dict:
    c = cost_table(results)
    ratio = np.log10(c["finetune_over_projected"].to_numpy(float))
    m, lo, hi = stats.mean_interval(ratio)
    return base.verdict_row(
        "projected TransRate costs < 1/10 of one fine-tuning", primary=False,
        paper="seconds vs GPU-hours", statistic="mean log10(fine-tune s / TransRate s)",
        estimate=m, low=lo, high=hi,
        rule="t-interval over (target, model) cells: low > 1 (10x): reproduced; high < 1: "
             "not reproduced", verdict=stats.interval_verdict(lo, hi, 1.0),
        gates="timed in the run (wall-clock, one torch thread)")


def correlation_table(results, include_degenerate: bool = True, n_boot: int = 1000):
    """Per target: Pearson / Kendall / weighted tau (intervals, leave-one-out range) of
    every score and baseline, with the declared-degenerate models in or out."""
    import pandas as pd
    means = model_means(results, include_degenerate)
    rows = []
    for target, part in means.groupby("target", sort=False):
        cols = [c for c in (*ESTIMATORS, *BASELINES) if c in part]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant baselines -> nan
            corr = stats.rank_correlations({c: part[c] for c in cols}, part["accuracy"],
                                           n_boot=n_boot)
        for c in cols:
            lo, hi = (stats.leave_one_out_range(part[c], part["accuracy"])
                      if part[c].nunique() > 1 else (np.nan, np.nan))
            rows.append({"target": target, "score": c, **corr.loc[c].to_dict(),
                         "loo_low": lo, "loo_high": hi})
    return pd.DataFrame(rows)


def recipe_table(results):
    """The lr grid per target: mean validation accuracy of each lr, and the choice."""
    r = results.tables["recipe"]
    return (r.groupby(["target", "lr"])
             .agg(val_accuracy=("val_accuracy", "mean"), chosen=("chosen", "first"))
             .reset_index())


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown generated from the numbers: gates, the primary verdict, the rest (pass
    ``verdict_table`` / ``check_table`` when already computed: the verdicts' fragile
    check is the slow part)."""
    chk, v, p, first = summary_start(results, checks, verdicts, verdict_table, check_table)
    lines = [first]
    lines.append(f"**Primary claim** ({p['claim']}; paper {p['paper']}): {p['statistic']} "
                 f"{fmt(p['estimate'])} [{fmt(p['low'])}, {fmt(p['high'])}] over "
                 f"{int(p.get('n_items', 0) or 0)} (target, model) items, leave-one-out "
                 f"range [{fmt(p['loo_low'])}, {fmt(p['loo_high'])}]: **{p['verdict']}**.")
    counts = v["verdict"].value_counts()
    lines.append("All claims: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".")
    undecided = undecided_line(results, v)
    if undecided:
        lines.append(undecided)
    return "\n\n".join(lines)
