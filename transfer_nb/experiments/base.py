"""What the five paper experiments share: the experiment contract (docs/contributing.md,
"The experiment contract").

* :class:`SourceSpec`, :class:`TargetSpec` -- a source model to train, a target task (a
  named data set with options, or a user's image folder); :func:`target_spec` turns a
  name or a folder path into one, :func:`load_target` is the one target loader.
* :func:`resolve_mode` -- ``"fast"`` | ``"full"`` (None: the environment's), and
  ``"confirm"`` for the papers with a pre-registered confirmation preset
  (:mod:`transfer_nb.experiments.confirm`).
* :func:`config_hash` -- the hash that marks a stored run stale (over
  :func:`~transfer_nb.experiments.cells.flat_fields`).
* Re-exported from :mod:`transfer_nb.experiments.cells`: :func:`late_field` and
  :func:`embedded` (fields hashed specially), :func:`cell_key` (a cell's cache key,
  derived from the config's fields), :func:`cached_cell` / :func:`cached_cells`, and the
  one parallel map :func:`parallel_map` with :func:`workers` (``--jobs`` / ``--dask``).
* :class:`Results`, :func:`save_run`, :func:`load_run` -- a run's tidy tables and
  metadata, stored under ``results/<paper>/`` (a confirmation under
  ``results/<paper>/confirm/``) with its provenance (config hash, commit, device, date,
  wall-clock, library versions).
* :data:`VERDICT_COLUMNS`, :func:`verdict_row` -- the shape of every "paper says / this
  run measured" table.
* The validity gates (docs/contributing.md, rule 1) live in :mod:`transfer_nb.experiments.gates`.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transfer_nb import stats
from transfer_nb._version import __version__
from transfer_nb.cache import atomic_write_bytes, hash_inputs
from transfer_nb.experiments.cells import (cached_cell, cached_cells, cell_key,  # noqa: F401
                                           embedded, field_names, flat_fields, late_field,
                                           on_dask, parallel_map, parallel_width, workers)
from transfer_nb.config import fast_mode
from transfer_nb.stats import VERDICTS
from transfer_nb.experiments._targets import (TargetError, check_target,  # noqa: F401
                                              check_targets, draw_per_class)

__all__ = ["SourceSpec", "TargetSpec", "TargetError", "target_spec", "target_specs",
           "load_target", "check_target", "check_targets", "draw_per_class",
           "num_classes", "with_label_noise", "resolve_mode", "config_hash", "Results",
           "save_run", "load_run", "results_dir", "VERDICT_COLUMNS", "verdict_row",
           "verdict_table", "MODES", "item_means", "correlation_claim", "paired_claim",
           "cached_cell", "cached_cells", "cell_key", "field_names", "declared_out",
           "exclusion_rows", "late_field", "embedded", "flat_fields", "parallel_map",
           "parallel_width", "workers", "on_dask", "CONFIRM", "split_option", "data_options"]

MODES = ("fast", "full")
#: the mode of a pre-registered confirmation run (:mod:`transfer_nb.experiments.confirm`)
CONFIRM = "confirm"


# ------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class SourceSpec:
    """A small source model an experiment trains (and caches).

    ``epochs=0`` is the random initialisation (BatchNorm statistics still set on the
    source images); ``label_noise`` the fraction of source labels replaced by uniformly
    random ones; ``options`` extra ``(key, value)`` pairs for ``load_dataset``;
    ``setting`` paper-specific ``(key, value)`` pairs (e.g. ``(("eps", 0.5),)``).
    """
    name: str
    dataset: str
    epochs: int
    n: int = 600
    label_noise: float = 0.0
    options: tuple = ()
    setting: tuple = ()


@dataclass(frozen=True)
class TargetSpec:
    """A target task: ``per_class`` labelled training images per class (or ``n_train``
    images in all, for regression sets) and ``n_test`` test images.

    ``dataset`` is a name of :func:`transfer_nb.data.list_datasets` or ``"folder"`` with
    ``options=(("root", PATH),)`` (a user's images, one subfolder per class).  The option
    ``("split", "fixed")`` (not passed to the data set) makes a named data set's
    train/test split the seed-0 one for every seed, as a folder's is (see
    :func:`load_target`); the confirmation presets use it.
    """
    name: str
    dataset: str
    per_class: int = 10
    n_test: int = 250
    options: tuple = ()
    n_train: int | None = None

    @property
    def is_folder(self) -> bool:
        return self.dataset == "folder"


def target_spec(value, per_class: int = 10, n_test: int = 250, task: str = "classification"
                ) -> TargetSpec:
    """A :class:`TargetSpec` from a spec, a data-set name or an image-folder path.

    Raises
    ------
    ValueError
        ``value`` is neither a known data set of the ``task`` nor an existing folder.
    """
    from transfer_nb.data import list_datasets  # lazy: pulls in torch
    if isinstance(value, TargetSpec):
        return value
    if isinstance(value, os.PathLike) or (isinstance(value, str) and (os.sep in value
                                                                       or Path(value).is_dir())):
        path = Path(value).expanduser()
        if not path.exists():
            raise TargetError(f"target {str(value)!r} does not exist: no such folder, and it "
                              f"is not a data-set name (expected one of "
                              f"{list_datasets(task=task)} or a folder with one subfolder of "
                              f"images per class)")
        if not path.is_dir():
            raise TargetError(f"target {str(value)!r} is a file, not a folder (expected a "
                              f"data-set name or a folder with one subfolder of images per "
                              f"class)")
        if task != "classification":
            raise TargetError(f"target {str(value)!r}: an image folder gives class labels, "
                              f"but this experiment needs {task} targets; expected one of "
                              f"{list_datasets(task=task)}")
        return TargetSpec(path.resolve().name, "folder", per_class, n_test,
                          options=(("root", str(path.resolve())),))
    if isinstance(value, str):
        known = list_datasets(task=task)
        if value not in known:
            raise TargetError(f"unknown target {value!r}: expected one of {known} or a folder "
                              f"with one subfolder of images per class")
        return TargetSpec(value, value, per_class, n_test)
    raise TargetError(f"a target must be a data-set name, a folder path or a TargetSpec, "
                      f"got {type(value).__name__}")


def target_specs(targets, default: tuple, per_class: int = 10, n_test: int = 250,
                 task: str = "classification") -> tuple:
    """``default`` when ``targets`` is None, else each of ``targets`` through
    :func:`target_spec` (a single name or path counts as one target)."""
    if targets is None:
        return tuple(default)
    if isinstance(targets, (str, os.PathLike, TargetSpec)):
        targets = [targets]
    specs = tuple(target_spec(t, per_class, n_test, task) for t in targets)
    if not specs:
        raise TargetError("targets is empty: pass at least one data-set name or folder")
    return specs


def split_option(spec: TargetSpec) -> str:
    """``"fixed"`` when ``spec`` carries ``("split", "fixed")`` (or is a folder), else
    ``"seeded"`` (a named data set's split made with the run's seed: the stored runs')."""
    value = dict(spec.options).get("split", "seeded")
    if value not in ("seeded", "fixed"):
        raise TargetError(f"target {spec.name!r}: option split must be 'fixed' or 'seeded', "
                          f"got {value!r}")
    return "fixed" if spec.is_folder else value


def data_options(spec) -> dict:
    """The options of a target (or source) spec that go to ``load_dataset`` (all but the
    experiment's own ``split``)."""
    return {k: v for k, v in spec.options if k != "split"}


def _load(spec: TargetSpec, split: str, n, image_size, seed: int, normalize):
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    return load_dataset(spec.dataset, split=split, n=n, image_size=image_size, seed=seed,
                        normalize=normalize, **data_options(spec))


def num_classes(spec: TargetSpec) -> int:
    """Number of classes of a classification target (its class list, at 8 px)."""
    return len(_load(spec, "train", None, 8, 0, None).classes)


def load_target(spec: TargetSpec, image_size, seed: int = 0, normalize: str | None = None):
    """``(train, test)`` of a target: the one target loader of every experiment.

    ``train`` holds ``per_class`` images per class (``n_train`` in all when set), drawn
    by ``seed``; ``test`` holds ``n_test`` images of the test split (all of it when it is
    smaller), drawn with seed 0 so every seed is measured on the same test set.

    A folder target, and a named data set with the option ``("split", "fixed")``, draw
    from a training split that is fixed (seed 0), so that no seed's training images reach
    the test split: exactly ``per_class`` images of every class (a class with fewer
    raises, :func:`check_target`), or for a regression set (``n_train``) ``n_train``
    images in a seeded random draw.  Without the option a named data set splits with
    ``seed`` and draws ``per_class * num_classes`` images stratified by class (the stored
    runs' draws: for ``seed != 0`` some training images are then in the seed-0 test set).

    Raises
    ------
    TargetError
        A class has fewer training images than asked for (the message names the target,
        and for a folder every class that is too small, with its counts).
    """
    if split_option(spec) == "fixed":
        if spec.is_folder:
            check_target(spec)
        pool = _load(spec, "train", None, image_size, 0, normalize)
        if spec.n_train is None:
            idx = draw_per_class(pool.targets, spec.per_class, seed)
        else:
            if spec.n_train > len(pool):
                raise TargetError(f"target {spec.name!r}: cannot draw {spec.n_train} training "
                                  f"images from a training split of {len(pool)}")
            idx = np.random.default_rng([int(seed), 0xF1D]).permutation(len(pool))[
                :spec.n_train]
        train = pool.subset(idx)
    else:
        n_train = (spec.n_train if spec.n_train is not None
                   else spec.per_class * num_classes(spec))
        try:
            train = _load(spec, "train", n_train, image_size, seed, normalize)
        except ValueError as exc:
            raise TargetError(f"target {spec.name!r}: cannot draw {n_train} training images "
                              f"({exc})") from None
    full_test = _load(spec, "test", None, image_size, 0, normalize)
    if spec.n_test >= len(full_test):
        return train, full_test
    return train, _load(spec, "test", spec.n_test, image_size, 0, normalize)


def with_label_noise(data, fraction: float, seed: int):
    """A copy of an ImageDataset whose labels are replaced, for ``fraction`` of the images,
    by uniformly random classes (fixed by ``seed``; recorded in ``spec``)."""
    from transfer_nb.data.base import ImageDataset  # lazy: pulls in torch
    if fraction <= 0:
        return data
    rng = np.random.default_rng([seed, 7919])
    y = np.asarray(data.targets).copy()
    flip = rng.random(len(y)) < fraction
    y[flip] = rng.integers(0, len(data.classes), size=int(flip.sum()))
    return ImageDataset(data._images, y, data.classes, name=data.name,
                        spec={**data.spec, "label_noise": float(fraction), "noise_seed": seed},
                        normalize=data.normalize, source_indices=data.source_indices)


# ------------------------------------------------------------------------------ config
def resolve_mode(mode, modes: tuple = MODES) -> str:
    """One of ``modes`` (default ``"fast"`` or ``"full"``; a paper with a confirmation
    preset passes ``(*MODES, CONFIRM)``); None reads the environment (``CI`` /
    ``TRANSFER_NB_FAST``: fast, else full)."""
    if mode is None:
        return "fast" if fast_mode() else "full"
    if mode not in modes:
        raise ValueError(f"mode must be one of {list(modes)}, got {mode!r}")
    return mode


def config_hash(cfg, version: str) -> str:
    """SHA-256 over a frozen config dataclass (:func:`flat_fields`) and the experiment's
    version string: a stored run is stale when it no longer matches.  Fields made by
    :func:`late_field` count only when they differ from their default."""
    return hash_inputs(version=version, config=flat_fields(cfg))


# ------------------------------------------------------------------------------ results
@dataclass
class Results:
    """A run: its main tidy ``table``, further named ``tables`` and ``meta`` (paper, mode,
    config hash, provenance).  ``cfg`` is the config that produced it (None when loaded
    from disk)."""
    paper: str
    table: object
    tables: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    cfg: object = None


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def results_dir(paper: str, root=None, confirm: bool = False) -> Path:
    """``results/<paper>/`` of the repository (or of ``root``); with ``confirm``, its
    ``confirm/`` folder (the pre-registered confirmation)."""
    folder = (Path(root) if root is not None else _repo_root()) / "results" / paper
    return folder / CONFIRM if confirm else folder


def _provenance(root: Path) -> dict:
    import numpy
    import pandas
    import scipy
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"cpu ({platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads)")
    return {"commit": commit, "device": device,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": {"transfer_nb": __version__, "torch": torch.__version__,
                         "numpy": numpy.__version__, "scipy": scipy.__version__,
                         "pandas": pandas.__version__, "python": platform.python_version()}}


