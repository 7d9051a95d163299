"""An experiment's cells: the fields of a config, the cache key of a cell derived from
them, the cached cells, and the one parallel map (here, local processes or Dask).

* :func:`late_field`, :func:`embedded` -- config fields hashed specially;
  :func:`flat_fields` / :func:`field_names` -- a config's fields as they are hashed.
* :func:`cell_key` -- a cell's cache key: every config field but the declared exclusions.
* :func:`cached_cell`, :func:`cached_cells` -- one cell, or many (the missing ones
  through :func:`parallel_map`), from the on-disk cache or computed and stored.
* :func:`parallel_map`, :func:`workers`, :func:`parallel_width` -- where cells run.

Everything here is re-exported by :mod:`transfer_nb.experiments.base`.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import field
from pathlib import Path

from transfer_nb.cache import cache_dir, hash_inputs, load_arrays, save_arrays

__all__ = ["late_field", "embedded", "flat_fields", "field_names", "cell_key", "cached_cell",
           "cached_cells", "workers", "on_dask", "parallel_width", "parallel_map"]


# ------------------------------------------------------------------------------ fields
def late_field(default):
    """A config field added after runs were stored: :func:`config_hash` leaves it out
    while it holds ``default`` (so the stored runs stay fresh) and hashes it otherwise."""
    return field(default=default, metadata={"late": True})


def embedded(default):
    """A config field holding a block of fields of its own (a frozen dataclass such as
    :class:`transfer_nb.experiments.zoo.SourceTraining`): :func:`flat_fields` and so
    :func:`config_hash` read the block's fields under their own names, as if the config
    held them itself (so embedding a block moves no stored hash)."""
    return field(default=default, metadata={"flatten": True})


def flat_fields(cfg) -> dict:
    """``dataclasses.asdict(cfg)`` with every :func:`embedded` block's fields lifted into
    the parent under their own names, and :func:`late_field` fields at their default
    left out: what :func:`config_hash` hashes and a pre-registration stores.

    Raises
    ------
    ValueError
        An embedded block's field has the name of a field of ``cfg``.
    """
    plain, out = dataclasses.asdict(cfg), {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("late") and value == f.default:
            continue
        if f.metadata.get("flatten"):
            inner = flat_fields(value)
            clash = sorted(set(inner) & {g.name for g in dataclasses.fields(cfg)})
            if clash:
                raise ValueError(f"{type(cfg).__name__}.{f.name} repeats fields {clash} of "
                                 f"its config")
            out.update(inner)
        else:
            out[f.name] = plain[f.name]
    return out


# ------------------------------------------------------------------------------ cells
def field_names(cfg) -> tuple:
    """Every field name of a config as :func:`flat_fields` names them (an
    :func:`embedded` block's fields under their own names; :func:`late_field` fields
    included, at their default too)."""
    out = []
    for f in dataclasses.fields(cfg):
        if f.metadata.get("flatten"):
            out += field_names(getattr(cfg, f.name))
        else:
            out.append(f.name)
    return tuple(out)


def cell_key(cfg, part: str, exclude: dict | None = None, **inputs) -> dict:
    """The cache key of one cell of an experiment, derived from its config's fields.

    Every field of ``cfg`` (:func:`flat_fields`) is in the key except those named in
    ``exclude``, which maps each left-out field to the reason it cannot change this
    cell (e.g. ``{"n_boot": "reports only"}``); ``inputs`` are the cell's own inputs (the
    target and source specs it runs on, the chosen learning rate).  A new config field is
    therefore in every key until someone declares why it is not: a field left out by
    mistake cannot serve a stale cell.

    Returns
    -------
    dict
        ``{"part": part, "config": {...}, **inputs}`` for :func:`cached_cell`.

    Raises
    ------
    ValueError
        ``exclude`` names a field ``cfg`` does not have or gives an empty reason, or an
        input is named ``part`` or ``config``.
    """
    exclude = dict(exclude or {})
    names = field_names(cfg)
    unknown = sorted(set(exclude) - set(names))
    if unknown:
        raise ValueError(f"cell {part!r}: excluded field(s) {unknown} are not fields of "
                         f"{type(cfg).__name__} (expected some of {list(names)})")
    silent = sorted(k for k, why in exclude.items() if not str(why).strip())
    if silent:
        raise ValueError(f"cell {part!r}: excluded field(s) {silent} need a reason (why "
                         f"they cannot change the cell)")
    clash = sorted({"part", "config"} & set(inputs))
    if clash:
        raise ValueError(f"cell {part!r}: inputs may not be named {clash}")
    config = {k: v for k, v in flat_fields(cfg).items() if k not in exclude}
    return {"part": part, "config": config, **inputs}


def cached_cell(kind: str, version: str, key: dict, compute, use_cache: bool = True) -> dict:
    """One experiment cell's arrays, from the on-disk cache or ``compute()``.

    The file is ``<cache>/<kind>/<key['part']>-<hash>.npz`` where the hash covers
    ``version`` and every entry of ``key`` (so any input that changes the result must be
    in ``key``: make it with :func:`cell_key`); it is written atomically.  ``use_cache=False`` recomputes and stores
    nothing.
    """
    path = _cell_path(kind, version, key)
    hit = load_arrays(path) if use_cache else None
    if hit is None:
        hit = compute()
        if use_cache:
            save_arrays(path, hit)
    return hit


def _cell_path(kind: str, version: str, key: dict) -> Path:
    return cache_dir(kind) / f"{key['part']}-{hash_inputs(version=version, **key)}.npz"


def _apply(fn, args):
    return fn(*args)


def cached_cells(kind: str, version: str, items: list, use_cache: bool = True, jobs=None,
                 bar=None) -> list:
    """Many cells at once: each ``(key, fn, args)``'s arrays from the on-disk cache (as
    :func:`cached_cell`), or ``fn(*args)`` -- the missing ones through
    :func:`parallel_map` (``jobs``; ``fn`` picklable), then stored.  Results in item
    order; ``bar`` advances once per item."""
    out = [load_arrays(_cell_path(kind, version, key)) if use_cache else None
           for key, _, _ in items]
    todo = [i for i, hit in enumerate(out) if hit is None]
    if bar is not None:
        bar.update(len(items) - len(todo))
    fresh = parallel_map(_apply, [(items[i][1], items[i][2]) for i in todo], jobs, bar)
    for i, hit in zip(todo, fresh):
        if use_cache:
            save_arrays(_cell_path(kind, version, items[i][0]), hit)
        out[i] = hit
    return out


# ---------------------------------------------------------------------------- workers
#: where :func:`parallel_map` runs while a :func:`workers` block is open (None: the
#: caller's ``jobs``)
_WORKERS: dict | None = None


@contextlib.contextmanager
def workers(jobs: int | None = None, dask=None):
    """Run every :func:`parallel_map` of the block on ``jobs`` local processes or on the
    Dask scheduler ``dask`` (an address such as ``"tcp://host:8786"``, a
    ``distributed.Client`` or a cluster), whatever ``jobs`` the experiment's config
    asks for: the command line's ``--jobs`` / ``--dask``.  Cells are seeded, so the
    tables do not depend on where they ran.

    Raises
    ------
    ValueError
        Both are given, or ``jobs`` is not a whole number >= 1.
    """
    global _WORKERS
    if jobs is not None and dask is not None:
        raise ValueError("pass jobs (local processes) or dask (a scheduler), not both")
    if jobs is not None and (isinstance(jobs, bool) or int(jobs) != jobs or int(jobs) < 1):
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    before = _WORKERS
    _WORKERS = None if jobs is None and dask is None else {
        "jobs": None if jobs is None else int(jobs), "dask": dask}
    try:
        yield
    finally:
        _WORKERS = before


def on_dask() -> bool:
    """Whether :func:`parallel_map` runs on a Dask scheduler now (a :func:`workers`
    block with ``dask``)."""
    return _WORKERS is not None and _WORKERS["dask"] is not None


def parallel_width(jobs: int | None = None) -> int:
    """How many cells :func:`parallel_map` runs at once: the :func:`workers` block's
    ``jobs`` (a Dask scheduler: as many as it is given), else ``jobs`` (None: 1)."""
    if _WORKERS is not None:
        return 1 << 30 if _WORKERS["dask"] is not None else _WORKERS["jobs"]
    return max(1, int(jobs or 1))


def parallel_map(fn, calls: list, jobs: int | None = None, bar=None) -> list:
    """``[fn(*args) for args in calls]`` in call order: here (one job), on loky worker
    processes, or on a Dask cluster.

    Inside a :func:`workers` block the block decides (``--jobs N`` / ``--dask
    ADDRESS``); elsewhere ``jobs`` processes (None or 1: here).  ``fn`` must be picklable
    and set its own torch threads; ``bar`` (a tqdm bar) advances per call.  The
    experiments' one map: every cell is seeded, so the results do not depend on where
    they ran.
    """
    calls = list(calls)
    dask = _WORKERS["dask"] if _WORKERS is not None else None
    if dask is not None and calls:
        from transfer_nb._dask import dask_map  # lazy: pulls in dask.distributed
        return dask_map(fn, calls, dask, None if bar is None else lambda k: bar.update(1))
    width = parallel_width(jobs)
    if width <= 1 or len(calls) <= 1:
        out = []
        for args in calls:
            out.append(fn(*args))
            if bar is not None:
                bar.update(1)
        return out
    from joblib import Parallel, delayed
    out = []
    for res in Parallel(n_jobs=width, backend="loky", return_as="generator")(
            delayed(fn)(*args) for args in calls):
        out.append(res)
        if bar is not None:
            bar.update(1)
    return out
