"""Adversarial and semi-supervised sources (Deng et al., NeurIPS 2021).

"Adversarial Training Helps Transfer Learning via Better Representations" builds on
Salman et al. (2020, "Do Adversarially Robust ImageNet Models Transfer Better?"), who
trained ImageNet sources with an L2 PGD adversary of radius eps in {0, 0.01, 0.03,
0.05, 0.1, 0.25, 0.5, 1, 3, 5} and found that moderate eps transfers best while the
source's own (clean) accuracy falls as eps grows.  Deng et al. explain the gain by
better representations in the few-label target regime and add a second route to them:
semi-supervised source training on pseudo-labelled unlabelled source data, alone and
combined with adversarial training.

This module reproduces that experiment at CPU scale, offline:

* source: ``shapes`` (8 drawn shapes), a small labelled set plus an unlabelled pool;
* target: ``textures`` (5 photo textures), a few labelled images per class;
* sources: ``small_cnn`` trained with an L2 PGD adversary (:mod:`transfer_nb.adversarial`)
  for each eps of the sweep (eps = 0 is standard training), plus students trained on
  labelled + pseudo-labelled data (:mod:`transfer_nb.adversarial_semi`) without and with
  the adversary;
* per source and seed: clean and robust source test accuracy (the trade-off), target
  linear-probe and fine-tuning accuracy (the ground truth), and TransRate and LogME of
  the source's target features (does an estimator see the better representation?).

eps is in ``[0, 1]`` pixel units over a whole 3 x ``image_size`` x ``image_size``
image, as in the ``robustness`` library; :func:`imagenet_equivalent` converts it to the
ImageNet (3 x 224 x 224) scale of Salman et al. by the ratio of the norms of a
constant image, ``sqrt(d_imagenet / d)``.

:func:`config` gives a ``fast`` preset (CI: tiny sets, few epochs, same protocol) and a
``full`` one; :func:`run` returns one row per (source, seed), cached on disk per row.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from transfer_nb.stats import mean_interval

__all__ = ["AdversarialConfig", "config", "describe", "imagenet_equivalent", "source_data",
           "target_data", "build_source", "score_features", "run_cell", "run", "SOURCE_KINDS",
           "summary", "discrimination", "correlations", "correlation_table", "adversarial_examples",
           "plot_transfer_curve", "plot_tradeoff", "plot_examples", "paper_vs_measured",
           "report", "PAPER", "ESTIMATORS"]

_VERSION = "adversarial-exp-v1"
_CACHE_KIND = "experiments_adversarial"

#: the four kinds of source: (name, semi-supervised?, adversarial?)
SOURCE_KINDS = ("standard", "adversarial", "semi", "semi+adversarial")

#: estimators scored on each source's target features (higher = more transferable), and
#: the trivial baseline beside them: the source's own clean test accuracy
ESTIMATORS = ("transrate", "logme", "source_accuracy")

#: what the papers report
PAPER = {
    "salman_eps": (0, 0.01, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 3, 5),
    "moderate_helps": "a robust source (moderate eps) beats the standard one on most targets",
    "accuracy_falls": "source clean accuracy falls as eps grows",
    "semi_helps": "pseudo-label semi-supervised sources transfer better than supervised ones",
    "combined_best": "semi-supervised + adversarial transfers best",
    "baseline_wrong": "source accuracy is no guide: the less accurate (robust) sources "
                      "transfer better",
}


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AdversarialConfig:
    """Every setting of the experiment (all of it enters the cache keys)."""
    mode: str
    image_size: int
    arch: str
    width: int
    source: str
    target: str
    n_labeled: int
    n_unlabeled: int
    n_source_test: int
    target_per_class: int
    eps: tuple
    norm: str
    attack_steps: int
    eval_eps: float
    eval_steps: int
    semi_eps: float
    threshold: float
    source_epochs: int
    source_lr: float
    source_batch: int
    ft_epochs: int
    ft_lr: float
    seeds: tuple
    n_boot: int


def config(fast: bool | None = None) -> AdversarialConfig:
    """The ``fast`` preset (CI, a few minutes on 2 cores) or the ``full`` one.

    ``fast=None`` reads :func:`transfer_nb.config.fast_mode`.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        return AdversarialConfig(
            mode="fast", image_size=16, arch="small_cnn", width=8, source="shapes",
            target="textures", n_labeled=300, n_unlabeled=600, n_source_test=200,
            target_per_class=10, eps=(0.0, 0.1, 0.5), norm="l2", attack_steps=1,
            eval_eps=0.3, eval_steps=3, semi_eps=0.1, threshold=0.9, source_epochs=10,
            source_lr=0.05, source_batch=16, ft_epochs=8, ft_lr=0.01, seeds=(0, 1, 2),
            n_boot=500)
    return AdversarialConfig(
        mode="full", image_size=16, arch="small_cnn", width=16, source="shapes",
        target="textures", n_labeled=400, n_unlabeled=1200, n_source_test=400,
        target_per_class=10, eps=(0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8), norm="l2",
        attack_steps=3, eval_eps=0.3, eval_steps=5, semi_eps=0.1, threshold=0.9,
        source_epochs=10, source_lr=0.05, source_batch=32, ft_epochs=20, ft_lr=0.01,
        seeds=(0, 1, 2, 3, 4),
        n_boot=1000)


