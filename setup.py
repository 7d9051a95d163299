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

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


class BuildPyWithTutorials(build_py):
    """``build_py`` that also copies ``notebooks/*.ipynb`` to ``transfer_nb/tutorials/``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the package runs from the checkout, next to notebooks/
        notebooks = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not p.name.startswith("."))
        if not notebooks:
            raise RuntimeError(f"no tutorial notebook in {NOTEBOOKS}: the wheel would ship none")
        dest = Path(self.build_lib) / "transfer_nb" / "tutorials"
        self.mkpath(str(dest))
        for nb in notebooks:
            self.copy_file(str(nb), str(dest / nb.name))


setup(packages=find_packages(include=["transfer_nb", "transfer_nb.*"]) + ["transfer_nb_widgets"],
      package_dir={"transfer_nb_widgets": "widgets"},
      cmdclass={"build_py": BuildPyWithTutorials})
