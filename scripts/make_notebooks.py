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


def build(cells, path: Path) -> None:
    nb = new_notebook(cells=cells)
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
