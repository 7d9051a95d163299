"""Configuration of the adversarial-sources experiment: presets, the eps scale, the
primary claim (fixed here, before any run) and what the papers report."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from transfer_nb.experiments.base import TargetSpec, config_hash as _hash, resolve_mode, target_specs

__all__ = ["AdversarialConfig", "config", "describe", "config_hash", "imagenet_equivalent",
           "SOURCE_KINDS", "ESTIMATORS", "PAPER", "PRIMARY"]

VERSION = "adversarial-exp-v2"  # v2: the experiment contract (target specs, moderate eps fixed)

#: the four kinds of source: (name, semi-supervised?, adversarial?)
SOURCE_KINDS = ("standard", "adversarial", "semi", "semi+adversarial")

#: estimators scored on each source's target features (higher = more transferable), and
#: the trivial baseline beside them: the source's own clean test accuracy
ESTIMATORS = ("transrate", "logme", "source_accuracy")

#: what the papers report
PAPER = {
    "salman_eps": (0, 0.01, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 3, 5),
    "moderate_helps": "a robust source (moderate eps) beats the standard one on most targets",
    "accuracy_falls": "source clean accuracy falls as eps grows",
    "semi_helps": "pseudo-label semi-supervised sources transfer better than supervised ones",
    "combined_best": "semi-supervised + adversarial transfers best",
    "baseline_wrong": "source accuracy is no guide: the less accurate (robust) sources "
                      "transfer better",
}


PRIMARY = ("a source trained with a moderate adversary (eps fixed in the config) transfers "
           "better than the standard source: paired per-seed difference of the primary truth")


@dataclass(frozen=True)
class AdversarialConfig:
    """Every setting of the experiment (all of it enters the cache keys)."""
    mode: str
    image_size: int
    arch: str
    width: int
    source: str
    targets: tuple
    n_labeled: int
    n_unlabeled: int
    n_source_test: int
    eps: tuple
    norm: str
    attack_steps: int
    eval_eps: float
    eval_steps: int
    semi_eps: float
    threshold: float
    source_epochs: int
    source_lr: float
    source_batch: int
    ft_epochs: int
    ft_lr: float
    seeds: tuple
    n_boot: int
    #: fixed before the run: the "moderate" eps of the primary claim and its truth
    moderate_eps: float = 0.1
    truth: str = "linear_probe"
    primary: str = PRIMARY


def config(mode: str | None = None, targets=None, **overrides) -> AdversarialConfig:
    """The ``fast`` preset (CI, a few minutes on 2 cores) or the ``full`` one.

    ``mode=None`` reads the environment (``CI`` / ``TRANSFER_NB_FAST``); ``targets``: a
    data-set name or an image folder (one subfolder per class) replacing ``textures``
    (the first target is used); ``overrides``: any field of :class:`AdversarialConfig`.
    """
    mode = resolve_mode(mode)
    if mode == "fast":
        cfg = AdversarialConfig(
            mode="fast", image_size=16, arch="small_cnn", width=8, source="shapes",
            targets=(TargetSpec("textures", "textures", 10, 10_000),), n_labeled=300,
            n_unlabeled=600, n_source_test=200, eps=(0.0, 0.1, 0.5), norm="l2",
            attack_steps=1, eval_eps=0.3, eval_steps=3, semi_eps=0.1, threshold=0.9,
            source_epochs=10, source_lr=0.05, source_batch=16, ft_epochs=8, ft_lr=0.01,
            seeds=(0, 1, 2), n_boot=500)
    else:
        cfg = AdversarialConfig(
            mode="full", image_size=16, arch="small_cnn", width=16, source="shapes",
            targets=(TargetSpec("textures", "textures", 10, 10_000),), n_labeled=400,
            n_unlabeled=1200, n_source_test=400, eps=(0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8),
            norm="l2", attack_steps=3, eval_eps=0.3, eval_steps=5, semi_eps=0.1,
            threshold=0.9, source_epochs=10, source_lr=0.05, source_batch=32, ft_epochs=20,
            ft_lr=0.01, seeds=(0, 1, 2, 3, 4), n_boot=1000)
    cfg = dataclasses.replace(cfg, targets=target_specs(targets, cfg.targets, per_class=10,
                                                        n_test=10_000))
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    if cfg.moderate_eps not in cfg.eps:
        raise ValueError(f"moderate_eps {cfg.moderate_eps} must be one of eps {list(cfg.eps)}")
    return cfg


def config_hash(cfg: AdversarialConfig) -> str:
    """Hash of the whole configuration and the experiment version."""
    return _hash(cfg, VERSION)


def imagenet_equivalent(eps: float, image_size: int, channels: int = 3) -> float:
    """``eps`` (L2, pixels of a ``channels x image_size^2`` image) on ImageNet's 3 x 224^2 scale."""
    return float(eps) * math.sqrt(3 * 224 * 224 / (channels * image_size * image_size))


def describe(cfg: AdversarialConfig) -> str:
    """A plain-text summary of the configuration (deterministic: fit for a checked cell)."""
    eq = ", ".join(f"{e:g}->{imagenet_equivalent(e, cfg.image_size):.2g}" for e in cfg.eps)
    return "\n".join([
        f"mode: {cfg.mode}",
        f"source: {cfg.source} at {cfg.image_size}px, {cfg.n_labeled} labelled + "
        f"{cfg.n_unlabeled} unlabelled images, {cfg.n_source_test} test images",
        f"target: {cfg.targets[0].name}, {cfg.targets[0].per_class} labelled images per "
        "class (few-label regime), the whole test split",
        f"primary claim: eps {cfg.moderate_eps:g} vs eps 0 on the {cfg.truth.replace('_', ' ')}",
        f"model: {cfg.arch} (width {cfg.width}), {cfg.source_epochs} epochs",
        f"adversary: {cfg.norm.upper()} PGD, {cfg.attack_steps} steps, eps in {list(cfg.eps)} "
        f"(ImageNet-scale equivalents: {eq})",
        f"semi-supervised: pseudo-labels with confidence >= {cfg.threshold}, students at eps 0 "
        f"and eps {cfg.semi_eps:g}",
        f"robust accuracy: {cfg.norm.upper()} PGD eps {cfg.eval_eps:g}, {cfg.eval_steps} steps",
        f"seeds: {list(cfg.seeds)}",
    ])
