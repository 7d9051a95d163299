"""Configuration of the TransRate experiment: specs, the ``fast`` / ``full`` presets, the
config hash of stored runs, and what the paper reports."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SourceSpec", "TargetSpec", "ModelSelectionConfig", "LayerSelectionConfig",
           "TransRateConfig", "config", "describe", "config_hash", "ESTIMATORS", "BASELINES",
           "PAPER", "PAPER_LAYER"]

#: score columns, all "higher is more transferable"
ESTIMATORS = ("transrate", "transrate_layerwise", "transrate_projected", "logme", "leep",
              "nce", "hscore", "hscore_shrinkage")
#: trivial baselines printed beside every estimator
BASELINES = ("width", "source_epochs")

_CACHE_KIND = "experiments_transrate"
_VERSION = "transrate-exp-v3"  # v3: equal-width zoo, seeds, linear probe, eps sweep

#: model selection on CIFAR-100 (Huang et al., ICML 2022): estimator -> statistic -> value.
#: Every TransRate number there comes from the authors' projected pipeline.
PAPER = {
    "transrate_projected": {"pearson": 0.81, "weighted_tau": 0.94},
    "logme": {"pearson": 0.57, "weighted_tau": 0.62},
    "leep": {"pearson": 0.97, "weighted_tau": 0.87},
    "nce": {"pearson": 0.97, "weighted_tau": 0.73},
}
#: layer selection: Pearson of TransRate with the re-init + fine-tune accuracy
PAPER_LAYER = {"pearson": 0.98, "cases": "5 of 7"}


@dataclass(frozen=True)
class SourceSpec:
    """A small source model of the zoo, trained by :func:`transfer_nb.models.train_source`.

    ``epochs=0`` is the random initialisation; ``label_noise`` is the fraction of source
    labels replaced by uniformly random ones (fixed by ``seed``); ``options`` are extra
    ``(key, value)`` pairs for the source data set.
    """
    name: str
    dataset: str
    epochs: int
    n: int = 600
    label_noise: float = 0.0
    options: tuple = ()


@dataclass(frozen=True)
class TargetSpec:
    """A data-scarce target task: ``per_class`` labelled training images per class and
    ``n_test`` test images (``options``: extra ``load_dataset`` pairs)."""
    name: str
    dataset: str
    per_class: int = 10
    n_test: int = 250
    options: tuple = ()


@dataclass(frozen=True)
class ModelSelectionConfig:
    targets: tuple = ()
    sources: tuple = ()
    arch: str = "small_cnn"
    width: int = 16
    depth: int = 3
    image_size: int = 16
    source_lr: float = 0.05
    source_batch_size: int = 64
    epochs: int = 8
    lr: float = 0.01
    batch_size: int = 10
    seeds: tuple = (0, 1, 2)
    eps: float = 1e-4
    projected_eps: float = 1.5e-2
    eps_sweep: tuple = (1e-3, 3e-3, 1e-2, 1.5e-2, 2e-2, 5e-2, 1e-1)
    pretrained: tuple = ()
    pretrained_image_size: int = 64
    timing_repeats: int = 1
    seed: int = 0


@dataclass(frozen=True)
class LayerSelectionConfig:
    source: SourceSpec = SourceSpec("glyphs-4ep", "glyphs", 4)
    target: TargetSpec = TargetSpec("textures", "textures")
    arch: str = "small_cnn"
    width: int = 8
    depth: int = 4
    image_size: int = 16
    source_lr: float = 0.05
    source_batch_size: int = 64
    epochs: int = 8
    lr: float = 0.01
    batch_size: int = 10
    seeds: tuple = (0, 1, 2)
    eps: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class TransRateConfig:
    mode: str
    model_selection: ModelSelectionConfig
    layer_selection: LayerSelectionConfig


def _zoo(n: int, short: int, long: int, extra: bool) -> tuple:
    """The equal-width zoo: one architecture, graded quality."""
    zoo = [SourceSpec("random-init", "glyphs", 0, n),
           SourceSpec("glyphs-1ep", "glyphs", 1, n),
           SourceSpec(f"glyphs-{long}ep", "glyphs", long, n),
           SourceSpec(f"glyphs-{long}ep-noise50", "glyphs", long, n, label_noise=0.5),
           SourceSpec("shapes-1ep", "shapes", 1, n),
           SourceSpec(f"shapes-{long}ep", "shapes", long, n),
           SourceSpec(f"shapes-{long}ep-noise50", "shapes", long, n, label_noise=0.5),
           SourceSpec(f"lowercase-{max(short, 2)}ep", "glyphs", max(short, 2), n,
                      options=(("chars", "lowercase"),))]
    if extra:
        zoo += [SourceSpec(f"glyphs-{long}ep-noise100", "glyphs", long, n, label_noise=1.0),
                SourceSpec(f"lowercase-{long}ep", "glyphs", long, n,
                           options=(("chars", "lowercase"),))]
    return tuple(zoo)


def config(fast: bool | None = None) -> TransRateConfig:
    """The experiment's configuration: ``fast`` preset (CI) or ``full``.

    ``fast=None`` reads :func:`transfer_nb.config.fast_mode` (env ``CI`` or
    ``TRANSFER_NB_FAST``).  Both presets run the same protocol on an equal-width zoo of
    small CNNs and data-scarce targets (10 labelled images per class); fast mode uses
    16 px images, 8 models of width 8, 2 targets and short source training, full mode 32 px, 10
    models, 3 targets, longer training and the three ImageNet EfficientNet-Lite models
    as a separate zoo.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        ms = ModelSelectionConfig(
            targets=(TargetSpec("textures", "textures", 10, 250),
                     TargetSpec("digits", "digits", 10, 250)),
            sources=_zoo(n=400, short=1, long=3, extra=False), width=8, depth=3,
            image_size=16, epochs=6, lr=0.01, batch_size=10, seeds=(0, 1, 2))
        ls = LayerSelectionConfig(source=SourceSpec("glyphs-3ep", "glyphs", 3, 400),
                                  target=TargetSpec("textures", "textures", 10, 250),
                                  width=8, depth=4, image_size=16, epochs=10, seeds=(0, 1, 2))
        return TransRateConfig("fast", ms, ls)
    ms = ModelSelectionConfig(
        targets=(TargetSpec("textures", "textures", 10, 250),
                 TargetSpec("digits", "digits", 10, 400),
                 TargetSpec("lowercase", "glyphs", 10, 520, options=(("chars", "lowercase"),))),
        sources=_zoo(n=2000, short=3, long=10, extra=True), width=32, depth=3,
        image_size=32, epochs=30, lr=0.01, batch_size=10, seeds=(0, 1, 2),
        pretrained=("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"),
        pretrained_image_size=64, timing_repeats=3)
    ls = LayerSelectionConfig(source=SourceSpec("glyphs-10ep", "glyphs", 10, 2000),
                              target=TargetSpec("textures", "textures", 10, 250),
                              width=16, depth=5, image_size=32, epochs=30, seeds=(0, 1, 2))
    return TransRateConfig("full", ms, ls)


