"""``transfer-nb`` console script: run the tutorials, list datasets and models.

``transfer-nb run`` executes every notebook in ``notebooks/`` headless (fast mode unless
``TRANSFER_NB_FAST=0``), writes the executed notebook and an HTML copy under ``build/``
and prints one line per notebook.  With no notebook present it runs a small demo.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "run_notebooks", "run_demo"]


def _repo_notebooks() -> Path:
    """``notebooks/`` next to the package (source checkout) or in the working directory."""
    here = Path(__file__).resolve().parent.parent / "notebooks"
    return here if here.is_dir() else Path.cwd() / "notebooks"


def run_notebooks(notebooks: list[Path], out: Path, timeout: int = 1800) -> list[dict]:
    """Execute ``notebooks`` one by one and write ``.ipynb`` + ``.html`` copies to ``out``.

    Returns one record per notebook: ``{"name", "ok", "seconds", "error"}``.
    A failing notebook is still written (with its error) so that it can be inspected.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except CellExecutionError as exc:  # keep the partial notebook, report the first line
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        except Exception as exc:  # kernel died, timeout ...
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        nbformat.write(nb, out / path.name)
        body, _ = HTMLExporter().from_notebook_node(nb)
        (out / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
        records.append({"name": path.name, "ok": error is None, "seconds": seconds,
                        "error": error})
    return records


def run_demo(n: int = 200, image_size: int = 64) -> None:
    """Extract features of EfficientNet-Lite0 on ``digits`` and print TransRate per layer."""
    import transfer_nb as tnb

    model = tnb.load_model("efficientnet_lite0")
    data = tnb.load_dataset("digits", n=n, image_size=image_size,
                            normalize=model.transfer_nb_normalize)
    features = tnb.extract_features(model, data)
    try:
        scores = tnb.transrate_per_layer(features, data.targets)
    except (ImportError, AttributeError):  # estimator suite not installed yet
        scores = None
    print(f"demo: efficientnet_lite0 on digits (n={len(data)}, {image_size}px)")
    for name, feats in features.items():
        extra = f"  TransRate = {scores[name]:.4f}" if scores is not None else ""
        print(f"  {name:<20s} {str(feats.shape):>14s}{extra}")


def _cmd_run(args: argparse.Namespace) -> int:
    if args.full:
        os.environ["TRANSFER_NB_FAST"] = "0"
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``transfer-nb`` console script."""
    parser = argparse.ArgumentParser(prog="transfer-nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the tutorials and write build/")
    run.add_argument("--out", default="build", help="output folder (default: build)")
    run.add_argument("--full", action="store_true", help="full mode (TRANSFER_NB_FAST=0)")
    run.add_argument("--notebooks", default=None, help="folder of notebooks to run")
    run.add_argument("--only", nargs="*", help="run notebooks whose name contains these")
    run.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    run.set_defaults(func=_cmd_run)
    sub.add_parser("list-datasets", help="datasets and whether they work offline"
                   ).set_defaults(func=_cmd_list_datasets)
    sub.add_parser("list-models", help="models and whether they work offline"
                   ).set_defaults(func=_cmd_list_models)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