def imagenet_equivalent(eps: float, image_size: int, channels: int = 3) -> float:
    """``eps`` (L2, pixels of a ``channels x image_size^2`` image) on ImageNet's 3 x 224^2 scale."""
    return float(eps) * math.sqrt(3 * 224 * 224 / (channels * image_size * image_size))


def describe(cfg: AdversarialConfig) -> str:
    """A plain-text summary of the configuration (deterministic: fit for a checked cell)."""
    eq = ", ".join(f"{e:g}->{imagenet_equivalent(e, cfg.image_size):.2g}" for e in cfg.eps)
    return "\n".join([
        f"mode: {cfg.mode}",
        f"source: {cfg.source} at {cfg.image_size}px, {cfg.n_labeled} labelled + "
        f"{cfg.n_unlabeled} unlabelled images, {cfg.n_source_test} test images",
        f"target: {cfg.target}, {cfg.target_per_class} labelled images per class "
        "(few-label regime), the whole test split",
        f"model: {cfg.arch} (width {cfg.width}), {cfg.source_epochs} epochs",
        f"adversary: {cfg.norm.upper()} PGD, {cfg.attack_steps} steps, eps in {list(cfg.eps)} "
        f"(ImageNet-scale equivalents: {eq})",
        f"semi-supervised: pseudo-labels with confidence >= {cfg.threshold}, students at eps 0 "
        f"and eps {cfg.semi_eps:g}",
        f"robust accuracy: {cfg.norm.upper()} PGD eps {cfg.eval_eps:g}, {cfg.eval_steps} steps",
        f"seeds: {list(cfg.seeds)}",
    ])


# ------------------------------------------------------------------------------ data
def source_data(cfg: AdversarialConfig) -> dict:
    """``{"labeled", "unlabeled", "test"}``: disjoint parts of the source data set.

    Labelled and unlabelled images are disjoint subsets of the train split (the same for
    every seed: only the models vary); the unlabelled part's labels are never used.
    """
    from transfer_nb.data import load_dataset
    train = load_dataset(cfg.source, "train", image_size=cfg.image_size, seed=0)
    need = cfg.n_labeled + cfg.n_unlabeled
    if need > len(train):
        raise ValueError(f"n_labeled + n_unlabeled = {need} but the {cfg.source!r} train split "
                         f"has {len(train)} images")
    order = np.random.default_rng(0).permutation(len(train))
    test = load_dataset(cfg.source, "test", n=cfg.n_source_test, image_size=cfg.image_size, seed=0)
    return {"labeled": train.subset(np.sort(order[:cfg.n_labeled])),
            "unlabeled": train.subset(np.sort(order[cfg.n_labeled:need])), "test": test}


def target_data(cfg: AdversarialConfig, seed: int):
    """``(train, test)`` of the target: ``target_per_class`` labelled images per class
    (drawn by ``seed``) and the whole test split."""
    from transfer_nb.data import dataset_info, load_dataset
    k = dataset_info(cfg.target)["num_classes"]
    train = load_dataset(cfg.target, "train", n=cfg.target_per_class * k,
                         image_size=cfg.image_size, seed=seed)
    test = load_dataset(cfg.target, "test", image_size=cfg.image_size, seed=0)
    return train, test


