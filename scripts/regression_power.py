"""Power of the regression experiment's primary claim, measured on the stored full run.

    python scripts/regression_power.py [OUT.csv]

Draws sub-designs (targets that passed the gates, models declared in, seeds) from
``results/regression/`` and prints the half-width of the primary's pooled-within
Pearson interval for each, and the fit ``half-width = c / sqrt(T * (M - 3))`` used to
size the full preset (see :mod:`transfer_nb.experiments.regression.power`).
"""
from __future__ import annotations

import sys

import pandas as pd

from transfer_nb.experiments import base, gates
from transfer_nb.experiments import regression as R
from transfer_nb.experiments.regression import power, report


def main(out: str | None = None) -> None:
    stored = base.load_run("regression")
    if stored is None:
        raise SystemExit("no stored full run under results/regression/")
    # the stored run's own zoo and targets: its declared-out models are the random init
    stored.cfg = None
    used = gates.passing(report.checks(stored))
    table = stored.table[~stored.table["model"].isin(base.declared_out(stored))]
    models = sorted(set(table["model"]))
    seeds = len(set(table["seed"]))
    designs = ([(t, m, seeds) for t in range(1, len(used) + 1) for m in (7, 10, 13, 16)]
               + [(t, len(models), seeds) for t in range(1, len(used) + 1)]
               + [(t, len(models), seeds) for t in (8, 10, 12, 14, 16)]
               + [(len(used), len(models), s) for s in range(1, seeds)])
    w = power.subsample_widths(table, "linear_mse", "neg_mse", used, models, designs,
                               reps=30, n_boot=400, seed=1)
    fit = power.fit_width(w)
    with pd.option_context("display.width", 160):
        print(f"stored run: {len(used)} targets pass the gates, {len(models)} models in, "
              f"{seeds} seeds; config hash {stored.meta.get('config_hash', '?')[:12]}")
        print(w.round(3).to_string(index=False))
    print(f"fit: half-width = {fit['c_half']:.2f} / sqrt(T (M - 3))  (free slope "
          f"{fit['b']:.2f}, c {fit['c']:.2f})")
    if out:
        w.to_csv(out, index=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
