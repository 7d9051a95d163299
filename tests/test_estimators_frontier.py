"""ETran and NCTI: hand-worked cases from the papers' formulas, and references written
here from the logic of the authors' public code (``mgholamikn/ETran``,
``BUserName/NCTI``) run on seeded inputs.

The references follow the authors' steps with their libraries (``torch.logsumexp``,
``np.linalg.eigh`` on the matrix they pass it, scikit-learn's ``PCA`` and
``LinearDiscriminantAnalysis``); the harness (``test_estimator_harness.py``) uses
:func:`ref_etran` and :func:`ref_ncti` for its reference check.
"""
import numpy as np
import pytest

from tests.test_estimators_more import _ref_sfda_probs
from transfer_nb import estimators as E
from transfer_nb.estimators.etran import etran_across_models, etran_terms
from transfer_nb.estimators.ncti import ncti_across_models, ncti_terms


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------- #
# references from the authors' code
# --------------------------------------------------------------------------- #
def ref_energy(X, percent=0.5):
    """``Energy_Score(X, 0.5, 'bot')``: mean logsumexp of the lowest int(p*10)*n//1000
    rows (at least one: theirs averages none below 200 rows)."""
    torch = pytest.importorskip("torch")
    score = torch.logsumexp(torch.from_numpy(np.asarray(X, dtype=np.float64)), dim=-1).numpy()
    m = max(1, int(percent * 10) * len(score) // 1000)
    return score[np.argsort(score)[:m]].mean()


def ref_lda_public_code(X, y):
    """Their ``LDA().fit(X, y).predict_proba`` + ``LDA_Score``: eigh of the
    non-symmetric inv(shrunk_Sw) @ Sb, coef = means @ evecs @ evecs.T."""
    X = np.asarray(X, dtype=np.float64)
    classes, y = np.unique(y, return_inverse=True)
    priors = np.bincount(y) / len(y)
    means = np.array([X[y == c].mean(0) for c in range(len(classes))])
    Sw = sum(p * np.cov(X[y == c].T, bias=1) for c, p in enumerate(priors))
    Sw = np.atleast_2d(Sw)
    lam = max(np.exp(-5 * np.linalg.eigvalsh(Sw)[-1]), 1e-10)
    d = Sw.shape[0]
    St = np.atleast_2d(np.cov(X.T, bias=1))
    St = (1 - lam) * St + lam * np.trace(St) / d * np.eye(d)
    shrunk = (1 - lam) * Sw + lam * np.trace(Sw) / d * np.eye(d)
    evals, evecs = np.linalg.eigh(np.linalg.inv(shrunk) @ (St - shrunk))
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    logits = X @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p[np.arange(len(y)), y].mean()


def ref_regression(X, y):
    """``_solve_eigen2`` on one-hot targets (float64: theirs is float32)."""
    Y = np.eye(len(np.unique(y)))[np.unique(y, return_inverse=True)[1]]
    U, S, Vt = np.linalg.svd(np.asarray(X, dtype=np.float64), full_matrices=False)
    x_hat = Vt.T @ np.linalg.inv(np.diag(S)) @ U.T @ Y
    return -np.mean((X @ x_hat - Y) ** 2)


def ref_etran(Z, y):
    """Default ETran: energy on the features + the (paper's) shrinkage-LDA term."""
    codes = np.unique(y, return_inverse=True)[1]
    prob = _ref_sfda_probs(np.asarray(Z, dtype=float), codes)[0]
    return ref_energy(Z) + prob[np.arange(len(codes)), codes].mean()


def ref_ncti_terms(X, y):
    """``NCTI_Score``: PCA(64), shrinkage from the top-32 variances, sklearn's LDA
    (svd solver at the floor, else eigen with that shrinkage); the three raw terms."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    y = np.unique(y, return_inverse=True)[1]
    C = len(np.unique(y))
    pca = PCA(n_components=min(64, *X.shape), svd_solver="full")
    X = pca.fit_transform(X)
    temp = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    if temp == 1e-10:
        clf = LinearDiscriminantAnalysis(solver="svd")
    else:
        clf = LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(temp))
    low = clf.fit_transform(X, y)
    low = low - low.mean(0, keepdims=True)
    pred = clf.predict_proba(X)
    nuc = sum(np.linalg.norm(pred[y == c], ord="nuc") for c in range(C))
    return {"seli": np.linalg.norm(low, ord="nuc"),
            "ncc": pred[np.arange(len(y)), y].mean(), "vc": -np.log(nuc)}


def ref_ncti(Z, y):
    return sum(ref_ncti_terms(np.asarray(Z, dtype=float), y).values())


def _zoo(seed, n=240, d=80, K=4, scale=1.0):
    """Overlapping classes (true-class probabilities well below 1), scaled."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % K
    rng.shuffle(y)
    signal = rng.uniform(0.1, 0.25)
    Z = (rng.normal(size=(n, d)) + signal * rng.normal(size=(K, d))[y]) * scale
    return Z, y


# --------------------------------------------------------------------------- #
# hand-worked cases
# --------------------------------------------------------------------------- #
HAND_Z = np.array([[0.0, 0.0], [0.0, 1.0], [2.0, 0.0], [2.0, 1.0]])
HAND_Y = np.array([0, 0, 1, 1])


def test_etran_hand_case():
    # energy: logsumexp per row = log 2, log(1+e), log(e^2+1), log(e^2+e); n=4 keeps
    # the lowest one: log 2.  Public-code classifier: logits z.mu_k - |mu_k|^2/2 with
    # mu_0 = (0, .5), mu_1 = (2, .5): every row is 2 nats from the other class.
    # Regression: column 1 of the one-hot is x1/2 exactly; column 0 = (1,1,0,0) fits
    # with a = -1/6, b = 2/3, residuals (1, -1/3, -1/3, 1/3): SSE 4/3 over 8 entries.
    t = etran_terms(HAND_Z, HAND_Y, lda="public_code")
    assert t["energy"] == pytest.approx(np.log(2), rel=1e-14)
    assert t["classification"] == pytest.approx(_sigmoid(2.0), rel=1e-14)
    assert t["regression"] == pytest.approx(-1 / 6, rel=1e-12)
    # paper's LDA: S_W = diag(0, 1/4), lambda = exp(-5/4), S = diag(l/8, (1-l)/4 + l/8);
    # the log-odds are 16 (z1 - 1) / lambda: |16 e^{5/4}| = 55.8 nats
    lam = np.exp(-1.25)
    assert etran_terms(HAND_Z, HAND_Y)["classification"] == pytest.approx(
        _sigmoid(16 / lam), rel=1e-14)
    assert E.etran(HAND_Z, HAND_Y) == pytest.approx(np.log(2) + _sigmoid(16 / lam))
    assert E.etran(HAND_Z, HAND_Y, regression=True, lda="public_code") == pytest.approx(
        np.log(2) + _sigmoid(2.0) - 1 / 6)
    # logits instead of features for the energy: logsumexp log(1 + e^3), log 2,
    # 1 + log 2, 5 + log 2; the lowest is log 2, the lowest two average log 2 + 1/2
    logits = np.array([[3.0, 0.0], [0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    assert etran_terms(HAND_Z, HAND_Y, logits=logits)["energy"] == pytest.approx(np.log(2))
    assert etran_terms(HAND_Z, HAND_Y, logits=logits, energy_fraction=0.5)["energy"] == \
        pytest.approx(np.log(2) + 0.5, rel=1e-14)


def test_ncti_hand_case():
    # 1-D features z = (0, 2, 10, 12): PCA scores (-6, -4, 4, 6), variance 104/3, so the
    # shrinkage is at its floor: plain LDA, within-class variance S_W = 1.  Discriminant
    # coordinate x / sqrt(S_W) = x: nuclear norm sqrt(36 + 16 + 16 + 36).  Means -5, 5:
    # log-odds 10 x, so p(true) = sigmoid(60), sigmoid(40) in each class.
    z = np.array([[0.0], [2.0], [10.0], [12.0]])
    t = ncti_terms(z, HAND_Y)
    assert t["seli"] == pytest.approx(np.sqrt(104), rel=1e-12)
    assert t["ncc"] == pytest.approx((_sigmoid(60) + _sigmoid(40)) / 2, rel=1e-14)
    M = np.array([[_sigmoid(60), _sigmoid(-60)], [_sigmoid(40), _sigmoid(-40)]])
    nuc = np.sqrt(np.sum(M ** 2) + 2 * abs(np.linalg.det(M)))   # s1 + s2 of a 2 x 2
    assert t["vc"] == pytest.approx(-np.log(2 * nuc), rel=1e-12)  # both classes alike
    # shrinkage branch: z / 10 has variance 0.347, lambda = exp(-0.347): S = S_W = 0.01
    # (one dimension: shrinking towards tr(S_W) / d changes nothing), log-odds 100 x:
    # the same coordinates (x / 0.1) and probabilities as above
    t = ncti_terms(z / 10, HAND_Y)
    assert t["seli"] == pytest.approx(np.sqrt(104), rel=1e-12)
    assert t["ncc"] == pytest.approx((_sigmoid(60) + _sigmoid(40)) / 2, rel=1e-14)
    assert E.ncti(z / 10, HAND_Y) == pytest.approx(sum(t.values()))


# --------------------------------------------------------------------------- #
# against the authors' code on seeded inputs
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_etran_terms_match_the_authors_code(seed):
    Z, y = _zoo(seed, n=400)                      # >= 200 rows: their energy is defined
    Z = np.abs(Z)                                 # ReLU-like penultimate features
    t = etran_terms(Z, y, lda="public_code")
    assert t["energy"] == pytest.approx(ref_energy(Z), rel=1e-12)
    assert t["classification"] == pytest.approx(ref_lda_public_code(Z, y), rel=1e-10)
    assert t["regression"] == pytest.approx(ref_regression(Z, y), rel=1e-8)
    assert etran_terms(Z, y)["classification"] == pytest.approx(
        ref_etran(Z, y) - ref_energy(Z), rel=1e-10)


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 1.0), (2, 0.05), (3, 0.05)])
def test_ncti_terms_match_the_authors_code(seed, scale):
    # scale 0.05: the top-32 variance sum is below 23, so the eigen solver with
    # shrinkage runs; scale 1: the shrinkage floor and the svd solver
    Z, y = _zoo(seed, scale=scale)
    ours, ref = ncti_terms(Z, y), ref_ncti_terms(Z, y)
    for term in ("seli", "ncc", "vc"):
        assert ours[term] == pytest.approx(ref[term], rel=1e-7), term


def test_ncti_with_more_dimensions_than_within_class_degrees_of_freedom():
    # 5 images per class of 10 classes, 80 features: the within-class scatter of the 49
    # PCA scores (the centred rank) is singular (n - K = 40); at the shrinkage floor
    # sklearn's svd solver copes, and so must we (an eigen solve raised LinAlgError here).
    # The authors' PCA would keep a 50th, numerically null component that their LDA then
    # whitens as if it were signal: we keep the rank, so the check is our LDA against
    # sklearn's on the same scores.
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from transfer_nb.estimators._pca import pca_scores
    from transfer_nb.estimators.ncti import _lda_svd
    Z, y = _zoo(5, n=50, d=80, K=10, scale=1.0)
    X = pca_scores(Z, 64)
    assert X.shape == (50, 49)
    counts = np.bincount(y).astype(float)
    H, P = _lda_svd(X, y, counts)
    clf = LinearDiscriminantAnalysis(solver="svd").fit(X, y)
    low = clf.transform(X)
    np.testing.assert_allclose(np.abs(H), np.abs(low - low.mean(0)), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(P, clf.predict_proba(X), rtol=1e-7, atol=1e-12)
    assert all(np.isfinite(v) for v in ncti_terms(Z, y).values())


def test_ncti_below_64_dimensions_where_the_authors_pca_raises():
    Z, y = _zoo(4, n=50, d=20)
    assert E.ncti(Z, y) == pytest.approx(ref_ncti(Z, y), rel=1e-7)


def test_across_models_is_the_authors_min_max_combination():
    zoo = {f"m{s}": _zoo(s, scale=[1.0, 0.3, 2.0][s]) for s in range(3)}
    nct = {m: ncti_terms(Z, yy) for m, (Z, yy) in zoo.items()}
    got = ncti_across_models(nct)
    seli, ncc, vc = (np.array([nct[m][t] for m in zoo]) for t in ("seli", "ncc", "vc"))
    raw_vc = -vc                                           # their log(sum of nuclear norms)

    def mm(v):
        return (v - v.min()) / (v.max() - v.min())
    np.testing.assert_allclose(got.to_numpy(), mm(seli) + mm(ncc) - mm(raw_vc), atol=1e-12)
    et = {m: etran_terms(Z, yy) for m, (Z, yy) in zoo.items()}
    en = np.array([et[m]["energy"] for m in zoo])
    cl = np.array([et[m]["classification"] for m in zoo])
    np.testing.assert_allclose(etran_across_models(et).to_numpy(),
                               0.15 * mm(en) + 0.85 * mm(cl), atol=1e-12)
    assert list(got.index) == list(zoo)
    with pytest.raises(ValueError, match="at least 2 models"):
        ncti_across_models({"m0": nct["m0"]})
    with pytest.raises(ValueError, match=r"terms \['energy', 'classification'\] are missing"):
        etran_across_models(nct)


def test_etran_and_ncti_bad_parameters():
    Z, y = _zoo(0, n=40, d=5)
    with pytest.raises(ValueError, match=r"lda must be one of \['fisher', 'public_code'\]"):
        E.etran(Z, y, lda="svd")
    with pytest.raises(ValueError, match="energy_fraction"):
        E.etran(Z, y, energy_fraction=0)
    with pytest.raises(ValueError, match="logits has 39 rows but Z has 40"):
        E.etran(Z, y, logits=Z[:-1])
    with pytest.raises(ValueError, match="constant"):
        E.etran(np.ones((40, 3)), y)
    with pytest.raises(ValueError, match="constant"):
        E.ncti(np.ones((40, 3)), y)
    with pytest.raises(ValueError, match="n_components"):
        E.ncti(Z, y, n_components=0)
