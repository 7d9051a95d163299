"""Checks, verdicts and generated prose of the PGE experiment (the contract's
``report.checks`` / ``report.verdicts`` / ``report.summary``).

Every check comes from :mod:`transfer_nb.experiments.gates`, every verdict from the rules
of :mod:`transfer_nb.stats`: source selection is a within-target question (Kendall tau
per target, pooled, items resampled within targets, plus a permutation test shuffling
sources within each target); "A beats B" and the label-permutation control are paired
differences on the same resamples; pooled-over-pairs statistics are secondary.
"""
from __future__ import annotations

import numpy as np

from transfer_nb import stats
from transfer_nb._validation import to_numpy
from transfer_nb.experiments import base, gates
from transfer_nb.experiments._results import fmt, gate_text, summary_start
from transfer_nb.experiments.pge.presets import PAPER

__all__ = ["checks", "verdicts", "summary", "pair_means", "stability_table", "cost_table",
           "per_layer_similarity", "explorer_input", "CONTROL_MARGIN"]

#: the label-permutation control "leaves the ranking intact" when tau(permuted) -
#: tau(real) is above -CONTROL_MARGIN (non-inferiority, docs/contributing.md, rule 3)
CONTROL_MARGIN = 0.1
_SCORES = ("pge", "pge_permuted", "pge_mean_distance", "baseline")


def pair_means(results):
    """One row per (target, source) pair: seed-mean accuracy, the distances and their
    negatives (``neg_*``: higher = more transferable), and a constant ``all`` group."""
    cols = ["accuracy", "linear_probe", "source_accuracy", "time_finetune", "time_pge",
            *_SCORES]
    means = base.item_means(results.table, "target", "source", cols)
    for c in _SCORES:
        means["neg_" + c] = -means[c]
    means["all"] = "all"
    return means


def checks(results):
    """The gates per target (sources as items): seed-aware discrimination with the
    ceiling, and the training gate (no collapsed seed, LP-FT reaches the linear probe on
    most sources, training accuracy plateaued); the scratch model beside them."""
    t, curves = results.table, results.tables.get("curves")
    scratch = results.tables["scratch"].groupby("target")["accuracy"].mean()
    per_target, extra = {}, []
    for target, part in t.groupby("target", sort=False):
        n_test = int(part["n_test"].iloc[0])
        chance = 1.0 / float(part["num_classes"].iloc[0])
        c = None
        if curves is not None and len(curves):
            cc = curves[curves["target"] == target]
            c = [g.sort_values("epoch")["train_accuracy"].to_numpy()
                 for _, g in cc.groupby(["source", "seed"])]
        d = gates.discrimination_gate(part, item="source", n_test=n_test)
        tr = gates.training_gate(part, item="source", chance=chance, n_test=n_test, curves=c)
        per_target[target] = {"discrimination": d, "training": tr}
        means = part.groupby("source")["accuracy"].mean()
        extra.append({"chance": chance, "scratch": float(scratch.get(target, np.nan)),
                      "worst": float(means.min()), "best": float(means.max()),
                      "negative_transfer": int((means < scratch.get(target, -1)).sum()),
                      "spread": d["spread"], "se": d["se"], "spread_in_se": d["spread_in_se"],
                      "above_probe": tr["above_probe"], "plateaued": tr["plateaued"]})
    table = gates.gate_table(per_target)
    for k in extra[0] if extra else []:
        table[k] = [e[k] for e in extra]
    return table


