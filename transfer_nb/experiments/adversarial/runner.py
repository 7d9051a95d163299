"""Running the adversarial-sources experiment: source data, sources (plain, adversarial,
semi-supervised), one cached cell per (source, seed), and PGD examples for the widget."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.coding_rate import transrate
from transfer_nb.estimators import logme
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta, target_draws
from transfer_nb.experiments.adversarial.presets import (SOURCE_KINDS, VERSION, AdversarialConfig,
                                                         config_hash, imagenet_equivalent)
from transfer_nb.experiments.gates import plateau

__all__ = ["source_data", "typical_norm", "target_data", "build_source", "score_features",
           "run_cell", "run", "adversarial_examples"]

_CACHE_KIND = "experiments_adversarial"


# ------------------------------------------------------------------------------ data
def typical_norm(images) -> float:
    """Root mean square of the images' L2 norms (pixels in [0, 1]): the scale of eps."""
    import torch
    x = torch.as_tensor(images, dtype=torch.float64).flatten(1)
    return float(x.pow(2).sum(1).mean().sqrt())


def source_data(cfg: AdversarialConfig) -> dict:
    """``{"labeled", "unlabeled", "test", "norm"}``: disjoint parts of the source data set
    and :func:`typical_norm` of the labelled images (eps fractions are of it).

    Labelled and unlabelled images are disjoint subsets of the train split (the same for
    every seed: only the models vary); the unlabelled part's labels are never used.
    """
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    opts = dict(cfg.source_options)
    train = load_dataset(cfg.source, "train", image_size=cfg.image_size, seed=0, **opts)
    need = cfg.n_labeled + cfg.n_unlabeled
    if need > len(train):
        raise ValueError(f"n_labeled + n_unlabeled = {need} but the {cfg.source!r} train split "
                         f"has {len(train)} images")
    order = np.random.default_rng(0).permutation(len(train))
    test = load_dataset(cfg.source, "test", n=cfg.n_source_test, image_size=cfg.image_size,
                        seed=0, **opts)
    labeled = train.subset(np.sort(order[:cfg.n_labeled]))
    x, _ = labeled.tensors(np.arange(len(labeled)))
    return {"labeled": labeled, "unlabeled": train.subset(np.sort(order[cfg.n_labeled:need])),
            "test": test, "norm": typical_norm(x)}


def target_data(cfg: AdversarialConfig, seed: int, target: int = 0):
    """``(fit, val, test)`` of ``cfg.targets[target]``: ``per_class`` labelled and
    ``val_per_class`` validation images per class, disjoint, drawn by ``seed`` from the
    training split (:func:`transfer_nb.experiments.base.load_target`); the same test set
    for every seed."""
    spec = cfg.targets[target]
    wider = dataclasses.replace(spec, per_class=spec.per_class + cfg.val_per_class)
    train, test = base.load_target(wider, cfg.image_size, seed)
    y = np.asarray(train.targets)
    fit = np.concatenate([np.flatnonzero(y == c)[:spec.per_class] for c in np.unique(y)])
    val = np.setdiff1d(np.arange(len(y)), fit)
    return train.subset(np.sort(fit)), train.subset(val), test


# --------------------------------------------------------------------------- sources
def _perturb(cfg: AdversarialConfig, eps_pixels: float, seed: int):
    from transfer_nb.adversarial import pgd_perturbation  # lazy: pulls in torch
    if eps_pixels == 0:
        return None
    return pgd_perturbation(eps_pixels, norm=cfg.norm, steps=cfg.attack_steps, seed=seed)


