"""Build the documentation site once per test session (shared by tests/test_docs.py and
tests/browser/test_docs_site.py).

The build is ``make docs``'s command with a fresh environment (``-E``, so that every
warning of every page is emitted again) and warnings as errors (``-W``), in this
interpreter, into ``build/docs/`` (what ``make docs`` writes; the browser test opens it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "build" / "docs"
_RESULT: "Build | None" = None


@dataclass
class Build:
    returncode: int
    output: str
    seconds: float
    site: Path


def requirements_missing() -> str | None:
    """A reason to skip when the ``docs`` extra is not installed, else ``None``."""
    import importlib.util
    for module, dist in (("sphinx", "sphinx"), ("myst_nb", "myst-nb"), ("furo", "furo"),
                         ("mathjax", "django-static-mathjax")):
        if importlib.util.find_spec(module) is None:
            return f"{dist} is not installed: pip install -e '.[docs]' (part of the dev extra)"
    return None


def build_site() -> Build:
    """``sphinx-build -b html -E -W --keep-going docs build/docs`` (once per session)."""
    global _RESULT
    if _RESULT is None:
        reason = requirements_missing()
        if reason:
            pytest.skip(reason)
        env = dict(os.environ, MPLBACKEND="Agg")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + (
            [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going", "-q",
             "docs", str(SITE)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        _RESULT = Build(proc.returncode, proc.stdout + proc.stderr,
                        time.perf_counter() - start, SITE)
    return _RESULT


def built_site() -> Path:
    """The site, failing the calling test (with Sphinx's output) if the build failed."""
    result = build_site()
    assert result.returncode == 0, f"the docs build failed:\n{result.output[-6000:]}"
    return result.site
