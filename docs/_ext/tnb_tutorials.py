"""The tutorial pages: the committed, executed notebooks, annotated, never executed here.

For each ``notebooks/NN_*.ipynb`` a copy is written to ``docs/tutorials/`` with

* a box after the title: the notebook's recorded run time and mode, read from the
  notebook itself (the ``execution`` timestamps Jupyter stores in each code cell's
  metadata: first cell started to last cell finished; kernel start-up not included),
  and a download link to the ``.ipynb`` as committed;
* where the notebook loads a stored full run (``load_run``), that run's provenance from
  ``results/<paper>/run.json`` (or a line saying none is in the checkout);
* each widget output replaced: a progress bar by its final text (read from the saved
  widget state), any other widget by a still image ``docs/_static/widgets/<notebook>__
  <Widget>_<k>.png`` (written by ``docs/capture_widgets.py`` from the same saved state)
  and a sentence that it is interactive in JupyterLab;
* the saved widget state removed, so that no page asks a CDN for the widget manager.

Outputs are otherwise the committed ones, byte for byte.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@dataclass
class Tutorial:
    """What the site says about one notebook (also read by the tests)."""

    stem: str
    title: str
    seconds: float | None
    started: str | None
    finished: str | None
    mode: str | None
    stored_runs: list[str] = field(default_factory=list)
    stills: list[str] = field(default_factory=list)
    missing_stills: list[str] = field(default_factory=list)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_time(nb: dict) -> tuple[float | None, str | None, str | None]:
    """Seconds from the first code cell's start to the last one's end, from the cells'
    ``metadata.execution`` timestamps; ``(None, None, None)`` when none are stored."""
    starts, ends = [], []
    for cell in nb["cells"]:
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex:
            starts.append(_ts(ex["iopub.execute_input"]))
        end = ex.get("shell.execute_reply") or ex.get("iopub.status.idle")
        if end:
            ends.append(_ts(end))
    if not starts or not ends:
        return None, None, None
    first, last = min(starts), max(ends)
    fmt = "%Y-%m-%d %H:%M:%S UTC"
    return (last - first).total_seconds(), first.strftime(fmt), last.strftime(fmt)


def _text_outputs(nb: dict):
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            data = out.get("data", {})
            text += "".join(data.get("text/plain", "")) + "".join(data.get("text/markdown", ""))
            yield text


def run_mode(nb: dict) -> str | None:
    """``"fast"`` or ``"full"``: the first mode the notebook's outputs print."""
    for text in _text_outputs(nb):
        m = re.search(r"\bmode: (fast|full)\b|\b(fast|full) mode\b", text)
        if m:
            return m.group(1) or m.group(2)
    return None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def stored_papers(nb: dict) -> list[str]:
    """Experiment packages whose stored full run the notebook loads (``load_run``)."""
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    # the paper named where a stored run is loaded: load_run / lessons.stored_runs / evidence
    names = re.findall(r"(?:load_run|stored_runs|evidence)\(\s*[\"']([a-z_0-9]+)[\"']", code)
    return sorted(set(names))


def sub_is_confirm(path: Path) -> bool:
    """Whether a stored run's ``run.json`` is a pre-registered confirmation's."""
    return path.parent.name == "confirm"


