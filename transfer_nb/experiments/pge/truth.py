"""The PGE experiment's ground truth: LP-FT transfer accuracy of every ordered pair.

Every transfer **replaces the head** (:func:`transfer_nb.training.transfer.fine_tune`, whose new
head starts from the linear probe: LP-FT), so the source's class indices never reach the
target; the truth is the transfer accuracy itself (within a target, ranking sources by
accuracy or by gain over a scratch model is the same ranking).  A random-init model
fine-tuned the same way ("scratch") is measured beside it as a reference.
"""
from __future__ import annotations

import time

import numpy as np

from transfer_nb.experiments import base
from transfer_nb.experiments.pge.presets import PGEConfig
from transfer_nb.experiments.pge.presets import train_seeds
from transfer_nb.experiments.zoo import build_source, choose_recipe

__all__ = ["build_sources", "scratch_spec", "target_recipe", "transfer_cell"]

_PEN = "penultimate"


def build_sources(cfg: PGEConfig) -> dict:
    """``{task: (model, source test accuracy)}``: every task's source model, trained (or
    loaded from the cache) by :func:`transfer_nb.experiments.zoo.build_source`."""
    return {s.name: build_source(s, cfg) for s in cfg.sources}


def scratch_spec(cfg: PGEConfig, target: base.TargetSpec) -> base.SourceSpec:
    """The random initialisation (BatchNorm statistics set on the target task's images)."""
    return base.SourceSpec("scratch", target.dataset, 0, cfg.n_source,
                           options=tuple(base.data_options(target).items()))


def target_recipe(cfg: PGEConfig, target: base.TargetSpec, models: dict) -> tuple:
    """The fine-tuning lr of ``target``, chosen on a validation split of its training
    images (:func:`transfer_nb.experiments.zoo.choose_recipe`, the target's own task
    left out of the recipe models).  Returns ``(lr, rows)``."""
    others = tuple(s for s in cfg.sources if s.name != target.name)
    return choose_recipe(cfg.training, target, models, sources=others,
                         degenerate=cfg.degenerate, draw_seed=0)


def _probe(model, train, test) -> float:
    from transfer_nb.features import extract_features  # lazy: pulls in torch
    from transfer_nb.training.transfer import linear_probe  # lazy: pulls in torch
    feats = extract_features(model, train, layers=[_PEN], progress=False)[_PEN]
    test_feats = extract_features(model, test, layers=[_PEN], progress=False)[_PEN]
    return float(linear_probe(feats, np.asarray(train.targets), test_feats,
                              np.asarray(test.targets)))


def transfer_cell(model, target: base.TargetSpec, cfg: PGEConfig, lr: float) -> dict:
    """Linear probe and per-seed LP-FT accuracies of one model on one target.

    Each seed fine-tunes on the few-shot draw :func:`~transfer_nb.experiments.pge.presets.
    train_seeds` gives it (one seed-0 draw for every seed in the stored run; its own draw
    per seed with ``train_draw="per seed"``).

    Returns ``linear_probe`` (mean over the distinct draws), ``accuracy_seeds`` (S,),
    ``curves`` (S, 2, epochs: training loss and accuracy), ``time_finetune`` (mean
    seconds), ``n_test``, ``num_classes``.
    """
    from transfer_nb.training.transfer import fine_tune  # lazy: pulls in torch
    draws = {d: base.load_target(target, cfg.image_size, d) for d in set(train_seeds(cfg)[1])}
    out = {"linear_probe": float(np.mean([_probe(model, *draws[d]) for d in sorted(draws)]))}
    accs, curves, times = [], [], []
    for seed, draw in zip(cfg.seeds, train_seeds(cfg)[1]):
        train, test = draws[draw]
        t0 = time.perf_counter()
        res = fine_tune(model, train, test, epochs=cfg.epochs, lr=lr,
                        batch_size=cfg.batch_size, seed=seed, progress=False, normalize="none",
                        head_init=cfg.head_init)
        times.append(time.perf_counter() - t0)
        accs.append(float(res["accuracy"]))
        curves.append(np.stack([np.asarray(res["train_loss"], dtype=np.float64),
                                np.asarray(res["train_accuracy_curve"], dtype=np.float64)]))
    out.update(accuracy_seeds=np.asarray(accs), curves=np.stack(curves),
               time_finetune=float(np.mean(times)), n_test=float(len(test)),
               num_classes=float(len(train.classes)))
    return out
