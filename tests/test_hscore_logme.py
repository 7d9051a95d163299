"""H-score with shrinkage (Ibrahim et al. 2022) and LogME's supremum when n <= d,
against independent implementations written here."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.covariance import ledoit_wolf

from tests._synthetic import class_data
from transfer_nb.estimators.hscore import hscore, ledoit_wolf_shrinkage
from transfer_nb.estimators.logme import logme, logme_evidence


# --------------------------------------------------------------------------- #
# H-score with shrinkage: H_alpha = tr(cov_alpha^-1 (1 - alpha) cov(E[f|y]))
# --------------------------------------------------------------------------- #
def ref_h_alpha(F, y):
    """scikit-learn's Ledoit-Wolf covariance and intensity, d x d solve."""
    shrunk, alpha = ledoit_wolf(F)                     # (1 - a) S + a mu I, a
    G = np.empty_like(F)
    for c in np.unique(y):
        G[y == c] = F[y == c].mean(0)
    covg = np.cov(G, rowvar=False, bias=True).reshape(F.shape[1], F.shape[1])
    return np.trace(np.linalg.solve(shrunk, (1 - alpha) * covg)), alpha, covg, shrunk


@pytest.mark.parametrize("n,d,K", [(80, 6, 3), (40, 40, 4), (20, 60, 2), (15, 200, 5),
                                   (300, 1, 3)])
def test_hscore_shrinkage_matches_sklearn(n, d, K):
    F, y = class_data(n, d, K, seed=n + d)
    ref, alpha, covg, shrunk = ref_h_alpha(F, y)
    assert hscore(F, y, shrinkage=True) == pytest.approx(ref, rel=1e-9)
    X = F - F.mean(0)
    assert ledoit_wolf_shrinkage(X)[0] == pytest.approx(alpha, rel=1e-9, abs=1e-12)
    if d == 1:                                         # S is its own target
        assert alpha == 0 and hscore(F, y, shrinkage=True) == pytest.approx(hscore(F, y))
        return
    # the (1 - alpha) factor is there: without it the value is 1 / (1 - alpha) larger
    assert 0.01 < alpha < 0.99
    without = np.trace(np.linalg.solve(shrunk, covg))
    assert hscore(F, y, shrinkage=True) == pytest.approx((1 - alpha) * without, rel=1e-9)


def test_hscore_shrinkage_invariances():
    F, y = class_data(50, 8, 3, seed=7)
    base = hscore(F, y, shrinkage=True)
    p = np.random.default_rng(0).permutation(50)
    assert hscore(F[p], y[p], shrinkage=True) == pytest.approx(base, rel=1e-10)
    assert hscore(F, np.array(["a", "b", "c"])[y], shrinkage=True) == pytest.approx(base, rel=1e-12)
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    assert hscore(F @ Q, y, shrinkage=True) == pytest.approx(base, rel=1e-9)
    assert hscore(3 * F + 5, y, shrinkage=True) == pytest.approx(base, rel=1e-9)


# --------------------------------------------------------------------------- #
# LogME: n <= d reaches its supremum
# --------------------------------------------------------------------------- #
def limit_evidence(F, yv):
    """sup over alpha of log N(y; 0, F F^T / alpha) / n (the beta -> inf limit),
    from n x n matrices: alpha* = n / y^T (F F^T)^-1 y."""
    n = len(yv)
    K = F @ F.T
    Q = yv @ np.linalg.solve(K, yv)
    alpha = n / Q
    sign, logdet = np.linalg.slogdet(K / alpha)
    assert sign > 0
    ev = -0.5 * (n * np.log(2 * np.pi) + logdet + alpha * Q) / n
    # the limit is the supremum only if adding noise (1/beta = b > 0) does not help:
    # d/db log N(y; 0, K/alpha + b I) at b = 0 is (y^T C^-2 y - tr C^-1) / 2 <= 0
    C_inv = np.linalg.inv(K / alpha)
    slope = 0.5 * (yv @ C_inv @ C_inv @ yv - np.trace(C_inv))
    return ev, alpha, slope


@pytest.mark.parametrize("n,d,K", [(12, 50, 3), (15, 60, 2), (30, 100, 4), (20, 200, 5)])
def test_logme_n_le_d_is_the_closed_form_supremum(n, d, K):
    F, y = class_data(n, d, K, seed=n * d)
    evs = logme_evidence(F, (y[:, None] == np.arange(K)).astype(float))
    for k in range(K):
        yv = (y == k).astype(float)
        ref, alpha, slope = limit_evidence(F, yv)
        assert slope < 0                                  # the limit is the maximum
        assert ref == pytest.approx(
            multivariate_normal(np.zeros(n), F @ F.T / alpha).logpdf(yv) / n, rel=1e-10)
        assert evs[k] == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert logme(F, y) == pytest.approx(np.mean(evs), rel=1e-14)


@pytest.mark.parametrize("n,d", [(20, 20), (40, 41)])
def test_logme_n_le_d_square_features_interior_maximum(n, d):
    """Nearly square random features: noise helps (positive slope at b = 0), the
    maximum is at finite beta and the fixed point's value is returned."""
    F, y = class_data(n, d, 2, seed=n * d)
    yv = (y == 0).astype(float)
    ref, _, slope = limit_evidence(F, yv)
    assert slope > 0
    ev, a, b = logme_evidence(F, yv, tol=1e-12, return_params=True)
    assert ev[0] > ref
    cov = np.eye(n) / b[0] + F @ F.T / a[0]
    assert ev[0] == pytest.approx(
        multivariate_normal(np.zeros(n), cov).logpdf(yv) / n, rel=1e-9)


def test_logme_n_le_d_interior_maximum_is_kept():
    """When noise helps (the slope at b = 0 is positive) the maximum is at finite
    beta: the fixed point's value, above the limit, is returned."""
    rng = np.random.default_rng(3)
    n, d = 10, 30
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    F = U @ np.diag(np.logspace(0, -3, n)) @ np.linalg.qr(rng.normal(size=(d, n)))[0].T
    yv = U @ np.ones(n)                          # equal weight on every direction
    ref, alpha, slope = limit_evidence(F, yv)
    assert slope > 0
    ev, a, b = logme_evidence(F, yv, tol=1e-12, return_params=True)
    assert ev[0] > ref + 1e-3
    cov = np.eye(n) / b[0] + F @ F.T / a[0]
    assert ev[0] == pytest.approx(
        multivariate_normal(np.zeros(n), cov).logpdf(yv) / n, rel=1e-9)


def test_logme_out_of_span_residual_n_gt_d():
    """n > d: ||y - U U^T y||^2 taken as a residual matches the textbook projection."""
    F, y = class_data(60, 5, 3, seed=4)
    yv = (y == 1).astype(float)
    ev, a, b = logme_evidence(F, yv, tol=1e-12, return_params=True)
    cov = np.eye(60) / b[0] + F @ F.T / a[0]
    assert ev[0] == pytest.approx(
        multivariate_normal(np.zeros(60), cov).logpdf(yv) / 60, rel=1e-10)
