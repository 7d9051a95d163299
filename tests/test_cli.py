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


# ------------------------------------------------------------- which notebooks `run` runs
def _fake_runner(monkeypatch):
    seen = []

    def fake_run(notebooks, out, timeout=1800):
        seen.append([p.name for p in notebooks])
        return [{"name": p.name, "ok": True, "seconds": 0.0, "error": None}
                for p in notebooks]

    monkeypatch.setattr(cli, "run_notebooks", fake_run)
    return seen


def _notebooks(folder, *names):
    folder.mkdir()
    for name in names:
        nbformat.write(nbformat.v4.new_notebook(), folder / name)
    return folder


def test_run_honours_only_and_says_when_it_matches_nothing(tmp_path, monkeypatch, capsys):
    seen = _fake_runner(monkeypatch)
    nb_dir = _notebooks(tmp_path / "nbs", "00_quickstart.ipynb", "01_coding_rate.ipynb",
                        "02_transrate.ipynb")
    base = ["run", "--notebooks", str(nb_dir), "--out", str(tmp_path / "b")]
    assert cli.main(base + ["--only", "00", "02"]) == 0
    assert seen == [["00_quickstart.ipynb", "02_transrate.ipynb"]]
    capsys.readouterr()
    assert cli.main(base + ["--only", "99"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"transfer-nb run: error: --only 99 matches no notebook in {nb_dir} "
                   "(there: 00_quickstart, 01_coding_rate, 02_transrate)")
    assert len(seen) == 1  # nothing ran


def test_run_outside_a_checkout_runs_the_shipped_tutorials(tmp_path, monkeypatch, capsys):
    seen = _fake_runner(monkeypatch)
    shipped = _notebooks(tmp_path / "shipped", "00_quickstart.ipynb", "01_coding_rate.ipynb")
    monkeypatch.setattr(cli, "tutorials_dir", lambda: shipped)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no ./notebooks here
    assert cli.main(["run", "--only", "00", "--out", "runout"]) == 0
    assert seen == [["00_quickstart.ipynb"]]
    assert f"from {shipped} in" in capsys.readouterr().out
    # a ./notebooks folder with notebooks wins over the shipped ones
    _notebooks(elsewhere / "notebooks", "00_mine.ipynb")
    assert cli.main(["run", "--out", "runout"]) == 0
    assert seen[-1] == ["00_mine.ipynb"]
    # an install without tutorials is one line, exit 2
    monkeypatch.chdir(tmp_path)

    def missing():
        raise FileNotFoundError("no tutorial notebooks in X; reinstall transfer-nb")

    monkeypatch.setattr(cli, "tutorials_dir", missing)
    capsys.readouterr()
    assert cli.main(["run"]) == 2
    assert capsys.readouterr().err.strip() == ("transfer-nb run: error: no tutorial notebooks "
                                               "in X; reinstall transfer-nb")


def test_run_inside_copied_tutorials_runs_the_copies(tmp_path, monkeypatch, capsys):
    """issue 37 point 5: `transfer-nb tutorials DIR`, edit, `cd DIR && transfer-nb run`."""
    seen = []

    def fake_run(notebooks, out, timeout=1800):
        seen.append([str(p) for p in notebooks])
        return [{"name": p.name, "ok": True, "seconds": 0.0, "error": None}
                for p in notebooks]

    monkeypatch.setattr(cli, "run_notebooks", fake_run)
    shipped = _notebooks(tmp_path / "shipped", "00_quickstart.ipynb", "01_coding_rate.ipynb")
    monkeypatch.setattr(cli, "tutorials_dir", lambda: shipped)
    mine = tmp_path / "my_tutorials"
    assert cli.main(["tutorials", str(mine)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"edit them in JupyterLab, then run your copies: cd {mine} && transfer-nb run --only 00")
    monkeypatch.chdir(mine)
    assert cli.main(["run", "--only", "00"]) == 0
    assert seen == [[str(mine / "00_quickstart.ipynb")]]
    assert f"executing 1 notebook(s) from {mine} in" in capsys.readouterr().out


def test_docs_writes_the_sources_and_says_how_to_build(tmp_path, monkeypatch, capsys):
    """issue 37 point 6: `transfer-nb docs DIR` (the build itself: test_wheel_install)."""
    from transfer_nb.cli import docs as _docs_cli

    monkeypatch.setattr(_docs_cli, "missing_for_build", lambda: ["sphinx", "myst_nb"])
    dest = tmp_path / "site"
    assert cli.main(["docs", str(dest)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert (dest / "source" / "docs" / "index.md").is_file()
    assert (dest / "source" / "docs" / "conf.py").is_file()
    notebooks = sorted(p.name for p in (dest / "source" / "notebooks").glob("*.ipynb"))
    assert notebooks == sorted(p.name for p in cli.tutorials_dir().glob("*.ipynb"))
    assert out[-1] == (f"to build the HTML site offline: pip install 'transfer-nb[docs]' "
                       f"(missing: sphinx, myst_nb), then run transfer-nb docs {dest} again")
    # a second run rewrites its own folder; a folder of other files is refused, one line
    assert cli.main(["docs", str(dest), "--no-build"]) == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    capsys.readouterr()
    assert cli.main(["docs", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"transfer-nb docs: error: docs destination {str(other)!r} holds other files; "
        "expected a new or empty folder (or one transfer-nb docs wrote before)")
