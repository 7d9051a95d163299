"""Shared test set-up: every test gets its own cache directory and a headless backend;
property tests draw the same examples on every run.

Hypothesis: the ``transfer_nb`` profile (the default) is derandomised (the examples
follow from each test's source, so a run that passed passes again, on any machine and
under any load), keeps no example database (nothing written into the checkout, nothing
replayed from an earlier run) and has no per-example deadline (a busy machine is slow,
not wrong). ``HYPOTHESIS_PROFILE=explore`` draws fresh random examples instead, to hunt
for new counter-examples on purpose.
"""
import os

import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")

settings.register_profile("transfer_nb", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, deadline=None,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "transfer_nb"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Point TRANSFER_NB_CACHE at a fresh directory so tests never share cached results."""
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path / "cache"))
    yield
