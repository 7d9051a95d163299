"""``python -m transfer_nb.experiments.<paper>``: the one command of every experiment
(each paper's ``__main__`` calls :func:`experiment_main`)."""
from __future__ import annotations

from transfer_nb.experiments.base import CONFIRM, TargetError, save_run, workers
from transfer_nb.experiments import confirm
from transfer_nb.cache import atomic_write_bytes

__all__ = ["experiment_main"]


def experiment_main(paper: str, argv=None) -> int:
    """``python -m transfer_nb.experiments.<paper> [--full | --confirm] [--save]
    [--targets ...] [--jobs N | --dask ADDRESS]``: run, print the checks and the verdict
    table, store the full run (or the pre-registered confirmation, ``--confirm``) with
    ``--save``.

    ``--jobs N`` runs the paper's cells on N local processes and ``--dask ADDRESS`` on an
    existing ``dask.distributed`` scheduler (:func:`transfer_nb.experiments.base.workers`);
    the cells are seeded, so the tables are the same as a run here (only the timings
    differ), and neither changes the config or its hash.

    ``--confirm`` runs ``config("confirm")`` only when its pre-registration
    (``results/<paper>/confirm/preregistration.json``) is committed and holds the
    config's hash (:func:`transfer_nb.experiments.confirm.check_preregistration`); with
    ``--save`` the run goes to ``results/<paper>/confirm/``, its ``run.json`` naming the
    pre-registration's commit, and the verdict and check tables are stored beside it.
    """
    import argparse
    import importlib

    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    parser = argparse.ArgumentParser(prog=f"python -m transfer_nb.experiments.{paper}")
    parser.add_argument("--full", action="store_true", help="full mode (default: fast)")
    parser.add_argument("--confirm", action="store_true",
                        help="the pre-registered confirmation (results/%s/confirm/)" % paper)
    parser.add_argument("--save", action="store_true",
                        help="store the run under results/%s/ (needs --full or --confirm)"
                        % paper)
    parser.add_argument("--targets", nargs="+", metavar="NAME_OR_FOLDER",
                        help="data-set names or image folders (one subfolder per class)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every cell")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, metavar="N",
                       help="run the cells on N local processes (default: the config's)")
    where.add_argument("--dask", metavar="ADDRESS",
                       help="run the cells on an existing Dask scheduler, e.g. "
                            "tcp://host:8786 (needs the dask extra)")
    args = parser.parse_args(argv)
    if args.full and args.confirm:
        parser.error("--full and --confirm are two presets: pass one")
    if args.save and not (args.full or args.confirm):
        parser.error("--save stores the full run only: add --full")
    if args.save and args.targets:
        parser.error("--save stores the paper's own targets only: drop --targets")
    if args.confirm and args.targets:
        parser.error("--confirm runs the pre-registered targets only: drop --targets")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    import sys
    commit = None
    try:
        if args.confirm:
            cfg = pkg.config(CONFIRM)
            commit = confirm.check_preregistration(paper, pkg.config_hash(cfg))
        else:
            cfg = pkg.config("full" if args.full else "fast", targets=args.targets)
    except TargetError as exc:          # a target problem: one line, before any training
        print(f"{parser.prog}: error: --targets: {_one_line(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        what = "--confirm" if args.confirm else "--targets"
        print(f"{parser.prog}: error: {what}: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(pkg.describe(cfg), flush=True)
    if commit is not None:
        print(f"pre-registered in commit {commit}", flush=True)
    try:
        with workers(args.jobs, args.dask):
            results = pkg.run(cfg, progress=True, use_cache=not args.no_cache)
    except TargetError as exc:          # found only while loading (e.g. an unreadable image)
        print(f"{parser.prog}: error: --targets: {_one_line(exc)}", file=sys.stderr)
        return 2
    if commit is not None:
        results.meta["preregistration_commit"] = commit
    folder = None
    if args.save:   # before the report: a slow or failing report loses nothing
        folder = save_run(results)
        print("stored", folder, flush=True)
    import pandas as pd
    checks, verdicts = pkg.report.checks(results), pkg.report.verdicts(results)
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.precision", 3):
        print(checks.to_string())
        print(verdicts.to_string())
    print(pkg.report.summary(results, verdicts, checks))
    if args.confirm:
        new = confirm.new_target_verdicts(paper, results)
        print("the same claims on the new targets only "
              f"({', '.join(confirm.plan(paper)['new_targets'])}):")
        with pd.option_context("display.width", 200, "display.max_columns", 30,
                               "display.precision", 3):
            print(new.to_string())
        if folder is not None:
            _store_report(folder, {"checks": checks, "verdicts": verdicts,
                                   "verdicts_new_targets": new})
    return 0


def _store_report(folder, tables: dict) -> None:
    """The confirmation's check and verdict tables as computed at the run (derived files
    beside the stored run, not listed in its ``run.json``)."""
    for name, table in tables.items():
        atomic_write_bytes(folder / f"{name}.csv", table.to_csv(index=False).encode())


def _one_line(exc) -> str:
    return " ".join(str(exc).split())
