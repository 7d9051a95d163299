"""IPython magics: ``%load_ext transfer_nb`` registers them.

``%transrate``
    TransRate of every layer of a model on a dataset, printed as a table and plotted::

        %transrate --model efficientnet_lite0 --data digits --layers all --n 200 --image-size 64

``%transfer_nb_datasets`` / ``%transfer_nb_models``
    What :func:`transfer_nb.load_dataset` / :func:`transfer_nb.load_model` accept.

The magics print with ``print`` and plot with matplotlib's pyplot (the notebook's
inline backend shows the figure); like the rest of :mod:`transfer_nb` they never
import ipywidgets.
"""
from __future__ import annotations


from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from transfer_nb.plots import plot_layer_scores
from transfer_nb.selection import score_layers
from transfer_nb.stats import rank_correlations
from transfer_nb.selection._target import is_folder

__all__ = ["TransferNbMagics", "register_magics"]

# Models loaded by %transrate, by name: running the magic again (other data, other
# layers) must not pay for building the network and reading its weights again.
_MODEL_CACHE: dict = {}


def _model(name: str):
    if name not in _MODEL_CACHE:
        from transfer_nb.models import load_model  # lazy: pulls in torch

        _MODEL_CACHE[name] = load_model(name)
    return _MODEL_CACHE[name]


def _describe(info_function, name: str) -> tuple[str, str]:
    """(``"yes"``/``"no"``/``"?"``, description) from a ``*_info`` function."""
    if info_function is None:
        return "?", ""
    try:
        info = info_function(name)
    except Exception:  # an entry without info is still listed
        return "?", ""
    offline = info.get("offline")
    flag = "?" if offline is None else ("yes" if offline else "no")
    return flag, " ".join(str(info.get("description", "")).split())


def _print_listing(kind: str, names, info_function) -> None:
    rows = [(name, *_describe(info_function, name)) for name in names]
    width = max([len(kind)] + [len(r[0]) for r in rows])
    print(f"{kind:<{width}}  offline  description")
    for name, flag, text in rows:
        print(f"{name:<{width}}  {flag:<7}  {text}")


DEFAULT_N = 200


def _images_to_use(data, n, probe: bool):
    """``(n, note)``: ``n`` (default :data:`DEFAULT_N`), or ``None`` (every image) with a
    note when a folder holds fewer for the scored part (its ``train/`` part with
    ``--probe`` when it has one); dataset names keep ``n``."""

    wanted = DEFAULT_N if n is None else n
    if not isinstance(data, str) or not is_folder(data) or not _exists(data):
        return wanted, ""
    from transfer_nb.data.folder import folder_source  # lazy: pulls in torch

    source = folder_source(data)
    held = source.split_of is not None and probe
    have = int((source.split_of == "train").sum()) if held else len(source.targets)
    if wanted <= have:
        return wanted, ""
    return None, (
        f"(the folder holds {have} images{' in train/' if held else ''}, fewer than "
        f"{wanted}: every one of them is used)")


def _exists(path: str) -> bool:
    import os
    return os.path.isdir(path)


@magics_class
class TransferNbMagics(Magics):
    """The transfer-nb line magics."""

    @magic_arguments()
    @argument("--model", default="efficientnet_lite0",
              help="model name (see %%transfer_nb_models); default efficientnet_lite0")
    @argument("--data", default="digits",
              help="dataset name (see %%transfer_nb_datasets); default digits")
    @argument("--layers", default="all",
              help="'all' (every block output + penultimate, the default) or a "
                   "comma-separated list of layer names")
    @argument("--n", type=int, default=None,
              help="number of images (default 200, or every image of a smaller folder)")
    @argument("--image-size", type=int, default=64, help="image side in pixels (default 64)")
    @argument("--eps", type=float, default=1e-4, help="coding-rate distortion (default 1e-4)")
    @argument("--split", default="train", help="dataset split (default train)")
    @argument("--seed", type=int, default=0, help="seed of the subsample (default 0)")
    @argument("--probe", action="store_true",
              help="also measure linear-probe accuracy per layer (trained on these images, "
                   "scored on --n images of the test split) and print the correlations")
    @argument("--no-plot", action="store_true", help="print the table only")
    @argument("-o", "--out", default=None, metavar="VAR",
              help="store the result table (a pandas DataFrame) in this variable")
    @line_magic
    def transrate(self, line: str = ""):
        """TransRate of every layer of a pretrained model on a dataset.

        Runs :func:`transfer_nb.selection.score_layers` (the procedure of the
        ``LayerSelector`` widget and of the TransRate experiment): one forward pass
        over the requested layers, one row per layer (depth, feature width, TransRate,
        and with ``--probe`` the linear-probe accuracy on the dataset's test split),
        then a plot of TransRate per layer.
        """
        args = parse_argstring(self.transrate, line)
        # command-line text -> a request extract_features resolves ("all" or names)
        layers = args.layers.strip()
        if layers not in ("all", "default"):
            layers = [name.strip() for name in layers.split(",") if name.strip()]
        try:
            n, adapted = _images_to_use(args.data, args.n, args.probe)
            table = score_layers(_model(args.model), args.data, layers=layers,
                                 estimators=("transrate",),
                                 ground_truth="linear_probe" if args.probe else None, n=n,
                                 image_size=args.image_size, split=args.split,
                                 seed=args.seed, eps=args.eps)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            # Bad names or settings: a one-line message, not a traceback.
            message = str(exc).strip("'\"") or type(exc).__name__
            raise UsageError(f"%transrate: {message}") from None

        where = f"{n} images of the {args.split} split" if n is not None else \
            "every image"
        print(f"TransRate (eps = {args.eps:g}) of {args.model} on {args.data}: "
              f"{where}, {args.image_size} px"
              + (", probes scored on the test split" if args.probe else ""))
        if adapted:
            print(adapted)
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
        if args.probe:
            c = rank_correlations(table["transrate"], table["accuracy"],
                                  seed=args.seed).iloc[0]
            print(f"Pearson r = {c['pearson']:.3f} [{c['pearson_low']:.2f}, "
                  f"{c['pearson_high']:.2f}], Kendall tau = {c['kendall']:.3f} "
                  f"[{c['kendall_low']:.2f}, {c['kendall_high']:.2f}] over {int(c['n'])} layers "
                  "(95% bootstrap intervals)")
        print(f"Highest TransRate: {table['transrate'].idxmax()}")
        if args.out:
            self.shell.user_ns[args.out] = table
        if not args.no_plot:
            import matplotlib.pyplot as plt

            plot_layer_scores(table, "transrate", title=f"{args.model} on {args.data}")
            plt.show()

    @line_magic
    def transfer_nb_datasets(self, line: str = ""):
        """List the datasets :func:`transfer_nb.load_dataset` knows (offline = embedded)."""
        import transfer_nb.data as data  # lazy: pulls in torch

        _print_listing("dataset", data.list_datasets(), getattr(data, "dataset_info", None))

    @line_magic
    def transfer_nb_models(self, line: str = ""):
        """List the models :func:`transfer_nb.load_model` knows."""
        import transfer_nb.models as models  # lazy: pulls in torch

        _print_listing("model", models.list_models(), getattr(models, "model_info", None))


def register_magics(ipython) -> None:
    """Register :class:`TransferNbMagics` with an IPython shell."""
    ipython.register_magics(TransferNbMagics)
