"""Head2Toe (Evci et al., ICML 2022): linear probe vs Head2Toe vs fine-tuning.

The paper's core comparison on data that work offline: ImageNet EfficientNet-Lite0
(real weights) transferred to embedded targets from near the source domain (textures,
faces: natural photos) to far (handwritten digits, rendered glyphs), with few labelled
images per class:

* **(a) linear probe** on the last layer (the pooled penultimate features);
* **(b) Head2Toe** (:mod:`transfer_nb.head2toe`) on features from every layer, at several
  kept fractions (and, in full mode, with ``keep_fraction`` / ``group_lasso`` chosen by
  cross-validation on the training set);
* **(c) fine-tuning** the whole network (:func:`transfer_nb.transfer.fine_tune`).

Each seed draws its own training subset (``per_class`` images per class) from the
target's training split; all methods of a seed see the same images, so differences are
paired.  Features are extracted once per target (one forward pass for all layers).

:func:`config` gives the ``fast`` preset (CI) or the ``full`` one; :func:`run` returns the
results; :func:`accuracy_table`, :func:`cost_table`, :func:`paper_vs_measured` and
:func:`report` turn them into tables and generated prose; :func:`plot_accuracy` and
:func:`plot_layer_counts` draw them.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from transfer_nb.experiments.base import TargetSpec
from transfer_nb.stats import accuracy_se, discrimination, interval_verdict, mean_interval

__all__ = ["Head2ToeExperimentConfig", "config", "describe", "run", "accuracy_table",
           "discrimination_check", "finetune_check", "cost_table", "transrate_table", "layer_count_table",
           "paper_vs_measured", "report", "fast_vs_full", "plot_accuracy", "plot_layer_counts",
           "mean_interval", "PAPER", "PROBE", "FINETUNE"]

PROBE = "linear probe (last layer)"
FINETUNE = "fine-tuning"
_H2T = "Head2Toe"

#: what the paper reports (Evci et al., ICML 2022, VTAB-1k with ResNet-50 / ViT-B/16)
PAPER = {
    "vs_probe": "Head2Toe beats a linear probe on the last layer",
    "vs_finetune": "Head2Toe matches fine-tuning on average (VTAB-1k)",
    "far": "Head2Toe's advantage over fine-tuning is largest far from the source domain",
    "cost": "at a fraction of fine-tuning's training cost",
}


@dataclass(frozen=True)
class Head2ToeExperimentConfig:
    mode: str
    model: str = "efficientnet_lite0"
    targets: tuple = ()
    far: tuple = ("digits", "glyphs")    # targets far from ImageNet photos
    image_size: int = 64
    per_class: int = 5                   # labelled training images per class (per seed)
    pool_per_class: int | None = 20      # the seeds draw from this many per class
    n_test: int = 200
    seeds: tuple = (0, 1, 2)
    target_features: int = 8192          # Head2Toe pooling target per layer
    fractions: tuple = (0.01, 0.02, 0.05, 0.1, 0.2)
    main_fraction: float = 0.1           # the Head2Toe row used in the verdicts (no CV)
    group_lasso: float = 1e-4
    cv: bool = False                     # choose fraction / coefficient by CV
    cv_fractions: tuple = (0.01, 0.02, 0.05, 0.1, 0.2)
    cv_group_lassos: tuple = (1e-5, 1e-4, 1e-3)
    head_steps: int = 300
    head_lr: float = 0.01
    ft_epochs: int = 50
    ft_optimizer: str = "adam"           # Adam: SGD at lr 0.01 did not move in ~50 steps
    ft_lr: float = 1e-3
    ft_batch_size: int = 64              # >= the training set: one full batch per step
    threads: int | None = 1              # torch threads during run (restored after)


def _targets(fast: bool) -> tuple:
    near = (TargetSpec("textures", "textures"), TargetSpec("lfw_faces", "lfw_faces"))
    far = (TargetSpec("digits", "digits"),
           TargetSpec("glyphs", "glyphs"))
    return (near[0],) + far if fast else near + far


def config(fast: bool | None = None) -> Head2ToeExperimentConfig:
    """The ``fast`` preset (CI, <= 4 min on 2 cores from a cold cache) or the ``full`` one.

    Fast mode differs from full mode only in size (:func:`fast_vs_full` lists every
    difference): 3 targets instead of 4 (no faces), 32 px images (at 64 px the
    textures and glyphs targets hit the accuracy ceiling), a pool of 10 images per class,
    Head2Toe pooling target 512 features per layer instead of the paper's 8192, two kept
    fractions, 100 full-batch head steps, 30 full-batch fine-tuning steps, a 150-image
    test set and no cross-validation (the paper's default fraction 0.1 and
    coefficient 1e-4).
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        return Head2ToeExperimentConfig(
            mode="fast", targets=_targets(True), image_size=32, per_class=5,
            pool_per_class=10, n_test=150, seeds=(0, 1, 2), target_features=512,
            fractions=(0.02, 0.1), head_steps=100, ft_epochs=30, cv=False)
    return Head2ToeExperimentConfig(
        mode="full", targets=_targets(False), image_size=96, per_class=5, n_test=400,
        seeds=(0, 1, 2, 3, 4), target_features=8192, fractions=(0.01, 0.02, 0.05, 0.1, 0.2),
        head_steps=300, ft_epochs=50, cv=True)


