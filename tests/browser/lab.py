"""Driving a notebook in JupyterLab, with every wait keyed on real state.

User actions go through the page as a student would do them (the Run menu, clicks, the
keyboard). Waits read JupyterLab's own models through ``window.jupyterapp`` (the server
runs with ``LabApp.expose_app_in_browser``): the notebook's panel found *by path*, its
kernel's connection and status, each code cell's execution count and outputs. There
is no fixed sleep: Playwright polls a predicate in the page, and a wait that times out
says what the state was.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

# The state of the notebook ``name`` as JupyterLab's models see it (JSON-able).
_STATE_JS = """
(name) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return {app: false};
  const main = Array.from(app.shell.widgets('main'));
  const panel = main.find(w => w.context && w.context.path === name) || null;
  const cur = app.shell.currentWidget;
  const s = {app: true, open: !!panel, current: cur && cur.context ? cur.context.path : null,
             tabs: main.map(w => w.title.label),
             documents: main.filter(w => w.context).map(w => w.context.path)};
  if (!panel) return s;
  const sc = panel.sessionContext;
  const k = sc.session ? sc.session.kernel : null;
  s.contextReady = panel.context.isReady;
  s.sessionReady = sc.isReady;
  s.kernel = k ? k.status : null;
  s.connection = k ? k.connectionStatus : null;
  const errorOf = (outputs) => {
    for (let i = 0; i < outputs.length; i++) {
      const o = outputs.get(i).toJSON();
      if (o.output_type === 'error') return `${o.ename}: ${o.evalue}`;
    }
    return null;
  };
  s.cells = panel.content.widgets.map(c => c.model.type !== 'code' ? {type: c.model.type} : {
    type: 'code',
    count: c.model.executionCount,
    outputs: c.model.outputs.length,
    running: c.model.executionState === 'running',
    error: errorOf(c.model.outputs),
  });
  return s;
}
"""

# Predicates over that state (``s``), evaluated in the page.
KERNEL_READY = (
    "s.open && s.current === name && s.contextReady && s.sessionReady "
    "&& s.kernel === 'idle' && s.connection === 'connected'"
)
CELLS_STARTED = "s.open && s.cells.some(c => c.type === 'code' && (c.running || c.count !== null))"
CELLS_DONE = (
    "s.open && s.kernel === 'idle' && s.connection === 'connected' "
    "&& s.cells.every(c => c.type !== 'code' || (c.count !== null && !c.running && c.outputs > 0))"
)
KERNEL_IDLE = (
    "s.open && s.kernel === 'idle' && s.connection === 'connected' "
    "&& s.cells.every(c => !c.running)"
)


def notebook_state(page, name: str) -> dict:
    """The notebook's panel, kernel and cells as JupyterLab's models hold them."""
    return page.evaluate(_STATE_JS, name)


def wait_state(page, name: str, predicate: str, what: str, timeout_ms: int) -> dict:
    """Wait until ``predicate`` (JavaScript over the state ``s``) holds; return the state.

    Raises
    ------
    AssertionError
        After ``timeout_ms``, naming ``what`` was awaited and the last state seen.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    js = f"(name) => {{ const s = ({_STATE_JS})(name); return ({predicate}); }}"
    try:
        page.wait_for_function(js, arg=name, timeout=timeout_ms, polling=250)
    except PlaywrightTimeout:
        state = notebook_state(page, name)
        raise AssertionError(
            f"{name}: {what} not reached within {timeout_ms / 1000:.0f} s; "
            f"state: {json.dumps(state)}"
        ) from None
    return notebook_state(page, name)


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code ``cells`` for the ``python3`` kernel, never executed."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nbformat.write(nb, str(path))


def open_notebook(page, lab: dict, name: str, cells: list[str], timeout_ms: int):
    """Write ``name`` into the server's root, open it in this test's own workspace and
    wait until its kernel is connected and idle. Returns the notebook's locator."""
    from playwright.sync_api import expect

    write_notebook(Path(lab["root"]) / name, cells)
    page.goto(f"{lab['url']}/lab/workspaces/{lab['workspace']}/tree/{name}",
              timeout=timeout_ms)
    state = wait_state(page, name, "s.open && s.current === name && s.contextReady",
                       "notebook open and current", timeout_ms)
    # No document of another test was restored into this test's workspace.
    assert state["documents"] == [name], f"other documents open beside {name}: {state}"
    wait_state(page, name, KERNEL_READY, "kernel connected and idle", timeout_ms)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook).to_be_visible(timeout=timeout_ms)
    expect(notebook.locator(".jp-Cell")).to_have_count(len(cells), timeout=timeout_ms)
    return notebook


def run_all_cells(page, name: str, start_ms: int, done_ms: int) -> None:
    """Run > Run All Cells from the main menu (once), then wait until every code cell
    has an execution count and an output and the kernel is idle again."""
    state = notebook_state(page, name)
    assert state.get("current") == name, f"{name} is not the current tab: {state}"
    assert all(c.get("count") is None for c in state["cells"]), f"already executed: {state}"
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    item = page.locator(
        ".lm-Menu-content .lm-Menu-item", has_text=re.compile(r"^Run All Cells$")
    ).first
    item.wait_for(state="visible")
    item.click()
    wait_state(page, name, CELLS_STARTED, "a cell started by Run All Cells", start_ms)
    state = wait_state(page, name, CELLS_DONE, "every cell executed with output", done_ms)
    errors = [(i, c["error"]) for i, c in enumerate(state["cells"]) if c.get("error")]
    assert not errors, f"{name}: cells raised (cell index, error): {errors}"


def wait_kernel_idle(page, name: str, timeout_ms: int) -> None:
    """Wait until the notebook's kernel is connected and idle, no cell running."""
    wait_state(page, name, KERNEL_IDLE, "kernel idle", timeout_ms)


def wait_images_decoded(page, locator, timeout_ms: int = 30_000) -> None:
    """Wait until every ``<img>`` inside ``locator`` is loaded and decoded."""
    page.wait_for_function(
        "el => Array.from(el.querySelectorAll('img'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        arg=locator.element_handle(), timeout=timeout_ms, polling=100,
    )
