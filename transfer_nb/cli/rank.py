"""``transfer-nb rank``: score models on your images, print them ranked with what the
numbers mean, write a CSV.  An expected failure is one line and exit status 2; a model that
cannot be scored is one warning line and the others are printed and saved (exit 0)."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from transfer_nb import selection
from transfer_nb.evaluation import evaluate_estimators
from transfer_nb.selection import DEFAULT_ESTIMATORS, MODEL_TRUTHS, rank_table, ranking_notes
from transfer_nb.selection.baselines import BASELINES
from transfer_nb.selection.report import (column_meanings, default_sort_column,
                                          higher_is_better, score_columns)
from transfer_nb.estimators import registry
from transfer_nb.selection._target import model_input_size

PROG = "transfer-nb rank"

# Python names in library messages -> the command's own words (longest patterns first)
_CLI_TERMS = [
    (r"use device='cpu' or device=None \(auto\)", "use --device cpu, or leave --device out"),
    (r"\bdevice '([^']*)' was requested but", r"--device \1:"),
    (r"\bdevice '([^']*)' is not", r"--device \1 is not"),
    (r"\bground_truth='(\w+)'", r"--ground-truth \1"),
    (r"\bevaluate_estimators\(\)", "--evaluate"),
    (r"\bpass skip_bad=True\b", "pass --skip-bad"),
    (r"\bdrop_classes=\['NAME'\]", "--drop-class NAME"),
    (r"\bdrop_classes\b", "--drop-class"),
    (r"\bskip_bad=True\b", "--skip-bad"),
    (r"\bimage_size=(\d+)", r"--image-size \1"),
    (r"\bimage_size\b", "--image-size"),
    (r"\bn_jobs\b", "--jobs"),
    (r"\bbatch_size\b", "--batch-size"),
    (r"\btest_data\b", "--test-data"),
    (r"\bground_truth\b", "--ground-truth"),
    (r"\bn_test\b", "--n-test"),
    (r"\bn=(\d+)", r"--n \1"),
    (r"\blist_models\(\)", "transfer-nb list-models"),
    (r"(^|(?<=: ))[A-Z]\w*(Error|Exception): ", ""),  # class names are Python's business
    (r"\blist_datasets\(\)", "transfer-nb list-datasets"),
]


def in_cli_terms(message: str) -> str:
    """A library message on one line, in the command's terms (``--jobs``, not ``n_jobs``)."""
    text = " ".join(str(message).split())
    for pattern, repl in _CLI_TERMS:
        text = re.sub(pattern, repl, text)
    return text


def _fail(message) -> int:
    print(f"{PROG}: error: {in_cli_terms(message)}", file=sys.stderr)
    return 2


def _split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_args(args, estimators) -> str | None:
    """The first problem with the arguments, in CLI terms (``None``: fine)."""
    for flag, value, least in (("--jobs", args.jobs, 1), ("--image-size", args.image_size, 1),
                               ("--n", args.n, 1), ("--batch-size", args.batch_size, 1),
                               ("--seed", args.seed, 0)):
        if value is not None and value < least:
            return f"{flag} must be {least} or more, got {value}"
    if args.scheduler is not None and args.backend not in (None, "dask"):
        return f"--scheduler sends the jobs to Dask: it cannot go with --backend {args.backend}"
    if args.out is not None and Path(args.out).is_dir():
        return f"--out {args.out!r} is a folder; expected a CSV file name"
    if args.wide and not args.evaluate:
        return "--wide widens the table of --evaluate: add --evaluate"
    if args.evaluate and args.ground_truth is None:
        return "--evaluate compares the estimators with a ground truth: add --ground-truth " \
               "linear_probe (or fine_tune)"
    if args.sort_by is not None:
        allowed = list(estimators) + list(BASELINES) + (
            ["accuracy"] if args.ground_truth else [])
        if args.sort_by not in allowed:
            return f"--sort-by {args.sort_by!r} is not a column of this ranking; " \
                   f"expected one of {allowed}"
    if args.device is not None:
        from transfer_nb import training  # lazy: pulls in torch
        try:
            training.resolve_device(args.device)
        except ValueError as err:
            return str(err)
    return None


