"""Generate notebooks/06_pge.ipynb: PGE (Qi et al., arXiv 2211.16299) for source selection,
on the experiment contract: the stored full run first, the fast run beside it."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, exercise, md  # noqa: E402
from transfer_nb.lessons import READING  # noqa: E402

PATH = "notebooks/06_pge.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 70)
import transfer_nb as tnb
from transfer_nb import lessons
from transfer_nb.exercises import check, show_exercise
from transfer_nb.experiments import base, pge as E
import transfer_nb_widgets as widgets
CHECKS = ["target", "passes", "reason", "chance", "scratch", "worst", "best",
          "negative_transfer", "spread_in_se", "above_probe", "plateaued"]
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
"""


def cells():
    return [
        md("""
# 06 · PGE: choosing a source task from principal gradients

**You will learn**
* what a task's **principal gradient** is: its loss gradient at shared weights, averaged over
  batches and restarts, normalised to unit length;
* how the distance between two tasks' principal gradients is used to choose a source task
  for a target, without training on the pair;
* how to test such a claim honestly: within each target, against a **gradient-free
  baseline**, with a **label-permutation control** and a stability check.

**Before this:** lesson 02 (within-target correlations). **Paper:** Qi et al.,
*Transferability Estimation Based On Principal Gradient Expectation* (arXiv 2211.16299): a
small distance means good transfer; the estimate is stable and cheaper than the transfer it
predicts. No official code is public: the library's reading is in the docstring of
`transfer_nb.estimators.pge`.
"""),
        code(SETUP),
        md("""
## 1. The data, seen

Tasks cut from the embedded sets: digits and capitals rendered in two fonts, handwritten
digits, shapes with and without a colour shift, textures. Each task is both a **source** (a
small CNN trained on it) and a **target** (3 labelled images per class); every ordered pair
is an item.
"""),
        code("""
fig = lessons.show_images(cfg.tasks, image_size=cfg.image_size, per_class=3, max_classes=5)
"""),
        md(r"""
## 2. The idea on a small example

Take one network with weights $\theta_r$ (restart $r$: fresh random weights). For a task $T$
the **expected gradient** at restart $r$ averages the batch gradients of its loss,
$G_r^T = \mathbb{E}_b\big[\nabla_\theta \ell_T(\theta_r; b)\big]$. The **principal gradient**
averages the restarts and normalises:

$$\mathrm{PG}_T = \frac{\bar G^T}{\lVert \bar G^T\rVert_2},\qquad
\bar G^T = \frac1R \sum_{r=1}^R G_r^T,\qquad
\mathrm{PGE}(S, T) = \big\lVert \mathrm{PG}_S - \mathrm{PG}_T \big\rVert_2 \in [0, 2].$$

Two tasks that pull the same weights the same way are close; **lower = more transferable**.
On toy gradient arrays (restarts x batches x parameters), the library's distance and the
same computation in three lines of NumPy:
"""),
        code("""
rng = np.random.default_rng(0)
shared = rng.normal(size=50)
grads_s = shared + 0.5 * rng.normal(size=(4, 6, 50))      # 4 restarts, 6 batches, 50 weights
grads_t = shared + 0.5 * rng.normal(size=(4, 6, 50))
grads_u = rng.normal(size=(4, 6, 50))                     # an unrelated task
unit = lambda g: g.mean(axis=(0, 1)) / np.linalg.norm(g.mean(axis=(0, 1)))
print(f"related: {tnb.estimators.pge_distance(grads_s, grads_t):.3f} "
      f"(numpy {np.linalg.norm(unit(grads_s) - unit(grads_t)):.3f}); "
      f"unrelated: {tnb.estimators.pge_distance(grads_s, grads_u):.3f}")
""", check=True),
        md("""
## 3. The experiment, run

Every transfer **replaces the head** (LP-FT: the new head starts from the linear probe, then
every layer trains), and PGE uses the **body's** parameters only, so the tasks' class indices
cannot line up through a shared head. The truth is the transfer accuracy itself, its learning
rate chosen per target on a validation split; a random-init "scratch" model is fine-tuned
beside it, so negative transfer can show. Every cell is cached on disk.
"""),
        code("res = E.run(cfg)"),
        md("Per target, transfer accuracy against the PGE distance of each source (crosses: the "
           "distance with the target's labels permuted):"),
        code("fig = E.plots.plot_within_target(res)"),
        md("""
**Step through a pair** with the `PGEExplorer`: pick a source and a target; the bars show,
layer by layer (body only), the cosine similarity of the two tasks' principal gradients,
with the measured gain over scratch. Which layers make two fonts of the same digits close?
"""),
        code("""
explorer = widgets.PGEExplorer(E.explorer_input(res), source="glyphs 0-4 sans",
                               target="glyphs 0-4 serif")
explorer
"""),
        md("""
## 4. The result

""" + READING + """

The primary claim is within-target: per target, Kendall's tau of −PGE with the transfer
accuracy over its sources, averaged over targets. The **label-permutation control** permutes
each target's labels before its principal gradient is taken: the truth cannot change (the head
is replaced), so if PGE measures how related two tasks are, its ranking should survive; a drop
of τ by more than the margin of 0.1 would mean PGE reads the order of the label indices. The evidence is the **pre-registered
confirmation**: in the exploratory full run the few-shot training set was drawn with the same
seed for every seed (so seed noise was undercounted), and its claims were fixed in advance and
tested again with a training set drawn per seed, new seeds and two new tasks. The last column
is the fast run you just executed.
"""),
        code("""
runs = lessons.stored_runs("pge", E)
stored, name, label = lessons.stored_verdicts(runs, E)
fast_verdicts = E.report.verdicts(res)
evidence = stored.get(name, fast_verdicts)
papers = {0: "lower PGE, better", 1: "survives", 2: "beats", 3: "-", 5: "lower PGE, better",
          6: "stable", 10: "cheaper"}
short = {5: "-PGE vs accuracy pooled across targets (secondary)"}
display(lessons.result_table(evidence, fast_verdicts, claims=list(papers), papers=papers,
                             short_names=short, evidence_label=label or "this run"))
display(Markdown(lessons.read_aloud(evidence, run=f"the {name or 'fast'} run")))
"""),
        md("## 5. What we learned"),
        code("""
conf, expl = stored.get("confirmation"), stored.get("exploratory")
both = lambda i: (f"exploratory {lessons.said(expl, i)}, confirmation {lessons.said(conf, i)}"
                  if conf is not None and expl is not None else lessons.said(evidence, i))
display(Markdown("\\n".join([
    f"* **PGE ranks the sources of a target**: Kendall tau {both(0)}.",
    f"* **A gradient-free baseline** (the distance of random networks' mean features) ranks them "
    f"too, {both(3)}; PGE minus the baseline: {both(2)}. Where the two cannot be told apart, the "
    "gradients have not shown they add anything a forward pass did not already see.",
    f"* **The label-permutation control** (non-inferiority, margin 0.1): {both(1)}.",
    f"* **Pooled across targets** instead of within: {both(5)}; **cost**: {both(10)}.",
])))
"""),
        md("""
## 6. Exercises

1. **Try this** (explorer): pick a source and a target with the same characters in two fonts,
   then two unrelated tasks. *Expect* higher cosine similarity for the first pair.
2. **Write code** (checked, below): the PGE distance between two tasks.
3. **Write code** (checked, below): PGE per restart, averaged over restarts (the library's
   `reduce="mean_distance"`).
4. **Predict, then check**: permute a target's labels. Does the distance to its sources
   change? Does the ranking quality? Read the control's row in the result table.

Each statement prints in its cell below; replace the stub by your code and run the cell.

Hints: `hint(id)` with the id printed above each exercise (`from transfer_nb.exercises import hint`); solutions: `show_solution(id)`
or the *Exercise solutions* page of the docs.
"""),
        exercise("06.1", "pge_distance", "grads_a, grads_b"),
        exercise("06.2", "pge_per_restart", "grads_a, grads_b"),
        md("""
---
## Appendix: the evidence

**The gates.** A target counts only when (i) its sources' seed-mean accuracies spread over at
least 3 standard errors (seed noise and test sampling) and no source reaches the accuracy ceiling (`stats.CEILING`); (ii) the
fine-tuning converged (training-accuracy curves flattened), no seed collapsed to chance, and
it reaches at least the frozen linear probe on most sources. `scratch` is the random-init model
fine-tuned the same way; `negative_transfer` counts the sources below it.

**The rules.** A correlation claim is *reproduced* when the 95 % interval of the within-target
pooled statistic lies above 0, *not reproduced* below 0, *inconclusive* across 0, *fragile*
when leaving one pair out flips it, *excluded* when no target passed the gates. "A beats B"
and the stability comparisons are paired bootstraps on the same resamples; the control is
non-inferiority: tau with permuted labels minus tau with the real ones must stay above −0.1.

**Noise/signal** is the seed-to-seed spread of a pair's distance over the spread of the
distances across pairs: below 1, the seed hardly reorders the pairs; above 1, the seed moves a
pair's distance more than the pairs differ. The stability table reads it per number of
restarts and batches, for the paper's reduction (`expectation`: average the restarts'
gradients, then normalise) and per-restart normalisation (`mean_distance`).
"""),
        code("""
display(Markdown("### The pre-registered confirmation"))
conf_run, _ = lessons.evidence("pge", E.config("confirm"), E, confirm=True)
display(Markdown("### The exploratory full run"))
full, full_verdicts = lessons.evidence("pge", E.config("full"), E)
if full is not None:
    fig = E.plots.plot_within_target(full)
    fig = E.plots.plot_matrices(full)
    stab = E.report.stability_table(full)
    display(stab.round(3))
    fig = E.plots.plot_stability(full)
"""),
        code("""
if full is not None:
    ns = stab[[c for c in stab.columns if "noise" in c][0]]
    display(Markdown(f"Noise/signal in the stored run ranges from {ns.min():.2f} to {ns.max():.2f}"
                     + (": above 1 everywhere, so a single seed's distances reorder the pairs, "
                        "and only averages over seeds (as the verdicts use) can rank them."
                        if ns.min() > 1 else ".")))
"""),
        md("**This fast run in detail**: configuration, gates, distance matrices, stability, cost "
           "and every claim."),
        code("print(E.describe(cfg))", check=True),
        code("""
display(E.report.checks(res)[CHECKS].round(3))
fig = E.plots.plot_matrices(res)
display(E.report.stability_table(res).round(3))
fig = E.plots.plot_stability(res)
display(E.report.cost_table(res).describe().loc[["mean", "min", "max"]].round(4))
display(fast_verdicts.round(3))
display(Markdown(E.report.summary(res, fast_verdicts)))
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
