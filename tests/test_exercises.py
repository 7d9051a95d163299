"""``transfer_nb.exercises``: every reference passes its check, every known mistake fails
with its own hint, errors and wrong types get a one-line answer, and every reference equals
the library function it teaches."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from transfer_nb import exercises as ex_mod
from transfer_nb.exercises import (EXERCISES, check, get_exercise, hint, list_exercises,
                                   show_solution, solution_source)
from transfer_nb.exercises._core import Result, describe_difference, run_check

ALL = list(EXERCISES.values())
FUNCTIONS = [e for e in ALL if e.kind == "function"]
MISTAKES = [(e, m) for e in ALL for m in e.mistakes]


def _cases(eid):
    return get_exercise(eid).cases()


# ------------------------------------------------------------------ the registry
def test_ids_are_in_lesson_order_with_two_code_exercises_per_lesson():
    assert list(EXERCISES) == sorted(EXERCISES)
    for lesson in range(1, 8):
        code = [e for e in FUNCTIONS if e.lesson == lesson]
        assert len(code) >= 2, f"lesson {lesson} has {len(code)} code exercises"
        assert all(e.id.startswith(f"{lesson:02d}.") for e in code)


@pytest.mark.parametrize("ex", FUNCTIONS, ids=lambda e: e.id)
def test_function_exercise_has_cases_an_edge_case_and_two_mistakes(ex):
    cases = ex.cases()
    assert len(cases) >= 3
    assert sum("edge case" in c.label for c in cases) == 1
    assert len(ex.mistakes) >= 2
    assert len({m.hint for m in ex.mistakes}) == len(ex.mistakes)
    assert ex.signature.split("(")[0] == ex.reference.__name__
    # seeded: the same inputs every time
    for a, b in zip(cases, ex.cases()):
        for x, y in zip(a.args, b.args):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_reference_passes(ex):
    result = check(ex.id, ex.reference, show=False)
    assert result.passed, result.message
    assert result.message == "correct" and result.hint is None


@pytest.mark.parametrize("ex,mistake", MISTAKES, ids=lambda x: getattr(x, "id", None) or x.name)
def test_every_mistake_fails_with_its_own_hint(ex, mistake):
    result = check(ex.id, mistake.fn, show=False)
    assert not result.passed
    assert result.mistake == mistake.name
    assert result.hint == mistake.hint and result.message == mistake.hint


@pytest.mark.parametrize("ex,mistake", [(e, m) for e, m in MISTAKES if e.kind == "function"],
                         ids=lambda x: getattr(x, "id", None) or x.name)
def test_every_mistake_differs_from_the_reference_on_some_case(ex, mistake):
    diffs = [not ex.compare(mistake.fn(*c.args), ex.reference(*c.args)) for c in ex.cases()]
    assert any(diffs)


def test_a_plain_wrong_answer_names_the_case_and_the_factor():
    ref = get_exercise("01.1").reference
    result = check("01.1", lambda Z, eps: 3.0 * ref(Z, eps), show=False)
    assert not result.passed and result.mistake is None
    assert result.message.startswith("on every case your output is 3 times the expected "
                                     "one (case 1: got 16.7943, expected 5.5981): a factor "
                                     "is missing or extra. Hint: ")
    assert result.message.endswith("Hint: " + get_exercise("01.1").hint)


def test_a_wrong_value_names_the_first_case_that_differs():
    ref = get_exercise("01.1").reference
    result = check("01.1", lambda Z, eps: ref(Z, eps) + (Z.shape[0] == 10), show=False)
    assert result.message.startswith("case 2 of 4 (Z of shape (10, 30) (wider than tall), "
                                     "eps=0.01): expected 27.4241, got 28.4241. Hint: ")
    assert describe_difference(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.0])) == (
        "1 of 3 values differ; the first at index 1: expected 2.5, got 2")


def test_a_wrong_shape_and_a_flipped_sign_are_named():
    ref = get_exercise("03.1").reference
    shape = check("03.1", lambda W: ref(W)[:-1], show=False)
    assert "expected an array of shape (6,), got an array of shape (5,)" in shape.message
    sign = check("04.1", lambda Z, Y, lam: -get_exercise("04.1").reference(Z, Y, lam) + 0,
                 show=False)
    assert sign.mistake == "positive"
    assert describe_difference(np.array([1.0, -2.0]), np.array([-1.0, 2.0])).startswith(
        "the sign is flipped")
    assert describe_difference(None, 1.0) == "your function returned None (a missing `return`?)"


def test_an_exception_is_one_line_with_the_case(capsys):
    def broken(Z, eps):
        return 1 / 0

    result = check("01.1", broken)
    assert not result.passed
    assert result.message == ("your function raised ZeroDivisionError: division by zero on "
                              "case 1 (Z of shape (50, 4), eps=0.1).")
    out = capsys.readouterr().out
    assert out == f"01.1: not yet. {result.message}\n"
    assert "Traceback" not in out


def test_an_exception_on_a_later_case_names_that_case():
    def fails_on_one_row(Z, eps):
        if Z.shape[0] == 1:
            raise ValueError("need two rows\nsecond line")
        return get_exercise("01.1").reference(Z, eps)

    result = check("01.1", fails_on_one_row, show=False)
    assert result.message == ("your function raised ValueError: need two rows on case 4 "
                              "(edge case: a single row, Z of shape (1, 5), eps=0.5).")


def test_the_students_arrays_are_copies():
    def mutating(Z, eps):
        value = get_exercise("01.1").reference(Z, eps)
        Z[:] = 0.0
        return value

    assert check("01.1", mutating, show=False).passed
    assert np.abs(_cases("01.1")[0].args[0]).sum() > 0


def test_unknown_id_lists_the_valid_ids():
    with pytest.raises(ValueError, match=r"unknown exercise id '9\.9'; valid ids: 01\.1, "
                                         r"01\.2, 01\.3, 02\.1"):
        check("9.9", lambda: 0)
    with pytest.raises(ValueError, match="must be a string such as '01.2'"):
        check(1.1, lambda: 0)
    with pytest.raises(ValueError, match="unknown exercise id"):
        hint("01.9")
    assert get_exercise("1.2") is get_exercise("01.2")


def test_a_string_where_a_function_is_expected():
    result = check("01.1", "coding_rate", show=False)
    assert not result.passed
    assert result.message == ("this exercise expects a function `coding_rate(Z, eps) -> "
                              "float`, got a str ('coding_rate'). Define it with `def`, then "
                              "call check('01.1', coding_rate) (the name without parentheses).")
    called = check("01.1", 0.0, show=False)
    assert "got a number" in called.message


def test_choice_answers():
    assert check("01.3", " B ", show=False).passed
    assert check("1.3", "b)", show=False).passed
    option_text = get_exercise("01.3").options["b"]
    assert check("01.3", option_text.upper(), show=False).passed
    wrong = check("01.3", "z", show=False)
    assert wrong.message.startswith("'z' is not one of the options 'a', 'b', 'c', 'd'.")
    fn = check("01.3", lambda: "b", show=False)
    assert not fn.passed and "multiple choice" in fn.message


def test_hint_and_solution_print(capsys):
    hint("01.2")
    assert capsys.readouterr().out == (
        f"01.2 (TransRate from R(Z) and the class-wise rates): {get_exercise('01.2').hint}\n")
    show_solution("01.1")
    out = capsys.readouterr().out
    assert out.startswith("def coding_rate(Z, eps):") and "slogdet" in out
    show_solution("01.3")
    assert capsys.readouterr().out.startswith("Answer: b) it falls to about 0")


@pytest.mark.parametrize("ex", FUNCTIONS, ids=lambda e: e.id)
def test_the_solution_source_runs_on_its_own(ex):
    """What show_solution prints is a complete function (NumPy/SciPy imports only)."""
    namespace = {"np": np}
    exec(solution_source(ex), namespace)
    fn = namespace[ex.reference.__name__]
    assert check(ex.id, fn, show=False).passed


def test_list_exercises():
    table = list_exercises()
    assert list(table.index) == list(EXERCISES)
    assert list(table.columns) == ["lesson", "title", "signature", "prompt"]
    assert list(list_exercises(lesson=5).index) == ["05.1", "05.2"]
    assert table.loc["01.3", "signature"] == "(choice)"
    with pytest.raises(ValueError, match=r"lesson must be one of \[1, 2, 3, 4, 5, 6, 7\]"):
        list_exercises(lesson=8)


def test_result_reads_well():
    ok = check("01.1", get_exercise("01.1").reference, show=False)
    assert str(ok) == "01.1: correct." and bool(ok)
    assert ok._repr_markdown_() == "**01.1 ✓ correct.**"
    bad = check("03.1", get_exercise("03.1").mistakes[0].fn, show=False)
    assert bad._repr_markdown_().startswith("**03.1 ✗ not yet.** you summed |W_ij|")
    assert repr(bad).startswith("<Result 03.1: failed: you summed")


def test_result_is_shown_once_in_a_notebook_cell(monkeypatch):
    from transfer_nb.exercises import _core

    class Shell:
        execution_count = 7

    shown = []
    monkeypatch.setattr(_core, "_ipython", lambda: Shell)
    monkeypatch.setattr(_core, "_show", lambda result, ip: shown.append(result.id))
    result = check("01.3", "b")                    # shown by check in cell 7
    result._ipython_display_()                     # the cell's value: not shown again
    assert shown == ["01.3"]
    Shell.execution_count = 8
    result._ipython_display_()                     # asked for again in a later cell
    assert shown == ["01.3", "01.3"]


def test_the_package_imports_numpy_only():
    code = ("import sys, json, transfer_nb.exercises; "
            "print(json.dumps([m for m in ('torch', 'pandas', 'scipy', 'IPython') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []


def test_front_door_exposes_the_module():
    import transfer_nb
    assert transfer_nb.exercises is ex_mod


# ------------------------------------------- references equal the library functions
def test_01_1_equals_coding_rate():
    from transfer_nb import coding_rate
    ref = get_exercise("01.1").reference
    for c in _cases("01.1"):
        assert ref(*c.args) == pytest.approx(coding_rate(*c.args, center=False), rel=1e-10)


def test_01_2_equals_transrate_snippet():
    from transfer_nb import transrate
    ref = get_exercise("01.2").reference
    for c in _cases("01.2"):
        Z, y, eps = c.args
        assert ref(Z, y, eps) == pytest.approx(transrate(Z, y, eps, variant="snippet"),
                                               rel=1e-9)


def test_01_3_shuffled_labels_bring_transrate_to_about_zero():
    from transfer_nb import transrate
    rng = np.random.default_rng(0)
    means = rng.normal(scale=3.0, size=(3, 8))
    Z = np.concatenate([m + rng.normal(size=(500, 8)) for m in means])
    y = np.repeat(np.arange(3), 500)
    assert transrate(Z, y, 1e-4) == pytest.approx(1.0758, abs=1e-3)
    assert transrate(Z, rng.permutation(y), 1e-4) == pytest.approx(0.0229, abs=1e-3)


def test_02_1_equals_pooled_within_kendall():
    from transfer_nb.stats import MIN_GROUP_ITEMS, pooled_within
    ref = get_exercise("02.1").reference
    for c in _cases("02.1"):
        s, t, g = c.args
        lib = pooled_within(s, t, g, method="kendall", n_boot=10)["estimate"]
        # the library leaves groups below its minimum size out (the exercise keeps them)
        keep = np.isin(g, [k for k in set(g) if np.sum(np.asarray(g) == k) >= MIN_GROUP_ITEMS])
        if keep.all():
            assert ref(s, t, g) == pytest.approx(lib, abs=1e-12)
        else:
            assert ref(s[keep], t[keep], g[keep]) == pytest.approx(lib, abs=1e-12)


def test_02_2_equals_the_paired_correlation_difference():
    from transfer_nb.stats._batched import _within_resamples
    from transfer_nb.stats import paired_correlation_difference
    ref = get_exercise("02.2").reference
    a, b, t, _ = _cases("02.2")[1].args
    lib = paired_correlation_difference(a, b, t, n_boot=500, seed=3)
    idx = _within_resamples([np.arange(len(t))], 500, 3)[0]
    low, high = np.percentile(ref(a, b, t, idx), [2.5, 97.5])
    assert (low, high) == pytest.approx((lib["low"], lib["high"]), abs=1e-9)
    whole = ref(a, b, t, np.arange(len(t))[None, :])
    assert whole[0] == pytest.approx(lib["estimate"], abs=1e-12)


def test_03_equals_head2toe_selection():
    from transfer_nb.head2toe import Head2Toe, feature_scores, select_top
    imp, top = get_exercise("03.1").reference, get_exercise("03.2").reference
    for c in _cases("03.1"):
        (W,) = c.args
        np.testing.assert_allclose(imp(W), feature_scores(W.T), rtol=1e-12)  # torch: (K, D)
    for c in _cases("03.2"):
        np.testing.assert_array_equal(top(*c.args), select_top(*c.args))
    # the estimator keeps exactly those features
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(30, 10)).astype(np.float32), np.repeat([0, 1, 2], 10)
    scores = rng.exponential(size=10)
    fitted = Head2Toe(keep_fraction=0.27, steps=2).fit(X, y, scores=scores)
    np.testing.assert_array_equal(fitted.selected_, top(scores, 0.27))


def test_04_1_equals_linear_mse_with_standardised_features():
    from transfer_nb.estimators import linear_mse
    ref = get_exercise("04.1").reference
    for c in _cases("04.1"):
        Z, Y, lam = c.args
        assert ref(Z, Y, lam) == pytest.approx(
            linear_mse(Z, Y, alpha=lam, scale_features=True), rel=1e-9, abs=1e-12)


def test_04_2_equals_the_leave_one_out_range():
    from transfer_nb.stats import MIN_GROUP_ITEMS, leave_one_out_range
    ref = get_exercise("04.2").reference
    for c in _cases("04.2"):
        values = ref(*c.args)
        lib = leave_one_out_range(*c.args, method="pearson")
        if len(c.args[0]) < MIN_GROUP_ITEMS:      # the library says "too few items"
            assert np.isnan(lib).all()
        else:
            assert (values.min(), values.max()) == pytest.approx(lib, abs=1e-12)


def test_05_1_equals_the_libraries_pgd_step():
    import torch
    from torch import nn

    from transfer_nb.adversarial import _project, pgd
    ref = get_exercise("05.1").reference
    for c in _cases("05.1"):
        x, g, x0, eps, step = c.args
        gt = torch.as_tensor(g, dtype=torch.float64)
        norms = gt.flatten(1).norm(dim=1).view(-1, *([1] * (gt.ndim - 1))).clamp_min(1e-12)
        lib = _project(torch.as_tensor(x) + step * gt / norms, torch.as_tensor(x0), eps,
                       "l2", (0.0, 1.0))
        np.testing.assert_allclose(ref(*c.args), lib.numpy(), rtol=1e-12, atol=1e-12)
    # the attack itself: one step from x0 on a loss whose gradient is the given one
    x0, g = _cases("05.1")[0].args[2], _cases("05.1")[0].args[1]

    class Linear(nn.Module):
        def forward(self, x):
            return (x * torch.as_tensor(g, dtype=x.dtype)).flatten(1).sum(dim=1)

    out = pgd(Linear(), torch.as_tensor(x0), torch.zeros(len(x0)), eps=0.5, steps=1,
              step_size=1.0, random_start=False, loss_fn=lambda out, y: out.sum(),
              normalize=None)
    np.testing.assert_allclose(ref(x0, g, x0, 0.5, 1.0), out.numpy(), rtol=1e-12, atol=1e-12)


def test_05_2_equals_paired_difference():
    from transfer_nb.stats import paired_difference
    ref = get_exercise("05.2").reference
    for c in _cases("05.2"):
        lib = paired_difference(*c.args)
        assert ref(*c.args) == pytest.approx((lib["estimate"], lib["low"], lib["high"]),
                                             abs=1e-12)


def test_06_equals_pge_distance():
    from transfer_nb.estimators import pge_distance
    one, per_restart = get_exercise("06.1").reference, get_exercise("06.2").reference
    for c in _cases("06.1"):
        assert one(*c.args) == pytest.approx(pge_distance(*c.args), abs=1e-12)
    for c in _cases("06.2"):
        assert per_restart(*c.args) == pytest.approx(
            pge_distance(*c.args, reduce="mean_distance"), abs=1e-12)


def test_07_equals_kendall_tau_b():
    from scipy.stats import kendalltau

    from transfer_nb.stats import pooled_within
    ref = get_exercise("07.1").reference
    for c in _cases("07.1"):
        assert ref(*c.args) == pytest.approx(kendalltau(*c.args).statistic, abs=1e-12)
    lfo = get_exercise("07.2").reference
    for c in _cases("07.2"):
        s, t, f = c.args
        for fam, tau in lfo(s, t, f).items():
            keep = f != fam
            lib = pooled_within(s[keep], t[keep], None, method="kendall", n_boot=10)
            assert tau == pytest.approx(lib["estimate"], abs=1e-12)


def test_run_check_never_raises_on_odd_outputs():
    ex = get_exercise("07.2")
    assert not run_check(ex, lambda s, t, f: [1, 2]).passed
    assert "expected a dict with keys" in run_check(ex, lambda s, t, f: 0.5).message
    assert isinstance(run_check(get_exercise("03.2"), lambda s, f: "abc"), Result)


def test_the_solutions_page_holds_every_exercise_and_its_solution():
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
    try:
        import tnb_exercises
    finally:
        sys.path.pop(0)
    text = tnb_exercises.page()
    assert text.startswith("# Exercise solutions\n")
    for ex in ALL:
        assert f"\n### {ex.id} " in text
        assert solution_source(ex).rstrip() in text if ex.kind == "function" else \
            f"**Answer: {ex.reference})**" in text
        for m in ex.mistakes:
            assert m.hint in text


def test_a_number_exercise_is_checked_on_its_single_value():
    from transfer_nb.exercises._core import Exercise, Mistake
    ex = Exercise(id="09.1", lesson=9, title="t", prompt="p", reference=0.25, kind="number",
                  hint="h", mistakes=[Mistake("doubled", 0.5, "twice")])
    assert run_check(ex, 0.25 + 1e-12).passed
    assert run_check(ex, 0.5).message == "twice"
    assert run_check(ex, 0.3).message == "expected 0.25, got 0.3. Hint: h"
    assert run_check(ex, "0.25").message == "09.1 expects a number, got a str."
    with pytest.raises(ValueError, match="exercise id must look like '01.2'"):
        Exercise(id="9.1", lesson=9, title="t", prompt="p", reference=0.25, kind="number",
                 hint="h")


def test_show_exercise_prints_the_statement_and_the_options(capsys):
    from transfer_nb.exercises import get_exercise, show_exercise
    show_exercise("01.3")
    out = capsys.readouterr().out
    ex = get_exercise("01.3")
    assert out.startswith(f"Exercise 01.3: {ex.title}\n{ex.prompt}\n")
    assert "  b) " + ex.options["b"] in out
    show_exercise("02.1")
    assert capsys.readouterr().out == f"Exercise 02.1: {get_exercise('02.1').title}\n{get_exercise('02.1').prompt}\n"