def describe(cfg: Head2ToeExperimentConfig) -> str:
    """Deterministic summary of a configuration (safe for ``# NBVAL_CHECK_OUTPUT``)."""
    return "\n".join([
        f"mode: {cfg.mode}",
        f"source model: {cfg.model} (ImageNet weights)",
        f"targets: {', '.join(t.name for t in cfg.targets)} "
        f"(far from the source: {', '.join(f for f in cfg.far if f in _names(cfg))})",
        f"images: {cfg.image_size}px; {cfg.per_class} train images per class per seed, "
        f"drawn from {cfg.pool_per_class or 'all'} per class; up to {cfg.n_test} test images",
        f"seeds: {list(cfg.seeds)}",
        f"Head2Toe: pooling target {cfg.target_features} features per layer, kept fractions "
        f"{list(cfg.fractions)}, group lasso {cfg.group_lasso}, {cfg.head_steps} Adam steps "
        f"per head (lr {cfg.head_lr}, cosine)",
        "cross-validation: " + (f"fractions {list(cfg.cv_fractions)} x coefficients "
                                f"{list(cfg.cv_group_lassos)}" if cfg.cv else
                                f"off (fraction {cfg.main_fraction}, the paper's default)"),
        f"fine-tuning: all layers, new head, {cfg.ft_epochs} epochs, "
        f"{cfg.ft_optimizer.capitalize()} lr {cfg.ft_lr:g}, batch {cfg.ft_batch_size}, "
        "pretrained BatchNorm statistics frozen"])


def fast_vs_full() -> str:
    """Markdown: every setting in which the fast preset differs from the full one."""
    fast, full = config(True), config(False)
    lines = ["| setting | fast mode | full mode |", "|---|---|---|"]
    for f in dataclasses.fields(Head2ToeExperimentConfig):
        a, b = getattr(fast, f.name), getattr(full, f.name)
        if f.name == "mode" or a == b:
            continue
        if f.name == "targets":
            a, b = ", ".join(t.name for t in a), ", ".join(t.name for t in b)
        lines.append(f"| {f.name} | {a} | {b} |")
    same = [f.name for f in dataclasses.fields(Head2ToeExperimentConfig)
            if getattr(fast, f.name) == getattr(full, f.name)]
    lines += ["", "Identical in both: " + ", ".join(f"{n} = {getattr(fast, n)}" for n in same)
              + ". Without cross-validation, the paper's default fraction "
              f"({fast.main_fraction}) and coefficient ({fast.group_lasso}) are used as they "
              "are, and the verdicts use Head2Toe at that fraction."]
    return "\n".join(lines)