def _provenance(repo: Path, papers: list[str], rel: str) -> tuple[str, list[str]]:
    lines, shown = [], []
    for paper, path in [(p, repo / "results" / p / sub / "run.json") for p in papers
                        for sub in ("confirm", ".")]:
        if sub_is_confirm(path) and not path.exists():
            continue                    # no confirmation of this paper: nothing to say
        if not path.exists():
            lines += [f"The notebook looks for a stored full run of `{paper}`; none "
                      f"(`results/{paper}/run.json`) is in this checkout, so it shows the "
                      "fast run only.", ""]
            continue
        run = json.loads(path.read_text())
        if paper not in shown:
            shown.append(paper)
        versions = ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items())
        rows = [("experiment", f"`{paper}`, mode `{run.get('mode')}`"),
                ("config hash", f"`{run.get('config_hash')}`"),
                ("commit", f"`{run.get('commit')}`"),
                ("date", str(run.get("date"))),
                ("device", str(run.get("device"))),
                ("wall-clock", _duration(float(run["wall_clock_s"]))
                 if "wall_clock_s" in run else "not recorded"),
                ("library versions", versions or "not recorded"),
                ("tables", ", ".join(f"`{t}`" for t in run.get("tables", [])) or "none")]
        where = path.parent.relative_to(repo).as_posix()
        title = ("Pre-registered confirmation" if sub_is_confirm(path)
                 else "Stored full run (exploratory)")
        lines += [f":::{{admonition}} {title}: `{where}/`",
                  f"The results shown as the {title.lower()} come from "
                  f"{{download}}`{where}/run.json <{rel}/{where}/run.json>`:",
                  "", "| | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines += [":::", ""]
    return "\n".join(lines), shown


def _progress_text(state: dict, model_id: str) -> str | None:
    """tqdm's ``HBox(HTML, FloatProgress, HTML)`` as the line it last showed."""
    model = state.get(model_id, {})
    if model.get("model_name") != "HBoxModel":
        return None
    parts, bar = [], False
    for ref in model["state"].get("children", []):
        child = state.get(ref.removeprefix("IPY_MODEL_"), {})
        name, st = child.get("model_name"), child.get("state", {})
        if name == "FloatProgressModel":
            bar = True
            frac = st.get("value", 0) / st["max"] if st.get("max") else 0.0
            parts.append("|" + "█" * round(10 * frac) + " " * (10 - round(10 * frac)) + "|")
        elif name == "HTMLModel":
            parts.append(re.sub(r"<[^>]+>", "", st.get("value", "")).replace("&nbsp;", " ").strip())
    return " ".join(p for p in parts if p) if bar else None


def widget_class(out: dict) -> str:
    """The widget's class name, from its text repr (``CodingRateExplorer(children=...``)."""
    plain = "".join(out.get("data", {}).get("text/plain", ""))
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\(", plain)
    return m.group(1) if m else "Widget"


def widget_outputs(nb: dict):
    """``(cell index, output index, output, still name or None)`` of each widget view;
    the still name is ``None`` for progress bars."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    counts: dict[str, int] = {}
    for ci, cell in enumerate(nb["cells"]):
        for oi, out in enumerate(cell.get("outputs", [])):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            if _progress_text(state, view["model_id"]) is not None:
                yield ci, oi, out, None
                continue
            cls = widget_class(out)
            counts[cls] = counts.get(cls, 0) + 1
            yield ci, oi, out, f"{cls}_{counts[cls]}"


def still_file(stem: str, still: str) -> str:
    return f"{stem}__{still}.png"


def _header(tut: Tutorial, rel_nb: str, provenance: str) -> str:
    lines = [":::{admonition} About this page", ":class: tip"]
    if tut.seconds is not None:
        mode = f"{tut.mode} mode" if tut.mode else "mode not printed"
        lines.append(f"**Run time:** {_duration(tut.seconds)} ({mode}) for the run whose "
                     f"outputs are shown: first cell started {tut.started}, last cell finished "
                     f"{tut.finished}, as recorded in the notebook's execution metadata "
                     "(kernel start-up not included; a run that finds its features, models or "
                     "results already in `$TRANSFER_NB_CACHE` is shorter).")
    else:
        lines.append("**Run time:** not recorded in this notebook's metadata.")
    lines += ["", f"**Download:** {{download}}`{tut.stem}.ipynb <{rel_nb}>` "
              "(the executed notebook as committed).",
              "", "These are the notebook's committed outputs; this site does not run it. "
              "Open it in JupyterLab (`make lab`, or `transfer-nb tutorials DIR` then "
              "`jupyter lab DIR`) to run it and use its widgets.", ":::", ""]
    return "\n".join(lines) + ("\n" + provenance if provenance else "")


def prepare(nb_path: Path, repo: Path, outdir: Path, stills_dir: Path, srcdir: Path) -> Tutorial:
    """Write the annotated copy of ``nb_path`` into ``outdir``; return what it shows."""
    nb = json.loads(nb_path.read_text())
    stem = nb_path.stem
    first = _source(nb["cells"][0]).strip().splitlines()
    title = first[0].lstrip("#").strip() if first else stem
    seconds, started, finished = run_time(nb)
    tut = Tutorial(stem, title, seconds, started, finished, run_mode(nb))
    rel = Path(*[".."] * len(outdir.relative_to(srcdir).parts)).as_posix()
    rel_repo = f"{rel}/{Path(*['..'] * len(srcdir.relative_to(repo).parts)).as_posix()}"
    out = copy.deepcopy(nb)
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for ci, oi, output, still in widget_outputs(nb):
        view = output["data"][WIDGET_VIEW]
        if still is None:
            new = {"output_type": "stream", "name": "stderr",
                   "text": _progress_text(state, view["model_id"]) + "\n"}
        else:
            png = still_file(stem, still)
            cls = widget_class(output)
            if (stills_dir / png).exists():
                tut.stills.append(png)
                md = (f"![A still image of the {cls} widget](/_static/widgets/{png})\n\n"
                      f"*A still image of the `{cls}` widget as this run left it. In JupyterLab "
                      "the widget is interactive: run the notebook there to use it.*")
            else:
                tut.missing_stills.append(png)
                md = f"*The `{cls}` widget (interactive in JupyterLab) has no still image yet.*"
            new = {"output_type": "display_data", "metadata": {},
                   "data": {"text/markdown": md}}
        out["cells"][ci]["outputs"][oi] = new
    out["metadata"].pop("widgets", None)
    provenance, tut.stored_runs = _provenance(repo, stored_papers(nb), rel_repo)
    header = {"cell_type": "markdown", "id": "tnb-about-this-page", "metadata": {}, "source": _header(
        tut, f"{rel_repo}/notebooks/{nb_path.name}", provenance)}
    # The box goes right under the title: a first cell "# Title\n\nintro" is split in two.
    lines = _source(out["cells"][0]).splitlines(keepends=True)
    if out["cells"][0]["cell_type"] == "markdown" and lines and lines[0].startswith("# ") \
            and "".join(lines[1:]).strip():
        intro = {"cell_type": "markdown", "id": "tnb-intro", "metadata": {},
                 "source": "".join(lines[1:]).lstrip("\n")}
        out["cells"][0]["source"] = lines[0]
        out["cells"][1:1] = [header, intro]
    else:
        out["cells"].insert(1, header)
    text = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    target = outdir / nb_path.name
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return tut


def write_tutorials(repo: Path, srcdir: Path, outdir: Path, stills_dir: Path) -> list[Tutorial]:
    """Annotated copies of every ``notebooks/*.ipynb`` and the tutorials' index page."""
    outdir.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(p for p in (repo / "notebooks").glob("*.ipynb")
                       if not p.name.startswith("."))
    tutorials = [prepare(p, repo, outdir, stills_dir, srcdir) for p in notebooks]
    for old in outdir.glob("*.ipynb"):
        if old.name not in {p.name for p in notebooks}:
            old.unlink()
    lines = ["# Tutorials", "",
             "Each tutorial is an executable notebook (`notebooks/` in the repository). The pages "
             "show the outputs committed with it; CI executes every notebook in fast mode.", "",
             "| tutorial | run time (mode) | stored full run |", "|---|---|---|"]
    for t in tutorials:
        when = (f"{_duration(t.seconds)} ({t.mode or 'mode not printed'})"
                if t.seconds is not None else "not recorded")
        runs = ", ".join(f"`results/{p}/`" for p in t.stored_runs) or "none"
        lines.append(f"| [{t.title}]({t.stem}.ipynb) | {when} | {runs} |")
    lines += ["", "```{toctree}", ":hidden:", ""] + [t.stem for t in tutorials] + ["```", ""]
    index = "\n".join(lines)
    path = outdir / "index.md"
    if not path.exists() or path.read_text() != index:
        path.write_text(index)
    return tutorials
