"""Notebook 01's teaching helpers: their home and the deprecated path notebooks used."""
import importlib
import sys

import numpy as np
import pytest

from transfer_nb.teaching import coding_rate as CR


def test_the_old_path_still_works_and_says_where_the_helpers_went():
    sys.modules.pop("transfer_nb.experiments.coding_rate", None)
    with pytest.warns(DeprecationWarning, match="transfer_nb.teaching.coding_rate"):
        old = importlib.import_module("transfer_nb.experiments.coding_rate")
    assert old.__all__ == CR.__all__
    assert all(getattr(old, name) is getattr(CR, name) for name in CR.__all__)
    from transfer_nb import experiments
    assert experiments.coding_rate is old      # `from transfer_nb.experiments import ...`


def test_textbook_coding_rate_is_the_formula():
    Z = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    eps = 0.5
    expected = 0.5 * np.log(np.linalg.det(np.eye(2) + Z.T @ Z / (3 * eps)))
    assert CR.textbook_coding_rate(Z, eps) == pytest.approx(expected, rel=1e-12)
