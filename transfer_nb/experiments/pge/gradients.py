"""What PGE measures, per task: the principal gradients of every task in both roles and
the gradient-free baseline (used by :mod:`~transfer_nb.experiments.pge.runner` and by
:mod:`~transfer_nb.experiments.pge.stability`, which both build on this module).

* :func:`task_data` -- per task: source sample, few-shot target training set, test set.
* :func:`pge_model`, :func:`body_params` -- the network PGE differentiates and the
  parameters it uses: every parameter except the head's.
* :func:`task_gradients` -- per-restart expected gradients of every task in both roles
  (and of the target role with its labels permuted by :func:`label_permutation`: the
  control).
* :func:`baseline_features` -- per-restart mean features of random networks.
* :func:`pair_distances` -- the (T, T) distances of every ordered pair.
"""
from __future__ import annotations

import time

import numpy as np

from transfer_nb.estimators.pge import pge, pge_distance
from transfer_nb.experiments import base
from transfer_nb.experiments.pge.presets import PGEConfig, task_names, train_seeds

__all__ = ["task_data", "pge_model", "body_params", "label_permutation", "task_gradients",
           "baseline_features", "pair_distances"]

_PEN = "penultimate"


def task_data(cfg: PGEConfig) -> dict:
    """``{task: {"pge": source sample, "train": few-shot set, "test": test set}}``.

    The source sample (``n_pge`` images of the task's train split, seed 0) is the task in
    the *source* role; the few-shot training set and the test set come from the one
    target loader (:func:`transfer_nb.experiments.base.load_target`), the few-shot set
    (the draw of :func:`~transfer_nb.experiments.pge.presets.train_seeds`: seed 0, or the
    first seed's with ``train_draw="per seed"``) being the task in the *target* role (the
    labelled images a user has).
    """
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
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

    from transfer_nb.models.small import build_small_model  # lazy: pulls in torch
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
    from transfer_nb.features import extract_features  # lazy: pulls in torch
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
    R = source.shape[1] if restarts is None else restarts
    T = source.shape[0]
    D = np.full((T, T), np.nan)
    for i in range(T):
        for j in range(T):
            if i != j:
                D[i, j] = pge_distance(source[i, :R], target[j, :R], reduce=reduce)
    return D

