"""Generate notebooks/07_which_estimator.ipynb: every classification score of the registry
and two static baselines on an offline zoo, judged by evaluate_estimators."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, exercise, md  # noqa: E402

PATH = "notebooks/07_which_estimator.ipynb"

SETUP = """
%matplotlib inline
import warnings
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 60)
from transfer_nb.estimators import registry
from transfer_nb.evaluation import evaluate_estimators
from transfer_nb.plots import plot_estimators
from transfer_nb import lessons
from transfer_nb.exercises import check, show_exercise
from transfer_nb.experiments import which_estimator as W
import transfer_nb_widgets as widgets
cfg = W.config()          # fast when CI or TRANSFER_NB_FAST is set
"""


def cells():
    return [
        md("""
# 07 · Which estimator should I trust? Every score against a size baseline

**You will learn**
* how to judge a transferability score on *your* models: its rank correlation with a measured
  ground truth, within each target, with an interval;
* why every score must be compared, **paired**, with a baseline that never looks at the
  target (the model's size);
* how a correlation over a mixed zoo can come from the **gap between two model families**
  rather than from ranking within them.

**Before this:** lessons 02 (TransRate, LogME) and 04 (a leverage item). Three recent findings
say the answer is not to be taken on faith: in the benchmark of Chaves et al. (TMLR 2024) few
of 13 scorers beat a plain ranking by ImageNet accuracy; Agostinelli et al. (ECCV 2022) show
that the winning metric flips with small changes of the setup; Sorkhei et al. (2025) report
that plain k-NN accuracy beats 23 metrics, and Singh et al. (ICLR 2026) that a ranking by model
size correlates 0.91 on the usual zoo against LogME's 0.57.
"""),
        code(SETUP),
        md("""
## 1. The data, seen

Two targets, 10 labelled images per class: handwritten **digits**, and **shapes** moved to a
harder domain (random colours and textures). The **items** are models read at one layer: the
three ImageNet EfficientNet-Lite models truncated at six depths each, and small CNNs trained
here on other tasks (random init, other sources, more or less data, label noise).
"""),
        code("fig = lessons.show_images(cfg.targets, image_size=32, per_class=4)"),
        md("""
## 2. The idea on a small example

A score is useful if it **orders** the items the way their transfer does. One model's layers
are a small zoo: the `LayerSelector` reads EfficientNet-Lite0 at every block on digits,
computes TransRate per layer, measures each layer's linear-probe accuracy (the truth here),
and prints their rank correlation. Kendall's τ counts the pairs of layers put in the same
order, minus those put in the opposite order, over all pairs:

$$\\tau = \\frac{\\#\\text{concordant} - \\#\\text{discordant}}{\\binom{n}{2}} .$$
"""),
        code("""
selector = widgets.LayerSelector(model="efficientnet_lite0", dataset="digits", n=200, image_size=32)
selector.measure()
selector
"""),
        code("""
corr = selector.correlation
display(Markdown(f"Over {int(corr['n'])} layers, TransRate against probe accuracy: Kendall τ "
                 f"{corr['kendall']:+.2f} [{corr['kendall_low']:+.2f}, {corr['kendall_high']:+.2f}]. "
                 "Nine items give a wide interval: one model's layers decide little, a zoo decides more."))
"""),
        md("""
## 3. The experiment, run

Every classification score of the registry and two **static baselines** (the parameter count
up to the layer, and the feature width) on every item; the ground truth is a linear probe on
the item's frozen features. A target counts only when the items' accuracies spread over at
least 3 standard errors and none reaches the accuracy ceiling (`stats.CEILING`).
"""),
        code("""
with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # solver chatter of the probes and mixtures
    table = W.run(cfg)                       # cached on disk: re-running is fast
gate_table = W.checks(table)
fig = W.plot_items(table, check=gate_table)
"""),
        md("""
## 4. The result

Each score's Kendall τ within each passing target, pooled, and its **paired** difference with
the size baseline (`params`) on the same bootstrap resamples: *better than params* when the
whole 95 % interval of the difference lies above 0. The table lists the three scores the
findings above name, and the best column; the appendix has every column with its paper. This
notebook has no stored full run yet: the numbers are the run you just executed, and "the best
column" is picked after looking at every score, so it is *exploratory* (a finding to confirm on
new targets, not a result). `params` is "-" within the small CNNs: they all have the same size.
"""),
        code("""
ev = W.evaluate(table, cfg, gate_table)
ev_size = W.evaluate(table, cfg, gate_table, against="params")
best = ev.attrs["against"]
rows = list(dict.fromkeys([best, "knn", "logme", "transrate", "params"]))
result = pd.DataFrame({
    "kendall τ [95 %]": [lessons.interval_text(ev.loc[r, "kendall"], ev.loc[r, "kendall_low"],
                                               ev.loc[r, "kendall_high"]) for r in rows],
    "minus params [95 %]": [lessons.interval_text(ev_size.loc[r, "difference"], ev_size.loc[r, "difference_low"],
                                                  ev_size.loc[r, "difference_high"]) for r in rows],
    "verdict against params": [ev_size.loc[r, "verdict"] for r in rows]}, index=pd.Index(rows, name="column"))
display(result)
"""),
        md("**Within one family.** The same τ over every item, then over each family alone:"),
        code("""
families = W.by_family(table, cfg, gate_table)
families
"""),
        md("## 5. What we learned"),
        code("""
used = [t for t in gate_table.index if gate_table.loc[t, "passes"]]
display(Markdown("\\n".join([
    f"* **{len(used)} of {len(gate_table)} targets** passed the gates ({', '.join(used) or 'none'}); "
    + ("with one target, whether the winner changes with the target cannot be read." if len(used) < 2
       else "the per-target winners are in the appendix."),
    f"* **The best column here is {best}** ({registry.get(best).reference if best in registry.REGISTRY else 'a baseline'}), "
    f"τ {result.loc[best, 'kendall τ [95 %]']}; against the size baseline: "
    f"{result.loc[best, 'verdict against params']} (picked after looking: exploratory).",
    f"* **kNN** {result.loc['knn', 'verdict against params']}; **LogME** "
    f"{result.loc['logme', 'verdict against params']}; **TransRate** "
    f"{result.loc['transrate', 'verdict against params']} (paired differences, table above).",
    f"* **Two families**: LogME's τ is {families.loc['logme', 'all items']} over every item, and "
    + ", ".join(f"{families.loc['logme', c]} over {c.replace(' only', '')} alone" for c in families.columns[1:])
    + ": where the within-family values are lower, part of the zoo-wide correlation is the gap "
    "between the families, not a ranking within them.",
])))
"""),
        md("""
## 6. Exercises

1. **Try this** (`LayerSelector`): move ε. *Expect* TransRate's values to change and its
   ranking of the layers (and so τ) to change little.
2. **Try this**: in the result table, compare `params` with the best estimator. *Expect* the
   paired interval to say whether the estimator earns its cost over a ranking by size.
3. **Write code** (checked, below): Kendall's τ of a size-only ranking, ties included.
4. **Write code** (checked, below): leave one model family out.

Each statement prints in its cell below; replace the stub by your code and run the cell.

Hints: `hint(id)` with the id printed above each exercise (`from transfer_nb.exercises import hint`); solutions: `show_solution(id)`
or the *Exercise solutions* page of the docs.
"""),
        exercise("07.1", "kendall_tau_b", "x, y"),
        exercise("07.2", "leave_family_out", "scores, truth, families"),
        md("""
---
## Appendix: the evidence

**The scores** (every classification score of the registry, with its paper) and the
configuration of this run:
"""),
        code("""
pd.DataFrame({"inputs": [", ".join(registry.get(n).inputs) for n in W.score_names()[:-2]],
              "paper": [registry.get(n).reference for n in W.score_names()[:-2]]},
             index=pd.Index(W.score_names()[:-2], name="score"))
""", check=True),
        code("print(W.describe(cfg))", check=True),
        md("""
**The gates and every column.** `evaluate_estimators` on the passing targets: Pearson r,
Kendall τ and weighted τ within each target and pooled (Fisher-z for Pearson, plain mean for
the taus), each with a bootstrap interval that resamples items within targets; the
leave-one-out range of Kendall τ; each column's paired difference against the best one.
"""),
        code("""
display(gate_table.round(3))
display(ev[["kind", "kendall", "kendall_low", "kendall_high", "loo_min", "loo_max", "pearson",
            "weighted_tau", "difference", "difference_low", "difference_high", "verdict", "n"]].round(3))
fig = plot_estimators(ev)
display(ev_size[["kind", "kendall", "difference", "difference_low", "difference_high", "verdict"]].round(3))
"""),
        code("""
per_target, best_per_target = W.per_target_best(table, cfg, gate_table)
display(per_target.round(3))
display(Markdown(W.summary(gate_table, ev, ev_size, best_per_target)))
times = table[[c for c in table.columns if c.startswith("time_")]].median()
times.index = [c[len("time_"):] for c in times.index]
display(times.sort_values().to_frame("median seconds").T.round(4))
"""),
        md("""
**On your own zoo.** The same judgement on your own models and data: score them with a
measured ground truth, then evaluate every column (several targets: concatenate the tables
with a `target` column and pass `groups="target"`):

```python
import transfer_nb as tnb
from transfer_nb.evaluation import evaluate_estimators
models = {"lite0": "efficientnet_lite0", "resnet18": "resnet18", "mine": my_torch_module}
table = tnb.score_models(models, "path/to/images",
                         estimators=["knn", "logme", "parc", "sfda", "transrate"],
                         ground_truth="linear_probe")
evaluate_estimators(table, "accuracy")
```
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
