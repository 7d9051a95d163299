"""Regression experiment: checks, correlations, verdicts and generated prose."""
from __future__ import annotations

import numpy as np

from transfer_nb.stats import discrimination
from transfer_nb.experiments.regression.config import BASELINES, ESTIMATORS, PAPER
from transfer_nb.experiments.regression.run import RegressionResults

# ---------------------------------------------------------------------- analysis
def ground_truth_check(results: RegressionResults):
    """Does the ground truth discriminate?  One row per target.

    ``spread``: max - min of the models' mean test MSE; ``se``: the median standard
    error of a single model's test MSE; ``max_r2``: the best model's test R^2.  A
    target discriminates when ``spread >= 3 se`` and no model is at the ceiling
    (``max_r2 < 0.97``, the regression analogue of accuracy >= 0.97).
    """
    import pandas as pd
    rows = []
    for target, part in results.table.groupby("target", sort=False):
        spread = float(part["neg_mse"].max() - part["neg_mse"].min())
        se = float(part["se"].median())
        max_r2 = float(part["r2"].max())
        chk = discrimination(part["neg_mse"], se, top=max_r2)
        rows.append({"target": target, "models": int(len(part)), "spread": spread, "se": se,
                     "spread_in_se": chk["spread_in_se"],
                     "best_mse": float(-part["neg_mse"].max()),
                     "worst_mse": float(-part["neg_mse"].min()), "max_r2": max_r2,
                     "discriminates": chk["passes"], "reason": chk["reason"]})
    return pd.DataFrame(rows).set_index("target")


def _correlate(table, columns, n_boot: int, seed: int = 0):
    import pandas as pd
    from transfer_nb import stats
    out = []
    for target, part in table.groupby("target", sort=False):
        corr = stats.rank_correlations({c: part[c].to_numpy() for c in columns},
                                       part["neg_mse"].to_numpy(), n_boot=n_boot, seed=seed)
        corr.insert(0, "target", target)
        out.append(corr.reset_index())
    return pd.concat(out, ignore_index=True)


def correlations(results: RegressionResults, n_boot: int | None = None):
    """Pearson / Kendall / weighted tau (bootstrap intervals, permutation p) of every
    estimator and baseline with the negative test MSE, per target (long format)."""
    n_boot = results.cfg.n_boot if n_boot is None else n_boot
    return _correlate(results.table, (*ESTIMATORS, *BASELINES), n_boot)


def shuffled_correlations(results: RegressionResults, n_boot: int | None = None):
    """:func:`correlations` of the estimators computed on permuted training targets."""
    n_boot = results.cfg.n_boot if n_boot is None else n_boot
    return _correlate(results.shuffled, ESTIMATORS, n_boot)


def lambda_scores(results: RegressionResults, target: str, lam: float):
    """Linear MSE and Label MSE of every model on ``target`` at ``lambda = lam``.

    Returns a DataFrame indexed by model with columns ``linear_mse, label_mse, neg_mse``.
    """
    import pandas as pd
    from transfer_nb.estimators import label_mse, linear_mse
    if target not in results.cfg.targets:
        raise ValueError(f"target must be one of {list(results.cfg.targets)}, got {target!r}")
    rows = {}
    for (t, model), c in results.cells.items():
        if t == target:
            rows[model] = {"linear_mse": linear_mse(c.Z, c.Y, alpha=lam),
                           "label_mse": label_mse(c.probs, c.Y, alpha=lam),
                           "neg_mse": -float(np.mean(c.mse))}
    return pd.DataFrame.from_dict(rows, orient="index")


