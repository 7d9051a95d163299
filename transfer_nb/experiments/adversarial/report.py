"""Checks, verdicts and generated prose of the adversarial-sources experiment.

* :func:`checks` -- the premise gate (paired by seed: adversarial training costs clean
  source accuracy and buys robust accuracy at the largest eps), and for each ground truth
  the seed-aware discrimination gate; for fine-tuning also the training gate.
* :func:`verdicts` -- the "paper says / this run measured" table: "A beats B" as the
  t-interval of per-seed differences (:func:`transfer_nb.stats.paired_difference`); the
  estimators' correlations *within seed* (the sources of one seed share the target
  subsample and the teacher, so seeds are groups, never independent items).
* :func:`summary` -- markdown from the numbers.
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats
from transfer_nb.stats import mean_interval
from transfer_nb.experiments import base, gates
from transfer_nb.experiments.adversarial.presets import PAPER

__all__ = ["source_summary", "checks", "verdicts", "summary", "paired"]

TRUTHS = ("linear_probe", "fine_tune")
_MEASURES = ("linear_probe", "fine_tune", "source_clean", "source_robust", "transrate", "logme")


def source_summary(df):
    """Mean, standard error and 95 % t-interval over seeds per source, for each measure."""
    import pandas as pd
    out = []
    for (kind, eps), g in df.groupby(["kind", "eps"], sort=False):
        row = {"kind": kind, "eps": eps, "seeds": len(g)}
        for m in _MEASURES:
            v = g[m].to_numpy(dtype=float)
            mean, low, high = mean_interval(v)
            sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan
            row.update({m: mean, f"{m}_sem": sem, f"{m}_low": low, f"{m}_high": high})
        out.append(row)
    return pd.DataFrame(out)


def _table(results):
    t = getattr(results, "table", results).copy()
    t["source"] = t["kind"] + " eps " + t["eps"].map(lambda e: f"{e:g}")
    return t


def paired(table, measure: str, a: tuple, b: tuple) -> dict:
    """``measure(b) - measure(a)`` paired by seed (:func:`transfer_nb.stats.paired_difference`)."""
    ga = table[(table.kind == a[0]) & np.isclose(table.eps, a[1])].set_index("seed")[measure]
    gb = table[(table.kind == b[0]) & np.isclose(table.eps, b[1])].set_index("seed")[measure]
    gb, ga = gb.align(ga, join="inner")
    return stats.paired_difference(gb.to_numpy(float), ga.to_numpy(float))


def _cfg_values(results, table):
    cfg = getattr(results, "cfg", None)
    big = float(table.loc[table.kind == "adversarial", "eps"].max())
    moderate = float(cfg.moderate_eps) if cfg is not None else float(
        sorted(table.loc[table.kind == "adversarial", "eps"].unique())[0])
    truth = cfg.truth if cfg is not None else "linear_probe"
    return moderate, big, truth


def checks(results):
    """One row (the target): the premise and each truth's gates, with their numbers."""
    t = _table(results)
    _, big, _ = _cfg_values(results, t)
    std, adv = ("standard", 0.0), ("adversarial", big)
    clean = paired(t, "source_clean", std, adv)
    robust = paired(t, "source_robust", std, adv)
    premise_ok = clean["high"] < 0 and robust["low"] > 0
    why = [] if premise_ok else [
        f"clean accuracy eps {big:g} - eps 0: {clean['estimate']:+.3f} [{clean['low']:+.3f}, "
        f"{clean['high']:+.3f}] (must be < 0); robust: {robust['estimate']:+.3f} "
        f"[{robust['low']:+.3f}, {robust['high']:+.3f}] (must be > 0)"]
    n_test = int(t["n_test"].iloc[0]) if "n_test" in t else 250
    chance = 1.0 / float(t["num_classes"].iloc[0]) if "num_classes" in t else 0.2
    g = {"premise": {"passes": premise_ok, "reason": "; ".join(why)}}
    for truth in TRUTHS:
        g[f"{truth} discrimination"] = gates.discrimination_gate(
            t, item="source", value=truth, n_test=n_test)
    g["fine_tune training"] = gates.training_gate(t, item="source", value="fine_tune",
                                                  chance=chance, n_test=n_test)
    name = getattr(getattr(results, "cfg", None), "targets", (base.TargetSpec("target", ""),))
    table = gates.gate_table({name[0].name: g})
    table["clean_drop"], table["robust_gain"] = clean["estimate"], robust["estimate"]
    table["premise_reason"] = g["premise"]["reason"]
    return table