def config_hash(cfg: TransRateConfig) -> str:
    """SHA-256 over the whole configuration and the experiment version: a stored run is
    stale when this no longer matches."""
    from transfer_nb.cache import hash_inputs
    return hash_inputs(version=_VERSION, config=dataclasses.asdict(cfg))


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
    lines = [
        f"mode: {cfg.mode}",
        "model selection:",
        f"  zoo: {len(ms.sources)} x {ms.arch} (width {ms.width}, depth {ms.depth}, "
        f"feature dim {ms.width * 2 ** (ms.depth - 1)}), {ms.image_size} px",
        *(f"    {s.name}: {s.dataset}{dict(s.options) or ''}, {s.epochs} epochs on {s.n} "
          f"images, label noise {s.label_noise:g}" for s in ms.sources),
        "  ImageNet EfficientNet-Lite zoo (separate): "
        + (", ".join(ms.pretrained) if ms.pretrained else "skipped in this mode"),
        "  targets: " + ", ".join(f"{t.name} ({t.per_class}/class train, {t.n_test} test)"
                                  for t in ms.targets),
        f"  ground truth: new head, all layers fine-tuned, {ms.epochs} epochs, batch "
        f"{ms.batch_size}, lr {ms.lr}, seeds {list(ms.seeds)}; linear probe as second column",
        f"  eps: snippet {ms.eps}, projected {ms.projected_eps}, sweep {list(ms.eps_sweep)}",
        "layer selection:",
        f"  model: {ls.arch} (width {ls.width}, depth {ls.depth}) trained on {ls.source.name}",
        f"  target: {ls.target.name} ({ls.target.per_class}/class train, "
        f"{ls.target.n_test} test), {ls.image_size} px",
        f"  ground truth: re-initialise after the layer, fine-tune {ls.epochs} epochs, "
        f"seeds {list(ls.seeds)}"]
    return "\n".join(lines)
