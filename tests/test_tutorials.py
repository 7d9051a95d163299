"""The tutorials ship in the wheel and ``transfer-nb tutorials DIR`` copies them out."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transfer_nb import cli

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def _nb(text: str) -> str:
    return json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": text}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_copy_tutorials_keeps_user_edits(tmp_path, capsys):
    src, dest = tmp_path / "shipped", tmp_path / "mine"
    src.mkdir()
    (src / "a.ipynb").write_text(_nb("a v1"))
    (src / "b.ipynb").write_text(_nb("b v1"))
    assert cli.copy_tutorials(dest, source=src) == [("a.ipynb", "copied"), ("b.ipynb", "copied")]
    assert (dest / "a.ipynb").read_text() == _nb("a v1")
    # a new release changes both; the user edited b only
    (src / "a.ipynb").write_text(_nb("a v2"))
    (src / "b.ipynb").write_text(_nb("b v2"))
    (dest / "b.ipynb").write_text(_nb("b, my notes"))
    assert cli.copy_tutorials(dest, source=src) == [("a.ipynb", "updated"), ("b.ipynb", "kept")]
    assert (dest / "a.ipynb").read_text() == _nb("a v2")
    assert (dest / "b.ipynb").read_text() == _nb("b, my notes")
    assert cli.copy_tutorials(dest, source=src) == [("a.ipynb", "unchanged"), ("b.ipynb", "kept")]
    assert cli.copy_tutorials(dest, force=True, source=src) == [("a.ipynb", "unchanged"),
                                                                 ("b.ipynb", "overwritten")]
    assert (dest / "b.ipynb").read_text() == _nb("b v2")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        cli.copy_tutorials(dest / "a.ipynb", source=src)
    # the command, from a source checkout: notebooks/ of the repository
    assert cli.tutorials_dir() == REPO / "notebooks"
    assert cli.main(["tutorials", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"{len(NOTEBOOKS)} copied" in out and all(name in out for name in NOTEBOOKS)
    assert cli.main(["tutorials", str(dest / "a.ipynb")]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (no build/ or egg-info in the repo)."""
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("transfer_nb", "widgets", "notebooks", "docs"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for run in (REPO / "results").glob("*/run.json"):  # the docs' stored-run provenance
        (src / "results" / run.parent.name).mkdir(parents=True)
        shutil.copy2(run, src / "results" / run.parent.name / "run.json")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True, cwd=tmp_path,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    (wheel,) = wheels.glob("transfer_nb-*.whl")
    return wheel


def test_wheel_ships_tutorials_and_cli_copies_them(tmp_path):
    wheel = _build_wheel(tmp_path)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    shipped = sorted(p.name for p in (target / "transfer_nb" / "tutorials").glob("*.ipynb"))
    assert shipped == NOTEBOOKS and len(NOTEBOOKS) >= 1
    for name in NOTEBOOKS:  # byte-identical to the repository's notebooks/ (one source)
        assert ((target / "transfer_nb" / "tutorials" / name).read_bytes()
                == (REPO / "notebooks" / name).read_bytes())

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import sys, transfer_nb.cli as c; print('MODULE', c.__file__); "
            "sys.exit(c.main(['tutorials'] + sys.argv[1:]))")

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *args], cwd=outside, env=env,
                              capture_output=True, text=True, check=True).stdout

    dest = outside / "my tutorials"
    out = run(str(dest))
    assert f"MODULE {target / 'transfer_nb' / 'cli' / '__init__.py'}" in out   # installed copy
    assert f"{len(NOTEBOOKS)} copied" in out
    for name in NOTEBOOKS:
        nb = json.loads((dest / name).read_text(encoding="utf-8"))
        assert nb["nbformat"] == 4 and len(nb["cells"]) > 0
    # the user edits one notebook: a second copy keeps it, --force replaces it
    edited = dest / NOTEBOOKS[0]
    mine = edited.read_text(encoding="utf-8").replace('"cells": [', '"cells": [ ', 1)
    edited.write_text(mine, encoding="utf-8")
    out = run(str(dest))
    assert f"{NOTEBOOKS[0]}" in out and "kept" in out and "1 kept" in out
    assert edited.read_text(encoding="utf-8") == mine
    out = run(str(dest), "--force")
    assert "1 overwritten" in out
    assert edited.read_bytes() == (REPO / "notebooks" / NOTEBOOKS[0]).read_bytes()