def lambda_correlations(results: RegressionResults, target: str, lambdas=None,
                        n_boot: int = 200):
    """Pearson r (with interval) of Linear / Label MSE vs the ground truth for each
    lambda in ``lambdas`` (default: the configuration's grid), one row per lambda."""
    import pandas as pd
    from transfer_nb import stats
    rows = []
    for lam in (results.cfg.lambdas if lambdas is None else lambdas):
        s = lambda_scores(results, target, lam)
        corr = stats.rank_correlations({"linear_mse": s["linear_mse"].to_numpy(),
                                        "label_mse": s["label_mse"].to_numpy()},
                                       s["neg_mse"].to_numpy(), n_boot=n_boot)
        row = {"lambda": float(lam)}
        for name in ("linear_mse", "label_mse"):
            for col in ("pearson", "pearson_low", "pearson_high"):
                row[f"{name}_{col}"] = float(corr.loc[name, col])
        rows.append(row)
    return pd.DataFrame(rows)


def timing_table(results: RegressionResults):
    """Median wall-clock seconds per estimator over all cells, and relative to LogME."""
    import pandas as pd
    t = results.table
    med = {e: float(t["time_" + e].median()) for e in ESTIMATORS}
    return pd.DataFrame({"median seconds": med,
                         "relative to logme": {e: med[e] / med["logme"] for e in ESTIMATORS}})


def _verdict_better(lin_low, lin_high, lin, base, base_low, base_high) -> str:
    """Rule: 'reproduced' when the baseline's point estimate lies below the estimator's
    interval, 'not reproduced' when the estimator's point estimate lies below the
    baseline's interval (or above it, reversed), else 'inconclusive'."""
    if not all(np.isfinite([lin_low, lin_high, base, base_low, base_high])):
        return "inconclusive"
    if base < lin_low:
        return "reproduced"
    if lin < base_low:
        return "not reproduced"
    return "inconclusive"


def _verdict_control(r, low, high, real) -> str:
    """Rule for the shuffled control: 'reproduced' (correlation lost) when the shuffled
    interval contains 0 and the shuffled r is at most half the real r (or <= 0);
    'not reproduced' when the shuffled interval lies above 0; else 'inconclusive'."""
    if not all(np.isfinite([r, low, high])):
        return "inconclusive"
    if low > 0:
        return "not reproduced"
    if low <= 0 <= high and (r <= 0 or (np.isfinite(real) and real > 0 and r <= real / 2)):
        return "reproduced"
    return "inconclusive"


def paper_vs_measured(results: RegressionResults, corr=None, shuffled=None):
    """The closing table: one row per (claim, target), verdicts by stated rules.

    * "beats LogME by 12-36 %" (Pearson): measured relative improvement
      ``(r_est - r_logme) / |r_logme|``; verdict by :func:`_verdict_better`'s rule
      (LogME's point estimate below the estimator's 95 % interval -> reproduced; the
      estimator's below LogME's interval -> not reproduced; else inconclusive).
    * "correlates with the ground truth": ``stats.interval_verdict`` on the Pearson
      interval with threshold 0.
    * "at least 27 % faster than LogME": median time saving over all cells >= 27 %.
    * shuffled control (not a paper claim): by :func:`_verdict_control` ("reproduced"
      = the correlation is lost: the interval on permuted targets contains 0 and the
      point estimate is at most half the real one).

    Targets whose ground truth does not discriminate get "excluded".
    """
    import pandas as pd
    from transfer_nb import stats
    corr = correlations(results) if corr is None else corr
    shuffled = shuffled_correlations(results) if shuffled is None else shuffled
    check = ground_truth_check(results)
    c = corr.set_index(["target", "score"])
    s = shuffled.set_index(["target", "score"])
    rows = []
    for target in results.cfg.targets:
        ok = bool(check.loc[target, "discriminates"])
        base = c.loc[(target, "logme")]
        for est in ("linear_mse", "label_mse"):
            r = c.loc[(target, est)]
            imp = (r["pearson"] - base["pearson"]) / abs(base["pearson"]) \
                if base["pearson"] != 0 else float("nan")
            v = _verdict_better(r["pearson_low"], r["pearson_high"], r["pearson"],
                                base["pearson"], base["pearson_low"], base["pearson_high"])
            rows.append({"claim": f"{est} beats LogME (Pearson)", "target": target,
                         "paper": "+12% to +36%",
                         "measured": f"{imp:+.0%} (r {r['pearson']:.2f} vs {base['pearson']:.2f})",
                         "verdict": v if ok else "excluded"})
            v = stats.interval_verdict(r["pearson_low"], r["pearson_high"], 0.0)
            rows.append({"claim": f"{est} correlates with -test MSE", "target": target,
                         "paper": "positive",
                         "measured": f"r {r['pearson']:.2f} [{r['pearson_low']:.2f}, "
                                     f"{r['pearson_high']:.2f}]",
                         "verdict": v if ok else "excluded"})
        for est in ESTIMATORS:
            r = s.loc[(target, est)]
            real = c.loc[(target, est), "pearson"]
            v = _verdict_control(r["pearson"], r["pearson_low"], r["pearson_high"], real)
            rows.append({"claim": f"shuffled control: {est} loses its correlation",
                         "target": target, "paper": "(control)",
                         "measured": f"r {r['pearson']:.2f} [{r['pearson_low']:.2f}, "
                                     f"{r['pearson_high']:.2f}]",
                         "verdict": v if ok else "excluded"})
    tt = timing_table(results)
    for est in ("linear_mse", "label_mse"):
        saving = 1.0 - tt.loc[est, "relative to logme"]
        rows.append({"claim": f"{est} at least 27% faster than LogME", "target": "all",
                     "paper": ">= 27% faster", "measured": f"{saving:.0%} faster",
                     "verdict": "reproduced" if saving >= PAPER["speedup"] else "not reproduced"})
    return pd.DataFrame(rows)


