"""The paper experiments: one package per paper, each a config (``fast`` | ``full``) ->
tidy results -> checks, verdicts, summary and plots.

The papers on the experiment contract (:data:`PAPERS`; docs/contributing.md, "The
experiment contract"), each a package ``transfer_nb.experiments.<paper>`` with ``config``,
``describe``, ``config_hash``, ``run``, ``report`` (``checks``, ``verdicts``,
``summary``), ``plots`` and a command line (``python -m transfer_nb.experiments.<paper>
--full --save``):

* :mod:`~transfer_nb.experiments.transrate` -- Huang et al., ICML 2022: model and layer
  selection with TransRate against LogME / LEEP / NCE / H-score (notebook 02);
* :mod:`~transfer_nb.experiments.head2toe` -- Evci et al., ICML 2022: features from
  every layer against fine-tuning (notebook 03);
* :mod:`~transfer_nb.experiments.regression` -- Nguyen et al., UAI 2023: Linear MSE and
  Label MSE for regression targets (notebook 04);
* :mod:`~transfer_nb.experiments.adversarial` -- Deng et al., NeurIPS 2021: adversarial
  and semi-supervised source training helps transfer (notebook 05);
* :mod:`~transfer_nb.experiments.pge` -- Qi et al., 2022: source selection from
  principal gradients (notebook 06);
* :mod:`~transfer_nb.experiments.which_estimator` -- which estimator to trust: every
  score and a size baseline on a zoo of models read at a layer (notebook 07).

Every experiment is on the contract (:data:`OFF_CONTRACT` is empty: an experiment that
is not yet would be listed there with what it lacks).  The shared pieces live in
:mod:`~transfer_nb.experiments.base` (specs, stored runs, verdicts),
:mod:`~transfer_nb.experiments.cells` (cache keys derived from the config's fields, cached
cells, the one parallel map: ``--jobs`` / ``--dask``), :mod:`~transfer_nb.experiments.zoo`
(the source zoo of the papers that train their own sources) and
:mod:`~transfer_nb.experiments.gates`.  (Notebook 01's teaching helpers moved to
:mod:`transfer_nb.teaching.coding_rate`; ``transfer_nb.experiments.coding_rate`` is a
deprecated alias.)

Submodules are imported lazily (``transfer_nb.experiments.transrate``) so that
``import transfer_nb.experiments`` stays cheap.
"""
from __future__ import annotations

import importlib

#: the paper packages on the experiment contract, in notebook order; the contract test and
#: the stored-run freshness test run over these
PAPERS = ("transrate", "head2toe", "regression", "adversarial", "pge", "which_estimator")

#: experiments not on the contract yet -> what each lacks (the contract test holds them as
#: strict expected failures: remove one from here once it passes)
OFF_CONTRACT: dict = {}

#: every experiment: the papers, then those off the contract
EXPERIMENTS = PAPERS + tuple(OFF_CONTRACT)

__all__ = ["PAPERS", "OFF_CONTRACT", "EXPERIMENTS", *EXPERIMENTS, "base", "gates"]


def __getattr__(name: str):
    try:
        return importlib.import_module(f"transfer_nb.experiments.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"transfer_nb.experiments.{name}":
            raise AttributeError(f"module 'transfer_nb.experiments' has no attribute {name!r}") from None
        raise
