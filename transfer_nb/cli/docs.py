"""``transfer-nb docs``: the documentation site for a pip user, offline.

The wheel ships the site's sources (``transfer_nb/docs_src/``: the Markdown pages, the
Sphinx configuration and extensions, the widgets' still images and the stored full runs'
``run.json``) beside the executed tutorials (``transfer_nb/tutorials/``).  The command
copies them into ``DIR/source/`` in the repository's layout (``docs/``, ``notebooks/``,
``results/``) and, when the ``docs`` extra is installed (Sphinx, MyST-NB, furo, MathJax
from a PyPI wheel), builds the HTML site into ``DIR/html/`` without executing anything and
without the network.  Without the extra the Markdown pages and the executed notebooks are
left readable as they are, and the command says how to build the site.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import webbrowser
from pathlib import Path

from transfer_nb._paths import tutorials_dir

__all__ = ["docs_sources", "write_docs", "add_docs_parser", "cmd_docs", "DOCS_EXTRA"]

PROG = "transfer-nb docs"
#: the modules the site build needs (the ``docs`` extra)
DOCS_EXTRA = ("sphinx", "myst_nb", "furo", "mathjax")
_MARKER = ".transfer_nb_docs"  # in DIR: this command wrote it, so it may rewrite it


def docs_sources() -> dict:
    """``{"docs", "notebooks", "results"}`` folders the site is built from: the copies
    shipped in the wheel, else the source checkout's own (``results`` may be ``None``).

    Raises
    ------
    FileNotFoundError
        If neither holds the site's ``index.md``.
    """
    package = Path(__file__).resolve().parents[1]     # transfer_nb/
    for root, docs in ((package / "docs_src", package / "docs_src" / "docs"),
                       (package.parent, package.parent / "docs")):
        if (docs / "index.md").is_file() and (docs / "conf.py").is_file():
            results = root / "results"
            return {"docs": docs, "notebooks": tutorials_dir(),
                    "results": results if results.is_dir() else None}
    raise FileNotFoundError(f"the documentation sources are not in {package / 'docs_src'}; "
                            "reinstall transfer-nb")


def missing_for_build() -> list[str]:
    """The modules of the ``docs`` extra that are not installed."""
    return [m for m in DOCS_EXTRA if importlib.util.find_spec(m) is None]


def write_docs(dest, build: bool = True) -> dict:
    """Copy the site's sources into ``dest/source/`` and build it into ``dest/html/``.

    Parameters
    ----------
    dest : path-like
        Folder, created if missing; one that holds other files and was not written by
        this function is refused.
    build : bool
        Build the HTML site when the ``docs`` extra is installed.

    Returns
    -------
    dict
        ``source`` (the copied sources), ``index`` (``html/index.html``, or ``None`` when
        not built), ``missing`` (modules of the ``docs`` extra not installed).

    Raises
    ------
    ValueError
        ``dest`` is a file, or a non-empty folder this function did not write.
    RuntimeError
        Sphinx failed (its last lines).
    """
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"docs destination {str(dest)!r} is a file; expected a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / _MARKER).exists():
        raise ValueError(f"docs destination {str(dest)!r} holds other files; expected a new "
                         "or empty folder (or one transfer-nb docs wrote before)")
    sources = docs_sources()
    source = dest / "source"
    shutil.rmtree(source, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / _MARKER).write_text("written by transfer-nb docs\n", encoding="utf-8")
    shutil.copytree(sources["docs"], source / "docs",
                    ignore=shutil.ignore_patterns("_build", "__pycache__", "tutorials", "api"))
    (source / "notebooks").mkdir()
    for nb in sorted(sources["notebooks"].glob("*.ipynb")):
        shutil.copyfile(nb, source / "notebooks" / nb.name)
    if sources["results"] is not None:
        for run in sorted(sources["results"].glob("*/run.json")):
            (source / "results" / run.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run, source / "results" / run.parent.name / "run.json")
    missing = missing_for_build()
    index = None
    if build and not missing:
        html = dest / "html"
        done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q",
                               str(source / "docs"), str(html)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"sphinx failed ({tail})")
        index = html / "index.html"
    return {"source": source, "index": index, "missing": missing}


def cmd_docs(args: argparse.Namespace) -> int:
    """``transfer-nb docs DIR``: write (and build) the site; ``--open`` opens it."""
    try:
        done = write_docs(args.dir, build=not args.no_build)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    src = done["source"]
    print(f"sources: {src / 'docs'} (Markdown pages) and {src / 'notebooks'} (the executed "
          "tutorials), readable as they are")
    if done["index"] is not None:
        print(f"site: {done['index']} (offline; open it in a browser)")
        if args.open:
            webbrowser.open(done["index"].resolve().as_uri())
    elif done["missing"] and not args.no_build:
        print(f"to build the HTML site offline: pip install 'transfer-nb[docs]' (missing: "
              f"{', '.join(done['missing'])}), then run {PROG} {args.dir} again")
    return 0


def add_docs_parser(sub) -> argparse.ArgumentParser:
    """The ``docs`` subcommand's parser."""
    docs = sub.add_parser(
        "docs", help="write the documentation site into DIR (offline) and build it",
        description="Copy the documentation's sources (Markdown pages, the executed "
        "tutorials, the stored runs) into DIR/source and, when the docs extra is installed "
        "(pip install 'transfer-nb[docs]'), build the HTML site into DIR/html, offline and "
        "without executing anything (about a minute).")
    docs.add_argument("dir", metavar="DIR", nargs="?", default="transfer-nb-docs",
                      help="destination folder (default: transfer-nb-docs)")
    docs.add_argument("--open", action="store_true",
                      help="open the built site in the web browser")
    docs.add_argument("--no-build", action="store_true",
                      help="only copy the sources (Markdown and notebooks)")
    docs.set_defaults(func=cmd_docs)
    return docs
