"""Checks, verdicts and generated prose of the regression experiment (the contract's
``report.checks`` / ``report.verdicts`` / ``report.summary``).

Every check goes through :mod:`transfer_nb.stats` / :mod:`transfer_nb.experiments.gates`,
every verdict through :func:`transfer_nb.experiments.base.correlation_claim` and
:func:`~transfer_nb.experiments.base.paired_claim`: selection claims are within-target
(pooled over the targets that pass every gate), "A beats B" and "the control loses the
effect" are paired differences on the same resamples, and an estimator whose
shuffled-target control keeps the effect gets no "reproduced".
"""
from __future__ import annotations

import warnings

import numpy as np

from transfer_nb import stats
from transfer_nb.experiments import base, gates
from transfer_nb.experiments._results import fmt, gate_text, summary_start
from transfer_nb.experiments.regression.presets import BASELINES, ESTIMATORS, PAPER

__all__ = ["checks", "verdicts", "summary", "model_means", "correlation_table",
           "control_table", "timing_table", "recipe_table", "lambda_scores",
           "lambda_correlations", "lambda_view"]

TRUTH = "neg_mse"
#: the two estimators the paper proposes (its claims are about these)
PROPOSED = ("linear_mse", "label_mse")


def model_means(results, include_degenerate: bool = False):
    """One row per (target, model): seed means of the truth, scores, controls, baselines."""
    t = results.table
    if not include_degenerate:
        t = t[~t["model"].isin(base.declared_out(results))]
    cols = [c for c in t.columns if c not in ("target", "model", "seed", "source_dataset")
            and np.issubdtype(t[c].dtype, np.number)]
    return base.item_means(t, "target", "model", cols)


# ----------------------------------------------------------------------------- checks
def _discrimination(part) -> dict:
    """Spread of the models' seed-mean test MSE in seed-aware standard errors (test
    sampling: the per-image SE of each MSE; seeds: their SD / sqrt(n_seeds); median over
    models), the ceiling on R^2, and the same with every model left out once: a target
    must discriminate without relying on one model."""
    per = {m: g for m, g in part.groupby("model", sort=False)}
    means = np.array([g[TRUTH].mean() for g in per.values()])
    ses = [np.sqrt(g["se"].mean() ** 2 + (g[TRUTH].var(ddof=1) / len(g) if len(g) > 1 else 0))
           for g in per.values()]
    se = float(np.median(ses))
    top = float(max(g["r2"].mean() for g in per.values()))
    out = stats.discrimination(means, se, top=top)
    loo = [stats.discrimination(np.delete(means, i), se)["spread_in_se"]
           for i in range(len(means))]
    out["loo_min_spread_in_se"] = float(min(loo)) if loo else float("nan")
    out["top_r2"] = top
    if out["passes"] and not out["loo_min_spread_in_se"] >= stats.N_SE:
        weakest = list(per)[int(np.argmin(loo))]
        out["passes"] = False
        out["reason"] = (f"without {weakest} the spread is {min(loo):.1f} SE "
                         f"(< {stats.N_SE:g}): it relies on one model")
    return out


def checks(results):
    """The gates per target (declared-degenerate models out): seed-aware discrimination
    with the R^2 ceiling, also with each model left out; the training gate on R^2 (no
    collapsed seed -- R^2 near 0, the mean predictor, while the others are far above --,
    LP-FT reaches the ridge probe on most models, training loss plateaued)."""
    t = results.table[~results.table["model"].isin(base.declared_out(results))]
    curves = results.tables.get("curves")
    per_target = {}
    for target, part in t.groupby("target", sort=False):
        n_test = int(part["n_test"].iloc[0])
        c = None
        if curves is not None and len(curves):
            cc = curves[(curves["target"] == target) & curves["model"].isin(part["model"])]
            c = [-g.sort_values("epoch")["train_loss"].to_numpy() / g["train_loss"].iloc[0]
                 for _, g in cc.groupby(["model", "seed"])]
        per_target[target] = {
            "discrimination": _discrimination(part),
            "training": gates.training_gate(part, value="r2", probe="probe_r2", chance=0.0,
                                            n_test=n_test, curves=c)}
    table = gates.gate_table(per_target)
    for g, k in (("discrimination", "spread"), ("discrimination", "se"),
                 ("discrimination", "spread_in_se"), ("discrimination", "loo_min_spread_in_se"),
                 ("discrimination", "top_r2"), ("training", "above_probe"),
                 ("training", "plateaued")):
        table[k] = [per_target[tg][g][k] for tg in table["target"]]
    return table