def verdicts(results, n_boot: int | None = None):
    """The "paper says / this run measured" table (one row per claim, one primary)."""
    n_boot = base.n_boot_of(results, n_boot)
    chk = checks(results)
    used, g = gates.passing(chk), gate_text(chk)
    means = pair_means(results)
    kw = dict(groups_used=used, gates=g, n_boot=n_boot, method="kendall")
    primary = base.correlation_claim(
        means, "neg_pge", "accuracy", "target", primary=True, paper=PAPER["agreement"],
        claim="-PGE ranks each target's sources by transfer accuracy (within target)", **kw)
    sub = means[means["target"].isin(used)]
    primary["perm_p"] = (stats.pooled_within_permutation(
        sub["neg_pge"], sub["accuracy"], sub["target"], "kendall", n_boot)["p"]
        if len(sub) else np.nan)
    rows = [primary, _control_row(sub, g, n_boot),
            base.paired_claim(means, "neg_pge", "neg_baseline", "accuracy", "target",
                              claim="PGE beats the gradient-free baseline (paired, within "
                                    "target)", paper=PAPER["baseline"], **kw),
            base.correlation_claim(means, "neg_baseline", "accuracy", "target", primary=False,
                                   claim="gradient-free baseline ranks sources (within "
                                         "target)", paper="-", **kw),
            base.correlation_claim(means, "neg_pge_mean_distance", "accuracy", "target",
                                   primary=False, paper="-", claim="PGE with per-restart "
                                   "normalisation ranks sources (within target)", **kw),
            base.correlation_claim(sub, "neg_pge", "accuracy", "all", primary=False,
                                   paper=PAPER["agreement"],
                                   claim="-PGE vs accuracy pooled over the passing targets' "
                                         "pairs (secondary: mixes between-target differences"
                                         " in)", **{**kw, "groups_used": None})]
    rows += _stability_rows(results, n_boot)
    rows.append(_cost_row(results))
    return base.verdict_table(rows)


def _control_row(sub, g: str, n_boot: int) -> dict:
    rule = (f"paired bootstrap (targets' sources resampled) of tau(-PGE, labels permuted) - "
            f"tau(-PGE): low > -{CONTROL_MARGIN}: reproduced (ranking intact); high < "
            f"-{CONTROL_MARGIN}: not reproduced (it leaned on label alignment); else "
            "inconclusive")
    claim = "label-permutation control: PGE's within-target ranking survives it"
    if sub.empty:
        return base.verdict_row(claim, primary=False, paper=PAPER["control"],
                                statistic="Kendall tau difference", estimate=np.nan,
                                low=np.nan, high=np.nan, rule=rule, verdict="excluded",
                                gates=f"{g}; no target passed")
    d = stats.paired_correlation_difference(sub["neg_pge_permuted"], sub["neg_pge"],
                                            sub["accuracy"], sub["target"], "kendall", n_boot)
    verdict, note = stats.noninferiority_verdict(d["low"], d["high"], CONTROL_MARGIN)
    return base.verdict_row(claim, primary=False, paper=PAPER["control"],
                            statistic="Kendall tau difference (permuted - real)",
                            estimate=d["estimate"], low=d["low"], high=d["high"], rule=rule,
                            verdict=verdict, gates=g + (f"; {note}" if note else ""),
                            n_items=int(d["n_items"]))


# ------------------------------------------------------------------------------ stability
def _noise_signal(v: np.ndarray) -> np.ndarray:
    """v (..., seeds, pairs): mean over pairs of the seed SD over the SD across pairs of
    the seed means."""
    noise = np.std(v, axis=-2, ddof=1).mean(axis=-1)
    signal = np.std(v.mean(axis=-2), axis=-1, ddof=1)
    return noise / signal


def _stability_draws(results, n_boot: int) -> dict:
    """``{(method, reduce, restarts, batches): (estimate, bootstrap draws, mean)}``; the
    seeds are resampled with the same indices for every setting (paired)."""
    st = results.tables.get("stability")
    if st is None or st.empty:
        return {}
    seeds = np.unique(st["seed"])
    idx = np.random.default_rng(0).integers(0, seeds.size, size=(n_boot, seeds.size))
    out = {}
    for key, part in st.groupby(["method", "reduce", "restarts", "batches"], sort=False):
        v = part.pivot_table(index="seed", columns="pair", values="distance").to_numpy()
        out[key] = (float(_noise_signal(v)), _noise_signal(v[idx]), float(v.mean()))
    return out


def stability_table(results, n_boot: int | None = None):
    """Noise/signal per (method, reduction, restarts, batches) with a 95% bootstrap
    interval over seeds: the seed-to-seed SD of a pair's distance (mean over pairs)
    divided by the SD of the pairs' mean distances (below 1: the seed hardly reorders
    the pairs); ``batches`` 0 means every batch."""
    import pandas as pd
    rows = []
    for (m, r, R, b), (est, draws, mean) in _stability_draws(results, base.n_boot_of(results, n_boot)
                                                               ).items():
        lo, hi = np.nanpercentile(draws, [2.5, 97.5])
        rows.append({"method": m, "reduce": r, "restarts": int(R), "batches": int(b),
                     "mean_distance": mean, "noise_signal": est, "low": lo, "high": hi})
    return pd.DataFrame(rows)


