"""Generate the notebooks from the per-paper generators in ``scripts/notebooks/`` (each
defines ``PATH`` and ``cells()``, built with the helpers below).

Run ``python scripts/make_notebooks.py`` after editing a generator; then execute the
notebooks (``jupyter nbconvert --execute --inplace`` or nbval) so that checked cells
(``# NBVAL_CHECK_OUTPUT``) carry their reference output.  Cells stay short: all the
work is in :mod:`transfer_nb` and :mod:`widgets`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
CHECK = "# NBVAL_CHECK_OUTPUT"


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, check: bool = False):
    text = text.strip("\n")
    if check:
        text = CHECK + "\n" + text
    return new_code_cell(text)


def exercise(id: str, function: str | None = None, args: str = ""):
    """A lesson's exercise cell: the statement (``show_exercise``), the function the student
    writes (a stub that raises until they do), and ``check`` on it; for a choice, the
    statement and a ``check`` of a letter to replace."""
    if function is None:
        return code(f'show_exercise("{id}")\ncheck("{id}", "?")   # replace "?" by your letter')
    return code(f'''show_exercise("{id}")

def {function}({args}):
    # your code here
    raise NotImplementedError

check("{id}", {function})''')


#: first-cell note for notebooks with widgets: a saved copy shows their text repr only
WIDGET_NOTE = ("*The interactive widgets in this notebook appear only when its cells run in "
               "Jupyter; a saved copy shows a line of text naming the widget (`...(children=...)`) "
               "in their place: run the cells to see them.*")


def with_widget_note(cells):
    """``cells`` with :data:`WIDGET_NOTE` after the title cell when a code cell uses widgets."""
    uses = any(c.cell_type == "code" and "widgets." in c.source for c in cells)
    if not uses or any(WIDGET_NOTE in c.source for c in cells):
        return list(cells)
    return [cells[0], md(WIDGET_NOTE), *cells[1:]]


def build(cells, path: Path) -> None:
    nb = new_notebook(cells=with_widget_note(cells))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    print("wrote", path.relative_to(ROOT))


def _paper_generators():
    """The per-paper generators in scripts/notebooks/ (each defines PATH and cells())."""
    import importlib.util
    for path in sorted((ROOT / "scripts" / "notebooks").glob("[0-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"nbgen_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def main(argv=None) -> int:
    for module in _paper_generators():
        build(module.cells(), ROOT / module.PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