# ----------------------------------------------------------------------------- verdicts
def _control_rows(means, used, g, n_boot) -> dict:
    return {e: base.paired_claim(
        means, e, f"{e}_shuffled", TRUTH, "target",
        claim=f"control: {e} loses its correlation on shuffled targets", paper="must",
        groups_used=used, gates=g, n_boot=n_boot) for e in ESTIMATORS}


def _speed_row(results, fast: str, label: str) -> dict:
    t = model_means(results, include_degenerate=True)
    ratio = np.log(t[f"time_{fast}"].to_numpy(float) / t["time_logme"].to_numpy(float))
    m, lo, hi = stats.mean_interval(ratio)
    bound = float(np.log(1 - PAPER["speedup"]))
    return base.verdict_row(
        f"{label} is >= {PAPER['speedup']:.0%} faster than LogME", primary=False,
        paper=f">= {PAPER['speedup']:.0%} faster", statistic="mean ln(time / LogME time)",
        estimate=m, low=lo, high=hi,
        rule=f"t-interval over (target, model) cells, each timed alone (best of repeats): "
             f"high < ln(0.73) = {bound:.3f}: reproduced; low > ln(0.73): not reproduced",
        verdict=("reproduced" if hi < bound else "not reproduced" if lo > bound
                 else "inconclusive"),
        gates="timed in the run, one estimator at a time on the same inputs")


def verdicts(results, n_boot: int | None = None):
    """The "paper says / this run measured" table (one row per claim, one primary)."""
    n_boot = base.n_boot_of(results, n_boot)
    chk = checks(results)
    used = gates.passing(chk)
    g = gate_text(chk)
    means = model_means(results)
    controls = _control_rows(means, used, g, n_boot)
    rows = []
    for e in (*ESTIMATORS, *BASELINES):
        primary = e == "linear_mse"
        row = base.correlation_claim(
            means, e, TRUTH, "target", primary=primary,
            claim=f"{e} correlates with -test MSE after fine-tuning",
            paper="positive" if e in PROPOSED or e == "logme" else "-", groups_used=used,
            gates=g, n_boot=n_boot)
        c = controls.get(e)
        if c is not None:
            row["control"] = (f"real - shuffled {c['estimate']:+.2f} [{c['low']:+.2f}, "
                              f"{c['high']:+.2f}]: {c['verdict']}")
            if row["verdict"] == "reproduced" and c["verdict"] != "reproduced":
                row["verdict"] = "inconclusive"
                row["gates"] += "; the shuffled-target control keeps the effect"
        rows.append(row)
    rows += list(controls.values())
    for e in (x for x in ESTIMATORS if x != "logme"):
        rows.append(base.paired_claim(
            means, e, "logme", TRUTH, "target", claim=f"{e} beats LogME",
            paper=(f"+{PAPER['improvement_low']:.0%} to +{PAPER['improvement_high']:.0%}"
                   if e in PROPOSED else "-"), groups_used=used, gates=g, n_boot=n_boot))
    rows.append(_speed_row(results, "linear_mse_fixed", "Linear MSE (lambda = 1)"))
    rows.append(_speed_row(results, "label_mse_probs", "Label MSE (lambda = 1)"))
    rows += base.exclusion_rows(results, verdicts, n_boot)
    return base.verdict_table(rows)


