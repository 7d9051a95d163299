"""Old import paths of modules that moved (issue 35, "modules grouped by job").

An alias module is two lines: ``from transfer_nb._moved import moved`` and
``moved(__name__, "<new path>")``.  Importing it warns (DeprecationWarning naming the
new path) and puts the new module in its place in ``sys.modules``, so the old name *is*
the new module: ``from <old> import x``, attribute access and monkeypatching all reach
the one module.
"""
from __future__ import annotations

import importlib
import sys
import warnings

__all__ = ["moved", "MOVED"]

#: old import path -> new import path, every module that moved
MOVED = {
    "transfer_nb._batched_stats": "transfer_nb.stats._batched",
    "transfer_nb._group_stats": "transfer_nb.stats._group",
    "transfer_nb._stats_inputs": "transfer_nb.stats._inputs",
    "transfer_nb.training_inputs": "transfer_nb.training.inputs",
    "transfer_nb.transfer": "transfer_nb.training.transfer",
    "transfer_nb.adversarial_semi": "transfer_nb.adversarial.semi",
    "transfer_nb._rank_cli": "transfer_nb.cli.rank",
    "transfer_nb._docs_cli": "transfer_nb.cli.docs",
    "transfer_nb._notebook_exec": "transfer_nb.cli.notebook_exec",
    "transfer_nb.magics": "transfer_nb.cli.magics",
}


def moved(old: str, new: str, stacklevel: int = 3):
    """Replace the alias module ``old`` by the module ``new`` (imported) in
    ``sys.modules`` and warn once that ``old`` is deprecated.

    Raises
    ------
    ValueError
        ``old`` -> ``new`` is not a move listed in :data:`MOVED`.
    """
    if MOVED.get(old) != new:
        raise ValueError(f"{old!r} -> {new!r} is not listed in transfer_nb._moved.MOVED")
    module = importlib.import_module(new)
    warnings.warn(f"{old} moved to {new}; import it from there (the old path is a "
                  f"deprecated alias)", DeprecationWarning, stacklevel=stacklevel)
    sys.modules[old] = module
    return module
