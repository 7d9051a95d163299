"""Shared test set-up: every test gets its own cache directory and a headless backend."""
import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Point TRANSFER_NB_CACHE at a fresh directory so tests never share cached results."""
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path / "cache"))
    yield
