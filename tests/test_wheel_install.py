"""A pip user's path, end to end: the built wheel installed in a fresh virtual environment
outside the repository follows the pip description's commands (docs/PYPI.md): ``--version``,
``transfer-nb tutorials my_tutorials/``, ``transfer-nb run --only 00`` (the shipped
quickstart), then the edit-and-run path (an edited copy run inside ``my_tutorials/``),
``transfer-nb rank`` on a folder of images, and ``transfer-nb docs`` (the site built
offline from the sources in the wheel).

The environment is fresh for transfer-nb itself (``pip install --no-deps`` of the wheel); its
dependencies are the test interpreter's, reached through a ``.pth`` line, so that nothing is
downloaded.  About a minute on 2 CPU cores (wheel build, venv, the quickstart notebook
twice, the docs site: 20 s and 40 s for the two tests, measured).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tests.test_tutorials import REPO, _build_wheel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    """``(bin folder, environment variables)`` of a venv holding only the built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--no-deps", "-q", str(wheel)], check=True, env=env)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True, env=env).stdout.strip())
    # the dependencies: this interpreter's site-packages, after the venv's own; and their
    # data files (nbconvert's HTML templates), which a real install puts in venv/share
    (site / "_transfer_nb_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return venv / "bin", env, tmp


def test_installed_wheel_runs_the_quickstart_outside_the_repository(fresh_env):
    bin_dir, env, tmp = fresh_env
    work, scratch = tmp / "user", tmp / "scratch"
    work.mkdir()
    scratch.mkdir()
    env = {**env, "TRANSFER_NB_FAST": "1", "TRANSFER_NB_CACHE": str(tmp / "cache"),
           "TMPDIR": str(scratch), "MPLBACKEND": "Agg", "PATH": f"{bin_dir}:{env['PATH']}"}

    # the installed package, its import names and its documents
    probe = ("import importlib.util as u, json, transfer_nb, transfer_nb_widgets; "
             "from importlib.metadata import metadata; "
             "print(json.dumps({'file': transfer_nb.__file__, "
             "'widgets': u.find_spec('widgets') is not None, "
             "'doc': transfer_nb.__doc__, 'description': metadata('transfer-nb')['Description'] "
             "or metadata('transfer-nb').get_payload()}))")
    facts = json.loads(subprocess.run([str(bin_dir / "python"), "-c", probe], cwd=work,
                                      env=env, check=True, capture_output=True,
                                      text=True).stdout)
    assert Path(facts["file"]).is_relative_to(bin_dir.parent)  # not the repository's copy
    assert not Path(facts["file"]).is_relative_to(REPO)
    assert facts["widgets"] is False  # no generic top-level "widgets" package
    for text in (facts["doc"], facts["description"]):
        for unshipped in ("DESIGN.md", "make_notebooks", "../shared", "make run"):
            assert unshipped not in text
    assert "transfer-nb run --only 00" in facts["description"]
    assert "transfer-nb tutorials" in facts["doc"]

    # the console script, in a folder without notebooks/
    run = subprocess.run([str(bin_dir / "transfer-nb"), "run", "--only", "00", "--out",
                          "runout"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=500)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "00_quickstart.ipynb  ok" in run.stdout
    written = sorted(p.name for p in (work / "runout").iterdir())
    assert written == ["00_quickstart.html", "00_quickstart.ipynb"]  # --only honoured
    executed = nbformat.read(work / "runout" / "00_quickstart.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "3 models ranked by transrate" in text  # the CLI ran inside the notebook
    assert "temporary folder removed: True" in text
    assert not any(scratch.glob("quickstart_*"))  # nothing left behind


def _cli(bin_dir, env, cwd, *args, timeout=500):
    done = subprocess.run([str(bin_dir / "transfer-nb"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_pip_description_end_to_end_with_edit_and_run(fresh_env):
    """issue 37: every command of docs/PYPI.md as a pip user types it, edits included."""
    from PIL import Image

    from transfer_nb._version import __version__

    bin_dir, env, tmp = fresh_env
    home = tmp / "home"
    home.mkdir()
    env = {**env, "TRANSFER_NB_FAST": "1", "TRANSFER_NB_CACHE": str(tmp / "cache2"),
           "MPLBACKEND": "Agg", "PATH": f"{bin_dir}:{env['PATH']}"}
    description = (REPO / "docs" / "PYPI.md").read_text()
    for command in ("transfer-nb tutorials my_tutorials/", "cd my_tutorials/",
                    "transfer-nb run --only 00", "transfer-nb docs my_docs/"):
        assert command in description
    assert _cli(bin_dir, env, home, "--version").strip() == f"transfer-nb {__version__}"

    # copy, edit one tutorial, run it inside the copies: the edit runs
    out = _cli(bin_dir, env, home, "tutorials", "my_tutorials/")
    assert "cd my_tutorials/ && transfer-nb run --only 00" in out
    mine = home / "my_tutorials"
    nb = nbformat.read(mine / "00_quickstart.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('edited by the user: 42')"))
    nbformat.write(nb, mine / "00_quickstart.ipynb")
    run = _cli(bin_dir, env, mine, "run", "--only", "00")
    assert f"executing 1 notebook(s) from {mine} in fast mode" in run
    executed = nbformat.read(mine / "build" / "00_quickstart.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == "edited by the user: 42"
    # the user's copy is kept by a second copy, and said so
    again = _cli(bin_dir, env, home, "tutorials", "my_tutorials/")
    assert re.search(r"^  00_quickstart\.ipynb +kept: it differs from the shipped", again, re.M)

    # rank, as written, on a small folder of photos (3 classes x 6 crops)
    rng = np.random.default_rng(0)
    for k, name in enumerate(("bark", "brick", "grass")):
        (home / "my_images" / name).mkdir(parents=True)
        for i in range(6):
            pixels = (rng.random((48, 48, 3)) * 80 + 60 * k).astype(np.uint8)
            Image.fromarray(pixels).save(home / "my_images" / name / f"{i}.png")
    rank = _cli(bin_dir, env, home, "rank", "--data", "my_images/", "--models",
                "efficientnet_lite0,efficientnet_lite1", "--out", "ranking.csv")
    assert "2 models ranked by transrate" in rank and (home / "ranking.csv").is_file()
    assert rank.strip().splitlines()[-1].startswith("next step: add models")

    # the documentation, offline, from the sources the wheel ships
    docs = _cli(bin_dir, env, home, "docs", "my_docs/")
    assert (home / "my_docs" / "html" / "index.html").is_file(), docs
    assert (home / "my_docs" / "html" / "tutorials").is_dir()
    assert not (home / "my_docs" / "source" / "transfer_nb").exists()  # the installed one