def _stability_rows(results, n_boot: int) -> list:
    draws = _stability_draws(results, n_boot)
    if not draws:
        return []
    R = max(k[2] for k in draws)
    R1 = min(k[2] for k in draws)
    rule = ("paired bootstrap over seeds (same resamples) of the difference of noise/signal:"
            " interval > 0: reproduced; < 0: not reproduced; else inconclusive")
    g = f"{len(np.unique(results.tables['stability']['seed']))} seeds x " \
        f"{results.tables['stability']['pair'].nunique()} pairs"

    def row(claim, paper, worse, better):
        d = draws[worse][1] - draws[better][1]
        lo, hi = np.nanpercentile(d, [2.5, 97.5])
        return base.verdict_row(claim, primary=False, paper=paper,
                                statistic="noise/signal difference",
                                estimate=draws[worse][0] - draws[better][0], low=lo, high=hi,
                                rule=rule, verdict=stats.direction_verdict(lo, hi, 1.0),
                                gates=g)
    out = [row(f"averaging {R} restarts makes PGE more stable than {R1}", PAPER["stability"],
               ("PGE", "expectation", R1, 0), ("PGE", "expectation", R, 0)),
           row(f"PGE ({R} restarts) is more stable than the baseline", PAPER["stability"],
               ("baseline", "expectation", R, 0), ("PGE", "expectation", R, 0)),
           row(f"the expectation ({R} restarts) is more stable than per-restart "
               "normalisation", "the paper's reduction",
               ("PGE", "mean_distance", R, 0), ("PGE", "expectation", R, 0))]
    bs = sorted(k[3] for k in draws if k[0] == "PGE" and k[3] > 0)
    if bs:
        out.append(row(f"every batch is more stable than {bs[0]} batch(es) per restart "
                       f"({R} restarts)", "-", ("PGE", "expectation", R, bs[0]),
                       ("PGE", "expectation", R, 0)))
    return out


# ------------------------------------------------------------------------------ cost
def cost_table(results):
    """Per pair: seconds of one LP-FT fine-tuning and of the pair's two principal
    gradients (source and target role, every restart)."""
    m = pair_means(results)
    out = m[["target", "source", "time_finetune", "time_pge"]].copy()
    out["finetune_over_pge"] = out["time_finetune"] / out["time_pge"]
    return out


def _cost_row(results) -> dict:
    ratio = np.log10(cost_table(results)["finetune_over_pge"].to_numpy(float))
    m, lo, hi = stats.mean_interval(ratio)
    return base.verdict_row(
        "PGE of a pair costs < 1/10 of one fine-tuning", primary=False,
        paper=PAPER["efficiency"], statistic="mean log10(fine-tune s / PGE s)", estimate=m,
        low=lo, high=hi, rule="t-interval over pairs: low > 1 (10x): reproduced; high < 1: "
        "not reproduced", verdict=stats.interval_verdict(lo, hi, 1.0),
        gates="timed in the run (wall-clock, one torch thread)")


