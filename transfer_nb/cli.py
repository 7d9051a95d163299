"""``transfer-nb`` console script: run the tutorials, rank models, list datasets and models.

``transfer-nb run`` executes every notebook in ``notebooks/`` headless (fast mode unless
``--full`` or ``TRANSFER_NB_FAST=0``), writes the executed notebook and an HTML copy under ``build/``
and prints one line per notebook.  With no notebook present it runs a small demo.
``transfer-nb tutorials DIR`` copies the tutorial notebooks shipped in the package (the
repository's ``notebooks/`` in a source checkout) into ``DIR``, keeping the user's edits.
``transfer-nb rank --data DIR --models a,b,c`` scores the models on your images
(:func:`transfer_nb.selection.score_models`), prints them ranked and writes a CSV.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

__all__ = ["main", "run_notebooks", "run_demo", "tutorials_dir", "copy_tutorials",
           "rank_table"]

# In DIR, after a copy: {notebook name: sha256 of the version copied there}, so that a later
# copy can tell an untouched older tutorial (updated) from one the user edited (kept).
TUTORIALS_MANIFEST = ".transfer_nb_tutorials.json"


def _repo_notebooks() -> Path:
    """``notebooks/`` next to the package (source checkout) or in the working directory."""
    here = Path(__file__).resolve().parent.parent / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def tutorials_dir() -> Path:
    """Folder of the tutorial notebooks: ``transfer_nb/tutorials/`` in an installed wheel
    (copied from ``notebooks/`` at build time), else ``notebooks/`` of the source checkout.

    Raises
    ------
    FileNotFoundError
        If neither holds a notebook.
    """
    package = Path(__file__).resolve().parent
    for folder in (package / "tutorials", package.parent / "notebooks"):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise FileNotFoundError(f"no tutorial notebooks in {package / 'tutorials'} or "
                            f"{package.parent / 'notebooks'}; reinstall transfer-nb")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_tutorials(dest, force: bool = False, source=None) -> list[tuple[str, str]]:
    """Copy the tutorial notebooks into ``dest`` without losing the user's edits.

    A notebook missing in ``dest`` is copied; one identical to the shipped version is
    left as it is; one identical to a version this function copied before (recorded
    in ``dest/.transfer_nb_tutorials.json``) is updated; any other (edited by the user)
    is kept unless ``force``.

    Parameters
    ----------
    dest : str or path-like
        Target folder, created if missing.
    force : bool
        Overwrite notebooks that differ from the shipped version too.
    source : path-like, optional
        Folder to copy from (default :func:`tutorials_dir`).

    Returns
    -------
    list of (name, action)
        ``action`` is ``"copied"``, ``"unchanged"``, ``"updated"``, ``"overwritten"``
        or ``"kept"`` (the user's version, left alone).
    """
    source = Path(source) if source is not None else tutorials_dir()
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"tutorials destination {str(dest)!r} is a file; expected a folder")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / TUTORIALS_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    done = []
    for nb in sorted(p for p in source.glob("*.ipynb") if not p.name.startswith(".")):
        target, shipped = dest / nb.name, _sha256(nb)
        if not target.exists():
            action = "copied"
        else:
            current = _sha256(target)
            if current == shipped:
                action = "unchanged"
            elif current == manifest.get(nb.name):
                action = "updated"
            elif force:
                action = "overwritten"
            else:
                done.append((nb.name, "kept"))
                continue
        if action != "unchanged":
            shutil.copyfile(nb, target)
        manifest[nb.name] = shipped
        done.append((nb.name, action))
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return done


def run_notebooks(notebooks: list[Path], out: Path, timeout: int = 1800) -> list[dict]:
    """Execute ``notebooks`` one by one and write ``.ipynb`` + ``.html`` copies to ``out``.

    Returns one record per notebook: ``{"name", "ok", "seconds", "error"}``.
    A failing notebook is still written (with its error) so that it can be inspected.
    """
    from transfer_nb._notebook_exec import execute_notebook

    out.mkdir(parents=True, exist_ok=True)
    return [execute_notebook(path, out, timeout=timeout) for path in notebooks]


def run_demo(n: int = 200, image_size: int = 64) -> None:
    """Extract features of EfficientNet-Lite0 on ``digits`` and print TransRate per layer."""
    from transfer_nb.coding_rate import transrate_per_layer
    from transfer_nb.data import load_dataset
    from transfer_nb.features import extract_features
    from transfer_nb.models import load_model

    model = load_model("efficientnet_lite0")
    data = load_dataset("digits", n=n, image_size=image_size,
                        normalize=model.transfer_nb_normalize)
    features = extract_features(model, data)
    scores = transrate_per_layer(features, data.targets)
    print(f"demo: efficientnet_lite0 on digits (n={len(data)}, {image_size}px)")
    for name, feats in features.items():
        print(f"  {name:<20s} {str(feats.shape):>14s}  TransRate = {scores[name]:.4f}")


def _cmd_run(args: argparse.Namespace) -> int:
    """``transfer-nb run``: fast mode by default (``--full`` or ``TRANSFER_NB_FAST=0``: full).

    ``--notebooks`` naming a folder that does not exist is exit status 2 with a one-line
    message (running the demo instead would hide the typo behind a success).
    """
    if args.full:
        os.environ["TRANSFER_NB_FAST"] = "0"
    elif os.environ.get("TRANSFER_NB_FAST") is None:
        # fast is the documented default of `run`: the notebooks read it from here
        os.environ["TRANSFER_NB_FAST"] = "1"
    if args.notebooks and not Path(args.notebooks).is_dir():
        print(f"transfer-nb run: error: --notebooks {args.notebooks!r} is not a folder",
              file=sys.stderr)
        return 2
    nb_dir = Path(args.notebooks) if args.notebooks else _repo_notebooks()
    notebooks = sorted(p for p in nb_dir.glob("*.ipynb") if not p.name.startswith("."))
    if args.only:
        notebooks = [p for p in notebooks if any(key in p.name for key in args.only)]
    if not notebooks:
        print(f"no notebook in {nb_dir}: running the demo instead")
        run_demo()
        return 0
    from transfer_nb.config import fast_mode
    print(f"executing {len(notebooks)} notebook(s) in {'fast' if fast_mode() else 'full'} mode "
          f"-> {args.out}/")
    records = run_notebooks(notebooks, Path(args.out), timeout=args.timeout)
    width = max(len(r["name"]) for r in records)
    for r in records:
        status = "ok" if r["ok"] else "FAILED"
        line = f"{r['name']:<{width}}  {status:<6s} {r['seconds']:7.1f} s"
        print(line + (f"  {r['error']}" if r["error"] else ""))
    return 0 if all(r["ok"] for r in records) else 1


_TUTORIAL_MESSAGES = {
    "copied": "copied",
    "unchanged": "already there, unchanged",
    "updated": "updated to the shipped version (you had not edited it)",
    "overwritten": "overwritten with the shipped version (--force)",
    "kept": "kept: it differs from the shipped version (your edits?); --force overwrites it",
}


def _cmd_tutorials(args: argparse.Namespace) -> int:
    try:
        source = tutorials_dir()
        done = copy_tutorials(args.dir, force=args.force, source=source)
    except (FileNotFoundError, ValueError) as err:
        print(f"transfer-nb tutorials: {err}", file=sys.stderr)
        return 2
    print(f"tutorials from {source} -> {Path(args.dir).expanduser()}")
    width = max((len(name) for name, _ in done), default=0)
    for name, action in done:
        print(f"  {name:<{width}s}  {_TUTORIAL_MESSAGES[action]}")
    counts = {a: sum(1 for _, b in done if b == a) for a in _TUTORIAL_MESSAGES}
    print(", ".join(f"{k} {a}" for a, k in counts.items() if k) or "no notebook")
    return 0


def _print_listing(names, info, width: int) -> int:
    """One line per name: whether it works offline and what it is."""
    for name in names:
        details = info(name)
        where = "offline" if details.get("offline") else "online "
        print(f"{name:<{width}s} {where}  {details.get('description', '')}")
    return 0


def _cmd_list_datasets(args: argparse.Namespace) -> int:
    from transfer_nb.data import dataset_info, list_datasets
    return _print_listing(list_datasets(), dataset_info, 12)


def _cmd_list_models(args: argparse.Namespace) -> int:
    from transfer_nb.models import list_models, model_info
    return _print_listing(list_models(), model_info, 22)


class _SubcommandParser(argparse.ArgumentParser):
    """Parser of a subcommand: a bad argument is one line on stderr, exit code 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def rank_table(table, by: str | None = None):
    """``score_models``' table sorted best first by ``by`` (default: its first score),
    with a 1-based ``rank`` column first; seconds and empty notes left out.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`transfer_nb.selection.score_models`.
    by : str, optional
        Column to rank by; lower is better only for estimators registered so.
    """
    from transfer_nb.estimators import registry

    scores = [c for c in table.columns if c in registry.REGISTRY]
    by = by if by is not None else (scores[0] if scores else "accuracy")
    if by not in table.columns:
        raise ValueError(f"cannot rank by {by!r}: columns are {list(table.columns)}")
    higher = registry.REGISTRY[by].higher_is_better if by in registry.REGISTRY else True
    ranked = table.sort_values(by, ascending=not higher, na_position="last", kind="stable")
    keep = [c for c in ranked.columns if not c.endswith("_seconds")
            and not (c == "note" and not ranked[c].astype(bool).any())]
    ranked = ranked[keep].copy()
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    return ranked


def _cmd_rank(args: argparse.Namespace) -> int:
    import warnings

    from transfer_nb import selection

    prog = "transfer-nb rank"
    models = _split_names(args.models)
    estimators = _split_names(args.estimators)
    if not models:
        print(f"{prog}: error: --models is empty: give comma-separated names "
              "(transfer-nb list-models)", file=sys.stderr)
        return 2
    backend = "dask" if args.scheduler is not None else (args.backend or None)
    try:
        if args.scheduler is not None and args.backend not in (None, "dask"):
            raise ValueError(f"--scheduler sends the jobs to Dask: it cannot go with "
                             f"--backend {args.backend}")
        if args.out is not None and Path(args.out).is_dir():
            raise ValueError(f"--out {args.out!r} is a folder; expected a CSV file name")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. sklearn convergence
            table = selection.score_models(
                models, args.data, estimators=estimators, layer=args.layer,
                ground_truth=args.ground_truth, test_data=args.test_data,
                device=args.device, n_jobs=args.jobs, backend=backend,
                scheduler=args.scheduler, n=args.n, image_size=args.image_size,
                seed=args.seed, batch_size=args.batch_size, cache=not args.no_cache,
                progress=True)
    except ValueError as err:
        message = " ".join(str(err).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    ranked = rank_table(table)
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(ranked.to_string(float_format=lambda v: f"{v:.4g}"))
    truth = table.attrs.get("ground_truth")
    if truth:
        print(f"accuracy: {truth} on the held-out images")
    if args.out is not None:
        out = Path(args.out).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)
        print(f"wrote {out}")
    return 0


def _add_rank_parser(sub) -> argparse.ArgumentParser:
    from transfer_nb.selection import MODEL_ESTIMATORS, MODEL_TRUTHS

    rank = sub.add_parser(
        "rank", help="score models on your images and print them ranked",
        description="Score each model on an image folder (one subfolder per class) with "
        "transferability estimators; print the models best first and write a CSV.")
    rank.add_argument("--data", required=True, metavar="DIR",
                      help="image folder: one subfolder per class (or train/ and test/ "
                      "holding them); a dataset name of list-datasets works too")
    rank.add_argument("--test-data", default=None, metavar="DIR",
                      help="held-out folder for --ground-truth (default: DIR's test split)")
    rank.add_argument("--models", required=True, metavar="A,B,C",
                      help="comma-separated names (transfer-nb list-models)")
    rank.add_argument("--estimators", default=",".join(MODEL_ESTIMATORS), metavar="E,F",
                      help="comma-separated estimators (default: %(default)s)")
    rank.add_argument("--layer", default="penultimate", metavar="NAME",
                      help="layer scored in every model (default: %(default)s)")
    rank.add_argument("--ground-truth", default=None, choices=MODEL_TRUTHS,
                      help="also measure the held-out accuracy this way")
    rank.add_argument("--out", default=None, metavar="FILE.csv", help="write the table here")
    rank.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: "
                      "CUDA when available)")
    rank.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="models scored at a time (joblib processes, or Dask workers)")
    rank.add_argument("--backend", default=None, choices=["loky", "threading", "dask"],
                      help="engine for --jobs > 1 (default: loky processes)")
    rank.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="Dask scheduler address: send the jobs to that cluster")
    rank.add_argument("--n", type=int, default=None, help="images of the training split to use")
    rank.add_argument("--image-size", type=int, default=None, metavar="PX",
                      help="resize the images to PX x PX (default 224)")
    rank.add_argument("--batch-size", type=int, default=64, help="forward-pass batch size")
    rank.add_argument("--seed", type=int, default=0, help="split and subsample seed")
    rank.add_argument("--no-cache", action="store_true", help="do not cache the features")
    return rank


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``transfer-nb`` console script."""
    parser = argparse.ArgumentParser(prog="transfer-nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)
    run = sub.add_parser("run", help="execute the tutorials and write build/")
    run.add_argument("--out", default="build", help="output folder (default: build)")
    run.add_argument("--full", action="store_true",
                     help="full mode (default: fast, unless TRANSFER_NB_FAST=0)")
    run.add_argument("--notebooks", default=None, help="folder of notebooks to run")
    run.add_argument("--only", nargs="*", help="run notebooks whose name contains these")
    run.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    run.set_defaults(func=_cmd_run)
    sub.add_parser("list-datasets", help="datasets and whether they work offline"
                   ).set_defaults(func=_cmd_list_datasets)
    sub.add_parser("list-models", help="models and whether they work offline"
                   ).set_defaults(func=_cmd_list_models)
    tutorials = sub.add_parser("tutorials", help="copy the tutorial notebooks into DIR "
                               "(keeps notebooks you edited unless --force)")
    tutorials.add_argument("dir", metavar="DIR", help="destination folder (created if missing)")
    tutorials.add_argument("--force", action="store_true",
                           help="also overwrite notebooks that differ from the shipped ones")
    tutorials.set_defaults(func=_cmd_tutorials)
    _add_rank_parser(sub).set_defaults(func=_cmd_rank)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
