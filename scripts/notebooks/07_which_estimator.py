"""Generate notebooks/07_which_estimator.ipynb: every classification score of the registry
and two static baselines on an offline zoo, judged by evaluate_estimators; the result is
the pre-registered confirmation (results/which_estimator/confirm/)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, exercise, md  # noqa: E402
from transfer_nb.lessons import READING  # noqa: E402

PATH = "notebooks/07_which_estimator.ipynb"

#: the result table's rows (claims of the which_estimator report), primary first
CLAIMS = ["parc ranks the items better than params (size)",
          "knn ranks the items better than params (size)",
          "logme ranks the items better than params (size)",
          "transrate ranks the items better than params (size)",
          "params (size) correlates with probe accuracy",
          "imagenet items alone: parc ranks them better than params (size)",
          "imagenet items alone: params correlates",
          "small_cnn items alone: logme correlates"]

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

The targets have few labelled images per class (few labels keep the probes off the accuracy
ceiling): drawn **shapes** moved to a harder domain (random colours and textures), and
**lowercase letters** rendered as glyphs. The **items** are models read at one layer: the
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
                 "So few items give a wide interval: one model's layers decide little, a zoo decides more."))
"""),
        md("""
## 3. The experiment, run

Every classification score of the registry and two **static baselines** (the parameter count
up to the layer, `params`, and the feature width) on every item; the ground truth is a linear
probe on the item's frozen features, on each draw of the labelled images. A target counts
only when the items' accuracies spread over at least 3 standard errors (seed noise and test
sampling both counted) and none reaches the accuracy ceiling (`stats.CEILING`); a *family*
(ImageNet items, small CNNs) is judged alone only on the targets where its own items pass.
"""),
        code("""
with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # solver chatter of the probes and mixtures
    res = W.run(cfg)                         # cached on disk: re-running is fast
gate_table = W.checks(res)
fig = W.plot_items(res, check_table=gate_table)
"""),
        md("""
## 4. The result

""" + READING + """

The claim under test: **PARC ranks the items better than their size does** (the paired
difference of their Kendall τ with the probe accuracy, within each target, on the same
bootstrap resamples). It was found by looking: PARC was the best column of an earlier run of
this notebook, and the stored full run (exploratory) agreed. So it was **pre-registered** and
tested again on new draws and new targets (the appendix names them), with the two model
families also judged alone. The evidence column is that confirmation; the last column is the
fast run you just executed.
"""),
        code(f"CLAIMS = {CLAIMS!r}  # the table's rows: the rest is in the appendix"
             .replace("', '", "',\n          '")),
        code("""
runs = lessons.stored_runs("which_estimator", W)
stored, name, label = lessons.stored_verdicts(runs, W)
fast_verdicts = W.verdicts(res)
evidence = stored.get(name, fast_verdicts)
short = dict(zip(CLAIMS, ["PARC beats size (primary)", "k-NN beats size", "LogME beats size",
                          "TransRate beats size", "size correlates",
                          "ImageNet alone: PARC beats size", "ImageNet alone: size correlates",
                          "small CNNs alone: LogME correlates"]))
papers = {CLAIMS[0]: "found by looking", CLAIMS[1]: "Sorkhei: k-NN wins",
          CLAIMS[2]: "Singh: the opposite", CLAIMS[4]: "Singh: it does"}
display(lessons.result_table(evidence, fast_verdicts, claims=CLAIMS, short_names=short,
                             papers=papers, evidence_label=label or "this run"))
display(Markdown(lessons.read_aloud(evidence, run=f"the {name or 'fast'} run")))
"""),
        md("## 5. What we learned"),
        code("""
conf, expl = stored.get("confirmation"), stored.get("exploratory")
both = lambda c: (f"exploratory {lessons.said(expl, c)}, confirmation {lessons.said(conf, c)}"
                  if conf is not None and expl is not None else lessons.said(evidence, c))
display(Markdown("\\n".join([
    f"* **Does PARC rank the items better than their size?** {both(CLAIMS[0])}. A finding that "
    "does not survive its pre-registered test is not a finding: the headline is the confirmation.",
    f"* **k-NN against size**: {both(CLAIMS[1])}; LogME against size: {both(CLAIMS[2])}; "
    f"TransRate against size: {both(CLAIMS[3])}.",
    f"* **Size alone** correlates {both(CLAIMS[4])} over the whole zoo, but within the ImageNet "
    f"items alone {both(CLAIMS[6])}: most of its correlation is the gap between the families "
    "(big ImageNet models transfer better than small CNNs), not a ranking within them.",
    f"* **Within one family** the scores still rank: within the ImageNet items PARC beats size "
    f"{both(CLAIMS[5])}; within the small CNNs, which all have one size, LogME correlates "
    f"{both(CLAIMS[7])}.",
])))
"""),
        md("""
**Your fast run, every column.** The same τ per score over every item and each family alone
(fast mode: few items; the stored runs in the appendix decide):
"""),
        code("""
families = W.by_family(res, check_table=gate_table)
families
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

For the reader who audits: the pre-registered confirmation and the exploratory full run,
each with its provenance, gates per target (and per family), every claim with its rule and
the generated summary; then the scores and this fast run's own details.
"""),
        code("""
display(Markdown("### The pre-registered confirmation"))
conf_run, _ = lessons.evidence("which_estimator", W.config("confirm"), W, confirm=True)
display(Markdown("### The exploratory full run"))
full, full_verdicts = lessons.evidence("which_estimator", W.config("full"), W)
if full is not None:
    fig = W.plot_items(full)
"""),
        md("""
**The scores** (every classification score of the registry, with its paper) and the
configuration of this fast run:
"""),
        code("""
pd.DataFrame({"inputs": [", ".join(registry.get(n).inputs) for n in W.score_names()[:-2]],
              "paper": [registry.get(n).reference for n in W.score_names()[:-2]]},
             index=pd.Index(W.score_names()[:-2], name="score"))
""", check=True),
        code("print(W.describe(cfg))", check=True),
        md("""
**Every column of this fast run.** `evaluate_estimators` on the passing targets: Pearson r,
Kendall τ and weighted τ within each target and pooled (Fisher-z for Pearson, plain mean for
the taus), each with a bootstrap interval that resamples items within targets; the
leave-one-out range of Kendall τ; each column's paired difference against the best one, then
against `params`. "The best column" is picked after looking at every score: exploratory.
"""),
        code("""
ev = W.evaluate(res, check_table=gate_table)
ev_size = W.evaluate(res, against="params", check_table=gate_table)
display(gate_table.round(3))
display(ev[["kind", "kendall", "kendall_low", "kendall_high", "loo_min", "loo_max", "pearson",
            "weighted_tau", "difference", "difference_low", "difference_high", "verdict", "n"]].round(3))
fig = plot_estimators(ev)
display(ev_size[["kind", "kendall", "difference", "difference_low", "difference_high", "verdict"]].round(3))
"""),
        code("""
per_target, best_per_target = W.per_target_best(res, check_table=gate_table)
display(per_target.round(3))
display(Markdown(W.summary(res, fast_verdicts, gate_table)))
times = res.table[[c for c in res.table.columns if c.startswith("time_")]].median()
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
