"""PGE (Qi et al., arXiv 2211.16299): task-to-task transferability from principal gradients.

The paper's core experiment on embedded data sets that work offline:

* **Tasks** (:func:`build_tasks`): several 5-class classification tasks cut from the
  embedded sets (class subsets of digits and glyphs, glyph fonts, shapes with and without
  a domain shift, textures), so that pairs range from close (the same characters in two
  fonts) to far (textures vs digits).  All have the same number of classes, so one
  network with one head serves every task.
* **PGE matrix** (:func:`pge_matrix`): the principal gradient of every task at the same
  randomly re-initialised weights (:func:`transfer_nb.estimators.pge`, ``init="reinit"``),
  and the distance of every pair.  Because the weights of restart ``r`` depend only on
  ``seed + r``, a task's principal gradient does not depend on the task it is compared
  with: it is computed once per task, and ``D[s, t]`` equals ``pge(model, loss, s, t)``.
* **Baseline** (:func:`baseline_matrix`): a task-similarity that needs no gradient: the
  distance between the tasks' normalised mean features of the same random networks.
* **Ground truth** (:func:`transfer_gain`): target accuracy after training on the source
  (:func:`transfer_nb.models.train_source`, cached) then fine-tuning on a data-scarce
  target (:func:`transfer_nb.training.fit`), minus the accuracy of the same fine-tuning
  budget from a random initialisation; several seeds.
* **Stability** (:func:`stability`): the spread of the distance across seeds for several
  numbers of restarts and batches, with wall-clock.

:func:`run` does all four; :func:`correlations`, :func:`report` and the ``plot_*``
functions turn the results into the notebook's tables, prose and figures.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TaskSpec", "PGEConfig", "config", "describe", "TASKS", "PAPER", "load_task",
           "build_tasks", "build_model", "pge_matrix", "baseline_matrix", "transfer_gain",
           "discrimination_check", "stability", "run", "pair_frame", "correlations",
           "per_target_correlations", "per_layer_similarity", "stability_table",
           "verdicts", "report", "paper_vs_measured", "plot_matrices", "plot_scatter",
           "plot_stability", "torch_threads"]

_CACHE_KIND = "experiments_pge"
_VERSION = "pge-exp-v1"

#: what the paper claims (qualitative: it reports rankings on Office/DomainNet-style tasks)
PAPER = {
    "agreement": "PGE agrees with the transfer results (lower distance, larger gain)",
    "stability": "PGE is more stable than earlier cross-task metrics",
    "efficiency": "PGE is cheaper than the transfer it predicts",
}


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TaskSpec:
    """A classification task cut from an embedded data set.

    ``classes``: indices of the data set's classes kept, relabelled ``0..K-1`` in this
    order (``None``: all).  ``options``: extra ``load_dataset`` pairs.
    """
    name: str
    dataset: str
    classes: tuple | None = None
    options: tuple = ()


_SHAPES5 = ("circle", "triangle", "square", "pentagon", "star")

#: the tasks, from close pairs (one character set, two fonts) to far ones
TASKS = (
    TaskSpec("glyphs 0-4 sans", "glyphs", None, (("chars", "01234"), ("fonts", ("DejaVu Sans",)))),
    TaskSpec("glyphs 0-4 serif", "glyphs", None,
             (("chars", "01234"), ("fonts", ("DejaVu Serif",)))),
    TaskSpec("glyphs 5-9 sans", "glyphs", None, (("chars", "56789"), ("fonts", ("DejaVu Sans",)))),
    TaskSpec("glyphs A-E sans", "glyphs", None, (("chars", "ABCDE"), ("fonts", ("DejaVu Sans",)))),
    TaskSpec("digits 0-4", "digits", (0, 1, 2, 3, 4)),
    TaskSpec("digits 5-9", "digits", (5, 6, 7, 8, 9)),
    TaskSpec("shapes", "shapes", None, (("classes", _SHAPES5),)),
    TaskSpec("shapes shifted", "shapes", None, (("classes", _SHAPES5), ("shift", 0.8))),
    TaskSpec("textures", "textures"),
)


@dataclass(frozen=True)
class PGEConfig:
    """Every setting of the experiment (see :func:`config` for the two presets)."""
    mode: str
    tasks: tuple = TASKS
    image_size: int = 16
    width: int = 8                 # small_cnn width (channels of the first stage)
    depth: int = 2
    n_source: int = 400            # source training images
    n_target: int = 25             # data-scarce target: 5 images per class
    n_test: int = 200
    n_pge: int = 100               # images per task for PGE and the baseline
    source_epochs: int = 6
    source_lr: float = 0.05
    target_epochs: int = 15
    target_lr: float = 0.02
    batch_size: int = 16
    seeds: tuple = (0, 1, 2)
    restarts: int = 5
    pge_batch_size: int = 25
    stability_pairs: tuple = ()
    stability_restarts: tuple = (1, 2, 4, 8)
    stability_batches: tuple = (1, 2, None)    # None: every batch
    stability_seeds: int = 5
    seed: int = 0
    threads: int | None = 1        # torch intra-op threads during run() (None: leave)
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def config(fast: bool | None = None) -> PGEConfig:
    """The experiment's configuration: ``fast`` preset (CI) or ``full``.

    ``fast=None`` reads :func:`transfer_nb.config.fast_mode`.  Both presets run the same
    protocol; fast mode uses six of the nine tasks, 16 px images, fewer source images
    and a smaller stability sweep so that it fits 4 minutes on 2 CPU cores from a cold
    cache.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        tasks = tuple(t for t in TASKS if t.name in (
            "glyphs 0-4 sans", "glyphs 0-4 serif", "glyphs A-E sans", "digits 0-4",
            "shapes", "textures"))
        return PGEConfig("fast", tasks=tasks, image_size=16, width=8, depth=2, n_source=300,
                         n_target=25, n_test=150, n_pge=100, source_epochs=5,
                         target_epochs=15, seeds=(0, 1, 2), restarts=5,
                         stability_pairs=(("glyphs 0-4 sans", "glyphs 0-4 serif"),
                                          ("glyphs 0-4 sans", "textures")),
                         stability_restarts=(1, 2, 4, 8), stability_batches=(1, None),
                         stability_seeds=4)
    return PGEConfig("full", tasks=TASKS, image_size=32, width=16, depth=2, n_source=600,
                     n_target=25, n_test=300, n_pge=200, source_epochs=8, target_epochs=20,
                     seeds=(0, 1, 2, 3, 4), restarts=8,
                     stability_pairs=(("glyphs 0-4 sans", "glyphs 0-4 serif"),
                                      ("glyphs 0-4 sans", "digits 0-4"),
                                      ("shapes", "shapes shifted"),
                                      ("glyphs 0-4 sans", "textures")),
                     stability_restarts=(1, 2, 4, 8, 16), stability_batches=(1, 2, 4, None),
                     stability_seeds=8)


