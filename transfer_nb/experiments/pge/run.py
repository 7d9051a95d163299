"""PGE experiment: tasks, PGE and baseline matrices, transfer gain, stability."""
from __future__ import annotations

import contextlib
import time

import numpy as np

from transfer_nb.stats import accuracy_se, discrimination
from transfer_nb.experiments.pge.config import _CACHE_KIND, PGEConfig, TaskSpec, _key, config

def load_task(spec: TaskSpec, split: str, n: int, image_size: int, seed: int = 0):
    """One task's images as an ``ImageDataset`` with labels ``0..K-1``.

    Loads ``split`` of ``spec.dataset``, keeps ``spec.classes`` (relabelled in that
    order) and draws ``n`` images stratified by class with ``seed``
    (:func:`transfer_nb.data.base.stratified_subsample`).
    """
    from transfer_nb.data import load_dataset
    from transfer_nb.data.base import ImageDataset, stratified_subsample

    ds = load_dataset(spec.dataset, split=split, image_size=image_size, seed=seed,
                      **dict(spec.options))
    targets = ds.targets
    if spec.classes is not None:
        keep = [int(c) for c in spec.classes]
        bad = [c for c in keep if not 0 <= c < len(ds.classes)]
        if bad:
            raise ValueError(f"task {spec.name!r}: classes {bad} are not classes of "
                             f"{spec.dataset!r} (0..{len(ds.classes) - 1})")
        idx = np.flatnonzero(np.isin(targets, keep))
        remap = {c: i for i, c in enumerate(keep)}
        targets = np.array([remap[int(t)] for t in targets[idx]], dtype=np.int64)
        classes = [ds.classes[c] for c in keep]
    else:
        idx = np.arange(len(targets))
        classes = list(ds.classes)
    if n > len(idx):
        raise ValueError(f"task {spec.name!r}: n={n} requested but split {split!r} holds "
                         f"{len(idx)} images")
    pick = stratified_subsample(targets, n, seed)
    images = ds.images[idx[pick]]
    spec_dict = {"task": spec.name, "dataset": ds.spec, "classes": spec.classes, "n": n,
                 "subsample_seed": seed}
    return ImageDataset(images, targets[pick], classes, name=spec.name, spec=spec_dict)


