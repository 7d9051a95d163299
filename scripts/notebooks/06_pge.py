"""Generate notebooks/06_pge.ipynb: PGE (Qi et al., arXiv 2211.16299) for source selection,
on the experiment contract: the stored full run first, the fast run beside it."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/06_pge.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 70)
from transfer_nb.experiments import base, pge as E
import transfer_nb_widgets as widgets
SHOW = ["claim", "primary", "statistic", "estimate", "low", "high", "verdict", "perm_p",
        "loo_low", "loo_high", "n_items"]
CHECKS = ["target", "passes", "reason", "chance", "scratch", "worst", "best",
          "negative_transfer", "spread_in_se", "above_probe", "plateaued"]
"""


def cells():
    return [
        md("""
# 06 · PGE: choosing a source task from principal gradients

**Paper.** Qi et al., *Transferability Estimation Based On Principal Gradient Expectation*
(arXiv 2211.16299). **Claim.** How well a source task transfers to a target task can be
read off the distance between their *principal gradients*: each task's loss gradient at
the same network weights, averaged over batches and over several restarts of the weights,
then normalised to unit length. A small distance should mean good transfer; the paper adds
that the estimate is stable and cheaper than the transfer it predicts.

**The design** (`transfer_nb.experiments.pge`, on the experiment contract):

* *nine tasks* cut from the embedded sets (glyph character sets in two fonts, digits,
  shapes with and without a shift, textures); each is a **source** (a small CNN trained on
  it) and a **target** (3 labelled images per class); every ordered pair is an item;
* *no shared-head shortcut*: every transfer **replaces the head** (LP-FT: the new head
  starts from the linear probe, then every layer trains), and PGE uses the **body's**
  parameters only (every parameter except the final linear layer's), so the tasks' class
  indices cannot line up through a shared head;
* *the truth is the transfer accuracy itself* (within a target, ranking sources by
  accuracy or by gain over a scratch model is the same ranking); its learning rate is
  chosen per target on a validation split of the training images; every target must pass
  the gates before it counts; a random-init "scratch" model is fine-tuned beside it, so
  negative transfer can show;
* *the primary claim is within-target*: per target, Kendall tau of -PGE with the transfer
  accuracy over its sources, averaged over targets, with a bootstrap that resamples
  sources within each target and a permutation test that shuffles them within each target;
* *a label-permutation control*: each target's labels are deranged before its principal
  gradient is taken (the truth cannot change: the head is replaced); if PGE measures task
  relatedness, its ranking quality survives -- shown as a paired difference;
* *a gradient-free baseline* (the distance of random networks' mean features), compared
  with PGE by a paired bootstrap on the same pairs; and a *stability sweep* with bootstrap
  intervals.

Terms. **Kendall tau**: the share of source pairs put in the same order by the score and
by the accuracy, rescaled to [-1, 1]. **Pooled within target**: computed per target, then
averaged. **Noise/signal**: the seed-to-seed spread of a pair's distance over the spread of
the distances across pairs (below 1: the seed hardly reorders the pairs).
"""),
        code(SETUP),
        md("The configuration of this run (fast in CI; the full preset is what the stored run used):"),
        code("""
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
print(E.describe(cfg))
""", check=True),
        md("""
## 1. The stored full run (the evidence)

`python -m transfer_nb.experiments.pge --full --save` stores its tables and provenance
under `results/pge/`; the test suite fails when its config hash no longer matches
`config("full")`. Its gates, verdicts and summary, recomputed from the stored tables by the
same report functions as the fast run below:
"""),
        code("""
full = base.load_run("pge", current_hash=E.config_hash(E.config("full")))
if full is None:
    print("no stored full run: run `python -m transfer_nb.experiments.pge --full --save`")
else:
    full.cfg = E.config("full")
    print(E.describe(full.cfg))
    print({k: full.meta[k] for k in ("mode", "commit", "device", "date", "wall_clock_s", "stale")})
    display(E.report.checks(full)[CHECKS].round(3))
    display(E.report.verdicts(full)[SHOW].round(3).style.set_caption("STORED FULL RUN"))
    display(Markdown(E.report.summary(full)))
"""),
        code("""
if full is not None:
    fig = E.plots.plot_within_target(full)
    fig = E.plots.plot_matrices(full)
"""),
        md("""
Stability in the stored run: noise/signal per number of restarts and of batches per
restart (0 = every batch), for the paper's reduction (average the restarts' gradients,
then normalise: `expectation`) and for per-restart normalisation (`mean_distance`), with
95 % bootstrap intervals over the seeds:
"""),
        code("""
if full is not None:
    display(E.report.stability_table(full).round(3))
    fig = E.plots.plot_stability(full)
"""),
        md("""
## 2. This run (fast mode: the same design, smaller)

Six tasks (30 ordered pairs), 2 seeds and a small stability sweep; every cell is cached on
disk, so re-running is fast.
"""),
        code("res = E.run(cfg)"),
        md("""
### The gates

A target counts only when (i) its sources' seed-mean accuracies spread over at least 3
standard errors, where the standard error counts seed noise as well as test sampling, and
no source reaches 0.97; (ii) the fine-tuning converged (training-accuracy curves
flattened), no seed collapsed to chance, and it reaches at least the frozen linear probe on
most sources. `scratch` is the random-init model fine-tuned the same way;
`negative_transfer` counts the sources below it.
"""),
        code("display(E.report.checks(res)[CHECKS].round(3))"),
        md("Per target, transfer accuracy against the PGE distance of each source (crosses: "
           "the distance with the target's labels permuted):"),
        code("fig = E.plots.plot_within_target(res)"),
        code("fig = E.plots.plot_matrices(res)"),
        md("### Stability and cost"),
        code("""
display(E.report.stability_table(res).round(3))
fig = E.plots.plot_stability(res)
display(E.report.cost_table(res).describe().loc[["mean", "min", "max"]].round(4))
"""),
        md("""
### Explore a pair

Pick a source and a target: the bars show, layer by layer (body only), the cosine
similarity of the two tasks' principal gradients (here both on the tasks' source
samples), with the measured gain over scratch.
"""),
        code("""
explorer = widgets.PGEExplorer(E.explorer_input(res), source="glyphs 0-4 sans",
                               target="glyphs 0-4 serif")
explorer
"""),
        md("""
## 3. Paper says / this run measured

One row per claim; exactly one is the primary claim. Rules, applied mechanically: a
correlation claim is *reproduced* when the 95 % interval of the within-target pooled
statistic lies above 0, *not reproduced* below 0, *inconclusive* across 0, *fragile* when
leaving one pair out flips it, *excluded* when no target passed the gates. "A beats B" and
the stability comparisons are paired bootstraps on the same resamples; the control is
non-inferiority: tau with permuted labels minus tau with the real ones must stay above
-0.1.
"""),
        code("""
verdicts = E.report.verdicts(res)
display(verdicts[SHOW].round(3))
display(Markdown(E.report.summary(res)))
"""),
        md("""
**How to read it.** The fast run shows the method and its checks on six tasks and two
seeds; the stored full run (nine tasks, every ordered pair, more seeds, ten stability
seeds) is the evidence. The paper's tasks are large image benchmarks with pretrained
networks; here the tasks are small embedded sets and the networks tiny CNNs: a verdict here
says what this design measured, not what the paper's benchmarks would give.
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