def report(results: RegressionResults, corr=None, shuffled=None) -> str:
    """A Markdown paragraph with the run's numbers (for ``display(Markdown(...))``)."""
    corr = correlations(results) if corr is None else corr
    shuffled = shuffled_correlations(results) if shuffled is None else shuffled
    check = ground_truth_check(results)
    table = paper_vs_measured(results, corr, shuffled)
    lines = []
    for target in results.cfg.targets:
        row = check.loc[target]
        if not row["discriminates"]:
            lines.append(f"- **{target}**: the ground truth does not discriminate "
                         f"({row['reason']}); excluded from the verdicts.")
            continue
        c = corr[corr["target"] == target].set_index("score")
        best = c.loc[list(ESTIMATORS + BASELINES), "pearson"].idxmax()
        parts = ", ".join(f"{e} {c.loc[e, 'pearson']:.2f} [{c.loc[e, 'pearson_low']:.2f}, "
                          f"{c.loc[e, 'pearson_high']:.2f}]" for e in (*ESTIMATORS, *BASELINES))
        lines.append(f"- **{target}** (test MSE from {row['best_mse']:.4f} to "
                     f"{row['worst_mse']:.4f}, a spread of {row['spread_in_se']:.1f} standard "
                     f"errors): Pearson r with 95% intervals: {parts}. Highest: {best}.")
    tt = timing_table(results)
    lines.append(f"- Median time per score: Linear MSE {tt.loc['linear_mse', 'median seconds'] * 1e3:.2f} ms, "
                 f"Label MSE {tt.loc['label_mse', 'median seconds'] * 1e3:.2f} ms, LogME "
                 f"{tt.loc['logme', 'median seconds'] * 1e3:.2f} ms (measured on a shared machine).")
    counts = table["verdict"].value_counts()
    lines.append("- Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                 ("reproduced", "not reproduced", "inconclusive", "excluded")) + ".")
    return "\n".join(lines)


def check_report(results: RegressionResults) -> str:
    """The discrimination check of every target as Markdown bullet points."""
    check = ground_truth_check(results)
    return "\n".join(
        f"- **{t}**: test MSE spread {r['spread']:.4f} = {r['spread_in_se']:.1f} standard "
        f"errors (needs >= 3), best R2 {r['max_r2']:.3f} (needs < 0.97): "
        + ("discriminates." if r["discriminates"] else f"does not discriminate ({r['reason']}).")
        for t, r in check.iterrows())
