"""Generate notebooks/00_quickstart.ipynb: rank your own models on your own images, with
the Python API (score_models) and the command line (transfer-nb rank)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_notebooks import ROOT, build, code, md  # noqa: E402

PATH = "notebooks/00_quickstart.ipynb"


def cells():
    return [
        md("""
# 00 · Quickstart: rank models on your own images

You have a folder of labelled images and a shortlist of pretrained models. Which model
should you fine-tune? A **transferability estimator** answers from one forward pass per
model, without training anything: it scores how well the model's features (or its
predictions) already separate your classes. This notebook

1. writes a small image folder to a temporary directory (the layout your own data needs;
   the directory is removed at the end),
2. ranks three pretrained models on it with the Python API, `tnb.score_models`,
3. does the same from the command line, `transfer-nb rank`,
4. plots the scores.

The estimators, one sentence each: **TransRate** measures how much the features compress
when split by class (coding rate of the whole minus that of each class); **LogME** is the
evidence of a Bayesian linear model predicting the labels from the features; **H-score**
compares the spread of the class means to the spread of all features; **LEEP** and **NCE**
read the source model's own ImageNet predictions and ask how well they predict your labels.
Higher is better for all of them.
"""),
        code("""
%matplotlib inline
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from PIL import Image

import transfer_nb as tnb
from transfer_nb.config import fast_mode

MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
SCORES = ["transrate", "logme", "leep", "nce", "hscore"]     # score_models' default
N_PER_SPLIT = 100 if fast_mode() else 500      # images per split, all classes together
IMAGE_SIZE = 64 if fast_mode() else 160
print(f"{'fast' if fast_mode() else 'full'} mode: {len(MODELS)} models, "
      f"{N_PER_SPLIT} train + {N_PER_SPLIT} test images at {IMAGE_SIZE}px")
""", check=True),
        md("""
## 1. An image folder

transfer-nb reads torchvision's *ImageFolder* layout: one subfolder per class, holding any
images Pillow opens (grey and RGBA are converted to RGB). Optional `train/` and `test/`
subfolders give the split; without them a stratified split is drawn. Here the images are
patches of the texture photos shipped with scikit-image, saved as PNG files; train and test
patches come from different strips of each photo, so they share no pixels.
"""),
        code("""
workdir = tempfile.TemporaryDirectory(prefix="quickstart_")   # removed at the end
root = Path(workdir.name) / "textures"
for split in ("train", "test"):
    patches = tnb.load_dataset("textures", split=split, n=N_PER_SPLIT, seed=0)
    pixels = patches.tensors()[0][:, 0].numpy()            # grey, in [0, 1]
    for i, (image, label) in enumerate(zip(pixels, patches.targets)):
        folder = root / split / patches.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype("uint8")).save(folder / f"{i:04d}.png")
for split in ("train", "test"):
    counts = {d.name: len(list(d.glob("*.png"))) for d in sorted((root / split).iterdir())}
    print(split, counts)
""", check=True),
        md("""
## 2. Rank with the Python API

`tnb.score_models(models, data)` takes model names (`tnb.list_models()`), your own
`nn.Module`s, or a dict name → module, and a folder, a dataset name or a dataset. Each model
sees the images normalised its own way; its features are extracted once (and cached), with
its predictions in the same forward pass for LEEP and NCE. One row per model: the scores,
the static baselines (parameter count, feature width, published ImageNet top-1), and the
seconds each step took. `tnb.rank_table` sorts the rows best first by the first estimator
(`by=` picks another column) and drops the timings; `tnb.selection.ranking_notes` says how
to read the table: where an estimator cannot rank on these data, and how far the
estimators agree.

`n_train` counts the images scored: without a ground truth to measure, every image of the
folder is scored, its `train/` and `test/` images together. Two columns are a lesson in
themselves: with fewer images than feature dimensions (compare `width` and `n_train`) the
feature covariance is singular, so **H-score** collapses to the number of classes minus one
for every model and cannot rank, and **LogME** reaches its limit (the labels lie in the span
of the features), where it reflects the features' spectrum more than the fit. TransRate is
regularised by its distortion `eps` and still spreads the models. The notes under the table
say, from the numbers, which columns cannot rank.
"""),
        code("""
table = tnb.score_models(MODELS, root, estimators=SCORES, image_size=IMAGE_SIZE,
                         progress=True)
display(tnb.rank_table(table).round(3))
for line in tnb.selection.ranking_notes(table):
    print("-", line)
"""),
        md("""
Useful options: `layer="..."` scores another layer than the classifier's input;
`ground_truth="linear_probe"` (or `"fine_tune"`) adds the held-out accuracy measured on the
`test/` images, to check a ranking on your own data; `n_jobs=4` scores four models at a
time, and `backend="dask"` sends each model to a Dask cluster (a zoo sweep).
"""),
        md("""
## 3. The same from a terminal

```
transfer-nb rank --data DIR --models efficientnet_lite0,efficientnet_lite1,efficientnet_lite2 --out ranking.csv
```

prints the ranked table (with a progress bar while it works), what each column means and
the same notes, and writes every column to the CSV. A model that cannot be scored (weights
that need a download while offline) is one warning line and the others are still ranked;
bad arguments (an unknown model, a missing folder) stop it with a one-line message and exit
code 2. Below it runs as a subprocess of this notebook (`python -m transfer_nb.cli`
is the same program as `transfer-nb`); the features come from the cache filled above.
"""),
        code("""
csv = root.parent / "ranking.csv"
command = [sys.executable, "-m", "transfer_nb.cli", "rank", "--data", str(root),
           "--models", ",".join(MODELS), "--estimators", ",".join(SCORES),
           "--image-size", str(IMAGE_SIZE), "--out", str(csv)]
run = subprocess.run(command, capture_output=True, text=True)
print(run.stdout)
from_cli = pd.read_csv(csv, index_col="model")
print("exit code", run.returncode, "| same scores as the API:",
      ((from_cli.loc[table.index, SCORES] - table[SCORES]).abs().max().max() < 1e-9))
"""),
        md("""
## 4. Plot the scores

The estimators live on different scales, so each gets its own panel (right is better);
what matters is the order of the models within a panel, and whether the panels agree.
"""),
        code("""
fig, axes = plt.subplots(1, len(SCORES), figsize=(2.6 * len(SCORES), 2.4), sharey=True)
rows = range(len(table))
for ax, score in zip(axes, SCORES):
    ax.plot(table[score].round(6), rows, "o", markersize=9)  # float noise is not a spread
    ax.set_title(score)
    ax.margins(x=0.25)
axes[0].set_yticks(rows, table.index)
axes[0].set_ylim(len(table) - 0.5, -0.5)
fig.tight_layout()
plt.show()
"""),
        md("""
Three models are too few to say whether an estimator ranks well: that needs many models,
a ground truth that tells them apart, and confidence intervals on the rank correlation.
Notebook 02 (TransRate, model and layer selection) does exactly that.

Last, the temporary folder goes (it would also go when the kernel stops):
"""),
        code("""
workdir.cleanup()
print("temporary folder removed:", not root.parent.exists())
"""),
    ]


if __name__ == "__main__":
    build(cells(), ROOT / PATH)
