"""Still images of the tutorials' widgets, for the static site (``make docs-widgets``).

A static page cannot run a kernel, so each widget a tutorial shows appears on the site as
a PNG of the widget *as the committed run left it*.  The notebooks store that state
(``metadata.widgets``, the ``application/vnd.jupyter.widget-state+json`` that JupyterLab
saves); the ipywidgets project's own HTML widget manager
(``@jupyter-widgets/html-manager``, from the npm registry, ``npm pack``-ed into
``build/docs-vendor/``) renders it in Debian's Chromium -- the browser the browser tests
drive through Playwright -- with every request outside the local files blocked, and the
rendered widget is saved as ``docs/_static/widgets/<notebook>__<Widget>_<k>.png``
(``k``: the k-th widget of that class in the notebook; the name the site looks up).

Run it after a notebook's widgets change and commit the PNGs.  Needs ``npm`` and
``/usr/bin/chromium`` (``bash scripts/install_browser.sh``); the site build needs neither.

Usage: ``python docs/capture_widgets.py [--only 01_coding_rate ...] [--check]``
(``--check``: only list the stills that are missing, exit 1 if any).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))

import tnb_tutorials  # noqa: E402

HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"  # the one for ipywidgets 8
VENDOR = REPO / "build" / "docs-vendor"
STILLS = HERE / "_static" / "widgets"
CHROMIUM = os.environ.get("TRANSFER_NB_CHROMIUM", "/usr/bin/chromium")
WIDTH = 980  # about JupyterLab's output area on a 1366-px screen
MAX_WIDTH = 1400  # a wider widget (a row of plots) keeps its own width up to this


def html_manager() -> Path:
    """``dist/embed.js`` of the pinned html-manager, fetched once with ``npm pack``."""
    embed = VENDOR / "html-manager" / "package" / "dist" / "embed.js"
    if embed.exists():
        return embed
    VENDOR.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["npm", "pack", HTML_MANAGER, "--silent"], cwd=VENDOR,
                         check=True, capture_output=True, text=True).stdout.split()
    tgz = VENDOR / out[-1]
    with tarfile.open(tgz) as tar:
        tar.extractall(VENDOR / "html-manager", filter="data")
    tgz.unlink()
    return embed


def page_html(embed: Path, state: dict, model_id: str) -> str:
    view = {"version_major": 2, "version_minor": 0, "model_id": model_id}
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<script src="{embed.as_uri()}"></script>
<style>body {{ margin: 0; padding: 8px; background: #fff;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }}
#still {{ display: inline-block; min-width: {WIDTH}px; max-width: {MAX_WIDTH}px; }}</style></head>
<body><div id="still">
<script type="application/vnd.jupyter.widget-state+json">{json.dumps(state)}</script>
<script type="application/vnd.jupyter.widget-view+json">{json.dumps(view)}</script>
</div></body></html>"""


def targets(only: list[str] | None):
    """``(notebook path, still name, model id, widget state)`` of every still to make."""
    for nb_path in sorted((REPO / "notebooks").glob("*.ipynb")):
        if only and not any(o in nb_path.stem for o in only):
            continue
        nb = json.loads(nb_path.read_text())
        state = nb.get("metadata", {}).get("widgets", {}).get(tnb_tutorials.WIDGET_STATE)
        for _ci, _oi, out, still in tnb_tutorials.widget_outputs(nb):
            if still is None:
                continue
            model_id = out["data"][tnb_tutorials.WIDGET_VIEW]["model_id"]
            yield nb_path, tnb_tutorials.still_file(nb_path.stem, still), model_id, state


def capture(only: list[str] | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    embed = html_manager()
    work = VENDOR / "pages"
    work.mkdir(parents=True, exist_ok=True)
    STILLS.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            for nb_path, png, model_id, state in targets(only):
                if state is None:
                    raise SystemExit(f"{nb_path.name}: widget output but no saved widget state")
                page_file = work / png.replace(".png", ".html")
                page_file.write_text(page_html(embed, state, model_id))
                ctx = browser.new_context(viewport={"width": MAX_WIDTH + 40, "height": 900},
                                          device_scale_factor=1)
                page = ctx.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                          else r.abort())
                page.goto(page_file.as_uri())
                page.wait_for_selector("#still .jupyter-widgets", timeout=30_000)
                page.wait_for_function(
                    "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
                    timeout=30_000)
                page.wait_for_timeout(300)  # layout of late-sized children (plots)
                if errors:
                    raise SystemExit(f"{png}: the widget manager reported errors: {errors}")
                page.locator("#still").screenshot(path=str(STILLS / png))
                ctx.close()
                written.append(STILLS / png)
                print(f"capture_widgets: {STILLS.relative_to(REPO) / png}")
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="notebooks whose name contains one of these")
    parser.add_argument("--check", action="store_true", help="list missing stills only")
    args = parser.parse_args(argv)
    if args.check:
        missing = [png for _, png, _, _ in targets(args.only) if not (STILLS / png).exists()]
        for png in missing:
            print(f"missing: docs/_static/widgets/{png}")
        return 1 if missing else 0
    capture(args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
