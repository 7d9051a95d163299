"""Packages and a build hook (the metadata lives in pyproject.toml).

Packages: ``transfer_nb`` and its subpackages, and the repository folder ``widgets/``
installed as ``transfer_nb_widgets`` (``import transfer_nb_widgets as widgets``): a
top-level name of its own, so that it cannot be mistaken for another package's
``widgets``.  An editable install maps the same name onto ``widgets/``.

Build hook: ship the tutorials in the wheel.

``notebooks/*.ipynb`` is the single source of the tutorials.  ``build_py`` copies them
into the built package as ``transfer_nb/tutorials/`` (real files, no symlink), so that a
pip install has them and ``transfer-nb tutorials DIR`` can copy them out.  A source
checkout or an editable install has no ``transfer_nb/tutorials/``: the command then reads
``notebooks/`` directly.  MANIFEST.in puts ``notebooks/`` in the sdist, so a wheel built
from the sdist gets them too.
"""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE / "notebooks"
DOCS = HERE / "docs"
# the documentation site's sources that ship (transfer-nb docs builds them offline)
DOCS_FILES = ("index.md", "conf.py", "_ext/*.py", "_static/*.css", "_static/widgets/*.png")


class BuildPyWithTutorials(build_py):
    """``build_py`` that also copies ``notebooks/*.ipynb`` to ``transfer_nb/tutorials/``
    and the documentation's sources to ``transfer_nb/docs_src/`` (``docs/`` and the stored
    runs' ``results/*/run.json``, for ``transfer-nb docs``)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the package runs from the checkout, next to notebooks/ and docs/
        notebooks = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not p.name.startswith("."))
        if not notebooks:
            raise RuntimeError(f"no tutorial notebook in {NOTEBOOKS}: the wheel would ship none")
        dest = Path(self.build_lib) / "transfer_nb" / "tutorials"
        self.mkpath(str(dest))
        for nb in notebooks:
            self.copy_file(str(nb), str(dest / nb.name))
        docs_src = Path(self.build_lib) / "transfer_nb" / "docs_src"
        files = [(p, docs_src / "docs" / p.relative_to(DOCS))
                 for pattern in DOCS_FILES for p in sorted(DOCS.glob(pattern))]
        files += [(p, docs_src / p.relative_to(HERE))
                  for p in sorted((HERE / "results").glob("*/run.json"))]
        if not (DOCS / "index.md").is_file():
            raise RuntimeError(f"no {DOCS / 'index.md'}: the wheel would ship no documentation")
        for src, target in files:
            self.mkpath(str(target.parent))
            self.copy_file(str(src), str(target))


setup(packages=find_packages(include=["transfer_nb", "transfer_nb.*"]) + ["transfer_nb_widgets"],
      package_dir={"transfer_nb_widgets": "widgets"},
      cmdclass={"build_py": BuildPyWithTutorials})
