"""The one source zoo of the experiments that train their own source models (transrate,
regression, pge): how a source is trained and how the LP-FT truth's recipe is chosen.

* :class:`SourceTraining` -- the block of fields every such config embeds (as its
  ``training`` field): the sources' architecture and training, and the fine-tuning recipe
  of the ground truth.  A config made with :func:`trains_sources` reads them as its own
  attributes (``cfg.width`` is ``cfg.training.width``), and :func:`replace` accepts them
  by their flat names (``replace(cfg, seeds=(0,))``).
* :func:`build_source` -- one source model (trained, or loaded from the cache).
* :func:`recipe_sources` -- the models a target's recipe is chosen on (fixed by rule).
* :func:`choose_recipe` -- the learning rate of a target, chosen on a validation split of
  its training images before any score is correlated; :func:`recipe_arrays` -- its rows
  as the arrays of a cached cell.

The config hash reads an embedded block's fields under their own names
(:func:`transfer_nb.experiments.base.flat_fields`), so embedding it moved no stored hash.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.experiments import base

__all__ = ["SourceTraining", "TRAINING_FIELDS", "trains_sources", "replace", "training_of",
           "source_data", "build_source", "recipe_sources", "choose_recipe", "recipe_arrays"]


@dataclass(frozen=True)
class SourceTraining:
    """How an experiment trains its source zoo and the fine-tuning of its ground truth.

    Sources: ``arch`` (a :func:`transfer_nb.models.train_source` architecture) of
    ``width`` and ``depth`` at ``image_size`` px, trained ``source_epochs`` epochs (the
    budget of every zoo entry whose ``SourceSpec.epochs`` is -1) with SGD at
    ``source_lr``, batches of ``source_batch_size``.

    Truth: LP-FT (``head_init="probe"``) or plain fine-tuning (``"random"``) for
    ``epochs`` epochs in batches of ``batch_size``, once per seed of ``seeds``; the
    learning rate is chosen per target from ``lr_grid`` by ``recipe_models`` trained
    models on ``validation_fraction`` of the target's training images.
    """
    arch: str = "small_cnn"
    width: int = 16
    depth: int = 3
    image_size: int = 16
    source_epochs: int = 8
    source_lr: float = 0.05
    source_batch_size: int = 64
    head_init: str = "probe"
    epochs: int = 30
    batch_size: int = 16
    lr_grid: tuple = (0.001, 0.003, 0.01)
    recipe_models: int = 3
    validation_fraction: float = 0.4
    seeds: tuple = (0, 1, 2)


#: the names of :class:`SourceTraining`'s fields, in order
TRAINING_FIELDS = tuple(f.name for f in dataclasses.fields(SourceTraining))


def _forward(name: str):
    return property(lambda self: getattr(self.training, name),
                    doc=f"``training.{name}`` (:class:`SourceTraining`)")


def trains_sources(cls):
    """Class decorator for a config dataclass with a ``training`` field made by
    :func:`transfer_nb.experiments.base.embedded`: every :class:`SourceTraining` field
    becomes a read-only attribute of the config (``cfg.width``).

    Raises
    ------
    TypeError
        ``cls`` has no ``training`` field, or a field of its own shadows one of
        :data:`TRAINING_FIELDS`.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    if "training" not in names:
        raise TypeError(f"{cls.__name__} has no 'training' field (a SourceTraining)")
    clash = sorted(names & set(TRAINING_FIELDS))
    if clash:
        raise TypeError(f"{cls.__name__} repeats SourceTraining fields {clash}")
    for name in TRAINING_FIELDS:
        setattr(cls, name, _forward(name))
    return cls


