"""Configuration of the TransRate experiment: specs, the ``fast`` / ``full`` presets and
what the paper reports."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SourceSpec", "TargetSpec", "ModelSelectionConfig", "LayerSelectionConfig",
           "TransRateConfig", "config", "describe", "ESTIMATORS", "PAPER"]

#: score columns, all "higher is more transferable"
ESTIMATORS = ("transrate", "logme", "leep", "nce", "hscore")

_CACHE_KIND = "experiments_transrate"
_VERSION = "transrate-exp-v2"  # v2: transrate_layerwise replaces transrate_official

#: what the paper reports (Huang et al., ICML 2022)
PAPER = {
    "layer_pearson": 0.98,
    "layer_cases": "5 of 7",
    "cifar100_pearson_transrate": 0.81,
    "cifar100_pearson_logme": 0.57,
}

# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SourceSpec:
    """A small source model the library trains (:func:`transfer_nb.models.train_source`).

    ``options`` are extra ``(key, value)`` pairs for the source dataset.
    """
    name: str
    arch: str
    dataset: str
    epochs: int
    n: int
    width: int | None = None
    options: tuple = ()


@dataclass(frozen=True)
class TargetSpec:
    """A target task: an embedded dataset (``options``: extra ``load_dataset`` pairs)."""
    name: str
    dataset: str
    options: tuple = ()


@dataclass(frozen=True)
class ModelSelectionConfig:
    targets: tuple = ()
    pretrained: tuple = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    sources: tuple = ()
    image_size: int = 64
    source_image_size: int = 32
    n_train: int = 160
    n_test: int = 160
    epochs: int = 2
    lr: float = 0.003
    batch_size: int = 10
    optimizer: str = "sgd"
    eps: float = 1e-4
    seed: int = 0
    timing_repeats: int = 1


@dataclass(frozen=True)
class LayerSelectionConfig:
    model: str = "efficientnet_lite0"
    target: TargetSpec = TargetSpec("textures", "textures")
    image_size: int = 64
    n_train: int = 160
    n_test: int = 160
    protocol: str = "finetune_reinit"   # or "linear_probe"
    layers: tuple | None = None         # None: the model's default layers
    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 32
    optimizer: str = "sgd"
    eps: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class TransRateConfig:
    mode: str
    model_selection: ModelSelectionConfig
    layer_selection: LayerSelectionConfig


def _targets() -> tuple:
    return (TargetSpec("textures", "textures"),
            TargetSpec("lfw_faces", "lfw_faces"),
            TargetSpec("digits", "digits"))


def _sources(n: int, few: int, many: int, per_class: int | None = None) -> tuple:
    """Small sources that differ in architecture, width, source task and epochs.

    ``per_class``: images generated per class (the generators' ``n_per_class``), so that
    the training split holds at least ``n`` images (default sets: 1500 glyphs, 1800 shapes).
    """
    o = (("n_per_class", per_class),) if per_class else ()
    return (
        SourceSpec("cnn-glyphs-1ep", "small_cnn", "glyphs", epochs=1, n=n, width=16, options=o),
        SourceSpec(f"cnn-glyphs-{many}ep", "small_cnn", "glyphs", epochs=many, n=n, width=16,
                   options=o),
        SourceSpec(f"cnn-shapes-{few}ep", "small_cnn", "shapes", epochs=few, n=n, width=16,
                   options=o),
        SourceSpec(f"cnn-wide-glyphs-{few}ep", "small_cnn", "glyphs", epochs=few, n=n, width=48,
                   options=o),
        SourceSpec(f"resnet-shapes-{few}ep", "small_resnet", "shapes", epochs=few, n=n, options=o),
        SourceSpec(f"resnet-glyphs-{many}ep", "small_resnet", "glyphs", epochs=many, n=n,
                   options=o),
    )


def config(fast: bool | None = None) -> TransRateConfig:
    """The experiment's configuration: ``fast`` preset (CI) or ``full``.

    ``fast=None`` reads :func:`transfer_nb.config.fast_mode` (env ``CI`` or
    ``TRANSFER_NB_FAST``).  Both presets run the same protocol; fast mode uses smaller
    images, fewer samples and fewer epochs so that each notebook finishes in a few
    minutes on 2 CPU cores from a cold cache.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        # CI budget (2 CPU cores, <= 4 min per notebook from a cold cache): fine-tuning
        # the three EfficientNet-Lite models dominates, hence 64 px, 100 images, 4 epochs
        # of batches of 10 at lr 0.01 (40 SGD steps: with 20 steps at lr 0.003 every model
        # stayed near chance on digits, which made its ground truth noise).
        ms = ModelSelectionConfig(targets=_targets(), sources=_sources(n=1000, few=2, many=4),
                                  image_size=64, source_image_size=32, n_train=100,
                                  n_test=100, epochs=4, lr=0.01, batch_size=10)
        # a linear probe per layer: re-initialising + fine-tuning once per layer (the
        # paper's protocol) does not fit the CI budget; full mode runs it
        ls = LayerSelectionConfig(image_size=64, n_train=200, n_test=200,
                                  protocol="linear_probe", epochs=2, lr=0.003, batch_size=10)
        return TransRateConfig("fast", ms, ls)
    # about an hour on 2 CPU cores, minutes on a GPU
    ms = ModelSelectionConfig(targets=_targets(),
                              sources=_sources(n=4000, few=3, many=8, per_class=600),
                              image_size=128, source_image_size=32, n_train=300, n_test=300,
                              epochs=5, lr=0.003, batch_size=16, timing_repeats=3)
    ls = LayerSelectionConfig(image_size=64, n_train=200, n_test=300,
                              protocol="finetune_reinit", epochs=5, lr=0.003, batch_size=16)
    return TransRateConfig("full", ms, ls)


def _ms(cfg) -> ModelSelectionConfig:
    if isinstance(cfg, TransRateConfig):
        return cfg.model_selection
    if isinstance(cfg, ModelSelectionConfig):
        return cfg
    raise ValueError(f"expected a TransRateConfig or ModelSelectionConfig, got {type(cfg).__name__}")


def _ls(cfg) -> LayerSelectionConfig:
    if isinstance(cfg, TransRateConfig):
        return cfg.layer_selection
    if isinstance(cfg, LayerSelectionConfig):
        return cfg
    raise ValueError(f"expected a TransRateConfig or LayerSelectionConfig, got {type(cfg).__name__}")


def describe(cfg: TransRateConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    ms, ls = cfg.model_selection, cfg.layer_selection
    lines = [f"mode: {cfg.mode}",
             "model selection:",
             f"  targets: {', '.join(t.name for t in ms.targets)}",
             f"  pretrained (ImageNet): {', '.join(ms.pretrained)}",
             f"  trained sources: {', '.join(s.name for s in ms.sources)}"
             f" ({ms.sources[0].n if ms.sources else 0} source images at "
             f"{ms.source_image_size}px)",
             f"  zoo size: {len(ms.pretrained) + len(ms.sources)} models",
             f"  target images: {ms.image_size}px (ImageNet models), {ms.source_image_size}px "
             f"(trained sources); up to {ms.n_train} train / {ms.n_test} test per target",
             f"  fine-tuning: {ms.epochs} epochs, {ms.optimizer} lr={ms.lr}, "
             f"batch {ms.batch_size}, all layers, new head",
             "layer selection:",
             f"  model: {ls.model}, target: {ls.target.name}, protocol: {ls.protocol}",
             f"  target images: {ls.image_size}px, {ls.n_train} train / {ls.n_test} test, "
             f"{ls.epochs} epochs",
             f"TransRate eps: {ms.eps}"]
    return "\n".join(lines)


