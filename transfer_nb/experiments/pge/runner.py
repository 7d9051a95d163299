"""Running the PGE experiment (cached per cell): task data, principal gradients, the
gradient-free baseline, the LP-FT truth of every ordered pair, and the stability sweep.

* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.

What PGE measures per task (:func:`task_data`, :func:`task_gradients`,
:func:`baseline_features`, :func:`pair_distances`, ...) lives in
:mod:`transfer_nb.experiments.pge.gradients` and is re-exported here.
"""
from __future__ import annotations

import dataclasses
import time

from transfer_nb._threads import torch_threads
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta
from transfer_nb.experiments.pge.gradients import (baseline_features, body_params,
                                                   label_permutation, pair_distances,
                                                   pge_model, task_data, task_gradients)
from transfer_nb.experiments.pge.presets import VERSION, PGEConfig, config_hash, task_names
from transfer_nb.experiments.pge.stability import stability_sweep
from transfer_nb.experiments.pge.truth import (build_sources, scratch_spec, target_recipe,
                                               transfer_cell)
from transfer_nb.experiments.zoo import build_source, recipe_arrays

__all__ = ["task_data", "pge_model", "body_params", "label_permutation", "task_gradients",
           "baseline_features", "pair_distances", "run"]

_KIND = "experiments_pge"


# ------------------------------------------------------------------------------ cache keys
_COMMON = {"mode": "a preset's name: every field it sets is in the key itself",
           "n_boot": "read by the reports only", "primary": "read by the reports only",
           "degenerate": "declared for the reports: no item is left out of a cell"}
_TRUTH = dict.fromkeys(("head_init", "epochs", "batch_size", "lr_grid", "recipe_models",
                        "validation_fraction"), "the LP-FT truth's recipe: not read by PGE")
_SOURCES = dict.fromkeys(("sources", "n_source", "source_epochs", "source_lr",
                          "source_batch_size"),
                         "PGE reads a random-init body, never a trained source")
_PGE = dict.fromkeys(("n_pge", "restarts", "pge_batch_size", "seed"),
                     "PGE's own cells (gradients, stability)")
_STABILITY = dict.fromkeys(("stability_pairs", "stability_seeds", "stability_restarts",
                            "stability_batches"), "the stability sweep's own cell")
_ONE_TARGET = {"targets": "the cell runs on one target, whose spec is in the key",
               "tasks": "the cell reads its target's spec and the sources (in the key)"}

#: every cell's key holds every config field (:func:`base.cell_key`) but these, each with
#: the reason it cannot change that cell
CELL_EXCLUDE = {
    "gradients": {**_COMMON, **_TRUTH, **_SOURCES, **_STABILITY,
                  "targets": "every task's gradients are computed, target or not"},
    "recipe": {**_COMMON, **_PGE, **_STABILITY, **_ONE_TARGET,
               "train_draw": "the recipe reads the seed-0 draw",
               "seeds": "the recipe fine-tunes with seed 0"},
    "cell": {**_COMMON, **_PGE, **_STABILITY, **_ONE_TARGET,
             "sources": "the cell runs on one source, whose spec is in the key",
             **dict.fromkeys(("lr_grid", "recipe_models", "validation_fraction"),
                             "acts on the cell only through the chosen lr, in the key")},
    "stability": {**_COMMON, **_TRUTH, **_SOURCES,
                  "targets": "the sweep reads its pairs' tasks, target or not"},
}