def summary(results, verdict_table=None, check_table=None) -> str:
    """Markdown generated from the numbers: gates, the primary verdict, the rest (pass
    ``verdict_table`` / ``check_table`` when already computed)."""
    chk, v, p, _ = summary_start(results, checks, verdicts, verdict_table, check_table)
    neg = int(chk["negative_transfer"].sum())
    n_pairs = len(pair_means(results))
    lines = [f"**{results.meta.get('mode', '?')} run.** Truth: LP-FT transfer accuracy (every "
             f"transfer replaces the head). Gates: {gate_text(chk)}. Scratch (random init, "
             f"same fine-tuning) reaches {chk['scratch'].min():.2f}-{chk['scratch'].max():.2f} "
             f"(chance {chk['chance'].min():.2f}-{chk['chance'].max():.2f}); {neg} of "
             f"{n_pairs} pairs transfer below scratch (negative transfer)."]
    lines.append(f"**Primary claim** ({p['claim']}): {p['statistic']} {fmt(p['estimate'])} "
                 f"[{fmt(p['low'])}, {fmt(p['high'])}] over {int(p.get('n_items', 0) or 0)} "
                 f"pairs, permutation p (sources shuffled within target) "
                 f"{p['perm_p']:.3f}, leave-one-out range [{fmt(p['loo_low'])}, "
                 f"{fmt(p['loo_high'])}]: **{p['verdict']}**.")
    bullets = [f"- {r['claim']}: {r['statistic']} {fmt(r['estimate'])} "
               f"[{fmt(r['low'])}, {fmt(r['high'])}]: **{r['verdict']}**."
               for _, r in v[~v["primary"]].iterrows()]
    lines.append("\n".join(bullets))
    if results.meta.get("mode") == "fast":
        undecided = v.loc[v["verdict"].isin(["inconclusive", "excluded", "fragile"]), "claim"]
        if len(undecided):
            lines.append(f"Fast mode cannot decide {len(undecided)} of {len(v)} claims; the "
                         "stored full run (every ordered pair of nine tasks, more seeds) is "
                         "sized to decide the primary claim.")
    return "\n\n".join(lines)


# ------------------------------------------------------------------------------ explorer
def per_layer_similarity(source_gradient, target_gradient, param_names, param_sizes):
    """Cosine similarity of two principal gradients, layer by layer.

    Parameters
    ----------
    source_gradient, target_gradient : array-like of shape (p,)
        Principal gradients (any scale) over the parameters ``param_names``, flattened
        in that order.
    param_names : sequence of str
        Parameter names (``model.named_parameters()``); a layer is the name without
        its last component (``stages.0.0.weight`` -> ``stages.0.0``).
    param_sizes : sequence of int
        Number of entries of each parameter.

    Returns
    -------
    pandas.Series
        Layer -> cosine similarity in ``[-1, 1]`` (NaN where a gradient is zero), in
        the order the layers first appear.
    """
    import pandas as pd

    a = np.asarray(to_numpy(source_gradient, "source_gradient"), dtype=np.float64).ravel()
    b = np.asarray(to_numpy(target_gradient, "target_gradient"), dtype=np.float64).ravel()
    sizes = [int(s) for s in param_sizes]
    if len(sizes) != len(param_names):
        raise ValueError(f"param_names has {len(param_names)} entries but param_sizes has "
                         f"{len(sizes)}; expected one size per name")
    if a.shape != b.shape or a.size != sum(sizes):
        raise ValueError(f"gradients have {a.size} and {b.size} entries but the parameters "
                         f"hold {sum(sizes)}; expected both to match")
    layers: dict = {}
    start = 0
    for name, size in zip(param_names, sizes):
        layer = name.rsplit(".", 1)[0] if "." in name else name
        layers.setdefault(layer, []).append(slice(start, start + size))
        start += size
    out = {}
    for layer, parts in layers.items():
        x = np.concatenate([a[s] for s in parts])
        y = np.concatenate([b[s] for s in parts])
        den = np.linalg.norm(x) * np.linalg.norm(y)
        out[layer] = float(x @ y / den) if den > 0 else np.nan
    return pd.Series(out, name="cosine similarity")


def explorer_input(results) -> dict:
    """What ``transfer_nb_widgets.PGEExplorer`` reads, from a run of this session
    (``results.arrays``: the tasks' source-role principal gradients, body parameters)
    and the measured gain (seed-mean transfer accuracy minus scratch)."""
    arrays = getattr(results, "arrays", None)
    if arrays is None:
        raise ValueError("these results hold no gradients (a stored run keeps tables only); "
                         "use the results of run()")
    names = list(arrays["names"])
    m = pair_means(results)
    scratch = results.tables["scratch"].groupby("target")["accuracy"].mean()
    gain = np.full((1, len(names), len(names)), np.nan)
    for _, r in m.iterrows():
        gain[0, names.index(r["source"]), names.index(r["target"])] = (
            r["accuracy"] - scratch[r["target"]])
    return {"names": names, "gain": {"gain": gain},
            "pge": {"gradients": arrays["gradients"], "param_names": arrays["param_names"],
                    "param_sizes": arrays["param_sizes"]}}
