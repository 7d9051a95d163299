"""Running the TransRate experiment (cached per cell): model selection, the truth's
recipe, layer selection and the EfficientNet-Lite illustration.

* :func:`build_source`, :func:`choose_recipe` -- the shared source zoo and recipe of
  :mod:`transfer_nb.experiments.zoo`, re-exported here (their first home).
* :func:`score_features` -- every estimator of :data:`ESTIMATORS`, timed.
* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.estimators import registry
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta, target_draws
from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.transrate.presets import (ESTIMATORS, VERSION, TransRateConfig,
                                                       config_hash)
from transfer_nb.experiments.zoo import (build_source, choose_recipe, recipe_arrays,
                                         recipe_sources, replace)
from transfer_nb.selection import score_layers

__all__ = ["build_source", "score_features", "choose_recipe", "run"]

_KIND = "experiments_transrate"
_PEN, _OUT = "penultimate", "output"


def score_features(Z, y, logits, eps: float = 1e-4, projected_eps: float = 1.5e-2) -> dict:
    """Every estimator of :data:`ESTIMATORS` and its wall-clock (``time_<name>``).

    ``Z``: penultimate features, ``logits``: the source head's outputs on the same images
    (LEEP uses their softmax, NCE their argmax).  TransRate's snippet and layerwise
    variants use ``eps``, the projected one ``projected_eps`` (the authors' CIFAR-100
    setting, eigenvalue normalisation off).
    """
    from scipy.special import softmax

    Z = np.asarray(Z, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    f = {name: registry.get(name).func for name in ESTIMATORS}
    jobs = {
        "transrate": lambda: f["transrate"](Z, y, eps=eps),
        "transrate_layerwise": lambda: f["transrate_layerwise"](Z, y, eps=eps),
        "transrate_projected": lambda: f["transrate_projected"](
            Z, y, eps=projected_eps, normalize_eigenvalues=False),
        "logme": lambda: f["logme"](Z, y),
        "leep": lambda: f["leep"](softmax(logits, axis=1), y),
        "nce": lambda: f["nce"](np.argmax(logits, axis=1), y),
        "hscore": lambda: f["hscore"](Z, y),
        "hscore_shrinkage": lambda: f["hscore_shrinkage"](Z, y),
    }
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = timed(fn, 1)
    return out


def _fine_tune(model, train, test, cfg: TransRateConfig, lr: float, seed: int, **extra) -> dict:
    from transfer_nb.training.transfer import fine_tune  # lazy: pulls in torch
    return fine_tune(model, train, test, epochs=cfg.epochs, lr=lr, batch_size=cfg.batch_size,
                     seed=seed, progress=False, normalize="none", head_init=cfg.head_init,
                     **extra)


def _cell(model, spec_name: str, target: base.TargetSpec, cfg: TransRateConfig, lr: float,
          normalize=None, image_size=None) -> dict:
    """Scores, timings, probe and per-seed LP-FT accuracies of one model on one target
    (its training images: the draw ``cfg.draw_seed``)."""
    from transfer_nb.features import extract_features  # lazy: pulls in torch
    from transfer_nb.training.transfer import linear_probe  # lazy: pulls in torch
    train, test = base.load_target(target, image_size or cfg.image_size,
                                   getattr(cfg, "draw_seed", 0), normalize)
    y = np.asarray(train.targets)
    with torch_threads(1):
        feats = extract_features(model, train, layers=[_PEN, _OUT], progress=False)
        test_feats = extract_features(model, test, layers=[_PEN], progress=False)
        Z = np.asarray(feats[_PEN], dtype=np.float64)
        out = score_features(Z, y, feats[_OUT], cfg.eps, cfg.projected_eps)
        out["width"] = float(Z.shape[1])
        out["linear_probe"] = float(linear_probe(Z, y, test_feats[_PEN], np.asarray(test.targets)))
        accs, curves, times = [], [], []
        for seed in cfg.seeds:
            t0 = time.perf_counter()
            res = _fine_tune(model, train, test, cfg, lr, seed)
            times.append(time.perf_counter() - t0)
            accs.append(float(res["accuracy"]))
            curves.append(np.stack([np.asarray(res["train_loss"], dtype=np.float64),
                                    np.asarray(res["train_accuracy_curve"], dtype=np.float64)]))
    out["time_finetune"] = float(np.mean(times))
    out["accuracy_seeds"] = np.asarray(accs)
    out["curves"] = np.stack(curves)
    out["n_train"], out["n_test"] = float(len(train)), float(len(test))
    out["num_classes"] = float(len(np.unique(y)))
    return out


# ------------------------------------------------------------------------------ cache keys
_MODE = "a preset's name: every field it sets is in the key itself"
_REPORTS = "read by the reports only, after the cells"
_ONE_TARGET = "the cell runs on one target, whose spec is in the key"
_VIA_LR = "acts on the cell only through the chosen lr, which is in the key"
_NOT_ZOO = "the cell's model is not a zoo source (its own spec or name is in the key)"
_COMMON = {"mode": _MODE, "n_boot": _REPORTS, "primary": _REPORTS, "targets": _ONE_TARGET}
_LAYERS = dict.fromkeys(("layer_cases", "layer_width", "layer_blocks", "layer_seeds"),
                        "layer selection's own cells")
_LITE = dict.fromkeys(("pretrained", "pretrained_image_size"),
                      "the EfficientNet-Lite illustration's own cells")
_RECIPE_ONLY = dict.fromkeys(("degenerate", "lr_grid", "recipe_models", "validation_fraction"),
                             _VIA_LR)
_ZOO = dict.fromkeys(("arch", "width", "depth", "source_epochs", "source_lr",
                      "source_batch_size"), _NOT_ZOO)

#: every cell's key holds every config field (:func:`base.cell_key`) but these, each with
#: the reason it cannot change that cell
CELL_EXCLUDE = {
    "recipe": {**_COMMON, **_LAYERS, **_LITE,
               **dict.fromkeys(("eps", "projected_eps"), "the recipe fine-tunes; no score")},
    "cell": {**_COMMON, **_LAYERS, **_LITE, **_RECIPE_ONLY,
             "sources": "the cell runs on one source, whose spec is in the key"},
    "layers": {**_COMMON, **_LITE, **_RECIPE_ONLY,
               "sources": "a layer case trains its own source (its spec is in the key)",
               "layer_cases": "the case (source and target specs) is in the key",
               "arch": "a layer case is a small_resnet of layer_width and layer_blocks",
               "width": "a layer case is a small_resnet of layer_width and layer_blocks",
               "depth": "a layer case is a small_resnet of layer_width and layer_blocks",
               "seeds": "layer selection fine-tunes with layer_seeds",
               "projected_eps": "layer selection scores TransRate at eps",
               "draw_seed": "layer selection draws the target with seed 0"},
    "pretrained": {**_COMMON, **_LAYERS, **_RECIPE_ONLY, **_ZOO,
                   "sources": _NOT_ZOO, "pretrained": _NOT_ZOO,
                   "image_size": "the illustration reads pretrained_image_size",
                   **dict.fromkeys(("seeds", "epochs"), "the illustration fine-tunes 5 epochs "
                                                        "with seed 0 (fixed in the code)")},
    "lite_layers": {**_COMMON, **_LAYERS, **_RECIPE_ONLY, **_ZOO,
                    "sources": _NOT_ZOO, "pretrained": _NOT_ZOO,
                    "image_size": "the illustration reads pretrained_image_size",
                    **dict.fromkeys(("head_init", "epochs", "batch_size", "seeds"),
                                    "a linear probe per layer: no fine-tuning"),
                    "projected_eps": "layer scores use TransRate at eps",
                    "draw_seed": "the illustration draws the target with seed 0"},
}


def cell_key(cfg: TransRateConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def _cached(key: dict, compute, use_cache: bool) -> dict:
    return base.cached_cell(_KIND, VERSION, key, compute, use_cache)


def _recipe_job(cfg: TransRateConfig, target: base.TargetSpec, models: dict) -> dict:
    return recipe_arrays(*choose_recipe(cfg, target, models))


def _layer_case(cfg: TransRateConfig, source: base.SourceSpec, target: base.TargetSpec,
                lr: float) -> dict:
    model, _ = build_source(source, cfg, "small_resnet", width=cfg.layer_width, depth=1,
                            blocks_per_stage=cfg.layer_blocks)
    train, test = base.load_target(target, cfg.image_size, 0)
    layers = [f"stages.0.{i}" for i in range(cfg.layer_blocks)]
    tables = []
    with torch_threads(1):
        for seed in cfg.layer_seeds:
            tables.append(score_layers(
                model, train, layers=layers, estimators=("transrate", "transrate_layerwise"),
                truth="finetune_reinit", test_data=test, seed=seed, eps=cfg.eps,
                finetune={"epochs": cfg.epochs, "lr": lr, "batch_size": cfg.batch_size,
                          "head_init": cfg.head_init},
                progress=False))
    t = tables[0]
    return {"layer": np.asarray(layers), "width": t["width"].to_numpy(dtype=np.float64),
            "transrate": t["transrate"].to_numpy(), "transrate_layerwise":
                t["transrate_layerwise"].to_numpy(),
            "accuracy": np.stack([tb["accuracy"].to_numpy(dtype=np.float64) for tb in tables])}


def run(cfg: TransRateConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Run the experiment: every cell cached on disk under a key over its inputs.

    Returns
    -------
    Results
        ``table``: one row per (target, model, seed) of the main zoo (scores, baselines,
        LP-FT ``accuracy``, ``linear_probe``, timings); ``tables``: ``recipe`` (the lr
        grid per target), ``curves`` (training loss per epoch), ``layers`` (layer
        selection, one row per case, layer and seed) and ``pretrained`` (illustration).
    """
    import pandas as pd
    from tqdm.auto import tqdm
    if not isinstance(cfg, TransRateConfig):
        raise ValueError(f"cfg must come from transrate.config(), got {type(cfg).__name__}")
    t_start = time.perf_counter()
    n_cells = (len(cfg.sources) * (1 + len(cfg.targets)) + len(cfg.targets) +
               len(cfg.layer_cases) + len(cfg.pretrained) * len(cfg.targets[:1]))
    bar = tqdm(total=n_cells, desc="transrate experiment", disable=not progress)
    # every cell through base.cached_cells: here, on --jobs processes or on --dask
    built = base.parallel_map(build_source, [(spec, cfg) for spec in cfg.sources], None, bar)
    models = {spec.name: m for spec, m in zip(cfg.sources, built)}   # weights cached
    tkeys = [{"target": dataclasses.asdict(target)} for target in cfg.targets]
    pick = [s.name for s in recipe_sources(cfg.sources, cfg.degenerate, cfg.recipe_models)]
    recs = base.cached_cells(_KIND, VERSION, [
        (cell_key(cfg, "recipe", **tkey), _recipe_job,
         (cfg, target, {k: models[k] for k in pick}))
        for target, tkey in zip(cfg.targets, tkeys)], use_cache, None, bar)
    chosen = {t.name: float(rec["chosen_lr"]) for t, rec in zip(cfg.targets, recs)}
    cells = base.cached_cells(_KIND, VERSION, [
        (cell_key(cfg, "cell", **tkey, source=dataclasses.asdict(spec),
                  lr=chosen[target.name]), _cell,
         (models[spec.name][0], spec.name, target, cfg, chosen[target.name]))
        for target, tkey in zip(cfg.targets, tkeys) for spec in cfg.sources],
        use_cache, None, bar)
    rows, recipe, curves = [], [], []
    for ti, (target, rec) in enumerate(zip(cfg.targets, recs)):
        lr = chosen[target.name]
        recipe += [{"target": target.name, "model": str(m), "lr": float(l), "val_accuracy": float(a),
                    "chosen": float(l) == lr}
                   for m, l, a in zip(rec["model"], rec["lr"], rec["val_accuracy"])]
        for si, spec in enumerate(cfg.sources):
            src_acc = models[spec.name][1]
            cell = cells[ti * len(cfg.sources) + si]
            base_row = {"target": target.name, "model": spec.name,
                        "source_dataset": spec.dataset, "source_n": float(spec.n),
                        "source_epochs": float(spec.epochs), "label_noise": spec.label_noise,
                        "source_accuracy": src_acc, "lr": lr,
                        **{k: float(np.asarray(v)) for k, v in cell.items()
                           if k not in ("accuracy_seeds", "curves")}}
            for seed, acc, curve in zip(cfg.seeds, cell["accuracy_seeds"], cell["curves"]):
                rows.append({**base_row, "seed": seed, "accuracy": float(acc)})
                curves += [{"target": target.name, "model": spec.name, "seed": seed,
                            "epoch": e + 1, "train_loss": float(loss), "train_accuracy": float(a)}
                           for e, (loss, a) in enumerate(zip(*curve))]
    # layer cases: the recipe chosen on the target's validation split (else a middle value)
    lrs = [chosen.get(target.name, float(np.median(cfg.lr_grid)))
           for _, target in cfg.layer_cases]
    hits = base.cached_cells(_KIND, VERSION, [
        (cell_key(cfg, "layers", source=dataclasses.asdict(source),
                  target=dataclasses.asdict(target), lr=lr), _layer_case,
         (cfg, source, target, lr))
        for (source, target), lr in zip(cfg.layer_cases, lrs)], use_cache, None, bar)
    layers = []
    for (source, target), hit in zip(cfg.layer_cases, hits):
        case = f"{source.name} -> {target.name}"
        for s_i, seed in enumerate(cfg.layer_seeds):
            for j, layer in enumerate(hit["layer"]):
                layers.append({"case": case, "layer": str(layer), "depth": j + 1,
                               "width": float(hit["width"][j]),
                               "transrate": float(hit["transrate"][j]),
                               "transrate_layerwise": float(hit["transrate_layerwise"][j]),
                               "seed": seed, "accuracy": float(hit["accuracy"][s_i, j])})
    pretrained = _pretrained(cfg, use_cache, bar)
    lite_layers = _lite_layers(cfg, use_cache)
    bar.close()
    meta = run_meta("transrate", cfg, config_hash(cfg), t_start,
                    target_draws=target_draws(cfg.targets, 0))   # per class (seed 0)
    return base.Results("transrate", pd.DataFrame(rows),
                        {"recipe": pd.DataFrame(recipe), "curves": pd.DataFrame(curves),
                         "layers": pd.DataFrame(layers), "pretrained": pd.DataFrame(pretrained),
                         "lite_layers": lite_layers},
                        meta, cfg)


