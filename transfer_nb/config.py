"""Run-mode switches shared by the library, the notebooks and the CLI."""
from __future__ import annotations

import os

_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when ``TRANSFER_NB_FAST`` or ``CI`` is set to a true value.

    ``TRANSFER_NB_FAST=0`` forces full mode even on CI.
    """
    explicit = os.environ.get("TRANSFER_NB_FAST")
    if explicit is not None:
        return explicit.strip().lower() not in _FALSE
    return os.environ.get("CI", "").strip().lower() not in _FALSE
