"""Running the TransRate experiment (cached per cell): model selection, the truth's
recipe, layer selection and the EfficientNet-Lite illustration.

* :func:`build_source` -- one source model of the zoo (trained or loaded from the cache).
* :func:`choose_recipe` -- the fine-tuning learning rate of a target, chosen on a
  validation split of its training images before any score is correlated.
* :func:`score_features` -- every estimator of :data:`ESTIMATORS`, timed.
* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb.experiments import base
from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.transrate.presets import (ESTIMATORS, VERSION, TransRateConfig,
                                                       config_hash)

__all__ = ["build_source", "score_features", "choose_recipe", "run"]

_KIND = "experiments_transrate"
_PEN, _OUT = "penultimate", "output"


def _one_thread():
    """Context: one torch thread (measured faster than two for these tiny convolutions)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(old)
    return ctx()


def _source_data(spec: base.SourceSpec, image_size: int, seed: int):
    from transfer_nb.data import load_dataset
    data = load_dataset(spec.dataset, split="train", n=spec.n, image_size=image_size,
                        seed=seed, **dict(spec.options))
    return base.with_label_noise(data, spec.label_noise, seed)


def build_source(spec: base.SourceSpec, cfg: TransRateConfig, arch: str | None = None,
                 **arch_options):
    """Train (or load from the cache) one source model (``epochs=0``: random init).

    Returns ``(model, source_test_accuracy)``: accuracy on (up to 400 images of) the
    source's own test split -- a baseline a score must beat.
    """
    from transfer_nb.data import load_dataset
    from transfer_nb.models import train_source
    from transfer_nb.training import evaluate
    data = _source_data(spec, cfg.image_size, 0)
    options = arch_options or {"width": cfg.width, "depth": cfg.depth}
    with _one_thread():
        model = train_source(arch or cfg.arch, data, epochs=spec.epochs, lr=cfg.source_lr,
                             batch_size=cfg.source_batch_size, seed=0, progress=False,
                             augment=bool(dict(spec.setting).get("augment", False)), **options)
        test = load_dataset(spec.dataset, split="test", n=min(400, _test_size(spec)),
                            image_size=cfg.image_size, seed=0, **dict(spec.options))
        acc = float(evaluate(model, test, metric="accuracy"))
    model.transfer_nb_name = spec.name
    return model, acc


def _test_size(spec: base.SourceSpec) -> int:
    from transfer_nb.data import load_dataset
    return len(load_dataset(spec.dataset, split="test", image_size=8, **dict(spec.options)))


def score_features(Z, y, logits, eps: float = 1e-4, projected_eps: float = 1.5e-2) -> dict:
    """Every estimator of :data:`ESTIMATORS` and its wall-clock (``time_<name>``).

    ``Z``: penultimate features, ``logits``: the source head's outputs on the same images
    (LEEP uses their softmax, NCE their argmax).  TransRate's snippet and layerwise
    variants use ``eps``, the projected one ``projected_eps`` (the authors' CIFAR-100
    setting, eigenvalue normalisation off).
    """
    from scipy.special import softmax

    from transfer_nb.estimators import registry

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
    from transfer_nb.transfer import fine_tune
    return fine_tune(model, train, test, epochs=cfg.epochs, lr=lr, batch_size=cfg.batch_size,
                     seed=seed, progress=False, normalize="none", head_init=cfg.head_init,
                     **extra)


def _recipe_models(cfg: TransRateConfig) -> list:
    """The models the recipe is tuned on: evenly spaced over the zoo (config order), the
    declared-degenerate ones left out -- a rule fixed before any accuracy is seen."""
    out = dict(cfg.degenerate)
    pool = [s for s in cfg.sources if out.get(s.name) != "out"]
    idx = np.unique(np.linspace(0, len(pool) - 1, cfg.recipe_models).round().astype(int))
    return [pool[i] for i in idx]


