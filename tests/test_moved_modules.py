"""Modules grouped by job (issue 35): every old import path still works, as a deprecated
alias that *is* the new module; the console script and ``python -m transfer_nb.cli``
still resolve."""
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import transfer_nb
from transfer_nb._moved import MOVED, moved

ROOT = Path(transfer_nb.__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module_and_warns(old, monkeypatch):
    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        alias = importlib.import_module(old)
    assert alias is new and sys.modules[old] is new
    parent, _, child = old.rpartition(".")
    assert getattr(sys.modules[parent], child) is new
    names = getattr(new, "__all__", None) or [n for n in vars(new) if not n.startswith("__")]
    for name in names[:5]:                        # `from <old> import <name>` still works
        assert getattr(alias, name) is getattr(new, name)


def test_every_moved_file_is_a_two_line_alias():
    for old, new in MOVED.items():
        path = ROOT / (old.replace(".", "/") + ".py")
        code = [line for line in path.read_text().splitlines()[1:] if line.strip()]
        assert code == ["from transfer_nb._moved import moved",
                        f'moved(__name__, "{new}")'], path


def test_moved_refuses_an_unlisted_move():
    with pytest.raises(ValueError, match="not listed"):
        moved("transfer_nb.nowhere", "transfer_nb.stats")


def test_front_door_names_reach_the_new_homes_without_a_warning(recwarn):
    assert transfer_nb.transfer is importlib.import_module("transfer_nb.training.transfer")
    assert transfer_nb.magics is importlib.import_module("transfer_nb.cli.magics")
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)
                and "moved to" in str(w.message)]


def test_console_script_and_module_entry_points_resolve():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
    out = subprocess.run([sys.executable, "-m", "transfer_nb.cli", "--version"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert transfer_nb.__version__ in out.stdout + out.stderr
