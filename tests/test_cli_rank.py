"""Tests for ``transfer-nb rank``: the printed ranking, the CSV, exit codes 0 and 2."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from transfer_nb.cli.rank import in_cli_terms
from transfer_nb.cli import main, rank_table
from transfer_nb.data import load_dataset
from transfer_nb.selection import score_models
from transfer_nb.selection.report import SCORE_MEANINGS

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
    header = next(i for i, line in enumerate(lines)
                  if line.split()[:2] == ["rank", "image_size"])
    assert lines[header + 2].split()[:2] == [best, "1"]
    assert "seconds" not in lines[header]
    assert f"wrote {out} (2 models, every column)" in printed
    # the output says how to read it: the sort column and direction, each column's meaning
    assert lines[header - 1].startswith("2 models ranked by transrate (the first estimator; "
                                        "--sort-by picks another column; higher is better), "
                                        "27 images scored, 3 classes, 9 held out")
    assert "what the columns mean (higher is better):" in printed
    assert "  " + SCORE_MEANINGS["transrate"] in lines and "  " + SCORE_MEANINGS["leep"] in lines
    assert "  (accuracy: linear_probe on the held-out images)" in lines


def test_rank_table_orders_by_first_score():
    table = pd.DataFrame({"layer": ["p", "p", "p"], "logme": [0.2, 0.5, np.nan],
                          "logme_seconds": [1.0, 1.0, 1.0], "note": ["", "", ""]},
                         index=pd.Index(["a", "b", "c"], name="model"))
    ranked = rank_table(table)
    assert list(ranked.index) == ["b", "a", "c"]
    assert list(ranked.columns) == ["rank", "layer", "logme"]
    assert ranked["rank"].tolist()[:2] == [1, 2] and pd.isna(ranked["rank"].iloc[2])


@pytest.mark.parametrize("extra, message", [
    (["--models", "no_such_model"], "unknown model 'no_such_model'"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--test-data", "/no/such/folder"], "does not exist"),
    (["--ground-truth", "guess"], "invalid choice: 'guess'"),
    (["--jobs", "0"], "--jobs must be 1 or more, got 0"),
    (["--image-size", "0"], "--image-size must be 1 or more, got 0"),
    (["--sort-by", "bogus"], "--sort-by 'bogus' is not a column of this ranking"),
    (["--sort-by", "accuracy"], "--sort-by 'accuracy' is not a column"),  # no ground truth
    (["--evaluate"], "--evaluate compares the estimators with a ground truth: add "
                     "--ground-truth"),
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
    # without a ground truth every image of the folder is scored, as of the dataset
    data = load_dataset("folder", root=folder, split="all", image_size=12,
                        normalize="imagenet")
    by_path = score_layers(model, str(folder), layers=["conv", "penultimate"], image_size=12,
                           progress=False)
    by_dataset = score_layers(model, data, layers=["conv", "penultimate"], progress=False)
    pd.testing.assert_frame_equal(by_path, by_dataset)
    row = score_models([model], folder, estimators=["transrate"], image_size=12,
                       device="cpu", cache=False)
    assert row.loc["Net", "transrate"] == pytest.approx(by_path.loc["penultimate", "transrate"],
                                                        rel=1e-9)


# ------------------------------------------------------------ failures that lose nothing
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The README's example offline: torchvision weights not cached, host unreachable."""
    from transfer_nb.models import zoo
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("TRANSFER_NB_OFFLINE", raising=False)
    monkeypatch.setattr(zoo, "_host_reachable", lambda host, *a, **k: False)


