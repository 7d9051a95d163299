"""Estimators against reference implementations written here from the papers' formulas."""
from collections import Counter

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from tests._synthetic import class_data
from transfer_nb import estimators as E
from transfer_nb.estimators.hscore import ledoit_wolf_shrinkage
from transfer_nb.estimators.logme import logme_evidence


def data(n, d, K, seed=0, signal=1.0):
    return class_data(n, d, K, seed=seed, signal=signal)


# --------------------------------------------------------------------------- #
# reference implementations (from the papers' formulas; d x d matrices, loops)
# --------------------------------------------------------------------------- #
def ref_logme_column(F, y, tol=1e-12, max_iter=10_000):
    """MacKay fixed point with explicit d x d matrices (You et al. 2021, Alg. 1).

    Used for n > d, where the maximum is attained at finite alpha, beta.
    """
    n, d = F.shape
    FtF, Fty = F.T @ F, F.T @ y
    sigma = np.clip(np.linalg.eigvalsh(FtF), 0, None)
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        A = alpha * np.eye(d) + beta * FtF
        m = beta * np.linalg.solve(A, Fty)
        gamma = np.sum(beta * sigma / (alpha + beta * sigma))
        a_new = gamma / (m @ m)
        b_new = (n - gamma) / np.sum((y - F @ m) ** 2)
        done = abs(a_new - alpha) <= tol * alpha and abs(b_new - beta) <= tol * beta
        alpha, beta = a_new, b_new
        if done:
            break
    return ref_evidence(F, y, alpha, beta), alpha, beta


def ref_evidence(F, y, alpha, beta, drop_null_space=False):
    """log p(y | F, alpha, beta) / n from the formula with d x d matrices.

    ``drop_null_space=True`` reproduces the public implementation's bug for
    n < d: only the min(n, d) largest eigenvalues of F^T F enter log det A.
    """
    n, d = F.shape
    FtF = F.T @ F
    A = alpha * np.eye(d) + beta * FtF
    m = beta * np.linalg.solve(A, F.T @ y)
    if drop_null_space:
        top = np.sort(np.clip(np.linalg.eigvalsh(FtF), 0, None))[::-1][: min(n, d)]
        logdet = np.sum(np.log(alpha + beta * top))
    else:
        logdet = np.linalg.slogdet(A)[1]
    ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
          - beta / 2 * np.sum((y - F @ m) ** 2) - alpha / 2 * m @ m - logdet / 2)
    return ev / n


def gaussian_evidence(F, y, alpha, beta):
    """The same evidence as a Gaussian marginal: y ~ N(0, I/beta + F F^T / alpha)."""
    n = len(y)
    cov = np.eye(n) / beta + F @ F.T / alpha
    return multivariate_normal(mean=np.zeros(n), cov=cov).logpdf(y) / n


def ref_logme(F, y, **kw):
    return np.mean([ref_logme_column(F, (y == c).astype(float), **kw)[0]
                    for c in np.unique(y)])


def ref_leep(P, y):
    n, nz = P.shape
    labels = sorted(set(y.tolist()))
    joint = {(a, z): sum(P[i, z] for i in range(n) if y[i] == a) / n
             for a in labels for z in range(nz)}
    pz = [sum(joint[(a, z)] for a in labels) for z in range(nz)]
    total = 0.0
    for i in range(n):
        total += np.log(sum(joint[(y[i], z)] / pz[z] * P[i, z]
                            for z in range(nz) if pz[z] > 0))
    return total / n


def ref_nce(z, y):
    n = len(y)
    joint = Counter(zip(y.tolist(), z.tolist()))
    pz = Counter(z.tolist())
    return sum(c / n * np.log((c / n) / (pz[zz] / n)) for (yy, zz), c in joint.items())


def class_mean_features(F, y):
    G = np.empty_like(F)
    for c in np.unique(y):
        G[y == c] = F[y == c].mean(0)
    return G


def ref_hscore(F, y, rcond=1e-10):
    covf = np.cov(F, rowvar=False, bias=True)
    covg = np.cov(class_mean_features(F, y), rowvar=False, bias=True)
    return np.trace(np.linalg.pinv(covf, rcond=rcond, hermitian=True) @ covg)


