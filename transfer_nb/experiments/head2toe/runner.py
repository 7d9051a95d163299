"""Running the Head2Toe experiment, one cached cell per target.

* :func:`choose_recipe` -- fine-tuning's learning rate and epochs for a target, chosen on
  a validation draw of its training split (never its test images).
* :func:`target_cell` -- every method on every seed of one target: the linear probe,
  Head2Toe (a sweep of kept fractions and the cross-validated choice) and fine-tuning,
  each timed and its peak memory measured.
* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta, target_draws
from transfer_nb.experiments._timing import measured
from transfer_nb.experiments.head2toe.presets import (FINETUNE, HEAD2TOE, PROBE, VERSION,
                                                      Head2ToeConfig, config_hash)

__all__ = ["choose_recipe", "target_cell", "run", "RECIPE_SEED"]

_KIND = "experiments_head2toe"
#: the validation draw's seed (the experiment's seeds are small integers: no overlap)
RECIPE_SEED = 10_000


def _normalize(model) -> str | None:
    return getattr(model, "transfer_nb_normalize", None)


def _ft_kwargs(cfg: Head2ToeConfig) -> dict:
    return {"batch_size": cfg.ft_batch_size, "optimizer": "adam", "head_init": "probe",
            "freeze_bn_stats": True, "progress": False, "device": "cpu"}


def choose_recipe(model, spec: base.TargetSpec, cfg: Head2ToeConfig) -> tuple[dict, list]:
    """Fine-tuning's recipe for one target: the ``(lr, epochs)`` of ``cfg.ft_grid`` with
    the best validation accuracy.

    ``per_class + val_per_class`` images per class are drawn from the target's training
    split with :data:`RECIPE_SEED` (+ 0, 1, ... for ``recipe_draws`` draws); ``per_class``
    of them fit, the rest validate; the validation accuracy is averaged over the draws.  This is
    more validation data than Head2Toe's cross-validation sees (its folds come from the
    ``per_class`` labelled images): an advantage given to the baseline on purpose.
    """
    from transfer_nb.data.base import stratified_split  # lazy: pulls in torch
    from transfer_nb.training.transfer import choose_recipe as choose  # lazy: pulls in torch
    n = spec.per_class + cfg.val_per_class
    fits, vals = [], []
    for k in range(cfg.recipe_draws):
        draw, _ = base.load_target(dataclasses.replace(spec, per_class=n, n_test=1),
                                   cfg.image_size, RECIPE_SEED + k, _normalize(model))
        fit_idx, val_idx = stratified_split(np.asarray(draw.targets), cfg.val_per_class / n, 0)
        fits.append(draw.subset(fit_idx))
        vals.append(draw.subset(val_idx))
    grid = [{"lr": lr, "epochs": int(ep)} for lr, ep in cfg.ft_grid]
    return choose({"source": model}, fits, vals, grid, seed=0, **_ft_kwargs(cfg))


def _probe_and_head2toe(F_tr, y_tr, F_te, y_te, cfg: Head2ToeConfig, seed: int) -> dict:
    from transfer_nb.head2toe import Head2Toe, Head2ToeCV, fraction_sweep  # lazy: pulls in sklearn
    last = list(F_tr)[-1]
    head = {"steps": cfg.head_steps, "lr": cfg.head_lr, "seed": seed}
    probe, t_probe, _ = measured(lambda: Head2Toe(1.0, layers=[last], **head).fit(F_tr, y_tr))
    sweep = fraction_sweep(F_tr, y_tr, F_te, y_te, cfg.fractions, group_lasso=cfg.group_lasso,
                           **head)
    t_search = 0.0
    params = {"keep_fraction": cfg.main_fraction, "group_lasso": cfg.group_lasso}
    if cfg.cv:
        cv, t_search, _ = measured(lambda: Head2ToeCV(
            cfg.cv_fractions, cfg.cv_group_lassos, **head).fit(F_tr, y_tr))
        params = cv.best_params_
    # the cost of training the chosen model (its search is timed apart, as fine-tuning's)
    main, t_main, mem = measured(lambda: Head2Toe(**params, **head).fit(F_tr, y_tr))
    fraction = params["keep_fraction"]
    return {"probe": probe.score(F_te, y_te), "probe_time": t_probe,
            "main": main.score(F_te, y_te), "main_time": t_main, "main_mem": mem,
            "main_search": t_search, "main_fraction": fraction,
            "main_counts": np.array(list(main.layer_counts_.values()), dtype=np.float64),
            "fractions": np.array([r["accuracy"] for r in sweep]),
            "counts": np.array([list(r["layer_counts"].values()) for r in sweep],
                               dtype=np.float64)}


def target_cell(model, spec: base.TargetSpec, cfg: Head2ToeConfig, recipe: dict) -> dict:
    """Every method on every seed of one target (arrays, one row per seed).

    The cost of training the chosen model: Head2Toe's forward pass over the labelled
    images plus its selection and final heads, against one
    :func:`~transfer_nb.transfer.fine_tune` call; wall-clock seconds and peak extra
    resident memory (MiB).  Head2Toe's cross-validation is timed apart (``main_search``),
    as fine-tuning's recipe search is (in the recipe cell).
    """
    from transfer_nb.head2toe import head2toe_features  # lazy: pulls in sklearn
    from transfer_nb.training.transfer import fine_tune  # lazy: pulls in torch
    norm = _normalize(model)
    _, test = base.load_target(spec, cfg.image_size, 0, norm)
    y_te = np.asarray(test.targets)
    F_te = head2toe_features(model, test, target=cfg.target_features, device="cpu")
    per_seed = []
    for seed in cfg.seeds:
        train, _ = base.load_target(spec, cfg.image_size, seed, norm)
        y_tr = np.asarray(train.targets)
        F_tr, t_ext, mem_ext = measured(lambda: head2toe_features(
            model, train, target=cfg.target_features, device="cpu"))
        row = _probe_and_head2toe(F_tr, y_tr, F_te, y_te, cfg, seed)
        row["main_time"] += t_ext
        row["main_mem"] = max(row["main_mem"], mem_ext)
        ft, t_ft, mem_ft = measured(lambda: fine_tune(model, train, test, seed=seed,
                                                      **recipe, **_ft_kwargs(cfg)))
        row.update(ft=float(ft["accuracy"]), ft_time=t_ft, ft_mem=mem_ft,
                   ft_curve=np.asarray(ft["train_accuracy_curve"], dtype=np.float64))
        per_seed.append(row)
    out = {k: np.array([r[k] for r in per_seed]) for k in per_seed[0]}
    out["layers"] = np.array(list(F_te))
    out["n_test"] = np.array(len(test))
    out["n_classes"] = np.array(len(np.unique(y_te)))
    return out


def _recipe_cell(model, spec, cfg) -> dict:
    (recipe, rows), seconds, _ = measured(lambda: choose_recipe(model, spec, cfg))
    return {"search_time": np.array(seconds), "split": np.array([r["split"] for r in rows]),"lr": np.array([r["lr"] for r in rows]),
            "epochs": np.array([r["epochs"] for r in rows]),
            "val_accuracy": np.array([r["val_accuracy"] for r in rows]),
            "chosen": np.array([r["chosen"] for r in rows])}


_NOT_IN_A_CELL = {
    "mode": "a name for the preset, not a setting",
    "targets": "a cell is one target, whose spec is in the key",
    "far": "the near / far label is read by the report, not by a cell",
    "margin": "the report's non-inferiority margin",
    "n_boot": "the report's bootstrap",
    "primary": "the report's claim",
    "threads": "torch threads change the speed, not the numbers",
}
#: per cell kind, the config fields that cannot change it, each with the reason (every
#: other field is in its cache key: :func:`transfer_nb.experiments.base.cell_key`)
CELL_EXCLUDE = {"recipe": _NOT_IN_A_CELL, "cell": _NOT_IN_A_CELL}


def cell_key(cfg: Head2ToeConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def _key(part: str, spec, cfg: Head2ToeConfig, **extra) -> dict:
    return cell_key(cfg, part, target=dataclasses.asdict(spec), **extra)


def run(cfg: Head2ToeConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Run the experiment (each target's recipe and cell cached on disk).

    Returns
    -------
    Results
        ``table``: one row per (target, seed, method) with ``group`` (near / far),
        ``accuracy``, ``time`` (s, training the chosen model), ``memory`` (MiB, its peak),
        ``search_time`` (s, choosing its hyper-parameters: Head2Toe's cross-validation,
        fine-tuning's recipe search divided over the seeds); ``tables``: ``fractions``
        (Head2Toe's accuracy per kept fraction), ``layers`` (kept features per layer and
        fraction), ``recipes`` (the fine-tuning grid's validation accuracies),
        ``curves`` (fine-tuning's training accuracy per epoch), ``targets`` (classes,
        test images, chance).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from transfer_nb.models import load_model  # lazy: pulls in torch
    t_start = time.perf_counter()
    with torch_threads(cfg.threads):
        model = load_model(cfg.model, pretrained=True)
        rows, fr, lay, rec, cur, tgt = [], [], [], [], [], []
        for spec in tqdm(cfg.targets, desc="head2toe", disable=not progress):
            r = base.cached_cell(_KIND, VERSION, _key("recipe", spec, cfg),
                                 lambda: _recipe_cell(model, spec, cfg), use_cache)
            best = int(np.flatnonzero(r["chosen"])[0])
            recipe = {"lr": float(r["lr"][best]), "epochs": int(r["epochs"][best])}
            rec += [{"target": spec.name, "draw": int(k), "lr": float(a), "epochs": int(b),
                     "val_accuracy": float(c), "chosen": bool(d)}
                    for k, a, b, c, d in zip(r["split"], r["lr"], r["epochs"],
                                             r["val_accuracy"], r["chosen"])]
            ft_search = float(r["search_time"]) / len(cfg.seeds)   # its share per seed
            c = base.cached_cell(_KIND, VERSION, _key("cell", spec, cfg, recipe=recipe),
                                 lambda: target_cell(model, spec, cfg, recipe), use_cache)
            group = "far" if spec.name in cfg.far else "near"
            layers = [str(x) for x in c["layers"]]
            tgt.append({"target": spec.name, "group": group, "classes": int(c["n_classes"]),
                        "n_test": int(c["n_test"]), "chance": 1.0 / int(c["n_classes"]),
                        "lr": recipe["lr"], "epochs": recipe["epochs"]})
            for i, seed in enumerate(cfg.seeds):
                base_row = {"target": spec.name, "group": group, "seed": seed}
                rows += [{**base_row, "method": PROBE, "accuracy": c["probe"][i],
                          "time": c["probe_time"][i], "memory": np.nan, "search_time": 0.0,
                          "keep_fraction": 1.0},
                         {**base_row, "method": HEAD2TOE, "accuracy": c["main"][i],
                          "time": c["main_time"][i], "memory": c["main_mem"][i],
                          "search_time": c["main_search"][i],
                          "keep_fraction": c["main_fraction"][i]},
                         {**base_row, "method": FINETUNE, "accuracy": c["ft"][i],
                          "time": c["ft_time"][i], "memory": c["ft_mem"][i],
                          "search_time": ft_search, "keep_fraction": np.nan}]
                fr += [{**base_row, "keep_fraction": f, "accuracy": a}
                       for f, a in zip(cfg.fractions, c["fractions"][i])]
                lay += [{**base_row, "keep_fraction": f, "layer": name, "count": n}
                        for j, f in enumerate(cfg.fractions)
                        for name, n in zip(layers, c["counts"][i][j])]
                cur += [{**base_row, "epoch": e + 1, "train_accuracy": a}
                        for e, a in enumerate(c["ft_curve"][i])]
    meta = run_meta("head2toe", cfg, config_hash(cfg), t_start, version=VERSION,
                    target_draws=target_draws(cfg.targets, cfg.seeds[0]))  # first seed's
    return base.Results("head2toe", pd.DataFrame(rows),
                        {"fractions": pd.DataFrame(fr), "layers": pd.DataFrame(lay),
                         "recipes": pd.DataFrame(rec), "curves": pd.DataFrame(cur),
                         "targets": pd.DataFrame(tgt)}, meta, cfg)
