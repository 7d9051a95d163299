"""Generate notebooks/04_regression_transferability.ipynb (Linear MSE and Label MSE) on the
experiment contract: the stored full run first, then the fast run, the checks, the
shuffled-target control, lambda, and the verdict table."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/04_regression_transferability.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd
pd.set_option("display.precision", 3); pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 90)
from IPython.display import Markdown, display
from transfer_nb.experiments import base
from transfer_nb.experiments import regression as E
import transfer_nb_widgets as widgets
SHOW = ["claim", "primary", "paper", "statistic", "estimate", "low", "high", "verdict",
        "control", "gates"]
"""


def cells():
    return [
        md("""
# 04 · Transferability for regression: Linear MSE and Label MSE

Nguyen et al., *Simple Transferability Estimation for Regression Tasks* (UAI 2023), ask
which pretrained model to fine-tune when the target is a **regression** task (keypoints,
angles, sizes). Their answer is two closed-form scores:

* **Linear MSE**: fit a ridge regression from the model's penultimate features to the
  targets and report the negative regularised training error
  −min ‖y − A f − b‖²/n − λ‖A‖² (higher = more transferable).
* **Label MSE**: the same regression from the source model's *outputs* (its "dummy
  labels") instead of its features.

The paper reports that both correlate with the error after fine-tuning better than the
prior estimators and run faster. This notebook tests those claims on a zoo of equal-width
small CNNs and several regression targets with exact labels, with fine-tuning as the truth.

**Two things make the scores measure what they claim.** λ is compared with the spread of
the inputs, so on raw features λ = 1 shrinks a model whose features vary little to the
mean target *whatever they encode*: the score then ranks feature variance. Here the
inputs are **standardised** (each column to unit spread) and λ is **chosen per model by
5-fold cross-validation** on the training images (printed below). And a confident
classifier's softmax outputs are nearly one-hot, so they barely vary across images and
Label MSE at λ = 1 is nearly constant across models; here Label MSE uses the source's
**log-probabilities**, which keep its graded confidence. The raw forms are kept beside
them (`linear_mse_raw`, `label_mse_probs`) so you can see the difference.

Terms. **Pooled within target**: each correlation is computed per target and averaged
(Fisher's z for Pearson): choosing a model is a question asked of one target at a time.
**Shuffled-target control**: the same scores computed after permuting the training
targets; a score that measures target information must lose its correlation, judged as
the paired difference real − shuffled. **Leave-one-out range**: the statistic's smallest
and largest value when one model is dropped; a verdict one model flips is *fragile*.
"""),
        code(SETUP),
        md("The configuration of this run (fast in CI; the full preset is what the stored "
           "run used):"),
        code("""
cfg = E.config()          # fast when CI or TRANSFER_NB_FAST is set
print(E.describe(cfg))
""", check=True),
        md("""
## 1. The stored full run (the evidence)

`python -m transfer_nb.experiments.regression --full --save` stores its tables and
provenance under `results/regression/`; the test suite fails when its config hash no
longer matches `config("full")`. Its gates, verdicts and summary, recomputed from the
stored tables by the same report functions as the fast run below:
"""),
        code("""
full = base.load_run("regression", current_hash=E.config_hash(E.config("full")))
if full is None:
    print("no stored full run: run `python -m transfer_nb.experiments.regression --full --save`")
else:
    full.cfg = E.config("full")
    print(E.describe(full.cfg))
    print({k: full.meta.get(k) for k in ("mode", "commit", "device", "jobs", "date",
                                         "wall_clock_s", "stale")})
    display(E.report.checks(full).round(3))
    full_table = E.report.verdicts(full)
    display(full_table[SHOW].round(3).style.set_caption("STORED FULL RUN"))
    display(Markdown(E.report.summary(full, full_table)))
"""),
        code("""
if full is not None:
    full_control = E.report.control_table(full)
    display(full_control.round(3))
    fig = E.plots.plot_control(full_control)
"""),
        md("""
**How this preset was sized, and what that means for the verdict.** The full preset was
enlarged twice after stored full runs had already looked at the primary claim (the first
gave a fragile verdict, the second an inconclusive one): that is optional stopping, and
the verdict above should be weighed accordingly. The last enlargement (more targets,
more models, fewer seeds) was chosen by a power analysis of the second run's stored
table -- how the interval's width depends on the numbers of targets, models and seeds --
not by the sign of its result, and the preset was frozen before this run. The same
analysis on the stored run: the primary's half-width when the design is cut down
(targets that pass the gates, models declared in, every seed; each size drawn several
times),
and the fitted law half-width = c / sqrt(targets x (models - 3)).
"""),
        code("""
if full is not None:
    used = E.report.checks(full).query("passes")["target"].tolist()
    tab = full.table[~full.table["model"].isin(base.declared_out(full))]
    models = sorted(set(tab["model"]))
    designs = [(t, m, tab["seed"].nunique()) for t in sorted({1, max(1, len(used) // 2),
                                                              len(used)})
               for m in (10, len(models))] if used else []
    if designs:
        widths = E.power.subsample_widths(tab, "linear_mse", "neg_mse", used, models,
                                          designs, reps=10, n_boot=200)
        display(widths.round(3))
        print("fit:", {k: round(v, 2) for k, v in E.power.fit_width(widths).items()})
"""),
        md("""
## 2. The fast run: protocol

* **Zoo.** Small CNNs of one architecture, one width and one epoch budget; their quality
  varies through what they learned (source task, source data size, label noise). A
  randomly initialised model is in the zoo but **declared out of the verdicts in the
  config** before the run (a leverage point), and shown hollow in the plots.
* **Targets.** `rotated_digits` (cos and sin of the angle and the scale of a rotated
  handwritten digit) with different angle ranges, and keypoint subsets of
  `shape_keypoints` (a heart under rotation, scale and shift), as the paper's tasks are
  keypoint subsets. Tens of training images; targets min-max scaled with the training
  range, as in the paper.
* **Truth.** LP-FT: a new linear regression head initialised by the ridge probe on the
  frozen features, then every layer fine-tuned with the MSE loss; the learning rate is
  chosen per target on a validation split of the training images before any score is
  correlated; several seeds; the truth is the negative test MSE.
"""),
        code("""
results = E.run(cfg)      # cached on disk: a second run only recomputes the scores
means = E.report.model_means(results, include_degenerate=True)
means[["target", "model", "neg_mse", "r2", "probe_r2", "linear_mse", "lambda_linear_mse",
       "label_mse", "lambda_label_mse", "logme", "source_accuracy"]].round(4)
"""),
        md("""
## 3. Can this truth be trusted? (the gates)

Per target: the models' spread of test MSE must be at least 3 standard errors, where the
SE counts both test sampling and seed noise, and it must stay so when any one model is
dropped (the target must not rely on one model); no model may reach R² 0.97. The
training gate: no collapsed seed, LP-FT at least as good as the ridge probe on most
models, training losses plateaued. A target that fails is shown and excluded by name.
"""),
        code("""
display(E.report.checks(results).round(3))
display(E.report.recipe_table(results).round(4))
"""),
        md("""
## 4. Scores against the truth

One point per model (seed means), the negative test MSE on the vertical axis.
"""),
        code("""
fig = E.plots.plot_scores(results, columns=("linear_mse", "label_mse", "logme",
                                            "linear_mse_raw", "label_mse_probs"))
"""),
        md("""
## 5. The shuffled-target control

If a score's correlation came from the models alone (richer features fit *any* target
better), it would survive permuting the training targets. Each score is recomputed on the
permuted targets (one permutation per target, shared by every model), and the paired
difference of the pooled-within Pearson r, real − shuffled, is bootstrapped on the same
resamples. An estimator whose control keeps the effect gets no "reproduced" below.
"""),
        code("""
control = E.report.control_table(results)
display(control.round(3))
fig = E.plots.plot_control(control)
"""),
        md("""
## 6. The effect of λ

On standardised inputs λ is measured against unit spread. With λ = 0 and fewer training
images than feature dimensions, the regression interpolates: every model scores 0 and
the score stops telling models apart. The curves show the correlation across a λ grid;
the widget lets you move λ and see every model's score.
"""),
        code("""
for target in [t.name for t in cfg.targets]:
    fig = E.plots.plot_lambda(E.report.lambda_correlations(results, target), target)
"""),
        code("""
explorer = widgets.LambdaExplorer(E.report.lambda_view(results))
explorer
"""),
        md("""
## 7. Wall-clock per estimator

Each estimator is timed alone on the same inputs (best of several repeats). The paper's
speed claim is about its fixed-λ forms, so those are what the verdict compares with LogME;
the cross-validated forms pay for their λ search and are shown beside them.
"""),
        code("""
E.report.timing_table(results).round(5)
"""),
        md("""
## 8. Paper says / this run measured

Rules, fixed before the run: a correlation claim is decided by the 95% bootstrap interval
of the pooled-within Pearson r (above 0: reproduced; below: not reproduced; else
inconclusive; *fragile* when dropping one model flips it), over the targets that pass
every gate, and is capped at inconclusive when its shuffled control keeps the effect;
"beats LogME" and the control are paired bootstrap differences; "faster" is the
t-interval of the log time ratio against the paper's 27%.
"""),
        code("""
table = E.report.verdicts(results)
display(table[SHOW].round(3))
display(Markdown(E.report.summary(results, table)))
"""),
        md("""
**What this run can and cannot say.** The zoo is small CNNs trained for seconds on toy
sources and the targets have tens of training images; fast mode (CI) uses fewer models,
targets and seeds than the full preset (both printed above), so it decides little: the
stored full run is the evidence. The paper's setting (ImageNet-scale models, keypoints
of birds and monkeys) is far larger; the claims are tested here only in this small
setting.
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
