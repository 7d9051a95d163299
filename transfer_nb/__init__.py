"""transfer-nb: transferability estimation, taught and reproduced.

How well will a pretrained model, or one of its layers, transfer to your task, estimated
without fine-tuning?  After ``pip install transfer-nb``:

* ``transfer-nb tutorials DIR`` copies the tutorial notebooks (shipped in this package)
  into ``DIR``; ``transfer-nb run --only 00`` executes tutorial 00 headless and writes
  ``build/00_quickstart.html``; ``transfer-nb rank --data my_images/ --models
  efficientnet_lite0,efficientnet_lite1`` ranks models on your own images (one subfolder
  per class).  ``transfer-nb --help`` lists the commands.
* In Python::

    import transfer_nb as tnb
    table = tnb.score_models(["efficientnet_lite0", "efficientnet_lite1"], "my_images/")
    tnb.rank_table(table)                         # best first
    tnb.selection.ranking_notes(table)            # how to read it
    tnb.score_layers(model, "my_images/")         # which layer to transfer
    tnb.coding_rate(Z, eps=1e-4)
    tnb.transrate(Z, y, eps=1e-4)                 # variant="snippet" | "layerwise" | "projected"
    tnb.estimators.logme / leep / nce / hscore / linear_mse / label_mse / pge
    tnb.extract_features(model, data, layers=None, pool="avg")
    tnb.load_dataset(name, split="train", n=None, image_size=None, seed=0)  # or "folder"
    tnb.load_model(name, pretrained=True)         # EfficientNet-Lite0/1/2 work offline
    tnb.list_models(), tnb.list_datasets()
    tnb.estimators.knn / nleep / gbc / parc / sfda  # the scores recent benchmarks compare
    tnb.evaluate_estimators(table, "accuracy", groups="target")   # which score to trust
    tnb.exercises.check("01.1", my_coding_rate)   # the lessons' self-checking exercises

* The interactive widgets: ``import transfer_nb_widgets as widgets`` (needs the
  ``widgets`` extra); ``%load_ext transfer_nb`` adds the ``%transrate`` magic.

Attributes are imported lazily so that ``import transfer_nb`` stays cheap and the
numerical core works without touching torch.  This package never imports ipywidgets.
"""
from __future__ import annotations

import importlib

from transfer_nb._version import __version__  # noqa: E402

# Imported eagerly (numpy only): the submodule ``transfer_nb.coding_rate`` shares its
# name with the function, and binding the function here, after the submodule has been
# loaded, keeps ``tnb.coding_rate`` the function whatever is imported later.
from transfer_nb.coding_rate import (  # noqa: E402
    coding_rate, coding_rate_terms, transrate, transrate_official, transrate_per_layer)

# public name -> module that defines it
_LAZY = {
    "extract_features": "transfer_nb.features",
    "list_layers": "transfer_nb.models.layers",
    "feature_layers": "transfer_nb.models.layers",
    "load_dataset": "transfer_nb.data",
    "list_datasets": "transfer_nb.data",
    "load_model": "transfer_nb.models",
    "list_models": "transfer_nb.models",
    "score_models": "transfer_nb.selection",
    "score_layers": "transfer_nb.selection",
    "rank_table": "transfer_nb.selection",
    "evaluate_estimators": "transfer_nb.evaluation",
}
_SUBMODULES = {"estimators", "data", "models", "features", "cache", "experiments", "stats",
               "selection", "plots", "evaluation",
               "magics", "config", "transfer", "preprocessing", "cli", "exercises",
               "training", "adversarial"}
#: front-door names of submodules that moved into a group (issue 35): ``tnb.transfer`` is
#: the module's new home, without the old import path's deprecation warning
_HOMES = {"transfer": "transfer_nb.training.transfer", "magics": "transfer_nb.cli.magics"}

__all__ = (["coding_rate", "coding_rate_terms", "transrate", "transrate_official",
            "transrate_per_layer"] + sorted(_LAZY) + sorted(_SUBMODULES))


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(_HOMES.get(name, f"transfer_nb.{name}"))
        globals()[name] = module
        return module
    raise AttributeError(f"module 'transfer_nb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython):
    """``%load_ext transfer_nb``: register the transfer-nb magics."""
    from transfer_nb.cli.magics import register_magics  # lazy: pulls in IPython
    register_magics(ipython)
