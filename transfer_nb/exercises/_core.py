"""The machinery of the self-checking exercises: :class:`Exercise`, :class:`Mistake`,
:class:`Result` and :func:`run_check`.

A *function* exercise runs the student's function on every case of
``Exercise.cases()`` and compares each output with the reference's.  When they
differ, each known mistake is run on the same cases; if the student's outputs
match a mistake's on every case, the answer is that mistake's hint.  Otherwise the
hint names the first case that differs and how (shape, sign, a constant factor,
a value).  A *choice* exercise compares an option id; a *number* exercise one value.

Numpy only: nothing here imports torch, pandas or IPython at import time.
"""
from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Case", "Mistake", "Exercise", "Result", "run_check", "allclose",
           "same_set", "describe_difference"]


@dataclass(frozen=True)
class Case:
    """One input: ``label`` (what a student reads, e.g. ``"Z of shape (40, 5), eps=0.1"``)
    and ``args`` (passed positionally)."""
    label: str
    args: tuple


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: a function with the student's signature (or, for a choice
    or number exercise, the wrong value) and the hint it earns."""
    name: str
    fn: Any
    hint: str


def _to_array(x):
    """A comparable form of an output: dicts stay dicts (keys as str), the rest arrays."""
    if isinstance(x, dict):
        return {str(k): _to_array(v) for k, v in x.items()}
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return x
    return a


def allclose(rtol: float = 1e-6, atol: float = 1e-9) -> Callable[[Any, Any], bool]:
    """A comparison: same shape (or same dict keys), values equal within tolerance."""
    def compare(out, ref) -> bool:
        out, ref = _to_array(out), _to_array(ref)
        if isinstance(ref, dict):
            return (isinstance(out, dict) and set(out) == set(ref)
                    and all(compare(out[k], ref[k]) for k in ref))
        if not isinstance(out, np.ndarray) or not isinstance(ref, np.ndarray):
            return False
        if out.shape != ref.shape:
            return False
        return bool(np.allclose(out, ref, rtol=rtol, atol=atol, equal_nan=True))
    return compare


def same_set() -> Callable[[Any, Any], bool]:
    """A comparison of index sets: order does not matter, duplicates do."""
    def compare(out, ref) -> bool:
        try:
            a = np.sort(np.asarray(out).reshape(-1))
        except (TypeError, ValueError):
            return False
        b = np.sort(np.asarray(ref).reshape(-1))
        if a.dtype.kind not in "biuf" or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b))
    return compare


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson.

    Parameters
    ----------
    id : str
        ``"01.2"``: lesson, then the exercise's number in that lesson.
    lesson : int
    title : str
        One line, for tables.
    prompt : str
        What the student reads: the signature, what to return.
    reference : callable, str or float
        The solution: a function with ``signature`` (``kind="function"``), the option
        id (``"choice"``) or the value (``"number"``).
    hint : str
        A nudge that gives nothing away (:func:`transfer_nb.exercises.hint`), also
        appended to the plain answer when no known mistake matches.
    signature : str
        What the student writes, e.g. ``"coding_rate(Z, eps) -> float"``.
    cases : callable, optional
        ``cases() -> list[Case]`` (seeded; several shapes, one edge case); function
        exercises only.
    compare : callable, default :func:`allclose`
        ``compare(student_output, reference_output) -> bool``.
    mistakes : sequence of Mistake
    kind : {"function", "choice", "number"}
    options : dict, optional
        ``{option id: text}`` of a choice exercise.
    explanation : str
        Why the answer is right (shown with the solution of a choice or number).
    """
    id: str
    lesson: int
    title: str
    prompt: str
    reference: Any
    hint: str
    signature: str = ""
    cases: Callable[[], list] | None = None
    compare: Callable[[Any, Any], bool] = field(default_factory=allclose)
    mistakes: Sequence[Mistake] = ()
    kind: str = "function"
    options: dict | None = None
    explanation: str = ""

    def __post_init__(self):
        if not re.fullmatch(r"\d\d\.\d+", self.id):
            raise ValueError(f"exercise id must look like '01.2'; got {self.id!r}")
        if self.kind not in ("function", "choice", "number"):
            raise ValueError(f"kind must be 'function', 'choice' or 'number'; got {self.kind!r}")
        if self.kind == "function" and (self.cases is None or not callable(self.reference)):
            raise ValueError(f"{self.id}: a function exercise needs cases and a callable "
                             "reference")
        if self.kind == "choice" and (not self.options or self.reference not in self.options):
            raise ValueError(f"{self.id}: a choice exercise needs options holding the answer")


