"""Which estimator to trust? (notebook 07): every classification score of the registry and
two static baselines on an offline zoo of models read at a layer, judged against a
linear probe on the frozen features.

The experiment contract (docs/contributing.md): :func:`config` (``"fast"`` | ``"full"``
| ``"confirm"``, your own ``targets=``), :func:`run` ->
:class:`~transfer_nb.experiments.base.Results`, :mod:`.report` (``checks``,
``verdicts``, ``summary``), :mod:`.plots`, and ``python -m
transfer_nb.experiments.which_estimator --full --save``.

* **The zoo**: the three ImageNet EfficientNet-Lite models read at six depths (64 px)
  and the TransRate experiment's small CNNs (16 px, penultimate layer).
* **The truth**: a linear probe on each item's frozen features, per few-shot draw.
* **The primary claim** (:data:`PRIMARY`): PARC -- the exploratory runs' best score --
  ranks the items better than their size (``params``), a paired difference of Kendall
  tau within target; beside it the same claims within each model family.
"""
from transfer_nb.experiments.which_estimator import plots, report
from transfer_nb.experiments.which_estimator.plots import plot_items
from transfer_nb.experiments.which_estimator.presets import (
    BASELINES, CONFIRM_PLAN, FAMILIES, NAMED, OPTIONS, PAPER, PRIMARY, PRIMARY_SCORE,
    SOURCE_ESTIMATORS, WhichEstimatorConfig, config, config_hash, describe,
    feature_estimators, score_names)
from transfer_nb.experiments.which_estimator.report import (by_family, checks, evaluate,
                                                            item_table, per_target_best,
                                                            summary, verdicts)
from transfer_nb.experiments.which_estimator.runner import (parameters_up_to, run,
                                                            score_layer, target_data)
from transfer_nb.experiments.base import SourceSpec, TargetSpec

__all__ = ["config", "run", "report", "plots", "describe", "config_hash",
           "WhichEstimatorConfig", "PRIMARY", "PRIMARY_SCORE", "NAMED", "PAPER", "FAMILIES",
           "SOURCE_ESTIMATORS", "BASELINES", "OPTIONS", "CONFIRM_PLAN", "feature_estimators",
           "score_names", "checks", "verdicts", "summary", "item_table", "evaluate",
           "by_family", "per_target_best", "plot_items", "parameters_up_to", "score_layer",
           "target_data", "SourceSpec", "TargetSpec"]
