"""Running the adversarial-sources experiment: source data, sources (plain, adversarial,
semi-supervised), one cached cell per (source, seed), and PGD examples for the widget."""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb.experiments import base
from transfer_nb.experiments.adversarial.presets import (SOURCE_KINDS, VERSION, AdversarialConfig,
                                                         config_hash)

__all__ = ["source_data", "target_data", "build_source", "score_features", "run_cell", "run",
           "adversarial_examples"]

_CACHE_KIND = "experiments_adversarial"


# ------------------------------------------------------------------------------ data
def source_data(cfg: AdversarialConfig) -> dict:
    """``{"labeled", "unlabeled", "test"}``: disjoint parts of the source data set.

    Labelled and unlabelled images are disjoint subsets of the train split (the same for
    every seed: only the models vary); the unlabelled part's labels are never used.
    """
    from transfer_nb.data import load_dataset
    train = load_dataset(cfg.source, "train", image_size=cfg.image_size, seed=0)
    need = cfg.n_labeled + cfg.n_unlabeled
    if need > len(train):
        raise ValueError(f"n_labeled + n_unlabeled = {need} but the {cfg.source!r} train split "
                         f"has {len(train)} images")
    order = np.random.default_rng(0).permutation(len(train))
    test = load_dataset(cfg.source, "test", n=cfg.n_source_test, image_size=cfg.image_size, seed=0)
    return {"labeled": train.subset(np.sort(order[:cfg.n_labeled])),
            "unlabeled": train.subset(np.sort(order[cfg.n_labeled:need])), "test": test}


def target_data(cfg: AdversarialConfig, seed: int):
    """``(train, test)`` of the target (:func:`transfer_nb.experiments.base.load_target`):
    ``per_class`` labelled images per class drawn by ``seed``, the same test set for all."""
    return base.load_target(cfg.targets[0], cfg.image_size, seed)


# --------------------------------------------------------------------------- sources
def _perturb(cfg: AdversarialConfig, eps: float, seed: int):
    from transfer_nb.adversarial import pgd_perturbation
    if eps == 0:
        return None
    return pgd_perturbation(eps, norm=cfg.norm, steps=cfg.attack_steps, seed=seed)


def build_source(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict,
                 progress: bool = False):
    """Train (or load from the cache) one source model.

    Parameters
    ----------
    kind : {"standard", "adversarial", "semi", "semi+adversarial"}
        ``"standard"`` / ``"adversarial"``: trained on the labelled images with an
        adversary of radius ``eps`` (``eps=0``: none, standard training).  ``"semi"`` /
        ``"semi+adversarial"``: a student trained on the labelled images plus the
        unlabelled ones that the standard model of the same seed (the teacher) labels
        with confidence ``>= cfg.threshold``.
    eps : float
        Adversary radius (0 for ``"standard"`` and ``"semi"``).
    data : dict
        :func:`source_data`.

    Returns
    -------
    torch.nn.Module
        With ``transfer_nb_n_pseudo`` (pseudo-labelled images used; 0 without).
    """
    from transfer_nb.adversarial_semi import semi_supervised_dataset
    from transfer_nb.models import train_source
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
    model = train_source(cfg.arch, dataset, perturb=_perturb(cfg, eps, seed),
                         adversarial_eps=eps, **train)
    model.transfer_nb_n_pseudo = len(dataset) - len(data["labeled"])
    return model


# ------------------------------------------------------------------------- one cell
def score_features(Z, y, source_accuracy: float = float("nan")) -> dict:
    """TransRate and LogME of features ``Z`` with labels ``y``, and the trivial baseline.

    ``source_accuracy`` is passed through as the baseline score (pick the most
    accurate source).
    """
    from transfer_nb.coding_rate import transrate
    from transfer_nb.estimators import logme
    Z = np.asarray(Z, dtype=np.float64)
    return {"transrate": float(transrate(Z, y)), "logme": float(logme(Z, y)),
            "source_accuracy": float(source_accuracy)}


def _cell_key(cfg: AdversarialConfig, kind: str, eps: float, seed: int) -> str:
    from transfer_nb import cache
    return cache.hash_inputs(version=VERSION, cfg=dataclasses.asdict(cfg), kind=kind,
                             eps=float(eps), seed=int(seed))