# ----------------------------------------------------------------------------- tables
def correlation_table(results, include_degenerate: bool = True, n_boot: int = 1000):
    """Per target: Pearson / Kendall / weighted tau (intervals, leave-one-out range) of
    every score, its shuffled control and the baselines, degenerate models in or out."""
    import pandas as pd
    means = model_means(results, include_degenerate)
    cols = [*ESTIMATORS, *(f"{e}_shuffled" for e in ESTIMATORS), *BASELINES]
    rows = []
    for target, part in means.groupby("target", sort=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant scores -> nan
            corr = stats.rank_correlations({c: part[c] for c in cols}, part[TRUTH],
                                           n_boot=n_boot)
        for c in cols:
            lo, hi = (stats.leave_one_out_range(part[c], part[TRUTH])
                      if part[c].nunique() > 1 else (np.nan, np.nan))
            rows.append({"target": target, "score": c, **corr.loc[c].to_dict(),
                         "loo_low": lo, "loo_high": hi})
    return pd.DataFrame(rows)


def control_table(results, n_boot: int | None = None):
    """Per estimator: pooled-within Pearson on real and on shuffled training targets and
    the paired difference real - shuffled (targets that pass the gates)."""
    import pandas as pd
    n_boot = base.n_boot_of(results, n_boot)
    chk = checks(results)
    means = model_means(results)
    used = means[means["target"].isin(gates.passing(chk))]
    rows = []
    for e in ESTIMATORS:
        if used.empty:
            break
        d = stats.paired_correlation_difference(
            used[e].to_numpy(float), used[f"{e}_shuffled"].to_numpy(float),
            used[TRUTH].to_numpy(float), used["target"].astype(str).to_numpy(), "pearson",
            n_boot)
        rows.append({"estimator": e, "real": d["a"], "shuffled": d["b"],
                     "difference": d["estimate"], "low": d["low"], "high": d["high"]})
    return pd.DataFrame(rows)


def timing_table(results):
    """Median and mean seconds per score over (target, model) cells, and the median
    ratio to LogME."""
    import pandas as pd
    t = model_means(results, include_degenerate=True)
    rows = {e: {"median seconds": float(t[f"time_{e}"].median()),
                "mean seconds": float(t[f"time_{e}"].mean()),
                "median ratio to LogME": float((t[f"time_{e}"] / t["time_logme"]).median())}
            for e in ESTIMATORS}
    rows["fine-tuning (one seed)"] = {"median seconds": float(t["time_finetune"].median()),
                                      "mean seconds": float(t["time_finetune"].mean()),
                                      "median ratio to LogME": float(
                                          (t["time_finetune"] / t["time_logme"]).median())}
    return pd.DataFrame.from_dict(rows, orient="index")


def recipe_table(results):
    """The lr grid per target: mean validation MSE of each lr, and the choice."""
    r = results.tables["recipe"]
    return (r.groupby(["target", "lr"])
             .agg(val_mse=("val_mse", "mean"), chosen=("chosen", "first")).reset_index())


def lambda_scores(results, target: str, lam: float):
    """Linear MSE and Label MSE (standardised inputs) of every model on ``target`` at
    ``lambda = lam`` (one of ``cfg.lambdas``): a DataFrame indexed by model with columns
    ``linear_mse, label_mse, neg_mse``."""
    lt = results.tables["lambdas"]
    targets = list(dict.fromkeys(lt["target"]))
    if target not in targets:
        raise ValueError(f"target must be one of {targets}, got {target!r}")
    part = lt[(lt["target"] == target) & np.isclose(lt["lambda"], float(lam))]
    if part.empty:
        raise ValueError(f"lambda must be one of {sorted(set(lt['lambda']))}, got {lam!r}")
    truth = results.table[results.table["target"] == target].groupby("model")[TRUTH].mean()
    out = part.set_index("model")[["linear_mse", "label_mse"]].copy()
    out[TRUTH] = truth.reindex(out.index).to_numpy()
    return out


def lambda_view(results):
    """The run as the LambdaExplorer widget reads it: the same tables, and a ``cfg`` with
    the target *names*, ``lambdas``, ``alpha`` (the slider's start) and ``degenerate``."""
    from types import SimpleNamespace
    cfg = results.cfg
    lambdas = tuple(sorted(set(results.tables["lambdas"]["lambda"])))
    view = SimpleNamespace(
        targets=[getattr(t, "name", t) for t in (cfg.targets if cfg is not None else
                                                 dict.fromkeys(results.table["target"]))],
        lambdas=lambdas, alpha=cfg.alpha if cfg is not None else 1.0,
        degenerate=cfg.degenerate if cfg is not None else (("random-init", "out"),))
    return base.Results(results.paper, results.table, results.tables, results.meta, view)


def lambda_correlations(results, target: str, n_boot: int = 200):
    """Pearson r (with interval) of Linear / Label MSE vs the truth at every lambda."""
    import pandas as pd
    rows = []
    for lam in sorted(set(results.tables["lambdas"]["lambda"])):
        s = lambda_scores(results, target, lam)
        s = s[~s.index.isin(base.declared_out(results))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            corr = stats.rank_correlations({"linear_mse": s["linear_mse"].to_numpy(),
                                            "label_mse": s["label_mse"].to_numpy()},
                                           s[TRUTH].to_numpy(), n_boot=n_boot)
        row = {"lambda": lam}
        for e in ("linear_mse", "label_mse"):
            for k in ("pearson", "pearson_low", "pearson_high"):
                row[f"{e}_{k}"] = float(corr.loc[e, k])
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- prose
def _line(r) -> str:
    return (f"{r['statistic']} {fmt(r['estimate'])} [{fmt(r['low'])}, {fmt(r['high'])}]: "
            f"**{r['verdict']}**")


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown generated from the numbers: gates, the primary verdict with its control,
    the comparisons with LogME, speed, and what fast mode cannot decide."""
    chk, v, p, first = summary_start(results, checks, verdicts, verdict_table, check_table)
    lines = [first]
    lines.append(f"**Primary claim** ({p['claim']}): {_line(p)} over "
                 f"{int(p.get('n_items', 0) or 0)} (target, model) items, leave-one-out "
                 f"range [{fmt(p['loo_low'])}, {fmt(p['loo_high'])}]; its shuffled-target "
                 f"control: {p.get('control', 'n/a')}.")
    corr = v[v["claim"].str.endswith("correlates with -test MSE after fine-tuning")]
    lines.append("Every score (Pearson pooled within target; control = real minus shuffled "
                 "targets): " + "; ".join(
                     f"{r['claim'].split(' ')[0]} {fmt(r['estimate'])} [{fmt(r['low'])}, "
                     f"{fmt(r['high'])}] {r['verdict']}"
                     + (f" (control {r['control'].split(':')[0].replace('real - shuffled ', '')}"
                        f")" if isinstance(r.get("control"), str) else "")
                     for _, r in corr.iterrows()) + ".")
    vs = v[v["claim"].str.endswith("beats LogME")]
    lines.append("Against LogME (paired difference of Pearson r): " + "; ".join(
        f"{r['claim'].split(' ')[0]} {fmt(r['estimate'])} [{fmt(r['low'])}, "
        f"{fmt(r['high'])}] {r['verdict']}" for _, r in vs.iterrows()) + ".")
    sp = v[v["claim"].str.contains("faster than LogME")]
    lines.append("Speed: " + "; ".join(
        f"{r['claim']}: time ratio {np.exp(r['estimate']):.2f} [{np.exp(r['low']):.2f}, "
        f"{np.exp(r['high']):.2f}] -> {r['verdict']}" for _, r in sp.iterrows()) + ".")
    counts = v["verdict"].value_counts()
    lines.append("All claims: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".")
    if results.meta.get("mode") == "fast":
        undecided = v.loc[v["verdict"].isin(["inconclusive", "excluded", "fragile"]), "claim"]
        if len(undecided):
            lines.append(f"Fast mode cannot decide {len(undecided)} claims; the stored full "
                         "run is sized to decide the primary claim.")
    return "\n\n".join(lines)
