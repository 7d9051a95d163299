"""k-NN, N-LEEP, GBC, PARC and SFDA against references written here from the papers.

The references take another route than the library wherever one exists (loops over
examples and class pairs, ``d x d`` matrices, the authors' generalised eigenproblem,
scikit-learn's PCA and scipy's Spearman); the harness (``test_estimator_harness.py``)
uses them for its reference check.
"""
import numpy as np
import pytest
from scipy.stats import spearmanr

from tests._synthetic import class_data
from tests.test_estimators import ref_leep
from transfer_nb import estimators as E
from transfer_nb.estimators._pca import pca_scores


# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #
def ref_knn(Z, y, k=1):
    """Leave-one-out plurality vote of the k nearest (Euclidean), ties to the nearest."""
    n = len(y)
    correct = 0
    for i in range(n):
        dist = [(np.sum((Z[i] - Z[j]) ** 2), j) for j in range(n) if j != i]
        dist.sort()
        near = [y[j] for _, j in dist[:k]]
        counts = {c: near.count(c) for c in near}
        top = max(counts.values())
        pred = next(c for c in near if counts[c] == top)     # first = nearest tied class
        correct += pred == y[i]
    return correct / n


def ref_pca(Z, n_components):
    """PCA scores from the eigenvectors of the covariance (signs: largest |score| > 0)."""
    X = Z - Z.mean(0)
    w, V = np.linalg.eigh(X.T @ X)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    keep = w > 1e-9 * w[0]
    w, V = w[keep], V[:, keep]
    if isinstance(n_components, float):
        ratio = np.cumsum(w) / w.sum()
        n_components = int(np.argmax(ratio > n_components)) + 1
    S = X @ V[:, :n_components]
    for c in range(S.shape[1]):
        if S[np.argmax(np.abs(S[:, c])), c] < 0:
            S[:, c] *= -1
    return S


def ref_nleep(Z, y, variance=0.8, ratio=5, seed=0):
    """PCA keeping 80 % of the variance, a full-covariance mixture of 5K Gaussians,
    LEEP (loops) on its posteriors."""
    from sklearn.mixture import GaussianMixture
    X = ref_pca(Z, variance)
    X = X / np.sqrt(np.mean(X ** 2))
    order = np.lexsort(X.T[::-1])
    gmm = GaussianMixture(ratio * len(np.unique(y)), random_state=seed).fit(X[order])
    return ref_leep(gmm.predict_proba(X), y)


def ref_gbc(Z, y, n_components=64, gaussian="spherical"):
    """-sum over ordered class pairs of exp(-Bhattacharyya distance), d x d matrices."""
    from sklearn.decomposition import PCA
    X = PCA(n_components=min(n_components, *Z.shape), svd_solver="full").fit_transform(Z)
    classes = np.unique(y)
    stats = {}
    for c in classes:
        Xc = X[y == c]
        var = np.maximum(Xc.var(0), 1e-4)
        if gaussian == "spherical":
            var = np.full_like(var, var.mean())
        stats[c] = (Xc.mean(0), np.diag(var))
    total = 0.0
    for a in classes:
        for b in classes:
            if a == b:
                continue
            (m1, S1), (m2, S2) = stats[a], stats[b]
            S = (S1 + S2) / 2
            dm = m1 - m2
            db = dm @ np.linalg.solve(S, dm) / 8 + 0.5 * (
                np.linalg.slogdet(S)[1]
                - 0.5 * (np.linalg.slogdet(S1)[1] + np.linalg.slogdet(S2)[1]))
            total += np.exp(-db)
    return -total


def ref_parc(Z, y, n_components=32):
    """PCA, StandardScaler, 1 - corrcoef of rows vs of one-hot labels, Spearman."""
    X = ref_pca(Z, min(n_components, Z.shape[1]))
    X = (X - X.mean(0)) / X.std(0)
    onehot = np.eye(len(np.unique(y)))[np.unique(y, return_inverse=True)[1]]
    iu = np.triu_indices(len(y), 1)
    # rounded: np.corrcoef of one-hot rows is 1 or -1/(K-1) only up to rounding, and
    # rounding noise would break the ties that Spearman must average
    label_rdm = np.round(1 - np.corrcoef(onehot), 10)
    return spearmanr((1 - np.corrcoef(X))[iu], label_rdm[iu])[0]