def _names(cfg) -> list[str]:
    return [t.name for t in cfg.targets]


# ------------------------------------------------------------------------ helpers
def _load(spec: TargetSpec, split: str, image_size: int, n=None, seed: int = 0):
    from transfer_nb.data import load_dataset

    kw = dict(split=split, image_size=image_size, seed=seed, normalize="lite",
              **dict(spec.options))
    full = load_dataset(spec.dataset, **kw)
    if n is None or n >= len(full):
        return full
    return load_dataset(spec.dataset, n=n, **kw)


def _num_classes(spec: TargetSpec) -> int:
    from transfer_nb.data import load_dataset

    # the class list only: one image is enough
    return len(load_dataset(spec.dataset, split="train", n=None, image_size=8,
                            **dict(spec.options)).classes)


def _subset(features: dict, idx) -> dict:
    return {k: v[idx] for k, v in features.items()}


# ---------------------------------------------------------------------------- run
def run(cfg: Head2ToeExperimentConfig | None = None, progress: bool = True) -> dict:
    """Run the experiment.

    Returns
    -------
    dict
        ``results`` (DataFrame: one row per target, seed and method: ``accuracy``,
        ``keep_fraction``, ``n_features``, ``time``, ``steps``), ``layer_counts``
        (DataFrame: target, seed, keep_fraction, layer, count), ``transrate``
        (DataFrame: target, seed, features, dim, transrate), ``sweeps`` (dict
        ``(target, seed) ->`` :func:`~transfer_nb.head2toe.fraction_sweep` results
        without the models, for :class:`widgets.Head2ToeExplorer`), ``extraction`` (dict
        target -> seconds of the one forward pass over train + test), ``layers`` (the
        layer names), ``n_test`` and ``n_classes`` (dict target -> test images,
        classes), ``config``.  Torch runs on ``cfg.threads`` threads meanwhile.
    """
    import torch

    cfg = config() if cfg is None else cfg
    if not cfg.targets:
        raise ValueError("the configuration has no targets")
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)  # small convs: 1 thread measured faster here
    try:
        return _run(cfg, progress)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: Head2ToeExperimentConfig, progress: bool) -> dict:
    import pandas as pd
    import torch
    from torch.utils.data import Subset
    from tqdm.auto import tqdm

    from transfer_nb.coding_rate import transrate
    from transfer_nb.data.base import stratified_subsample
    from transfer_nb.head2toe import Head2Toe, Head2ToeCV, fraction_sweep, head2toe_features
    from transfer_nb.models import load_model
    from transfer_nb.transfer import fine_tune

    model = load_model(cfg.model, pretrained=True)
    rows, counts, rates, sweeps = [], [], [], {}
    extraction, n_test, n_classes, layers = {}, {}, {}, None
    bar = tqdm(total=len(cfg.targets) * len(cfg.seeds), desc="head2toe", disable=not progress)
    for spec in cfg.targets:
        pool = _load(spec, "train", cfg.image_size, n=None if cfg.pool_per_class is None
                     else cfg.pool_per_class * _num_classes(spec))
        test = _load(spec, "test", cfg.image_size, n=cfg.n_test)
        y_pool, y_test = np.asarray(pool.targets), np.asarray(test.targets)
        n_test[spec.name] = len(test)
        t0 = time.perf_counter()
        F_pool = head2toe_features(model, pool, target=cfg.target_features, device="cpu")
        F_test = head2toe_features(model, test, target=cfg.target_features, device="cpu")
        extraction[spec.name] = time.perf_counter() - t0
        layers = list(F_pool)
        last = layers[-1]
        k = len(np.unique(y_pool))
        n_classes[spec.name] = k
        for seed in cfg.seeds:
            bar.set_postfix_str(f"{spec.name} / seed {seed}")
            idx = stratified_subsample(y_pool, cfg.per_class * k, seed)
            F_tr, y_tr = _subset(F_pool, idx), y_pool[idx]
            base = {"target": spec.name, "seed": seed}
            # (a) linear probe on the last layer: the same head, every feature kept
            t0 = time.perf_counter()
            probe = Head2Toe(1.0, steps=cfg.head_steps, lr=cfg.head_lr, seed=seed,
                             layers=[last]).fit(F_tr, y_tr)
            rows.append({**base, "method": PROBE, "keep_fraction": 1.0,
                         "n_features": len(probe.selected_),
                         "accuracy": probe.score(F_test, y_test),
                         "time": time.perf_counter() - t0, "steps": probe.fit_steps_})
            # (b) Head2Toe at each kept fraction (one shared selection)
            sweep = fraction_sweep(F_tr, y_tr, F_test, y_test, cfg.fractions,
                                   group_lasso=cfg.group_lasso, steps=cfg.head_steps,
                                   lr=cfg.head_lr, seed=seed)
            sweeps[(spec.name, seed)] = [{key: v for key, v in r.items() if key != "model"}
                                         for r in sweep]
            for r in sweep:
                rows.append({**base, "method": f"{_H2T} {r['keep_fraction']:g}",
                             "keep_fraction": r["keep_fraction"],
                             "n_features": r["n_features"], "accuracy": r["accuracy"],
                             "time": r["time"], "steps": r["steps"]})
                counts += [{**base, "keep_fraction": r["keep_fraction"], "layer": n, "count": c}
                           for n, c in r["layer_counts"].items()]
                X_tr = r["model"].transform(F_tr)
                rates.append({**base, "features": f"{_H2T} {r['keep_fraction']:g}",
                              "dim": X_tr.shape[1],
                              "transrate": transrate(X_tr, y_tr, variant="layerwise")})
            rates.append({**base, "features": "last layer", "dim": F_tr[last].shape[1],
                          "transrate": transrate(F_tr[last], y_tr, variant="layerwise")})
            if cfg.cv:
                t0 = time.perf_counter()
                cv = Head2ToeCV(cfg.cv_fractions, cfg.cv_group_lassos, steps=cfg.head_steps,
                                lr=cfg.head_lr, seed=seed).fit(F_tr, y_tr)
                rows.append({**base, "method": f"{_H2T} (CV)",
                             "keep_fraction": cv.best_params_["keep_fraction"],
                             "n_features": len(cv.selected_),
                             "accuracy": cv.score(F_test, y_test),
                             "time": time.perf_counter() - t0, "steps": cv.fit_steps_})
            # (c) fine-tuning the whole network on the same images
            t0 = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                ft = fine_tune(model, Subset(pool, idx.tolist()), test, epochs=cfg.ft_epochs,
                               lr=cfg.ft_lr, batch_size=cfg.ft_batch_size, seed=seed,
                               optimizer=cfg.ft_optimizer,
                               progress=False, device="cpu", freeze_bn_stats=True)
            rows.append({**base, "method": FINETUNE, "keep_fraction": float("nan"),
                         "n_features": float("nan"), "accuracy": ft["accuracy"],
                         "time": time.perf_counter() - t0, "steps": ft["steps"]})
            bar.update(1)
    bar.close()
    return {"results": pd.DataFrame(rows), "layer_counts": pd.DataFrame(counts),
            "transrate": pd.DataFrame(rates), "sweeps": sweeps, "extraction": extraction,
            "layers": layers, "n_test": n_test, "n_classes": n_classes, "config": cfg}


