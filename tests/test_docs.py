"""The documentation site (``make docs``): it builds with warnings as errors, offline, and
shows what issue 26 asks of it.

One build per session (:mod:`tests._docs`: ``sphinx-build -E -W``, about a minute); the
browser test ``tests/browser/test_docs_site.py`` opens the same build.
"""
from __future__ import annotations

import html
import importlib
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
import types
from datetime import datetime
from pathlib import Path

import pytest

from tests._docs import REPO, build_site, built_site

pytestmark = [pytest.mark.docs, pytest.mark.slow]

# The modules issue 26 lists (True: with every public submodule, found by walking).
API_ROOTS = [("transfer_nb", False), ("transfer_nb.estimators", False),
             ("transfer_nb.stats", False), ("transfer_nb.selection", True),
             ("transfer_nb.experiments", True), ("transfer_nb_widgets", True)]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_docs_build_with_warnings_as_errors():
    result = build_site()
    print(f"docs build: {result.seconds:.1f} s")
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.output[-8000:]}"
    assert (result.site / "index.html").exists()


def _modules(name: str, recurse: bool):
    module = importlib.import_module(name)
    yield module
    if recurse and hasattr(module, "__path__"):
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                yield from _modules(f"{name}.{info.name}", True)


def _public_functions_and_classes(module: types.ModuleType):
    if hasattr(module, "__all__"):
        items = [(n, getattr(module, n)) for n in module.__all__]
    else:
        items = [(n, o) for n, o in vars(module).items() if not n.startswith("_")
                 and getattr(o, "__module__", None) == module.__name__]
    return [(n, o) for n, o in items if inspect.isfunction(o) or inspect.isclass(o)]