def _ref_sfda_probs(X, y, lam=None):
    """The authors' SFDA.fit + predict_proba: generalised eigh(S_B, S_lambda)."""
    from scipy.linalg import eigh
    classes = np.unique(y)
    priors = np.array([np.mean(y == c) for c in classes])
    means = np.array([X[y == c].mean(0) for c in classes])
    Sw = sum(p * np.cov(X[y == c].T, bias=True) for p, c in zip(priors, classes))
    if lam is None:
        lam = max(np.exp(-5 * np.linalg.eigvalsh(Sw)[-1]), 1e-10)
    d = X.shape[1]
    shrunk_w = (1 - lam) * Sw + lam * np.trace(Sw) / d * np.eye(d)
    St = np.cov(X.T, bias=True)
    St = (1 - lam) * St + lam * np.trace(St) / d * np.eye(d)
    evals, evecs = eigh(St - shrunk_w, shrunk_w)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    s = X @ coef.T + intercept
    p = np.exp(s - s.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), lam, means


def ref_sfda(Z, y):
    X = np.array(Z, dtype=float)
    codes = np.unique(y, return_inverse=True)[1]
    prob, lam, means = _ref_sfda_probs(X, codes)
    prob = np.exp(prob) / np.exp(prob).sum(1, keepdims=True)
    K = len(means)
    for k in range(K):
        idx = codes == k
        other = (means.sum(0) - means[k]) / (K - 1)
        q = prob[idx, k][:, None]
        X[idx] = q * X[idx] + (1 - q) * other
    prob, _, _ = _ref_sfda_probs(X, codes, lam)
    return np.mean(prob[np.arange(len(codes)), codes])


# --------------------------------------------------------------------------- #
# tests beyond the harness
# --------------------------------------------------------------------------- #
def test_pca_scores_match_the_covariance_eigenvectors():
    Z, _ = class_data(50, 7, 3, seed=2)
    np.testing.assert_allclose(pca_scores(Z, 4), ref_pca(Z, 4), atol=1e-10)
    np.testing.assert_allclose(pca_scores(Z, 0.8), ref_pca(Z, 0.8), atol=1e-10)
    # rank-deficient: a repeated column adds no component
    Zr = np.c_[Z, Z[:, :1]]
    assert pca_scores(Zr, 20).shape == (50, 7)


@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_knn_matches_loops_for_several_k(k):
    Z, y = class_data(40, 5, 3, seed=k, signal=0.8)
    assert E.knn(Z, y, k=k) == pytest.approx(ref_knn(Z, y, k))


def test_knn_tie_goes_to_the_nearest_class_whatever_its_name():
    # point 0 has neighbours at distance 1 (class b) and 2 (class a): a 2-NN tie
    Z = np.array([[0.0], [1.0], [-2.0], [10.0], [11.0], [30.0], [31.0]])
    for names in (["a", "b"], ["z", "b"], ["b", "a"]):
        a, b = names
        y = np.array([b, b, a, a, a, b, b])
        # 0 -> {1 (b), 2 (a)}: tie, nearest is b: correct
        assert E.knn(Z, y, k=2) == pytest.approx(ref_knn(Z, y, 2))


def test_knn_cosine_ignores_the_norm_of_each_row():
    Z, y = class_data(30, 4, 2, seed=1, signal=2.0)
    scale = np.random.default_rng(0).uniform(0.1, 10, size=(30, 1))
    assert E.knn(Z * scale, y, metric="cosine") == E.knn(Z, y, metric="cosine")
    with pytest.raises(ValueError, match="all-zero row"):
        E.knn(np.r_[np.zeros((1, 4)), Z[1:]], y, metric="cosine")
    with pytest.raises(ValueError, match=r"metric must be one of \['euclidean', 'cosine'\]"):
        E.knn(Z, y, metric="l1")
    with pytest.raises(ValueError, match="k"):
        E.knn(Z, y, k=30)


def test_nleep_is_leep_of_the_mixture_and_depends_on_the_seed_only_through_em():
    Z, y = class_data(80, 6, 2, seed=3, signal=1.0)
    assert E.nleep(Z, y) == pytest.approx(ref_nleep(Z, y), rel=1e-8)
    assert E.nleep(Z, y, seed=1) == pytest.approx(ref_nleep(Z, y, seed=1), rel=1e-8)
    with pytest.raises(ValueError, match=r"5 \* 2 = 10 Gaussian components but there are "
                                          r"only 8 examples"):
        E.nleep(Z[:8], np.r_[[0] * 4, [1] * 4])
    assert np.isfinite(E.nleep(Z[:8], np.r_[[0] * 4, [1] * 4], component_ratio=1))