# ------------------------------------------------------------------------ tables
def _main_method(cfg) -> str:
    return f"{_H2T} (CV)" if cfg.cv else f"{_H2T} {cfg.main_fraction:g}"


def _method_order(df) -> list[str]:
    h2t = sorted((m for m in df["method"].unique() if m.startswith(_H2T + " ")
                  and m != f"{_H2T} (CV)"), key=lambda m: float(m.split()[-1]))
    order = [PROBE] + h2t + [f"{_H2T} (CV)", FINETUNE]
    return [m for m in order if m in set(df["method"])]


def accuracy_table(out: dict):
    """Mean test accuracy and 95% t-interval over seeds (clipped to [0, 1]), per target
    and method."""
    import pandas as pd

    df = out["results"]
    rows = []
    for target in df["target"].unique():
        for method in _method_order(df):
            v = df[(df.target == target) & (df.method == method)]["accuracy"]
            m, lo, hi = mean_interval(v)
            lo, hi = max(lo, 0.0), min(hi, 1.0)  # an accuracy stays in [0, 1]
            rows.append({"target": target, "method": method, "mean": m, "low": lo, "high": hi,
                         "seeds": len(v)})
    return pd.DataFrame(rows)


def discrimination_check(out: dict):
    """Per target: does the ground truth discriminate? (DESIGN.md standard)

    :func:`transfer_nb.stats.discrimination` on the methods' seed-mean accuracies, with
    :func:`transfer_nb.stats.accuracy_se` of one accuracy at their mean: the spread must
    reach 3 standard errors and no method may reach the ceiling.
    """
    import pandas as pd

    acc = accuracy_table(out)
    rows = []
    for target, g in acc.groupby("target", sort=False):
        se = accuracy_se(float(g["mean"].mean()), out["n_test"][target])
        d = discrimination(g["mean"].to_numpy(), se)
        rows.append({"target": target, "spread": d["spread"], "3 SE": 3 * se,
                     "discriminates": d["passes"], "why not": d["reason"]})
    return pd.DataFrame(rows)