# ----------------------------------------------------------------------- result
class Result:
    """The answer of :func:`transfer_nb.exercises.check`.

    Attributes
    ----------
    id : str
    passed : bool
    message : str
        ``"correct"`` or what is wrong, one or two sentences.
    hint : str or None
        The hint (``None`` when correct).
    mistake : str or None
        The name of the known mistake the answer matched, if any.
    """

    def __init__(self, id: str, passed: bool, message: str, hint: str | None = None,
                 mistake: str | None = None):
        self.id, self.passed, self.message = id, bool(passed), message
        self.hint, self.mistake = hint, mistake
        self._shown_in = None        # IPython execution count of the cell that showed it

    def __bool__(self) -> bool:
        return self.passed

    def text(self) -> str:
        """The message as one plain line: ``"01.1: correct."`` or ``"01.1: not yet. ..."``."""
        return f"{self.id}: correct." if self.passed else f"{self.id}: not yet. {self.message}"

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Result {self.id}: {'passed' if self.passed else 'failed'}: {self.message}>"

    def _repr_markdown_(self) -> str:
        if self.passed:
            return f"**{self.id} ✓ correct.**"
        return f"**{self.id} ✗ not yet.** {self.message}"

    def _ipython_display_(self):
        # check() has already shown this result in the running cell: a cell ending in
        # check(...) would show it twice
        ip = _ipython()
        if ip is not None and self._shown_in == ip.execution_count:
            self._shown_in = None
            return
        _show(self, ip)

    def show(self) -> "Result":
        """Print (or, in a notebook, display as markdown) the message; return self."""
        ip = _ipython()
        _show(self, ip)
        if ip is not None:
            self._shown_in = ip.execution_count
        return self


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _show(result: Result, ip) -> None:
    if ip is None:
        print(result.text())
        return
    from IPython.display import display
    display({"text/plain": result.text(), "text/markdown": result._repr_markdown_()},
            raw=True)


# -------------------------------------------------------------------- describing
def _fmt(x) -> str:
    a = np.asarray(x)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    if a.size <= 6:
        return np.array2string(a, precision=4, separator=", ", suppress_small=True)
    return f"array of shape {a.shape}"


def _kind_of(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, dict):
        return "a dict"
    a = np.asarray(x) if not isinstance(x, str) else None
    if a is None or a.dtype.kind not in "biufc":
        return f"a {type(x).__name__}"
    return "a number" if a.ndim == 0 else f"an array of shape {a.shape}"


def describe_difference(out, ref) -> str:
    """How ``out`` differs from ``ref``, in one sentence (shape, missing value, sign,
    a constant factor, or the first differing value)."""
    if out is None:
        return "your function returned None (a missing `return`?)"
    o, r = _to_array(out), _to_array(ref)
    if isinstance(r, dict):
        if not isinstance(o, dict):
            return f"expected a dict with keys {sorted(r)}, got {_kind_of(out)}"
        if set(o) != set(r):
            return f"expected the keys {sorted(r)}, got {sorted(o)}"
        for k in sorted(r):
            if not allclose()(o[k], r[k]):
                return f"at key {k!r}: " + describe_difference(o[k], r[k])
        return "the values differ"
    if not isinstance(o, np.ndarray):
        return f"expected {_kind_of(ref)}, got {_kind_of(out)}"
    if o.shape != r.shape:
        if r.ndim == 0 and o.size == 1:
            return f"expected a single number, got {_kind_of(out)} (return a float)"
        return f"expected {_kind_of(ref)}, got {_kind_of(out)}"
    if not np.isfinite(o).all() and np.isfinite(r).all():
        return f"your output holds NaN or inf ({_fmt(o)}; expected {_fmt(r)})"
    if np.allclose(o, -r, rtol=1e-6, atol=1e-9) and np.abs(r).max() > 1e-9:
        return f"the sign is flipped (got {_fmt(o)}, expected {_fmt(r)})"
    nz = np.abs(r) > 1e-12
    if nz.sum() >= 2 and np.all(np.abs(o[~nz]) <= 1e-9):
        ratio = o[nz] / r[nz]
        if np.allclose(ratio, ratio.flat[0], rtol=1e-6) and abs(ratio.flat[0] - 1) > 1e-6:
            return (f"your output is {ratio.flat[0]:.4g} times the expected one "
                    f"(got {_fmt(o)}, expected {_fmt(r)}): a factor is missing or extra")
    if o.ndim == 0:
        return f"expected {_fmt(r)}, got {_fmt(o)}"
    bad = np.argwhere(~np.isclose(o, r, rtol=1e-6, atol=1e-9, equal_nan=True))
    first = tuple(int(i) for i in bad[0])
    where = first[0] if len(first) == 1 else first
    return (f"{len(bad)} of {o.size} values differ; the first at index {where}: expected "
            f"{_fmt(r[first])}, got {_fmt(o[first])}")


# ----------------------------------------------------------------------- checking
def _call(fn, case: Case):
    return fn(*copy.deepcopy(case.args))


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg and msg[0] else type(exc).__name__


def _usage(ex: Exercise) -> str:
    name = ex.signature.split("(")[0] or "my_function"
    return f"check({ex.id!r}, {name})"


