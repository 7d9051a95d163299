"""Coding rate and TransRate against reference formulas written here from the paper."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sys
from transfer_nb.coding_rate import (coding_rate, coding_rate_terms,
                                     logdet_identity_plus_gram, transrate,
                                     transrate_official, transrate_per_layer)

FAST = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- #
# references: the textbook formulas (d x d slogdet), not the code under test
# --------------------------------------------------------------------------- #
def ref_R(Z, eps):
    n, d = Z.shape
    sign, ld = np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))
    assert sign > 0
    return 0.5 * ld


def ref_transrate(Z, y, eps=1e-4):
    """The snippet: centre once, classes not re-centred, 1/K average over present classes."""
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z - Z.mean(0, keepdims=True)
    classes = np.unique(y)
    return ref_R(Z, eps) - np.mean([ref_R(Z[y == c], eps) for c in classes])


def ref_transrate_official(Z, y, eps=1e-4):
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    Z = Z - Z.mean(0, keepdims=True)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n, d = Z.shape
    C = Z.T @ Z / n
    lam = np.linalg.eigvalsh(C)
    tr = np.trace(C)
    r = np.linalg.matrix_rank(C)
    rz = 0.5 * np.sum(np.log(1 + np.abs(lam) / tr / eps)) / r
    rzc = 0.0
    for c in np.unique(y):
        Zc = Z[y == c]
        lc = np.linalg.eigvalsh(Zc.T @ Zc / len(Zc))
        rzc += len(Zc) / n * 0.5 * np.sum(np.log(1 + np.abs(lc) / tr / eps)) / r
    return rz - rzc


from tests._synthetic import class_data  # noqa: E402

def data(n, d, K, seed=0, signal=2.0):
    return class_data(n, d, K, seed=seed, signal=signal)


SHAPES = [(60, 10, 3), (30, 80, 3), (40, 40, 4), (100, 7, 5), (12, 200, 2), (9, 3, 3)]


# --------------------------------------------------------------------------- #
# agreement with the references
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,d,K", SHAPES)
@pytest.mark.parametrize("eps", [1e-4, 1e-2, 1.0])
def test_transrate_matches_snippet(n, d, K, eps):
    Z, y = data(n, d, K, seed=n + d)
    ref = ref_transrate(Z, y, eps)
    assert transrate(Z, y, eps) == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n,d,K", SHAPES)
def test_transrate_official_matches_reference(n, d, K):
    Z, y = data(n, d, K, seed=3 * n + d)
    ref = ref_transrate_official(Z, y, 1e-3)
    assert transrate_official(Z, y, 1e-3) == pytest.approx(ref, rel=1e-8, abs=1e-10)
    assert transrate(Z, y, 1e-3, variant="official") == pytest.approx(ref, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("n,d", [(50, 10), (10, 50), (20, 20), (1, 5), (5, 1)])
def test_coding_rate_matches_formula_and_sylvester(n, d):
    rng = np.random.default_rng(n * d)
    Z = rng.normal(size=(n, d))
    assert coding_rate(Z, 1e-3) == pytest.approx(ref_R(Z, 1e-3), rel=1e-10)
    Zc = Z - Z.mean(0)
    assert coding_rate(Z, 1e-3, center=True) == pytest.approx(ref_R(Zc, 1e-3), rel=1e-10,
                                                              abs=1e-12)
    # Sylvester: det(I_d + c Z^T Z) = det(I_n + c Z Z^T)
    c = 0.7
    big = np.linalg.slogdet(np.eye(d) + c * Z.T @ Z)[1]
    small = np.linalg.slogdet(np.eye(n) + c * Z @ Z.T)[1]
    assert big == pytest.approx(small, rel=1e-10)
    assert logdet_identity_plus_gram(Z, c) == pytest.approx(big, rel=1e-10)


def test_coding_rate_known_value():
    # Z = I_3: Z^T Z = I, n = 3 -> 1/2 * 3 * log(1 + 1/(3 eps))
    assert coding_rate(np.eye(3), eps=0.5) == pytest.approx(1.5 * np.log(1 + 2 / 3))


def test_classes_are_not_recentred():
    """The snippet takes Z_k from the globally centred Z without re-centring."""
    Z, y = data(80, 6, 3, seed=1, signal=5.0)
    Zc = Z - Z.mean(0)
    recentred = ref_R(Zc, 1e-4) - np.mean(
        [ref_R(Zc[y == c] - Zc[y == c].mean(0), 1e-4) for c in range(3)])
    ours = transrate(Z, y)
    assert ours == pytest.approx(ref_transrate(Z, y), rel=1e-10)
    assert abs(ours - recentred) > 1e-3


def test_terms_are_consistent_and_keyed_by_labels():
    Z, y = data(90, 12, 3, seed=2)
    names = np.array(["cat", "dog", "emu"])[y]
    t = coding_rate_terms(Z, names)
    assert set(t) >= {"R", "R_given_y", "per_class", "transrate"}
    assert list(t["per_class"]) == ["cat", "dog", "emu"]
    assert t["R_given_y"] == pytest.approx(np.mean(list(t["per_class"].values())))
    assert t["transrate"] == pytest.approx(t["R"] - t["R_given_y"])
    assert t["transrate"] == pytest.approx(transrate(Z, y))
    Zc = Z - Z.mean(0)
    assert t["R"] == pytest.approx(ref_R(Zc, 1e-4), rel=1e-10)
    assert t["per_class"]["dog"] == pytest.approx(ref_R(Zc[y == 1], 1e-4), rel=1e-10)
    o = coding_rate_terms(Z, names, variant="official")
    w = np.array(list(o["counts"].values())) / len(y)
    assert o["R_given_y"] == pytest.approx(np.sum(w * np.array(list(o["per_class"].values()))))
    assert o["transrate"] == pytest.approx(transrate_official(Z, y))


def test_per_layer_series():
    Z1, y = data(50, 8, 2, seed=4)
    Z2 = np.random.default_rng(5).normal(size=(50, 30))
    s = transrate_per_layer({"b": Z1, "a": Z2}, y)
    assert isinstance(s, pd.Series) and list(s.index) == ["b", "a"]
    assert s["b"] == pytest.approx(transrate(Z1, y))
    assert s["a"] == pytest.approx(transrate(Z2, y))
    with pytest.raises(ValueError, match="layer 'bad'.*NaN"):
        transrate_per_layer({"ok": Z1, "bad": np.full((50, 3), np.nan)}, y)
    with pytest.raises(ValueError, match="non-empty dict"):
        transrate_per_layer({}, y)


def test_large_batch_of_equal_classes_matches():
    """Many equal-sized classes go through the batched Cholesky."""
    Z, y = data(200, 30, 20, seed=6)       # 10 per class, n > d
    assert transrate(Z, y) == pytest.approx(ref_transrate(Z, y), rel=1e-9)
    Z, y = data(40, 100, 8, seed=7)        # n <= d: blocks of the global Gram
    assert transrate(Z, y) == pytest.approx(ref_transrate(Z, y), rel=1e-9)


# --------------------------------------------------------------------------- #
# dtypes and torch
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_dtypes_promoted(dtype):
    Z, y = data(40, 5, 2, seed=8)
    Zt = (Z * 4).astype(dtype)
    assert transrate(Zt, y) == pytest.approx(ref_transrate(Zt.astype(np.float64), y), rel=1e-9)


def test_torch_input():
    torch = pytest.importorskip("torch")
    Z, y = data(40, 5, 2, seed=9)
    for dt in (torch.float32, torch.bfloat16, torch.float64):
        t = torch.tensor(Z).to(dt)
        expected = ref_transrate(t.to(torch.float64).numpy(), y)
        assert transrate(t, torch.tensor(y)) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #
@st.composite
def problems(draw):
    n = draw(st.integers(8, 40))
    d = draw(st.integers(1, 30))
    K = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 10_000))
    return data(n, d, K, seed=seed, signal=draw(st.floats(0, 3)))


@FAST
@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_sample_order_invariance(prob, seed):
    Z, y = prob
    p = np.random.default_rng(seed).permutation(len(y))
    for v in ("snippet", "official"):
        assert transrate(Z[p], y[p], variant=v) == pytest.approx(
            transrate(Z, y, variant=v), rel=1e-8, abs=1e-8)


@FAST
@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_label_renaming_invariance(prob, seed):
    Z, y = prob
    rng = np.random.default_rng(seed)
    new = rng.choice(np.arange(100, 1000), size=y.max() + 1, replace=False)
    assert transrate(Z, new[y]) == pytest.approx(transrate(Z, y), rel=1e-10, abs=1e-10)
    assert transrate(Z, np.array([f"c{v}" for v in new])[y]) == pytest.approx(
        transrate(Z, y), rel=1e-10, abs=1e-10)


@FAST
@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_orthogonal_rotation_invariance(prob, seed):
    Z, y = prob
    d = Z.shape[1]
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    for v in ("snippet", "official"):
        assert transrate(Z @ Q, y, variant=v) == pytest.approx(
            transrate(Z, y, variant=v), rel=1e-7, abs=1e-7)


def test_scale_official_invariant_snippet_not():
    # classes with fewer samples than d are rank-capped: the snippet then shifts
    # by about (rank(Z) - rank(Z_k)) * log(100) / 2 when Z is multiplied by 10
    Z, y = data(60, 40, 3, seed=10)
    assert transrate_official(10 * Z, y) == pytest.approx(transrate_official(Z, y), rel=1e-9)
    assert abs(transrate(10 * Z, y) - transrate(Z, y)) > 1.0


def test_informative_features_rank_above_noise():
    rng = np.random.default_rng(11)
    n, d, K = 200, 20, 4
    y = np.arange(n) % K
    informative = 3 * rng.normal(size=(K, d))[y] + 0.3 * rng.normal(size=(n, d))
    noise = rng.normal(size=(n, d)) * informative.std()
    assert transrate(informative, y) > transrate(noise, y)
    assert transrate_official(informative, y) > transrate_official(noise, y)


def test_cholesky_failure_falls_back_with_reason(monkeypatch):
    Z, y = data(30, 5, 2, seed=12)
    expected = transrate(Z, y)

    def broken(M):
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    cr_mod = sys.modules["transfer_nb.coding_rate"]
    monkeypatch.setattr(cr_mod.np.linalg, "cholesky", broken)
    with pytest.warns(RuntimeWarning, match="Cholesky.*not positive definite.*eigvalsh"):
        got = transrate(Z, y)
    assert got == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- #
# bad input: a ValueError that says what was wrong and what was expected
# --------------------------------------------------------------------------- #
Z0, Y0 = data(20, 4, 2, seed=13)


@pytest.mark.parametrize("Z,y,eps,match", [
    (Z0[:, 0], Y0, 1e-4, r"2-D array.*got 1-D.*reshape\(-1, 1\)"),
    (np.zeros((0, 4)), np.zeros(0), 1e-4, "empty"),
    (np.zeros((20, 0)), Y0, 1e-4, "empty"),
    (np.where(np.eye(20, 4) > 0, np.nan, Z0), Y0, 1e-4, "NaN or Inf"),
    (np.where(np.eye(20, 4) > 0, np.inf, Z0), Y0, 1e-4, "NaN or Inf"),
    (Z0, Y0[:-1], 1e-4, "19 labels but the features has 20 rows"),
    (Z0, np.zeros(20), 1e-4, "1 distinct class.*at least 2 classes"),
    (Z0, np.r_[np.zeros(19), 1], 1e-4, "fewer than 2 samples"),
    (Z0, Y0, 0.0, "eps must be a finite number > 0"),
    (Z0, Y0, -1e-4, "eps must be a finite number > 0"),
    (Z0, Y0, float("nan"), "eps must be a finite number > 0"),
    (Z0, Y0, "1e-4", "eps must be a positive number"),
    (Z0.astype(str), Y0, 1e-4, "real numeric array"),
    (Z0, np.eye(2)[Y0], 1e-4, "1-D array of labels.*one-hot"),
    (Z0, np.r_[np.nan, Y0[1:]].astype(float), 1e-4, "NaN or Inf"),
    (Z0, np.array([1, "a"] * 10, dtype=object), 1e-4, "mixes label types"),
    (1e200 * Z0, Y0, 1e-4, "overflows float64"),
])
def test_bad_input(Z, y, eps, match):
    with pytest.raises(ValueError, match=match):
        transrate(Z, y, eps)


def test_bad_input_coding_rate_and_variant():
    with pytest.raises(ValueError, match="2-D array"):
        coding_rate(np.ones(5))
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        coding_rate(Z0, eps=0)
    with pytest.raises(ValueError, match="variant must be one of"):
        transrate(Z0, Y0, variant="paper")
    with pytest.raises(ValueError, match="identical after centring"):
        transrate_official(np.ones((20, 3)), Y0)


def test_no_warning_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transrate(Z0, Y0)


def test_top_level_api_whatever_the_import_order():
    import transfer_nb as tnb
    import transfer_nb.estimators  # noqa: F401  (imports the coding_rate submodule)
    assert tnb.coding_rate(np.eye(3), eps=0.5) == pytest.approx(1.5 * np.log(1 + 2 / 3))
    assert tnb.transrate(Z0, Y0) == pytest.approx(ref_transrate(Z0, Y0))
    assert callable(tnb.coding_rate) and not isinstance(tnb.coding_rate, type(sys))
