"""Execute one notebook headless and write it next to its HTML: the engine of ``transfer-nb run``.

The kernel talks to this process over ZeroMQ IPC sockets (files in a private temporary
folder) instead of TCP on localhost: nothing is exposed on a port, and ipykernel has no
reason to print its "Kernel is running over TCP without encryption" warning, so the
main job's log holds only what ``transfer-nb run`` itself prints.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

__all__ = ["execute_notebook"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colour codes of IPython's tracebacks


def _first_line_of_error(exc: BaseException) -> str:
    """The last line of a cell error (``ZeroDivisionError: division by zero``)."""
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[-1] if text else repr(exc)


def execute_notebook(path: Path, out: Path, timeout: int = 1800) -> dict:
    """Execute the notebook ``path``; write the executed ``.ipynb`` and ``.html`` to ``out``.

    The kernel (``python3``) runs in the notebook's folder, over IPC transport. A failing
    notebook is written too, up to its failing cell, so that it can be inspected.

    Parameters
    ----------
    path : pathlib.Path
        The notebook to execute.
    out : pathlib.Path
        Existing folder for the executed notebook and its HTML.
    timeout : int
        Seconds one cell may run before the notebook counts as failed.

    Returns
    -------
    dict
        ``{"name", "ok", "seconds", "error"}``; ``error`` is ``None`` or one line.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tnb-kernel-") as sockets:
        config = Config()
        config.KernelManager.transport = "ipc"
        # absolute, short (a Unix socket path has ~100 characters): <tmp>/k-<port>
        config.KernelManager.ip = str(Path(sockets) / "k")
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except CellExecutionError as exc:  # keep the partial notebook, report the first line
            error = _first_line_of_error(exc)
        except Exception as exc:  # kernel died, timeout ...
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
    nbformat.write(nb, out / path.name)
    body, _ = HTMLExporter().from_notebook_node(nb)
    (out / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return {"name": path.name, "ok": error is None, "seconds": seconds, "error": error}
