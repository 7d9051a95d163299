"""Running the PGE experiment (cached per cell): task data, principal gradients, the
gradient-free baseline, the LP-FT truth of every ordered pair, and the stability sweep.

* :func:`task_data` -- per task: source sample, few-shot target training set, test set.
* :func:`body_params` -- the parameters PGE uses: every parameter except the head's.
* :func:`task_gradients` -- per-restart expected gradients of every task in both roles
  (and of the target role with its labels permuted: the control).
* :func:`baseline_features` -- per-restart mean features of random networks.
* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta
from transfer_nb.experiments.pge.presets import (VERSION, PGEConfig, config_hash,
                                                 source_specs, task_names)

__all__ = ["task_data", "pge_model", "body_params", "label_permutation", "task_gradients",
           "baseline_features", "pair_distances", "run"]

_KIND = "experiments_pge"
_PEN = "penultimate"


def _cached(key: dict, compute, use_cache: bool) -> dict:
    from transfer_nb.cache import cached_arrays, hash_inputs
    if not use_cache:
        return compute()
    return cached_arrays(_KIND, f"{key['part']}-{hash_inputs(version=VERSION, **key)}", compute)


# ------------------------------------------------------------------------------ data
def task_data(cfg: PGEConfig) -> dict:
    """``{task: {"pge": source sample, "train": few-shot set, "test": test set}}``.

    The source sample (``n_pge`` images of the task's train split, seed 0) is the task in
    the *source* role; the few-shot training set and the test set come from the one
    target loader (:func:`transfer_nb.experiments.base.load_target`), the few-shot set
    (the draw of :func:`~transfer_nb.experiments.pge.presets.train_seeds`: seed 0, or the
    first seed's with ``train_draw="per seed"``) being the task in the *target* role (the
    labelled images a user has).
    """
    from transfer_nb.data import load_dataset
    from transfer_nb.experiments.pge.presets import train_seeds
    out = {}
    for t in cfg.tasks:
        train, test = base.load_target(t, cfg.image_size, train_seeds(cfg)[0])
        sample = load_dataset(t.dataset, split="train", n=cfg.n_pge, image_size=cfg.image_size,
                              seed=0, **base.data_options(t))
        out[t.name] = {"pge": sample, "train": train, "test": test}
    return out


def pge_model(cfg: PGEConfig, num_classes: int, seed: int = 0):
    """The network PGE differentiates: a ``cfg.arch`` with ``num_classes`` outputs (the
    largest class count of the tasks; its head is re-drawn at every restart)."""
    import torch

    from transfer_nb.models.small import build_small_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_small_model(cfg.arch, num_classes=num_classes, width=cfg.width,
                                 depth=cfg.depth)


def body_params(model) -> list:
    """Names of the body's parameters: every trainable parameter except those of the last
    ``nn.Linear`` (the head, replaced by every transfer: its gradient would measure how
    the tasks' class indices line up, not how related the tasks are)."""
    import torch.nn as nn
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise ValueError("the model has no nn.Linear head")
    head = heads[-1] + "."
    return [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith(head)]


def label_permutation(num_classes: int, seed: int) -> np.ndarray:
    """A random derangement of ``0..K-1`` (no label keeps its index), fixed by ``seed``."""
    rng = np.random.default_rng([int(seed), 24])
    while True:
        perm = rng.permutation(num_classes)
        if num_classes < 2 or not np.any(perm == np.arange(num_classes)):
            return perm


def _num_classes(data: dict) -> int:
    return max(len(d["train"].classes) for d in data.values())


def task_gradients(cfg: PGEConfig, data: dict, restarts: int | None = None,
                   max_batches: int | None = None, seed: int | None = None,
                   control: bool = True) -> dict:
    """Per-restart expected gradients of every task, w.r.t. the body's parameters.

    :func:`transfer_nb.estimators.pge.pge` (``init="reinit"``: restart ``r`` re-draws every
    layer with seed ``seed + r``, so one task's gradients do not depend on the task it is
    compared with) on the source sample and on the few-shot target set, and (``control``)
    on the target set with its labels permuted by :func:`label_permutation`.

    Returns
    -------
    dict
        ``source``, ``target``, ``target_permuted``: (T, R, p) arrays in task order;
        ``seconds_source``, ``seconds_target``: (T,) wall-clock; ``param_names``,
        ``param_sizes`` of the body.
    """
    import torch.nn.functional as F

    from transfer_nb.estimators.pge import pge
    restarts = cfg.restarts if restarts is None else restarts
    seed = cfg.seed if seed is None else seed
    model = pge_model(cfg, _num_classes(data), cfg.seed)
    params = body_params(model)
    kw = dict(restarts=restarts, batch_size=cfg.pge_batch_size, max_batches=max_batches,
              init="reinit", params=params, seed=seed, device="cpu", progress=False,
              return_details=True)
    out = {k: [] for k in ("source", "target", "target_permuted", "seconds_source",
                           "seconds_target")}
    for k, name in enumerate(task_names(cfg)):
        d = data[name]
        X, y = d["train"].tensors()
        perm = label_permutation(len(d["train"].classes), cfg.seed + k)
        t0 = time.perf_counter()
        a = pge(model, F.cross_entropy, d["pge"].tensors(), (X, y), **kw)
        t1 = time.perf_counter()
        out["source"].append(a["source_gradients"])
        out["target"].append(a["target_gradients"])
        out["seconds_source"].append(t1 - t0)
        if control:
            b = pge(model, F.cross_entropy, (X, y), (X, y.new_tensor(perm)[y]), **kw)
            out["target_permuted"].append(b["target_gradients"])
            # the target role's share of the first call, measured by the second
            out["seconds_target"].append((time.perf_counter() - t1) / 2)
        else:
            out["seconds_target"].append(0.0)
    res = {k: np.asarray(v) for k, v in out.items()}
    res["seconds_source"] = res["seconds_source"] - res["seconds_target"]
    lookup = dict(model.named_parameters())
    res["param_names"] = np.asarray(params)
    res["param_sizes"] = np.asarray([lookup[n].numel() for n in params])
    return res


def baseline_features(cfg: PGEConfig, data: dict, restarts: int | None = None,
                      seed: int | None = None) -> dict:
    """Gradient-free baseline: per-restart mean penultimate features of random networks.

    Restart ``r`` builds the network with seed ``seed + r`` (as PGE's restarts re-draw
    theirs); returns ``source`` and ``target`` (T, R, d) mean features of the source
    sample and the few-shot set.  The baseline distance of two tasks is the distance of
    their unit-length restart-averaged means (:func:`pair_distances`).
    """
    from transfer_nb.features import extract_features
    restarts = cfg.restarts if restarts is None else restarts
    seed = cfg.seed if seed is None else seed
    K = _num_classes(data)
    names = task_names(cfg)
    out = {"source": [[] for _ in names], "target": [[] for _ in names]}
    for r in range(restarts):
        model = pge_model(cfg, K, seed + r)
        for i, n in enumerate(names):
            for role, ds in (("source", data[n]["pge"]), ("target", data[n]["train"])):
                f = extract_features(model, ds.tensors()[0], layers=[_PEN], batch_size=256,
                                     device="cpu", progress=False)[_PEN]
                out[role][i].append(np.asarray(f, dtype=np.float64).mean(axis=0))
    return {k: np.asarray(v) for k, v in out.items()}


def pair_distances(source, target, reduce: str = "expectation", restarts: int | None = None
                   ) -> np.ndarray:
    """(T, T) distances ``D[s, t]`` between task ``s`` in the source role and task ``t``
    in the target role from (T, R, p) per-restart vectors (the first ``restarts``), by
    :func:`transfer_nb.estimators.pge.pge_distance`; diagonal NaN."""
    from transfer_nb.estimators.pge import pge_distance
    R = source.shape[1] if restarts is None else restarts
    T = source.shape[0]
    D = np.full((T, T), np.nan)
    for i in range(T):
        for j in range(T):
            if i != j:
                D[i, j] = pge_distance(source[i, :R], target[j, :R], reduce=reduce)
    return D


# ------------------------------------------------------------------------------ run
def _draw_key(cfg: PGEConfig) -> dict:
    """The few-shot draws in a cache key (nothing for the stored run's one seed-0 draw,
    so its cells keep their keys)."""
    from transfer_nb.experiments.pge.presets import train_seeds
    return {} if cfg.train_draw == "seed 0" else {"draws": list(train_seeds(cfg))}


def _grad_arrays(cfg: PGEConfig, data: dict, use_cache: bool) -> dict:
    key = {"part": "gradients", "tasks": [dataclasses.asdict(t) for t in cfg.tasks],
           **{k: getattr(cfg, k) for k in ("arch", "width", "depth", "image_size", "n_pge",
                                            "restarts", "pge_batch_size", "seed")},
           **_draw_key(cfg)}

    def compute():
        g = task_gradients(cfg, data)
        f = baseline_features(cfg, data)
        return {**g, "feat_source": f["source"], "feat_target": f["target"]}
    return _cached(key, compute, use_cache)


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

    from transfer_nb.experiments.pge.stability import stability_sweep
    from transfer_nb.experiments.transrate.runner import _recipe_arrays, build_source
    from transfer_nb.experiments.pge.truth import (build_sources, scratch_spec,
                                                   target_recipe, transfer_cell)
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
        common = {k: getattr(cfg, k) for k in ("arch", "width", "depth", "image_size",
                                                "source_lr", "source_batch_size", "head_init",
                                                "epochs", "batch_size", "seeds")}
        common.update(_draw_key(cfg))
        rows, scratch, curves, recipe = [], [], [], []
        for target in [t for t in cfg.tasks if t.name in cfg.targets]:
            j = names.index(target.name)
            tkey = {"target": dataclasses.asdict(target), **common}
            rec = _cached({"part": "recipe", **tkey, "grid": cfg.lr_grid,
                           "m": cfg.recipe_models, "vf": cfg.validation_fraction,
                           "sources": [dataclasses.asdict(s) for s in cfg.sources]},
                          lambda: _recipe_arrays(*target_recipe(cfg, target, models)),
                          use_cache)
            lr = float(rec["chosen_lr"])
            recipe += [{"target": target.name, "model": str(m), "lr": float(l),
                        "val_accuracy": float(a), "chosen": float(l) == lr}
                       for m, l, a in zip(rec["model"], rec["lr"], rec["val_accuracy"])]
            spec = scratch_spec(cfg, target)
            cell = _cached({"part": "cell", **tkey, "source": dataclasses.asdict(spec),
                            "lr": lr}, lambda: transfer_cell(build_source(spec, cfg)[0],
                                                             target, cfg, lr), use_cache)
            scratch += [{"target": target.name, "seed": s, "accuracy": float(a),
                         "linear_probe": float(cell["linear_probe"])}
                        for s, a in zip(cfg.seeds, cell["accuracy_seeds"])]
            bar.update(1)
            for i, src in enumerate(cfg.sources):
                if i == j:
                    continue
                model, src_acc = models[src.name]
                cell = _cached({"part": "cell", **tkey, "source": dataclasses.asdict(src),
                                "lr": lr}, lambda: transfer_cell(model, target, cfg, lr),
                               use_cache)
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
                bar.update(1)
        skey = {"part": "stability", "tasks": [dataclasses.asdict(t) for t in cfg.tasks],
                **{k: getattr(cfg, k) for k in ("arch", "width", "depth", "image_size",
                                                 "n_pge", "pge_batch_size", "seed",
                                                 "stability_pairs", "stability_seeds",
                                                 "stability_restarts", "stability_batches")},
                **_draw_key(cfg)}
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