def save_run(results: Results, root=None) -> Path:
    """Store a run under ``results/<paper>/`` (a run whose ``meta["mode"]`` is
    ``"confirm"``: under ``results/<paper>/confirm/``): ``table.csv``, one CSV per extra
    table and ``run.json`` (``meta`` + provenance).  Files are written atomically.
    Returns the folder."""
    folder = results_dir(results.paper, root, confirm=results.meta.get("mode") == CONFIRM)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "table.csv", results.table.to_csv(index=False).encode())
    for name, table in results.tables.items():
        atomic_write_bytes(folder / f"{name}.csv", table.to_csv(index=False).encode())
    rows = {"table": int(len(results.table)),
            **{name: int(len(t)) for name, t in results.tables.items()}}
    meta = {**results.meta, **_provenance(folder), "tables": sorted(results.tables),
            "rows": rows}
    atomic_write_bytes(folder / "run.json", (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return folder


def _read_table(folder: Path, name: str, rows: dict):
    """``<name>.csv`` of a stored run, checked against the row count run.json records."""
    import pandas as pd
    path = folder / f"{name}.csv"
    if not path.exists():
        raise ValueError(f"stored run {str(folder)!r}: {path.name} is missing (run.json "
                         f"lists it); re-run the experiment with --full --save")
    want = rows.get(name)
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        if want is not None and int(want) == 0:     # an empty table (no columns) was stored
            return pd.DataFrame()
        raise ValueError(f"stored run {str(folder)!r}: {path.name} cannot be read as a CSV "
                         f"table (the file is empty; run.json records {want} rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"stored run {str(folder)!r}: {path.name} cannot be read as a CSV "
                         f"table ({' '.join(str(exc).split())})") from None
    if want is not None and len(table) != int(want):
        raise ValueError(f"stored run {str(folder)!r}: {path.name} has {len(table)} rows but "
                         f"run.json records {int(want)} (truncated or edited?)")
    return table


def load_run(paper: str, current_hash: str | None = None, root=None, confirm: bool = False
             ) -> Results | None:
    """The stored run of ``paper`` (None when there is none; ``confirm``: its stored
    confirmation, ``results/<paper>/confirm/``).  With ``current_hash``,
    ``meta["stale"]`` says whether it no longer matches the current config.

    Raises
    ------
    ValueError
        Naming the file and what is wrong: ``run.json`` truncated or not JSON, not a
        JSON object, a table it lists missing or unreadable, or a table with another
        number of rows than ``run.json`` records (runs stored before the counts were
        recorded load without that check).
    """
    folder = results_dir(paper, root, confirm)
    path = folder / "run.json"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"stored run file {str(path)!r} is not valid JSON (truncated or "
                         f"edited?): {exc.msg} at line {exc.lineno}, column {exc.colno}"
                         ) from None
    except UnicodeDecodeError:
        raise ValueError(f"stored run file {str(path)!r} is not text (expected JSON)"
                         ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"stored run file {str(path)!r} holds a JSON "
                         f"{type(meta).__name__}, expected an object of run metadata")
    names = meta.get("tables", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"stored run file {str(path)!r}: 'tables' must be a list of table "
                         f"names, got {names!r}")
    rows = meta.get("rows") or {}
    if not isinstance(rows, dict):
        raise ValueError(f"stored run file {str(path)!r}: 'rows' must map table names to "
                         f"row counts, got {rows!r}")
    table = _read_table(folder, "table", rows)
    tables = {name: _read_table(folder, name, rows) for name in names}
    if current_hash is not None:
        meta["stale"] = meta.get("config_hash") != current_hash
    return Results(paper, table, tables, meta)


# ------------------------------------------------------------------------------ verdicts
#: columns of every ``report.verdicts`` table ("paper says / this run measured")
VERDICT_COLUMNS = ("claim", "primary", "paper", "statistic", "estimate", "low", "high",
                   "rule", "verdict", "gates")


def verdict_row(claim: str, *, primary: bool, paper, statistic: str, estimate, low, high,
                rule: str, verdict: str, gates: str = "", **extra) -> dict:
    """One row of a verdict table (checked: the verdict word is one of stats.VERDICTS);
    ``extra`` columns (e.g. ``loo_low``, ``loo_high``) follow the standard ones."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {list(VERDICTS)}, got {verdict!r}")
    return {"claim": claim, "primary": bool(primary), "paper": paper, "statistic": statistic,
            "estimate": float(estimate), "low": float(low), "high": float(high),
            "rule": rule, "verdict": verdict, "gates": gates, **extra}


def verdict_table(rows):
    """A DataFrame of :func:`verdict_row` rows with exactly one primary claim."""
    import pandas as pd
    rows = list(rows)
    extra = [k for r in rows for k in r if k not in VERDICT_COLUMNS]
    table = pd.DataFrame(rows, columns=list(VERDICT_COLUMNS) + list(dict.fromkeys(extra)))
    if int(table["primary"].sum()) != 1:
        raise ValueError(f"a verdict table needs exactly one primary claim, got "
                         f"{int(table['primary'].sum())}")
    return table


# ------------------------------------------------------------------------------ claims
def item_means(table, group: str, item: str, columns) -> "object":
    """Mean of ``columns`` per (group, item) over seeds: the items a correlation uses."""
    return table.groupby([group, item], sort=False)[list(columns)].mean().reset_index()


def correlation_claim(means, score: str, truth: str, group: str, *, claim: str,
                      primary: bool, paper, method: str = "pearson", groups_used=None,
                      gates: str = "", n_boot: int = 1000) -> dict:
    """A verdict row for "``score`` correlates positively with ``truth``", decided by
    :func:`transfer_nb.stats.correlation_verdict` pooled within ``group`` over the groups
    that passed the gates (``groups_used``); ``excluded`` when none did."""
    names = {"pearson": "Pearson", "kendall": "Kendall tau", "weighted_tau": "weighted tau"}
    rule = (f"{names[method]} pooled within {group} (items resampled within each), "
            "95% bootstrap interval > 0: reproduced; < 0: not reproduced; else inconclusive; "
            "fragile when leaving one item out flips it")
    used = means if groups_used is None else means[means[group].isin(list(groups_used))]
    if used.empty or score not in used:
        why = "no group passed the gates" if used.empty else f"no column {score!r}"
        return verdict_row(claim, primary=primary, paper=paper, statistic=names[method],
                           estimate=np.nan, low=np.nan, high=np.nan, rule=rule,
                           verdict="excluded", gates=f"{gates}; {why}".strip("; "),
                           loo_low=np.nan, loo_high=np.nan, n_items=int(len(used)))
    out = stats.correlation_verdict(used[score].to_numpy(float), used[truth].to_numpy(float),
                                    used[group].astype(str).to_numpy(), method, 0.0, n_boot)
    # undefined (too few items, a constant score): excluded, and the note says which
    verdict = out["verdict"] if np.isfinite(out["estimate"]) else "excluded"
    return verdict_row(claim, primary=primary, paper=paper, statistic=names[method],
                       estimate=out["estimate"], low=out["low"], high=out["high"], rule=rule,
                       verdict=verdict, gates=f"{gates}; {out['note']}".strip("; "),
                       loo_low=out["loo_low"], loo_high=out["loo_high"],
                       n_items=int(out["n_items"]))


def paired_claim(means, a: str, b: str, truth: str, group: str, *, claim: str, paper,
                 direction: float = 1.0, method: str = "pearson", groups_used=None,
                 gates: str = "", n_boot: int = 1000) -> dict:
    """A verdict row for "``a`` correlates better (``direction > 0``) or worse than ``b``",
    decided by :func:`transfer_nb.stats.paired_correlation_difference` (same resamples)."""
    rule = (f"paired bootstrap of r({a}) - r({b}) within {group}: interval on the claimed "
            "side of 0: reproduced; on the other: not reproduced; else inconclusive")
    used = means if groups_used is None else means[means[group].isin(list(groups_used))]
    if used.empty:
        return verdict_row(claim, primary=False, paper=paper, statistic=f"{method} difference",
                           estimate=np.nan, low=np.nan, high=np.nan, rule=rule,
                           verdict="excluded", gates=f"{gates}; no group passed".strip("; "))
    d = stats.paired_correlation_difference(
        used[a].to_numpy(float), used[b].to_numpy(float), used[truth].to_numpy(float),
        used[group].astype(str).to_numpy(), method, n_boot)
    return verdict_row(claim, primary=False, paper=paper, statistic=f"{method} difference",
                       estimate=d["estimate"], low=d["low"], high=d["high"], rule=rule,
                       verdict=stats.direction_verdict(d["low"], d["high"], direction),
                       gates=gates)


def n_boot_of(results, n_boot: int | None = None) -> int:
    """The bootstrap size a report uses: ``n_boot`` when given, else the run's config's
    (1000 when the run carries no config)."""
    if n_boot is not None:
        return int(n_boot)
    cfg = getattr(results, "cfg", None)
    return int(getattr(cfg, "n_boot", 1000) if cfg is not None else 1000)


def exclusion_rows(results, verdicts, n_boot: int) -> list:
    """The pre-registered exclusion analysis of a run whose config declares items
    ``"in"`` (``degenerate``): the primary row of ``verdicts`` recomputed (gates included)
    with those items declared out, as one secondary row; none when nothing is "in"."""
    cfg = results.cfg
    kept = [name for name, side in (getattr(cfg, "degenerate", ()) if cfg is not None else ())
            if side == "in"]
    if not kept:
        return []
    alt = Results(results.paper, results.table, results.tables, results.meta,
                  dataclasses.replace(cfg, degenerate=tuple((n, "out") for n in kept)))
    v = verdicts(alt, n_boot)
    row = v[v["primary"]].iloc[0].to_dict()
    row.update(primary=False, claim=f"exclusion analysis: {row['claim']}, with "
               f"{', '.join(kept)} declared out")
    return [row]


def declared_out(results) -> set:
    """Names of the items a run's config declares out of the verdicts (``degenerate``
    pairs marked ``"out"``; a stored run without its config: the random init)."""
    cfg = results.cfg
    declared = cfg.degenerate if cfg is not None else (("random-init", "out"),)
    return {name for name, side in declared if side == "out"}