def ref_hscore_lw(F, y):
    """Ibrahim et al. (2022): tr(cov_alpha^-1 (1 - alpha) cov(E[f|y]))."""
    from sklearn.covariance import LedoitWolf
    lw = LedoitWolf().fit(F)
    covg = np.cov(class_mean_features(F, y), rowvar=False, bias=True)
    return np.trace(np.linalg.solve(lw.covariance_, (1 - lw.shrinkage_) * covg))


def ref_linear_mse(F, Y, lam, scale=True):
    Y = Y.reshape(len(Y), -1).astype(float)
    if scale:
        lo, hi = Y.min(0), Y.max(0)
        Y = (Y - lo) / np.where(hi > lo, hi - lo, 1)
    n, d = F.shape
    Xa = np.c_[F, np.ones(n)]
    if lam == 0:
        W = np.linalg.lstsq(Xa, Y, rcond=None)[0]
    else:
        D = np.diag(np.r_[np.ones(d), 0.0])
        W = np.linalg.solve(Xa.T @ Xa + n * lam * D, Xa.T @ Y)
    return -(np.sum((Y - Xa @ W) ** 2) / n + lam * np.sum(W[:d] ** 2))


# --------------------------------------------------------------------------- #
# LogME
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,d,K", [(80, 10, 3), (40, 5, 2), (60, 30, 3), (25, 20, 2)])
def test_logme_matches_reference(n, d, K):
    F, y = data(n, d, K, seed=n * d)
    assert E.logme(F, y, tol=1e-12) == pytest.approx(ref_logme(F, y), rel=1e-7)


@pytest.mark.parametrize("n,d", [(30, 4), (12, 40), (20, 20)])
def test_logme_evidence_is_the_gaussian_marginal_and_a_maximum(n, d):
    """Evidence = log N(y; 0, I/beta + F F^T/alpha) at the returned (alpha, beta),
    and no nearby (alpha, beta) does better; this form does not involve d, so it
    also checks the padding of the spectrum when n < d."""
    rng = np.random.default_rng(n + d)
    F = rng.normal(size=(n, d))
    yv = (F @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(float)
    ev, a, b = logme_evidence(F, yv, tol=1e-12, return_params=True)
    assert ev[0] == pytest.approx(gaussian_evidence(F, yv, a[0], b[0]), rel=1e-7)
    assert ev[0] == pytest.approx(ref_evidence(F, yv, a[0], b[0]), rel=1e-7)
    for fa, fb in [(1.1, 1), (0.9, 1), (1, 1.1), (1, 0.9), (1.1, 1.1), (0.9, 0.9)]:
        assert gaussian_evidence(F, yv, a[0] * fa, b[0] * fb) <= ev[0] + 1e-9


def test_logme_n_smaller_than_d_pads_the_spectrum():
    """The public implementation's bug: for n < d it drops the d - n zero
    eigenvalues of F^T F from log det(alpha I + beta F^T F)."""
    F, y = data(12, 50, 3, seed=1)
    yv = (y == 0).astype(float)
    ev, a, b = logme_evidence(F, yv, tol=1e-12, return_params=True)
    right = gaussian_evidence(F, yv, a[0], b[0])
    buggy = ref_evidence(F, yv, a[0], b[0], drop_null_space=True)
    assert ev[0] == pytest.approx(right, rel=1e-6)
    assert abs(ev[0] - buggy) > 1e-2
    # the value is the supremum: a direct numerical maximisation does not beat it
    from scipy.optimize import minimize
    best = minimize(lambda p: -gaussian_evidence(F, yv, np.exp(p[0]), np.exp(p[1])),
                    x0=[0.0, 0.0], method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
    assert ev[0] >= -best.fun - 1e-7
    # for n > d the padding changes nothing
    F2, y2 = data(60, 5, 3, seed=2)
    y2v = (y2 == 0).astype(float)
    ev2, a2, b2 = logme_evidence(F2, y2v, return_params=True)
    assert ref_evidence(F2, y2v, a2[0], b2[0]) == pytest.approx(
        ref_evidence(F2, y2v, a2[0], b2[0], drop_null_space=True))


# --------------------------------------------------------------------------- #
# LEEP and NCE
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,nz,K", [(50, 7, 3), (30, 2, 2), (40, 12, 5)])
def test_leep_matches_reference(n, nz, K):
    rng = np.random.default_rng(n + nz)
    P = rng.dirichlet(np.ones(nz) * 0.5, n)
    y = np.arange(n) % K
    assert E.leep(P, y) == pytest.approx(ref_leep(P, y), rel=1e-10)


def test_leep_edge_cases():
    y = np.array([0, 0, 1, 1])
    # a source class nobody predicts (column of zeros) is ignored
    P = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]], float)
    assert E.leep(P, y) == pytest.approx(0.0, abs=1e-12)  # perfect: log 1
    assert E.leep(P, y) == pytest.approx(ref_leep(P, y), abs=1e-12)
    # uninformative source: LEEP = -H(Y)
    U = np.full((4, 3), 1 / 3)
    assert E.leep(U, y) == pytest.approx(np.log(0.5))
    # float32 softmax outputs are accepted
    assert E.leep(P.astype(np.float32), y) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_nce_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = np.arange(n) % 4
    z = rng.integers(0, 6, n)
    assert E.nce(z, y) == pytest.approx(ref_nce(z, y), rel=1e-12)


