"""PGE experiment: correlation tables, verdicts and generated prose."""
from __future__ import annotations


import numpy as np

def pair_frame(res: dict):
    """One row per (source, target) pair, source != target: scores and measured gain."""
    import pandas as pd

    names = res["names"]
    g = res["gain"]["gain"]
    ok = res["check"]["discriminates"]
    rows = []
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            if i == j:
                continue
            rows.append({"source": s, "target": t, "pge": res["pge"]["distance"][i, j],
                         "baseline": res["baseline"]["distance"][i, j],
                         "gain": float(np.mean(g[:, i, j])),
                         "gain_sd": float(np.std(g[:, i, j], ddof=1)) if len(g) > 1 else np.nan,
                         "target_ok": bool(ok[t])})
    return pd.DataFrame(rows)


def correlations(res: dict, n_boot: int = 1000):
    """``stats.rank_correlations`` of -PGE and -baseline with the gain, over the pairs
    whose target passes :func:`discrimination_check`: pooled, and within target (each
    target's mean score and gain subtracted first)."""
    import pandas as pd

    from transfer_nb.stats import rank_correlations
    df = pair_frame(res)
    df = df[df["target_ok"]]
    pooled = rank_correlations({"-PGE": -df["pge"].to_numpy(),
                                "-baseline": -df["baseline"].to_numpy()},
                               df["gain"].to_numpy(), n_boot=n_boot, seed=0)
    # within target: remove each target's mean score and mean gain, so that a target
    # that is both far from everything and hard to help cannot carry the correlation
    c = df.groupby("target")[["pge", "baseline", "gain"]].transform(lambda v: v - v.mean())
    within = rank_correlations({"-PGE within target": -c["pge"].to_numpy(),
                                "-baseline within target": -c["baseline"].to_numpy()},
                               c["gain"].to_numpy(), n_boot=n_boot, seed=0)
    return pd.concat([pooled, within])


