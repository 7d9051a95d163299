"""What every lesson (notebooks 01-07) shows the same way: its data, its short result
table, the result read aloud, and the evidence appendix.

The lesson shape is described in the contributor page (``docs/contributing.md``,
"Lessons"): the images before any number, one table of at most 8 rows and 2 decimals
with the paper's number beside ours, and the full stored run in an appendix.  These
functions keep that shape in one place, so a notebook cell is one call.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from transfer_nb._validation import check_scalar
from transfer_nb.experiments import base

__all__ = ["READING", "interval_text", "result_table", "read_aloud", "said", "provenance",
           "stored_runs", "stored_verdicts",
           "target_images", "show_images", "evidence"]

#: the header of every lesson's result table: what the verdict words mean
READING = ("**How to read the verdicts.** *reproduced*: the paper's direction holds, with "
           "a 95 % interval that lies entirely on the paper's side of the line (for a "
           "correlation the line is 0; for a *matches* or *survives* claim it is minus the "
           "stated margin); *not reproduced*: the interval lies entirely on the other side; "
           "*inconclusive*: it straddles the line, so the design cannot tell; *fragile*: the "
           "interval is clear of the line, but dropping a single item makes it inconclusive "
           "(read the estimate's sign for its direction); *excluded*: no target passed the "
           "gates (the checks that the ground truth trained and tells the models apart). The "
           "**size** is compared with the paper's number, never claimed: a correlation half as "
           "large as the paper's points the same way, at half the size.\n\n"
           "**Exploratory and confirmation.** A run whose design changed after its results "
           "were seen (a target picked after a pilot, a preset enlarged after a look) is "
           "*exploratory*: it finds, it does not test. A *pre-registered confirmation* writes "
           "every claim, rule, target and seed into a committed file before it runs, on new "
           "targets and seeds; its verdicts are the lesson's result, whichever way they go. "
           "The last column is the fast run you just executed: a small smoke test of the "
           "method that decides little.")

MAX_ROWS = 8


def _num(value, digits: int = 2) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if digits else f"{value:.0f}"


def interval_text(estimate, low, high, digits: int = 2) -> str:
    """``"+0.44 [+0.26, +0.60]"``, or ``"-"`` when the estimate is not a finite number."""
    try:
        if not math.isfinite(float(estimate)):
            return "-"
    except (TypeError, ValueError):
        return "-"
    try:
        bounded = math.isfinite(float(low)) and math.isfinite(float(high))
    except (TypeError, ValueError):
        bounded = False
    if not bounded:                      # a reference row (a column against itself)
        return _num(estimate, digits)
    return f"{_num(estimate, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _paper(value) -> str:
    if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        return f"{float(value):.2f}" if math.isfinite(float(value)) else "-"
    return str(value) if value not in (None, "") else "-"


def _pick(verdicts: pd.DataFrame, claims) -> pd.DataFrame:
    """Rows of ``verdicts``: the primary first, then ``claims`` (indices or claim texts)."""
    if claims is None:
        return verdicts.head(MAX_ROWS)
    rows = []
    for c in claims:
        if isinstance(c, (int, np.integer)):
            rows.append(int(c))
            continue
        hits = [i for i, text in enumerate(verdicts["claim"]) if text == c]
        if not hits:
            hits = [i for i, text in enumerate(verdicts["claim"]) if str(c) in text]
        if not hits:
            raise ValueError(f"no claim {c!r} in the verdict table; claims are "
                             f"{list(verdicts['claim'])}")
        rows.append(hits[0])
    return verdicts.iloc[list(dict.fromkeys(rows))]


def result_table(evidence: pd.DataFrame, fast: pd.DataFrame | None = None, claims=None,
                 evidence_label: str = "stored run", short_names: dict | None = None,
                 papers: dict | None = None) -> pd.DataFrame:
    """The lesson's result table: at most 8 rows, 2 decimals, the paper's number beside ours.

    Parameters
    ----------
    evidence : DataFrame
        A ``report.verdicts`` table of the run that is the evidence (the stored run).
    fast : DataFrame, optional
        The verdicts of the run the student just executed; matched by claim text.
    claims : sequence of int or str, optional
        Which rows (indices, exact claim texts or parts of them); default the first 8.
    evidence_label : str
        Column heading for the evidence (e.g. ``"stored run (exploratory)"``).
    short_names : dict, optional
        ``{claim text: shorter text}`` for the table.
    papers : dict, optional
        ``{claim text: what the paper says, in a few words}`` where the verdict table's
        ``paper`` cell is a sentence (the table must fit a page's text column).

    Returns
    -------
    DataFrame
        Columns ``claim``, ``paper``, ``<evidence_label>``, ``verdict`` and, with ``fast``,
        ``this run (fast)``; numbers as text with 2 decimals.

    Raises
    ------
    ValueError
        More than 8 rows are asked for, or a claim is not in the table.
    """
    evidence = evidence.reset_index(drop=True)
    picked = _pick(evidence, claims)
    # short names and paper words may be keyed by the full claim or by the text asked for
    asked = {int(i): c for i, c in zip(picked.index, claims or [])}
    if len(picked) > MAX_ROWS:
        raise ValueError(f"a lesson's result table holds at most {MAX_ROWS} rows, got "
                         f"{len(picked)}: put the rest in the appendix")
    short_names, papers = short_names or {}, papers or {}
    fast_by_claim = {} if fast is None else {r.claim: r for r in fast.itertuples()}
    # the primary claims match even where the evidence words its primary differently
    # (a confirmation that pools over targets, a fast run on one target)
    fast_primary = None if fast is None or not fast["primary"].any() else \
        next(r for r in fast.itertuples() if r.primary)
    rows = []
    for r in picked.itertuples():
        key = asked.get(int(r.Index), r.claim)
        row = {"claim": short_names.get(r.claim, short_names.get(key, r.claim)),
               "paper": papers.get(r.claim, papers.get(key, _paper(r.paper))),
               evidence_label: interval_text(r.estimate, r.low, r.high), "verdict": r.verdict}
        if fast is not None:
            f = fast_by_claim.get(r.claim, fast_primary if r.primary else None)
            row["this run (fast)"] = ("not in the fast run" if f is None else
                                      f"{_num(f.estimate)} ({f.verdict})"
                                      if math.isfinite(float(f.estimate)) else f.verdict)
        rows.append(row)
    return pd.DataFrame(rows)


def read_aloud(verdicts: pd.DataFrame, claim=None, run: str = "the stored run") -> str:
    """One claim of a verdict table read as a sentence (default: the primary claim)."""
    table = verdicts.reset_index(drop=True)
    row = table[table["primary"]].iloc[0] if claim is None else _pick(table, [claim]).iloc[0]
    paper = _paper(row["paper"])
    est = float(row["estimate"])
    if not math.isfinite(est):
        return (f"*{row['claim']}*: {run} could not measure it ({row['verdict']}); the "
                f"appendix says which gate or item count stopped it.")
    side = {"reproduced": "so the paper's direction holds",
            "not reproduced": "so the run finds the opposite of the paper's direction",
            "inconclusive": "so the interval straddles the line and this design cannot tell",
            "fragile": "but leaving out one item flips it, so it rests on that item",
            "excluded": "but no target passed its gates"}.get(row["verdict"], "")
    where = f"the paper reports {paper}" if paper != "-" else "the paper gives no number"
    return (f"Read aloud: *{row['claim']}* — {where}; {run} measured the {row['statistic']} "
            f"at **{est:.2f}** with a 95 % interval from {float(row['low']):.2f} to "
            f"{float(row['high']):.2f}, {side} (**{row['verdict']}**).")


def provenance(results) -> str:
    """Where a stored run comes from, as one sentence (commit, device, wall-clock, date)."""
    meta = getattr(results, "meta", results) or {}
    wall = meta.get("wall_clock_s")
    wall = f"{float(wall) / 60:.0f} minutes" if wall is not None else "an unrecorded time"
    stale = (" Its config no longer matches the code's preset (stale)."
             if meta.get("stale") else "")
    prereg = (f" Pre-registered in commit {str(meta['preregistration_commit'])[:10]}, before "
              "the run." if meta.get("preregistration_commit") else "")
    kind = "confirmation" if meta.get("mode") == "confirm" else f"{meta.get('mode', 'full')} run"
    return (f"Stored {kind} of commit {str(meta.get('commit', '?'))[:10]}"
            f", on {meta.get('device', '?')}, {wall} of wall-clock, dated "
            f"{str(meta.get('date', '?'))[:10]}.{prereg}{stale}")


def target_images(spec, image_size: int = 32, per_class: int = 4, max_classes: int = 8):
    """``(images, labels, row_names, task)`` of a target or source spec: ``per_class`` images
    of each of its first ``max_classes`` classes (the training split, seed 0).  A
    regression target has no classes: its first ``per_class * max_classes`` images, in
    rows of ``per_class``, each row named by its first image's target values."""
    from transfer_nb.data import load_dataset   # torch-backed: only when images are asked for
    per_class = check_scalar(per_class, "per_class", int, min_val=1)
    max_classes = check_scalar(max_classes, "max_classes", int, min_val=1)
    data = load_dataset(spec.dataset, split="train", image_size=image_size, seed=0,
                        **{k: v for k, v in spec.options if k != "split"})  # split: a target's
    targets = np.asarray(data.targets)
    if not data.classes:                       # regression: rows of consecutive images
        keep = np.arange(min(len(data), per_class * max_classes))
        labels = keep // per_class
        names = [", ".join(f"{v:.2f}" for v in np.atleast_1d(targets[i])[:3])
                 for i in keep[::per_class]]
    else:
        keep = np.asarray([i for k in range(min(len(data.classes), max_classes))
                           for i in np.flatnonzero(targets == k)[:per_class]])
        labels, names = targets[keep], list(data.classes)
    images = np.stack([np.asarray(data.images[i], dtype=float).transpose(1, 2, 0)
                       for i in keep])
    return images, np.asarray(labels), names, ("classification" if data.classes
                                               else "regression")


def show_images(specs, image_size: int = 32, per_class: int = 4, max_classes: int = 8,
                titles=None):
    """One row of images per class, one panel per target (the lesson's "data, seen").

    Parameters
    ----------
    specs : sequence of TargetSpec or SourceSpec (anything with ``dataset`` and ``options``)
    image_size, per_class, max_classes : int
    titles : sequence of str, optional
        Panel titles (default: each spec's ``name``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    specs = list(specs)
    titles = list(titles) if titles is not None else [s.name for s in specs]
    panels = [target_images(s, image_size, per_class, max_classes) for s in specs]
    fig, axes = plt.subplots(1, len(specs), figsize=(2.4 * len(specs), 2.6), squeeze=False)
    for ax, (images, labels, names, task), title in zip(axes[0], panels, titles):
        classes = list(dict.fromkeys(labels.tolist()))
        rows, cols = len(classes), per_class
        canvas = np.ones((rows * (image_size + 2), cols * (image_size + 2), 3))
        for r, k in enumerate(classes):
            for c, img in enumerate(images[labels == k][:cols]):
                y0, x0 = r * (image_size + 2), c * (image_size + 2)
                canvas[y0:y0 + image_size, x0:x0 + image_size] = np.clip(img, 0, 1)
        ax.imshow(canvas, interpolation="nearest")
        ax.set_yticks([(r + 0.5) * (image_size + 2) for r in range(rows)])
        ax.set_yticklabels([str(names[k])[:10] for k in classes], fontsize=7)
        ax.set_xticks([])
        ax.set_title(f"{title}\n({len(names)} classes)" if task == "classification"
                     else f"{title}\n(rows: first values of y)", fontsize=8)
    fig.tight_layout()
    return fig


def stored_runs(paper: str, module) -> dict:
    """The stored runs of ``paper`` that match the code's presets, each with its config:
    ``{"exploratory": Results or None, "confirmation": Results or None}`` (the full run,
    and the pre-registered confirmation under ``results/<paper>/confirm/``)."""
    runs = {}
    for name, mode in (("exploratory", "full"), ("confirmation", "confirm")):
        try:
            cfg = module.config(mode)
        except ValueError:                 # a paper without a confirmation preset yet
            runs[name] = None
            continue
        run = base.load_run(paper, current_hash=module.config_hash(cfg),
                            confirm=mode == "confirm")
        if run is not None:
            run.cfg = cfg
        runs[name] = run
    return runs


def stored_verdicts(runs: dict, module) -> tuple:
    """``(verdicts per stored run, the name of the run that is the evidence, its label)``:
    the confirmation when one is stored, else the exploratory run (``(None, None, None)``
    for the evidence when neither is)."""
    verdicts = {name: module.report.verdicts(run) for name, run in runs.items() if run is not None}
    name = "confirmation" if "confirmation" in verdicts else \
        "exploratory" if "exploratory" in verdicts else None
    label = {"confirmation": "pre-registered confirmation, 95 % interval",
             "exploratory": "exploratory run, 95 % interval"}.get(name)
    return verdicts, name, label


def evidence(paper: str, cfg, module, n_boot: int | None = None, confirm: bool = False):
    """The appendix of a lesson: the stored run of ``paper`` with its provenance, gates,
    every claim and the generated summary (displayed); returns ``(results, verdicts)`` or
    ``(None, None)`` when no stored run exists.

    Parameters
    ----------
    paper : str
        The results folder name (``results/<paper>/``).
    cfg :
        The config the stored run must match (``module.config("full")``, or
        ``module.config("confirm")`` with ``confirm=True``).
    module :
        The experiment package (``transfer_nb.experiments.<paper>``).
    confirm : bool
        Show the pre-registered confirmation (``results/<paper>/confirm/``).
    """
    from IPython.display import Markdown, display   # the notebook's display, only here
    full = base.load_run(paper, current_hash=module.config_hash(cfg), confirm=confirm)
    if full is None:
        flag = "--confirm" if confirm else "--full"
        display(Markdown(f"No stored {'confirmation' if confirm else 'full run'}: `python -m "
                         f"transfer_nb.experiments.{paper} {flag} --save` writes it."))
        return None, None
    full.cfg = cfg
    checks = module.report.checks(full)
    verdicts = module.report.verdicts(full) if n_boot is None else \
        module.report.verdicts(full, n_boot=n_boot)
    display(Markdown(provenance(full)))
    display(Markdown("**The gates, per target** (a target that fails one is shown and left "
                     "out of the verdicts):"))
    display(checks.round(3))
    display(Markdown("**Every claim**, with its rule:"))
    display(verdicts.round(3))
    display(Markdown(module.report.summary(full, verdicts, checks)))
    return full, verdicts


def said(verdicts: pd.DataFrame, claim) -> str:
    """A claim's estimate, interval and verdict, e.g. ``"+0.44 [+0.27, +0.60] (reproduced)"``,
    for a lesson's generated prose (the words are defined by :data:`READING`)."""
    row = _pick(verdicts.reset_index(drop=True), [claim]).iloc[0]
    text = interval_text(row["estimate"], row["low"], row["high"])
    return f"{'not measured' if text == '-' else text} ({row['verdict']})"