def run_cell(cfg: AdversarialConfig, kind: str, eps: float, seed: int, data: dict | None = None,
             progress: bool = False, use_cache: bool = True) -> dict:
    """Every measurement of one (source, seed): one row of :func:`run`.

    Returns
    -------
    dict
        ``kind, eps, seed, n_pseudo, source_clean, source_robust`` (source test
        accuracy, clean and under the ``cfg.eval_eps`` attack), ``linear_probe`` and
        ``fine_tune`` (target test accuracy), and :func:`score_features` of the
        source's penultimate target features (training images only: what a
        practitioner has).
    """
    from transfer_nb import adversarial, cache, training, transfer
    from transfer_nb.features import extract_features

    def compute():
        d = data if data is not None else source_data(cfg)
        model = build_source(cfg, kind, eps, seed, d, progress=progress)
        clean = training.evaluate(model, d["test"])
        robust = adversarial.robust_accuracy(model, d["test"], cfg.eval_eps, norm=cfg.norm,
                                             steps=cfg.eval_steps, seed=seed)
        tr, te = target_data(cfg, seed)
        z_tr = extract_features(model, tr, layers=["pool"], device="cpu", progress=False)["pool"]
        z_te = extract_features(model, te, layers=["pool"], device="cpu", progress=False)["pool"]
        probe = transfer.linear_probe(z_tr, tr.targets, z_te, te.targets, seed=seed)
        ft = transfer.fine_tune(model, tr, te, epochs=cfg.ft_epochs, lr=cfg.ft_lr, batch_size=16,
                                seed=seed, progress=False, device="cpu")["accuracy"]
        scores = score_features(z_tr, tr.targets, clean)
        return {"n_pseudo": np.array(model.transfer_nb_n_pseudo), "source_clean": np.array(clean),
                "source_robust": np.array(robust), "linear_probe": np.array(probe),
                "fine_tune": np.array(ft), **{k: np.array(v) for k, v in scores.items()}}

    key = _cell_key(cfg, kind, eps, seed)
    arrays = cache.cached_arrays(_CACHE_KIND, key, compute) if use_cache else compute()
    row = {"kind": kind, "eps": float(eps), "seed": int(seed), "eval_eps": float(cfg.eval_eps)}
    row.update({k: (int(v) if k == "n_pseudo" else float(v)) for k, v in arrays.items()})
    return row


def _cells(cfg: AdversarialConfig) -> list[tuple[str, float]]:
    cells = [("standard" if e == 0 else "adversarial", float(e)) for e in cfg.eps]
    return cells + [("semi", 0.0), ("semi+adversarial", float(cfg.semi_eps))]


def run(cfg: AdversarialConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Every (source, seed) of the experiment: ``Results.table`` has one row per
    :func:`run_cell`; ``meta`` the config hash and wall-clock."""
    import pandas as pd
    from tqdm.auto import tqdm
    import torch
    if not isinstance(cfg, AdversarialConfig):
        raise ValueError(f"cfg must come from adversarial.config(), got {type(cfg).__name__}")
    t0 = time.perf_counter()
    data = source_data(cfg)
    jobs = [(k, e, s) for s in cfg.seeds for k, e in _cells(cfg)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured faster than 2 threads for these tiny convs
    try:
        rows = [run_cell(cfg, k, e, s, data=data, use_cache=use_cache)
                for k, e, s in tqdm(jobs, desc="sources", disable=not progress)]
    finally:
        torch.set_num_threads(threads)
    table = pd.DataFrame(rows)
    train, test = target_data(cfg, 0)
    table["n_test"], table["num_classes"] = len(test), len(train.classes)
    meta = {"paper": "adversarial", "mode": cfg.mode, "config_hash": config_hash(cfg),
            "wall_clock_s": round(time.perf_counter() - t0, 1), "primary": cfg.primary}
    return base.Results("adversarial", table, {}, meta, cfg)




def adversarial_examples(model, images, labels, eps: float, norm: str = "l2", steps: int = 5,
                         seed: int = 0) -> dict:
    """PGD adversarial versions of a few images and the model's predictions on both.

    Returns
    -------
    dict
        ``clean`` and ``adversarial`` (numpy ``(n, H, W, 3)`` in [0, 1]), ``delta``
        (their difference), ``pred_clean``, ``pred_adversarial`` (int arrays) and
        ``l2`` (the per-image L2 norm of ``delta``).
    """
    import torch
    from transfer_nb import adversarial, training
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
