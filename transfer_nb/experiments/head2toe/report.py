"""Checks, verdicts and generated prose of the Head2Toe experiment (the contract's
``report.checks`` / ``report.verdicts`` / ``report.summary``).

Every claim compares methods on the *same* seeds and targets: "A beats B" is the paired
per-seed difference averaged over the targets that pass every gate
(:func:`transfer_nb.stats.paired_over_targets`), "matches" is non-inferiority with the configured
margin (:func:`transfer_nb.stats.noninferiority_verdict`), and "largest far from the
source" is a difference of target-group means resampled over targets and seeds
(:func:`transfer_nb.stats.group_difference`; and, paired within seed, as every paired claim
here).  Every paired claim shows its estimate's range with each target left out and is
*fragile* when leaving one target out flips its verdict
(:func:`transfer_nb.stats.paired_over_targets`).
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats
from transfer_nb.experiments import base, gates
from transfer_nb.experiments._results import fmt, gate_text
from transfer_nb.experiments.head2toe.presets import FINETUNE, HEAD2TOE, PAPER, PROBE, config

__all__ = ["checks", "verdicts", "summary", "accuracy_table", "recipe_table", "cost_table",
           "sweep", "per_seed", "FAR_PAIRED"]


def _cfg(results):
    if results.cfg is not None:
        return results.cfg
    return config(results.meta.get("mode", "full"))


def per_seed(results, method: str):
    """``(targets x seeds)`` DataFrame of one method's accuracy."""
    t = results.table[results.table["method"] == method]
    return t.pivot_table(index="target", columns="seed", values="accuracy", sort=False)


def accuracy_table(results):
    """Mean accuracy and 95% t-interval over seeds per target and method."""
    import pandas as pd
    rows = []
    for (target, method), g in results.table.groupby(["target", "method"], sort=False):
        m, lo, hi = stats.mean_interval(g["accuracy"].to_numpy())
        rows.append({"target": target, "group": g["group"].iloc[0], "method": method,
                     "mean": m, "low": max(lo, 0.0), "high": min(hi, 1.0), "seeds": len(g)})
    return pd.DataFrame(rows)


def checks(results):
    """Per target: fine-tuning trained (no collapsed seed, it reaches the linear probe,
    its training accuracy plateaued) and no method at the accuracy ceiling."""
    info = results.tables["targets"].set_index("target")
    curves = results.tables.get("curves")
    per_target = {}
    for target, part in results.table.groupby("target", sort=False):
        ft = part[part["method"] == FINETUNE].set_index("seed")["accuracy"]
        probe = part[part["method"] == PROBE].set_index("seed")["accuracy"]
        t = ft.rename("accuracy").to_frame().assign(linear_probe=probe, item=target)
        t = t.reset_index()
        c = None
        if curves is not None and len(curves):
            cc = curves[curves["target"] == target]
            c = [g.sort_values("epoch")["train_accuracy"].to_numpy()
                 for _, g in cc.groupby("seed")]
        means = part.groupby("method")["accuracy"].mean().to_dict()
        per_target[target] = {
            "fine-tuning trained": gates.training_gate(
                t, item="item", chance=float(info.loc[target, "chance"]),
                n_test=int(info.loc[target, "n_test"]), curves=c),
            "below ceiling": gates.ceiling_gate(means)}
    table = gates.gate_table(per_target)
    table.insert(1, "group", [info.loc[t, "group"] for t in table["target"]])
    return table


def _per_target(results, method: str, targets):
    """``(targets x seeds)`` array of one method's accuracy on ``targets``."""
    return per_seed(results, method).loc[list(targets)].to_numpy(dtype=np.float64)


def _log_ratio(results, column: str, targets) -> np.ndarray:
    """``(targets x seeds)``: log10(fine-tuning / Head2Toe) of a cost column."""
    t = results.table[results.table["target"].isin(list(targets))]
    out = []
    for method in (FINETUNE, HEAD2TOE):
        p = t[t["method"] == method].pivot_table(index="target", columns="seed",
                                                 values=column, sort=False)
        # memory is floored at 1 MiB: below that the sampler cannot tell sizes apart
        floor = 1.0 if column == "memory" else 1e-3
        out.append(np.log10(np.maximum(p.loc[list(targets)].to_numpy(dtype=np.float64),
                                       floor)))
    return out[0] - out[1]


_LOO_RULE = ("; fragile when leaving one target out flips it (loo_low / loo_high: the "
             "estimate's range with each target left out)")