#: fine-tuning counts as trained on a target when its mean accuracy exceeds chance by
#: more than this many standard errors of one accuracy at chance
FT_MIN_SE = 2.0


def finetune_check(out: dict):
    """Per target: did the fine-tuning baseline train at all?

    Rule: the baseline is valid when its seed-mean accuracy exceeds chance (``1 / k``
    for ``k`` classes) by more than :data:`FT_MIN_SE` standard errors of one accuracy at
    chance (:func:`transfer_nb.stats.accuracy_se`); otherwise comparisons with it are
    inconclusive.
    """
    import pandas as pd

    acc = accuracy_table(out)
    rows = []
    for target in acc["target"].unique():
        m = float(acc[(acc.target == target) & (acc.method == FINETUNE)]["mean"].iloc[0])
        chance = 1.0 / out["n_classes"][target]
        se = accuracy_se(chance, out["n_test"][target])
        rows.append({"target": target, "fine-tuning": m, "chance": chance,
                     "chance + 2 SE": chance + FT_MIN_SE * se,
                     "trained": m > chance + FT_MIN_SE * se})
    return pd.DataFrame(rows)


def cost_table(out: dict):
    """Training time (seconds, mean over seeds) of Head2Toe vs fine-tuning per target.

    Head2Toe's cost is its heads (selection + final) plus the whole feature-extraction
    pass over the target's train pool and test set, charged in full to every seed (which
    overstates it: fine-tuning's time includes only its own test evaluation); the ratio
    is fine-tuning / Head2Toe.
    """
    import pandas as pd

    df = out["results"]
    main = _main_method(out["config"])
    rows = []
    for target in df["target"].unique():
        g = df[df.target == target]
        h = float(g[g.method == main]["time"].mean())
        ext = float(out["extraction"][target])
        ft = float(g[g.method == FINETUNE]["time"].mean())
        rows.append({"target": target, "Head2Toe heads (s)": h, "extraction (s)": ext,
                     "fine-tuning (s)": ft, "ratio": ft / (h + ext),
                     "Head2Toe steps": float(g[g.method == main]["steps"].mean()),
                     "fine-tuning steps": float(g[g.method == FINETUNE]["steps"].mean())})
    return pd.DataFrame(rows)


def transrate_table(out: dict):
    """TransRate (layerwise variant) of the selected features vs the last layer, with
    the feature dimension beside it (the trivial baseline: scores can grow with width)."""
    t = out["transrate"]
    return (t.groupby(["target", "features"], sort=False)
             .agg(dim=("dim", "mean"), transrate=("transrate", "mean"))
             .reset_index())


