"""The IPython magics, run in IPython's own shell with the output captured."""
import re

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import transfer_nb as tnb
from transfer_nb.toy import stratified_split


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "transfer_nb")
    return shell


def test_magics_are_registered(ip):
    line_magics = ip.magics_manager.magics["line"]
    for name in ("transrate", "transfer_nb_datasets", "transfer_nb_models"):
        assert name in line_magics


def test_transfer_nb_never_imports_ipywidgets():
    import subprocess
    import sys

    code = ("import sys, transfer_nb, transfer_nb.magics, transfer_nb.toy; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_datasets_and_models(ip, capsys):
    ip.run_line_magic("transfer_nb_datasets", "")
    out = capsys.readouterr().out
    assert re.search(r"^digits\s+yes\s+\S", out, re.M)
    assert re.search(r"^cifar10\s+no\b", out, re.M)
    for name in tnb.list_datasets():
        assert name in out
    ip.run_line_magic("transfer_nb_models", "")
    out = capsys.readouterr().out
    assert re.search(r"^efficientnet_lite0\s+yes\s+EfficientNet", out, re.M)
    for name in tnb.list_models():
        assert name in out


def test_transrate_prints_table_and_stores_result(ip, capsys):
    import matplotlib.pyplot as plt

    plt.close("all")
    ip.run_line_magic("transrate", "--model efficientnet_lite0 --data digits "
                                   "--layers blocks.1,blocks.2 --n 60 --image-size 32 "
                                   "--probe -o tr_table")
    out = capsys.readouterr().out
    table = ip.user_ns["tr_table"]
    assert list(table.index) == ["blocks.1", "blocks.2"]
    for layer in table.index:
        assert re.search(rf"^{re.escape(layer)}\s+\d+\s+-?\d+\.\d{{4}}", out, re.M)
    assert "Highest TransRate" in out and "Kendall tau" in out
    assert ((table["probe_accuracy"] >= 0) & (table["probe_accuracy"] <= 1)).all()
    # the printed numbers are TransRate of the library on the same features
    from transfer_nb.magics import _MODEL_CACHE
    model = _MODEL_CACHE["efficientnet_lite0"]  # what the magic loaded (saves a reload)
    data = tnb.load_dataset("digits", n=60, image_size=32, normalize=model.transfer_nb_normalize)
    feats = tnb.extract_features(model, data, layers=["blocks.1", "blocks.2"], progress=False)
    # with --probe, TransRate is computed on the training part of the split
    train, _ = stratified_split(data.targets, test_size=0.3, seed=0)
    expected = tnb.transrate_per_layer({k: v[train] for k, v in feats.items()},
                                       data.targets[train])
    np.testing.assert_allclose(table["transrate"].values, expected.values, rtol=1e-6)
    assert plt.get_fignums(), "the magic should have drawn a figure"
    plt.close("all")


def test_transrate_errors_are_usage_errors(ip):
    with pytest.raises(UsageError, match="no_such_model"):
        ip.run_line_magic("transrate", "--model no_such_model --no-plot")
    with pytest.raises(UsageError, match="no_such_data"):
        ip.run_line_magic("transrate", "--data no_such_data --n 20 --image-size 32 --no-plot")
    with pytest.raises(UsageError, match="layer"):
        ip.run_line_magic("transrate", "--layers , --n 20 --image-size 32 --no-plot")