def verdicts(results, n_boot: int | None = None):
    """The paper's claims, decided on the targets that pass every gate of :func:`checks`.

    Every paired claim is an average over targets of per-seed differences
    (:func:`transfer_nb.stats.paired_over_targets`): besides its t-interval it carries the
    range of its estimate with each target left out (``loo_low``, ``loo_high``), and a
    decisive verdict that leaving one target out changes is *fragile* (``loo_flips``
    names the targets).
    """
    cfg = _cfg(results)
    chk = checks(results)
    ok = gates.passing(chk)
    gate_note = gate_text(chk)
    rows = []

    def paired(claim, key, diff, primary=False, margin=None, statistic=None, in_a=None):
        if margin is not None:
            def decide(low, high):
                return stats.noninferiority_verdict(low, high, margin)[0]
            rule = (f"t-interval of per-seed differences: low > -{margin} reproduced, high < "
                    f"-{margin} not reproduced, else inconclusive; 'beats' when low > "
                    f"+{margin}")
        else:
            def decide(low, high):
                return stats.direction_verdict(low, high, 1.0)
            rule = ("t-interval of per-seed differences: above 0 reproduced, below 0 not "
                    "reproduced, else inconclusive")
        rule += _LOO_RULE
        statistic = statistic or "paired difference"
        if diff is None:
            rows.append(base.verdict_row(claim, primary=primary, paper=PAPER[key],
                                         statistic=statistic, estimate=np.nan, low=np.nan,
                                         high=np.nan, rule=rule, verdict="excluded",
                                         gates=gate_note if not ok else
                                         f"{gate_note}; needs 2 passing targets per group",
                                         note="", loo_low=np.nan, loo_high=np.nan,
                                         loo_flips=""))
            return
        d = stats.paired_over_targets(diff, decide, in_a=in_a, names=ok)
        note = ""
        if margin is not None:
            note = stats.noninferiority_verdict(d["low"], d["high"], margin)[1]
        rows.append(base.verdict_row(claim, primary=primary, paper=PAPER[key],
                                     statistic=statistic, estimate=d["estimate"],
                                     low=d["low"], high=d["high"], rule=rule,
                                     verdict=d["verdict"], gates=gate_note, note=note,
                                     loo_low=d["loo_low"], loo_high=d["loo_high"],
                                     loo_flips=", ".join(d["flips"])))

    h2t, ft, probe = (_per_target(results, m, ok) if ok else None
                      for m in (HEAD2TOE, FINETUNE, PROBE))
    paired("Head2Toe matches fine-tuning", "vs_finetune", h2t - ft if ok else None,
           primary=True, margin=cfg.margin,
           statistic="Head2Toe - fine-tuning accuracy (mean over targets)")
    paired("Head2Toe beats the linear probe", "vs_probe", h2t - probe if ok else None,
           statistic="Head2Toe - probe accuracy (mean over targets)")
    rows.append(_far_row(results, ok, gate_note, n_boot))
    for key, column, what in (("cheaper_time", "time", "wall-clock"),
                              ("cheaper_memory", "memory", "peak memory")):
        paired(f"Head2Toe is cheaper than fine-tuning ({what})", key,
               _log_ratio(results, column, ok) if ok else None,
               statistic=f"log10(fine-tuning / Head2Toe {what}), mean over targets")
    far = np.array([t in cfg.far for t in ok], dtype=bool)
    two_each = far.sum() >= 2 and (~far).sum() >= 2
    paired(FAR_PAIRED, "far", h2t - ft if two_each else None, in_a=far if two_each else None,
           statistic="far - near advantage (Head2Toe - fine-tuning), per seed")
    return base.verdict_table(rows)


#: the far-near claim paired within seed (pre-registered for the confirmation)
FAR_PAIRED = ("Head2Toe's advantage over fine-tuning is larger far from the source "
              "(paired within seed)")


def _far_row(results, ok, gate_note, n_boot: int | None = None) -> dict:
    cfg = _cfg(results)
    claim = "Head2Toe's advantage over fine-tuning is larger far from the source"
    diff = per_seed(results, HEAD2TOE) - per_seed(results, FINETUNE)
    diff = diff.loc[[t for t in diff.index if t in ok]]
    far = np.array([t in cfg.far for t in diff.index], dtype=bool)
    rule = ("bootstrap over targets (within each group) and seeds of mean(far) - mean(near) "
            "of Head2Toe - fine-tuning: above 0 reproduced, below 0 not reproduced, else "
            "inconclusive; needs 2 passing targets per group")
    if far.sum() < 2 or (~far).sum() < 2:
        return base.verdict_row(claim, primary=False, paper=PAPER["far"],
                                statistic="far - near advantage", estimate=np.nan,
                                low=np.nan, high=np.nan, rule=rule, verdict="excluded",
                                gates=f"{gate_note}; {int(far.sum())} far and "
                                      f"{int((~far).sum())} near targets pass", note="")
    g = stats.group_difference(diff.to_numpy(), far, n_boot=base.n_boot_of(results, n_boot))
    return base.verdict_row(claim, primary=False, paper=PAPER["far"],
                            statistic="far - near advantage", estimate=g["estimate"],
                            low=g["low"], high=g["high"], rule=rule,
                            verdict=stats.direction_verdict(g["low"], g["high"], 1.0),
                            gates=gate_note, note="")


