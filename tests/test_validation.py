"""check_scalar, check_fraction, check_positive and plain-value messages."""
import numbers
import re

import numpy as np
import pytest

from transfer_nb._validation import (check_fraction, check_positive, check_scalar,
                                     encode_labels, plain)


# --------------------------------------------------------------------------- #
# check_scalar
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("x,target,kw,expected", [
    (3, int, {"min_val": 1}, 3),
    (np.int64(3), int, {"min_val": 1}, 3),
    (np.array(4), numbers.Integral, {}, 4),
    (0.5, float, {"min_val": 0, "include_boundaries": "neither"}, 0.5),
    (np.float32(0.25), float, {}, 0.25),
    (2, float, {"max_val": 2}, 2.0),                  # ints are numbers
    (0, numbers.Real, {"min_val": 0}, 0.0),           # boundary included ("both")
    (1, (int, float), {"min_val": 0, "max_val": 1}, 1.0),
])
def test_check_scalar_accepts_and_returns_plain_types(x, target, kw, expected):
    v = check_scalar(x, "p", target, **kw)
    assert v == expected
    assert type(v) is type(expected)


@pytest.mark.parametrize("x,target,kw,message", [
    (-5, int, {"min_val": 1}, "max_iter must be an integer >= 1, got -5"),
    (np.int64(0), int, {"min_val": 1}, "max_iter must be an integer >= 1, got 0"),
    (True, int, {"min_val": 0}, "max_iter must be an integer >= 0, got True"),
    (np.bool_(True), int, {}, "max_iter must be an integer, got True"),
    (2.0, int, {}, "max_iter must be an integer, got 2.0"),
    ("3", int, {}, "max_iter must be an integer, got '3'"),
    (None, int, {"min_val": 1}, "max_iter must be an integer >= 1, got None"),
    ("x", float, {"min_val": 0, "include_boundaries": "neither"},
     "max_iter must be a finite number > 0, got 'x'"),
    (float("nan"), float, {}, "max_iter must be a finite number, got nan"),
    (np.float64("inf"), float, {"min_val": 0}, "max_iter must be a finite number >= 0, got inf"),
    (True, float, {}, "max_iter must be a finite number, got True"),
    (0, float, {"min_val": 0, "include_boundaries": "right"},
     "max_iter must be a finite number > 0, got 0"),
    (5, float, {"max_val": 5, "include_boundaries": "left"},
     "max_iter must be a finite number < 5, got 5"),
    (11, int, {"min_val": 1, "max_val": 10}, r"max_iter must lie in \[1, 10\], got 11"),
    (np.int64(0), int, {"min_val": 0, "max_val": 10, "include_boundaries": "right"},
     r"max_iter must lie in \(0, 10\], got 0"),
    ([1], float, {}, r"max_iter must be a finite number, got \[1\]"),
])
def test_check_scalar_messages(x, target, kw, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_scalar(x, "max_iter", target, **kw)


def test_check_scalar_rejects_bad_calls():
    with pytest.raises(TypeError, match="include_boundaries"):
        check_scalar(1, "p", int, include_boundaries="all")
    with pytest.raises(TypeError, match="target_type"):
        check_scalar(1, "p", str)


# --------------------------------------------------------------------------- #
# check_fraction / check_positive
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("x,kw,ok", [
    (0.5, {}, True),
    (1, {}, True),
    (1.0, {"allow_one": False}, False),
    (0.0, {}, False),
    (0.0, {"allow_zero": True}, True),
    (-0.1, {"allow_zero": True}, False),
    (1.5, {}, False),
    (float("nan"), {}, False),
])
def test_check_fraction(x, kw, ok):
    if ok:
        assert check_fraction(x, "frac", **kw) == float(x)
    else:
        with pytest.raises(ValueError, match="^frac must "):
            check_fraction(x, "frac", **kw)


def test_check_fraction_message_shows_the_interval():
    with pytest.raises(ValueError, match=r"^test_fraction must lie in \(0, 1\), got 1\.0$"):
        check_fraction(1.0, "test_fraction", allow_one=False)
    with pytest.raises(ValueError, match=r"^shift must lie in \[0, 1\], got 2$"):
        check_fraction(2, "shift", allow_zero=True)


def test_check_positive_is_check_scalar():
    assert check_positive(np.float32(0.5), "eps") == 0.5
    for bad in (0.0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^eps must be a finite number > 0, got "):
            check_positive(bad, "eps")
    with pytest.raises(ValueError, match="eps must be a positive number; got '1e-4'"):
        check_positive("1e-4", "eps")


# --------------------------------------------------------------------------- #
# plain values in messages
# --------------------------------------------------------------------------- #
def test_plain():
    assert plain(np.int64(9)) == 9 and type(plain(np.int64(9))) is int
    assert repr(plain([np.int64(9), np.str_("c")])) == "[9, 'c']"
    assert plain(np.array([[1, 2]])) == [[1, 2]]
    assert repr(plain((np.float64(0.5),))) == "(0.5,)"
    assert plain({np.str_("a"): np.int32(1)}) == {"a": 1}
    assert plain("x") == "x" and plain(None) is None


def _message(fn, *args, **kw):
    with pytest.raises(ValueError) as err:
        fn(*args, **kw)
    return str(err.value)


def test_label_messages_print_plain_values():
    m = _message(encode_labels, np.array([9, 9, 9]))
    assert "([9])" in m and "np." not in m
    m = _message(encode_labels, np.array(["c"] * 4))
    assert "(['c'])" in m and "np." not in m
    m = _message(encode_labels, np.array([1, 1, 1, 9]))
    assert "class(es) [9] have fewer than 2 samples" in m
    m = _message(encode_labels, np.array(["a", "a", "b"]))
    assert "class(es) ['b'] have fewer than 2 samples" in m


def test_scalar_messages_print_plain_values():
    m = _message(check_scalar, np.int64(-5), "max_iter", int, min_val=np.int64(1))
    assert m == "max_iter must be an integer >= 1, got -5"
    m = _message(check_scalar, np.float32(2.5), "lr", float, max_val=np.float64(1.0))
    assert m == "lr must be a finite number <= 1.0, got 2.5"
    assert not re.search(r"np\.|numpy", m)


# --------------------------------------------------------------------------- #
# the converted modules blame the right parameter
# --------------------------------------------------------------------------- #
def test_linear_mse_blames_cv_folds():
    from transfer_nb.estimators import linear_mse
    Z = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="^cv_folds must be an integer >= 2, got 0$"):
        linear_mse(Z, Z[:, 0], alpha="cv", cv_folds=0)


def test_data_options_use_check_scalar():
    from transfer_nb.data import load_dataset
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got 0$"):
        load_dataset("digits", n=0)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got True$"):
        load_dataset("digits", n=True)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got 1\.5$"):
        load_dataset("digits", seed=1.5)
    with pytest.raises(ValueError, match=r"^test_fraction must lie in \(0, 1\), got 0$"):
        load_dataset("digits", test_fraction=0)
    with pytest.raises(ValueError, match=r"^shift must lie in \[0, 1\], got 1\.5$"):
        load_dataset("shapes", shift=1.5)
    with pytest.raises(ValueError, match=r"^jitter must lie in \[0, 2\], got 3$"):
        load_dataset("glyphs", jitter=3)


def test_small_models_use_check_scalar():
    pytest.importorskip("torch")
    from transfer_nb.models.small import SmallCNN, SmallResNet
    with pytest.raises(ValueError, match=r"^width must be an integer >= 1, got 0$"):
        SmallCNN(width=0)
    with pytest.raises(ValueError, match=r"^depth must be an integer >= 1, got 2\.0$"):
        SmallResNet(depth=2.0)
    assert len(SmallCNN(num_classes=np.int64(4), width=4, depth=1)(
        __import__("torch").zeros(1, 3, 32, 32))[0]) == 4
