"""Deprecated alias of :mod:`transfer_nb.cli.magics` (moved in issue 35); import that instead."""
from transfer_nb._moved import moved

moved(__name__, "transfer_nb.cli.magics")