def test_an_unavailable_model_is_a_warning_line_and_the_others_are_saved(
        folder, tmp_path, capsys, offline):
    out = tmp_path / "ranking.csv"
    code = main(["rank", "--data", str(folder), "--models", "efficientnet_lite0,resnet18",
                 "--image-size", "32", "--estimators", "transrate,logme", "--device", "cpu",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert warnings == [
        "transfer-nb rank: warning: resnet18 was not scored: "
        "pretrained weights for 'resnet18' could not be fetched (download.pytorch.org is "
        "unreachable); models that work offline: efficientnet_lite0, efficientnet_lite1, "
        "efficientnet_lite2"]
    assert "Traceback" not in captured.err
    assert "1 model ranked by transrate" in captured.out
    csv = pd.read_csv(out, index_col="model")
    assert list(csv.index) == ["efficientnet_lite0"] and np.isfinite(csv["transrate"]).all()


def test_no_model_scored_is_one_line_and_exit_2(folder, capsys, offline):
    code = main(["rank", "--data", str(folder), "--models", "resnet18", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("transfer-nb rank: error: no model could be scored: 'resnet18': "
                              "pretrained weights for 'resnet18' could not be fetched")
    assert not any("Traceback" in line for line in err)


# --------------------------------------------------------------- data checks first
def test_a_class_with_one_image_is_named(folder, tmp_path, capsys):
    import shutil
    small = tmp_path / "small"
    shutil.copytree(folder, small)
    (small / "rocket").mkdir()
    shutil.copy(next((small / "digit_0").glob("*.png")), small / "rocket" / "r.png")
    code = main(["rank", "--data", str(small), "--models", "efficientnet_lite0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err == (f"transfer-nb rank: error: 1 problem in {str(small)!r}: class 'rocket' has "
                   "1 image: at least 2 images per class are needed; fix them, or leave a "
                   "class out with --drop-class NAME")


def test_skip_bad(folder, tmp_path, capsys):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "digit_1" / "bad.png").write_bytes(b"\x89PNG truncated")
    args = ["rank", "--data", str(broken), "--models", "efficientnet_lite0", "--image-size",
            "32", "--estimators", "transrate", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.png" in err and "pass --skip-bad to leave unreadable files out" in err
    assert len(err.splitlines()) == 1
    assert main(args + ["--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "36 images scored" in captured.out
    # the help promises a warning: one line, the count and the path, however often the
    # folder was read
    assert [line for line in captured.err.splitlines() if "warning" in line] == [
        f"transfer-nb rank: warning: skipped 1 unreadable image file in {str(broken)!r}: "
        f"{str(broken / 'digit_1' / 'bad.png')!r}"]


def test_sort_by_another_column(folder, capsys):
    args = ["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
            "--estimators", "transrate,logme", "--device", "cpu"]
    assert main(args + ["--sort-by", "logme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 models ranked by logme (--sort-by; higher is better)")
    table = score_models(MODELS.split(","), folder, estimators=["transrate", "logme"],
                         image_size=32, device="cpu", progress=False)
    assert lines[3].split()[:2] == [table["logme"].idxmax(), "1"]


def test_evaluate_with_three_models_is_one_sentence_and_wide_adds_the_table(folder, capsys):
    """issue 37 point 1 through the CLI: 3 models crown nothing, one sentence; --wide adds
    every column; the next step asks for models."""
    args = ["rank", "--data", str(folder), "--models",
            "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2", "--image-size", "32",
            "--estimators", "transrate,logme,hscore", "--ground-truth", "linear_probe",
            "--evaluate", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    section = out.split("evaluation against the ground truth (linear_probe): ")[1]
    assert section.splitlines()[0].startswith(
        "3 models are too few to evaluate the estimators: a correlation needs at least 5 "
        "(with 4 the smallest two-sided permutation p is 0.083)")
    assert "best" not in section and "weighted_tau_low" not in out
    assert out.strip().splitlines()[-1].startswith("next step: add models: with 3 models")
    assert main(args + ["--wide"]) == 0
    wide = capsys.readouterr().out.split("every column of the evaluation (--wide):")[1]
    assert "weighted_tau_low" in wide and "loo_min" in wide
    assert main(args[:-3] + ["--wide", "--device", "cpu"]) == 2  # --wide without --evaluate
    assert "--wide widens the table of --evaluate: add --evaluate" in capsys.readouterr().err


def test_evaluate_table_is_narrow_and_leaves_hscore_out(capsys, monkeypatch):
    """The narrow table from a scored table of 8 models (score_models stubbed): one row
    per column with its interval and verdict, H-score at K - 1 left out with the reason."""
    from transfer_nb import selection
    from tests.test_evaluation import _zoo

    table = _zoo().assign(n_train=400, width=1280, layer="penultimate", note="")
    table.attrs.update(ground_truth="linear_probe", estimators=["transrate", "logme", "hscore"],
                       failed={})
    monkeypatch.setattr(selection, "score_models", lambda *a, **k: table)
    assert main(["rank", "--data", "digits", "--models", ",".join(["efficientnet_lite0"]),
                 "--ground-truth", "linear_probe", "--evaluate"]) == 0
    out = capsys.readouterr().out
    section = out.split("how well each column ranks the models like the ground truth "
                        "(linear_probe), Kendall tau with its 95% bootstrap interval:")[1]
    lines = section.strip().splitlines()
    assert lines[0].split() == ["column", "kendall", "[95%", "interval]", "verdict"]
    hs = next(line for line in lines if line.startswith("hscore"))
    assert hs.split()[1] == "-" and hs.endswith("left out: at its bound K - 1 = 4 for every item")
    assert max(len(line) for line in lines[:5]) < 100
    conclusion = next(line for line in lines if line.startswith("conclusion: "))
    assert "hscore" not in conclusion.split(":")[1].split(" ")[1]  # never the winner


def test_device_message_in_cli_terms(folder, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    code = main(["rank", "--data", str(folder), "--models", "efficientnet_lite0",
                 "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        "transfer-nb rank: error: --device cuda: CUDA is not available on this machine; use "
        "--device cpu, or leave --device out")


def test_messages_use_the_command_line_names():
    assert in_cli_terms("n_jobs must be an int >= 1") == "--jobs must be an int >= 1"
    assert in_cli_terms("image_size must be positive") == "--image-size must be positive"
    assert in_cli_terms("a smaller image size is faster (image_size=64)") == \
        "a smaller image size is faster (--image-size 64)"
    assert in_cli_terms("remove it or pass skip_bad=True to leave it out") == \
        "remove it or pass --skip-bad to leave it out"
    assert in_cli_terms("give a separate\n held-out set (test_data)") == \
        "give a separate held-out set (--test-data)"


def test_help_explains_the_columns_without_markup(capsys):
    with pytest.raises(SystemExit):
        main(["rank", "--help"])
    text = capsys.readouterr().out
    assert "columns (higher is better for every estimator):" in text
    assert "exit status: 0 when at least one model was scored" in text
    for flag in ("--sort-by", "--skip-bad", "--evaluate", "--image-size", "--jobs"):
        assert flag in text
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text


def test_rank_with_etran_and_ncti(folder, tmp_path, capsys):
    out = tmp_path / "frontier.csv"
    args = ["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
            "--estimators", "etran,ncti", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("2 models ranked by etran")
    assert SCORE_MEANINGS["ncti"] in printed
    csv = pd.read_csv(out, index_col="model")
    table = score_models(MODELS.split(","), folder, estimators=["etran", "ncti"],
                         image_size=32, device="cpu", progress=False)
    for col in ("etran", "ncti"):
        np.testing.assert_allclose(csv.loc[table.index, col].to_numpy(float),
                                   table[col].to_numpy(float), rtol=1e-9)


# ------------------------------------------------------------------ issue 37, points 3-4
def test_image_size_notes_say_a_faster_size_is_another_experiment(folder, capsys):
    """The 8 px images enlarged to 32 px: the note offers 8 px as a separate, faster run
    whose ranking can differ, and --image-size itself is named as not the models' own."""
    args = ["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
            "--estimators", "transrate", "--device", "cpu"]
    assert main(args) == 0
    notes = capsys.readouterr().out.split("notes:")[1].splitlines()
    assert "  - efficientnet_lite0: images upsampled 4.0x (8 -> 32 px); a separate run at " \
           "--image-size 8 is faster, but scores at different image sizes are not " \
           "comparable and its ranking can differ" in notes
    assert "  - --image-size 32 is not the models' own resolution (efficientnet_lite0 224 " \
           "px, efficientnet_lite1 240 px): scores at different image sizes are not " \
           "comparable, and a run without --image-size (each model at its own resolution, " \
           "the papers' protocol) can rank them differently" in notes
    assert not any("smaller image size is faster" in line for line in notes)


def test_every_ranking_ends_with_a_next_step(folder, capsys):
    args = ["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
            "--estimators", "transrate", "--device", "cpu"]
    assert main(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ("next step: add models: with 2 models no ranking can be checked (at least "
                    "5: with 4 the smallest two-sided permutation p is 0.083; a correlation "
                    "of 0.5 needs about 16)")


def test_models_without_pretrained_weights_are_refused_in_cli_terms(folder, capsys):
    """issue 37 point 7: one line, exit 2, no Python advice; list-models says it too."""
    code = main(["rank", "--data", str(folder), "--models", "efficientnet_lite0,small_cnn"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        "transfer-nb rank: error: small_cnn has no pretrained weights (an architecture the "
        "tutorials train themselves; the command line does not train models): rank "
        "compares pretrained models, e.g. efficientnet_lite0, efficientnet_lite1, "
        "efficientnet_lite2 (transfer-nb list-models)")
    assert main(["list-models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    small = next(line for line in lines if line.startswith("small_cnn "))
    assert small.split()[1:3] == ["no", "weights"]
    # one column per field however long a name (timm:mobilenetv3_large_100)
    starts = {line.index(line.split("  ")[-1].strip()) for line in lines}
    assert len(starts) == 1


def test_every_problem_of_a_folder_at_once_and_drop_class(folder, tmp_path, capsys):
    """issue 37 point 9: an empty class, a one-image class and an unreadable file are one
    message; --drop-class leaves classes out (and --skip-bad the file)."""
    import shutil
    messy = tmp_path / "messy"
    shutil.copytree(folder, messy)
    (messy / "empty").mkdir()
    (messy / "rocket").mkdir()
    shutil.copy(next((messy / "digit_0").glob("*.png")), messy / "rocket" / "r.png")
    (messy / "digit_1" / "bad.png").write_bytes(b"\x89PNG truncated")
    args = ["rank", "--data", str(messy), "--models", "efficientnet_lite0", "--image-size",
            "32", "--estimators", "transrate", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"transfer-nb rank: error: 3 problems in {str(messy)!r}: class "
                          f"folder {str(messy / 'empty')!r} holds no image files")
    for part in (f"cannot read 1 image file: {str(messy / 'digit_1' / 'bad.png')!r}",
                 "pass --skip-bad to leave unreadable files out",
                 "class 'rocket' has 1 image: at least 2 images per class are needed",
                 "leave a class out with --drop-class NAME"):
        assert part in err
    assert main(args + ["--drop-class", "empty", "--drop-class", "rocket", "--skip-bad"]) == 0
    assert "36 images scored, 3 classes" in capsys.readouterr().out
    assert main(args + ["--drop-class", "rockets"]) == 2
    assert "--drop-class ['rockets'] is not a class of" in capsys.readouterr().err


def test_the_words_a_pip_user_reads(folder, tmp_path, capsys):
    """issue 37 point 10: help without placeholders, --version, no exception class names,
    the CSV note in the terminal's words, one precision per column."""
    import re

    from transfer_nb._version import __version__
    from transfer_nb.selection import MODEL_ESTIMATORS  # noqa: F401 - the defaults

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == \
        f"transfer-nb {__version__}"
    helps = {}
    for command in (["rank"], ["run"], ["tutorials"], ["list-models"], ["list-datasets"],
                    ["docs"]):
        with pytest.raises(SystemExit):
            main(command + ["--help"])
        helps[command[0]] = " ".join(capsys.readouterr().out.split())  # unwrapped
    for text in helps.values():
        for flag, meta in re.findall(r"--([a-z-]+) ([A-Z][A-Z_]+)\b", text):
            assert meta != flag.upper().replace("-", "_"), meta  # BATCH_SIZE, TIMEOUT
        assert "{threading,loky,dask}" not in text and "global generator" not in text
    assert "--batch-size N" in helps["rank"] and "(default 64)" in helps["rank"]
    assert "--timeout SECONDS" in helps["run"] and "(default 1800)" in helps["run"]
    assert "an hour per tutorial on 2 CPU cores" in helps["run"]
    assert "hscore); any of transrate, transrate_layerwise, transrate_projected, logme, " \
        "leep, nce, hscore, hscore_shrinkage, knn," in helps["rank"]
    assert "Inside DIR, `transfer-nb run` runs your copies." in helps["tutorials"]
    assert "no weights" in helps["list-models"]
    # the CSV says what the terminal says; one precision per column in the table
    out = tmp_path / "r.csv"
    assert main(["rank", "--data", str(folder), "--models", MODELS, "--image-size", "32",
                 "--estimators", "transrate,logme,leep", "--device", "cpu", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    notes = pd.read_csv(out, index_col="model")["note"]
    assert notes.str.contains("--image-size 8").all() and \
        not notes.str.contains("image_size=").any()
    header = next(i for i, line in enumerate(printed) if line.split()[:1] == ["rank"])
    rows = [line.split() for line in printed[header + 2:header + 4]]
    for k in range(3, 6):  # transrate, logme, leep: the same decimals in both rows
        decimals = {len(r[k].partition(".")[2]) for r in rows}
        assert len(decimals) == 1, rows


def test_dir_lists_each_name_once_and_pypi_lists_every_tutorial():
    from pathlib import Path

    import transfer_nb as tnb
    names = dir(tnb)
    assert len(names) == len(set(names)) and "score_models" in names
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "docs" / "PYPI.md").read_text()
    for nb in sorted((repo / "notebooks").glob("[0-9]*.ipynb")):
        assert f"`{nb.stem}`" in text, nb.stem
