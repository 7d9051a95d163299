"""One parallel map, local or Dask (issue 35): ``base.parallel_map`` runs here, on local
processes or on a Dask scheduler, chosen by ``base.workers`` (the command line's
``--jobs N`` / ``--dask ADDRESS``); a seeded experiment's tables are the same wherever
its cells ran."""
import numpy as np
import pandas as pd
import pytest

from transfer_nb.experiments import base, zoo
from transfer_nb.experiments import regression as R
from transfer_nb.experiments._cli import experiment_main


def _square_plus(x, y):
    return x * x + y


def test_parallel_map_keeps_call_order_here_and_on_processes():
    calls = [(x, 1) for x in range(7)]
    want = [x * x + 1 for x in range(7)]
    assert base.parallel_map(_square_plus, calls) == want
    assert base.parallel_map(_square_plus, calls, 2) == want
    with base.workers(jobs=2):
        assert base.parallel_width(1) == 2 and not base.on_dask()
        assert base.parallel_map(_square_plus, calls, 1) == want
    assert base.parallel_width(3) == 3            # the block is closed again


def test_workers_refuses_both_or_a_bad_count():
    with pytest.raises(ValueError, match="not both"):
        with base.workers(jobs=2, dask="tcp://x:1"):
            pass
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="whole number >= 1"):
            with base.workers(jobs=bad):
                pass


def test_cli_refuses_jobs_and_dask_together_and_a_zero_count(capsys):
    with pytest.raises(SystemExit):
        experiment_main("regression", ["--jobs", "2", "--dask", "tcp://x:1"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        experiment_main("regression", ["--jobs", "0"])
    assert "--jobs must be at least 1" in capsys.readouterr().err


def _tiny():
    """The regression tests' tiny run, with a two-value recipe grid (a recipe chosen)."""
    from tests.test_experiment_regression import _tiny_config
    return zoo.replace(_tiny_config(), lr_grid=(0.003, 0.01))


def _same(a: pd.DataFrame, b: pd.DataFrame, name: str):
    """Equal tables, cell for cell, but the wall-clock columns (``time_*``)."""
    keep = [c for c in a.columns if not c.startswith("time_")]
    assert list(a.columns) == list(b.columns), name
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True, obj=name)


def test_a_run_on_a_dask_cluster_gives_the_serial_tables(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    cfg = _tiny()
    serial = R.run(cfg, progress=False, use_cache=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with base.workers(dask=cluster.scheduler_address):
            assert base.on_dask()
            on_dask = R.run(cfg, progress=False, use_cache=False)
    assert on_dask.meta["jobs"] == "dask" and serial.meta["jobs"] == 1
    assert len(serial.table) == 3 * 2 and np.isfinite(serial.table["mse"]).all()
    _same(serial.table, on_dask.table, "table")
    assert sorted(serial.tables) == sorted(on_dask.tables)
    for name in serial.tables:
        _same(serial.tables[name], on_dask.tables[name], name)