def layer_count_table(out: dict, keep_fraction: float | None = None):
    """Kept features per layer (mean over seeds and targets) at ``keep_fraction``."""
    c = out["layer_counts"]
    f = out["config"].main_fraction if keep_fraction is None else keep_fraction
    c = c[np.isclose(c["keep_fraction"], f)]
    return c.groupby(["target", "layer"], sort=False)["count"].mean().unstack("layer")


def _paired(df, a: str, b: str, targets) -> np.ndarray:
    """Per seed: mean over ``targets`` of accuracy(a) - accuracy(b)."""
    d = df[df.target.isin(targets)]
    pa = d[d.method == a].set_index(["target", "seed"])["accuracy"]
    pb = d[d.method == b].set_index(["target", "seed"])["accuracy"]
    diff = (pa - pb).dropna()
    return diff.groupby(level="seed").mean().to_numpy()


def paper_vs_measured(out: dict):
    """The paper's claims beside this run's intervals, with verdicts by a stated rule.

    Rule: a claim is *reproduced* when the 95% interval (over seeds) of the measured
    quantity lies entirely beyond the claim's threshold, *not reproduced* when it lies
    entirely on the other side, *inconclusive* otherwise.  Only targets whose ground
    truth discriminates (:func:`discrimination_check`) count.

    * vs probe: Head2Toe - probe accuracy, threshold 0.
    * vs fine-tuning ("matches"): Head2Toe - fine-tuning accuracy, threshold -0.03
      (within 3 points).
    * far targets: (Head2Toe - fine-tuning) on far targets minus on near ones, threshold 0.
    * cost: fine-tuning time / Head2Toe time, threshold 1.

    Claims that compare with fine-tuning are *inconclusive (baseline did not train)* when
    fine-tuning fails :func:`finetune_check` on a target they use.
    """
    import pandas as pd

    cfg = out["config"]
    df = out["results"]
    ok = discrimination_check(out)
    good = list(ok[ok.discriminates]["target"])
    main = _main_method(cfg)
    far = [t for t in good if t in cfg.far]
    near = [t for t in good if t not in cfg.far]
    rows = []

    ftc = finetune_check(out)
    ft_ok = set(ftc[ftc.trained]["target"])

    def add(claim, values, threshold, unit, needs=()):
        m, lo, hi = mean_interval(values)
        if not good:
            verdict = "inconclusive (no target discriminates)"
        elif not set(needs) <= ft_ok:
            verdict = "inconclusive (baseline did not train)"
        else:
            verdict = interval_verdict(lo, hi, threshold)
        rows.append({"paper says": PAPER[claim], "measured": unit, "mean": m, "low": lo,
                     "high": hi, "threshold": threshold, "verdict": verdict})

    add("vs_probe", _paired(df, main, PROBE, good), 0.0, f"{main} - probe accuracy")
    add("vs_finetune", _paired(df, main, FINETUNE, good), -0.03,
        f"{main} - fine-tuning accuracy", needs=good)
    if far and near:
        gap = _paired(df, main, FINETUNE, far) - _paired(df, main, FINETUNE, near)
    else:
        gap = np.array([])
    add("far", gap, 0.0, "(far - near) advantage over fine-tuning", needs=far + near)
    cost = cost_table(out)
    ratios = []
    for seed in cfg.seeds:
        d = df[df.seed == seed]
        # the whole extraction (train pool + test set) charged to every seed: conservative
        h = d[d.method == main]["time"].sum() + sum(out["extraction"].values())
        ratios.append(float(d[d.method == FINETUNE]["time"].sum() / h))
    add("cost", ratios if len(cost) else [], 1.0, "fine-tuning time / Head2Toe time",
        needs=good)
    return pd.DataFrame(rows)


