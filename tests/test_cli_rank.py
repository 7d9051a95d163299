"""Tests for ``transfer-nb rank``: the printed ranking, the CSV, exit codes 0 and 2."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from transfer_nb.cli import main, rank_table
from transfer_nb.data import load_dataset
from transfer_nb.selection import score_models

MODELS = "efficientnet_lite0,efficientnet_lite1"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An image folder: 3 digit classes, 12 PNGs each (8x8 grey)."""
    root = tmp_path_factory.mktemp("images")
    digits = load_dataset("digits", split="all", seed=0)
    for label in (0, 1, 7):
        (root / f"digit_{label}").mkdir()
        idx = np.flatnonzero(digits.targets == label)[:12]
        images = digits.tensors(idx)[0][:, 0].numpy()  # grey, in [0, 1]
        for i, pixels in zip(idx, images):
            Image.fromarray((pixels * 255).round().astype(np.uint8)).save(
                root / f"digit_{label}" / f"{i}.png")
    return root


def test_rank_prints_ranking_and_writes_csv(folder, tmp_path, capsys):
    out = tmp_path / "ranking.csv"
    args = ["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
            "--estimators", "transrate,leep", "--ground-truth", "linear_probe",
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    csv = pd.read_csv(out, index_col="model")
    assert sorted(csv.index) == sorted(MODELS.split(","))
    assert {"layer", "width", "transrate", "leep", "accuracy", "transrate_seconds",
            "extract_seconds"} <= set(csv.columns)
    # the same numbers as the Python API on the same folder
    table = score_models(MODELS.split(","), folder, estimators=["transrate", "leep"],
                         ground_truth="linear_probe", image_size=32, device="cpu")
    for col in ("width", "n_train", "transrate", "leep", "accuracy"):
        np.testing.assert_allclose(csv.loc[table.index, col].to_numpy(float),
                                   table[col].to_numpy(float), rtol=1e-9)
    # printed best first by TransRate, with a rank column and without the timings
    best = table["transrate"].idxmax()
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "layer"])
    assert lines[header + 2].split()[:2] == [best, "1"]
    assert "seconds" not in lines[header]
    assert f"wrote {out}" in printed


def test_rank_table_orders_by_first_score():
    table = pd.DataFrame({"layer": ["p", "p", "p"], "logme": [0.2, 0.5, np.nan],
                          "logme_seconds": [1.0, 1.0, 1.0], "note": ["", "", ""]},
                         index=pd.Index(["a", "b", "c"], name="model"))
    ranked = rank_table(table)
    assert list(ranked.index) == ["b", "a", "c"]
    assert list(ranked.columns) == ["rank", "layer", "logme"]
    assert ranked["rank"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("extra, message", [
    (["--models", "no_such_model"], "unknown model 'no_such_model'"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--test-data", "/no/such/folder"], "does not exist"),
    (["--ground-truth", "guess"], "invalid choice: 'guess'"),
    (["--jobs", "0"], "n_jobs must be"),
    (["--jobs", "two"], "invalid int value: 'two'"),
    (["--estimators", "bogus"], "unknown estimator 'bogus'"),
    (["--models", ","], "--models is empty"),
    (["--scheduler", "tcp://x:1", "--backend", "loky"], "cannot go with --backend loky"),
])
def test_bad_arguments_exit_2_with_one_line(folder, capsys, extra, message):
    args = ["rank", "--data", str(folder), "--models", "efficientnet_lite0"]
    with_extra = args + extra  # a later --models / --data wins
    try:
        code = main(with_extra)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert err.startswith("transfer-nb rank: error:")


def test_missing_required_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["rank", "--models", "efficientnet_lite0"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "required: --data" in err and len(err.splitlines()) == 1


def test_score_layers_and_score_models_read_a_folder_path(folder):
    from tests.test_score_models import Net
    from transfer_nb.selection import score_layers

    model = Net(0, "imagenet")
    data = load_dataset("folder", root=folder, split="train", image_size=12,
                        normalize="imagenet")
    by_path = score_layers(model, str(folder), layers=["conv", "penultimate"], image_size=12)
    by_dataset = score_layers(model, data, layers=["conv", "penultimate"], test_data=data)
    pd.testing.assert_frame_equal(by_path, by_dataset)
    row = score_models([model], folder, estimators=["transrate"], image_size=12,
                       device="cpu", cache=False)
    assert row.loc["Net", "transrate"] == pytest.approx(by_path.loc["penultimate", "transrate"],
                                                        rel=1e-9)
