"""Regression experiment: zoo, targets, fast/full configuration."""
from __future__ import annotations

from dataclasses import dataclass


#: the paper's estimators and the earlier one (LogME) it compares with; higher = better
ESTIMATORS = ("linear_mse", "label_mse", "logme")
#: trivial baselines printed beside them
BASELINES = ("source_epochs", "source_accuracy")
#: what the paper reports
PAPER = {"improvement_low": 0.12, "improvement_high": 0.36, "speedup": 0.27}

_CACHE_KIND = "experiments_regression"
_VERSION = "regression-exp-v1"
_PENULTIMATE, _OUTPUT = "penultimate", "output"


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SourceSpec:
    """One zoo member: a small CNN trained on an embedded classification set.

    ``epochs=0`` is the randomly initialised network (its BatchNorm statistics are
    still computed on the source images).
    """
    name: str
    dataset: str
    epochs: int
    n: int = 1000


@dataclass(frozen=True)
class RegressionConfig:
    mode: str
    sources: tuple
    targets: tuple = ("rotated_digits", "shape_keypoints")
    arch: str = "small_cnn"
    width: int = 16
    image_size: int = 32
    n_train: int = 40
    n_test: int = 300
    epochs: int = 30
    lr: float = 0.003
    batch_size: int = 10
    head_lr_mult: float = 10.0
    weight_decay: float = 1e-4
    seeds: tuple = (0, 1, 2)
    alpha: float = 1.0
    lambdas: tuple = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    timing_repeats: int = 5
    n_boot: int = 1000
    data_seed: int = 0


def _sources(n: int, few: int, many: int, textures_many: bool = True) -> tuple:
    zoo = (SourceSpec("random-init", "digits", 0, n),
           SourceSpec(f"digits-{few}ep", "digits", few, n),
           SourceSpec(f"digits-{many}ep", "digits", many, n),
           SourceSpec(f"glyphs-{few}ep", "glyphs", few, n),
           SourceSpec(f"glyphs-{many}ep", "glyphs", many, n),
           SourceSpec(f"shapes-{few}ep", "shapes", few, n),
           SourceSpec(f"shapes-{many}ep", "shapes", many, n),
           SourceSpec(f"textures-{few}ep", "textures", few, n))
    return zoo + ((SourceSpec(f"textures-{many}ep", "textures", many, n),)
                  if textures_many else ())


def config(fast: bool | None = None) -> RegressionConfig:
    """The fast (CI) or full preset; ``None`` reads :func:`transfer_nb.config.fast_mode`.

    Both run the same protocol; fast mode trains narrower sources for fewer epochs and
    fine-tunes on fewer test images, so that the notebook runs in a few minutes on 2
    CPU cores from a cold cache.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        # 2 CPU cores, <= 4 min from a cold cache: 16 px images, 8 sources of 400
        # images, 15 epochs of 3 batches per fine-tuning (45 Adam steps) x 3 seeds
        return RegressionConfig("fast", _sources(n=400, few=1, many=3, textures_many=False),
                                width=16, image_size=16, n_train=30, n_test=200, epochs=15,
                                seeds=(0, 1, 2), timing_repeats=3)
    return RegressionConfig("full", _sources(n=1200, few=2, many=10), width=32, image_size=32,
                            n_train=60, n_test=400, epochs=40, seeds=(0, 1, 2, 3, 4),
                            timing_repeats=10)


def describe(cfg: RegressionConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    d = cfg.width * 4   # small_cnn, depth 3: width * 2**2 channels
    return "\n".join([
        f"mode: {cfg.mode}",
        f"zoo: {len(cfg.sources)} x {cfg.arch} (width {cfg.width}, {d}-d penultimate "
        f"features), {cfg.sources[0].n} source images at {cfg.image_size}px",
        "  " + ", ".join(s.name for s in cfg.sources),
        f"targets: {', '.join(cfg.targets)}; {cfg.n_train} train / {cfg.n_test} test images",
        f"fine-tuning: new linear head, all layers, MSE on [0, 1]-scaled targets, "
        f"{cfg.epochs} epochs, adam lr={cfg.lr} (head x{cfg.head_lr_mult:g}), "
        f"batch {cfg.batch_size}, seeds {list(cfg.seeds)}",
        f"estimators: {', '.join(ESTIMATORS)} (lambda = {cfg.alpha:g}); "
        f"baselines: {', '.join(BASELINES)}"])
