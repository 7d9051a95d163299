"""The ``transfer-nb`` console script: listing and executing notebooks."""
import nbformat
import pytest

from transfer_nb import cli


def test_run_executes_notebooks_and_writes_html(tmp_path, capsys):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(good, nb_dir / "01_good.ipynb")
    nbformat.write(bad, nb_dir / "02_bad.ipynb")
    out = tmp_path / "build"
    code = cli.main(["run", "--notebooks", str(nb_dir), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1  # one notebook failed
    assert "01_good.ipynb" in text and "ok" in text
    assert "02_bad.ipynb" in text and "FAILED" in text and "ZeroDivisionError" in text
    executed = nbformat.read(out / "01_good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "42"
    assert (out / "01_good.html").read_text().count("42") >= 1
    assert (out / "02_bad.html").exists()


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])


def test_list_commands_say_what_works_offline(capsys):
    assert cli.main(["list-datasets"]) == 0
    datasets = capsys.readouterr().out.splitlines()
    assert any(line.startswith("digits") and "offline" in line for line in datasets)
    assert any(line.startswith("cifar10 ") and "online" in line for line in datasets)
    assert cli.main(["list-models"]) == 0
    models = capsys.readouterr().out.splitlines()
    assert any(line.startswith("efficientnet_lite0") and "offline" in line for line in models)
