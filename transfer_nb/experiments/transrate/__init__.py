"""TransRate (Huang et al., ICML 2022): model selection and layer selection.

The paper's two core experiments, on data and models that work offline:

* **Model selection** (:func:`model_selection`): a zoo of pretrained models -- the three
  EfficientNet-Lite models with real ImageNet weights plus small CNN / ResNet sources
  that the library trains on embedded source tasks of different kinds, sizes and
  training lengths -- is scored on each target task by TransRate and the baselines
  (LogME, LEEP, NCE, H-score), and every model is fine-tuned on the target (the
  paper's ground truth).  :func:`correlations` gives Pearson r, Kendall tau and
  weighted tau between each score and the accuracy, per target, with 95 % bootstrap
  intervals.
* **Layer selection** (:func:`layer_selection`): :func:`transfer_nb.selection.score_layers`
  on one model -- TransRate of every default layer vs the accuracy of transferring *up
  to* that layer (``protocol="finetune_reinit"``, the paper's, or ``"linear_probe"``).

Submodules: :mod:`.config` (presets), :mod:`.run` (the runs, cached), :mod:`.report`
(tables and the paper-vs-measured verdicts), :mod:`.plots`.
"""
from transfer_nb.experiments.transrate.config import (
    ESTIMATORS, PAPER, LayerSelectionConfig, ModelSelectionConfig, SourceSpec, TargetSpec,
    TransRateConfig, config, describe)
from transfer_nb.experiments.transrate.plots import (
    plot_correlations, plot_layer_selection, plot_model_selection, plot_timings)
from transfer_nb.experiments.transrate.report import (
    correlation_table, correlations, layer_correlation, paper_vs_measured, timing_table)
from transfer_nb.experiments.transrate.run import layer_selection, model_selection, score_features

__all__ = ["SourceSpec", "TargetSpec", "ModelSelectionConfig", "LayerSelectionConfig",
           "TransRateConfig", "config", "describe", "ESTIMATORS", "PAPER", "model_selection",
           "layer_selection", "score_features", "correlations", "correlation_table",
           "layer_correlation", "timing_table", "paper_vs_measured", "plot_model_selection",
           "plot_correlations", "plot_timings", "plot_layer_selection"]