def describe(cfg: PGEConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    lines = [f"mode: {cfg.mode}",
             f"tasks ({len(cfg.tasks)}, 5 classes each): " + ", ".join(t.name for t in cfg.tasks),
             f"network: small_cnn width {cfg.width} depth {cfg.depth}, {cfg.image_size} px",
             f"source training: {cfg.n_source} images, {cfg.source_epochs} epochs",
             f"target (data-scarce): {cfg.n_target} training images, {cfg.n_test} test "
             f"images, {cfg.target_epochs} epochs, seeds {list(cfg.seeds)}",
             f"PGE: {cfg.n_pge} images per task, {cfg.restarts} restarts, batches of "
             f"{cfg.pge_batch_size}",
             f"stability: restarts {list(cfg.stability_restarts)} x batches "
             f"{['all' if b is None else b for b in cfg.stability_batches]}, "
             f"{cfg.stability_seeds} seeds, {len(cfg.stability_pairs)} pairs"]
    return "\n".join(lines)


def _key(cfg: PGEConfig, part: str) -> str:
    from transfer_nb.cache import hash_inputs
    d = {k: v for k, v in cfg.__dict__.items() if k not in ("mode", "extra", "threads")}
    d["tasks"] = [t.__dict__ for t in cfg.tasks]
    import torch
    return hash_inputs(version=_VERSION, part=part, cfg=d, torch=torch.__version__)


# ---------------------------------------------------------------------------- tasks
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
        p = float(acc.mean())
        se = float(np.sqrt(max(p * (1 - p), 1e-12) / cfg.n_test))
        spread = float(acc.max() - acc.min())
        top = float(max(acc.max(), sc[j]))
        ok = spread >= 3 * se and top < 0.97
        why = "" if ok else ("ceiling (>= 0.97)" if top >= 0.97 else "spread < 3 SE")
        rows.append({"target": tn, "scratch": float(sc[j]), "best transfer": float(acc.max()),
                     "worst transfer": float(acc.min()), "spread": spread, "3 SE": 3 * se,
                     "discriminates": bool(ok), "why not": why})
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


def pair_frame(res: dict):
    """One row per (source, target) pair, source != target: scores and measured gain."""
    import pandas as pd

    names = res["names"]
    g = res["gain"]["gain"]
    ok = res["check"]["discriminates"]
    rows = []
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            if i == j:
                continue
            rows.append({"source": s, "target": t, "pge": res["pge"]["distance"][i, j],
                         "baseline": res["baseline"]["distance"][i, j],
                         "gain": float(np.mean(g[:, i, j])),
                         "gain_sd": float(np.std(g[:, i, j], ddof=1)) if len(g) > 1 else np.nan,
                         "target_ok": bool(ok[t])})
    return pd.DataFrame(rows)


def correlations(res: dict, n_boot: int = 1000):
    """``stats.rank_correlations`` of -PGE and -baseline with the gain, over the pairs
    whose target passes :func:`discrimination_check`: pooled, and within target (each
    target's mean score and gain subtracted first)."""
    import pandas as pd

    from transfer_nb.stats import rank_correlations
    df = pair_frame(res)
    df = df[df["target_ok"]]
    pooled = rank_correlations({"-PGE": -df["pge"].to_numpy(),
                                "-baseline": -df["baseline"].to_numpy()},
                               df["gain"].to_numpy(), n_boot=n_boot, seed=0)
    # within target: remove each target's mean score and mean gain, so that a target
    # that is both far from everything and hard to help cannot carry the correlation
    c = df.groupby("target")[["pge", "baseline", "gain"]].transform(lambda v: v - v.mean())
    within = rank_correlations({"-PGE within target": -c["pge"].to_numpy(),
                                "-baseline within target": -c["baseline"].to_numpy()},
                               c["gain"].to_numpy(), n_boot=n_boot, seed=0)
    return pd.concat([pooled, within])


def per_target_correlations(res: dict, n_boot: int = 1000):
    """Per target (the paper's use: pick a source for a target): Kendall tau of -PGE and
    -baseline with the gain over the sources, with intervals."""
    import warnings

    import pandas as pd

    from transfer_nb.stats import rank_correlations
    df = pair_frame(res)
    rows = []
    for t, sub in df.groupby("target", sort=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rc = rank_correlations({"-PGE": -sub["pge"].to_numpy(),
                                    "-baseline": -sub["baseline"].to_numpy()},
                                   sub["gain"].to_numpy(), n_boot=n_boot, seed=0)
        for score, r in rc.iterrows():
            rows.append({"target": t, "score": score, "kendall": r["kendall"],
                         "kendall_low": r["kendall_low"], "kendall_high": r["kendall_high"],
                         "n": int(r["n"]), "target_ok": bool(sub["target_ok"].iloc[0])})
    return pd.DataFrame(rows)


def per_layer_similarity(source_gradient, target_gradient, param_names, param_sizes):
    """Cosine similarity of two principal gradients, layer by layer.

    Parameters
    ----------
    source_gradient, target_gradient : array-like of shape (p,)
        Principal gradients (any scale) over the parameters ``param_names``, flattened
        in that order.
    param_names : sequence of str
        Parameter names (``model.named_parameters()``); a layer is the name without
        its last component (``stages.0.0.weight`` -> ``stages.0.0``).
    param_sizes : sequence of int
        Number of entries of each parameter.

    Returns
    -------
    pandas.Series
        Layer -> cosine similarity in ``[-1, 1]`` (NaN where a gradient is zero), in
        the order the layers first appear.
    """
    import pandas as pd

    from transfer_nb._validation import to_numpy
    a = np.asarray(to_numpy(source_gradient, "source_gradient"), dtype=np.float64).ravel()
    b = np.asarray(to_numpy(target_gradient, "target_gradient"), dtype=np.float64).ravel()
    sizes = [int(s) for s in param_sizes]
    if len(sizes) != len(param_names):
        raise ValueError(f"param_names has {len(param_names)} entries but param_sizes has "
                         f"{len(sizes)}; expected one size per name")
    if a.shape != b.shape or a.size != sum(sizes):
        raise ValueError(f"gradients have {a.size} and {b.size} entries but the parameters "
                         f"hold {sum(sizes)}; expected both to match")
    layers: dict = {}
    start = 0
    for name, size in zip(param_names, sizes):
        layer = name.rsplit(".", 1)[0] if "." in name else name
        layers.setdefault(layer, []).append(slice(start, start + size))
        start += size
    out = {}
    for layer, parts in layers.items():
        x = np.concatenate([a[s] for s in parts])
        y = np.concatenate([b[s] for s in parts])
        den = np.linalg.norm(x) * np.linalg.norm(y)
        out[layer] = float(x @ y / den) if den > 0 else np.nan
    return pd.Series(out, name="cosine similarity")


def stability_table(res: dict):
    """Mean over pairs of the seed-to-seed spread and of the wall-clock per setting,
    plus the noise-to-signal ratio: spread divided by the spread of the method's
    distance across all pairs of the matrix."""
    st = res["stability"]
    names = res["names"]
    iu = np.triu_indices(len(names), 1)
    signal = {"PGE": float(np.std(res["pge"]["distance"][iu])),
              "baseline": float(np.std(res["baseline"]["distance"][iu]))}
    tab = st.groupby(["method", "restarts", "batches"], sort=False).agg(
        std=("std", "mean"), seconds=("seconds", "mean")).reset_index()
    tab["noise/signal"] = [s / signal[m] for m, s in zip(tab["method"], tab["std"])]
    return tab


# ---------------------------------------------------------------------------- verdicts
def verdicts(res: dict) -> list[dict]:
    """Paper claim -> measured value -> verdict, each by a stated rule."""
    from transfer_nb.stats import interval_verdict
    rc = correlations(res)
    p, b = rc.loc["-PGE"], rc.loc["-baseline"]
    w = rc.loc["-PGE within target"]
    cfg = res["config"]
    tab = stability_table(res)
    pg = tab[(tab["method"] == "PGE") & (tab["restarts"] == max(cfg.stability_restarts))
             & (tab["batches"] == "all")].iloc[0]
    pg1 = tab[(tab["method"] == "PGE") & (tab["restarts"] == min(cfg.stability_restarts))
              & (tab["batches"] == "all")].iloc[0]
    bl = tab[(tab["method"] == "baseline") & (tab["restarts"] == max(cfg.stability_restarts))
             ].iloc[0]
    t_pge, t_gt = res["pge"]["seconds"], res["gain"]["seconds"]
    n_tgt = int(res["check"]["discriminates"].sum())
    out = [
        {"claim": "PGE agrees with transfer: Kendall tau of -PGE with the gain > 0",
         "rule": "95% interval of tau entirely above 0",
         "measured": f"tau {p['kendall']:.2f} [{p['kendall_low']:.2f}, "
                     f"{p['kendall_high']:.2f}], n={int(p['n'])} pairs of {n_tgt} targets",
         "verdict": interval_verdict(p["kendall_low"], p["kendall_high"], 0.0)},
        {"claim": "PGE agrees with transfer: Pearson r of -PGE with the gain > 0",
         "rule": "95% interval of r entirely above 0",
         "measured": f"r {p['pearson']:.2f} [{p['pearson_low']:.2f}, {p['pearson_high']:.2f}]",
         "verdict": interval_verdict(p["pearson_low"], p["pearson_high"], 0.0)},
        {"claim": "PGE agrees with transfer within each target (source choice)",
         "rule": "95% interval of the within-target tau entirely above 0",
         "measured": f"tau {w['kendall']:.2f} [{w['kendall_low']:.2f}, "
                     f"{w['kendall_high']:.2f}]",
         "verdict": interval_verdict(w["kendall_low"], w["kendall_high"], 0.0)},
        {"claim": "PGE beats a gradient-free task similarity",
         "rule": "PGE's tau interval entirely above the baseline's tau",
         "measured": f"PGE tau {p['kendall']:.2f} [{p['kendall_low']:.2f}, "
                     f"{p['kendall_high']:.2f}] vs baseline {b['kendall']:.2f}",
         "verdict": interval_verdict(p["kendall_low"], p["kendall_high"], b["kendall"])},
        {"claim": "PGE is stable (restarts average the noise out)",
         "rule": f"noise/signal with {int(pg['restarts'])} restarts < 0.25 and below "
                 f"{int(pg1['restarts'])} restart",
         "measured": f"{pg['noise/signal']:.3f} ({int(pg['restarts'])} restarts) vs "
                     f"{pg1['noise/signal']:.3f} ({int(pg1['restarts'])})",
         "verdict": "reproduced" if (pg["noise/signal"] < 0.25
                                     and pg["noise/signal"] < pg1["noise/signal"])
         else "not reproduced"},
        {"claim": "PGE is more stable than the baseline",
         "rule": "lower noise/signal at the same number of restarts",
         "measured": f"PGE {pg['noise/signal']:.3f} vs baseline {bl['noise/signal']:.3f}",
         "verdict": "reproduced" if pg["noise/signal"] < bl["noise/signal"]
         else "not reproduced"},
        {"claim": "PGE is efficient",
         "rule": "all pairs' PGE in < 10% of the transfer runs it predicts",
         "measured": f"{t_pge:.1f} s vs {t_gt:.1f} s ({100 * t_pge / t_gt:.1f}%)",
         "verdict": "reproduced" if t_pge < 0.1 * t_gt else "not reproduced"},
    ]
    return out


def paper_vs_measured(res: dict):
    """The closing table: what the paper says, what this run measured, the verdict."""
    import pandas as pd
    return pd.DataFrame(verdicts(res)).set_index("claim")


def report(res: dict) -> str:
    """Markdown prose of the run, every number computed from ``res``."""
    cfg = res["config"]
    chk = res["check"]
    ok = chk[chk["discriminates"]].index.tolist()
    bad = chk[~chk["discriminates"]]
    df = pair_frame(res)
    rc = correlations(res)
    p, b = rc.loc["-PGE"], rc.loc["-baseline"]
    w, wb = rc.loc["-PGE within target"], rc.loc["-baseline within target"]
    lines = [
        f"**This run ({cfg.mode} mode, {len(res['names'])} tasks, {len(cfg.seeds)} seeds).** "
        f"Transfer gains range from {df['gain'].min():+.3f} to {df['gain'].max():+.3f} "
        f"(mean {df['gain'].mean():+.3f}); {len(ok)} of {len(chk)} targets discriminate "
        f"between sources"
        + ("." if bad.empty else "; excluded: " + ", ".join(
            f"{t} ({w})" for t, w in bad["why not"].items()) + "."),
        f"Over the {int(p['n'])} remaining pairs, -PGE has Kendall tau "
        f"{p['kendall']:.2f} (95% interval {p['kendall_low']:.2f} to {p['kendall_high']:.2f}, "
        f"permutation p {p['kendall_p']:.3f}) and Pearson r {p['pearson']:.2f} "
        f"({p['pearson_low']:.2f} to {p['pearson_high']:.2f}) with the gain; the "
        f"gradient-free baseline has tau {b['kendall']:.2f} ({b['kendall_low']:.2f} to "
        f"{b['kendall_high']:.2f}) and r {b['pearson']:.2f}. Within targets (each "
        f"target's mean removed) -PGE has tau {w['kendall']:.2f} ({w['kendall_low']:.2f} to "
        f"{w['kendall_high']:.2f}), the baseline {wb['kendall']:.2f} ({wb['kendall_low']:.2f} "
        f"to {wb['kendall_high']:.2f}).",
        _stability_sentence(res),
        f"Computing every task's principal gradient and all distances took "
        f"{res['pge']['seconds']:.1f} s; the transfer runs it predicts took "
        f"{res['gain']['seconds']:.1f} s (wall-clock on a shared machine; cached runs "
        f"show the time of the run that computed them).",
    ]
    return "\n\n".join(lines)


def _stability_sentence(res: dict) -> str:
    if res.get("stability") is None:
        return "The stability sweep was not run."
    tab = stability_table(res)
    pge_all = tab[(tab["method"] == "PGE") & (tab["batches"] == "all")]
    pge_one = tab[(tab["method"] == "PGE") & (tab["batches"] != "all")]
    bl = tab[tab["method"] == "baseline"]
    lo, hi = pge_all.iloc[0], pge_all.iloc[-1]
    return (f"Across seeds, PGE with every batch has a noise/signal ratio of "
            f"{lo['noise/signal']:.2f} with {int(lo['restarts'])} restart(s) and "
            f"{hi['noise/signal']:.2f} with {int(hi['restarts'])}"
            + (f" (one batch per restart: {pge_one['noise/signal'].min():.2f} at best)"
               if len(pge_one) else "")
            + f"; the baseline's ranges from {bl['noise/signal'].max():.2f} to "
            f"{bl['noise/signal'].min():.2f}. One distance with {int(hi['restarts'])} "
            f"restarts took {hi['seconds']:.2f} s (wall-clock).")


# ---------------------------------------------------------------------------- plots
def plot_matrices(res: dict):
    """Heatmaps: PGE distance, baseline distance and mean transfer gain (source x target)."""
    import matplotlib.pyplot as plt

    names = res["names"]
    gain = np.mean(res["gain"]["gain"], axis=0)
    mats = [(res["pge"]["distance"], "PGE distance (lower = closer)", "viridis_r"),
            (res["baseline"]["distance"], "baseline: mean-feature distance", "viridis_r"),
            (gain, "transfer gain (row source -> column target)", "RdBu")]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), layout="constrained")
    for ax, (m, title, cmap) in zip(axes, mats):
        m = np.array(m, dtype=float)
        if cmap == "RdBu":
            lim = np.nanmax(np.abs(m))
            im = ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
        else:
            m = m.copy()
            np.fill_diagonal(m, np.nan)
            im = ax.imshow(m, cmap=cmap)
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.7)
    return fig


