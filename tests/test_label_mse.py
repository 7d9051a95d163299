"""Label MSE and Linear MSE against the ridge normal equations written out here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transfer_nb.estimators import label_mse, linear_mse
from transfer_nb.estimators.label_mse import dummy_labels


def _ridge_objective(X, Y, lam):
    """min_{A,b} 1/n ||Y - XA - b||^2 + lam ||A||^2 from the normal equations
    (X_c^T X_c + n lam I) A = X_c^T Y_c of the centred data (b absorbs the means)."""
    n, d = X.shape
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    if lam > 0:
        A = np.linalg.solve(Xc.T @ Xc + n * lam * np.eye(d), Xc.T @ Yc)
    else:
        A = np.linalg.pinv(Xc) @ Yc             # the minimum-norm least-squares solution
    R = Yc - Xc @ A
    return (R * R).sum() / n + lam * (A * A).sum()


def _minmax(Y):
    return (Y - Y.min(0)) / (Y.max(0) - Y.min(0))


def _softmax(L):
    E = np.exp(L - L.max(1, keepdims=True))
    return E / E.sum(1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, d, k, m = 60, 7, 5, 3
    X = rng.standard_normal((n, d))
    P = _softmax(rng.standard_normal((n, k)) * 2)
    Y = X[:, :m] @ rng.standard_normal((m, m)) + 0.3 * rng.standard_normal((n, m))
    return X, P, Y


@pytest.mark.parametrize("lam", [0.0, 0.01, 1.0])
def test_linear_mse_closed_form(data, lam):
    X, _, Y = data
    assert linear_mse(X, Y, alpha=lam, scale_targets=False) == pytest.approx(
        -_ridge_objective(X, Y, lam), rel=1e-9, abs=1e-12)
    assert linear_mse(X, Y, alpha=lam) == pytest.approx(
        -_ridge_objective(X, _minmax(Y), lam), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.01, 1.0])
def test_label_mse_probs_closed_form(data, lam):
    _, P, Y = data
    expected = -_ridge_objective(P, _minmax(Y), lam)
    assert label_mse(P, Y, alpha=lam) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert label_mse(P, Y, alpha=lam, kind="raw") == pytest.approx(expected, rel=1e-9)
    # torch and float32 input give the same score (promoted to float64)
    t = torch.from_numpy(P.astype(np.float32))
    assert label_mse(t, Y, alpha=lam) == pytest.approx(expected, rel=1e-4)


def test_label_mse_dummy_is_class_mean_residual(data):
    """One-hot hard labels at lambda = 0: the fit is the mean target of each predicted
    source class, so the score is minus the within-class sum of squares / n."""
    _, P, Y = data
    z = P.argmax(1)
    Ys = _minmax(Y)
    within = sum(((Ys[z == c] - Ys[z == c].mean(0)) ** 2).sum() for c in np.unique(z))
    expected = -within / len(Y)
    assert label_mse(P, Y, alpha=0, kind="dummy") == pytest.approx(expected, rel=1e-9)
    # logits have the same argmax; 1-D predicted labels of any values are the same input
    assert label_mse(np.log(P), Y, alpha=0, kind="dummy") == pytest.approx(expected, rel=1e-9)
    names = np.array(["cat", "dog", "eel", "fox", "gnu"])[z]
    assert label_mse(names, Y, alpha=0, kind="dummy") == pytest.approx(expected, rel=1e-9)
    onehot = np.eye(P.shape[1])[z]
    assert label_mse(P, Y, alpha=1.0, kind="dummy") == pytest.approx(
        -_ridge_objective(onehot[:, np.unique(z)], Ys, 1.0), rel=1e-9)
    # soft labels keep more information than their argmax here
    assert label_mse(P, Y, alpha=0) > label_mse(P, Y, alpha=0, kind="dummy")


def test_lambda_zero_more_features_than_samples():
    """n <= d at lambda = 0: the minimum-norm solution interpolates, training MSE is 0;
    lambda > 0 keeps a positive residual."""
    rng = np.random.default_rng(1)
    n, d = 20, 50
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, 2))
    assert _ridge_objective(X, Y, 0.0) < 1e-20
    assert linear_mse(X, Y, alpha=0) == pytest.approx(0.0, abs=1e-12)
    assert label_mse(X, Y, alpha=0, kind="raw") == pytest.approx(0.0, abs=1e-12)
    P = _softmax(X)                       # 50 source classes, 20 samples
    assert label_mse(P, Y, alpha=0) == pytest.approx(0.0, abs=1e-12)
    assert label_mse(P, Y, alpha=1.0) == pytest.approx(
        -_ridge_objective(P, _minmax(Y), 1.0), rel=1e-9)
    assert label_mse(P, Y, alpha=1.0) < -1e-3


def test_alpha_matches_sklearn_ridge_alpha_n_lambda(data):
    """The documented mapping: our alpha = lambda, sklearn Ridge(alpha = n * lambda)."""
    Ridge = pytest.importorskip("sklearn.linear_model").Ridge
    _, P, Y = data
    n, lam = len(Y), 0.05
    Ys = _minmax(Y)
    r = Ridge(alpha=n * lam).fit(P, Ys)
    res = Ys - r.predict(P)
    obj = (res * res).sum() / n + lam * (r.coef_ ** 2).sum()
    assert label_mse(P, Y, alpha=lam) == pytest.approx(-obj, rel=1e-6)


def test_targets_1d_equal_one_column(data):
    _, P, Y = data
    assert label_mse(P, Y[:, 0]) == label_mse(P, Y[:, :1])
    assert linear_mse(P, Y[:, 0]) == linear_mse(P, Y[:, :1])


def test_cv_and_return_alpha(data):
    _, P, Y = data
    score, lam = label_mse(P, Y, alpha="cv", return_alpha=True)
    assert score == pytest.approx(label_mse(P, Y, alpha=lam))
    assert score == pytest.approx(linear_mse(P, Y, alpha=lam))


def test_dummy_labels_kinds(data):
    _, P, _ = data
    np.testing.assert_allclose(dummy_labels(P), P)
    oh = dummy_labels(P, "dummy")
    assert oh.shape == (len(P), len(np.unique(P.argmax(1))))
    np.testing.assert_array_equal(oh.sum(1), np.ones(len(P)))


@pytest.mark.parametrize("outputs, Y, kind, alpha, match", [
    ("nan_out", "ok", "probs", 1.0, "NaN"),
    ("ok", "nan_y", "probs", 1.0, "NaN"),
    ("ok", "short", "probs", 1.0, "rows"),
    ("ok", "ok", "probs", -1.0, "alpha"),
    ("ok", "ok", "probs", float("nan"), "alpha"),
    ("ok", "ok", "probs", "big", "alpha"),
    ("ok", "3d", "probs", 1.0, "2-D"),
    ("logits", "ok", "probs", 1.0, r"\[0, 1\]"),
    ("unnormalised", "ok", "probs", 1.0, "sum to 1"),
    ("ok", "ok", "soft", 1.0, "kind"),
    ("nan_labels", "ok", "dummy", 1.0, "NaN"),
])
def test_bad_inputs(data, outputs, Y, kind, alpha, match):
    _, P, Yok = data
    out = {"ok": P, "logits": np.log(P), "unnormalised": P * 0.5,
           "nan_out": np.where(np.arange(P.size).reshape(P.shape) == 3, np.nan, P),
           "nan_labels": np.r_[np.nan, np.zeros(len(P) - 1)]}[outputs]
    y = {"ok": Yok, "short": Yok[:-1], "3d": Yok[:, :, None],
         "nan_y": np.where(np.arange(Yok.size).reshape(Yok.shape) == 5, np.nan, Yok)}[Y]
    with pytest.raises(ValueError, match=match):
        label_mse(out, y, alpha=alpha, kind=kind)


def test_mismatch_message_names_both(data):
    _, P, Y = data
    with pytest.raises(ValueError, match=r"source_outputs has 60 rows but Y has 59"):
        label_mse(P, Y[:-1])
