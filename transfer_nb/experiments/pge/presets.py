"""Configuration of the PGE experiment: the tasks, the ``fast`` / ``full`` presets, what
the paper claims, and the primary claim (fixed here, before any run)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from transfer_nb.experiments.base import SourceSpec, TargetSpec, config_hash as _hash, resolve_mode

__all__ = ["PGEConfig", "config", "describe", "config_hash", "TASKS", "PAPER", "PRIMARY",
           "task_names", "source_specs"]

VERSION = "pge-exp-v2"

#: what the paper claims (qualitative: it reports rankings on Office-style task pairs)
PAPER = {
    "agreement": "lower PGE distance, better transfer (source selection for a target)",
    "control": "PGE measures task relatedness, not label-index alignment",
    "baseline": "PGE beats earlier task-similarity measures",
    "stability": "averaging over restarts makes PGE stable",
    "efficiency": "PGE is cheaper than the transfer it predicts",
}

PRIMARY = ("source selection: -PGE (body parameters) ranks the sources of each target by "
           "their LP-FT transfer accuracy; Kendall tau pooled within target")


def _glyphs(chars: str, font: str) -> tuple:
    return (("chars", chars), ("fonts", (font,)))


_SHAPES5 = (("classes", ("circle", "triangle", "square", "pentagon", "star")),)

#: every task is a source and a target (per_class / n_test are set by the preset); from
#: close pairs (one character set in two fonts) to far ones (textures vs glyphs)
TASKS = (
    TargetSpec("glyphs 0-4 sans", "glyphs", options=_glyphs("01234", "DejaVu Sans")),
    TargetSpec("glyphs 0-4 serif", "glyphs", options=_glyphs("01234", "DejaVu Serif")),
    TargetSpec("glyphs 5-9 sans", "glyphs", options=_glyphs("56789", "DejaVu Sans")),
    TargetSpec("glyphs A-E sans", "glyphs", options=_glyphs("ABCDE", "DejaVu Sans")),
    TargetSpec("glyphs a-e serif", "glyphs", options=_glyphs("abcde", "DejaVu Serif")),
    TargetSpec("digits", "digits"),
    TargetSpec("shapes", "shapes", options=_SHAPES5),
    TargetSpec("shapes shifted", "shapes", options=_SHAPES5 + (("shift", 0.3),)),
    TargetSpec("textures", "textures"),
)


@dataclass(frozen=True)
class PGEConfig:
    """Everything that defines a run (hashed: a stored run is stale when it changes).

    ``tasks`` are every task (each one a source); ``targets`` the names of the tasks used
    as targets (default: all).  Every ordered pair (source != target) is an item.
    """
    mode: str
    tasks: tuple = TASKS
    targets: tuple = ()
    #: each task as a SourceSpec (filled by :func:`config`)
    sources: tuple = ()
    #: declared before the run: no item is degenerate by construction here (the
    #: random-init "scratch" model is a reference, never an item of a correlation)
    degenerate: tuple = ()
    arch: str = "small_cnn"
    width: int = 8
    depth: int = 2
    image_size: int = 16
    # sources: every task trained on n_source images of its train split (seed 0)
    n_source: int = 600
    source_epochs: int = 6
    source_lr: float = 0.05
    source_batch_size: int = 64
    # the truth: LP-FT transfer accuracy (new head from the linear probe, then all layers),
    # lr chosen per target on a validation split of its training images
    per_class: int = 3
    n_test: int = 250
    head_init: str = "probe"
    epochs: int = 100
    batch_size: int = 16
    lr_grid: tuple = (0.003, 0.01, 0.03)
    recipe_models: int = 2
    validation_fraction: float = 0.4
    seeds: tuple = (0, 1, 2, 3, 4)
    # PGE: body parameters, source role on n_pge source images, target role on the
    # target's few-shot training images; the control permutes those target labels
    n_pge: int = 100
    restarts: int = 8
    pge_batch_size: int = 10
    seed: int = 0
    # stability: pairs x seeds x (restarts, batches), both reductions, and the baseline
    stability_pairs: tuple = ()
    stability_seeds: int = 10
    stability_restarts: tuple = (1, 2, 4, 8)
    stability_batches: tuple = (1, 2, 0)      # 0: every batch
    n_boot: int = 1000
    primary: str = PRIMARY


_STABILITY = (("glyphs 0-4 sans", "glyphs 0-4 serif"), ("shapes", "shapes shifted"),
              ("digits", "glyphs 5-9 sans"), ("textures", "glyphs A-E sans"))


def task_names(cfg: PGEConfig) -> list:
    return [t.name for t in cfg.tasks]


def source_specs(cfg: PGEConfig) -> tuple:
    """Each task as a :class:`SourceSpec` (``n_source`` images, ``source_epochs``)."""
    return tuple(SourceSpec(t.name, t.dataset, cfg.source_epochs, cfg.n_source,
                            options=t.options) for t in cfg.tasks)


def _targets(targets, names: list) -> tuple:
    if targets is None:
        return tuple(names)
    if isinstance(targets, (str, os.PathLike)):
        targets = [targets]
    out = []
    for t in targets:
        text = str(t)
        if (isinstance(t, os.PathLike) or os.sep in text) and not Path(text).exists():
            raise ValueError(f"target {text!r} does not exist (no such folder), and a PGE "
                             f"target is a task of the experiment's task set, one of {names}")
        if isinstance(t, os.PathLike) or os.sep in text or Path(text).is_dir():
            raise ValueError(
                f"target {text!r} is an image folder, but a PGE target must be a task of the "
                f"experiment's task set: every task is also a source, trained on its own "
                f"images, and PGE compares the tasks' gradients; expected one of {names}")
        if text not in names:
            raise ValueError(f"unknown target {text!r}: a PGE target is a task of the "
                             f"experiment's task set, one of {names}")
        out.append(text)
    if not out:
        raise ValueError("targets is empty: pass at least one task name")
    return tuple(dict.fromkeys(out))


def config(mode: str | None = None, targets=None, **overrides) -> PGEConfig:
    """The experiment's configuration.

    Parameters
    ----------
    mode : {"fast", "full"}, optional
        ``None`` reads the environment (``CI`` / ``TRANSFER_NB_FAST``: fast).  Fast: six
        tasks (30 ordered pairs), 2 seeds, a small stability sweep; full: all nine tasks
        (72 ordered pairs), 5 seeds, 10 stability seeds x 4 pairs.
    targets : sequence of str, optional
        Names of the tasks used as targets (every task stays a source).  An image folder
        is refused: a PGE target must be one of the experiment's tasks.
    **overrides
        Any field of :class:`PGEConfig` (e.g. ``seeds=(0,)``).
    """
    mode = resolve_mode(mode)
    if mode == "fast":
        keep = ("glyphs 0-4 sans", "glyphs 0-4 serif", "glyphs A-E sans", "digits", "shapes",
                "textures")
        cfg = PGEConfig(mode, tasks=tuple(t for t in TASKS if t.name in keep), n_source=300,
                        source_epochs=5, n_test=150, epochs=60, seeds=(0, 1), n_pge=60,
                        lr_grid=(0.003, 0.03),
                        restarts=4, stability_pairs=_STABILITY[:1] + _STABILITY[3:],
                        stability_seeds=4, stability_restarts=(1, 4), stability_batches=(1, 0),
                        n_boot=300)
    else:
        cfg = PGEConfig(mode, stability_pairs=_STABILITY)
    cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    tasks = tuple(dataclasses.replace(t, per_class=cfg.per_class, n_test=cfg.n_test)
                  for t in cfg.tasks)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique; got {names}")
    chosen = _targets(targets if targets is not None else (cfg.targets or None), names)
    bad = [p for p in cfg.stability_pairs if p[0] not in names or p[1] not in names]
    if bad:
        raise ValueError(f"stability pairs {bad} name tasks that are not in {names}")
    cfg = dataclasses.replace(cfg, tasks=tasks, targets=chosen)
    return dataclasses.replace(cfg, sources=source_specs(cfg))


def config_hash(cfg: PGEConfig) -> str:
    """Hash of the whole configuration and the experiment version."""
    return _hash(cfg, VERSION)


def describe(cfg: PGEConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    T, n_t = len(cfg.tasks), len(cfg.targets)
    batches = ["all" if b == 0 else b for b in cfg.stability_batches]
    lines = [
        f"mode: {cfg.mode}",
        f"primary claim: {cfg.primary}",
        f"tasks ({T}; each a source, {n_t} of them targets): "
        + ", ".join(t.name for t in cfg.tasks),
        f"items: {n_t * (T - 1)} ordered (source, target) pairs, source != target",
        f"network: {cfg.arch} width {cfg.width} depth {cfg.depth}, {cfg.image_size} px",
        f"sources: {cfg.n_source} images per task, {cfg.source_epochs} epochs, lr {cfg.source_lr}",
        f"truth: LP-FT transfer accuracy (head replaced, head_init={cfg.head_init!r}), "
        f"{cfg.per_class} labels/class, {cfg.n_test} test images, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, lr from {list(cfg.lr_grid)} chosen per target on a "
        f"{cfg.validation_fraction:.0%} validation split; seeds {list(cfg.seeds)}; "
        "linear probe and a random-init (scratch) model beside it",
        f"PGE: body parameters (head excluded), {cfg.restarts} restarts, batches of "
        f"{cfg.pge_batch_size}; source role {cfg.n_pge} source images, target role the "
        "target's few-shot images; control: target labels permuted",
        f"stability: {len(cfg.stability_pairs)} pairs x {cfg.stability_seeds} seeds x restarts "
        f"{list(cfg.stability_restarts)} x batches {batches}",
    ]
    return "\n".join(lines)