def _pretrained(cfg: TransRateConfig, use_cache: bool, bar) -> list:
    """EfficientNet-Lite0/1/2 scored on the first target with their frozen-probe accuracy
    (an illustration: three items decide nothing)."""
    from transfer_nb.models import load_model  # lazy: pulls in torch
    rows = []
    target = cfg.targets[0]
    light = replace(cfg, seeds=(0,), epochs=5)
    for name in cfg.pretrained:
        def compute(name=name):
            model = load_model(name, pretrained=True)
            return _cell(model, name, target, light, 0.003,
                         normalize=model.transfer_nb_normalize,
                         image_size=cfg.pretrained_image_size)
        cell = _cached(cell_key(cfg, "pretrained", name=name,
                                target=dataclasses.asdict(target)), compute, use_cache)
        rows.append({"model": name, "target": target.name,
                     **{k: float(np.asarray(v)) for k, v in cell.items()
                        if k not in ("accuracy_seeds", "curves")},
                     "accuracy": float(np.mean(cell["accuracy_seeds"]))})
        bar.update(1)
    return rows


def _lite_layers(cfg: TransRateConfig, use_cache: bool):
    """EfficientNet-Lite0's declared layers on the first target: TransRate (snippet and
    layerwise) beside each layer's width and its linear-probe accuracy (an illustration:
    the widths differ, so the width column is the baseline to beat)."""
    import pandas as pd

    from transfer_nb.models import load_model  # lazy: pulls in torch
    if not cfg.pretrained:
        return pd.DataFrame()
    target = cfg.targets[0]

    def compute():
        model = load_model(cfg.pretrained[0], pretrained=True)
        train, test = base.load_target(target, cfg.pretrained_image_size, 0,
                                       model.transfer_nb_normalize)
        with torch_threads(1):
            t = score_layers(model, train, estimators=("transrate", "transrate_layerwise"),
                             truth="linear_probe", test_data=test, eps=cfg.eps, progress=False)
        return {"layer": np.asarray(t.index, dtype=str), "width": t["width"].to_numpy(float),
                "transrate": t["transrate"].to_numpy(float),
                "transrate_layerwise": t["transrate_layerwise"].to_numpy(float),
                "accuracy": t["accuracy"].to_numpy(float)}
    hit = _cached(cell_key(cfg, "lite_layers", name=cfg.pretrained[0],
                           target=dataclasses.asdict(target)), compute, use_cache)
    return pd.DataFrame({k: hit[k] for k in ("layer", "width", "transrate",
                                             "transrate_layerwise", "accuracy")})
