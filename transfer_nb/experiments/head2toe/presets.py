"""Configuration of the Head2Toe experiment: the ``fast`` / ``full`` presets, what the
paper reports, and the primary claim (fixed here, before any run)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from transfer_nb.experiments.base import (CONFIRM, MODES, TargetSpec, check_targets,
                                          config_hash as _hash, resolve_mode, target_specs)

__all__ = ["Head2ToeConfig", "config", "describe", "config_hash", "PAPER", "PRIMARY",
           "NEAR", "FAR", "PROBE", "FINETUNE", "HEAD2TOE", "CONFIRM_PLAN", "CONFIRM_DESIGN",
           "CANDIDATES", "CONFIRM_TARGETS", "CONFIRM_FAR", "CONFIRM_SEEDS"]

VERSION = "head2toe-exp-v3"  # v3: recipe over several draws; final-fit costs

PROBE = "linear probe"          # a linear head on the last layer's pooled features
HEAD2TOE = "Head2Toe"           # cross-validated in full mode, the paper's default else
FINETUNE = "fine-tuning"        # LP-FT, recipe chosen on a validation draw

#: what the paper reports (Evci et al., ICML 2022, VTAB-1k, ResNet-50 / ViT-B/16)
PAPER = {
    "vs_finetune": "Head2Toe matches fine-tuning on average (VTAB-1k)",
    "vs_probe": "Head2Toe beats a linear probe on the last layer",
    "far": "Head2Toe's advantage over fine-tuning is largest far from the source domain",
    "cheaper_time": "at a fraction of fine-tuning's training cost (time)",
    "cheaper_memory": "at a fraction of fine-tuning's training cost (memory)",
}

#: what the confirmation changes in the full preset's design besides targets and seeds
#: (fixed before the gate-only pilot, which runs under it): one validation draw for the
#: fine-tuning recipe (three draws of 8 images each were the full preset's; with 10
#: labelled images per class one draw fits 40, and three took 4.5 minutes per target)
CONFIRM_DESIGN = {"recipe_draws": 1}

PRIMARY = ("Head2Toe matches fine-tuning on average over the targets: paired per-seed "
           "difference, non-inferiority with margin 0.03")


def _textures(name: str, classes: tuple, region: int = 96, **kw) -> TargetSpec:
    return TargetSpec(name, "textures", options=(("classes", classes), ("region", region)), **kw)


#: near ImageNet: photographs (camera images of real objects, scenes and surfaces: the
#: statistics of ImageNet's photos), 4 classes each, grey patches
NEAR = ("objects", "scenes", "close-ups")
#: far from ImageNet: synthetic renderings (glyphs in fonts, drawn shapes: flat
#: intensities, hard edges, no photo statistics), 4 classes each
FAR = ("letters", "brackets", "shapes")


def _targets(per_class: int, n_test: int) -> tuple:
    kw = {"per_class": per_class, "n_test": n_test}
    return (
        _textures("objects", ("astronaut", "chelsea", "coffee", "rocket"), **kw),
        _textures("scenes", ("camera", "coins", "motorcycle", "clock"), **kw),
        # 32-photo-pixel crops of microscope, telescope and fundus-camera photos
        _textures("close-ups", ("ihc", "hubble", "retina", "moon"), region=32, **kw),
        TargetSpec("letters", "glyphs", options=(("chars", "OQCG"),), **kw),
        TargetSpec("brackets", "glyphs", options=(("chars", "()[]"),), **kw),
        TargetSpec("shapes", "shapes", options=(
            ("classes", ("hexagon", "star", "cross", "heart")), ("shift", 0.7)), **kw))


# ------------------------------------------------------------------ the confirmation
#: labelled images per class of the confirmation (and its gate-only pilot): at 2 (the
#: stored run's) fine-tuning fell below the probe on every near target
CONFIRM_PER_CLASS = 10
_FIXED = (("split", "fixed"),)


def _tex(name: str, classes: tuple, region: int = 96) -> TargetSpec:
    return TargetSpec(name, "textures", CONFIRM_PER_CLASS, 200,
                      (("classes", classes), ("region", region)) + _FIXED)


def _chars(name: str, chars: str) -> TargetSpec:
    return TargetSpec(name, "glyphs", CONFIRM_PER_CLASS, 200, (("chars", chars),) + _FIXED)


#: the gate-only pilot's candidates (:mod:`.pilot`), each on a fixed split: near ImageNet
#: (photographs: the stored run's three near targets at more labels, and one new), far
#: (renderings no Head2Toe run or pilot used before: new characters, new shape classes)
CANDIDATES = (
    _tex("objects", ("astronaut", "chelsea", "coffee", "rocket")),
    _tex("scenes", ("camera", "coins", "motorcycle", "clock")),
    _tex("close-ups", ("ihc", "hubble", "retina", "moon"), region=32),
    _tex("surfaces", ("brick", "grass", "gravel", "moon")),
    _chars("digit-glyphs", "2357"),
    _chars("symbols", "+=%#"),
    _chars("lowercase-glyphs", "aens"),
    TargetSpec("polygons", "shapes", CONFIRM_PER_CLASS, 200,
               (("classes", ("circle", "triangle", "square", "pentagon")), ("shift", 0.7))
               + _FIXED),
    # the pilot's second round (after the first: near below the probe, glyphs at ceiling)
    _tex("small-crops", ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins"),
         region=24),
    TargetSpec("faces", "lfw_faces", CONFIRM_PER_CLASS, 50, _FIXED),
    TargetSpec("bdpq", "glyphs", CONFIRM_PER_CLASS, 200,
               (("chars", "bdpq"), ("jitter", 2.0)) + _FIXED),
    TargetSpec("mnuh", "glyphs", CONFIRM_PER_CLASS, 200,
               (("chars", "mnuh"), ("jitter", 2.0), ("invert", True)) + _FIXED),
    TargetSpec("shapes-85", "shapes", CONFIRM_PER_CLASS, 200,
               (("classes", ("triangle", "pentagon", "star", "heart")), ("shift", 0.85))
               + _FIXED),
)
#: the far candidates (renderings)
CANDIDATE_FAR = ("digit-glyphs", "symbols", "lowercase-glyphs", "polygons", "bdpq", "mnuh",
                 "shapes-85")
#: the confirmation's targets: the candidates that passed the pilot's gates
CONFIRM_NAMES = ('polygons',)
CONFIRM_TARGETS = tuple(t for t in CANDIDATES if t.name in CONFIRM_NAMES)
CONFIRM_FAR = tuple(n for n in CANDIDATE_FAR if n in CONFIRM_NAMES)
#: seeds no Head2Toe run or pilot used (full 0-9, fast 0-1, the pilot 900-902)
CONFIRM_SEEDS = (30, 31, 32, 33, 34, 35)


@dataclass(frozen=True)
class Head2ToeConfig:
    """Everything that defines a run (hashed: a stored run is stale when it changes)."""
    mode: str
    targets: tuple
    far: tuple = FAR
    model: str = "efficientnet_lite0"
    image_size: int = 64                 # Lite0's last stage is 2x2 here (1x1 at 32 px)
    seeds: tuple = tuple(range(10))     # ~0.02 half-width on the primary difference
    # Head2Toe
    target_features: int = 2048          # pooling target per layer (the paper: 8192)
    fractions: tuple = (0.01, 0.02, 0.05, 0.1, 0.2)
    main_fraction: float = 0.1           # the paper's default (used when cv is off)
    group_lasso: float = 1e-4
    cv: bool = True
    cv_fractions: tuple = (0.01, 0.02, 0.05, 0.1, 0.2)
    cv_group_lassos: tuple = (1e-4,)
    head_steps: int = 300
    head_lr: float = 0.01
    # fine-tuning: LP-FT (head from the linear probe, then every layer), Adam, frozen
    # pretrained BatchNorm statistics; lr and epochs chosen per target on a validation
    # draw of the training split (fit images + disjoint validation images; averaged
    # over ``recipe_draws`` draws: one draw of 8 images picked recipes by noise)
    ft_grid: tuple = ((1e-5, 20), (1e-5, 60), (1e-4, 20), (1e-4, 60))
    recipe_draws: int = 3                # validation accuracy averaged over draws
    ft_batch_size: int = 32
    val_per_class: int = 20
    margin: float = 0.03                 # "matches": not worse by more than 3 points
    n_boot: int = 2000
    # torch threads during the run; fast mode uses 1: on a busy 2-core machine two
    # threads wait on each other (a CI run with a CPU hog beside it crawled at 2)
    threads: int = 2
    primary: str = PRIMARY


def config(mode: str | None = None, targets=None, **overrides) -> Head2ToeConfig:
    """The experiment's configuration.

    Parameters
    ----------
    mode : {"fast", "full", "confirm"}, optional
        ``None`` reads the environment (``CI`` / ``TRANSFER_NB_FAST``: fast).  Full: 6
        targets (3 near, 3 far), 10 seeds, Head2Toe cross-validated, a 4-recipe
        (lr, epochs) fine-tuning grid.  Fast: 2 targets (1 near, 1 far), 2 seeds, Head2Toe at the
        paper's default fraction, a 2-recipe grid.  Confirm: the pre-registered
        confirmation (:data:`CONFIRM_PLAN`): the full design with one recipe draw
        (:data:`CONFIRM_DESIGN`), :data:`CONFIRM_TARGETS` at 10 labelled images per class,
        new seeds; ``targets`` and ``overrides`` are refused.
    targets : sequence of str or path, optional
        Data-set names or image folders (one subfolder per class) replacing the paper's
        targets (a folder counts as near unless its name is in ``far=``).
    **overrides
        Any field of :class:`Head2ToeConfig`.
    """
    mode = resolve_mode(mode, (*MODES, CONFIRM))
    if mode == CONFIRM:
        if targets is not None or overrides:
            raise ValueError("config('confirm') is the pre-registered design: it takes no "
                             "targets or overrides (use 'full' for your own)")
        cfg = dataclasses.replace(Head2ToeConfig(mode, CONFIRM_TARGETS), **CONFIRM_DESIGN,
                                  far=CONFIRM_FAR, seeds=CONFIRM_SEEDS)
        check_targets(cfg.targets, extra_per_class=cfg.val_per_class)
        return cfg
    default = _targets(2, 200)
    if mode == "fast":
        cfg = Head2ToeConfig(mode, (default[0], default[3]), seeds=(0, 1), cv=False,
                             fractions=(0.02, 0.1), ft_grid=((1e-5, 20), (1e-4, 20)),
                             recipe_draws=1, head_steps=200, val_per_class=10, n_boot=1000,
                             threads=1)
    else:
        cfg = Head2ToeConfig(mode, default)
    cfg = dataclasses.replace(cfg, targets=target_specs(targets, cfg.targets, per_class=2,
                                                        n_test=200))
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    check_targets(cfg.targets, extra_per_class=cfg.val_per_class)   # folders: before training
    return cfg


def config_hash(cfg: Head2ToeConfig) -> str:
    """Hash of the whole configuration and the experiment version."""
    return _hash(cfg, VERSION)


def describe(cfg: Head2ToeConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    far = [t.name for t in cfg.targets if t.name in cfg.far]
    near = [t.name for t in cfg.targets if t.name not in cfg.far]
    head = (f"cross-validated over fractions {list(cfg.cv_fractions)} x group lasso "
            f"{list(cfg.cv_group_lassos)}" if cfg.cv else
            f"the paper's default fraction {cfg.main_fraction} and group lasso "
            f"{cfg.group_lasso}")
    return "\n".join([
        f"mode: {cfg.mode}",
        f"primary claim: {cfg.primary}",
        f"source: {cfg.model} (ImageNet weights), {cfg.image_size} px images",
        f"targets near the source (photographs): {', '.join(near) or 'none'}",
        f"targets far from it (renderings): {', '.join(far) or 'none'}",
        "  " + "; ".join(f"{t.name}: {t.per_class} labelled images per class, "
                         f"{t.n_test} test" for t in cfg.targets[:1]) + " (every target alike)",
        f"seeds: {list(cfg.seeds)} (each draws its own labelled images; all methods of a "
        "seed see the same ones)",
        f"Head2Toe: {cfg.target_features} pooled features per layer, {head}; "
        f"{cfg.head_steps} Adam steps per head (lr {cfg.head_lr})",
        f"linear probe: the same head on the last layer's pooled features",
        f"fine-tuning: LP-FT, Adam, batch {cfg.ft_batch_size}, recipe (lr, epochs) from "
        f"{[list(r) for r in cfg.ft_grid]} chosen per target on {cfg.val_per_class} "
        f"validation images per class drawn from the training split ({cfg.recipe_draws} "
        "draw(s), accuracy averaged)",
        f"'matches' margin: {cfg.margin}"])
