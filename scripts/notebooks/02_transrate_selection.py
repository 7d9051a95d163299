"""Generate notebooks/02_transrate_selection.ipynb: TransRate for model and layer
selection (Huang et al., ICML 2022) in a regime where the ground truth discriminates."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/02_transrate_selection.ipynb"

SETUP = """
%matplotlib inline
import warnings
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 140)
from transfer_nb.experiments import transrate as E
"""


def cells():
    return [
        md("""
# 02 · TransRate for model and layer selection (Huang et al., ICML 2022)

**The paper's claims.** (a) *Model selection*: over a zoo of pretrained models, TransRate
correlates with the accuracy reached after fine-tuning on the target: on CIFAR-100
Pearson 0.81 and weighted tau 0.94, where LogME reaches 0.57 / 0.62, and LEEP and NCE
reach about 0.97 Pearson but a lower weighted tau (0.87 and 0.73). (b) *Layer selection*:
over the layers of one model, TransRate correlates with the accuracy of re-initialising
every later layer and fine-tuning (Pearson about 0.98 in 5 of 7 cases). (c) It is cheap.

**What makes such a correlation evidence** (and what this notebook does):

* *one width*: a score that grows with feature width (TransRate's snippet, H-score) ranks
  width when the zoo mixes widths, so the main zoo is one architecture at one width, of
  graded quality (random init, other source tasks, fewer source epochs, label noise);
  trivial baselines (width, source epochs) are printed beside every estimator;
* *a ground truth that discriminates*: with many labelled images every small model
  fine-tunes to the ceiling, so the targets are data-scarce (10 labelled images per
  class), fine-tuning runs with 3 seeds, and each target must pass a check before it
  counts;
* *intervals*: 95 % bootstrap intervals over the models and permutation p-values; every
  verdict reads the interval, by a stated rule.
"""),
        code(SETUP),
        md("The configuration (fast mode in CI: 16 px images, short source training, two targets; the full mode adds a third target, longer training and the ImageNet models as a separate zoo):"),
        code("""
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
print(E.describe(cfg))
""", check=True),
        md("""
## 1. Model selection

For every (model, target): features of the target's training images at the penultimate
layer, the source head's outputs, and the scores, each timed:

* **TransRate** estimates how much the features say about the labels as a difference of
  coding rates; three computations: the paper's printed *snippet*, the authors'
  *layerwise* code, and their *projected* model-selection code (eps = 0.015, their
  CIFAR-100 setting);
* **LogME** is the evidence of a Bayesian linear model from features to one-hot labels;
* **LEEP** is the log-likelihood of the target labels under the source head's softmax
  pushed through the empirical source-to-target label map;
* **NCE** is the negative conditional entropy of target labels given the source head's
  predicted labels;
* **H-score** is the between-class variance of the features in units of their total
  variance; **shrinkage H-score** replaces the covariance by a Ledoit-Wolf estimate,
  needed when images are fewer than dimensions;
* baselines: the feature **width** and the number of **source epochs**.

Ground truth: **fine-tune** (new head, all layers trained, `transfer_nb.transfer.fine_tune`)
with 3 seeds, test accuracy mean and spread; a **linear probe** on the frozen features is
a second column.
"""),
        code("""
ms = E.model_selection(cfg)   # cached on disk: re-running is fast
cols = ["target", "model", "source_epochs", "label_noise", "transrate", "transrate_projected",
        "logme", "leep", "nce", "hscore_shrinkage", "accuracy", "accuracy_std", "linear_probe"]
ms[ms["zoo"] == "small_cnn"][cols].round(3)
"""),
        md("""
### Does the ground truth discriminate?

A target counts only when the models' mean accuracies spread over at least 3 standard
errors of a single accuracy, and no model reaches 0.97 (the ceiling, where ranks are
noise). The check, per target:
"""),
        code("""
check = E.discrimination_check(ms)
display(check.round(3))
display(Markdown(E.report_check(check)))
"""),
        code("fig = E.plot_model_selection(ms, check=E.discrimination_check(ms))"),
        md("""
### Correlations with the fine-tuned accuracy

**Pearson r** measures a linear relation between score and accuracy; **Kendall tau** the
fraction of model pairs ranked in the same order; **weighted tau** (the paper's headline)
is Kendall's tau with swaps among the top models weighing more. Each cell is the
statistic with its 95 % bootstrap interval over the models (`transfer_nb.stats.rank_correlations`).
"""),
        code("""
corr = E.correlations(ms)
for stat in ("pearson", "kendall", "weighted_tau"):
    display(E.interval_table(corr, stat))
"""),
        code("display(Markdown(E.report_model_selection(ms, corr, check)))"),
        md("""
The same correlations against the **linear probe** instead of fine-tuning (the estimators
look at frozen features; a probe measures exactly that):
"""),
        code("""
corr_probe = E.correlations(ms, truth="linear_probe")
E.interval_table(corr_probe, "pearson")
"""),
        md("""
### Choosing eps after seeing the answer

The authors set the projected variant's eps per target (0.015 for CIFAR-100, 0.01 to 0.02
elsewhere). How much does the correlation move with eps, and what would choosing the best
eps per target after seeing the accuracies report?
"""),
        code("""
sweep = E.eps_sweep(ms, check)
fig = E.plot_eps_sweep(sweep)
display(Markdown(E.report_eps_sweep(sweep, check, fixed=cfg.model_selection.projected_eps)))
"""),
        md("**Wall-clock** (median seconds per model and target; the feature pass and one fine-tuning for scale):"),
        code("""
display(E.timing_table(ms).to_frame().style.format("{:.4f}"))
fig = E.plot_timings(ms)
"""),
        md("""
## 2. Layer selection, with the paper's protocol

One small CNN trained on a source task; for each of its feature layers: keep the layers up
to it, **re-initialise every later layer**, put a new head and fine-tune everything
(`transfer_nb.selection.score_layers(truth="finetune_reinit")`), 3 seeds. Beside
TransRate (snippet and layerwise): the width of the layer as a baseline, since deeper
layers are wider and the snippet grows with width.
"""),
        code("""
layers = E.layer_selection(cfg)
display(layers.round(3))
fig = E.plot_layer_selection(layers)
"""),
        code("""
display(E.layer_correlation(layers)[["pearson", "pearson_low", "pearson_high", "pearson_p",
                                     "kendall", "kendall_low", "kendall_high"]].round(2))
display(Markdown(E.report_layer_selection(layers)))
"""),
        md("""
`widgets.LayerSelector` explores layers interactively with a linear probe as its ground
truth, a cheaper and different measurement from the re-init + fine-tune protocol of the
table above; it is not shown here so that the notebook's numbers all come from one
protocol.
"""),
        md("""
## 3. The stored full run

The full mode (32 px, 10 models, 3 targets, 30 fine-tuning epochs, plus the three ImageNet
EfficientNet-Lite models as a separate zoo) is too slow for CI. When it has been run and
stored (`python -m transfer_nb.experiments.transrate --full --save`), its table is read
here, **labelled as the stored full run**, with its config hash, commit and device.
"""),
        code("""
full, meta = E.load_full_run()
if full is None:
    print("no stored full run in results/: run "
          "`python -m transfer_nb.experiments.transrate --full --save` to add one")
else:
    print({k: meta[k] for k in ("mode", "commit", "device", "date", "stale")})
    full_check = E.discrimination_check(full)
    display(full_check.round(3))
    full_corr = E.correlations(full)
    for zoo in full_corr["zoo"].unique():
        display(E.interval_table(full_corr, "pearson", zoo=zoo).style.set_caption(
            f"STORED FULL RUN, zoo {zoo}: Pearson [95% CI]"))
"""),
        md("""
## 4. Paper says / this run measured

Every statistic the paper reports for model selection, every baseline, layer selection and
cost. Rules (stated, applied mechanically), per target that passes the discrimination
check: *interval vs 0*: the 95 % interval entirely above 0 is *reproduced*, entirely below
0 *not reproduced*, straddling 0 *inconclusive*; *interval vs interval* (one score beats
another): one interval entirely above the other is *reproduced*, entirely below *not
reproduced*, overlapping *inconclusive*; targets that disagree give *mixed*. Rows of
scores the paper does not report carry their verdict in parentheses; "paper value inside
the interval" says whether the run is also compatible with the paper's number.
"""),
        code("""
summary = E.paper_vs_measured(ms, corr, check, layers)
with pd.option_context("display.max_colwidth", None):
    display(summary)
"""),
        md("""
**How to read it.** The paper's zoo holds ImageNet models of very different quality and a
target with thousands of images; here eight small CNNs, a few hundred test images and ten
labelled images per class. A correlation over eight models has wide intervals: one
swapped pair among eight models moves Kendall tau by 2/28. Where the intervals straddle 0 the run
cannot tell, and the table says *inconclusive* rather than picking a side.
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
