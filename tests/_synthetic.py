"""Synthetic labelled features shared by the estimator tests."""
import numpy as np


def class_data(n, d, K, seed=0, signal=1.0):
    """``(Z, y)``: n points in d dims, K balanced classes around Gaussian means scaled by ``signal``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % K
    rng.shuffle(y)
    Z = rng.normal(size=(n, d)) + signal * rng.normal(size=(K, d))[y]
    return Z, y
