"""Input validation shared by the coding rate and every estimator.

Every public function in :mod:`transfer_nb.coding_rate` and
:mod:`transfer_nb.estimators` validates its inputs at the boundary with the
helpers below, so that the same mistake gives the same message everywhere:

* features: numpy or torch (any float dtype, also bfloat16), promoted to a
  C-contiguous ``float64`` array of shape ``(n, d)``; 1-D input, empty input and
  NaN/Inf are rejected;
* labels: any hashable values of one kind (ints with gaps, strings, ...),
  encoded to ``0..K-1`` with :func:`numpy.unique`; length must match ``n``;
  fewer than two classes or a class with a single sample are rejected;
* scalars (``eps``, ``lr``, ``max_iter``, fractions...) go through
  :func:`check_scalar` / :func:`check_fraction`: the type is checked (bools are
  not integers, NaN and Inf are not numbers), then the bounds.

Every message prints plain Python values (``[9]``, ``'c'``), never numpy reprs
(``[np.int64(9)]``, ``np.str_('c')``): see :func:`plain`.

This module imports neither torch nor ipywidgets: torch tensors are recognised
by duck typing (``.detach()``/``.cpu()``).
"""
from __future__ import annotations

import numbers
from numbers import Integral, Real
from dataclasses import dataclass

import numpy as np

