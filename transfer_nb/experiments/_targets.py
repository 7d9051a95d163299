"""Folder targets of the experiments: the checks made before anything is trained and the
exact per-class draw (used by :func:`transfer_nb.experiments.base.load_target`, which
re-exports these names).

* :class:`TargetError` -- a target the experiment cannot use (one line on the command).
* :func:`check_target`, :func:`check_targets` -- a folder has >= 2 classes and every
  class enough training images for the draw and one test image; the message names every
  class that is too small, with its counts.
* :func:`draw_per_class` -- exactly ``per_class`` items of every class, seeded.
* :func:`target_draws` -- what a run drew per class, for its metadata.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["TargetError", "check_target", "check_targets", "draw_per_class", "target_draws"]


class TargetError(ValueError):
    """A target the experiment cannot use (unknown name, missing or unusable folder, too
    few images in a class): the experiment command prints it in one line and exits 2."""


def _folder_counts(spec) -> tuple[list, np.ndarray, np.ndarray]:
    """``(classes, training images per class, test images per class)`` of a folder
    target's fixed split (seed 0), from the file list alone (nothing decoded)."""
    from transfer_nb.data.folder import folder_source, folder_split
    from transfer_nb.data.registry import DATASETS
    opts = {**DATASETS["folder"].options, **dict(spec.options)}
    try:
        source = folder_source(opts["root"], opts["skip_bad"])
    except ValueError as exc:
        raise TargetError(f"target {spec.name!r}: {exc}") from None
    k = len(source.classes)
    counts = [np.bincount(source.targets[folder_split(source, part, opts["test_fraction"], 0)],
                          minlength=k) for part in ("train", "test")]
    return list(source.classes), counts[0], counts[1]


def check_target(spec, extra_per_class: int = 0) -> dict:
    """Check that a folder target can give what the experiment draws, before anything is
    trained; a named data set passes unchecked (its draws are the stored runs').

    A folder must hold at least 2 classes, and every class ``per_class +
    extra_per_class`` images in its training split (``extra_per_class``: validation
    images an experiment takes from the training split) and 1 in its test split.

    Returns
    -------
    dict
        ``{class: (training images, test images)}`` (empty for a named data set).

    Raises
    ------
    TargetError
        Naming every class that is too small, with its counts.
    """
    if not spec.is_folder:
        return {}
    classes, n_train, n_test = _folder_counts(spec)
    need = spec.per_class + int(extra_per_class)
    short = [f"{c} ({a} training, {b} test)" for c, a, b in zip(classes, n_train, n_test)
             if a < need or b < 1]
    if short:
        asked = (f"{spec.per_class} training images per class"
                 + (f" (+ {extra_per_class} for validation)" if extra_per_class else ""))
        raise TargetError(f"target {spec.name!r}: class(es) too small for {asked} and 1 "
                          f"test image: {', '.join(short)}; add images to them, remove "
                          f"them, or ask fewer per class")
    return {c: (int(a), int(b)) for c, a, b in zip(classes, n_train, n_test)}


def check_targets(specs, extra_per_class: int = 0) -> tuple:
    """:func:`check_target` on each spec; returns ``specs`` unchanged."""
    for spec in specs:
        check_target(spec, extra_per_class)
    return tuple(specs)


def draw_per_class(labels, per_class: int, seed: int) -> np.ndarray:
    """Indices of exactly ``per_class`` items of every class of ``labels``, chosen by
    ``seed``, in a seeded random order (ValueError when a class has fewer)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0xD7A3])
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < per_class:
            raise TargetError(f"class {c} has {idx.size} items, fewer than {per_class}")
        chosen.append(idx[rng.permutation(idx.size)[:per_class]])
    out = np.concatenate(chosen)
    return out[rng.permutation(out.size)]


def target_draws(specs, seed: int = 0, extra_per_class: int = 0) -> dict:
    """What a run drew: ``{target: {"asked_per_class": k, "drawn": {class: count}}}``
    for ``seed`` (through :func:`load_target`, at 8 px), for a run's metadata."""
    out = {}
    for spec in specs:
        if spec.n_train is not None:        # regression sets: no classes
            continue
        wider = dataclasses.replace(spec, per_class=spec.per_class + int(extra_per_class))
        from transfer_nb.experiments.base import load_target
        train, _ = load_target(wider, 8, seed)
        y = np.asarray(train.targets)
        out[spec.name] = {"asked_per_class": wider.per_class,
                          "drawn": {str(c): int((y == k).sum())
                                    for k, c in enumerate(train.classes)}}
    return out
