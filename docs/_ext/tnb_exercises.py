"""The page "Exercise solutions", generated at build time from ``transfer_nb.exercises``.

The lessons hold the exercises and ``check(...)``; the reference solutions live here (and
behind ``show_solution(id)``), never in the notebooks.  One section per lesson, one entry
per exercise: its prompt, the function the student writes, the reference solution (the
function's own source, so the page cannot drift from what ``check`` compares with) and
the mistakes ``check`` recognises, each with the hint it answers.
"""
from __future__ import annotations

from pathlib import Path

LESSONS = {
    1: "01 The coding rate",
    2: "02 TransRate: choosing a model and a layer",
    3: "03 Head2Toe",
    4: "04 Transferability for regression",
    5: "05 Adversarially trained sources",
    6: "06 PGE",
    7: "07 Which estimator",
}


def _fence(text: str, lang: str = "python") -> list[str]:
    return [f"```{lang}", text.rstrip("\n"), "```", ""]


def page() -> str:
    """The markdown of the solutions page."""
    from transfer_nb.exercises import EXERCISES, solution_source

    lines = [
        "# Exercise solutions", "",
        "Every lesson ends with exercises; those in which you write code are checked by "
        "`transfer_nb.exercises`:", "",
        *_fence('from transfer_nb.exercises import check, hint, show_solution\n\n'
                'check("01.1", coding_rate)   # "correct", or a hint that names what differs\n'
                'hint("01.1")                 # a nudge\n'
                'show_solution("01.1")        # the solution below'),
        "`check` runs your function on several seeded inputs (different shapes and one "
        "edge case) and compares it with the reference solution. When they differ, it "
        "tries the typical mistakes listed under each exercise on the same inputs; if "
        "yours match one, you get its hint, otherwise the first input that differs and "
        "how. Try the exercise before you read its solution.", "",
        "Each reference solution is plain NumPy (or SciPy) and is tested equal to the "
        "library function it teaches.", "",
    ]
    for lesson, title in LESSONS.items():
        exercises = [e for e in EXERCISES.values() if e.lesson == lesson]
        if not exercises:
            continue
        lines += [f"## {title}", ""]
        for ex in exercises:
            lines += [f"### {ex.id} {ex.title[0].upper()}{ex.title[1:]}", "", ex.prompt, ""]
            if ex.kind == "function":
                lines += [f"You write `{ex.signature}`.", "", "**Solution**", ""]
                lines += _fence(solution_source(ex))
            else:
                lines += ["Options:", ""]
                lines += [f"- **{k})** {v}" for k, v in ex.options.items()]
                lines += ["", f"**Answer: {ex.reference})**. {ex.explanation}", ""]
            if ex.mistakes:
                lines += ["**Mistakes `check` recognises**", ""]
                for m in ex.mistakes:
                    name = (f"option {m.fn}" if ex.kind == "choice" else
                            m.name.replace("_", " "))
                    lines.append(f"- *{name}*: {m.hint}")
                lines.append("")
    return "\n".join(lines)


def write_exercises(path: Path) -> None:
    """Write the page (only when it changed, so Sphinx keeps its cached copy)."""
    text = page()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
