"""``transfer-nb run``'s engine: the kernel over IPC, nothing printed but the run's own lines."""
import json

import nbformat

from transfer_nb.cli.notebook_exec import execute_notebook

TRANSPORT_CELL = (
    "import json\nfrom ipykernel.connect import get_connection_info\n"
    "print('TRANSPORT=' + json.loads(get_connection_info())['transport'])"
)


def test_kernel_runs_over_ipc_and_prints_nothing_to_the_terminal(tmp_path, capfd):
    src = tmp_path / "nbs"
    src.mkdir()
    out = tmp_path / "build"
    out.mkdir()
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TRANSPORT_CELL)])
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(good, src / "good.ipynb")
    nbformat.write(bad, src / "bad.ipynb")

    ok = execute_notebook(src / "good.ipynb", out, timeout=120)
    failed = execute_notebook(src / "bad.ipynb", out, timeout=120)

    # fd-level capture: the kernel subprocess writes to this process's stdout/stderr
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "", (captured.out, captured.err)
    assert ok["ok"] and ok["error"] is None and ok["name"] == "good.ipynb"
    executed = nbformat.read(out / "good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "TRANSPORT=ipc"
    # the failing notebook: one plain line (no colour codes), still written out
    assert not failed["ok"]
    assert failed["error"] == "ZeroDivisionError: division by zero"
    assert (out / "bad.html").exists()
    assert json.loads((out / "bad.ipynb").read_text())["cells"][0]["outputs"]
    # the sockets lived in a private temporary folder, not next to the notebooks
    assert sorted(p.name for p in src.iterdir()) == ["bad.ipynb", "good.ipynb"]