def choose_recipe(cfg: TransRateConfig, target: base.TargetSpec, models: dict) -> tuple:
    """The learning rate of ``cfg.lr_grid`` with the best mean validation accuracy.

    The target's *training* images are split (stratified, ``validation_fraction`` held
    out, seed 0); each grid value fine-tunes the recipe models on the rest with seed 0.
    The test images are never seen.  Returns ``(lr, rows)``.
    """
    from transfer_nb.data.base import stratified_split
    from transfer_nb.transfer import choose_recipe as choose
    train, _ = base.load_target(target, cfg.image_size, 0)
    fit_idx, val_idx = stratified_split(np.asarray(train.targets), cfg.validation_fraction, 0)
    fit, val = train.subset(fit_idx), train.subset(val_idx)
    models = {spec.name: models[spec.name][0] for spec in _recipe_models(cfg)}
    with _one_thread():
        recipe, rows = choose(models, fit, val, [{"lr": lr} for lr in cfg.lr_grid],
                              epochs=cfg.epochs, batch_size=cfg.batch_size, seed=0,
                              progress=False, normalize="none", head_init=cfg.head_init)
    import pandas as pd
    table = pd.DataFrame(rows)
    table.insert(0, "target", target.name)
    best = float(recipe["lr"])
    table = table[["target", "model", "lr", "val_accuracy", "chosen"]]
    return best, table.to_dict("records")


def _cell(model, spec_name: str, target: base.TargetSpec, cfg: TransRateConfig, lr: float,
          normalize=None, image_size=None) -> dict:
    """Scores, timings, probe and per-seed LP-FT accuracies of one model on one target."""
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import linear_probe
    train, test = base.load_target(target, image_size or cfg.image_size, 0, normalize)
    y = np.asarray(train.targets)
    with _one_thread():
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


def _cached(key: dict, compute, use_cache: bool) -> dict:
    return base.cached_cell(_KIND, VERSION, key, compute, use_cache)


def _common(cfg: TransRateConfig) -> dict:
    keep = ("arch", "width", "depth", "image_size", "source_lr", "source_batch_size",
            "head_init", "epochs", "batch_size", "seeds", "eps", "projected_eps")
    return {k: getattr(cfg, k) for k in keep}


def _layer_case(cfg: TransRateConfig, source: base.SourceSpec, target: base.TargetSpec,
                lr: float) -> dict:
    from transfer_nb.selection import score_layers
    model, _ = build_source(source, cfg, "small_resnet", width=cfg.layer_width, depth=1,
                            blocks_per_stage=cfg.layer_blocks)
    train, test = base.load_target(target, cfg.image_size, 0)
    layers = [f"stages.0.{i}" for i in range(cfg.layer_blocks)]
    tables = []
    with _one_thread():
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
    models = {}
    for spec in cfg.sources:
        models[spec.name] = build_source(spec, cfg)   # train_source caches the weights
        bar.update(1)
    rows, recipe, curves, chosen = [], [], [], {}
    for target in cfg.targets:
        tkey = {"target": dataclasses.asdict(target), **_common(cfg)}
        rec = _cached({"part": "recipe", **tkey, "grid": cfg.lr_grid,
                       "models": [s.name for s in _recipe_models(cfg)],
                       "vf": cfg.validation_fraction},
                      lambda: _recipe_arrays(*choose_recipe(cfg, target, models)), use_cache)
        lr = chosen[target.name] = float(rec["chosen_lr"])
        recipe += [{"target": target.name, "model": str(m), "lr": float(l), "val_accuracy": float(a),
                    "chosen": float(l) == lr}
                   for m, l, a in zip(rec["model"], rec["lr"], rec["val_accuracy"])]
        bar.update(1)
        for spec in cfg.sources:
            model, src_acc = models[spec.name]
            cell = _cached({"part": "cell", **tkey, "source": dataclasses.asdict(spec),
                            "lr": lr}, lambda: _cell(model, spec.name, target, cfg, lr),
                           use_cache)
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
            bar.update(1)
    layers = []
    for source, target in cfg.layer_cases:
        # the recipe chosen on the target's validation split (a middle value otherwise)
        lr = chosen.get(target.name, float(np.median(cfg.lr_grid)))
        hit = _cached({"part": "layers", "source": dataclasses.asdict(source),
                       "target": dataclasses.asdict(target), **_common(cfg), "lr": lr,
                       "lw": cfg.layer_width, "lb": cfg.layer_blocks, "ls": cfg.layer_seeds},
                      lambda: _layer_case(cfg, source, target, lr), use_cache)
        case = f"{source.name} -> {target.name}"
        for s_i, seed in enumerate(cfg.layer_seeds):
            for j, layer in enumerate(hit["layer"]):
                layers.append({"case": case, "layer": str(layer), "depth": j + 1,
                               "width": float(hit["width"][j]),
                               "transrate": float(hit["transrate"][j]),
                               "transrate_layerwise": float(hit["transrate_layerwise"][j]),
                               "seed": seed, "accuracy": float(hit["accuracy"][s_i, j])})
        bar.update(1)
    pretrained = _pretrained(cfg, use_cache, bar)
    lite_layers = _lite_layers(cfg, use_cache)
    bar.close()
    meta = {"paper": "transrate", "mode": cfg.mode, "config_hash": config_hash(cfg),
            "wall_clock_s": round(time.perf_counter() - t_start, 1), "primary": cfg.primary}
    meta["target_draws"] = base.target_draws(cfg.targets, 0)   # per class (seed 0)
    return base.Results("transrate", pd.DataFrame(rows),
                        {"recipe": pd.DataFrame(recipe), "curves": pd.DataFrame(curves),
                         "layers": pd.DataFrame(layers), "pretrained": pd.DataFrame(pretrained),
                         "lite_layers": lite_layers},
                        meta, cfg)


