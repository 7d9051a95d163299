"""One module per paper: a config (``fast`` | ``full``) -> tidy results + plots.

* :mod:`transfer_nb.experiments.transrate` -- Huang et al., ICML 2022: model and
  layer selection with TransRate vs LogME / LEEP / NCE / H-score (a package: config,
  run, report, plots).
* :mod:`transfer_nb.experiments.coding_rate` -- notebook 01's teaching helpers
  (textbook coding rate, sweeps, pitfalls).

Submodules are imported lazily (``transfer_nb.experiments.transrate``) so that
``import transfer_nb.experiments`` stays cheap.
"""
from __future__ import annotations

import importlib

__all__ = ["transrate", "coding_rate"]


def __getattr__(name: str):
    try:
        return importlib.import_module(f"transfer_nb.experiments.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"transfer_nb.experiments.{name}":
            raise AttributeError(f"module 'transfer_nb.experiments' has no attribute {name!r}") from None
        raise
