"""Cache keys derived from the config's fields (issue 35): every paper that trains its
own sources (transrate, regression, pge, adversarial), head2toe and which_estimator build each cell's key with
``base.cell_key`` from every config field but a declared list of exclusions (each with
its reason).  Changing any field, one at a time,
changes every key of every cell unless that cell declares the field excluded."""
import dataclasses
import importlib

import pytest

from transfer_nb.experiments import base, zoo

RUNNERS = ("transrate", "regression", "pge", "adversarial", "which_estimator", "head2toe")


def _other(value):
    """A value of the same kind that differs from ``value``."""
    if value is None:
        return 0.5
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, tuple):
        return value[:-1] if value else ("added",)
    raise TypeError(f"no other value for {value!r}")


def _change(cfg, name):
    own = {f.name for f in dataclasses.fields(cfg)}
    if name in own:
        return dataclasses.replace(cfg, **{name: _other(getattr(cfg, name))})
    return zoo.replace(cfg, **{name: _other(getattr(cfg, name))})


@pytest.mark.parametrize("paper", RUNNERS)
def test_each_field_changes_every_cell_key_unless_excluded(paper):
    runner = importlib.import_module(f"transfer_nb.experiments.{paper}.runner")
    presets = importlib.import_module(f"transfer_nb.experiments.{paper}.presets")
    cfg = presets.config("fast")
    names = base.field_names(cfg)
    if paper in ("transrate", "regression", "pge"):   # the configs that embed SourceTraining
        assert set(zoo.TRAINING_FIELDS) <= set(names)
    checked = 0
    for part, exclude in runner.CELL_EXCLUDE.items():
        assert set(exclude) <= set(names), (part, sorted(set(exclude) - set(names)))
        assert all(isinstance(why, str) and why.strip() for why in exclude.values())
        key = runner.cell_key(cfg, part, target="t", lr=0.1)
        assert key["part"] == part
        for name in names:
            changed = runner.cell_key(_change(cfg, name), part, target="t", lr=0.1)
            if name in exclude:
                assert changed == key, f"{paper} {part}: excluded {name} moved the key"
            else:
                assert changed != key, f"{paper} {part}: {name} is not in the key"
            checked += 1
    assert checked == len(names) * len(runner.CELL_EXCLUDE)


def test_a_new_field_is_in_the_key_until_declared_excluded():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        a: int = 1
        training: zoo.SourceTraining = base.embedded(zoo.SourceTraining())
        new: int = base.late_field(0)
    k = base.cell_key(Cfg(), "cell", {"a": "unused by the cell"}, lr=0.1)
    assert "a" not in k["config"] and k["config"]["width"] == 16 and k["lr"] == 0.1
    assert base.cell_key(Cfg(new=2), "cell", {"a": "x"}, lr=0.1) != k
    assert base.cell_key(Cfg(a=5), "cell", {"a": "x"}, lr=0.1) == k
    with pytest.raises(ValueError, match="not fields"):
        base.cell_key(Cfg(), "cell", {"b": "typo"})
    with pytest.raises(ValueError, match="need a reason"):
        base.cell_key(Cfg(), "cell", {"a": " "})
    with pytest.raises(ValueError, match="may not be named"):
        base.cell_key(Cfg(), "cell", {}, config=1)


def test_cached_cells_computes_only_the_missing_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    import numpy as np
    calls = []

    def fn(x):
        calls.append(x)
        return {"v": np.array(x * 2.0)}
    items = [({"part": "c", "x": x}, fn, (x,)) for x in (1, 2)]
    first = base.cached_cells("t_cells", "v1", items, True, 1)
    assert [float(h["v"]) for h in first] == [2.0, 4.0] and calls == [1, 2]
    more = items + [({"part": "c", "x": 3}, fn, (3,))]
    again = base.cached_cells("t_cells", "v1", more, True, 1)
    assert [float(h["v"]) for h in again] == [2.0, 4.0, 6.0] and calls == [1, 2, 3]
