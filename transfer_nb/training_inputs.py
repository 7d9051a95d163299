"""Deprecated alias of :mod:`transfer_nb.training.inputs` (moved in issue 35); import that instead."""
from transfer_nb._moved import moved

moved(__name__, "transfer_nb.training.inputs")