# --------------------------------------------------------------------------- sources
def _perturb(cfg: AdversarialConfig, eps: float, seed: int):
    from transfer_nb.adversarial import pgd_perturbation
    if eps == 0:
        return None
    return pgd_perturbation(eps, norm=cfg.norm, steps=cfg.attack_steps, seed=seed)


def build_source(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict,
                 progress: bool = False):
    """Train (or load from the cache) one source model.

    Parameters
    ----------
    kind : {"standard", "adversarial", "semi", "semi+adversarial"}
        ``"standard"`` / ``"adversarial"``: trained on the labelled images with an
        adversary of radius ``eps`` (``eps=0``: none, standard training).  ``"semi"`` /
        ``"semi+adversarial"``: a student trained on the labelled images plus the
        unlabelled ones that the standard model of the same seed (the teacher) labels
        with confidence ``>= cfg.threshold``.
    eps : float
        Adversary radius (0 for ``"standard"`` and ``"semi"``).
    data : dict
        :func:`source_data`.

    Returns
    -------
    torch.nn.Module
        With ``transfer_nb_n_pseudo`` (pseudo-labelled images used; 0 without).
    """
    from transfer_nb.adversarial_semi import semi_supervised_dataset
    from transfer_nb.models import train_source
    if kind not in SOURCE_KINDS:
        raise ValueError(f"kind must be one of {list(SOURCE_KINDS)}, got {kind!r}")
    if (eps > 0) != kind.endswith("adversarial"):
        need = "> 0" if kind.endswith("adversarial") else "= 0"
        raise ValueError(f"kind {kind!r} needs eps {need}, got {eps!r}")
    train = dict(epochs=cfg.source_epochs, lr=cfg.source_lr, batch_size=cfg.source_batch, seed=seed,
                 width=cfg.width, progress=progress, device="cpu")
    dataset = data["labeled"]
    if kind.startswith("semi"):
        teacher = train_source(cfg.arch, data["labeled"], **train)
        dataset = semi_supervised_dataset(teacher, data["labeled"], data["unlabeled"],
                                          threshold=cfg.threshold)
    model = train_source(cfg.arch, dataset, perturb=_perturb(cfg, eps, seed),
                         adversarial_eps=eps, **train)
    model.transfer_nb_n_pseudo = len(dataset) - len(data["labeled"])
    return model


# ------------------------------------------------------------------------- one cell
def score_features(Z, y, source_accuracy: float = float("nan")) -> dict:
    """TransRate and LogME of features ``Z`` with labels ``y``, and the trivial baseline.

    ``source_accuracy`` is passed through as the baseline score (pick the most
    accurate source).
    """
    from transfer_nb.coding_rate import transrate
    from transfer_nb.estimators import logme
    Z = np.asarray(Z, dtype=np.float64)
    return {"transrate": float(transrate(Z, y)), "logme": float(logme(Z, y)),
            "source_accuracy": float(source_accuracy)}


def _cell_key(cfg: AdversarialConfig, kind: str, eps: float, seed: int) -> str:
    from transfer_nb import cache
    return cache.hash_inputs(version=_VERSION, cfg=dataclasses.asdict(cfg), kind=kind,
                             eps=float(eps), seed=int(seed))