def has_pretrained_weights(name: str) -> bool:
    """Whether a zoo name comes with pretrained weights (``small_cnn`` and ``small_resnet``
    are architectures trained locally; an unknown name is left to the loader)."""
    from transfer_nb.models import model_info  # lazy: pulls in torch

    try:
        info = model_info(name)
    except (ValueError, KeyError):
        return True
    return info.get("family") != "small"


def _untrained(models) -> str | None:
    """The refusal for models without pretrained weights, in the command's terms."""
    names = [m for m in models if not has_pretrained_weights(m)]
    if not names:
        return None
    from transfer_nb.models import list_models, model_info  # lazy: pulls in torch

    usable = [m for m in list_models() if model_info(m).get("offline")
              and has_pretrained_weights(m)]
    these = ", ".join(names)
    return (f"{these} {'has' if len(names) == 1 else 'have'} no pretrained weights (an "
            "architecture the tutorials train themselves; the command line does not train "
            f"models): rank compares pretrained models, e.g. {', '.join(usable)} "
            "(transfer-nb list-models)")


def _offline_hint() -> str:
    from transfer_nb.models import list_models, model_info  # lazy: pulls in torch
    offline = [m for m in list_models() if model_info(m).get("offline")
               and has_pretrained_weights(m)]
    return f"; models that work offline: {', '.join(offline)}" if offline else ""