def test_nce_edge_cases():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    assert E.nce(np.array([5, 5, 9, 9, 1, 1]), y) == pytest.approx(0.0)
    assert E.nce(np.zeros(6), y) == pytest.approx(-np.log(3))  # one source class


# --------------------------------------------------------------------------- #
# H-score
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,d,K", [(100, 8, 3), (60, 20, 4), (50, 3, 2)])
def test_hscore_matches_reference(n, d, K):
    F, y = data(n, d, K, seed=n + d)
    assert E.hscore(F, y) == pytest.approx(ref_hscore(F, y), rel=1e-8)
    assert E.hscore(F, y, shrinkage=True) == pytest.approx(ref_hscore_lw(F, y), rel=1e-8)


@pytest.mark.parametrize("n,d", [(30, 5), (10, 40), (200, 30)])
def test_ledoit_wolf_shrinkage_matches_sklearn(n, d):
    from sklearn.covariance import ledoit_wolf_shrinkage as sk
    X = np.random.default_rng(n).normal(size=(n, d)) * np.linspace(0.1, 3, d)
    X = X - X.mean(0)
    delta, mu = ledoit_wolf_shrinkage(X)
    assert delta == pytest.approx(sk(X, assume_centered=True), rel=1e-10)
    assert mu == pytest.approx(np.trace(X.T @ X / n) / d)


def test_hscore_n_below_d_is_degenerate():
    """For n <= d the plain H-score is K - 1 whatever the features (teaching point);
    the shrinkage variant still depends on them."""
    F, y = data(20, 50, 4, seed=3, signal=3.0)
    noise = np.random.default_rng(4).normal(size=(20, 50)) * F.std()
    assert E.hscore(F, y) == pytest.approx(3.0, rel=1e-8)
    assert E.hscore(noise, y) == pytest.approx(3.0, rel=1e-8)
    assert E.hscore(F, y, shrinkage=True) == pytest.approx(ref_hscore_lw(F, y), rel=1e-8)
    assert E.hscore(F, y, shrinkage=True) != pytest.approx(3.0, rel=1e-3)


# --------------------------------------------------------------------------- #
# Linear MSE
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,d,m", [(50, 5, 1), (40, 10, 3), (15, 30, 2)])
@pytest.mark.parametrize("lam", [0.0, 1e-3, 1.0])
@pytest.mark.parametrize("scale", [True, False])
def test_linear_mse_matches_reference(n, d, m, lam, scale):
    rng = np.random.default_rng(n + d + m)
    F = rng.normal(size=(n, d))
    Y = F[:, :2] @ rng.normal(size=(2, m)) + 0.3 * rng.normal(size=(n, m)) + 5
    got = E.linear_mse(F, Y, alpha=lam, scale_targets=scale)
    assert got == pytest.approx(ref_linear_mse(F, Y, lam, scale), rel=1e-7, abs=1e-10)