def run_cell(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict | None = None,
             progress: bool = False, use_cache: bool = True) -> dict:
    """Every measurement of one (source, seed): one row of :func:`run`.

    Returns
    -------
    dict
        ``kind, eps, seed, n_pseudo, source_clean, source_robust`` (source test
        accuracy, clean and under the ``cfg.eval_eps`` attack), ``linear_probe`` and
        ``fine_tune`` (target test accuracy), and :func:`score_features` of the
        source's penultimate target features (training images only: what a
        practitioner has).
    """
    from transfer_nb import adversarial, cache, training, transfer
    from transfer_nb.features import extract_features

    def compute():
        d = data if data is not None else source_data(cfg)
        model = build_source(cfg, kind, eps, seed, d, progress=progress)
        clean = training.evaluate(model, d["test"])
        robust = adversarial.robust_accuracy(model, d["test"], cfg.eval_eps, norm=cfg.norm,
                                             steps=cfg.eval_steps, seed=seed)
        tr, te = target_data(cfg, seed)
        z_tr = extract_features(model, tr, layers=["pool"], device="cpu", progress=False)["pool"]
        z_te = extract_features(model, te, layers=["pool"], device="cpu", progress=False)["pool"]
        probe = transfer.linear_probe(z_tr, tr.targets, z_te, te.targets, seed=seed)
        ft = transfer.fine_tune(model, tr, te, epochs=cfg.ft_epochs, lr=cfg.ft_lr, batch_size=16,
                                seed=seed, progress=False, device="cpu")["accuracy"]
        scores = score_features(z_tr, tr.targets, clean)
        return {"n_pseudo": np.array(model.transfer_nb_n_pseudo), "source_clean": np.array(clean),
                "source_robust": np.array(robust), "linear_probe": np.array(probe),
                "fine_tune": np.array(ft), **{k: np.array(v) for k, v in scores.items()}}

    key = _cell_key(cfg, kind, eps, seed)
    arrays = cache.cached_arrays(_CACHE_KIND, key, compute) if use_cache else compute()
    row = {"kind": kind, "eps": float(eps), "seed": int(seed), "eval_eps": float(cfg.eval_eps)}
    row.update({k: (int(v) if k == "n_pseudo" else float(v)) for k, v in arrays.items()})
    return row


def _cells(cfg: AdversarialConfig) -> list[tuple[str, float]]:
    cells = [("standard" if e == 0 else "adversarial", float(e)) for e in cfg.eps]
    return cells + [("semi", 0.0), ("semi+adversarial", float(cfg.semi_eps))]


