"""The gate-only pilot that chose the confirmation's targets (DESIGN rule 6: a pilot may
choose targets before the pre-registration when it shows nothing but the gates).

:func:`gate_pilot` runs candidate targets through the experiment and returns only
:func:`~transfer_nb.experiments.head2toe.report.checks` (does fine-tuning train, no
collapsed seed, does it reach the linear probe, no method at the ceiling) and each
target's wall-clock: no accuracy table, no Head2Toe-vs-baseline difference, no verdict.

``python -m transfer_nb.experiments.head2toe.pilot`` prints that table for
:data:`CANDIDATES` (seeds :data:`PILOT_SEEDS`, never used by a run).
"""
from __future__ import annotations

import dataclasses
import sys
import time

import pandas as pd

from transfer_nb.experiments.head2toe import report, runner
from transfer_nb.experiments.head2toe.presets import (CANDIDATE_FAR, CANDIDATES,
                                                      CONFIRM_DESIGN, CONFIRM_PER_CLASS,
                                                      config)

__all__ = ["CANDIDATES", "PILOT_SEEDS", "PILOT_PER_CLASS", "PILOT_FAR", "gate_pilot", "main"]

#: the pilot's seeds (disjoint from every run's: fast/full 0-9, the confirmation's)
PILOT_SEEDS = (900, 901, 902)
#: labelled images per class in the pilot (the exploratory run's 2 left fine-tuning below
#: the probe on every near target)
PILOT_PER_CLASS = CONFIRM_PER_CLASS
#: the candidates and which of them are far (renderings)
PILOT_FAR = CANDIDATE_FAR


def gate_pilot(targets=CANDIDATES, seeds=PILOT_SEEDS, far=PILOT_FAR, progress=False):
    """The gates of ``targets`` on ``seeds`` under the confirmation's design (the full
    preset with :data:`~transfer_nb.experiments.head2toe.presets.CONFIRM_DESIGN`: Head2Toe
    cross-validated, the 4-recipe fine-tuning grid on one validation draw), and nothing
    else.

    Returns
    -------
    pandas.DataFrame
        One row per target: ``group``, each gate's pass flag, ``passes``, ``reason`` and
        ``seconds`` (the target's wall-clock: recipe search and every seed).
    """
    rows = []
    for spec in targets:
        cfg = dataclasses.replace(config("full"), **CONFIRM_DESIGN, targets=(spec,),
                                  seeds=tuple(seeds), far=tuple(far))
        t0 = time.perf_counter()
        res = runner.run(cfg, progress=progress, use_cache=True)
        chk = report.checks(res)
        chk["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(chk)
        del res                     # nothing but the gates leaves this function
    return pd.concat(rows, ignore_index=True)


def main(argv=None) -> int:
    """Print the pilot's gate table (and nothing else)."""
    import pandas as pd
    names = set(argv if argv is not None else sys.argv[1:])
    targets = [t for t in CANDIDATES if not names or t.name in names]
    out = gate_pilot(targets)
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 120):
        print(out.to_string(index=False))
    return 0


if __name__ == "__main__":   # pragma: no cover - the command line
    raise SystemExit(main())
