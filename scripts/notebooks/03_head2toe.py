"""Generate notebooks/03_head2toe.ipynb (Head2Toe: features from every layer).

    python scripts/notebooks/03_head2toe.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import build, code, md  # noqa: E402

PATH = "notebooks/03_head2toe.ipynb"


def cells():
    return [
        md("""
# 03 · Head2Toe: a linear head on features from every layer

Evci et al., *Head2Toe: Utilizing Intermediate Representations for Better Transfer
Learning* (ICML 2022). A linear probe reads only the **last** layer of a pretrained
network. Head2Toe reads **all** of them: it pools every layer's output, keeps the few
features a group-lasso head finds useful, and trains a linear head on those.

**The paper's claim** (VTAB-1k, 1000 labelled images per task): Head2Toe matches
fine-tuning the whole network on average, at a fraction of its training cost, and
beats it on targets far from the source domain (ImageNet photos); a linear probe on
the last layer trails both.

Here: ImageNet EfficientNet-Lite0 (real weights, offline) and embedded targets from
near the source domain (textures, faces: photos) to far (handwritten digits, rendered digit
glyphs in several fonts), with a handful of labelled images per class so that the methods
differ. In CI the notebook runs in *fast mode* (described below); set
`TRANSFER_NB_FAST=0` for the full run.
"""),
        code("""
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
pd.set_option("display.precision", 3); pd.set_option("display.width", 120)
from transfer_nb.experiments import head2toe as E
import transfer_nb_widgets as widgets
cfg = E.config()
print(E.describe(cfg))
""", check=True),
        md("""
**How fast mode differs from full mode** (same protocol, smaller; generated from the
two presets):
"""),
        code("""
display(Markdown(E.fast_vs_full()))
"""),
        md("""
## 1. The three methods

- **Linear probe (last layer)**: a linear classifier on the pooled penultimate
  features, trained with Adam like every head here.
- **Head2Toe**: each layer's feature map is average-pooled to a fixed budget of
  numbers per layer (channels x positions; the paper's 8192 in full mode), L2-normalised
  per example, and all layers
  are concatenated; a linear head trained with a *group lasso* penalty (the sum over
  input features of the norm of that feature's weights, which switches whole features
  off) scores each feature by its squared weights; the top *kept fraction* is kept and
  a fresh head is trained on it.
- **Fine-tuning**: a new head, and every layer of the network trained on the target
  (Adam, full-batch steps; the pretrained BatchNorm statistics stay frozen, since batch
  statistics of a few dozen images would overwrite ImageNet's).

Each seed draws its own few labelled images per class; all methods of one seed see the
same images. One forward pass per target gives every layer's features.
"""),
        code("""
out = E.run(cfg)
"""),
        md("""
## 2. Does the ground truth discriminate?

A target only counts when the methods' mean accuracies spread over at least 3
standard errors of one accuracy (binomial, at the test-set size) and no method sits at
the ceiling (`why not` says which failed; the rule is `transfer_nb.stats.discrimination`):
otherwise the comparison is noise or saturation.
"""),
        code("""
E.discrimination_check(out).round(3)
"""),
        md("""
**Did the fine-tuning baseline train?** A baseline stuck at chance would make Head2Toe
look good for free. Fine-tuning counts as trained on a target when its mean accuracy
exceeds chance (one over the number of classes) by more than two standard errors of
one accuracy at chance; claims that compare with an untrained baseline are
*inconclusive*.
"""),
        code("""
E.finetune_check(out).round(3)
"""),
        md("""
## 3. Accuracy: probe vs Head2Toe vs fine-tuning

Mean test accuracy over seeds with a 95% Student-t interval of the mean (`low`, `high`).
"""),
        code("""
acc = E.accuracy_table(out)
display(acc.pivot(index="method", columns="target", values="mean").round(3))
E.plot_accuracy(out); plt.show()
"""),
        md("""
## 4. Where do the kept features come from?

The layer histogram of the kept features at the paper's default fraction, averaged over
seeds: a probe uses only the last entry; Head2Toe spreads its budget over the network.
"""),
        code("""
E.plot_layer_counts(out); plt.show()
E.layer_count_table(out).round(1)
"""),
        md("""
## 5. TransRate of the selected features vs the last layer

TransRate (Huang et al., 2022; here its `layerwise` variant, which is scale-invariant
and divided by the rank) estimates how much a feature set says about the labels from
the training images alone. The feature dimension is printed beside it: a score that
grows with width would rank widths, not information.
"""),
        code("""
E.transrate_table(out).round(3)
"""),
        md("""
## 6. Training cost

Seconds of training per seed (mean): Head2Toe's two linear heads, the one forward pass
that extracts every layer's features (train pool and test set, once per target), and
fine-tuning the whole network on the same images. Measured on a shared CPU: the
absolute times are inflated by other jobs, the ratio is what to read
(`benchmarks/bench_head2toe.py` also measures peak memory).
"""),
        code("""
E.cost_table(out).round(2)
"""),
        md("""
## 7. Explore the kept fraction

Computed once by `run` (one group-lasso selection and one head per fraction, seed 0 on
the far `digits` target); the slider switches between the stored results. Its state
(`fraction`, `accuracy`, `n_features`, `layer_counts`) are traitlets.
"""),
        code("""
probe = acc[(acc.target == "digits") & (acc.method == E.PROBE)]["mean"].iloc[0]
explorer = widgets.Head2ToeExplorer(sweep=out["sweeps"][("digits", cfg.seeds[0])],
                                    baseline=probe)
explorer
"""),
        md("""
## 8. Paper says / this run measured

Each claim is tested on the targets whose ground truth discriminates, with a stated
rule: *reproduced* when the 95% interval over seeds lies entirely beyond the threshold,
*not reproduced* when it lies entirely on the other side, *inconclusive* otherwise.
"Matches fine-tuning" is read as "no worse than fine-tuning by more than three accuracy
points" (the `threshold` column; `E.paper_vs_measured` documents every rule).
"""),
        code("""
E.paper_vs_measured(out).round(3)
"""),
        code("""
display(Markdown(E.report(out)))
"""),
        md("""
**Reading it.** The paper's numbers come from VTAB-1k (1000 images per task, 19
tasks) with ResNet-50 and ViT-B/16 and a tuned fine-tuning baseline; this is one
small ImageNet model, a handful of images per class and a short fine-tuning budget, so
the verdicts above are about this setting only. Fast mode shrinks everything (images,
pooled features, test set, steps); the full run (`TRANSFER_NB_FAST=0`) is the fairer
comparison.
"""),
    ]


if __name__ == "__main__":
    build(cells(), Path(__file__).resolve().parents[2] / PATH)