def plot_scatter(res: dict):
    """Gain vs PGE and vs the baseline, one point per pair (seed spread as error bars)."""
    import matplotlib.pyplot as plt

    df = pair_frame(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, col, label in zip(axes, ("pge", "baseline"),
                              ("PGE distance", "baseline mean-feature distance")):
        for ok, marker in ((True, "o"), (False, "x")):
            sub = df[df["target_ok"] == ok]
            if len(sub):
                ax.errorbar(sub[col], sub["gain"], yerr=sub["gain_sd"], fmt=marker, alpha=0.7,
                            label="target discriminates" if ok else "target excluded")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("transfer gain (accuracy)")
        ax.legend(fontsize=8)
    return fig


def plot_stability(res: dict):
    """Seed-to-seed spread of the distance and wall-clock vs the number of restarts."""
    import matplotlib.pyplot as plt

    tab = stability_table(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for (m, bt), sub in tab.groupby(["method", "batches"], sort=False):
        label = f"{m}, batches: {bt}" if m == "PGE" else "baseline (mean features)"
        axes[0].plot(sub["restarts"], sub["noise/signal"], "o-", label=label)
        axes[1].plot(sub["restarts"], sub["seconds"], "o-", label=label)
    axes[0].set_ylabel("spread across seeds / spread across pairs")
    axes[1].set_ylabel("seconds per distance (wall-clock)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("restarts")
        ax.legend(fontsize=8)
    return fig
