"""``python -m transfer_nb.experiments.transrate [--full] [--save]``: run the experiment
and print its tables; ``--full --save`` stores the full run under ``results/``."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from transfer_nb.experiments import transrate as E
    parser = argparse.ArgumentParser(prog="python -m transfer_nb.experiments.transrate")
    parser.add_argument("--full", action="store_true", help="full mode (default: fast)")
    parser.add_argument("--save", action="store_true",
                        help="store the full run under results/ (needs --full)")
    args = parser.parse_args(argv)
    if args.save and not args.full:
        parser.error("--save stores the full run only: add --full")
    cfg = E.config(fast=not args.full)
    print(E.describe(cfg))
    ms = E.model_selection(cfg)
    if args.save:
        print("stored", E.save_full_run(ms))
    check = E.discrimination_check(ms)
    print(check.round(3).to_string())
    corr = E.correlations(ms)
    for zoo in corr["zoo"].unique():
        print(f"\nzoo {zoo}: Pearson [95% CI]")
        print(E.interval_table(corr, "pearson", zoo=zoo).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
