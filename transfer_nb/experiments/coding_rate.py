"""Deprecated alias of :mod:`transfer_nb.teaching.coding_rate` (notebook 01's helpers),
kept so that ``from transfer_nb.experiments import coding_rate`` still works; import
``from transfer_nb.teaching import coding_rate`` instead."""
from __future__ import annotations

import warnings

from transfer_nb.teaching.coding_rate import *  # noqa: F401,F403
from transfer_nb.teaching.coding_rate import __all__  # noqa: F401

warnings.warn("transfer_nb.experiments.coding_rate moved to transfer_nb.teaching.coding_rate; "
              "import it from there", DeprecationWarning, stacklevel=2)