def _resolve(dotted: str):
    """The function or class a documented name reaches: the longest importable module
    prefix whose attributes lead to a non-module (``transfer_nb.estimators.logme`` is the
    function the package exports, not the module of the same name)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except (ImportError, AttributeError):
            continue
        if not isinstance(obj, types.ModuleType):
            return obj
    raise LookupError(f"{dotted} does not resolve to a function or class")


def test_every_public_function_and_class_has_an_api_entry():
    from sphinx.util.inventory import InventoryFile

    site = built_site()
    with open(site / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    inv = getattr(inv, "data", inv)  # Sphinx >= 8.2 wraps the mapping
    documented = {}
    for kind in ("py:function", "py:class"):
        for name, entry in inv.get(kind, {}).items():
            uri = entry[2] if isinstance(entry, tuple) else entry.uri
            documented[id(_resolve(name))] = uri
    assert len(documented) > 50, f"only {len(documented)} functions/classes documented"
    missing, checked = [], 0
    for root, recurse in API_ROOTS:
        for module in _modules(root, recurse):
            for name, obj in _public_functions_and_classes(module):
                checked += 1
                uri = documented.get(id(obj))
                if uri is None:
                    missing.append(f"{module.__name__}.{name}")
                else:
                    page = uri.split("#")[0]
                    assert (site / page).exists(), f"{module.__name__}.{name}: {page} missing"
    print(f"{checked} public functions/classes, all documented")
    assert not missing, f"public functions/classes without an API entry: {missing}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _recorded_seconds(nb: dict) -> float | None:
    stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    ex = [c.get("metadata", {}).get("execution", {}) for c in nb["cells"]]
    starts = [stamp(e["iopub.execute_input"]) for e in ex if "iopub.execute_input" in e]
    ends = [stamp(e["shell.execute_reply"]) for e in ex if "shell.execute_reply" in e]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else None


@pytest.mark.parametrize("notebook", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_tutorial_page(notebook):
    site = built_site()
    nb_path = REPO / "notebooks" / notebook
    nb = json.loads(nb_path.read_text())
    page_path = site / "tutorials" / notebook.replace(".ipynb", ".html")
    page = page_path.read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    # Run time from the notebook's own execution timestamps.
    seconds = _recorded_seconds(nb)
    if seconds is not None:
        assert f"Run time: {_duration(seconds)}" in text, f"{notebook}: run time not shown"
    # The download link serves the committed notebook, byte for byte.
    links = re.findall(r'href="([^"]*_downloads/[^"]*/' + re.escape(notebook) + ')"', page)
    assert links, f"{notebook}: no download link to the .ipynb"
    assert (page_path.parent / links[0]).resolve().read_bytes() == nb_path.read_bytes()
    # Committed outputs only: every image output of the notebook is on the page.
    pngs = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    shown = len(re.findall(r'<img [^>]*src="[^"]*_images/', page))
    assert shown >= pngs, f"{notebook}: {pngs} image outputs, {shown} images on the page"
    # Widgets: a still image and the sentence, never the widget's text repr.
    widgets = [o for c in nb["cells"] for o in c.get("outputs", [])
               if WIDGET_VIEW in o.get("data", {}) and "(children=" in "".join(o["data"].get("text/plain", ""))]
    stills = re.findall(r'<img [^>]*alt="A still image of the (\w+) widget"[^>]*src="([^"]+)"', page)
    stills += [(a, s) for s, a in re.findall(
        r'<img [^>]*src="([^"]+)"[^>]*alt="A still image of the (\w+) widget"', page)]
    assert len(stills) == len(widgets), f"{notebook}: {len(widgets)} widgets, stills {stills}"
    for _cls, src in stills:
        assert (page_path.parent / src).resolve().stat().st_size > 1000
    if widgets:
        assert "the widget is interactive" in text
    assert "has no still image" not in text
    for out in widgets:  # never the widget's text repr in place of the widget
        assert "".join(out["data"]["text/plain"])[:60] not in html.unescape(page)
    # A stored full run the notebook loads: its provenance.
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    if "load_run" in code:
        for paper in set(re.findall(r"experiments(?:\.|\s+import\s+)([a-z_0-9]+)", code)):
            run_json = REPO / "results" / paper / "run.json"
            if run_json.exists():
                run = json.loads(run_json.read_text())
                assert run["config_hash"] in text and run["commit"] in text, (
                    f"{notebook}: provenance of results/{paper}/run.json not shown")


def test_site_is_offline():
    site = built_site()
    remote = re.compile(r'<(?:script|img|iframe|source)\b[^>]*\bsrc="(?:https?:)?//'
                        r'|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"[^>]*>')
    bad = {}
    for page in site.rglob("*.html"):
        for m in remote.finditer(page.read_text()):
            if 'rel="stylesheet"' in m.group(0) or not m.group(0).startswith("<link"):
                bad.setdefault(str(page.relative_to(site)), []).append(m.group(0)[:120])
    for css in (site / "_static").glob("**/*.css"):
        if re.search(r"@import\s+url\(\s*['\"]?https?:|url\(\s*['\"]?https?://", css.read_text()):
            bad.setdefault(str(css.relative_to(site)), []).append("remote url() in CSS")
    assert not bad, f"pages that load something from the network: {bad}"
    index = (site / "index.html").read_text()
    assert re.search(r'<script [^>]*src="_static/mathjax/tex-mml-chtml\.js', index)
    assert (site / "_static" / "mathjax" / "tex-mml-chtml.js").stat().st_size > 100_000
    conf = (REPO / "docs" / "conf.py").read_text()
    assert "sphinx.ext.intersphinx" not in conf


def test_cli_page_is_the_parsers_help():
    page = html.unescape(re.sub(r"<[^>]+>", "", (built_site() / "cli.html").read_text()))
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(REPO))
    top = subprocess.run([sys.executable, "-m", "transfer_nb.cli", "--help"], cwd=REPO,
                         capture_output=True, text=True, env=env)
    subs = re.search(r"\{([a-z0-9_,-]+)\}", top.stdout).group(1).split(",")
    assert "rank" in subs and "run" in subs
    for sub in subs:
        out = subprocess.run([sys.executable, "-m", "transfer_nb.cli", sub, "--help"],
                             cwd=REPO, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        options = [line.strip() for line in out.stdout.splitlines()
                   if line.strip().startswith("-") and "--help" not in line]
        assert f"usage: transfer-nb {sub}" in page
        for option in options:
            assert option in page, f"{sub}: {option!r} not on the CLI page"