def build_source(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict,
                 progress: bool = False):
    """Train (or load from the cache) one source model.

    Parameters
    ----------
    kind : {"standard", "adversarial", "semi", "semi+adversarial"}
        ``"standard"`` / ``"adversarial"``: trained on the labelled images with an
        L2 PGD adversary (``cfg.attack_steps`` steps) of radius ``eps`` (``eps=0``: none,
        standard training).  ``"semi"`` / ``"semi+adversarial"``: a student trained on
        the labelled images plus the unlabelled ones that the standard model of the same
        seed (the teacher) labels with confidence ``>= cfg.threshold``.
    eps : float
        Adversary radius as a fraction of ``data["norm"]`` (0 for ``"standard"`` and
        ``"semi"``).
    data : dict
        :func:`source_data`.

    Returns
    -------
    torch.nn.Module
        With ``transfer_nb_n_pseudo`` (pseudo-labelled images used; 0 without) and
        ``transfer_nb_train_curve`` (its learning curve).
    """
    from transfer_nb.adversarial.semi import semi_supervised_dataset  # lazy: pulls in torch
    from transfer_nb.models import train_source  # lazy: pulls in torch
    if kind not in SOURCE_KINDS:
        raise ValueError(f"kind must be one of {list(SOURCE_KINDS)}, got {kind!r}")
    if (eps > 0) != kind.endswith("adversarial"):
        need = "> 0" if kind.endswith("adversarial") else "= 0"
        raise ValueError(f"kind {kind!r} needs eps {need}, got {eps!r}")
    train = dict(epochs=cfg.source_epochs, lr=cfg.source_lr, batch_size=cfg.source_batch, seed=seed,
                 width=cfg.width, progress=progress, device="cpu")
    dataset = data["labeled"]
    if kind.startswith("semi"):
        teacher = train_source(cfg.arch, data["labeled"], **train)
        dataset = semi_supervised_dataset(teacher, data["labeled"], data["unlabeled"],
                                          threshold=cfg.threshold)
    pixels = float(eps) * float(data["norm"])
    model = train_source(cfg.arch, dataset, perturb=_perturb(cfg, pixels, seed),
                         adversarial_eps=pixels, **train)
    model.transfer_nb_n_pseudo = len(dataset) - len(data["labeled"])
    return model


# ------------------------------------------------------------------------- one cell
def score_features(Z, y, source_accuracy: float = float("nan")) -> dict:
    """TransRate and LogME of features ``Z`` with labels ``y``, and the trivial baseline.

    ``source_accuracy`` is passed through as the baseline score (pick the most
    accurate source).
    """
    Z = np.asarray(Z, dtype=np.float64)
    return {"transrate": float(transrate(Z, y)), "logme": float(logme(Z, y)),
            "source_accuracy": float(source_accuracy)}


def _lp_ft(cfg: AdversarialConfig, model, fit, val, test, seed: int) -> dict:
    """LP-FT with the recipe of ``cfg.ft_grid`` best on the validation images."""
    from transfer_nb.training import transfer  # lazy: pulls in torch
    kw = dict(batch_size=16, seed=seed, progress=False, device="cpu", head_init="probe")
    recipes = [{"lr": float(lr), "epochs": int(ep)} for lr, ep in cfg.ft_grid]
    if len(recipes) > 1:
        best, _ = transfer.choose_recipe({"source": model}, fit, val, recipes, **kw)
    else:
        best = recipes[0]
    out = transfer.fine_tune(model, fit, test, **kw, **best)
    return {"fine_tune": out["accuracy"], "ft_lr": best["lr"], "ft_epochs": best["epochs"],
            "ft_curve": np.asarray(out["train_accuracy_curve"], dtype=np.float64)}


_REPORTS = "read by the reports only, after the cells"
#: every cell's key holds every config field (:func:`base.cell_key`) but these, each with
#: the reason it cannot change that cell
CELL_EXCLUDE = {
    "cell": {"mode": "a preset's name: every field it sets is in the key itself (it picks "
                     "only the number of worker processes)",
             **dict.fromkeys(("n_boot", "primary", "moderate_eps", "truth", "pool_targets"),
                             _REPORTS)},
}