def per_target_correlations(res: dict, n_boot: int = 1000):
    """Per target (the paper's use: pick a source for a target): Kendall tau of -PGE and
    -baseline with the gain over the sources, with intervals."""
    import warnings

    import pandas as pd

    from transfer_nb.stats import rank_correlations
    df = pair_frame(res)
    rows = []
    for t, sub in df.groupby("target", sort=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rc = rank_correlations({"-PGE": -sub["pge"].to_numpy(),
                                    "-baseline": -sub["baseline"].to_numpy()},
                                   sub["gain"].to_numpy(), n_boot=n_boot, seed=0)
        for score, r in rc.iterrows():
            rows.append({"target": t, "score": score, "kendall": r["kendall"],
                         "kendall_low": r["kendall_low"], "kendall_high": r["kendall_high"],
                         "n": int(r["n"]), "target_ok": bool(sub["target_ok"].iloc[0])})
    return pd.DataFrame(rows)


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

    from transfer_nb._validation import to_numpy
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


def stability_table(res: dict):
    """Mean over pairs of the seed-to-seed spread and of the wall-clock per setting,
    plus the noise-to-signal ratio: spread divided by the spread of the method's
    distance across all pairs of the matrix."""
    st = res["stability"]
    names = res["names"]
    iu = np.triu_indices(len(names), 1)
    signal = {"PGE": float(np.std(res["pge"]["distance"][iu])),
              "baseline": float(np.std(res["baseline"]["distance"][iu]))}
    tab = st.groupby(["method", "restarts", "batches"], sort=False).agg(
        std=("std", "mean"), seconds=("seconds", "mean")).reset_index()
    tab["noise/signal"] = [s / signal[m] for m, s in zip(tab["method"], tab["std"])]
    return tab


# ---------------------------------------------------------------------------- verdicts
def verdicts(res: dict) -> list[dict]:
    """Paper claim -> measured value -> verdict, each by a stated rule."""
    from transfer_nb.stats import interval_verdict
    rc = correlations(res)
    p, b = rc.loc["-PGE"], rc.loc["-baseline"]
    w = rc.loc["-PGE within target"]
    cfg = res["config"]
    tab = stability_table(res)
    pg = tab[(tab["method"] == "PGE") & (tab["restarts"] == max(cfg.stability_restarts))
             & (tab["batches"] == "all")].iloc[0]
    pg1 = tab[(tab["method"] == "PGE") & (tab["restarts"] == min(cfg.stability_restarts))
              & (tab["batches"] == "all")].iloc[0]
    bl = tab[(tab["method"] == "baseline") & (tab["restarts"] == max(cfg.stability_restarts))
             ].iloc[0]
    t_pge, t_gt = res["pge"]["seconds"], res["gain"]["seconds"]
    n_tgt = int(res["check"]["discriminates"].sum())
    out = [
        {"claim": "PGE agrees with transfer: Kendall tau of -PGE with the gain > 0",
         "rule": "95% interval of tau entirely above 0",
         "measured": f"tau {p['kendall']:.2f} [{p['kendall_low']:.2f}, "
                     f"{p['kendall_high']:.2f}], n={int(p['n'])} pairs of {n_tgt} targets",
         "verdict": interval_verdict(p["kendall_low"], p["kendall_high"], 0.0)},
        {"claim": "PGE agrees with transfer: Pearson r of -PGE with the gain > 0",
         "rule": "95% interval of r entirely above 0",
         "measured": f"r {p['pearson']:.2f} [{p['pearson_low']:.2f}, {p['pearson_high']:.2f}]",
         "verdict": interval_verdict(p["pearson_low"], p["pearson_high"], 0.0)},
        {"claim": "PGE agrees with transfer within each target (source choice)",
         "rule": "95% interval of the within-target tau entirely above 0",
         "measured": f"tau {w['kendall']:.2f} [{w['kendall_low']:.2f}, "
                     f"{w['kendall_high']:.2f}]",
         "verdict": interval_verdict(w["kendall_low"], w["kendall_high"], 0.0)},
        {"claim": "PGE beats a gradient-free task similarity",
         "rule": "PGE's tau interval entirely above the baseline's tau",
         "measured": f"PGE tau {p['kendall']:.2f} [{p['kendall_low']:.2f}, "
                     f"{p['kendall_high']:.2f}] vs baseline {b['kendall']:.2f}",
         "verdict": interval_verdict(p["kendall_low"], p["kendall_high"], b["kendall"])},
        {"claim": "PGE is stable (restarts average the noise out)",
         "rule": f"noise/signal with {int(pg['restarts'])} restarts < 0.25 and below "
                 f"{int(pg1['restarts'])} restart",
         "measured": f"{pg['noise/signal']:.3f} ({int(pg['restarts'])} restarts) vs "
                     f"{pg1['noise/signal']:.3f} ({int(pg1['restarts'])})",
         "verdict": "reproduced" if (pg["noise/signal"] < 0.25
                                     and pg["noise/signal"] < pg1["noise/signal"])
         else "not reproduced"},
        {"claim": "PGE is more stable than the baseline",
         "rule": "lower noise/signal at the same number of restarts",
         "measured": f"PGE {pg['noise/signal']:.3f} vs baseline {bl['noise/signal']:.3f}",
         "verdict": "reproduced" if pg["noise/signal"] < bl["noise/signal"]
         else "not reproduced"},
        {"claim": "PGE is efficient",
         "rule": "all pairs' PGE in < 10% of the transfer runs it predicts",
         "measured": f"{t_pge:.1f} s vs {t_gt:.1f} s ({100 * t_pge / t_gt:.1f}%)",
         "verdict": "reproduced" if t_pge < 0.1 * t_gt else "not reproduced"},
    ]
    return out


def paper_vs_measured(res: dict):
    """The closing table: what the paper says, what this run measured, the verdict."""
    import pandas as pd
    return pd.DataFrame(verdicts(res)).set_index("claim")


def report(res: dict) -> str:
    """Markdown prose of the run, every number computed from ``res``."""
    cfg = res["config"]
    chk = res["check"]
    ok = chk[chk["discriminates"]].index.tolist()
    bad = chk[~chk["discriminates"]]
    df = pair_frame(res)
    rc = correlations(res)
    p, b = rc.loc["-PGE"], rc.loc["-baseline"]
    w, wb = rc.loc["-PGE within target"], rc.loc["-baseline within target"]
    lines = [
        f"**This run ({cfg.mode} mode, {len(res['names'])} tasks, {len(cfg.seeds)} seeds).** "
        f"Transfer gains range from {df['gain'].min():+.3f} to {df['gain'].max():+.3f} "
        f"(mean {df['gain'].mean():+.3f}); {len(ok)} of {len(chk)} targets discriminate "
        f"between sources"
        + ("." if bad.empty else "; excluded: " + ", ".join(
            f"{t} ({w})" for t, w in bad["why not"].items()) + "."),
        f"Over the {int(p['n'])} remaining pairs, -PGE has Kendall tau "
        f"{p['kendall']:.2f} (95% interval {p['kendall_low']:.2f} to {p['kendall_high']:.2f}, "
        f"permutation p {p['kendall_p']:.3f}) and Pearson r {p['pearson']:.2f} "
        f"({p['pearson_low']:.2f} to {p['pearson_high']:.2f}) with the gain; the "
        f"gradient-free baseline has tau {b['kendall']:.2f} ({b['kendall_low']:.2f} to "
        f"{b['kendall_high']:.2f}) and r {b['pearson']:.2f}. Within targets (each "
        f"target's mean removed) -PGE has tau {w['kendall']:.2f} ({w['kendall_low']:.2f} to "
        f"{w['kendall_high']:.2f}), the baseline {wb['kendall']:.2f} ({wb['kendall_low']:.2f} "
        f"to {wb['kendall_high']:.2f}).",
        _stability_sentence(res),
        f"Computing every task's principal gradient and all distances took "
        f"{res['pge']['seconds']:.1f} s; the transfer runs it predicts took "
        f"{res['gain']['seconds']:.1f} s (wall-clock on a shared machine; cached runs "
        f"show the time of the run that computed them).",
    ]
    return "\n\n".join(lines)


def _stability_sentence(res: dict) -> str:
    if res.get("stability") is None:
        return "The stability sweep was not run."
    tab = stability_table(res)
    pge_all = tab[(tab["method"] == "PGE") & (tab["batches"] == "all")]
    pge_one = tab[(tab["method"] == "PGE") & (tab["batches"] != "all")]
    bl = tab[tab["method"] == "baseline"]
    lo, hi = pge_all.iloc[0], pge_all.iloc[-1]
    return (f"Across seeds, PGE with every batch has a noise/signal ratio of "
            f"{lo['noise/signal']:.2f} with {int(lo['restarts'])} restart(s) and "
            f"{hi['noise/signal']:.2f} with {int(hi['restarts'])}"
            + (f" (one batch per restart: {pge_one['noise/signal'].min():.2f} at best)"
               if len(pge_one) else "")
            + f"; the baseline's ranges from {bl['noise/signal'].max():.2f} to "
            f"{bl['noise/signal'].min():.2f}. One distance with {int(hi['restarts'])} "
            f"restarts took {hi['seconds']:.2f} s (wall-clock).")


# ---------------------------------------------------------------------------- plots