def cmd_rank(args: argparse.Namespace) -> int:
    """Run ``transfer-nb rank`` (see :func:`add_rank_parser`)."""
    import warnings

    models = _split_names(args.models)
    estimators = _split_names(args.estimators)
    if not models:
        return _fail("--models is empty: give comma-separated names (transfer-nb list-models)")
    problem = _untrained(models) or _check_args(args, estimators)
    if problem:
        return _fail(problem)
    backend = "dask" if args.scheduler is not None else (args.backend or None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            # every failure comes back in the table (printed below as one line each);
            # sklearn convergence chatter is not the user's business here; files left
            # out by --skip-bad are (printed below)
            warnings.simplefilter("always")
            table = selection.score_models(
                models, args.data, estimators=estimators, layer=args.layer,
                ground_truth=args.ground_truth, test_data=args.test_data,
                device=args.device, n_jobs=args.jobs, backend=backend,
                scheduler=args.scheduler, n=args.n, image_size=args.image_size,
                seed=args.seed, batch_size=args.batch_size, cache=not args.no_cache,
                skip_bad=args.skip_bad, drop_classes=args.drop_class or (), errors="note",
                progress=True)
    except (ValueError, OSError) as err:  # bad input, no model scored, unreadable data
        return _fail(err)
    except RuntimeError as err:  # a data set or weights that need the network
        if type(err).__name__ in ("DatasetNotAvailableError", "WeightsUnavailableError"):
            return _fail(err)
        raise
    _warn_skipped(caught)
    failed = table.attrs.get("failed") or {}
    for name, why in failed.items():
        hint = _offline_hint() if why.startswith("WeightsUnavailableError") else ""
        print(f"{PROG}: warning: {name} was not scored: {in_cli_terms(why).rstrip('.')}{hint}",
              file=sys.stderr)
    ok = table.loc[[m for m in table.index if m not in failed]].copy()
    ok.attrs.update(table.attrs)
    _print_ranking(ok, args.sort_by, extra_notes=_size_notes(ok, args.image_size))
    if args.out is not None:
        out = Path(args.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        csv = ok.copy()
        csv["note"] = csv["note"].map(lambda text: in_cli_terms(text) if text else text)
        csv.to_csv(out)  # notes in the words the terminal used
        print(f"wrote {out} ({len(ok)} model{'s' if len(ok) != 1 else ''}, every column)")
    code, evaluation = (_evaluate(ok, args.wide) if args.evaluate else (0, None))
    if code == 0:
        print(f"next step: {in_cli_terms(selection.next_step(ok, evaluation))}")
    return code


def _warn_skipped(caught) -> None:
    """One warning line per folder whose unreadable files ``--skip-bad`` left out (the
    count and the first few paths), however often the folder was read."""
    from transfer_nb.data.folder import UnreadableImagesWarning  # lazy: pulls in torch

    shown = dict.fromkeys(str(w.message) for w in caught
                          if issubclass(w.category, UnreadableImagesWarning))
    for message in shown:
        print(f"{PROG}: warning: {message}", file=sys.stderr)


def _size_notes(ok, image_size) -> list[str]:
    """With ``--image-size``: the models' own resolutions differ from it, so this is
    another experiment than the default one (its ranking can differ)."""

    if image_size is None:
        return []
    own = {}
    for name in ok.index:
        try:
            size = model_input_size(str(name))
        except ValueError:  # not a zoo name
            size = None
        if size and size != image_size:
            own[name] = size
    if not own:
        return []
    sizes = ", ".join(f"{name} {size} px" for name, size in own.items())
    return [f"--image-size {image_size} is not the models' own resolution ({sizes}): scores "
            "at different image sizes are not comparable, and a run without --image-size "
            "(each model at its own resolution, the papers' protocol) can rank them "
            "differently"]


def _print_ranking(ok, sort_by, extra_notes=()) -> None:
    import pandas as pd

    by = sort_by or default_sort_column(ok)
    ranked = rank_table(ok, by=by)
    direction = "higher is better" if ranked.attrs["higher_is_better"] else "lower is better"
    how = "--sort-by" if sort_by else "the first estimator; --sort-by picks another column"
    facts = _shared_facts(ok)
    print(f"{len(ok)} model{'s' if len(ok) != 1 else ''} ranked by {by} ({how}; {direction})"
          + (f", {facts}" if facts else ""))
    shown = [c for c in ranked.columns if c not in ("note", "layer", "n_train", "n_classes",
                                                      "n_test")]
    print(table_text(ranked[shown]))
    lower = [c for c in score_columns(ok) if not higher_is_better(c)]
    print("what the columns mean (higher is better"
          + (f"; lower for {', '.join(lower)}" if lower else "") + "):")
    scores = score_columns(ok)
    order = scores + [c for c in shown if c not in scores and c != "rank"]
    for line in column_meanings(order):
        print(f"  {line}")
    if ok.attrs.get("ground_truth"):
        print(f"  (accuracy: {ok.attrs['ground_truth']} on the held-out images)")
    notes = [f"{m}: {n}" for m, n in ok["note"].items() if n] + list(extra_notes) \
        + ranking_notes(ok)
    if notes:
        print("notes:")
        for line in notes:
            print(f"  - {in_cli_terms(line)}")


def _column_decimals(values) -> int:
    """Decimals that give the column's largest value 4 significant digits (0 to 4)."""
    import numpy as np

    finite = np.abs(values[np.isfinite(values)])
    if not finite.size or finite.max() == 0:
        return 0
    return int(np.clip(3 - np.floor(np.log10(finite.max())), 0, 4))


def table_text(table) -> str:
    """A table as text with one precision per column (4 significant digits of its largest
    value), so that the numbers of a column line up; NaN as ``-``."""
    import pandas as pd
    from pandas.api.types import is_float_dtype

    shown = table.copy()
    for col in shown.columns:
        if is_float_dtype(shown[col]):
            values = shown[col].to_numpy(float)
            places = _column_decimals(values)
            shown[col] = [f"{v:.{places}f}" if pd.notna(v) else "-" for v in values]
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        return shown.to_string(na_rep="-")


def _shared_facts(ok) -> str:
    """What every row shares (layer, images, classes), said once in the header."""
    parts = []
    for col, fmt in (("n_train", "{} images scored"), ("n_classes", "{} classes"),
                     ("n_test", "{} held out"), ("layer", "layer {}")):
        if col in ok.columns and ok[col].nunique(dropna=True) == 1:
            value = ok[col].dropna().iloc[0]
            parts.append(fmt.format(int(value) if isinstance(value, float) else value))
    return ", ".join(parts)


def _evaluate(ok, wide: bool = False):
    """``--evaluate``: every estimator and baseline column against the ground truth;
    ``(exit status, the evaluation table or None)``.

    One sentence when nothing can be evaluated (too few models, a ground truth that
    cannot separate them); else a narrow table (the correlation with its interval and
    the verdict, or why a column is left out) and the conclusion; ``--wide`` prints every
    column of :func:`transfer_nb.evaluation.evaluate_estimators` too."""
    columns = score_columns(ok) + [c for c in BASELINES if c in ok.columns]
    try:
        result = evaluate_estimators(ok, "accuracy", columns=columns)
    except ValueError as err:
        return _fail(f"--evaluate: {err}"), None
    stat = result.attrs["statistic"]
    truth = ok.attrs.get("ground_truth")
    ranked = result[stat].notna().sum() >= 2 and not _truth_failed(result)
    if not ranked:
        print(f"evaluation against the ground truth ({truth}): {result.attrs['conclusion']}")
    else:
        print(f"how well each column ranks the models like the ground truth ({truth}), "
              f"{_STAT_NAMES[stat]} with its 95% bootstrap interval:")
        print(_narrow(result, stat))
        print(f"conclusion: {result.attrs['conclusion']}")
    if wide:
        print("every column of the evaluation (--wide):")
        print(table_text(result))
    return 0, result


_STAT_NAMES = {"kendall": "Kendall tau", "pearson": "Pearson r", "weighted_tau": "weighted tau"}


def _truth_failed(result) -> bool:
    return result.attrs.get("conclusion", "").startswith("the ground truth cannot")


def _narrow(result, stat) -> str:
    """``column  correlation [interval]  verdict``, left-aligned; a column that cannot be
    evaluated says why in a few words (``--wide`` has the whole note)."""
    import numpy as np

    rows = [("column", f"{stat} [95% interval]", "verdict")]
    for name, row in result.iterrows():
        value = row[stat]
        corr = (f"{value:+.2f} [{row[stat + '_low']:+.2f}, {row[stat + '_high']:+.2f}]"
                if np.isfinite(value) else "-")
        notes = [part for part in str(row["note"]).split("; ") if part]
        why = next((n for n in notes if n.startswith("left out: ")), None)
        if why is None and not np.isfinite(value):
            why = "left out: " + (notes[-1] if notes else f"{stat} undefined")
        verdict = why.split(" (")[0].split(", so ")[0] if why else row["verdict"]
        rows.append((str(name), corr, verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows)


RANK_EPILOG = """\
columns (higher is better for every estimator):
  transrate  coding rate of all features minus that within each class
  logme      evidence of a Bayesian linear model from features to labels
  leep, nce  how well the source classifier's own predictions fit your labels
  hscore     spread of the class means relative to all features (degenerate, K - 1,
             when images <= feature width)
  etran      energy of the features plus LDA accuracy (Gholami et al. 2023)
  ncti       closeness of the features to neural collapse (Wang et al. 2023)
  knn, nleep, gbc, parc, sfda, ...
             the other names --estimators lists
  params, width, imagenet_top1
             static baselines: a score that does not beat them is not informative
exit status: 0 when at least one model was scored (a model that was not is one
warning line on stderr), 2 on a bad argument or when no model could be scored.
"""


def rankable_estimators() -> list[str]:
    """Registry names ``rank`` accepts: those reading a layer's features (with the labels)
    or the source model's outputs."""

    accepted = {("features", "labels"), ("source_probs", "labels"), ("source_labels", "labels")}
    return [name for name, entry in registry.REGISTRY.items()
            if tuple(entry.inputs) in accepted]


def add_rank_parser(sub) -> argparse.ArgumentParser:
    """The ``rank`` subcommand's parser."""
    rank = sub.add_parser(
        "rank", help="score models on your images and print them ranked",
        description="Score each model on an image folder (one subfolder per class) with "
        "transferability estimators; print the models best first, say how to read the "
        "scores, and write a CSV.", epilog=RANK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rank.add_argument("--data", required=True, metavar="DIR",
                      help="image folder: one subfolder per class (or train/ and test/ "
                      "holding them); a dataset name of list-datasets works too")
    rank.add_argument("--models", required=True, metavar="A,B,C",
                      help="comma-separated names (transfer-nb list-models)")
    rank.add_argument("--estimators", default=",".join(DEFAULT_ESTIMATORS), metavar="E,F",
                      help="comma-separated estimators (default: %(default)s); any of "
                      f"{', '.join(rankable_estimators())}")
    rank.add_argument("--sort-by", default=None, metavar="COLUMN",
                      help="rank by this column (default: the first of --estimators)")
    rank.add_argument("--layer", default="penultimate", metavar="NAME",
                      help="layer scored in every model (default: %(default)s)")
    rank.add_argument("--ground-truth", default=None, choices=MODEL_TRUTHS,
                      help="also measure the held-out accuracy this way (the scores then "
                      "use the training part only)")
    rank.add_argument("--evaluate", action="store_true",
                      help="with --ground-truth: how well each estimator and baseline "
                      "ranks the models (Kendall tau with its interval and a verdict from "
                      "the paired bootstrap; one sentence when the models are too few or "
                      "the ground truth cannot separate them)")
    rank.add_argument("--wide", action="store_true",
                      help="with --evaluate: every column of the evaluation too (Pearson, "
                      "weighted tau, leave-one-out range, paired differences, notes)")
    rank.add_argument("--test-data", default=None, metavar="DIR",
                      help="held-out folder for --ground-truth (default: DIR's test/ part, "
                      "else a stratified quarter of DIR)")
    rank.add_argument("--out", default=None, metavar="FILE.csv",
                      help="write the scored models' table here (every column)")
    rank.add_argument("--device", default=None, metavar="NAME",
                      help="cpu, cuda, cuda:1 ... (default: "
                      "CUDA when available)")
    rank.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="models scored at a time, each on cores/N threads (default 1)")
    rank.add_argument("--backend", default=None, choices=["threading", "loky", "dask"],
                      metavar="NAME",
                      help="how --jobs > 1 run: threading (threads in this process, the "
                      "default), loky (separate processes, the default with --ground-truth "
                      "fine_tune, so that each fine-tuning's random numbers stay its own) "
                      "or dask (a Dask cluster, see --scheduler)")
    rank.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="Dask scheduler address: send the jobs to that cluster")
    rank.add_argument("--n", type=int, default=None, metavar="N", help="images of DIR to "
                      "use, default all (of its "
                      "train/ part when it has one)")
    rank.add_argument("--image-size", type=int, default=None, metavar="PX",
                      help="resize the images to PX x PX (default: each model's own "
                      "resolution, 224 px for efficientnet_lite0, 240 lite1, 260 lite2; a "
                      "note says when that enlarges your images more than 2x)")
    rank.add_argument("--batch-size", type=int, default=64, metavar="N",
                      help="images per forward pass (default %(default)s)")
    rank.add_argument("--seed", type=int, default=0, metavar="N",
                      help="seed of the split and the subsample (default %(default)s)")
    rank.add_argument("--skip-bad", action="store_true",
                      help="leave unreadable image files out instead of stopping (a "
                      "warning line gives their count and the first few paths)")
    rank.add_argument("--drop-class", action="append", metavar="NAME",
                      help="leave this class folder out (repeat for several)")
    rank.add_argument("--no-cache", action="store_true", help="do not cache the features")
    return rank