def run(cfg: AdversarialConfig, progress: bool = True, use_cache: bool = True):
    """Every (source, seed) of the experiment as a DataFrame (one row per :func:`run_cell`)."""
    import pandas as pd
    from tqdm.auto import tqdm
    import torch
    data = source_data(cfg)
    jobs = [(k, e, s) for s in cfg.seeds for k, e in _cells(cfg)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured faster than 2 threads for these tiny convs
    try:
        rows = [run_cell(cfg, k, e, s, data=data, use_cache=use_cache)
                for k, e, s in tqdm(jobs, desc="sources", disable=not progress)]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- analysis
_MEASURES = ("linear_probe", "fine_tune", "source_clean", "source_robust", "transrate", "logme")


def summary(df):
    """Mean, standard error and 95 % t-interval over seeds per source, for each measure."""
    import pandas as pd
    out = []
    for (kind, eps), g in df.groupby(["kind", "eps"], sort=False):
        row = {"kind": kind, "eps": eps, "seeds": len(g)}
        for m in _MEASURES:
            v = g[m].to_numpy(dtype=float)
            mean, low, high = mean_interval(v)
            sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan
            row.update({m: mean, f"{m}_sem": sem, f"{m}_low": low, f"{m}_high": high})
        out.append(row)
    return pd.DataFrame(out)


def discrimination(df, n_test: int):
    """Does the ground truth discriminate the sources? One row per truth.

    The project's one rule, :func:`transfer_nb.stats.discrimination`, on the per-source
    seed-mean accuracies, with the binomial standard error of one accuracy near their
    mean on ``n_test`` images (:func:`transfer_nb.stats.accuracy_se`): passes when the
    spread is at least 3 standard errors and no mean reaches the ceiling (0.97).
    """
    import pandas as pd
    from transfer_nb import stats
    s = summary(df)
    rows = []
    for truth in ("linear_probe", "fine_tune"):
        means = s[truth].to_numpy(dtype=float)
        check = stats.discrimination(means, stats.accuracy_se(float(means.mean()), n_test))
        rows.append({"truth": truth, "max": float(means.max()), **check})
    return pd.DataFrame(rows)


def choose_truth(df, n_test: int, order=("linear_probe", "fine_tune")) -> str:
    """The ground truth the verdicts use: the first of ``order`` that passes
    :func:`discrimination` (the first of ``order`` when none does; its verdicts are then
    excluded).  The order is fixed before the run: the linear probe first, as it reads the
    frozen representation the estimators see."""
    d = discrimination(df, n_test).set_index("truth")
    unknown = [t for t in order if t not in d.index]
    if unknown:
        raise ValueError(f"unknown ground truths {unknown}; known: {list(d.index)}")
    return next((t for t in order if bool(d.loc[t, "passes"])), order[0])


def correlations(df, truth: str = "linear_probe", n_boot: int = 1000, seed: int = 0):
    """Each estimator (and the baseline) vs ``truth`` over every (source, seed) row.

    :func:`transfer_nb.stats.rank_correlations`: Pearson, Kendall, weighted tau with
    bootstrap intervals and permutation p-values.  ``None`` (with a warning) while that
    module is missing from the installed library.
    """
    import importlib
    try:
        stats = importlib.import_module("transfer_nb.stats")
    except ImportError:
        import warnings
        warnings.warn("transfer_nb.stats is not available: no correlations", RuntimeWarning,
                      stacklevel=2)
        return None
    return stats.rank_correlations({e: df[e].to_numpy() for e in ESTIMATORS},
                                   df[truth].to_numpy(), n_boot=n_boot, seed=seed)


def correlation_table(corr):
    """The columns of :func:`correlations` a reader needs (an empty frame for ``None``)."""
    import pandas as pd
    cols = ["pearson", "pearson_low", "pearson_high", "pearson_p", "kendall", "kendall_low",
            "kendall_high", "n"]
    if corr is None:
        return pd.DataFrame(columns=cols)
    return corr[cols]


def _diff_interval(df, measure: str, a: tuple, b: tuple) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of ``measure(b) - measure(a)`` paired by seed."""
    ga = df[(df.kind == a[0]) & np.isclose(df.eps, a[1])].set_index("seed")[measure]
    gb = df[(df.kind == b[0]) & np.isclose(df.eps, b[1])].set_index("seed")[measure]
    return mean_interval((gb - ga.reindex(gb.index)).dropna().to_numpy())


def _best_adversarial(df, truth: str) -> float:
    s = summary(df)
    adv = s[s.kind == "adversarial"]
    return float(adv.loc[adv[truth].idxmax(), "eps"])


def paper_vs_measured(df, corr=None, truth: str = "linear_probe", n_test: int | None = None):
    """The "paper says / this run measured" table, verdicts by one stated rule.

    Rule (:func:`transfer_nb.stats.interval_verdict` with threshold 0): the 95 % interval
    of the gain (or of Pearson r) entirely above 0 -> reproduced; entirely below 0 -> not
    reproduced; straddling 0 -> inconclusive.

    Gains are paired by seed against the standard source (eps = 0).  The best eps is
    chosen on the same runs, so its gain is optimistic; the largest eps is reported too.
    With ``n_test`` (target test images), rows whose ground truth fails
    :func:`discrimination` get the verdict ``"excluded: <why>"``.
    """
    import pandas as pd
    from transfer_nb import stats
    std = ("standard", 0.0)
    best = _best_adversarial(df, truth)
    big = float(df[df.kind == "adversarial"].eps.max())
    semi_eps = float(df[df.kind == "semi+adversarial"].eps.iloc[0])
    rows = []

    def add(claim, measure, a, b, sign=1, label=None):
        m, lo, hi = _diff_interval(df, measure, a, b)
        m, lo, hi = sign * m, *sorted((sign * lo, sign * hi))
        rows.append({"paper says": claim, "this run measured": label or f"{measure} gain",
                     "mean": m, "low": lo, "high": hi, "verdict": stats.interval_verdict(lo, hi, 0.0)})

    add(PAPER["moderate_helps"], truth, std, ("adversarial", best),
        label=f"{truth}: eps {best:g} (best) - eps 0")
    other = "fine_tune" if truth == "linear_probe" else "linear_probe"
    add(PAPER["moderate_helps"] + f" ({other.replace('_', ' ')})", other, std,
        ("adversarial", best), label=f"{other}: eps {best:g} - eps 0")
    add(PAPER["accuracy_falls"], "source_clean", std, ("adversarial", big), sign=-1,
        label=f"source clean accuracy: eps 0 - eps {big:g}")
    add(PAPER["semi_helps"], truth, std, ("semi", 0.0), label=f"{truth}: semi - standard")
    add(PAPER["combined_best"], truth, ("adversarial", semi_eps), ("semi+adversarial", semi_eps),
        label=f"{truth}: semi+adv - adv (eps {semi_eps:g})")
    if corr is not None:
        for est in ("transrate", "logme"):
            r = corr.loc[est]
            rows.append({"paper says": "(this notebook's question) an estimator sees the better "
                         "representation", "this run measured": f"Pearson r of {est} vs {truth}",
                         "mean": r["pearson"], "low": r["pearson_low"], "high": r["pearson_high"],
                         "verdict": stats.interval_verdict(r["pearson_low"], r["pearson_high"], 0.0)})
        r = corr.loc["source_accuracy"]
        rows.append({"paper says": PAPER["baseline_wrong"],
                     "this run measured": f"minus Pearson r of source_accuracy vs {truth}",
                     "mean": -r["pearson"], "low": -r["pearson_high"], "high": -r["pearson_low"],
                     "verdict": stats.interval_verdict(-r["pearson_high"], -r["pearson_low"], 0.0)})
    out = pd.DataFrame(rows)
    if n_test is not None:
        for _, c in discrimination(df, n_test).iterrows():
            if not c.passes:
                hit = out["this run measured"].str.contains(c.truth, regex=False)
                out.loc[hit, "verdict"] = f"excluded: {c.truth} {c.reason}"
    return out


def report(df, corr=None, truth: str = "linear_probe", n_test: int | None = None) -> str:
    """Markdown sentences with every number of the conclusion, generated from the results.

    With ``n_test`` (target test images) the first lines say which ground truths pass
    :func:`discrimination` (verdicts on a failing one are excluded).
    """
    s = summary(df)
    std = s[s.kind == "standard"].iloc[0]
    best = _best_adversarial(df, truth)
    b = s[(s.kind == "adversarial") & np.isclose(s.eps, best)].iloc[0]
    adv = s[s.kind == "adversarial"].sort_values("eps")
    lines = [
        f"- Standard source: {truth.replace('_', ' ')} accuracy {std[truth]:.3f} "
        f"[{std[truth + '_low']:.3f}, {std[truth + '_high']:.3f}] over {int(std.seeds)} seeds; "
        f"best adversarial source (eps {best:g}): {b[truth]:.3f} "
        f"[{b[truth + '_low']:.3f}, {b[truth + '_high']:.3f}].",
        f"- Source clean accuracy goes from {std.source_clean:.3f} (eps 0) to "
        f"{adv.source_clean.iloc[-1]:.3f} (eps {adv.eps.iloc[-1]:g}); robust accuracy at eps "
        f"{df.eval_eps.iloc[0]:g} from {std.source_robust:.3f} to "
        f"{adv.source_robust.iloc[-1]:.3f}.",
    ]
    if n_test is not None:
        checks = []
        for _, c in discrimination(df, n_test).iterrows():
            state = ("discriminates the sources" if c.passes else
                     f"does not discriminate the sources ({c.reason}): its verdicts are excluded")
            checks.append(f"- Ground truth {c.truth.replace('_', ' ')}: spread of the source "
                          f"means {c.spread:.3f} = {c.spread_in_se:.1f} SE, {state}.")
        lines = checks + lines
    for kind in ("semi", "semi+adversarial"):
        r = s[s.kind == kind].iloc[0]
        n = int(df[df.kind == kind].n_pseudo.mean())
        lines.append(f"- {kind} (eps {r.eps:g}, about {n} pseudo-labelled images): "
                     f"{r[truth]:.3f} [{r[truth + '_low']:.3f}, {r[truth + '_high']:.3f}].")
    if corr is not None:
        for est in ESTIMATORS:
            r = corr.loc[est]
            lines.append(f"- {est}: Pearson r with {truth.replace('_', ' ')} {r.pearson:.2f} "
                         f"[{r.pearson_low:.2f}, {r.pearson_high:.2f}], permutation p "
                         f"{r.pearson_p:.3f}.")
    return "\n".join(lines)


# ------------------------------------------------------------------ examples, plots
def adversarial_examples(model, images, labels, eps: float, norm: str = "l2", steps: int = 5,
                         seed: int = 0) -> dict:
    """PGD adversarial versions of a few images and the model's predictions on both.

    Returns
    -------
    dict
        ``clean`` and ``adversarial`` (numpy ``(n, H, W, 3)`` in [0, 1]), ``delta``
        (their difference), ``pred_clean``, ``pred_adversarial`` (int arrays) and
        ``l2`` (the per-image L2 norm of ``delta``).
    """
    import torch
    from transfer_nb import adversarial, training
    x = torch.as_tensor(images).float()
    y = torch.as_tensor(labels).long()
    x_adv = adversarial.pgd(model, x, y, eps, norm=norm, steps=steps,
                            generator=torch.Generator().manual_seed(seed))
    pred = training.predict(model, x).argmax(1)
    pred_adv = training.predict(model, x_adv).argmax(1)
    delta = (x_adv - x)
    return {"clean": x.permute(0, 2, 3, 1).numpy(),
            "adversarial": x_adv.permute(0, 2, 3, 1).numpy(),
            "delta": delta.permute(0, 2, 3, 1).numpy(), "pred_clean": pred.astype(np.int64),
            "pred_adversarial": pred_adv.astype(np.int64),
            "l2": delta.flatten(1).norm(dim=1).numpy()}


def plot_transfer_curve(df, truths=("linear_probe", "fine_tune"), ax=None):
    """Target accuracy against eps (mean and 95 % interval), semi-supervised sources as markers."""
    import matplotlib.pyplot as plt
    s = summary(df)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    adv = s[s.kind.isin(["standard", "adversarial"])].sort_values("eps")
    x = np.arange(len(adv))
    for i, t in enumerate(truths):
        ax.errorbar(x, adv[t], yerr=[adv[t] - adv[t + "_low"], adv[t + "_high"] - adv[t]],
                    marker="o", capsize=3, label=t.replace("_", " "), color=f"C{i}")
        for j, kind in enumerate(("semi", "semi+adversarial")):
            r = s[s.kind == kind].iloc[0]
            xi = int(np.argmin(np.abs(adv.eps.to_numpy() - r.eps)))
            err = [[r[t] - r[t + "_low"]], [r[t + "_high"] - r[t]]]
            ax.errorbar(xi + 0.15 * (j + 1), r[t], yerr=err,
                        marker="s^"[j], color=f"C{i}", capsize=3, linestyle="none",
                        label=f"{kind} ({t.replace('_', ' ')})")
    ax.set_xticks(x, [f"{e:g}" for e in adv.eps])
    ax.set_xlabel("source adversary eps (L2, pixels)")
    ax.set_ylabel("target test accuracy")
    ax.legend(fontsize=7)
    return ax


def plot_tradeoff(df, ax=None):
    """Source clean and robust accuracy against eps (mean and 95 % interval)."""
    import matplotlib.pyplot as plt
    s = summary(df)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    adv = s[s.kind.isin(["standard", "adversarial"])].sort_values("eps")
    x = np.arange(len(adv))
    for i, m in enumerate(("source_clean", "source_robust")):
        ax.errorbar(x, adv[m], yerr=[adv[m] - adv[m + "_low"], adv[m + "_high"] - adv[m]],
                    marker="o", capsize=3, label=m.replace("_", " "), color=f"C{i + 2}")
    ax.set_xticks(x, [f"{e:g}" for e in adv.eps])
    ax.set_xlabel("source adversary eps (L2, pixels)")
    ax.set_ylabel("source test accuracy")
    ax.legend(fontsize=8)
    return ax


def plot_examples(examples: dict, classes=None, axes=None):
    """Rows: clean images, adversarial images, amplified perturbation."""
    import matplotlib.pyplot as plt
    n = len(examples["clean"])
    if axes is None:
        _, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    scale = max(float(np.abs(examples["delta"]).max()), 1e-12)
    name = (lambda k: classes[k]) if classes is not None else str
    for j in range(n):
        axes[0][j].imshow(examples["clean"][j])
        axes[0][j].set_title(name(int(examples["pred_clean"][j])), fontsize=7)
        axes[1][j].imshow(np.clip(examples["adversarial"][j], 0, 1))
        axes[1][j].set_title(name(int(examples["pred_adversarial"][j])), fontsize=7)
        axes[2][j].imshow(0.5 + 0.5 * examples["delta"][j] / scale)
        for r in range(3):
            axes[r][j].axis("off")
    return axes