def replace(cfg, **changes):
    """``dataclasses.replace`` for a config that embeds a :class:`SourceTraining`: a
    change named by a :data:`TRAINING_FIELDS` name goes into ``cfg.training``.

    Raises
    ------
    ValueError
        A name is neither a field of ``cfg`` nor of :class:`SourceTraining`.
    """
    own = {f.name for f in dataclasses.fields(cfg)}
    inner = {k: changes.pop(k) for k in list(changes) if k in TRAINING_FIELDS and k not in own}
    unknown = sorted(set(changes) - own)
    if unknown:
        raise ValueError(f"{type(cfg).__name__} has no field(s) {unknown}; expected fields "
                         f"of {sorted(own | set(TRAINING_FIELDS) - {'training'})}")
    if inner:
        changes["training"] = dataclasses.replace(changes.get("training", cfg.training),
                                                  **inner)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def training_of(cfg) -> SourceTraining:
    """The :class:`SourceTraining` of ``cfg``: itself, a config's embedded ``training``,
    or (an experiment that does not embed one yet) one read from its same-named
    attributes, the :class:`SourceTraining` defaults for those it lacks.

    Raises
    ------
    ValueError
        ``cfg`` has none of the :class:`SourceTraining` fields.
    """
    if isinstance(cfg, SourceTraining):
        return cfg
    if isinstance(getattr(cfg, "training", None), SourceTraining):
        return cfg.training
    found = {k: getattr(cfg, k) for k in TRAINING_FIELDS if hasattr(cfg, k)}
    if not found:
        raise ValueError(f"expected a SourceTraining or a config embedding one, got "
                         f"{type(cfg).__name__}")
    return SourceTraining(**found)


# ------------------------------------------------------------------------------ sources
def source_data(spec: base.SourceSpec, image_size: int, seed: int = 0):
    """The training images of a source (``spec.n`` of its train split, drawn by ``seed``),
    with ``spec.label_noise`` of the labels replaced."""
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    data = load_dataset(spec.dataset, split="train", n=spec.n, image_size=image_size,
                        seed=seed, **dict(spec.options))
    return base.with_label_noise(data, spec.label_noise, seed)


def _test_size(spec: base.SourceSpec) -> int:
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    return len(load_dataset(spec.dataset, split="test", image_size=8, **dict(spec.options)))


def build_source(spec: base.SourceSpec, training: SourceTraining, arch: str | None = None,
                 **arch_options):
    """Train (or load from the cache) one source model (``spec.epochs=0``: random init).

    Parameters
    ----------
    spec : SourceSpec
        The source: its data set, images, label noise, epochs and setting (``augment``).
    training : SourceTraining
        The architecture and its training (a config embedding one is accepted too,
        :func:`training_of`).
    arch, **arch_options
        Another architecture and its options than ``training``'s (default: ``arch``,
        ``width`` and ``depth`` of ``training``).

    Returns
    -------
    (model, float)
        The model (``transfer_nb_name`` set to ``spec.name``) and its accuracy on (up to
        400 images of) the source's own test split -- a baseline a score must beat.
    """
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    from transfer_nb.models import train_source  # lazy: pulls in torch
    from transfer_nb.training import evaluate  # lazy: pulls in torch
    training = training_of(training)
    data = source_data(spec, training.image_size, 0)
    options = arch_options or {"width": training.width, "depth": training.depth}
    with torch_threads(1):
        model = train_source(arch or training.arch, data, epochs=spec.epochs,
                             lr=training.source_lr, batch_size=training.source_batch_size,
                             seed=0, progress=False,
                             augment=bool(dict(spec.setting).get("augment", False)), **options)
        test = load_dataset(spec.dataset, split="test", n=min(400, _test_size(spec)),
                            image_size=training.image_size, seed=0, **dict(spec.options))
        acc = float(evaluate(model, test, metric="accuracy"))
    model.transfer_nb_name = spec.name
    return model, acc


