"""The PGE experiment's stability sweep: the same pairs scored with many seeds (other
restart weights and batch orders) for each number of restarts and of batches, with the
paper's reduction (restart-averaged expectation, then normalised) and per-restart
normalisation, beside the gradient-free baseline."""
from __future__ import annotations

import dataclasses

import numpy as np

from transfer_nb.estimators.pge import pge_distance
from transfer_nb.experiments.pge.presets import PGEConfig
from transfer_nb.experiments.pge.gradients import baseline_features, task_gradients

__all__ = ["stability_sweep"]


def stability_sweep(cfg: PGEConfig, data: dict, progress: bool = False) -> dict:
    """Distances of ``cfg.stability_pairs`` per seed, setting and method.

    Seed ``k`` uses restart seeds ``cfg.seed + 1000 (k + 1) + r``; for each batch setting
    the per-restart gradients are computed once with the most restarts, and the distance
    with ``R`` restarts uses the first ``R`` of them (exactly what ``pge(restarts=R)``
    would return).  Returns columns (arrays of equal length): ``method`` ("PGE" |
    "baseline"), ``reduce``, ``restarts``, ``batches`` (0: all), ``seed``, ``pair``,
    ``distance``.
    """
    from tqdm.auto import tqdm

    pairs = list(cfg.stability_pairs)
    needed = list(dict.fromkeys(n for p in pairs for n in p))
    sub = dataclasses.replace(cfg, tasks=tuple(t for t in cfg.tasks if t.name in needed))
    idx = {t.name: i for i, t in enumerate(sub.tasks)}
    R = max(cfg.stability_restarts)
    rows = {k: [] for k in ("method", "reduce", "restarts", "batches", "seed", "pair",
                            "distance")}

    def add(method, reduce, r, b, k, pair, d):
        for key, v in zip(rows, (method, reduce, r, b, k, pair, d)):
            rows[key].append(v)

    bar = tqdm(total=cfg.stability_seeds * (len(cfg.stability_batches) + 1),
               desc="stability sweep", disable=not progress, mininterval=2)
    for k in range(cfg.stability_seeds):
        seed = cfg.seed + 1000 * (k + 1)
        for b in cfg.stability_batches:
            g = task_gradients(sub, data, restarts=R, max_batches=b or None, seed=seed,
                               control=False)
            for r in cfg.stability_restarts:
                for reduce in ("expectation", "mean_distance"):
                    for s, t in pairs:
                        add("PGE", reduce, r, b, k, f"{s} -> {t}",
                            pge_distance(g["source"][idx[s], :r], g["target"][idx[t], :r],
                                         reduce=reduce))
            bar.update()
        f = baseline_features(sub, data, restarts=R, seed=seed)
        for r in cfg.stability_restarts:
            for s, t in pairs:
                add("baseline", "expectation", r, 0, k, f"{s} -> {t}",
                    pge_distance(f["source"][idx[s], :r], f["target"][idx[t], :r]))
        bar.update()
    bar.close()
    return {k: np.asarray(v) for k, v in rows.items()}