def recipe_table(results):
    """The fine-tuning grid per target: validation accuracy of each (lr, epochs), averaged
    over the validation draws."""
    r = results.tables["recipes"]
    return r.pivot_table(index="target", columns=["lr", "epochs"], values="val_accuracy",
                         sort=False)


def cost_table(results):
    """Mean wall-clock (s) and peak extra memory (MiB) of training the chosen model, and
    the hyper-parameter search's seconds, per target and method."""
    t = results.table[results.table["method"].isin([HEAD2TOE, FINETUNE])]
    values = [c for c in ("time", "memory", "search_time") if c in t]
    return t.pivot_table(index="target", columns="method", values=values, sort=False)


def sweep(results, target: str, seed: int) -> list[dict]:
    """One seed's Head2Toe fraction sweep as :class:`transfer_nb_widgets.Head2ToeExplorer`
    takes it (accuracy and kept features per layer at each fraction)."""
    fr = results.tables["fractions"]
    lay = results.tables["layers"]
    fr = fr[(fr["target"] == target) & (fr["seed"] == seed)]
    out = []
    for _, r in fr.sort_values("keep_fraction").iterrows():
        c = lay[(lay["target"] == target) & (lay["seed"] == seed)
                & np.isclose(lay["keep_fraction"], r["keep_fraction"])]
        counts = {str(k): int(v) for k, v in zip(c["layer"], c["count"])}
        out.append({"keep_fraction": float(r["keep_fraction"]),
                    "n_features": int(sum(counts.values())), "accuracy": float(r["accuracy"]),
                    "layer_counts": counts})
    return out


def _loo_text(row) -> str:
    """", each target left out: [a, b]" (and which target flips it), or "" without one."""
    lo, hi = row.get("loo_low", np.nan), row.get("loo_high", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    flips = row.get("loo_flips") or ""
    return (f" (each target left out: {lo:+.3f} to {hi:+.3f}" +
            (f"; leaving out {flips} flips it" if flips else "") + ")")


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown generated from the numbers: the gates, the primary verdict, the rest
    (pass ``verdict_table`` / ``check_table`` when already computed)."""
    chk = checks(results) if check_table is None else check_table
    v = verdicts(results) if verdict_table is None else verdict_table
    acc = accuracy_table(results)
    failed = chk[~chk["passes"]]
    lines = [f"**{results.meta.get('mode', '?')} run**: {len(chk)} targets, "
             f"{acc['seeds'].max()} seeds. Gates: {len(chk) - len(failed)} of {len(chk)} "
             "targets pass" + ("" if failed.empty else " (" + "; ".join(
                 f"*{r['target']}*: {r['reason']}" for _, r in failed.iterrows()) + ")") + "."]
    means = acc.pivot_table(index="target", columns="method", values="mean", sort=False)
    lines.append("Mean accuracy per target (probe / Head2Toe / fine-tuning): " + "; ".join(
        f"*{t}* {r[PROBE]:.3f} / {r[HEAD2TOE]:.3f} / {r[FINETUNE]:.3f}"
        for t, r in means.iterrows()) + ".")
    p = v[v["primary"]].iloc[0]
    note = " (the interval clears +margin: Head2Toe *beats* fine-tuning here)" \
        if p["note"] == "beats" else ""
    ok = chk[chk["passes"]]
    groups = set(ok["group"])
    where = (f" Measured on {', '.join(ok['target'])}" + (
        f": {groups.pop()} targets only, so it says nothing about the others"
        if len(groups) == 1 and len(ok) < len(chk) else "") + "." if len(ok) else "")
    signed = {k: fmt(p[k], "+.3f") for k in ("estimate", "low", "high")}
    lines.append(f"**Primary claim** ({p['claim']}): {p['statistic']} {signed['estimate']} "
                 f"[{signed['low']}, {signed['high']}]{_loo_text(p)}: **{p['verdict']}**"
                 f"{note}.{where}")
    for _, r in v[~v["primary"]].iterrows():
        if r["verdict"] == "excluded":
            lines.append(f"- {r['claim']}: **excluded** ({r['gates']}).")
            continue
        est, low, high = (fmt(r[k], "+.3f") for k in ("estimate", "low", "high"))
        lines.append(f"- {r['claim']}: {est} [{low}, {high}]{_loo_text(r)}: "
                     f"**{r['verdict']}**.")
    if results.meta.get("mode") == "fast":
        lines.append("Fast mode (2 targets, 2 seeds) is a smoke test; the stored full run "
                     "is sized to decide the primary claim.")
    return "\n\n".join(lines)
