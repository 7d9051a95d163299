"""PGE experiment: tasks, fast/full configuration, cache keys."""
from __future__ import annotations

from dataclasses import dataclass, field

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
