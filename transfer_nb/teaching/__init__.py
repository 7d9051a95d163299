"""Helpers the lessons use to teach, beside the library they teach.

* :mod:`transfer_nb.teaching.coding_rate` -- notebook 01: "textbook" references of the
  coding rate and TransRate to check the fast code against, sweeps and pitfalls.

Submodules are imported on demand (``from transfer_nb.teaching import coding_rate``).
"""
from __future__ import annotations

__all__ = ["coding_rate"]