# ------------------------------------------------------------------------------ recipe
def recipe_sources(sources, degenerate=(), n: int = 3) -> list:
    """The ``n`` sources a recipe is chosen on: evenly spaced over ``sources`` (config
    order), those ``degenerate`` declares ``"out"`` and untrained ones (``epochs == 0``,
    even when declared in) left out -- a rule fixed before any accuracy is seen.

    Raises
    ------
    ValueError
        No trained source is left, or ``n < 1``.
    """
    if int(n) < 1:
        raise ValueError(f"recipe_models must be >= 1, got {n}")
    out = dict(degenerate)
    pool = [s for s in sources if out.get(s.name) != "out" and s.epochs != 0]
    if not pool:
        raise ValueError("no trained source is left to choose the recipe (every source is "
                         "untrained or declared out)")
    idx = np.unique(np.linspace(0, len(pool) - 1, int(n)).round().astype(int))
    return [pool[i] for i in idx]


def choose_recipe(training: SourceTraining, target: base.TargetSpec, models: dict,
                  sources=None, degenerate=None, draw_seed: int | None = None) -> tuple:
    """The learning rate of ``training.lr_grid`` with the best mean validation accuracy.

    The target's *training* images (the draw ``draw_seed``) are split (stratified,
    ``validation_fraction`` held out, seed 0); each grid value fine-tunes the
    :func:`recipe_sources` of ``sources`` on the rest with seed 0.  The test images are
    never seen.

    Parameters
    ----------
    training : SourceTraining
        Or a config embedding one: its ``sources``, ``degenerate`` and ``draw_seed``
        are then the defaults of the three arguments below.
    target : TargetSpec
    models : dict
        ``{source name: (model, source accuracy)}`` holding at least the recipe sources.
    sources, degenerate, draw_seed
        The zoo the recipe models are drawn from, its declared items, and the few-shot
        draw (default: the config's, or all of ``models``' names, none, 0).

    Returns
    -------
    (float, list of dict)
        The chosen learning rate and one row per (model, lr): ``target``, ``model``,
        ``lr``, ``val_accuracy``, ``chosen``.
    """
    import pandas as pd

    from transfer_nb.data.base import stratified_split  # lazy: pulls in torch
    from transfer_nb.training.transfer import choose_recipe as choose  # lazy: pulls in torch
    cfg, training = training, training_of(training)
    if sources is None:
        sources = getattr(cfg, "sources", None)
        if sources is None:
            raise ValueError("choose_recipe needs the zoo's sources (pass sources=...)")
    degenerate = getattr(cfg, "degenerate", ()) if degenerate is None else degenerate
    draw_seed = getattr(cfg, "draw_seed", 0) if draw_seed is None else draw_seed
    train, _ = base.load_target(target, training.image_size, draw_seed)
    fit_idx, val_idx = stratified_split(np.asarray(train.targets),
                                        training.validation_fraction, 0)
    fit, val = train.subset(fit_idx), train.subset(val_idx)
    chosen = {spec.name: models[spec.name][0]
              for spec in recipe_sources(sources, degenerate, training.recipe_models)}
    with torch_threads(1):
        recipe, rows = choose(chosen, fit, val, [{"lr": lr} for lr in training.lr_grid],
                              epochs=training.epochs, batch_size=training.batch_size, seed=0,
                              progress=False, normalize="none", head_init=training.head_init)
    table = pd.DataFrame(rows)
    table.insert(0, "target", target.name)
    table = table[["target", "model", "lr", "val_accuracy", "chosen"]]
    return float(recipe["lr"]), table.to_dict("records")


def recipe_arrays(lr: float, rows: list, metric: str = "val_accuracy") -> dict:
    """A recipe (``lr`` and the rows of :func:`choose_recipe`) as the arrays of a cached
    cell: ``chosen_lr``, ``model``, ``lr`` and ``metric`` (one entry per row)."""
    return {"chosen_lr": np.array(lr), "model": np.array([r["model"] for r in rows]),
            "lr": np.array([r["lr"] for r in rows]),
            metric: np.array([r[metric] for r in rows])}
