"""Exercises that check themselves, one set per lesson (notebooks 01-07).

In a notebook::

    from transfer_nb.exercises import check, hint, show_solution, list_exercises

    def coding_rate(Z, eps):
        ...                                   # your NumPy

    check("01.1", coding_rate)                # "correct", or a hint that names what differs
    hint("01.1")                              # a nudge
    show_solution("01.1")                     # the reference solution's source
    list_exercises(lesson=1)                  # id, title, signature, prompt

:func:`check` runs your function on several seeded inputs (different shapes, one edge
case) and compares it with the reference solution.  When the outputs differ it tries the
known mistakes (a missing 1/2, eps not scaled by n, classes re-centred, the L-infinity
step where the L2 step is asked, ...) on the same inputs: if yours match one, you get
that mistake's hint; otherwise the first input that differs and how (shape, sign, a
factor, a value).  An exception in your function is shown in one line with the input
that raised it.  Multiple-choice exercises take the option's letter (``check("01.3",
"b")``).

The reference solutions are plain NumPy/SciPy; the tests hold each one equal to the
library function it teaches (``transfer_nb.coding_rate``, ``transfer_nb.transrate``,
``transfer_nb.estimators.linear_mse``, ``transfer_nb.stats.paired_difference``, ...).
This package imports NumPy only (no torch, no pandas until :func:`list_exercises`).
"""
from __future__ import annotations

import inspect
import re

from transfer_nb.exercises import (lesson01, lesson02, lesson03, lesson04, lesson05,
                                   lesson06, lesson07)
from transfer_nb.exercises._core import Exercise, Mistake, Result, run_check

__all__ = ["check", "hint", "show_exercise", "show_solution", "list_exercises", "get_exercise",
           "solution_source", "Exercise",
           "Mistake", "Result", "EXERCISES"]

_LESSONS = (lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07)

#: every exercise by id, in lesson order
EXERCISES: dict = {ex.id: ex for module in _LESSONS for ex in module.EXERCISES}


def _key(id) -> str:
    """``"01.2"`` from ``"01.2"``, ``"1.2"`` or ``" 01.2 "``; anything else unchanged."""
    text = str(id).strip()
    m = re.fullmatch(r"(\d{1,2})\.(\d+)", text)
    return f"{int(m.group(1)):02d}.{int(m.group(2))}" if m else text


def get_exercise(id) -> Exercise:
    """The :class:`Exercise` with this id (``"01.2"``; ``"1.2"`` is accepted).

    Raises
    ------
    ValueError
        On an unknown id; the message lists the valid ones.
    """
    if not isinstance(id, str):
        raise ValueError(f"exercise id must be a string such as '01.2'; got {id!r} "
                         f"({type(id).__name__}). Valid ids: {', '.join(EXERCISES)}.")
    key = _key(id)
    if key not in EXERCISES:
        raise ValueError(f"unknown exercise id {id!r}; valid ids: {', '.join(EXERCISES)}.")
    return EXERCISES[key]


def check(id, answer, show: bool = True) -> Result:
    """Check an answer: a function (most exercises) or an option's letter (choices).

    Parameters
    ----------
    id : str
        The exercise, e.g. ``"01.2"`` (see :func:`list_exercises`).
    answer : callable, str or number
        Your function (pass it without calling it), or the letter of an option.
    show : bool, default True
        Print the message (in a notebook: display it as markdown, once).

    Returns
    -------
    Result
        ``.passed`` (bool), ``.message`` (``"correct"`` or what differs), ``.hint``
        (``None`` when correct), ``.mistake`` (the known mistake matched, if any).

    Raises
    ------
    ValueError
        On an unknown exercise id (the message lists the valid ids).  A wrong answer,
        a wrong type of answer or an exception in your function never raises: it is the
        result.
    """
    result = run_check(get_exercise(id), answer)
    return result.show() if show else result


def show_exercise(id) -> None:
    """Print the exercise's statement (and its options, for a choice): what a lesson's
    exercise cell shows above the function the student writes."""
    ex = get_exercise(id)
    print(f"Exercise {ex.id}: {ex.title}\n{ex.prompt}")
    for key, text in (ex.options or {}).items() if ex.kind == "choice" else ():
        print(f"  {key}) {text}")


def hint(id) -> None:
    """Print the exercise's hint: a nudge that gives nothing away
    (``get_exercise(id).hint`` is the text)."""
    ex = get_exercise(id)
    print(f"{ex.id} ({ex.title}): {ex.hint}")


def solution_source(ex: Exercise) -> str:
    """The reference solution as text: the function's source, or the answer and why."""
    if ex.kind == "function":
        return inspect.getsource(ex.reference).rstrip() + "\n"
    if ex.kind == "choice":
        return (f"Answer: {ex.reference}) {ex.options[ex.reference]}\n"
                + (f"\n{ex.explanation}\n" if ex.explanation else ""))
    return f"Answer: {ex.reference}\n" + (f"\n{ex.explanation}\n" if ex.explanation else "")


def show_solution(id) -> None:
    """Print the reference solution: its source code, or the option and why
    (:func:`solution_source` returns the text)."""
    print(solution_source(get_exercise(id)), end="")


def list_exercises(lesson=None):
    """The exercises as a table: ``id``, ``lesson``, ``title``, ``signature``, ``prompt``.

    Parameters
    ----------
    lesson : int, optional
        Only this lesson's (1-7).

    Returns
    -------
    pandas.DataFrame
        One row per exercise, indexed by id.
    """
    import pandas as pd

    if lesson is not None:
        valid = sorted({ex.lesson for ex in EXERCISES.values()})
        if isinstance(lesson, bool) or not isinstance(lesson, int) or lesson not in valid:
            raise ValueError(f"lesson must be one of {valid} or None; got {lesson!r}.")
    rows = [{"id": ex.id, "lesson": ex.lesson, "title": ex.title,
             "signature": ex.signature if ex.kind == "function" else f"({ex.kind})",
             "prompt": ex.prompt}
            for ex in EXERCISES.values() if lesson is None or ex.lesson == lesson]
    return pd.DataFrame(rows).set_index("id")
