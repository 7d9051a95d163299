"""Generate notebooks/02_transrate_selection.ipynb: TransRate for model and layer
selection (Huang et al., ICML 2022) on the experiment contract: the stored full run first,
the fast run beside it."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/02_transrate_selection.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 70)
from transfer_nb import stats
from transfer_nb.experiments import base, transrate as E
SHOW = ["claim", "primary", "paper", "statistic", "estimate", "low", "high", "verdict",
        "loo_low", "loo_high", "gates"]
"""


def cells():
    return [
        md("""
# 02 · TransRate for model and layer selection (Huang et al., ICML 2022)

**The paper's claims.** (a) *Model selection*: over a zoo of pretrained models, TransRate
correlates with the accuracy reached after fine-tuning on the target (CIFAR-100: Pearson
0.81, weighted tau 0.94; LogME 0.57 / 0.62; LEEP and NCE about 0.97 Pearson but a lower
weighted tau, 0.87 and 0.73). (b) *Layer selection*: over the layers of one model,
TransRate correlates with the accuracy of keeping the layers up to it, re-initialising the
rest and fine-tuning (Pearson about 0.98 in 5 of 7 cases). (c) It is cheap.

**The design** (`transfer_nb.experiments.transrate`, on the experiment contract):

* *one architecture, one width, one epoch budget*: 24 small CNNs (full run) whose quality
  varies only through what they learned -- the source task, the amount of source data,
  label noise and augmentation -- so width and training length cannot explain a ranking;
* *few-shot targets the sources never saw* (lowercase letters, symbols, italic capitals;
  5 labelled images per class);
* *a truth that trained*: **LP-FT** fine-tuning (the new head starts from the linear
  probe, then every layer trains; Kumar et al., ICLR 2022), its learning rate chosen per
  target on a validation split of the *training* images before any score is seen,
  several seeds; every target must pass the gates (below) before it counts;
* *the random-init model is declared out* of the verdicts in the config (its projected
  TransRate is 0 by construction: a leverage point), and shown in the plots;
* *the primary claim is fixed in the config*: projected TransRate (the authors'
  model-selection code, eps 0.015) correlates positively with fine-tuned accuracy,
  Pearson pooled **within** target.

Terms. **Pearson r**: linear agreement of score and accuracy. **Kendall tau**: the share of
model pairs put in the same order. **Weighted tau**: Kendall's tau where swaps among the top
models count more (the paper's headline). **Pooled within target**: the correlation is
computed per target and averaged (through Fisher's z for Pearson), because choosing a model
is a question asked of one target at a time. **Leave-one-out range**: the statistic's
smallest and largest value when one model is dropped; a verdict one model flips is
*fragile*.
"""),
        code(SETUP),
        md("The configuration of this run (fast in CI; the full preset is what the stored run used):"),
        code("""
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
print(E.describe(cfg))
""", check=True),
        md("""
## 1. The stored full run (the evidence)

`python -m transfer_nb.experiments.transrate --full --save` stores its tables and
provenance under `results/transrate/`; the test suite fails when its config hash no
longer matches `config("full")`. Its gates, verdicts and summary, recomputed from the
stored tables by the same report functions as the fast run below:
"""),
        code("""
full = base.load_run("transrate", current_hash=E.config_hash(E.config("full")))
if full is None:
    print("no stored full run: run `python -m transfer_nb.experiments.transrate --full --save`")
else:
    full.cfg = E.config("full")
    print(E.describe(full.cfg))
    print({k: full.meta[k] for k in ("mode", "commit", "device", "date", "wall_clock_s", "stale")})
    full_checks, full_verdicts = E.report.checks(full), E.report.verdicts(full)
    display(full_checks.round(3))
    display(full_verdicts[SHOW].round(3).style.set_caption("STORED FULL RUN"))
    display(Markdown(E.report.summary(full, full_verdicts, full_checks)))
"""),
        code("""
if full is not None:
    fig = E.plots.plot_model_selection(full)
"""),
        md("""
The three ImageNet EfficientNet-Lite models, scored on the first target beside their LP-FT
accuracy (an illustration only: three items decide nothing, and their widths differ), and
EfficientNet-Lite0's own layers with their linear-probe accuracy: there the widths differ
too, so the **width** column is the baseline TransRate must beat (the snippet grows with it).
"""),
        code("""
if full is not None and len(full.tables.get("pretrained", [])):
    display(full.tables["pretrained"][["model", "width", "transrate_projected", "logme",
                                       "linear_probe", "accuracy"]].round(3))
if full is not None and len(full.tables.get("lite_layers", [])):
    lite = full.tables["lite_layers"]
    display(lite.round(3))
    display(stats.rank_correlations(lite[["transrate", "transrate_layerwise", "width"]],
                                         lite["accuracy"], n_boot=300)[
        ["pearson", "pearson_low", "pearson_high", "kendall", "n"]].round(2))
"""),
        md("""
## 2. This run (fast mode: the same design, smaller)

Every cell (model x target) is cached on disk; re-running is fast.
"""),
        code("res = E.run(cfg)"),
        md("""
### The truth's recipe, chosen before any score is seen

Each learning rate of the grid fine-tunes a few models (evenly spaced over the zoo, the
random init left out) on 60 % of the target's training images and is scored on the other
40 %; the best mean validation accuracy fixes the recipe for every model of that target.
"""),
        code("""
display(E.report.recipe_table(res).round(3))
fig = E.plots.plot_recipe(res)
"""),
        md("""
### The gates

A target counts only when (i) the models' seed-mean accuracies spread over at least 3
standard errors, where the standard error counts seed noise as well as test sampling, and
no model reaches 0.97; (ii) the fine-tuning converged (every training-loss curve has
flattened), no seed collapsed to chance, and it reaches at least the frozen linear probe on
most models.
"""),
        code("""
display(E.report.checks(res).round(3))
fig = E.plots.plot_curves(res)
"""),
        md("Seed-mean accuracy against three scores (hollow: the declared-out random init):"),
        code("fig = E.plots.plot_model_selection(res)"),
        md("""
Per target, every score and baseline: Pearson, Kendall and weighted tau with 95 % bootstrap
intervals, permutation p-values and the leave-one-out range -- first with the random-init
model (as the old notebook did), then without it. Compare the two: the random init's
projected TransRate is exactly 0, so with it in, a score can look better than it is.
"""),
        code("""
cols = ["target", "score", "pearson", "pearson_low", "pearson_high", "loo_low", "loo_high",
        "weighted_tau", "n"]
with_ri = E.report.correlation_table(res, include_degenerate=True, n_boot=300)
without = E.report.correlation_table(res, include_degenerate=False, n_boot=300)
display(with_ri[cols].round(2).style.set_caption("random init IN"))
display(without[cols].round(2).style.set_caption("random init OUT (the verdicts' items)"))
"""),
        md("""
## 3. Layer selection, with the paper's protocol

A residual stack of blocks **of equal width**, so width cannot confound (6 blocks in fast
mode, 8 in the full run: see the configurations printed above), trained on a source task;
for each block: keep the blocks up to it, re-initialise every later one, new head, LP-FT
(`transfer_nb.selection.score_layers(truth="finetune_reinit")`), with the learning rate
chosen for that target above.
"""),
        code("""
fig = E.plots.plot_layer_selection(res)
display(E.report.layer_checks(res).round(3))
"""),
        md("""
## 4. Paper says / this run measured

One row per claim; exactly one is the primary claim. Rules, applied mechanically: a
correlation claim is *reproduced* when the 95 % interval of the within-target pooled
statistic lies above 0, *not reproduced* below 0, *inconclusive* across 0, *fragile* when
leaving one model out flips it, *excluded* when no target passed the gates. "A beats B" is
the paired bootstrap of the difference of their correlations on the same resamples.
"""),
        code("""
verdicts = E.report.verdicts(res)
with pd.option_context("display.max_colwidth", 60):
    display(verdicts[SHOW].round(3))
display(Markdown(E.report.summary(res, verdicts)))
"""),
        md("""
**How to read it.** The fast run has 9 models per target and 2 seeds: it shows the method
and its checks; the stored full run (24 models, 3 targets, 3 seeds, 3 layer-selection cases)
is the evidence. The paper's zoo holds ImageNet models and targets with thousands of
images; here the models are small CNNs and the targets few-shot: a verdict here says what
this design measured, not what CIFAR-100 would give.
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