def test_gbc_diagonal_and_spherical_and_the_authors_logdet():
    Z, y = class_data(70, 5, 3, seed=4)
    assert E.gbc(Z, y, gaussian="diagonal") == pytest.approx(
        ref_gbc(Z, y, gaussian="diagonal"), rel=1e-10)
    # two classes, equal spherical spread: the authors' single log term is 0 as well,
    # so D_B = |mu1 - mu2|^2 / (8 s) and GBC = -2 exp(-D_B)
    Z2 = np.array([[0.0, 1.0], [0.0, -1.0], [3.0, 1.0], [3.0, -1.0]])
    y2 = np.array([0, 0, 1, 1])
    # after PCA the class means are 3 apart, each class has variances (0, 1), floored to
    # (1e-4, 1): spherical s = 0.50005
    assert E.gbc(Z2, y2) == pytest.approx(-2 * np.exp(-9 / (8 * 0.50005)), rel=1e-12)
    with pytest.raises(ValueError, match=r"gaussian must be one of \['spherical', 'diagonal'\]"):
        E.gbc(Z, y, gaussian="full")


def test_parc_is_the_spearman_of_the_two_dissimilarities():
    Z, y = class_data(45, 40, 3, seed=5)
    assert E.parc(Z, y) == pytest.approx(ref_parc(Z, y), rel=1e-10)
    assert E.parc(Z, y, n_components=5) == pytest.approx(ref_parc(Z, y, 5), rel=1e-10)
    with pytest.raises(ValueError, match="rank 1; expected at least 2"):
        E.parc(np.c_[Z[:, 0], 2 * Z[:, 0]], y)


def test_sfda_equals_the_authors_eigen_formulation_when_n_is_below_d():
    Z, y = class_data(30, 50, 3, seed=6, signal=0.5)
    assert E.sfda(Z, y) == pytest.approx(ref_sfda(Z, y), rel=1e-6)
    # unit-scale features: lambda = exp(-5 sigma_max) is at its floor; small ones shrink
    assert E.sfda(Z * 0.01, y) != pytest.approx(E.sfda(Z, y), rel=1e-3)
    assert E.sfda(Z * 0.01, y) == pytest.approx(ref_sfda(Z * 0.01, y), rel=1e-6)


def _ref_knn_row_order(Z, y):
    """1-NN from exact pairwise squared distances, ties to the lower row index
    (stable argsort): the authors' kNN (``dbolya/parc``) on exactly tied distances."""
    Z = np.asarray(Z, dtype=np.float64)
    hits = 0
    for i in range(len(y)):
        dist = np.sum((Z - Z[i]) ** 2, axis=1)
        dist[i] = np.inf
        hits += y[np.argsort(dist, kind="stable")[0]] == y[i]
    return hits / len(y)


def test_knn_exact_distance_ties_go_by_row_order():
    # row 3 (6) is at distance 1 from row 0 (7, class 0) and row 4 (5, class 1):
    # row order gives it class 0 (wrong), so 1 of 5 is right; rounding gave 0.4
    Z, y = np.array([[7.0], [1.0], [3.0], [6.0], [5.0]]), np.array([0, 0, 1, 1, 1])
    assert _ref_knn_row_order(Z, y) == 0.2
    assert E.knn(Z, y) == 0.2
    assert E.knn(Z, y, k=3) == pytest.approx(ref_knn(Z, y, 3))
    assert E.knn(Z[::-1], y[::-1]) == 0.6            # row order decides the tie


def test_knn_digits_exact_ties_match_a_brute_force_reference():
    from sklearn.datasets import load_digits

    from transfer_nb.estimators.knn import _neighbours
    X, y = load_digits(return_X_y=True)              # integer pixels: exact ties
    X = X.astype(np.float64)
    ref = np.empty(len(y), dtype=int)
    ties = 0
    for i in range(len(y)):
        dist = np.sum((X - X[i]) ** 2, axis=1)
        dist[i] = np.inf
        ref[i] = np.argsort(dist, kind="stable")[0]
        ties += np.sum(dist == dist[ref[i]]) > 1
    assert ties == 18                                  # rows whose nearest is tied
    np.testing.assert_array_equal(_neighbours(X, 1, "euclidean")[:, 0], ref)
    assert E.knn(X, y) == np.mean(y[ref] == y)
    # the nearest three too, in (distance, row) order
    near3 = _neighbours(X, 3, "euclidean")
    for i in range(0, len(y), 97):
        dist = np.sum((X - X[i]) ** 2, axis=1)
        dist[i] = np.inf
        np.testing.assert_array_equal(near3[i], np.argsort(dist, kind="stable")[:3])
