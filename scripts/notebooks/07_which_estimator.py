"""Generate notebooks/07_which_estimator.ipynb: every classification score of the registry
and two static baselines on an offline zoo, judged by evaluate_estimators."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

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
from transfer_nb.experiments import which_estimator as W
"""


def cells():
    return [
        md("""
# 07 · Which estimator should I trust? Every score against a size baseline

A researcher choosing among pretrained models can compute a dozen transferability
scores. Which one ranks *their* models the way the models actually transfer? Three recent
findings say the answer is not to be taken on faith:

* the benchmark of Chaves et al. (TMLR 2024) compares 13 scorers with 1000-resample
  bootstrap intervals of Kendall and weighted tau, and few of them beat a plain ranking by
  ImageNet accuracy;
* Agostinelli et al. (ECCV 2022) show that which metric wins flips with small changes of
  the setup: the model pool, the target, the statistic;
* Sorkhei et al. (2025) report that plain k-NN accuracy on the target features beats 23
  metrics over 16 data sets, and Singh et al. (ICLR 2026) that a fixed ranking by model
  size correlates 0.91 on the usual zoo against LogME's 0.57.

This notebook runs **every classification score of the registry** and two **static
baselines** (the parameter count and the feature width) on an offline zoo, measures a
ground truth, and lets `transfer_nb.evaluation.evaluate_estimators` decide, with the
project's rules: correlations *within* each target, pooled; bootstrap intervals; the
leave-one-out range; and "A beats B" only when the **paired** bootstrap difference
excludes 0. The verdicts at the end are generated from the numbers, whichever way they
fall.
"""),
        code(SETUP),
        md("""
## 1. The scores

Five scores were added for this comparison; each is a plain function with its paper's
definition and its authors' defaults (see each docstring for where every default comes
from):

* **knn**: leave-one-out 1-nearest-neighbour accuracy, Euclidean distance, raw features
  (the "1-NN CV" of Bolya et al.'s code);
* **nleep**: PCA keeping 80 % of the variance, a Gaussian mixture of 5 components per
  class, LEEP on its posteriors (Li et al., CVPR 2021);
* **gbc**: PCA to 64 dimensions, a spherical Gaussian per class, minus the sum of pairwise
  Bhattacharyya coefficients (Pandy et al., CVPR 2022);
* **parc**: PCA to 32 dimensions, standardised, Spearman correlation of the examples'
  feature dissimilarities with their label dissimilarities (Bolya et al., NeurIPS 2021);
* **sfda**: a shrinkage Fisher classifier, a self-challenging mix of hard examples with
  the other classes' means, mean probability of the true class (Shao et al., ECCV 2022).

Every classification score of the registry, with its paper:
"""),
        code("""
pd.DataFrame({"inputs": [", ".join(registry.get(n).inputs) for n in W.score_names()[:-2]],
              "paper": [registry.get(n).reference for n in W.score_names()[:-2]]},
             index=pd.Index(W.score_names()[:-2], name="score"))
""", check=True),
        md("""
## 2. The zoo, the targets and the ground truth

One **item** is one model read at one layer. The three ImageNet **EfficientNet-Lite**
models are read at six depths each: an intermediate block's pooled output is the feature
of the model truncated there, so the zoo holds truncations of very different sizes.
Beside them, the **small CNNs** that the TransRate experiment trains
(random init, other source tasks, fewer or more epochs, label noise), read at their
penultimate layer. The random-init CNN is in the zoo by configuration, decided before
any correlation: its features carry no source training, and the leave-one-out range below
shows how much any single item moves each correlation.

Two targets, chosen so that the probe accuracies spread without reaching the ceiling (the
check below tests both): handwritten **digits** and **shapes** moved to a harder domain
(`shift=1`), 10 labelled images per class. The **ground truth** is a linear probe on each item's frozen features
(logistic regression on the training images, accuracy on the test images): the transfer
that a score computed on frozen features claims to predict. The static baselines are
**params** (the parameters up to that layer) and **width** (the feature dimension).
"""),
        code("""
cfg = W.config()          # fast when CI or TRANSFER_NB_FAST is set
print(W.describe(cfg))
""", check=True),
        code("""
with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # solver chatter of the probes and mixtures
    table = W.run(cfg)                       # cached on disk: re-running is fast
table[["target", "item", "params", "width", "knn", "logme", "transrate", "parc",
       "leep", "linear_probe"]]
"""),
        md("""
### Does the ground truth tell the items apart?

A target counts only when the items' probe accuracies spread over at least 3 standard
errors of one accuracy (the probe is deterministic, so that is the test-set binomial
error) and no item reaches 0.97:
"""),
        code("""
check = W.checks(table)
check
"""),
        code("fig = W.plot_items(table, check=check)"),
        md("""
## 3. Which column ranks the items?

`evaluate_estimators` on the targets that pass: for every score and baseline, Pearson r,
Kendall tau and weighted tau computed within each target and pooled (Fisher-z for
Pearson, plain mean for the taus), each with a bootstrap interval that resamples items
within targets; the leave-one-out range of Kendall tau (the statistic that ranks the
columns here, as in the TMLR benchmark); and each column's paired difference against the
best one, on the same resamples.
"""),
        code("""
ev = W.evaluate(table, cfg, check)
ev[["kind", "kendall", "kendall_low", "kendall_high", "loo_min", "loo_max", "pearson",
    "weighted_tau", "difference", "difference_low", "difference_high", "verdict", "n", "note"]]
"""),
        code("fig = plot_estimators(ev)"),
        md("""
The same evaluation **against the size baseline**: each estimator's Kendall tau minus
that of `params`, paired. *better than params* means the whole 95 % interval of the
difference is above 0:
"""),
        code("""
ev_size = W.evaluate(table, cfg, check, against="params")
ev_size[["kind", "kendall", "difference", "difference_low", "difference_high", "verdict"]]
"""),
        md("""
Does the winner change with the target? Kendall tau of every column on each target alone
(point values; the intervals of one target are wider still):
"""),
        code("""
per_target, best_per_target = W.per_target_best(table, cfg, check)
display(per_target)
print("best per target:", best_per_target)
"""),
        md("## 4. Verdicts"),
        code("display(Markdown(W.summary(check, ev, ev_size, best_per_target)))"),
        md("""
**Cost.** Median seconds of each score per item in this run (on the small training sets
of these targets; `benchmarks/bench_estimators.py` times the scores against LogME on
2000 x 1280 features):
"""),
        code("""
times = table[[c for c in table.columns if c.startswith("time_")]].median()
times.index = [c[len("time_"):] for c in times.index]
times.sort_values().to_frame("median seconds").T
"""),
        md("""
## 5. On your own zoo

The same judgement on your own models and data: score them with a measured ground truth,
then evaluate every column (several targets: concatenate the tables with a `target`
column and pass `groups="target"`):

```python
import transfer_nb as tnb
from transfer_nb.evaluation import evaluate_estimators
models = {"lite0": "efficientnet_lite0", "resnet18": "resnet18", "mine": my_torch_module}
table = tnb.score_models(models, "path/to/images",
                         estimators=["knn", "logme", "parc", "sfda", "transrate"],
                         ground_truth="linear_probe")
evaluate_estimators(table, "accuracy")
```

**What this run can and cannot say.** The zoo is small (its size is printed above) and
built offline: ImageNet models read at several depths and small CNNs trained here, two embedded
targets with 10 labelled images per class, and a linear probe as the ground truth rather
than fine-tuning. The verdicts above hold for this zoo and these targets; the point of
the notebook is the procedure, which decides from paired intervals and says *not
separable* when the data cannot tell two columns apart.
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
