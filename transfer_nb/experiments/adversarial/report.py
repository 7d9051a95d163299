"""Checks, verdicts and generated prose of the adversarial-sources experiment.

* :func:`checks` -- the premise gate (paired by seed: adversarial training costs clean
  source accuracy and buys robust accuracy at the largest eps), the sources' training
  gate (learning curves plateau, no collapsed seed), and for each ground truth the
  seed-aware discrimination gate; for LP-FT also the training gate.
* :func:`moderate_choice` -- the eps of the primary claim, per seed: fixed in the config,
  or the eps > 0 whose linear probe is best on the target's *validation* images.
* :func:`verdicts` -- the "paper says / this run measured" table: "A beats B" as the
  t-interval of per-seed differences (:func:`transfer_nb.stats.paired_difference`); the
  estimators' correlations *within seed* (the sources of one seed share its target
  images and its teacher, so seeds are groups, never independent items).
* :func:`summary` -- markdown from the numbers.
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats
from transfer_nb.stats import mean_interval
from transfer_nb.experiments import base, gates
from transfer_nb.experiments.adversarial.presets import PAPER

__all__ = ["source_summary", "checks", "verdicts", "summary", "paired", "moderate_choice"]

TRUTHS = ("linear_probe", "fine_tune")
_MEASURES = ("linear_probe", "fine_tune", "val_probe", "source_clean", "source_robust",
             "transrate", "logme")
_RULE = ("t-interval of per-seed differences: on the claimed side of 0 reproduced; on the "
         "other not reproduced; else inconclusive")


def source_summary(df, target: str | None = None):
    """Mean, standard error and 95 % t-interval over seeds per source, for each measure,
    on ``target`` (default: the first target of the table)."""
    import pandas as pd
    df = _table(df, target)
    out = []
    for (kind, eps), g in df.groupby(["kind", "eps"], sort=False):
        row = {"kind": kind, "eps": eps, "seeds": len(g)}
        if "imagenet_eps" in g:
            row["imagenet_eps"] = float(g["imagenet_eps"].iloc[0])
        for m in (m for m in _MEASURES if m in g):
            v = g[m].to_numpy(dtype=float)
            mean, low, high = mean_interval(v)
            sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan
            row.update({m: mean, f"{m}_sem": sem, f"{m}_low": low, f"{m}_high": high})
        out.append(row)
    return pd.DataFrame(out)


def targets_of(results) -> list:
    """The target names of a run, the primary (the config's first) first."""
    cfg_targets = _cfg(results, "targets", None)
    if cfg_targets is not None:
        return [t.name for t in cfg_targets]
    t = getattr(results, "table", results)
    return list(dict.fromkeys(t["target"])) if "target" in t else [None]


def _table(results, target: str | None = None):
    """The rows of one target (default: the primary one), with a ``source`` label."""
    t = getattr(results, "table", results)
    if "target" in t:
        name = target if target is not None else (
            targets_of(results)[0] if hasattr(results, "table") else t["target"].iloc[0])
        t = t[t["target"] == name]
    t = t.copy()
    t["source"] = t["kind"] + " eps " + t["eps"].map(lambda e: f"{e:g}")
    return t


def _cfg(results, name, default):
    return getattr(getattr(results, "cfg", None), name, default)


def moderate_choice(results, target: str | None = None) -> dict:
    """``{seed: eps}``: the eps of the primary claim per seed (on ``target``, default the
    primary one).

    The config's ``moderate_eps`` when it fixes one; else, per seed, the eps > 0 of the
    adversarial sources with the best ``val_probe`` (linear probe on the target's
    validation images, never its test images); ties go to the smaller eps.
    """
    t = _table(results, target)
    fixed = _cfg(results, "moderate_eps", None)
    adv = t[t.kind == "adversarial"]
    out = {}
    for seed, g in adv.groupby("seed"):
        if fixed is not None:
            out[int(seed)] = float(fixed)
        else:
            g = g.sort_values("eps")
            out[int(seed)] = float(g["eps"].iloc[int(np.argmax(g["val_probe"].to_numpy()))])
    return out


def _series(t, measure, source, choice):
    import pandas as pd
    kind, eps = source
    if kind == "chosen":
        rows = [t[(t.kind == "adversarial") & (t.seed == s) & np.isclose(t.eps, e)]
                for s, e in (choice or {}).items()]
        g = pd.concat(rows) if rows else t.iloc[0:0]
    else:
        g = t[(t.kind == kind) & np.isclose(t.eps, eps)]
    return g.set_index("seed")[measure]


def paired(table, measure: str, a: tuple, b: tuple, choice: dict | None = None) -> dict:
    """``measure(b) - measure(a)`` paired by seed (:func:`transfer_nb.stats.paired_difference`).

    ``a``, ``b``: ``(kind, eps)``, or ``("chosen", None)`` for each seed's
    :func:`moderate_choice` (pass it as ``choice``)."""
    ga, gb = _series(table, measure, a, choice), _series(table, measure, b, choice)
    gb, ga = gb.align(ga, join="inner")
    return stats.paired_difference(gb.to_numpy(float), ga.to_numpy(float))


def _largest(t) -> float:
    return float(t.loc[t.kind == "adversarial", "eps"].max())


def _source_gate(results, t):
    """Sources trained to convergence: curves plateau, no collapsed seed."""
    curves = getattr(results, "tables", {}).get("curves")
    if curves is not None and len(curves):
        src = curves[curves["curve"] == "source_curve"]
        cs = [g.sort_values("epoch")["accuracy"].to_numpy()
              for _, g in src.groupby(["kind", "eps", "seed"], sort=False)]
    else:
        cs = None
    n_src = int(_cfg(results, "n_source_test", 400))
    k = int(t["source_classes"].iloc[0]) if "source_classes" in t else 8
    g = gates.training_gate(t, item="source", value="source_clean", probe=None,
                            chance=1.0 / k, n_test=n_src, curves=cs)
    if cs is None and "source_plateau" in t:
        flat = float(t["source_plateau"].mean())
        g["plateaued"] = flat
        if flat < 0.9:
            g["passes"] = False
            g["reason"] = "; ".join(r for r in (g["reason"], f"{1 - flat:.0%} of the source "
                                                "learning curves still rising") if r)
    return g


def _ft_curves(results, target):
    curves = getattr(results, "tables", {}).get("curves")
    if curves is None or not len(curves):
        return None
    c = curves[curves["curve"] == "ft_curve"]
    if "target" in c and target is not None:
        c = c[c["target"] == target]
    return [g.sort_values("epoch")["accuracy"].to_numpy()
            for _, g in c.groupby(["kind", "eps", "seed"], sort=False)]


def checks(results):
    """One row per target: the premise and the sources' training (shared by every
    target), and each truth's gates, with the premise's numbers (paired by seed, largest
    eps minus eps 0)."""
    t = _table(results)
    big = _largest(t)
    std, adv = ("standard", 0.0), ("adversarial", big)
    clean = paired(t, "source_clean", std, adv)
    robust = paired(t, "source_robust", std, adv)
    premise_ok = clean["high"] < 0 and robust["low"] > 0
    why = [] if premise_ok else [
        f"clean accuracy eps {big:g} - eps 0: {clean['estimate']:+.3f} [{clean['low']:+.3f}, "
        f"{clean['high']:+.3f}] (must be < 0); robust: {robust['estimate']:+.3f} "
        f"[{robust['low']:+.3f}, {robust['high']:+.3f}] (must be > 0)"]
    src = _source_gate(results, t)
    rows = {}
    for name in targets_of(results):
        tt = _table(results, name)
        n_test = int(tt["n_test"].iloc[0]) if "n_test" in tt else 250
        chance = 1.0 / float(tt["num_classes"].iloc[0]) if "num_classes" in tt else 0.2
        g = {"premise": {"passes": premise_ok, "reason": "; ".join(why)},
             "source training": src}
        for truth in TRUTHS:
            g[f"{truth} discrimination"] = gates.discrimination_gate(
                tt, item="source", value=truth, n_test=n_test)
        g["fine_tune training"] = gates.training_gate(
            tt, item="source", value="fine_tune", chance=chance, n_test=n_test,
            curves=_ft_curves(results, name))
        rows[name if name is not None else "target"] = g
    table = gates.gate_table(rows)
    table["clean_drop"], table["clean_low"], table["clean_high"] = (
        clean["estimate"], clean["low"], clean["high"])
    table["robust_gain"], table["robust_low"], table["robust_high"] = (
        robust["estimate"], robust["low"], robust["high"])
    table["largest_eps"] = big
    table["source_plateaued"] = src["plateaued"]
    return table


def _excluded_by(chk, truth: str | None, target: int = 0) -> str:
    row = chk.iloc[target]
    names = ["premise", "source training"]
    if truth is not None:
        names.append(f"{truth} discrimination")
        if truth == "fine_tune":
            names.append("fine_tune training")
    return ", ".join(k for k in names if not row[k])


def _diff_row(t, chk, claim, measure, a, b, paper, choice, primary=False, gate_truth=None,
              direction=1.0, gated=True, target=0):
    d = paired(t, measure, a, b, choice)
    verdict = stats.direction_verdict(d["low"], d["high"], direction)
    bad = _excluded_by(chk, gate_truth, target) if gated else ""
    if bad:
        verdict = "excluded"
    return base.verdict_row(claim, primary=primary, paper=paper,
                            statistic=f"{measure}: mean per-seed difference",
                            estimate=d["estimate"], low=d["low"], high=d["high"], rule=_RULE,
                            verdict=verdict, gates=f"failed: {bad}" if bad else "passed",
                            n_seeds=d["n"])


def verdicts(results, n_boot: int | None = None):
    """The "paper says / this run measured" table (exactly one primary claim)."""
    t = _table(results)
    chk = checks(results)
    choice = moderate_choice(results)
    big = _largest(t)
    truth = _cfg(results, "truth", "linear_probe")
    other = "fine_tune" if truth == "linear_probe" else "linear_probe"
    std, chosen, top = ("standard", 0.0), ("chosen", None), ("adversarial", big)
    semi_eps = float(t.loc[t.kind == "semi+adversarial", "eps"].iloc[0])
    how = ("fixed" if _cfg(results, "moderate_eps", None) is not None
           else "chosen on validation")
    n = {"lp": "linear probe", "ft": "LP-FT"}
    tn, on = (n["lp"], n["ft"]) if truth == "linear_probe" else (n["ft"], n["lp"])
    pooled = bool(_cfg(results, "pool_targets", False))
    first = f" on {targets_of(results)[0]}" if pooled else ""
    rows = [
        _diff_row(t, chk, f"the eps {how} transfers better than eps 0{first} ({tn})", truth,
                  std, chosen, PAPER["moderate_helps"], choice, not pooled, truth),
        _diff_row(t, chk, f"the eps {how} transfers better than eps 0 ({on})", other, std,
                  chosen, PAPER["moderate_helps"], choice, False, other),
        _diff_row(t, chk, f"not monotone: the eps {how} transfers better than the largest "
                  f"eps {big:g} ({tn})", truth, top, chosen, PAPER["not_monotone"], choice,
                  False, truth),
        _diff_row(t, chk, f"clean source accuracy falls from eps 0 to eps {big:g}",
                  "source_clean", std, top, PAPER["accuracy_falls"], choice, direction=-1.0,
                  gated=False),
        _diff_row(t, chk, f"robust source accuracy rises from eps 0 to eps {big:g}",
                  "source_robust", std, top, PAPER["robust_rises"], choice, gated=False),
        _diff_row(t, chk, f"semi-supervised beats standard ({tn})", truth, std, ("semi", 0.0),
                  PAPER["semi_helps"], choice, False, truth),
        _diff_row(t, chk, f"semi + adversarial beats adversarial at eps {semi_eps:g} ({tn})",
                  truth, ("adversarial", semi_eps), ("semi+adversarial", semi_eps),
                  PAPER["combined_best"], choice, False, truth)]
    for i, name in enumerate(targets_of(results)[1:], start=1):
        ti = _table(results, name)
        rows.append(_diff_row(ti, chk, f"the eps {how} transfers better than eps 0 on {name} "
                              f"({tn})", truth, std, chosen, PAPER["moderate_helps"],
                              moderate_choice(results, name), False, truth, target=i))
    if pooled:
        rows.insert(0, _pooled_row(results, chk, truth, how, tn))
    t["minus_source_accuracy"] = -t["source_accuracy"]
    bad = _excluded_by(chk, truth)
    used = None if not bad else []
    n_boot = base.n_boot_of(results, n_boot)
    for col, claim, paper in (
            ("transrate", f"TransRate sees the better representation (within seed, {tn})", "-"),
            ("logme", f"LogME sees the better representation (within seed, {tn})", "-"),
            ("minus_source_accuracy", f"less accurate sources transfer better (within seed, "
             f"{tn})", PAPER["baseline_wrong"])):
        rows.append(base.correlation_claim(t, col, truth, "seed", primary=False, claim=claim,
                                           paper=paper, groups_used=used,
                                           gates=f"failed: {bad}" if bad else "passed",
                                           n_boot=n_boot))
    return base.verdict_table(rows)


def _pooled_row(results, chk, truth: str, how: str, tn: str) -> dict:
    """The primary pooled over targets (``cfg.pool_targets``): per seed, the mean over the
    targets that pass their gates of (chosen eps - eps 0), each target with its own
    validation-chosen eps; the t-interval over seeds."""
    import pandas as pd
    names = targets_of(results)
    ok = [i for i in range(len(names)) if not _excluded_by(chk, truth, i)]
    diffs = []
    for i in ok:
        ti = _table(results, names[i])
        ch = moderate_choice(results, names[i])
        b, a = _series(ti, truth, ("chosen", None), ch), _series(ti, truth, ("standard", 0.0), ch)
        diffs.append((b - a).rename(names[i]))
    per_seed = pd.concat(diffs, axis=1, join="inner").mean(axis=1) if diffs else pd.Series([])
    m, lo, hi = mean_interval(per_seed.to_numpy(float)) if len(per_seed) else (np.nan,) * 3
    out = [n for i, n in enumerate(names) if i not in ok]
    shared = _excluded_by(chk, None, 0)
    verdict = "excluded" if shared or not ok else stats.direction_verdict(lo, hi, 1.0)
    gates = (f"failed: {shared}" if shared else
             f"pooled over {len(ok)} of {len(names)} targets"
             + (f"; excluded (their gates failed): {', '.join(out)}" if out else ""))
    return base.verdict_row(
        f"the eps {how} transfers better than eps 0, pooled over targets ({tn})",
        primary=True, paper=PAPER["moderate_helps"],
        statistic=f"{truth}: mean per-seed difference, averaged over targets",
        estimate=m, low=lo, high=hi,
        rule="per seed, the mean over the targets that pass their gates of (chosen eps - eps "
             "0), each target's eps chosen on its own validation images; " + _RULE,
        verdict=verdict, gates=gates, n_seeds=int(len(per_seed)))


def _interval(row) -> str:
    return f"{row['estimate']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]"


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown: the premise, the eps chosen, the primary verdict and the other claims
    (pass ``verdict_table`` / ``check_table`` when already computed)."""
    table = checks(results) if check_table is None else check_table
    chk = table.iloc[0]
    v = verdicts(results) if verdict_table is None else verdict_table
    p = v[v["primary"]].iloc[0]
    choice = moderate_choice(results)
    picked = ", ".join(f"seed {s}: {e:g}" for s, e in sorted(choice.items()))
    mode = results.meta.get("mode", "?") if getattr(results, "meta", None) else "?"
    premise = "holds" if chk["premise"] else "fails"
    lines = [
        f"**{mode} run.** Premise (adversarial training at the largest eps "
        f"{chk['largest_eps']:g} of ||x|| costs clean source accuracy and buys robust "
        f"accuracy, paired by seed): **{premise}**: clean accuracy "
        f"{chk['clean_drop']:+.3f} [{chk['clean_low']:+.3f}, {chk['clean_high']:+.3f}], "
        f"robust accuracy {chk['robust_gain']:+.3f} [{chk['robust_low']:+.3f}, "
        f"{chk['robust_high']:+.3f}] (it needs the first interval below 0 and the second "
        f"above 0). Sources' learning curves that plateau: {chk['source_plateaued']:.0%}; "
        f"source training gate {'passed' if chk['source training'] else 'failed'}.",
        f"**The eps of the primary claim** ({picked}).",
        f"**Primary claim** ({p['claim']}): {_interval(p)} over {int(p['n_seeds'])} seeds: "
        f"**{p['verdict']}** (gates {p['gates']})."]
    for _, row in table.iterrows():
        if not row["passes"]:
            lines.append(f"Failed gates on {row['target']}: {row['reason']}.")
    rest = [f"{r['claim']}: {_interval(r)}, {r['verdict']}" for _, r in v.iterrows()
            if not r["primary"]]
    lines.append("Other claims: " + "; ".join(rest) + ".")
    return "\n\n".join(lines)
