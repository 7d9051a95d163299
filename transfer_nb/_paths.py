"""Where the shipped files are: the tutorials (one function, used by the command line
and the docs command)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["tutorials_dir"]


def tutorials_dir() -> Path:
    """Folder of the tutorial notebooks: ``transfer_nb/tutorials/`` in an installed wheel
    (copied from ``notebooks/`` at build time), else ``notebooks/`` of the source checkout.

    Raises
    ------
    FileNotFoundError
        If neither holds a notebook.
    """
    package = Path(__file__).resolve().parent
    for folder in (package / "tutorials", package.parent / "notebooks"):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise FileNotFoundError(f"no tutorial notebooks in {package / 'tutorials'} or "
                            f"{package.parent / 'notebooks'}; reinstall transfer-nb")