__all__ = [
    "to_numpy",
    "as_features",
    "as_targets",
    "encode_labels",
    "check_positive",
    "check_scalar",
    "check_fraction",
    "plain",
    "check_same_length",
    "Labels",
]


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def plain(value):
    """Return ``value`` with numpy (and torch) scalars and arrays as plain Python values.

    Used for every error message, so that ``[np.int64(9)]`` prints as ``[9]`` and
    ``np.str_('c')`` as ``'c'``.  Lists, tuples, sets and dicts are converted
    element by element; anything else is returned unchanged.

    Examples
    --------
    >>> plain([np.int64(9), np.str_("c")])
    [9, 'c']
    >>> plain(np.array([[1.5, 2.0]]))
    [[1.5, 2.0]]
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if _is_torch(value):
        try:
            return value.detach().cpu().tolist()
        except Exception:  # pragma: no cover - exotic tensor types
            return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def to_numpy(x, name: str = "input") -> np.ndarray:
    """Convert a numpy array, torch tensor, list or scalar to a numpy array.

    Torch tensors are detached and moved to the CPU; ``bfloat16`` (which numpy
    cannot represent) is converted to ``float32`` first.  No copy is made for
    numpy input.
    """
    if x is None:
        raise ValueError(f"{name} is None; expected an array or a torch tensor.")
    if _is_torch(x):
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float8_e4m3fn", "torch.float8_e5m2"):
            t = t.float()
        if t.is_complex():
            raise ValueError(f"{name} is a complex tensor; expected real numbers.")
        return t.numpy()
    return np.asarray(x)


def as_features(Z, name: str = "Z", min_rows: int = 1, allow_1d: bool = False) -> np.ndarray:
    """Validate a feature matrix and return it as C-contiguous ``float64``.

    Parameters
    ----------
    Z : array-like or torch.Tensor of shape (n, d)
        Features, one row per example.  Any real dtype is accepted; float16,
        float32, bfloat16 and integers are promoted to float64.
    name : str
        Name used in error messages.
    min_rows : int
        Smallest acceptable number of rows.
    allow_1d : bool
        If True a 1-D input of length n is returned as shape (n, 1)
        (used for regression targets).

    Returns
    -------
    numpy.ndarray of shape (n, d), dtype float64

    Raises
    ------
    ValueError
        If the input is not 2-D, is empty, is not numeric, or holds NaN/Inf.
    """
    a = to_numpy(Z, name)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {a.dtype}; expected a real numeric array "
            "(float16/32/64 or integers), e.g. features from a network.")
    if a.ndim == 1 and allow_1d:
        a = a[:, None]
    if a.ndim != 2:
        hint = (" Reshape a single feature with Z.reshape(-1, 1)."
                if a.ndim == 1 else " Flatten or pool the features first.")
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); "
            f"got {a.ndim}-D with shape {a.shape}.{hint}")
    n, d = a.shape
    if n == 0 or d == 0:
        raise ValueError(
            f"{name} is empty (shape {a.shape}); expected at least one sample and "
            "one feature.")
    if n < min_rows:
        raise ValueError(f"{name} has {n} rows; expected at least {min_rows}.")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(
            f"{name} contains {bad} NaN or Inf value(s); expected finite numbers. "
            "Check the feature extraction (e.g. float16 overflow) or drop those rows.")
    return a


def as_targets(Y, name: str = "Y") -> np.ndarray:
    """Validate regression targets: 1-D (n,) or 2-D (n, m), finite; float64 (n, m)."""
    return as_features(Y, name=name, allow_1d=True)


@dataclass(frozen=True)
class Labels:
    """Encoded labels: ``codes`` in ``0..K-1``, ``classes[k]`` the original value."""

    codes: np.ndarray
    classes: np.ndarray
    counts: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.classes.shape[0])


def encode_labels(y, n: int | None = None, name: str = "y", min_classes: int = 2,
                  min_per_class: int = 2, n_name: str = "the features") -> Labels:
    """Validate labels of any values and encode them as ``0..K-1``.

    Parameters
    ----------
    y : array-like or torch.Tensor of shape (n,) or (n, 1)
        Labels: integers (gaps allowed), strings, bools, ...
    n : int, optional
        Number of samples the labels must match (rows of the features).
    name : str
        Name used in error messages.
    min_classes : int
        Smallest acceptable number of distinct classes (2 for estimators).
    min_per_class : int
        Smallest acceptable number of samples per class (2 by default: a class
        with a single sample has no spread and makes class statistics
        meaningless).
    n_name : str
        What ``n`` counts, for the error message ("the features" by default).

    Returns
    -------
    Labels
        ``codes`` (int64, shape (n,)), ``classes`` (sorted unique original
        values) and ``counts`` (samples per class).

    Raises
    ------
    ValueError
        On a length mismatch, empty labels, NaN labels, too few classes or a
        class with too few samples.
    """
    a = to_numpy(y, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels of shape (n_samples,); got shape "
            f"{a.shape}. Pass class indices, not one-hot vectors (use y.argmax(1)).")
    if a.shape[0] == 0:
        raise ValueError(f"{name} is empty; expected one label per sample.")
    if n is not None and a.shape[0] != n:
        raise ValueError(
            f"{name} has {a.shape[0]} labels but {n_name} has {n} rows; expected "
            "one label per row.")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf; expected one valid label per sample.")
    if a.dtype.kind == "c":
        raise ValueError(f"{name} is complex; expected integer or string labels.")
    try:
        classes, codes, counts = np.unique(a, return_inverse=True, return_counts=True)
    except TypeError as exc:  # mixed types in an object array
        raise ValueError(
            f"{name} mixes label types that cannot be compared ({exc}); expected "
            "labels of one kind (all ints or all strings).") from None
    codes = codes.reshape(-1).astype(np.int64)
    if classes.shape[0] < min_classes:
        raise ValueError(
            f"{name} has {classes.shape[0]} distinct class(es) ({plain(classes[:5])}); "
            f"expected at least {min_classes} classes.")
    if min_per_class > 1 and counts.min() < min_per_class:
        small = plain([classes[i] for i in np.flatnonzero(counts < min_per_class)[:5]])
        raise ValueError(
            f"{name}: class(es) {small} have fewer than {min_per_class} samples "
            f"(smallest class has {int(counts.min())}); expected at least "
            f"{min_per_class} samples per class. Drop or merge those classes.")
    return Labels(codes=codes, classes=classes, counts=counts.astype(np.int64))


_INTEGRAL = (int, numbers.Integral, np.integer)
_REAL = _INTEGRAL + (float, numbers.Real, np.floating)
_BOUNDARIES = ("both", "left", "right", "neither")


def _scalar_kind(target_type) -> str:
    types = target_type if isinstance(target_type, tuple) else (target_type,)
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f"target_type must be a type or a tuple of types; got {target_type!r}")
    if all(t in _INTEGRAL for t in types):
        return "int"
    if all(t in _REAL for t in types):
        return "real"
    raise TypeError(f"check_scalar handles int and float target_type values; got {target_type!r}")


def _interval(min_val, max_val, include_boundaries: str) -> str:
    left = include_boundaries in ("both", "left")
    right = include_boundaries in ("both", "right")
    if min_val is not None and max_val is not None:
        return (f"in {'[' if left else '('}{plain(min_val)}, "
                f"{plain(max_val)}{']' if right else ')'}")
    if min_val is not None:
        return f"{'>=' if left else '>'} {plain(min_val)}"
    if max_val is not None:
        return f"{'<=' if right else '<'} {plain(max_val)}"
    return ""


def check_scalar(x, name: str, target_type, *, min_val=None, max_val=None,
                 include_boundaries: str = "both"):
    """Validate a scalar parameter and return it as a plain ``int`` or ``float``.

    Parameters
    ----------
    x : object
        The value to check.  Python and numpy scalars (and 0-d arrays) are
        accepted; ``bool`` is never accepted as a number.
    name : str
        Parameter name used in the error message.
    target_type : type or tuple of types
        ``int`` (or :class:`numbers.Integral`): an integer is required (``2.0``
        is rejected) and an ``int`` is returned.  ``float`` (or
        :class:`numbers.Real`, or a tuple mixing ints and floats): any real
        number is accepted and a ``float`` is returned; NaN and Inf are rejected.
    min_val, max_val : number, optional
        Bounds (``None``: unbounded on that side).
    include_boundaries : {"both", "left", "right", "neither"}, default "both"
        Which of ``min_val`` / ``max_val`` are allowed values.

    Returns
    -------
    int or float

    Raises
    ------
    ValueError
        On a value of the wrong type or outside the bounds, with a message such
        as ``"max_iter must be an integer >= 1, got -5"`` or
        ``"lr must be a finite number > 0, got 'x'"``.
    TypeError
        If ``target_type`` or ``include_boundaries`` is itself invalid (a bug in
        the caller, not in the user's input).

    Examples
    --------
    >>> check_scalar(np.int64(3), "max_iter", int, min_val=1)
    3
    >>> check_scalar(0.5, "lr", float, min_val=0, include_boundaries="right")
    0.5
    """
    if include_boundaries not in _BOUNDARIES:
        raise TypeError(f"include_boundaries must be one of {_BOUNDARIES}; "
                        f"got {include_boundaries!r}")
    kind = _scalar_kind(target_type)
    noun = "an integer" if kind == "int" else "a finite number"
    interval = _interval(min_val, max_val, include_boundaries)
    expected = f"{noun} {interval}" if interval else noun

    v = x
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    ok_type = (not isinstance(v, (bool, np.bool_))
               and isinstance(v, _INTEGRAL if kind == "int" else _REAL))
    if ok_type and kind == "real":
        v = float(v)
        ok_type = bool(np.isfinite(v))
    if not ok_type:
        raise ValueError(f"{name} must be {expected}, got {plain(x)!r}")
    v = int(v) if kind == "int" else v

    left = include_boundaries in ("both", "left")
    right = include_boundaries in ("both", "right")
    too_low = min_val is not None and (v < min_val if left else v <= min_val)
    too_high = max_val is not None and (v > max_val if right else v >= max_val)
    if too_low or too_high:
        if min_val is not None and max_val is not None:
            raise ValueError(f"{name} must lie {interval}, got {plain(x)!r}")
        raise ValueError(f"{name} must be {expected}, got {plain(x)!r}")
    return v


def check_fraction(x, name: str, *, allow_zero: bool = False, allow_one: bool = True) -> float:
    """Validate a fraction in ``[0, 1]`` (ends per ``allow_zero`` / ``allow_one``).

    Returns the value as a ``float``; a ValueError such as
    ``"test_fraction must lie in (0, 1), got 1.0"`` otherwise.
    """
    bounds = {(True, True): "both", (True, False): "left",
              (False, True): "right", (False, False): "neither"}[bool(allow_zero), bool(allow_one)]
    return check_scalar(x, name, float, min_val=0, max_val=1, include_boundaries=bounds)


def check_positive(value, name: str = "eps") -> float:
    """Return ``value`` as a float after checking it is a finite number > 0.

    ``check_scalar(value, name, float, min_val=0, include_boundaries="neither")``,
    with ``"{name} must be a positive number"`` for a value that is not a number.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL + (np.ndarray,)):
        raise ValueError(f"{name} must be a positive number; got {plain(value)!r}.")
    return check_scalar(value, name, float, min_val=0, include_boundaries="neither")


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise a ValueError unless ``a`` and ``b`` have the same number of rows."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} has {a.shape[0]} rows but {name_b} has {b.shape[0]}; expected "
            "one row per sample in both.")


def as_probabilities(P, name: str = "source_probs", atol: float = 1e-3,
                     hint: str = "apply softmax to logits first") -> np.ndarray:
    """Validate rows of class probabilities and renormalise them to sum to exactly 1.

    Parameters
    ----------
    P : array-like of shape (n, K)
        Rows of probabilities (a source model's softmax outputs).
    name : str
        Name used in error messages.
    atol : float
        Tolerance on entries above 1 and on row sums.
    hint : str
        What the caller should do instead, appended to the error messages.

    Returns
    -------
    numpy.ndarray
        float64 rows that sum to 1.
    """
    P = as_features(P, name)
    if (P < 0).any() or (P > 1 + atol).any():
        raise ValueError(f"{name} has entries outside [0, 1]; expected the source model's "
                         f"softmax probabilities ({hint}).")
    sums = P.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=atol, rtol=0):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"rows of {name} must sum to 1 (within {atol}); one sums to "
                         f"{worst:.6g}. Expected softmax probabilities ({hint}).")
    return P / sums[:, None]



def check_real(value, name: str) -> float:
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v

def check_batch_size(batch_size) -> int:
    batch_size = plain(batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
