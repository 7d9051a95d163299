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

VARIANTS = ("snippet", "layerwise", "projected")


def variants_for(Z):
    """Layerwise L2-normalises rows: with d = 1 every row is +-1 and, all of one
    sign, undefined (a ValueError); hypothesis draws d = 1."""
    return VARIANTS if Z.shape[1] > 1 else ("snippet", "projected")

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


def ref_layerwise(Z, y, eps=1e-4):
    """The authors' layer-selection pipeline, with d x d matrices and a loop."""
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


def ref_projected(Z, y, eps=1e-2, normalize=False):
    """The authors' model-selection pipeline (use_Z_proj=True), d x d matrices, a loop.

    pinv with rcond 1e-10 and rank with rtol 1e-9: covf of n <= d rows has d - n + 1
    zero eigenvalues and covf P has d - K + 1, which come out at rounding level; the
    description means the pseudo-inverse on the span and the rank of covg.
    Spectra are singular values (numpy.linalg.svd), as in the authors' code.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    mu = Z.mean(0)
    covf = (Z - mu).T @ (Z - mu) / n
    covg = np.zeros((d, d))
    scatter, sizes = [], []
    for c in np.unique(y):
        Zc = Z[y == c]
        mk = Zc.mean(0)
        covg += len(Zc) * np.outer(mk - mu, mk - mu)
        scatter.append((Zc - mk).T @ (Zc - mk))
        sizes.append(len(Zc))
    P = np.linalg.pinv(covf, rcond=1e-10, hermitian=True) @ covg / n
    sv = np.linalg.svd(covf @ P, compute_uv=False)
    r = np.linalg.matrix_rank(covf @ P, rtol=1e-9)   # the (K-1)-rank, not rounding
    tr = sv.sum() if normalize else 1.0
    rz = 0.5 * np.sum(np.log(1 + sv / tr / eps)) / r
    rzc = 0.0
    for S, nk in zip(scatter, sizes):
        svk = np.linalg.svd(S @ P / nk, compute_uv=False)
        rzc += nk / n * 0.5 * np.sum(np.log(1 + svk / tr / eps)) / r
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
@pytest.mark.parametrize("eps", [1e-4, 1e-2])
def test_layerwise_matches_reference(n, d, K, eps):
    Z, y = data(n, d, K, seed=3 * n + d)
    ref = ref_layerwise(Z, y, eps)
    assert transrate(Z, y, eps, variant="layerwise") == pytest.approx(ref, rel=1e-8, abs=1e-10)
    # normalize_eigenvalues=False: the same without the division by the trace
    Zp = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    Zp = Zp - Zp.mean(0)
    Zp = Zp / np.linalg.norm(Zp, axis=1, keepdims=True)
    tr = np.trace(Zp.T @ Zp / n)
    assert transrate(Z, y, eps, variant="layerwise", normalize_eigenvalues=False) == \
        pytest.approx(ref_layerwise(Z, y, eps * tr), rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("n,d,K", SHAPES + [(200, 30, 20), (40, 100, 8)])
@pytest.mark.parametrize("eps", [1e-3, 1.5e-2])
@pytest.mark.parametrize("normalize", [False, True])
def test_projected_matches_reference(n, d, K, eps, normalize):
    Z, y = data(n, d, K, seed=5 * n + d)
    ref = ref_projected(Z, y, eps, normalize)
    got = transrate(Z, y, eps, variant="projected", normalize_eigenvalues=normalize)
    assert got == pytest.approx(ref, rel=1e-8, abs=1e-10)


def test_projected_rank_is_at_most_k_minus_1():
    for n, d, K in [(60, 10, 3), (30, 80, 5), (200, 4, 8)]:
        Z, y = data(n, d, K, seed=n)
        t = coding_rate_terms(Z, y, 1e-2, variant="projected")
        assert t["rank"] == min(K - 1, d)
        assert t["normalize_eigenvalues"] is False
    assert coding_rate_terms(Z, y, variant="snippet")["rank"] is None
    assert coding_rate_terms(Z, y, variant="layerwise")["rank"] == 4


def test_projected_class_terms_vanish_when_n_le_d_plus_1():
    """Documented degeneracy: rank(centred Z) = n - 1 makes S_k pinv(covf) covg = 0."""
    Z, y = data(30, 80, 3, seed=24)
    t = coding_rate_terms(Z, y, 1e-2, variant="projected")
    assert max(abs(v) for v in t["per_class"].values()) < 1e-9
    assert t["transrate"] == pytest.approx(t["R"], rel=1e-9)
    Z, y = data(80, 30, 3, seed=24)
    t = coding_rate_terms(Z, y, 1e-2, variant="projected")
    assert min(t["per_class"].values()) > 0.01


def test_official_alias_warns_and_equals_layerwise():
    Z, y = data(50, 8, 3, seed=21)
    expected = transrate(Z, y, 1e-3, variant="layerwise")
    with pytest.warns(FutureWarning, match="variant='official' is deprecated.*'layerwise'"):
        assert transrate(Z, y, 1e-3, variant="official") == expected
    with pytest.warns(FutureWarning, match="transrate_official is deprecated.*'layerwise'"):
        assert transrate_official(Z, y, 1e-3) == expected
    with pytest.warns(FutureWarning, match="'layerwise'"):
        t = coding_rate_terms(Z, y, 1e-3, variant="official")
    assert t["variant"] == "layerwise" and t["transrate"] == expected
    with pytest.warns(FutureWarning, match="'layerwise'") as rec:
        s = transrate_per_layer({"a": Z, "b": Z[:, :4]}, y, 1e-3, variant="official")
    assert len(rec) == 1 and rec[0].filename == __file__   # once, at the caller
    assert s["a"] == expected


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
    for v in ("layerwise", "projected"):
        o = coding_rate_terms(Z, names, variant=v)
        assert o["variant"] == v
        w = np.array(list(o["counts"].values())) / len(y)
        assert o["R_given_y"] == pytest.approx(
            np.sum(w * np.array(list(o["per_class"].values()))))
        assert o["transrate"] == pytest.approx(transrate(Z, y, variant=v))


def test_per_layer_series():
    Z1, y = data(50, 8, 2, seed=4)
    Z2 = np.random.default_rng(5).normal(size=(50, 30))
    s = transrate_per_layer({"b": Z1, "a": Z2}, y)
    assert isinstance(s, pd.Series) and list(s.index) == ["b", "a"]
    assert s["b"] == pytest.approx(transrate(Z1, y))
    assert s["a"] == pytest.approx(transrate(Z2, y))
    for v in ("layerwise", "projected"):
        s = transrate_per_layer({"b": Z1, "a": Z2}, y, 1e-2, variant=v,
                                normalize_eigenvalues=True)
        assert s["a"] == transrate(Z2, y, 1e-2, variant=v, normalize_eigenvalues=True)
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
    for v in variants_for(Z):
        assert transrate(Z[p], y[p], variant=v) == pytest.approx(
            transrate(Z, y, variant=v), rel=1e-8, abs=1e-8)


@FAST
@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_label_renaming_invariance(prob, seed):
    Z, y = prob
    rng = np.random.default_rng(seed)
    new = rng.choice(np.arange(100, 1000), size=y.max() + 1, replace=False)
    for v in variants_for(Z):
        base = transrate(Z, y, variant=v)
        assert transrate(Z, new[y], variant=v) == pytest.approx(base, rel=1e-10, abs=1e-10)
        assert transrate(Z, np.array([f"c{v}" for v in new])[y], variant=v) == \
            pytest.approx(base, rel=1e-10, abs=1e-10)


@FAST
@given(problems(), st.integers(0, 2 ** 31 - 1))
def test_orthogonal_rotation_invariance(prob, seed):
    Z, y = prob
    d = Z.shape[1]
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    for v in variants_for(Z):
        assert transrate(Z @ Q, y, variant=v) == pytest.approx(
            transrate(Z, y, variant=v), rel=1e-7, abs=1e-7)


def test_scale_layerwise_invariant_snippet_not():
    # classes with fewer samples than d are rank-capped: the snippet then shifts
    # by about (rank(Z) - rank(Z_k)) * log(100) / 2 when Z is multiplied by 10
    Z, y = data(60, 40, 3, seed=10)
    lw = transrate(Z, y, variant="layerwise")
    assert transrate(10 * Z, y, variant="layerwise") == pytest.approx(lw, rel=1e-9)
    assert abs(transrate(10 * Z, y) - transrate(Z, y)) > 1.0


@pytest.mark.parametrize("n,d,K", [(60, 10, 3), (30, 80, 4)])
def test_projected_scale(n, d, K):
    """Normalised: scale invariant.  Not normalised: every eigenvalue scales with
    c^2, so (c Z, c^2 eps) gives the same value and (c Z, eps) does not."""
    Z, y = data(n, d, K, seed=n + d)
    base = transrate(Z, y, 1e-2, variant="projected", normalize_eigenvalues=True)
    assert transrate(7 * Z, y, 1e-2, variant="projected", normalize_eigenvalues=True) == \
        pytest.approx(base, rel=1e-9)
    raw = transrate(Z, y, 1e-2, variant="projected")
    assert transrate(7 * Z, y, 49e-2, variant="projected") == pytest.approx(raw, rel=1e-9)
    # (while every eigenvalue >> eps the c^2 nearly cancels between R and R_k)
    assert transrate(7 * Z, y, 1e-2, variant="projected") != pytest.approx(raw, rel=1e-4)


@pytest.mark.parametrize("variant", ["snippet", "projected"])
def test_translation_invariance_of_centred_variants(variant):
    Z, y = data(40, 6, 3, seed=22)
    shift = np.random.default_rng(0).normal(size=6) * 5
    assert transrate(Z + shift, y, 1e-2, variant=variant) == pytest.approx(
        transrate(Z, y, 1e-2, variant=variant), rel=1e-9)


def test_snippet_rank_cap_counts_dimensions():
    """n_k < d: each direction in R(Z) but not in R(Z_k) adds about ln(1/eps)/2,
    so lowering eps by a factor 100 adds about (rank Z - rank Z_k)/2 * ln(100)."""
    rng = np.random.default_rng(23)
    y = np.repeat([0, 1], 10)
    Z = rng.normal(size=(20, 200))                     # pure noise, n_k = 10 < d
    rank_z, rank_k = 19, 10                            # centred Z; classes not re-centred
    delta = transrate(Z, y, 1e-6) - transrate(Z, y, 1e-4)
    assert delta == pytest.approx((rank_z - rank_k) / 2 * np.log(100), rel=1e-3)


def test_informative_features_rank_above_noise():
    rng = np.random.default_rng(11)
    n, d, K = 200, 20, 4
    y = np.arange(n) % K
    informative = 3 * rng.normal(size=(K, d))[y] + 0.3 * rng.normal(size=(n, d))
    noise = rng.normal(size=(n, d)) * informative.std()
    assert transrate(informative, y) > transrate(noise, y)
    for v in ("layerwise", "projected"):
        assert transrate(informative, y, 1e-2, variant=v) > transrate(noise, y, 1e-2, variant=v)


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
    choices = "variant must be one of 'snippet', 'layerwise', 'projected'; got 'paper'"
    with pytest.raises(ValueError, match=choices):
        transrate(Z0, Y0, variant="paper")
    for fn in (coding_rate_terms, lambda Z, y, variant: transrate_per_layer({"a": Z}, y,
                                                                          variant=variant)):
        with pytest.raises(ValueError, match=choices):
            fn(Z0, Y0, variant="paper")
    with pytest.raises(ValueError, match="variant must be one of.*got None"):
        transrate(Z0, Y0, variant=None)
    with pytest.raises(ValueError, match="identical after centring"):
        transrate(np.ones((20, 3)), Y0, variant="layerwise")
    with pytest.raises(ValueError, match="constant across samples"):
        transrate(np.ones((20, 3)), Y0, variant="projected")
    with pytest.raises(ValueError, match="normalize_eigenvalues applies to.*'snippet'"):
        transrate(Z0, Y0, normalize_eigenvalues=True)
    with pytest.raises(ValueError, match="normalize_eigenvalues must be True, False or None"):
        transrate(Z0, Y0, variant="projected", normalize_eigenvalues="yes")
    a = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="same mean.*between-class scatter is 0"):
        transrate(np.r_[a, -a, 2 * a, -2 * a], np.repeat([0, 1], 10), variant="projected")


def test_no_warning_on_clean_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for v in VARIANTS:
            transrate(Z0, Y0, variant=v)


def test_top_level_api_whatever_the_import_order():
    import transfer_nb as tnb
    import transfer_nb.estimators  # noqa: F401  (imports the coding_rate submodule)
    assert tnb.coding_rate(np.eye(3), eps=0.5) == pytest.approx(1.5 * np.log(1 + 2 / 3))
    assert tnb.transrate(Z0, Y0) == pytest.approx(ref_transrate(Z0, Y0))
    assert callable(tnb.coding_rate) and not isinstance(tnb.coding_rate, type(sys))
