"""The IPython magics, run in IPython's own shell with the output captured."""
import re

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import transfer_nb as tnb


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

    code = ("import sys, transfer_nb, transfer_nb.cli.magics, transfer_nb.selection, transfer_nb.stats, "
            "transfer_nb.plots, transfer_nb.experiments.transrate; "
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
                                   "--layers blocks.1,blocks.2,blocks.3 --n 60 --image-size 32 "
                                   "--probe -o tr_table")
    out = capsys.readouterr().out
    table = ip.user_ns["tr_table"]
    assert list(table.index) == ["blocks.1", "blocks.2", "blocks.3"]
    for layer in table.index:  # layer, depth, width, TransRate, accuracy
        assert re.search(rf"^{re.escape(layer)}\s+\d\s+\d+\s+-?\d+\.\d{{4}}\s+\d\.\d{{4}}$",
                         out, re.M)
    assert "Highest TransRate" in out and "Kendall tau" in out and "bootstrap" in out
    # the printed numbers are those of the library on the same features: TransRate on
    # the 60 training images, the probe scored on 60 images of the test split
    from transfer_nb.cli.magics import _MODEL_CACHE
    from transfer_nb.training.transfer import linear_probe
    model = _MODEL_CACHE["efficientnet_lite0"]  # what the magic loaded (saves a reload)
    layers = ["blocks.1", "blocks.2", "blocks.3"]
    data = tnb.load_dataset("digits", n=60, image_size=32, normalize=model.transfer_nb_normalize)
    test = tnb.load_dataset("digits", split="test", n=60, image_size=32,
                            normalize=model.transfer_nb_normalize)
    feats = tnb.extract_features(model, data, layers=layers, progress=False)
    test_feats = tnb.extract_features(model, test, layers=layers, progress=False)
    expected = tnb.transrate_per_layer(feats, data.targets)
    np.testing.assert_allclose(table["transrate"].values, expected.values, rtol=1e-6)
    for layer in layers:
        assert table.loc[layer, "accuracy"] == pytest.approx(linear_probe(
            feats[layer], data.targets, test_feats[layer], test.targets, seed=0))
    assert list(table["depth"]) == [1, 2, 3]
    from scipy import stats
    r = stats.pearsonr(table["transrate"], table["accuracy"])[0]
    assert f"Pearson r = {r:.3f} [" in out and "over 3 layers" in out
    assert list(table["width"]) == [feats[k].shape[1] for k in layers]
    assert plt.get_fignums(), "the magic should have drawn a figure"
    plt.close("all")


def test_transrate_errors_are_usage_errors(ip):
    with pytest.raises(UsageError, match="no_such_model"):
        ip.run_line_magic("transrate", "--model no_such_model --no-plot")
    with pytest.raises(UsageError, match="no_such_data"):
        ip.run_line_magic("transrate", "--data no_such_data --n 20 --image-size 32 --no-plot")
    with pytest.raises(UsageError, match="layer"):
        ip.run_line_magic("transrate", "--layers , --n 20 --image-size 32 --no-plot")


def test_transrate_adapts_n_to_a_small_folder(ip, capsys, tmp_path):
    """issue 37 point 8: %transrate --data my_images/ on a folder of fewer than 200."""
    from PIL import Image

    digits = tnb.load_dataset("digits", split="all", seed=0)
    for label in (0, 1):
        (tmp_path / f"d{label}").mkdir()
        idx = np.flatnonzero(digits.targets == label)[:15]
        for i, pixels in zip(idx, digits.tensors(idx)[0][:, 0].numpy()):
            Image.fromarray((pixels * 255).round().astype(np.uint8)).save(
                tmp_path / f"d{label}" / f"{i}.png")
    ip.run_line_magic("transrate", f"--data {tmp_path} --layers blocks.1 --image-size 16 "
                                   "--no-plot -o small_table")
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("every image, 16 px")
    assert out[1] == "(the folder holds 30 images, fewer than 200: every one of them is used)"
    assert np.isfinite(ip.user_ns["small_table"].loc["blocks.1", "transrate"])