def _excluded_by(chk, truth: str) -> str:
    row = chk.iloc[0]
    bad = [k for k in ("premise", f"{truth} discrimination") if not row[k]]
    if truth == "fine_tune" and not row["fine_tune training"]:
        bad.append("fine_tune training")
    return ", ".join(bad)


def _diff_row(t, chk, claim, measure, a, b, paper, primary=False, gate_truth=None):
    d = paired(t, measure, a, b)
    rule = ("t-interval of per-seed differences (b - a): > 0 reproduced; < 0 not reproduced; "
            "else inconclusive")
    verdict = stats.direction_verdict(d["low"], d["high"], 1.0)
    bad = _excluded_by(chk, gate_truth) if gate_truth else ""
    if bad:
        verdict = "excluded"
    return base.verdict_row(claim, primary=primary, paper=paper, statistic=f"{measure} difference",
                            estimate=d["estimate"], low=d["low"], high=d["high"], rule=rule,
                            verdict=verdict, gates=f"failed: {bad}" if bad else "passed",
                            n_seeds=d["n"])


def verdicts(results):
    """The "paper says / this run measured" table (exactly one primary claim)."""
    t = _table(results)
    chk = checks(results)
    moderate, big, truth = _cfg_values(results, t)
    other = "fine_tune" if truth == "linear_probe" else "linear_probe"
    std = ("standard", 0.0)
    semi_eps = float(t.loc[t.kind == "semi+adversarial", "eps"].iloc[0])
    rows = [
        _diff_row(t, chk, f"eps {moderate:g} transfers better than eps 0 ({truth})", truth, std,
                  ("adversarial", moderate), PAPER["moderate_helps"], True, truth),
        _diff_row(t, chk, f"eps {moderate:g} transfers better than eps 0 ({other})", other, std,
                  ("adversarial", moderate), PAPER["moderate_helps"], False, other),
        _diff_row(t, chk, f"transfer falls again from eps {moderate:g} to eps {big:g} "
                  f"(not monotone; {truth})", truth, ("adversarial", big),
                  ("adversarial", moderate), "moderate eps transfers best", False, truth),
        _diff_row(t, chk, f"clean source accuracy falls from eps 0 to eps {big:g}",
                  "source_clean", ("adversarial", big), std, PAPER["accuracy_falls"]),
        _diff_row(t, chk, f"semi-supervised beats standard ({truth})", truth, std, ("semi", 0.0),
                  PAPER["semi_helps"], False, truth),
        _diff_row(t, chk, f"semi + adversarial beats adversarial at eps {semi_eps:g} ({truth})",
                  truth, ("adversarial", semi_eps), ("semi+adversarial", semi_eps),
                  PAPER["combined_best"], False, truth)]
    t["minus_source_accuracy"] = -t["source_accuracy"]
    bad = _excluded_by(chk, truth)
    used = None if not bad else []
    for col, claim, paper in (
            ("transrate", "TransRate sees the better representation (within seed)", "-"),
            ("logme", "LogME sees the better representation (within seed)", "-"),
            ("minus_source_accuracy", "less accurate sources transfer better (within seed)",
             PAPER["baseline_wrong"])):
        rows.append(base.correlation_claim(t, col, truth, "seed", primary=False, claim=claim,
                                           paper=paper, groups_used=used,
                                           gates=f"failed: {bad}" if bad else "passed",
                                           n_boot=getattr(results.cfg, "n_boot", 1000)
                                           if getattr(results, "cfg", None) else 1000))
    return base.verdict_table(rows)


def summary(results) -> str:
    """Markdown: the premise, the primary verdict and the count of the rest."""
    chk = checks(results).iloc[0]
    v = verdicts(results)
    p = v[v["primary"]].iloc[0]
    lines = [f"**{results.meta.get('mode', '?')} run.** Premise (adversarial training costs "
             f"clean source accuracy and buys robustness): "
             f"{'holds' if chk['premise'] else 'fails'} (clean accuracy "
             f"change {chk['clean_drop']:+.3f}, robust accuracy change {chk['robust_gain']:+.3f}, "
             "paired by seed; it needs a clean-accuracy interval below 0 and a robust-accuracy "
             "interval above 0).",
             f"**Primary claim** ({p['claim']}): {p['estimate']:+.3f} [{p['low']:+.3f}, "
             f"{p['high']:+.3f}] over {int(p['n_seeds'])} seeds: **{p['verdict']}** "
             f"(gates {p['gates']}).",
             "All claims: " + ", ".join(f"{n} {k}" for k, n in v['verdict'].value_counts().items())
             + "."]
    return "\n\n".join(lines)