def build_tasks(cfg: PGEConfig) -> dict:
    """``{task name: {"source", "target", "test", "pge"}}`` data sets for ``cfg``.

    The source set (``n_source``), the target set (``n_target``) and the PGE sample
    (``n_pge``) come from the training split, the test set from the test split.
    """
    names = [t.name for t in cfg.tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique; got {names}")
    out = {}
    for t in cfg.tasks:
        out[t.name] = {
            "source": load_task(t, "train", cfg.n_source, cfg.image_size, cfg.seed),
            "target": load_task(t, "train", cfg.n_target, cfg.image_size, cfg.seed + 1),
            "pge": load_task(t, "train", cfg.n_pge, cfg.image_size, cfg.seed + 2),
            "test": load_task(t, "test", cfg.n_test, cfg.image_size, cfg.seed),
        }
        ks = {len(d.classes) for d in out[t.name].values()}
        if ks != {5}:
            raise ValueError(f"task {t.name!r} has {sorted(ks)} classes; every task needs 5")
    return out


def build_model(cfg: PGEConfig, seed: int = 0):
    """The shared network: a randomly initialised ``small_cnn`` with 5 outputs."""
    import torch

    from transfer_nb.models.small import build_small_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_small_model("small_cnn", num_classes=5, width=cfg.width, depth=cfg.depth)


def _tensors(ds):
    return ds.tensors()


# ---------------------------------------------------------------------------- PGE
def _pge_kwargs(cfg: PGEConfig, restarts=None, max_batches=None, seed=None) -> dict:
    return dict(restarts=cfg.restarts if restarts is None else restarts,
                batch_size=cfg.pge_batch_size, max_batches=max_batches, init="reinit",
                seed=cfg.seed if seed is None else seed, device="cpu", progress=False)


def _task_gradients(model, data, kwargs) -> np.ndarray:
    """(R, p) expected gradients of one task, one row per restart."""
    import torch.nn.functional as F

    from transfer_nb.estimators.pge import pge
    out = pge(model, F.cross_entropy, data, data, return_details=True, **kwargs)
    return out["source_gradients"]


def pge_matrix(cfg: PGEConfig, tasks: dict, restarts=None, max_batches=None, seed=None):
    """PGE distance of every ordered pair, from one principal gradient per task.

    Returns
    -------
    dict
        ``distance`` (T, T) with ``distance[s, t] == pge(model, cross_entropy, s, t, ...)``
        (symmetric, zero diagonal), ``gradients`` (T, R, p) per-restart expected
        gradients, ``seconds`` (wall-clock), ``param_names`` and ``param_sizes``.
    """
    from transfer_nb.estimators.pge import pge_distance

    model = build_model(cfg, cfg.seed)
    kw = _pge_kwargs(cfg, restarts, max_batches, seed)
    names = [t.name for t in cfg.tasks]
    t0 = time.perf_counter()
    grads = np.stack([_task_gradients(model, _tensors(tasks[n]["pge"]), kw) for n in names])
    T = len(names)
    D = np.zeros((T, T))
    for i in range(T):
        for j in range(i + 1, T):
            D[i, j] = D[j, i] = pge_distance(grads[i], grads[j])
    seconds = time.perf_counter() - t0
    params = [(n, p.numel()) for n, p in model.named_parameters() if p.requires_grad]
    return {"distance": D, "gradients": grads, "seconds": seconds,
            "param_names": [n for n, _ in params], "param_sizes": [s for _, s in params]}


def baseline_matrix(cfg: PGEConfig, tasks: dict, restarts=None, seed=None):
    """Gradient-free baseline: distance of normalised mean features of random networks.

    For each restart ``r`` the network is initialised with seed ``seed + r`` (as PGE's
    restarts are); a task's mean ``pool`` feature (:func:`transfer_nb.features.
    extract_features`) is averaged over restarts and normalised; the distance of two
    tasks is the L2 distance of those unit vectors, in ``[0, 2]`` like PGE.
    """
    import torch

    from transfer_nb.features import extract_features
    restarts = cfg.restarts if restarts is None else restarts
    seed = cfg.seed if seed is None else seed
    names = [t.name for t in cfg.tasks]
    t0 = time.perf_counter()
    means = np.zeros((len(names), restarts, cfg.width * 2 ** (cfg.depth - 1)))
    for r in range(restarts):
        model = build_model(cfg, seed + r)
        for i, n in enumerate(names):
            X, _ = _tensors(tasks[n]["pge"])
            f = extract_features(model, X, layers=["pool"], batch_size=256, device="cpu",
                                 progress=False)["pool"]
            means[i, r] = f.mean(axis=0)
    m = means.mean(axis=1)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    D = np.linalg.norm(m[:, None, :] - m[None, :, :], axis=-1)
    np.fill_diagonal(D, 0.0)
    del torch
    return {"distance": D, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- ground truth
def _source_model(cfg: PGEConfig, ds, seed: int):
    from transfer_nb.models import train_source
    return train_source("small_cnn", ds, epochs=cfg.source_epochs, lr=cfg.source_lr,
                        batch_size=32, seed=seed, width=cfg.width, depth=cfg.depth,
                        progress=False, device="cpu")


def _finetune_accuracy(cfg: PGEConfig, model, target, test, seed: int) -> float:
    from transfer_nb import training
    training.fit(model, _tensors(target), epochs=cfg.target_epochs, lr=cfg.target_lr,
                 batch_size=cfg.batch_size, seed=seed, device="cpu")
    return training.evaluate(model, _tensors(test), device="cpu")


def transfer_gain(cfg: PGEConfig, tasks: dict, progress: bool = True) -> dict:
    """Measured transfer: accuracies with and without source training, per seed.

    For each seed: ``scratch[t]`` is the test accuracy of a random ``small_cnn``
    fine-tuned on target ``t``'s ``n_target`` images; ``transfer[s, t]`` that of the
    model trained on source ``s`` (cached) then fine-tuned the same way (same epochs,
    learning rate, batches and seed).  ``gain = transfer - scratch`` (diagonal: NaN).

    Returns
    -------
    dict
        ``scratch`` (S, T), ``transfer`` (S, T, T) and ``gain`` (S, T, T) over seeds
        ``S``, ``source_accuracy`` (S, T), ``seconds``.  Cached on disk by config.
    """
    from transfer_nb.cache import cached_arrays

    def compute():
        from tqdm.auto import tqdm
        names = [t.name for t in cfg.tasks]
        T, S = len(names), len(cfg.seeds)
        scratch = np.zeros((S, T))
        transfer = np.full((S, T, T), np.nan)
        src_acc = np.zeros((S, T))
        t0 = time.perf_counter()
        bar = tqdm(total=S * T * T, desc="transfer (source x target x seed)",
                   disable=not progress, mininterval=2)
        for k, seed in enumerate(cfg.seeds):
            for j, tn in enumerate(names):
                model = build_model(cfg, 1000 + seed)
                scratch[k, j] = _finetune_accuracy(cfg, model, tasks[tn]["target"],
                                                   tasks[tn]["test"], seed)
                bar.update()
            for i, sn in enumerate(names):
                src = _source_model(cfg, tasks[sn]["source"], seed)
                src_acc[k, i] = float(src.transfer_nb_source_accuracy)
                state = {n: v.clone() for n, v in src.state_dict().items()}
                for j, tn in enumerate(names):
                    if i == j:
                        continue
                    src.load_state_dict(state)
                    transfer[k, i, j] = _finetune_accuracy(cfg, src, tasks[tn]["target"],
                                                           tasks[tn]["test"], seed)
                    bar.update()
        bar.close()
        return {"scratch": scratch, "transfer": transfer, "source_accuracy": src_acc,
                "seconds": np.array(time.perf_counter() - t0)}

    out = dict(cached_arrays(_CACHE_KIND, _key(cfg, "gain"), compute))
    out["gain"] = out["transfer"] - out["scratch"][:, None, :]
    out["seconds"] = float(out["seconds"])
    return out


def discrimination_check(cfg: PGEConfig, gain: dict):
    """Per target: does the ground truth tell the sources apart?

    A target passes when the seed-mean transfer accuracies of its sources spread over
    at least 3 standard errors of a single accuracy (``sqrt(p (1 - p) / n_test)`` at
    the mean accuracy ``p``) and no accuracy (scratch or transfer, seed mean) reaches
    0.97.  Returns a DataFrame with one row per target.
    """
    import pandas as pd

    names = [t.name for t in cfg.tasks]
    tr = np.mean(gain["transfer"], axis=0)         # (T, T), NaN diagonal
    sc = gain["scratch"].mean(axis=0)
    rows = []
    for j, tn in enumerate(names):
        acc = np.delete(tr[:, j], j)
        se = accuracy_se(float(acc.mean()), cfg.n_test)
        chk = discrimination(acc, se, top=max(float(acc.max()), float(sc[j])))
        rows.append({"target": tn, "scratch": float(sc[j]), "best transfer": float(acc.max()),
                     "worst transfer": float(acc.min()), "spread": chk["spread"],
                     "3 SE": 3 * se, "discriminates": chk["passes"], "why not": chk["reason"]})
    return pd.DataFrame(rows).set_index("target")


# ---------------------------------------------------------------------------- stability
def stability(cfg: PGEConfig, tasks: dict, progress: bool = True):
    """Spread of PGE (and of the baseline) across seeds, with wall-clock.

    For every ``(restarts, max_batches)`` of the sweep and every pair of
    ``cfg.stability_pairs``, PGE is computed with ``stability_seeds`` different seeds
    (different restarts' weights and batch orders).  Returns a DataFrame with one row
    per (method, restarts, batches, pair): ``mean``, ``std`` over seeds and
    ``seconds`` (mean wall-clock of one pair's distance).
    """
    import pandas as pd
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from transfer_nb.estimators.pge import pge

    def base(cfg_r, seed):
        return baseline_matrix(cfg, tasks, restarts=cfg_r, seed=seed)

    names = [t.name for t in cfg.tasks]
    model = build_model(cfg, cfg.seed)
    rows = []
    settings = [(r, b) for r in cfg.stability_restarts for b in cfg.stability_batches]
    bar = tqdm(total=len(settings) * cfg.stability_seeds, desc="stability sweep",
               disable=not progress, mininterval=2)
    for R, B in settings:
        vals = {p: [] for p in cfg.stability_pairs}
        secs = []
        for s in range(cfg.stability_seeds):
            seed = cfg.seed + 100 * (s + 1)
            for a, b in cfg.stability_pairs:
                t0 = time.perf_counter()
                vals[(a, b)].append(pge(model, F.cross_entropy, _tensors(tasks[a]["pge"]),
                                        _tensors(tasks[b]["pge"]),
                                        **_pge_kwargs(cfg, R, B, seed)))
                secs.append(time.perf_counter() - t0)
            bar.update()
        for (a, b), v in vals.items():
            rows.append({"method": "PGE", "restarts": R, "batches": "all" if B is None else B,
                         "pair": f"{a} / {b}", "mean": float(np.mean(v)),
                         "std": float(np.std(v, ddof=1)), "seconds": float(np.mean(secs))})
    bar.close()
    for R in cfg.stability_restarts:
        vals = {p: [] for p in cfg.stability_pairs}
        t0 = time.perf_counter()
        for s in range(cfg.stability_seeds):
            D = base(R, cfg.seed + 100 * (s + 1))["distance"]
            for a, b in cfg.stability_pairs:
                vals[(a, b)].append(D[names.index(a), names.index(b)])
        sec = (time.perf_counter() - t0) / cfg.stability_seeds
        for (a, b), v in vals.items():
            rows.append({"method": "baseline", "restarts": R, "batches": "all",
                         "pair": f"{a} / {b}", "mean": float(np.mean(v)),
                         "std": float(np.std(v, ddof=1)), "seconds": sec})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- run
@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (``None``: unchanged), then restore.

    The networks here are tiny: a second thread buys nothing, and on a machine whose
    cores are shared it spin-waits (measured: a 16 px convolution 80 times slower with
    two threads than with one under load).
    """
    import torch
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run(cfg: PGEConfig | None = None, progress: bool = True, with_stability: bool = True) -> dict:
    """The whole experiment: tasks, PGE and baseline matrices, ground truth, stability."""
    cfg = config() if cfg is None else cfg
    with torch_threads(cfg.threads):
        t0 = time.perf_counter()
        tasks = build_tasks(cfg)
        res = {"config": cfg, "names": [t.name for t in cfg.tasks], "tasks": tasks,
               "pge": pge_matrix(cfg, tasks), "baseline": baseline_matrix(cfg, tasks),
               "gain": transfer_gain(cfg, tasks, progress=progress)}
        res["check"] = discrimination_check(cfg, res["gain"])
        res["stability"] = stability(cfg, tasks, progress=progress) if with_stability else None
        res["seconds"] = time.perf_counter() - t0
    return res