def cell_key(cfg: AdversarialConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def run_cell(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict | None = None,
             progress: bool = False, use_cache: bool = True) -> list[dict]:
    """Every measurement of one (source, seed): one row of :func:`run` per target.

    Returns
    -------
    list of dict
        One per target of ``cfg.targets``: ``target``, ``kind, eps`` (fraction of
        ||x||), ``eps_pixels``, ``imagenet_eps``, ``seed``,
        ``n_pseudo``, ``source_clean``, ``source_robust`` (source test accuracy, clean
        and under the ``cfg.eval_eps`` attack), ``source_plateau`` (its learning curve
        flattened), ``linear_probe`` and ``fine_tune`` (LP-FT) target test accuracy,
        ``val_probe`` (the probe on the validation images: what chooses eps),
        ``ft_lr, ft_epochs`` (LP-FT's validation-chosen recipe), :func:`score_features`
        of the source's penultimate features of the labelled target images (what a
        practitioner has), ``n_test``, ``num_classes``, and ``source_curve`` /
        ``ft_curve`` (lists, per epoch).
    """
    from transfer_nb import adversarial, training  # lazy: pulls in torch
    from transfer_nb.training import transfer  # lazy: pulls in torch
    from transfer_nb.features import extract_features  # lazy: pulls in torch

    def compute():
        d = data if data is not None else source_data(cfg)
        model = build_source(cfg, kind, eps, seed, d, progress=progress)
        clean = training.evaluate(model, d["test"])
        robust = adversarial.robust_accuracy(model, d["test"], cfg.eval_eps * d["norm"],
                                             norm=cfg.norm, steps=cfg.eval_steps, seed=seed)
        curve = np.asarray(model.transfer_nb_train_curve, dtype=np.float64)
        out = {"n_pseudo": np.array(model.transfer_nb_n_pseudo), "norm": np.array(d["norm"]),
               "source_clean": np.array(clean), "source_robust": np.array(robust),
               "source_plateau": np.array(float(plateau(curve))), "source_curve": curve}
        for i in range(len(cfg.targets)):
            fit, val, te = target_data(cfg, seed, i)
            z = {k: extract_features(model, ds, layers=["pool"], device="cpu",
                                     progress=False)["pool"]
                 for k, ds in (("fit", fit), ("val", val), ("test", te))}
            m = {"linear_probe": transfer.linear_probe(z["fit"], fit.targets, z["test"],
                                                       te.targets, seed=seed),
                 "val_probe": transfer.linear_probe(z["fit"], fit.targets, z["val"],
                                                    val.targets, seed=seed),
                 **_lp_ft(cfg, model, fit, val, te, seed),
                 **score_features(z["fit"], fit.targets, clean),
                 "n_test": len(te), "num_classes": len(fit.classes)}
            out.update({f"t{i}__{k}": np.asarray(v) for k, v in m.items()})
        return out

    key = cell_key(cfg, "cell", kind=kind, eps=float(eps), seed=int(seed))
    arrays = base.cached_cell(_CACHE_KIND, VERSION, key, compute, use_cache)
    shared = {"kind": kind, "eps": float(eps), "seed": int(seed),
              "eps_pixels": float(eps) * float(arrays["norm"]),
              "imagenet_eps": imagenet_equivalent(eps), "eval_eps": float(cfg.eval_eps)}
    rows = []
    for i, spec in enumerate(cfg.targets):
        row = {"target": spec.name, **shared}
        for k, v in arrays.items():
            if "__" in k and not k.startswith(f"t{i}__"):
                continue
            k = k.split("__", 1)[-1]
            v = np.asarray(v)
            if k in ("source_curve", "ft_curve"):
                row[k] = [float(a) for a in v.ravel()]
            elif k in ("n_pseudo", "ft_epochs", "n_test", "num_classes"):
                row[k] = int(v)
            elif k == "source_plateau":
                row[k] = bool(v)
            elif k != "norm":
                row[k] = float(v)
        rows.append(row)
    return rows


def _cells(cfg: AdversarialConfig) -> list[tuple[str, float]]:
    cells = [("standard" if e == 0 else "adversarial", float(e)) for e in cfg.eps]
    return cells + [("semi", 0.0), ("semi+adversarial", float(cfg.semi_eps))]


def _worker(args):
    cfg, kind, eps, seed, use_cache = args
    with torch_threads(1):  # measured faster than 2 threads for these tiny convs
        return run_cell(cfg, kind, eps, seed, use_cache=use_cache)


def _workers(cfg: AdversarialConfig) -> int:
    """Processes: ``$TRANSFER_NB_WORKERS``, else 2 in full (or confirm) mode on >= 2
    cores, else 1."""
    env = os.environ.get("TRANSFER_NB_WORKERS")
    if env:
        return max(1, int(env))
    return 2 if cfg.mode != "fast" and (os.cpu_count() or 1) >= 2 else 1


def _curves(rows) -> "object":
    import pandas as pd
    first = rows[0]["target"] if rows else None
    out = [{"target": r["target"], "kind": r["kind"], "eps": r["eps"], "seed": r["seed"],
            "curve": name, "epoch": i + 1, "accuracy": a}
           for r in rows for name in ("source_curve", "ft_curve") for i, a in enumerate(r[name])
           if name == "ft_curve" or r["target"] == first]     # one source curve per source
    return pd.DataFrame(out, columns=["target", "kind", "eps", "seed", "curve", "epoch",
                                      "accuracy"])


def run(cfg: AdversarialConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Every (source, seed) of the experiment.

    ``Results.table`` has one row per :func:`run_cell` (curves moved to
    ``tables["curves"]``, one row per epoch); ``meta`` the config hash, the source
    images' typical norm and the wall-clock.  Cells run on 1 torch thread each, in
    ``$TRANSFER_NB_WORKERS`` processes (default: 2 in full mode, 1 in fast mode);
    every cell is seeded, so the table does not depend on the number of processes.
    """
    import pandas as pd
    from tqdm.auto import tqdm
    if not isinstance(cfg, AdversarialConfig):
        raise ValueError(f"cfg must come from adversarial.config(), got {type(cfg).__name__}")
    t0 = time.perf_counter()
    data = source_data(cfg)
    # standard sources first: they are the semi-supervised sources' teachers
    order = {"standard": 0, "adversarial": 1, "semi": 2, "semi+adversarial": 3}
    jobs = sorted([(k, e, s) for s in cfg.seeds for k, e in _cells(cfg)],
                  key=lambda j: (order[j[0]], j[2], j[1]))
    n_workers = min(base.parallel_width(_workers(cfg)), len(jobs))   # --jobs / --dask win
    bar = tqdm(total=len(jobs), desc="sources", disable=not progress)
    if n_workers > 1:
        cells = base.parallel_map(_worker, [((cfg, k, e, s, use_cache),) for k, e, s in jobs],
                                  n_workers, bar)
        rows = [row for cell in cells for row in cell]
    else:
        with torch_threads(1):  # measured faster than 2 threads for these tiny convs
            rows = []
            for k, e, s in jobs:
                rows.extend(run_cell(cfg, k, e, s, data=data, use_cache=use_cache))
                bar.update(1)
    bar.close()
    curves = _curves(rows)
    table = pd.DataFrame([{k: v for k, v in r.items() if not k.endswith("_curve")} for r in rows])
    rank = {spec.name: i for i, spec in enumerate(cfg.targets)}
    table = table.sort_values(["target", "seed", "kind", "eps"], key=lambda c: c.map(order)
                              if c.name == "kind" else (c.map(rank) if c.name == "target" else c)
                              ).reset_index(drop=True)
    table["source_classes"] = len(data["labeled"].classes)
    meta = run_meta("adversarial", cfg, config_hash(cfg), t0,
                    source_norm=round(float(data["norm"]), 4), workers=n_workers,
                    # images per class drawn (labelled + validation) for the first seed
                    target_draws=target_draws(cfg.targets, cfg.seeds[0],
                                              cfg.val_per_class))
    return base.Results("adversarial", table, {"curves": curves}, meta, cfg)


def adversarial_examples(model, images, labels, eps: float, norm: str = "l2", steps: int = 5,
                         seed: int = 0) -> dict:
    """PGD adversarial versions of a few images and the model's predictions on both.

    ``eps`` is in pixels (a fraction of the config times ``source_data(cfg)["norm"]``).

    Returns
    -------
    dict
        ``clean`` and ``adversarial`` (numpy ``(n, H, W, 3)`` in [0, 1]), ``delta``
        (their difference), ``pred_clean``, ``pred_adversarial`` (int arrays) and
        ``l2`` (the per-image L2 norm of ``delta``).
    """
    import torch
    from transfer_nb import adversarial, training  # lazy: pulls in torch
    x = torch.as_tensor(images).float()
    y = torch.as_tensor(labels).long()
    x_adv = adversarial.pgd(model, x, y, eps, norm=norm, steps=steps,
                            generator=torch.Generator().manual_seed(seed))
    pred = training.predict(model, x).argmax(1)
    pred_adv = training.predict(model, x_adv).argmax(1)
    delta = (x_adv - x)
    return {"clean": x.permute(0, 2, 3, 1).numpy(),
            "adversarial": x_adv.permute(0, 2, 3, 1).numpy(),
            "delta": delta.permute(0, 2, 3, 1).numpy(), "pred_clean": pred.astype(np.int64),
            "pred_adversarial": pred_adv.astype(np.int64),
            "l2": delta.flatten(1).norm(dim=1).numpy()}
