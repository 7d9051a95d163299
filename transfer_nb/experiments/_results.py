"""What every paper's runner and report write alike, written once.

* :func:`run_meta` -- a run's ``meta`` dict (paper, mode, config hash, wall-clock, primary
  claim, and the paper's own extras); :func:`transfer_nb.experiments.base.save_run` adds
  the provenance.
* :func:`target_draws` -- what a run drew per class, for its metadata.
* :func:`gate_text` -- "3 of 4 targets pass; excluded: x (reason)", the ``gates`` note of
  a verdict row and the summaries' gate sentence.
* :func:`fmt` -- a number for a summary sentence (``nan`` when missing).
* :func:`undecided_line` -- a fast run's "cannot decide" sentence, naming the claims.
* :func:`summary_start` -- what every report's ``summary`` begins with: the gate and
  verdict tables (computed unless passed in), the primary row and the gate sentence.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from transfer_nb.experiments.base import load_target

__all__ = ["run_meta", "target_draws", "gate_text", "fmt", "summary_start", "undecided_line"]


def run_meta(paper: str, cfg, config_hash: str, started: float, **extra) -> dict:
    """The ``meta`` of a run of ``paper`` with config ``cfg`` (its ``mode`` and
    ``primary``), started at ``started`` (:func:`time.perf_counter`).

    Keys, in order: ``paper``, ``mode``, ``config_hash``, ``wall_clock_s`` (seconds since
    ``started``, one decimal), ``primary``, then ``extra`` in the order given (e.g.
    ``version``, ``jobs``, ``target_draws``).

    Raises
    ------
    ValueError
        ``extra`` repeats one of the standard keys.
    """
    meta = {"paper": paper, "mode": cfg.mode, "config_hash": config_hash,
            "wall_clock_s": round(time.perf_counter() - started, 1), "primary": cfg.primary}
    clash = sorted(set(meta) & set(extra))
    if clash:
        raise ValueError(f"run_meta: {clash} are standard keys, set from cfg; pass only "
                         f"paper-specific extras")
    meta.update(extra)
    return meta


def target_draws(specs, seed: int = 0, extra_per_class: int = 0) -> dict:
    """What a run drew: ``{target: {"asked_per_class": k, "drawn": {class: count}}}``
    for ``seed`` (through :func:`transfer_nb.experiments.base.load_target`, at 8 px), for a
    run's metadata."""
    out = {}
    for spec in specs:
        if spec.n_train is not None:        # regression sets: no classes
            continue
        wider = dataclasses.replace(spec, per_class=spec.per_class + int(extra_per_class))
        train, _ = load_target(wider, 8, seed)
        y = np.asarray(train.targets)
        out[spec.name] = {"asked_per_class": wider.per_class,
                          "drawn": {str(c): int((y == k).sum())
                                    for k, c in enumerate(train.classes)}}
    return out


def gate_text(chk, key: str = "target", noun: str = "targets") -> str:
    """``"<passing> of <all> <noun> pass"`` and, when any fails, ``"; excluded: name
    (reason), ..."``: a gate table's (``passes``, ``reason`` and ``key`` columns) note."""
    ok = int(chk["passes"].sum())
    bad = [f"{r[key]} ({r['reason']})" for _, r in chk.iterrows() if not r["passes"]]
    head = " ".join(w for w in (f"{ok} of {len(chk)}", noun, "pass") if w)
    return head + (f"; excluded: {', '.join(bad)}" if bad else "")


def fmt(value, spec: str = ".2f") -> str:
    """``value`` formatted by ``spec``; ``"nan"`` for None or a non-finite number."""
    if value is None or not math.isfinite(float(value)):
        return "nan"
    return format(float(value), spec)


def summary_start(results, checks, verdicts, verdict_table=None, check_table=None) -> tuple:
    """The start of every report's ``summary``: ``(check table, verdict table, primary
    verdict row, first line)``.

    ``checks`` / ``verdicts`` are the paper's report functions, called only when the table
    is not passed in (the verdicts' fragile check is the slow part); the first line is
    ``"**<mode> run.** Gates: <gate_text>."``.
    """
    chk = checks(results) if check_table is None else check_table
    v = verdicts(results) if verdict_table is None else verdict_table
    primary = v[v["primary"]].iloc[0]
    return chk, v, primary, f"**{results.meta.get('mode', '?')} run.** Gates: {gate_text(chk)}."


#: verdicts that leave a claim undecided
UNDECIDED = ("inconclusive", "excluded", "fragile")


def undecided_line(results, verdict_table) -> str | None:
    """A fast run's sentence naming the claims it cannot decide (None for other runs, or
    when every claim is decided)."""
    if results.meta.get("mode") != "fast":
        return None
    v = verdict_table
    undecided = v.loc[v["verdict"].isin(UNDECIDED), "claim"]
    if not len(undecided):
        return None
    return ("Fast mode cannot decide: " + "; ".join(undecided) +
            ". The stored full run is sized to decide the primary claim.")