def _check_function(ex: Exercise, answer) -> Result:
    if not callable(answer):
        return Result(ex.id, False,
                      f"this exercise expects a function `{ex.signature}`, got "
                      f"{_kind_of(answer)} "
                      f"({answer!r:.40}). Define it with `def`, then call {_usage(ex)} "
                      "(the name without parentheses).", ex.hint)
    cases = ex.cases()
    outs, refs = [], []
    for i, case in enumerate(cases, 1):
        ref = _call(ex.reference, case)
        try:
            out = _call(answer, case)
        except Exception as exc:  # noqa: BLE001 - the student's error is the answer
            return Result(ex.id, False,
                          f"your function raised {_one_line(exc)} on case {i} "
                          f"({case.label}).", ex.hint)
        outs.append(out)
        refs.append(ref)
    bad = [i for i, (o, r) in enumerate(zip(outs, refs)) if not ex.compare(o, r)]
    if not bad:
        return Result(ex.id, True, "correct", None)
    for m in ex.mistakes:
        if _matches(ex, m, cases, outs):
            return Result(ex.id, False, m.hint, m.hint, m.name)
    i = bad[0]
    factor = _common_factor(outs, refs)
    how = (f"on every case your output is {factor:.4g} times the expected one (case "
           f"{i + 1}: got {_fmt(_to_array(outs[i]))}, expected {_fmt(_to_array(refs[i]))}): "
           "a factor is missing or extra" if factor is not None else
           f"case {i + 1} of {len(cases)} ({cases[i].label}): "
           f"{describe_difference(outs[i], refs[i])}")
    return Result(ex.id, False, f"{how}. Hint: {ex.hint}", ex.hint)


def _common_factor(outs, refs) -> float | None:
    """``c`` when every output is ``c`` times its reference (``c != 1``, two or more
    non-zero values in all), else ``None``."""
    ratios = []
    for o, r in zip(outs, refs):
        o, r = _to_array(o), _to_array(r)
        if not (isinstance(o, np.ndarray) and isinstance(r, np.ndarray)) or o.shape != r.shape:
            return None
        if o.dtype.kind not in "biuf" or not np.isfinite(o).all():
            return None
        nz = np.abs(r) > 1e-12
        if np.any(np.abs(o[~nz]) > 1e-9):
            return None
        ratios.extend((o[nz] / r[nz]).ravel().tolist())
    if len(ratios) < 2 or not np.allclose(ratios, ratios[0], rtol=1e-6):
        return None
    return None if abs(ratios[0] - 1) <= 1e-6 else float(ratios[0])


def _matches(ex: Exercise, m: Mistake, cases, outs) -> bool:
    for case, out in zip(cases, outs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # the mistake's, not the student's
                wrong = _call(m.fn, case)
        except Exception:  # noqa: BLE001 - a mistake that cannot run a case matches nothing
            return False
        if not ex.compare(out, wrong):
            return False
    return True


def _normalise_choice(answer) -> str:
    return str(answer).strip().strip(")").strip(".").strip().lower()


def _check_choice(ex: Exercise, answer) -> Result:
    ids = list(ex.options)
    listing = "; ".join(f"{k}) {v}" for k, v in ex.options.items())
    if callable(answer) or not isinstance(answer, str):
        return Result(ex.id, False, f"{ex.id} is a multiple choice: answer with the letter "
                      f"of an option as a string, e.g. check({ex.id!r}, {ids[0]!r}). "
                      f"Options: {listing}", ex.hint)
    key = _normalise_choice(answer)
    by_text = {_normalise_choice(v): k for k, v in ex.options.items()}
    key = key if key in ex.options else by_text.get(key)
    if key is None:
        return Result(ex.id, False, f"{answer!r} is not one of the options "
                      f"{', '.join(map(repr, ids))}. Options: {listing}", ex.hint)
    if key == ex.reference:
        return Result(ex.id, True, "correct", None)
    for m in ex.mistakes:
        if m.fn == key:
            return Result(ex.id, False, m.hint, m.hint, m.name)
    return Result(ex.id, False, f"not option {key!r}. Hint: {ex.hint}", ex.hint)


def _check_number(ex: Exercise, answer) -> Result:
    if callable(answer) or isinstance(answer, (str, bytes)) or answer is None:
        return Result(ex.id, False, f"{ex.id} expects a number, got {_kind_of(answer)}.",
                      ex.hint)
    if ex.compare(answer, ex.reference):
        return Result(ex.id, True, "correct", None)
    for m in ex.mistakes:
        if ex.compare(answer, m.fn):
            return Result(ex.id, False, m.hint, m.hint, m.name)
    return Result(ex.id, False, f"{describe_difference(answer, ex.reference)}. "
                  f"Hint: {ex.hint}", ex.hint)


def run_check(ex: Exercise, answer) -> Result:
    """Check ``answer`` against exercise ``ex``; never raises for a wrong answer."""
    if ex.kind == "choice":
        return _check_choice(ex, answer)
    if ex.kind == "number":
        return _check_number(ex, answer)
    return _check_function(ex, answer)