def report(out: dict) -> str:
    """Generated Markdown: the accuracy summary, the check, the cost and the verdicts."""
    cfg = out["config"]
    acc = accuracy_table(out)
    ok = discrimination_check(out)
    main = _main_method(cfg)
    lines = [f"**This run** ({cfg.mode} mode, {len(cfg.seeds)} seeds, "
             f"{cfg.per_class} labelled images per class):", ""]
    for target, g in acc.groupby("target", sort=False):
        best = g.loc[g["mean"].idxmax()]
        get = lambda m: g[g.method == m].iloc[0]  # noqa: E731
        p, h, f = get(PROBE), get(main), get(FINETUNE)
        flag = "" if bool(ok[ok.target == target]["discriminates"].iloc[0]) else \
            " (ground truth does not discriminate: excluded from the verdicts)"
        lines.append(f"- *{target}*{flag}: probe {p['mean']:.3f} [{p['low']:.3f}, "
                     f"{p['high']:.3f}], {main} {h['mean']:.3f} [{h['low']:.3f}, "
                     f"{h['high']:.3f}], fine-tuning {f['mean']:.3f} [{f['low']:.3f}, "
                     f"{f['high']:.3f}]; best: {best['method']}.")
    ftc = finetune_check(out)
    bad = list(ftc[~ftc.trained]["target"])
    lines += ["", "Fine-tuning baseline (valid when its mean accuracy exceeds chance by more "
              f"than {FT_MIN_SE:g} standard errors): "
              + "; ".join(f"*{r['target']}* {r['fine-tuning']:.3f} vs chance {r['chance']:.3f}"
                          f" ({'trained' if r['trained'] else 'did not train'})"
                          for _, r in ftc.iterrows()) + "."
              + (f" Comparisons with fine-tuning that use {', '.join(bad)} are inconclusive."
                 if bad else "")]
    cost = cost_table(out)
    lines += ["", f"Training cost: fine-tuning took {cost['ratio'].min():.1f} to "
              f"{cost['ratio'].max():.1f} times as long as {main} (heads plus the feature "
              "extraction), measured on a shared CPU."]
    pv = paper_vs_measured(out)
    lines += ["", "Verdicts (95% interval over seeds vs the threshold):", ""]
    for _, r in pv.iterrows():
        lines.append(f"- {r['paper says']}: {r['measured']} = {r['mean']:.3f} "
                     f"[{r['low']:.3f}, {r['high']:.3f}] vs {r['threshold']:g} -> "
                     f"**{r['verdict']}**.")
    return "\n".join(lines)


# ------------------------------------------------------------------------- plots
def plot_accuracy(out: dict, ax=None):
    """Accuracy per target and method: mean with the 95% interval over seeds."""
    import matplotlib.pyplot as plt

    acc = accuracy_table(out)
    targets = list(acc["target"].unique())
    methods = list(dict.fromkeys(acc["method"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 1.4 * len(targets) * len(methods) / 4, 3.4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        g = acc[acc.method == m].set_index("target").reindex(targets)
        x = np.arange(len(targets)) + (i - (len(methods) - 1) / 2) * width
        err = np.vstack([g["mean"] - g["low"], g["high"] - g["mean"]])
        ax.bar(x, g["mean"], width, label=m)
        ax.errorbar(x, g["mean"], yerr=np.nan_to_num(err), fmt="none", ecolor="k", lw=1)
    ax.set_xticks(np.arange(len(targets)), targets)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    return ax


def plot_layer_counts(out: dict, keep_fraction: float | None = None, ax=None):
    """Histogram of kept features per layer (mean over seeds), one bar group per target."""
    import matplotlib.pyplot as plt

    tab = layer_count_table(out, keep_fraction)
    layers = list(tab.columns)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(tab)
    for i, (target, row) in enumerate(tab.iterrows()):
        x = np.arange(len(layers)) + (i - (len(tab) - 1) / 2) * width
        ax.bar(x, row.to_numpy(), width, label=target)
    ax.set_xticks(np.arange(len(layers)), layers, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("kept features")
    f = out["config"].main_fraction if keep_fraction is None else keep_fraction
    ax.set_title(f"kept features per layer (keep_fraction={f:g})")
    ax.legend(fontsize=8)
    return ax
