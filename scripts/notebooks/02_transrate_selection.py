"""Generate notebooks/02_transrate_selection.ipynb, the lesson on TransRate for model and
layer selection (Huang et al., ICML 2022), in the lesson shape of the contributor page:
data, idea, experiment stepped through, result, what we learned, exercises, evidence."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, exercise, md  # noqa: E402
from transfer_nb.lessons import READING  # noqa: E402

PATH = "notebooks/02_transrate_selection.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 110)
import transfer_nb as tnb
from transfer_nb import lessons, stats
from transfer_nb.exercises import check, show_exercise
from transfer_nb.experiments import base, transrate as E
import transfer_nb_widgets as widgets
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
"""

#: the rows of the lesson's result table (the rest is in the appendix)
#: the rows of the result table (the rest is in the appendix)
CLAIMS = ["projected TransRate correlates with fine-tuned accuracy", "logme correlates",
          "source_accuracy correlates", "projected TransRate beats logme",
          "projected TransRate beats source_accuracy", "projected TransRate beats source_n",
          "exclusion analysis"]


def cells():
    return [
        md("""
# 02 · TransRate: choosing a model and a layer without fine-tuning

**You will learn**
* what TransRate measures: how much information a model's features carry about the target's
  labels, as a difference of two coding rates;
* how to use it to choose a pretrained model, and a layer of one model, before paying for any
  fine-tuning;
* how to tell whether an estimator really works: a correlation *within* each target, a
  baseline it must beat, and a 95 % interval instead of a single number.

**Before this:** lesson 01 (the coding rate). **Paper:** Huang et al., *Frustratingly Easy
Transferability Estimation*, ICML 2022.
"""),
        code(SETUP),
        md("""
## 1. The data, seen

The **targets** are few-shot tasks the source models never saw: 5 labelled images per class,
many classes, rendered in fonts and styles the sources did not see. Those are the tasks where
what a model learned on its source matters (with many labels, any model fine-tunes well and
nothing can be ranked). The **sources** are the tasks the zoo of small CNNs was trained on.
"""),
        code("""
sources = list({s.dataset: s for s in cfg.sources if s.epochs != 0}.values())
fig = lessons.show_images(list(cfg.targets) + sources,
                          titles=[f"target: {t.name}" for t in cfg.targets]
                          + [f"source: {s.dataset}" for s in sources])
"""),
        md(r"""
## 2. The idea on a small example

TransRate compares the *volume* of the whole feature cloud with the volumes of the class
clouds (lesson 01). With features $Z$ ($n \times d$, centred) and $K$ classes,

$$\mathrm{TransRate}(Z, y) = R(Z, \epsilon) - \frac1K \sum_{k=1}^K R(Z_k, \epsilon),\qquad
R(Z, \epsilon) = \tfrac12 \log\det\Big(I + \tfrac{1}{n\epsilon} Z^\top Z\Big).$$

A large value means the classes occupy separate, compact regions: a linear head will find
them. The authors' *projected* variant (their model-selection code) first projects $Z$ onto
the $K-1$ directions that separate the class means, so that it no longer grows with the
width $d$; lesson 01 shows why the plain one does.

One pretrained model, EfficientNet-Lite0 (ImageNet weights), on the first target: one forward
pass, three lines.
"""),
        code("""
target, _ = base.load_target(cfg.targets[0], image_size=64, seed=0, normalize="lite")  # the few-shot train set
Z = tnb.extract_features(tnb.load_model("efficientnet_lite0"), target, layers=["global_pool"])["global_pool"]
y = np.asarray(target.targets)
print(f"features {Z.shape}: TransRate snippet {tnb.transrate(Z, y):.1f}, "
      f"projected {tnb.transrate(Z, y, eps=0.015, variant='projected'):.2f}")
"""),
        md("""
The number alone means nothing: TransRate is only useful to **compare** models (or layers)
on the same target. So the experiment asks: across a zoo of models, does a higher TransRate
go with a higher accuracy after fine-tuning?

## 3. The experiment, stepped through

First one model, step by step, with the **TransferabilityStepper**: step 1 extracts the
features of every block of EfficientNet-Lite0 on the target (a 2-D view of each layer);
step 2 computes the coding rates of each layer (move ε and watch the terms); step 3 scores
every layer with TransRate and measures the linear-probe accuracy beside it (the probe is a
logistic regression trained on the frozen features: the truth for choosing a layer). The cell
below presses the buttons for you; run it, then go back and forth yourself.

*Before you run it, predict:* will TransRate pick the same block as the probe?
"""),
        code("""
stepper = widgets.TransferabilityStepper(datasets={"target: " + cfg.targets[0].name: target},
                                         models=["efficientnet_lite0"], n=len(target), image_size=64)
stepper.explorer.select_layers(list(stepper.explorer.layers.options))
stepper.explorer.extract(); stepper.go_to(2); stepper.go_to(3); stepper.selector.measure()
stepper
"""),
        code("""
layer_scores = stepper.selector.scores
best_tr, best_probe = layer_scores["transrate"].idxmax(), layer_scores["accuracy"].idxmax()
display(Markdown(
    f"TransRate (snippet) picks **{best_tr}** (width {int(layer_scores.loc[best_tr, 'width'])}); "
    f"the probe is best at **{best_probe}** ({layer_scores.loc[best_probe, 'accuracy']:.2f} against "
    f"{layer_scores.loc[best_tr, 'accuracy']:.2f}). The snippet also counts dimensions (lesson 01), "
    "so on layers of different widths their width is part of the score: the experiment's layer "
    "selection therefore compares blocks of equal width (section 5)."))
"""),
        md("""
Now the whole experiment, in fast mode: a zoo of small CNNs of **one** architecture and
width, whose quality differs only through what they learned (source task, amount of source
data, label noise). Each is scored with TransRate and LogME, then fine-tuned on each target
(LP-FT: the new head starts from the linear probe, then every layer trains; its learning
rate chosen on a validation split before any score is seen) over several seeds: the ground
truth. Every (model, target) cell is cached on disk.
"""),
        code("res = E.run(cfg)"),
        md("Each point is one model on one target; hollow: the random-init model, declared out in "
           "advance (its projected TransRate is 0 by construction)."),
        code("fig = E.plots.plot_model_selection(res)"),
        md("""
## 4. The result

""" + READING + """

The evidence is the **pre-registered confirmation**: the exploratory full run (24 models,
3 targets, all glyph renderings, 3 seeds) was followed by a run whose claims were fixed in
advance, on new seeds and new images: the lowercase letters again, and two targets that are
not glyph renderings (shapes, photos; a target that fails its gates is left out, as the
appendix shows), with the random-init model *in* and a paired claim against a baseline of
source size (`source_n`, the number of source images). It tests model selection only (layer selection stays exploratory,
below). The paper's numbers are CIFAR-100 with ImageNet models. The last column is the fast
run you just executed.
"""),
        code(f"CLAIMS = {CLAIMS!r}  # the table's rows: the rest is in the appendix"
             .replace("', '", "',\n          '")),
        code("""
runs = lessons.stored_runs("transrate", E)
stored, name, label = lessons.stored_verdicts(runs, E)
fast_verdicts = E.report.verdicts(res)
evidence = stored.get(name, fast_verdicts)
short = {CLAIMS[0]: "projected TransRate correlates", CLAIMS[6]: "... with random-init declared out"}
display(lessons.result_table(evidence, fast_verdicts, claims=CLAIMS, short_names=short,
                             evidence_label=label or "this run"))
display(Markdown(lessons.read_aloud(evidence, run=f"the {name or 'fast'} run")))
"""),
        md("## 5. What we learned"),
        code("""
conf, expl = stored.get("confirmation"), stored.get("exploratory")
both = lambda c: (f"exploratory {lessons.said(expl, c)}, confirmation {lessons.said(conf, c)}"
                  if conf is not None and expl is not None else lessons.said(evidence, c))
lines = [f"* **Does TransRate track transfer within a target?** Pearson: {both(CLAIMS[0])}, against "
         "the paper's 0.81 on CIFAR-100. *Fragile*: the interval clears 0, but dropping one model "
         "makes it inconclusive.",
         f"* **Against LogME**, the paper's main rival: TransRate minus LogME {both(CLAIMS[3])}.",
         f"* **Against baselines that never look at the target**: the source task's own accuracy "
         f"correlates {both(CLAIMS[2])}; TransRate minus it {both(CLAIMS[4])}; TransRate minus "
         f"source size {both(CLAIMS[5])}. An estimator that does not beat such a baseline has not "
         "shown that it reads the target."]
if expl is not None:
    lines.append(f"* **Choosing a layer** (exploratory only): on blocks of equal width the snippet "
                 f"correlates {lessons.said(expl, 'layer selection: transrate correlates')}; the authors' "
                 f"layerwise variant, divided by the rank, "
                 f"{lessons.said(expl, 'layer selection: transrate_layerwise correlates')}.")
display(Markdown("\\n".join(lines)))
"""),
        md("""
## 6. Exercises

1. **Try this** (stepper): in step 2, move ε from 1e-4 to 1e-1. *Expect* R(Z) and R(Z|Y) to
   shrink together and TransRate to fall; the ranking of the layers in step 3 changes little.
2. **Try this** (stepper): predict the layer TransRate picks before step 3, then compare it
   with the probe's best layer. *Expect* the snippet to favour a wide layer.
3. **Write code** (checked, below): choosing a model is a question asked of one target at a
   time: the mean within-target Kendall τ.
4. **Write code** (checked, below): "A beats B" is a *paired* comparison: the bootstrap of
   r(a) − r(b) on the same resampled items.

Each statement prints in its cell below; replace the stub by your code and run the cell.

Hints: `hint(id)` with the id printed above each exercise (`from transfer_nb.exercises import
hint`); solutions: `show_solution(id)` or the *Exercise solutions* page of the docs.
"""),
        exercise("02.1", "mean_within_tau", "scores, truth, groups"),
        exercise("02.2", "paired_bootstrap_diff", "score_a, score_b, truth, idx"),
        md("""
---
## Appendix: the evidence

For the reader who audits. The stored full run with its provenance, its gates per target,
every claim with its rule and the generated summary; then the fast run's own details.

**The rules.** A target counts only when (i) the models' seed-mean accuracies spread over at
least 3 standard errors, where the standard error counts seed noise as well as test sampling,
and no model reaches the accuracy ceiling (`stats.CEILING`); (ii) the fine-tuning converged (the training accuracy plateaus on
at least 90 % of the curves), no seed collapsed to chance, and it reaches at least the frozen
linear probe on most models. A correlation claim is *reproduced* when the 95 % interval of
the within-target pooled statistic (Fisher-z average over targets, bootstrap over models
within each target) lies above 0, *not reproduced* below 0, *inconclusive* across 0,
*fragile* when leaving one model out flips it. "A beats B" is the paired bootstrap of the
difference of their correlations on the same resamples.
"""),
        code("""
display(Markdown("### The pre-registered confirmation"))
conf_run, _ = lessons.evidence("transrate", E.config("confirm"), E, confirm=True)
display(Markdown("### The exploratory full run"))
full, full_verdicts = lessons.evidence("transrate", E.config("full"), E)
if full is not None:
    fig = E.plots.plot_model_selection(full)
"""),
        md("""
**The three ImageNet models** (EfficientNet-Lite0/1/2, the same width of 1280 features at
the last layer) scored on the first target beside their linear probe and their LP-FT accuracy.
Three items decide nothing; the table shows one more lesson: where the fine-tuned accuracy
lies far below the frozen probe, the fine-tuning of these large models on 5 images per class
failed (it destroyed good features), which is why the experiment's truth is held to the
"reaches the probe" gate. Below: EfficientNet-Lite0's own layers, whose widths differ, with
the width as the baseline TransRate must beat.
"""),
        code("""
if full is not None:
    pre = full.tables["pretrained"]
    display(pre[["model", "width", "transrate_projected", "logme", "linear_probe", "accuracy"]].round(3))
    below = pre[pre["accuracy"] < pre["linear_probe"] - 0.1]
    display(Markdown(f"Fine-tuning below the probe by more than 0.1: "
                     + (", ".join(f"{r.model} ({r.accuracy:.2f} vs {r.linear_probe:.2f})"
                                  for r in below.itertuples()) or "none") + "."))
    lite = full.tables["lite_layers"]
    display(lite.round(3))
    display(stats.rank_correlations(lite[["transrate", "transrate_layerwise", "width"]],
                                    lite["accuracy"], n_boot=300)[
        ["pearson", "pearson_low", "pearson_high", "kendall", "n"]].round(2))
"""),
        md("**This fast run in detail**: the configuration, the truth's recipe (chosen on a "
           "validation split before any score is seen), the gates, the training curves, every "
           "correlation with and without the random-init model, and layer selection."),
        code("print(E.describe(cfg))", check=True),
        code("""
display(E.report.recipe_table(res).round(3))
display(E.report.checks(res).round(3))
fig = E.plots.plot_curves(res)
"""),
        code("""
cols = ["target", "score", "pearson", "pearson_low", "pearson_high", "loo_low", "loo_high",
        "weighted_tau", "n"]
display(E.report.correlation_table(res, include_degenerate=True, n_boot=300)[cols].round(2)
        .style.set_caption("random init IN"))
display(E.report.correlation_table(res, include_degenerate=False, n_boot=300)[cols].round(2)
        .style.set_caption("random init OUT (the verdicts' items)"))
fig = E.plots.plot_layer_selection(res)
display(E.report.layer_checks(res).round(3))
display(fast_verdicts.round(3))
display(Markdown(E.report.summary(res, fast_verdicts)))
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