def _recipe_arrays(lr: float, rows: list) -> dict:
    return {"chosen_lr": np.array(lr), "model": np.array([r["model"] for r in rows]),
            "lr": np.array([r["lr"] for r in rows]),
            "val_accuracy": np.array([r["val_accuracy"] for r in rows])}


def _pretrained(cfg: TransRateConfig, use_cache: bool, bar) -> list:
    """EfficientNet-Lite0/1/2 scored on the first target with their frozen-probe accuracy
    (an illustration: three items decide nothing)."""
    from transfer_nb.models import load_model
    rows = []
    target = cfg.targets[0]
    light = dataclasses.replace(cfg, seeds=(0,), epochs=5)
    for name in cfg.pretrained:
        def compute(name=name):
            model = load_model(name, pretrained=True)
            return _cell(model, name, target, light, 0.003,
                         normalize=model.transfer_nb_normalize,
                         image_size=cfg.pretrained_image_size)
        cell = _cached({"part": "pretrained", "name": name, "target": dataclasses.asdict(target),
                        "size": cfg.pretrained_image_size, **_common(light)}, compute, use_cache)
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

    from transfer_nb.models import load_model
    from transfer_nb.selection import score_layers
    if not cfg.pretrained:
        return pd.DataFrame()
    target = cfg.targets[0]

    def compute():
        model = load_model(cfg.pretrained[0], pretrained=True)
        train, test = base.load_target(target, cfg.pretrained_image_size, 0,
                                       model.transfer_nb_normalize)
        with _one_thread():
            t = score_layers(model, train, estimators=("transrate", "transrate_layerwise"),
                             truth="linear_probe", test_data=test, eps=cfg.eps, progress=False)
        return {"layer": np.asarray(t.index, dtype=str), "width": t["width"].to_numpy(float),
                "transrate": t["transrate"].to_numpy(float),
                "transrate_layerwise": t["transrate_layerwise"].to_numpy(float),
                "accuracy": t["accuracy"].to_numpy(float)}
    hit = _cached({"part": "lite_layers", "name": cfg.pretrained[0],
                   "target": dataclasses.asdict(target), "size": cfg.pretrained_image_size,
                   "eps": cfg.eps}, compute, use_cache)
    return pd.DataFrame({k: hit[k] for k in ("layer", "width", "transrate",
                                             "transrate_layerwise", "accuracy")})
