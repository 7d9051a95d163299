"""Generate notebooks/06_pge.ipynb: PGE (Qi et al., arXiv 2211.16299), task-to-task
transferability from principal gradients, against the measured transfer gain."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/06_pge.ipynb"


def cells():
    return [
        md("""
# 06 · PGE: transferability between tasks from principal gradients

**Paper.** Qi et al., *Transferability Estimation Based On Principal Gradient Expectation*
(arXiv 2211.16299). **Claim.** The transferability between a source task and a target task
can be read off the distance between their *principal gradients*: the loss gradient of each
task at the same network weights, averaged over batches and over several restarts of the
weights, then normalised to unit length. A small distance should mean a large transfer gain,
and the paper reports that this estimate agrees with transfer results while being more
stable and cheaper than earlier cross-task metrics.

**This notebook** builds several five-class tasks from the embedded data sets (digits and
glyph class subsets, two fonts, shapes, textures), computes PGE for every pair, measures the
real transfer gain of every pair on a data-scarce target with several seeds, correlates the
two (with bootstrap intervals) beside a gradient-free baseline, and measures how the
distance's noise and cost depend on the number of restarts and batches.
"""),
        code("""
%matplotlib inline
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from transfer_nb.experiments import pge as E
import transfer_nb_widgets as widgets
"""),
        md("""
## The tasks and the settings

Every task has five classes, so one small CNN with one five-way head serves all of them.
Fast mode (CI) runs six of the nine tasks at a small image size; full mode runs all nine.
"""),
        code("""
cfg = E.config()
print(E.describe(cfg))
""", check=True),
        md("""
## The experiment

* **PGE** (the estimator): for each restart the network is re-initialised with a fixed seed,
  and each task's loss gradient is averaged over its batches at those weights; averaging over
  restarts gives the principal gradient, and PGE is the distance between the two unit-length
  principal gradients (from zero, same direction, to two, opposite). Lower means closer.
* **Baseline** (no gradients): the distance between the two tasks' unit-length mean feature
  vectors of the same random networks.
* **Ground truth**: the target's test accuracy after training on the source and then
  fine-tuning on a few target images, minus the accuracy of the same fine-tuning from a
  random initialisation (the *transfer gain*), averaged over seeds.
"""),
        code("""
res = E.run(cfg)
"""),
        md("""
### Does the ground truth discriminate?

A target counts only when the accuracies reached from its different sources spread over at
least three standard errors of a single accuracy and none sits at the ceiling; a failing
target is shown and left out of the verdicts.
"""),
        code("""
display(res["check"].round(3))
"""),
        code("""
E.plot_matrices(res)
plt.show()
"""),
        md("""
## Does PGE agree with the transfer gain?

`stats.rank_correlations` gives Pearson r (linear agreement), Kendall tau (the fraction of
pairs of pairs ordered the same way, rescaled to the range from minus one to one) and
weighted tau (Kendall with the top of the ranking weighted more), each with a bootstrap
interval over pairs and a permutation p-value. Scores are negated distances, so a positive
correlation means agreement. Pairs that share a source or a target are not independent:
read the intervals as optimistic.
"""),
        code("""
display(E.correlations(res).round(3))
"""),
        md("""
The paper's use is choosing a source for a given target; per target there are only a few
sources, so these intervals are wide.
"""),
        code("""
display(E.per_target_correlations(res).round(2))
E.plot_scatter(res)
plt.show()
"""),
        md("""
## Stability and cost

The same pairs are scored with several seeds (other restart weights and batch orders) for
each number of restarts and of batches per restart. *Noise/signal* divides the spread of
the distance across seeds by the spread of the distance across all pairs of the matrix:
a value well below one means the seed hardly changes the ranking. The baseline's spread
is measured the same way.
"""),
        code("""
display(E.stability_table(res).round(4))
E.plot_stability(res)
plt.show()
"""),
        md("""
## Explore a pair

Pick a source and a target: the bars show, layer by layer, the cosine similarity of the two
principal gradients (the widget's `similarity` traitlet), with the pair's distance and its
measured gain.
"""),
        code("""
explorer = widgets.PGEExplorer(res, source="glyphs 0-4 sans", target="glyphs 0-4 serif")
explorer
"""),
        md("""
## Paper says / this run measured

Each verdict follows the stated rule on the measured interval or value.
"""),
        code("""
display(Markdown(E.report(res)))
display(E.paper_vs_measured(res))
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
