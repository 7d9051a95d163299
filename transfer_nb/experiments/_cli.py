"""``python -m transfer_nb.experiments.<paper>``: the one command of every experiment
(re-exported by :mod:`transfer_nb.experiments.base`)."""
from __future__ import annotations

__all__ = ["experiment_main"]


def experiment_main(paper: str, argv=None) -> int:
    """``python -m transfer_nb.experiments.<paper> [--full] [--save] [--targets ...]``:
    run, print the checks and the verdict table, store the full run with ``--save``."""
    import argparse
    import importlib

    from transfer_nb.experiments.base import TargetError, save_run
    pkg = importlib.import_module(f"transfer_nb.experiments.{paper}")
    parser = argparse.ArgumentParser(prog=f"python -m transfer_nb.experiments.{paper}")
    parser.add_argument("--full", action="store_true", help="full mode (default: fast)")
    parser.add_argument("--save", action="store_true",
                        help="store the run under results/%s/ (needs --full)" % paper)
    parser.add_argument("--targets", nargs="+", metavar="NAME_OR_FOLDER",
                        help="data-set names or image folders (one subfolder per class)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every cell")
    args = parser.parse_args(argv)
    if args.save and not args.full:
        parser.error("--save stores the full run only: add --full")
    if args.save and args.targets:
        parser.error("--save stores the paper's own targets only: drop --targets")
    import sys
    try:
        cfg = pkg.config("full" if args.full else "fast", targets=args.targets)
    except ValueError as exc:           # a target problem: one line, before any training
        print(f"{parser.prog}: error: --targets: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(pkg.describe(cfg), flush=True)
    try:
        results = pkg.run(cfg, progress=True, use_cache=not args.no_cache)
    except TargetError as exc:          # found only while loading (e.g. an unreadable image)
        print(f"{parser.prog}: error: --targets: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.save:   # before the report: a slow or failing report loses nothing
        print("stored", save_run(results), flush=True)
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.precision", 3):
        print(pkg.report.checks(results).to_string())
        print(pkg.report.verdicts(results).to_string())
    print(pkg.report.summary(results))
    return 0


def _one_line(exc) -> str:
    return " ".join(str(exc).split())