def test_linear_mse_matches_sklearn_ridge():
    from sklearn.linear_model import Ridge
    rng = np.random.default_rng(5)
    F = rng.normal(size=(60, 6))
    y = F @ rng.normal(size=6) + rng.normal(size=60)
    lam = 0.5
    yy = (y - y.min()) / (y.max() - y.min())
    r = Ridge(alpha=60 * lam).fit(F, yy)
    obj = np.mean((yy - r.predict(F)) ** 2) + lam * np.sum(r.coef_ ** 2)
    assert E.linear_mse(F, y, alpha=lam) == pytest.approx(-obj, rel=1e-8)
    assert E.linear_mse(F, y) == pytest.approx(E.linear_mse(F, y, alpha=1.0))


def test_linear_mse_cv():
    rng = np.random.default_rng(6)
    F = rng.normal(size=(120, 5))
    clean = F @ rng.normal(size=5)
    score, lam = E.linear_mse(F, clean, alpha="cv", return_alpha=True)
    assert lam <= 1e-3                                    # exact linear target: tiny lambda
    assert score == pytest.approx(E.linear_mse(F, clean, alpha=lam))
    _, lam_noise = E.linear_mse(F, rng.normal(size=120), alpha="cv", return_alpha=True)
    assert lam_noise >= 1e-1                               # pure noise: strong shrinkage
    _, lam_grid = E.linear_mse(F, clean, alpha="cv", cv_grid=[2.0], return_alpha=True)
    assert lam_grid == 2.0


# --------------------------------------------------------------------------- #
# properties (sample order, label names, rotation, dtypes, torch input) and the
# generic bad inputs live in tests/test_estimator_harness.py, run over the registry
# --------------------------------------------------------------------------- #
def test_reexports():
    import transfer_nb as tnb
    from transfer_nb.coding_rate import transrate
    assert E.transrate is transrate
    assert tnb.estimators.transrate is transrate


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
Z0, Y0 = data(20, 4, 2, seed=10)
P0 = np.full((20, 3), 1 / 3)


@pytest.mark.parametrize("P,y,kw,match", [
    (P0 * 4, Y0, {}, "outside \\[0, 1\\].*softmax"),
    (P0 * 0.5, Y0, {}, "must sum to 1"),
    (P0 - 0.4, Y0, {}, "outside \\[0, 1\\]"),
    (P0, Y0[:-2], {}, "18 labels but source_probs has 20 rows"),
    (P0, Y0, {"atol": -1e-3}, "atol must be a finite number >= 0, got -0.001"),
])
def test_bad_input_leep(P, y, kw, match):
    with pytest.raises(ValueError, match=match):
        E.leep(P, y, **kw)


@pytest.mark.parametrize("z,y,match", [
    (np.zeros(0), np.zeros(0), "source_labels is empty"),
    (np.zeros((20, 2)), Y0, "source_labels must be a 1-D array"),
])
def test_bad_input_nce(z, y, match):
    with pytest.raises(ValueError, match=match):
        E.nce(z, y)


@pytest.mark.parametrize("kw,Z,Y,match", [
    ({"alpha": -1.0}, Z0, Y0, "alpha must be a finite number >= 0, got -1.0"),
    ({"alpha": float("nan")}, Z0, Y0, "alpha must be a finite number >= 0, got nan"),
    ({"alpha": "auto"}, Z0, Y0, "alpha must be a number >= 0, or 'cv'"),
    ({"alpha": "cv", "cv_grid": [-1.0]}, Z0, Y0, "cv_grid must hold finite values >= 0"),
    ({"alpha": None}, Z0, Y0, "alpha must be a number"),
    # the fold count is blamed, not the sample count
    ({"alpha": "cv", "cv_folds": 0}, Z0, Y0, "cv_folds must be an integer >= 2, got 0"),
    ({"alpha": "cv", "cv_folds": 2.5}, Z0, Y0, "cv_folds must be an integer >= 2, got 2.5"),
    ({"alpha": "cv", "cv_folds": True}, Z0, Y0, "cv_folds must be an integer >= 2, got True"),
    ({"alpha": "cv", "seed": "a"}, Z0, Y0, "seed must be an integer, got 'a'"),
    ({"alpha": "cv"}, Z0[:1], Y0[:1], "at least 2 samples to cross-validate; got n=1"),
])
def test_bad_input_linear_mse(kw, Z, Y, match):
    with pytest.raises(ValueError, match=match):
        E.linear_mse(Z, Y, **kw)


def test_constant_features_hscore():
    with pytest.raises(ValueError, match="constant across samples"):
        E.hscore(np.ones((20, 3)), Y0)