def cell_key(cfg: PGEConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def _cached(key: dict, compute, use_cache: bool) -> dict:
    return base.cached_cell(_KIND, VERSION, key, compute, use_cache)


def _recipe_job(cfg: PGEConfig, target, models: dict) -> dict:
    with torch_threads(1):
        return recipe_arrays(*target_recipe(cfg, target, models))


def _scratch_job(spec, target, cfg: PGEConfig, lr: float) -> dict:
    with torch_threads(1):
        return transfer_cell(build_source(spec, cfg)[0], target, cfg, lr)


def _cell_job(model, target, cfg: PGEConfig, lr: float) -> dict:
    with torch_threads(1):
        return transfer_cell(model, target, cfg, lr)


def _grad_arrays(cfg: PGEConfig, data: dict, use_cache: bool) -> dict:
    def compute():
        g = task_gradients(cfg, data)
        f = baseline_features(cfg, data)
        return {**g, "feat_source": f["source"], "feat_target": f["target"]}
    return _cached(cell_key(cfg, "gradients"), compute, use_cache)


def run(cfg: PGEConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Run the experiment: every cell cached on disk under a key over its inputs.

    Returns
    -------
    Results
        ``table``: one row per (target, source, seed): LP-FT ``accuracy``,
        ``linear_probe``, the source's own test accuracy, the distances ``pge``,
        ``pge_permuted`` (control), ``pge_mean_distance`` (per-restart normalisation) and
        ``baseline``, and timings; ``tables``: ``scratch`` (random init on each target),
        ``curves``, ``recipe``, ``stability`` and ``timing`` (PGE seconds per task).
        ``results.arrays`` (not stored) holds the principal gradients for the explorer.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not isinstance(cfg, PGEConfig):
        raise ValueError(f"cfg must come from pge.config(), got {type(cfg).__name__}")
    t_start = time.perf_counter()
    names = task_names(cfg)
    bar = tqdm(total=len(names) + len(cfg.targets) * len(names) + 1,
               desc="pge experiment", disable=not progress)
    with torch_threads(1):
        data = task_data(cfg)
        g = _grad_arrays(cfg, data, use_cache)
        dist = {"pge": pair_distances(g["source"], g["target"]),
                "pge_permuted": pair_distances(g["source"], g["target_permuted"]),
                "pge_mean_distance": pair_distances(g["source"], g["target"], "mean_distance"),
                "baseline": pair_distances(g["feat_source"], g["feat_target"])}
        models = build_sources(cfg)
        bar.update(len(names))
        # every recipe and cell through base.cached_cells: here, on --jobs or on --dask
        targets = [t for t in cfg.tasks if t.name in cfg.targets]
        tkeys = [{"target": dataclasses.asdict(t)} for t in targets]
        recs = base.cached_cells(_KIND, VERSION, [
            (cell_key(cfg, "recipe", **tkey), _recipe_job, (cfg, target, models))
            for target, tkey in zip(targets, tkeys)], use_cache, None, None)
        lrs = [float(rec["chosen_lr"]) for rec in recs]
        items = []
        for target, tkey, lr in zip(targets, tkeys, lrs):
            spec = scratch_spec(cfg, target)
            items.append((cell_key(cfg, "cell", **tkey, source=dataclasses.asdict(spec),
                                   lr=lr), _scratch_job, (spec, target, cfg, lr)))
            items += [(cell_key(cfg, "cell", **tkey, source=dataclasses.asdict(src), lr=lr),
                       _cell_job, (models[src.name][0], target, cfg, lr))
                      for src in cfg.sources if src.name != target.name]
        cells = iter(base.cached_cells(_KIND, VERSION, items, use_cache, None, bar))
        rows, scratch, curves, recipe = [], [], [], []
        for target, rec, lr in zip(targets, recs, lrs):
            j = names.index(target.name)
            recipe += [{"target": target.name, "model": str(m), "lr": float(l),
                        "val_accuracy": float(a), "chosen": float(l) == lr}
                       for m, l, a in zip(rec["model"], rec["lr"], rec["val_accuracy"])]
            cell = next(cells)
            scratch += [{"target": target.name, "seed": s, "accuracy": float(a),
                         "linear_probe": float(cell["linear_probe"])}
                        for s, a in zip(cfg.seeds, cell["accuracy_seeds"])]
            for i, src in enumerate(cfg.sources):
                if i == j:
                    continue
                src_acc = models[src.name][1]
                cell = next(cells)
                row = {"target": target.name, "source": src.name, "lr": lr,
                       "source_accuracy": src_acc,
                       "linear_probe": float(cell["linear_probe"]),
                       "time_finetune": float(cell["time_finetune"]),
                       "time_pge": float(g["seconds_source"][i] + g["seconds_target"][j]),
                       "n_test": float(cell["n_test"]),
                       "num_classes": float(cell["num_classes"]),
                       **{k: float(D[i, j]) for k, D in dist.items()}}
                for seed, acc, curve in zip(cfg.seeds, cell["accuracy_seeds"], cell["curves"]):
                    rows.append({**row, "seed": seed, "accuracy": float(acc)})
                    curves += [{"target": target.name, "source": src.name, "seed": seed,
                                "epoch": e + 1, "train_loss": float(loss),
                                "train_accuracy": float(a)}
                               for e, (loss, a) in enumerate(zip(*curve))]
        skey = cell_key(cfg, "stability")
        stab = _cached(skey, lambda: stability_sweep(cfg, data, progress), use_cache)
        bar.update(1)
    bar.close()
    timing = pd.DataFrame({"task": names, "seconds_source": g["seconds_source"],
                           "seconds_target": g["seconds_target"]})
    meta = run_meta("pge", cfg, config_hash(cfg), t_start)
    results = base.Results("pge", pd.DataFrame(rows),
                           {"scratch": pd.DataFrame(scratch), "curves": pd.DataFrame(curves),
                            "recipe": pd.DataFrame(recipe), "stability": pd.DataFrame(stab),
                            "timing": timing}, meta, cfg)
    results.arrays = {"names": names, "gradients": g["source"],
                      "param_names": [str(n) for n in g["param_names"]],
                      "param_sizes": [int(s) for s in g["param_sizes"]]}
    return results

