"""TransRate (Huang et al., ICML 2022): model selection and layer selection.

The paper's two core experiments at toy scale, offline, in the regime where the ground
truth discriminates:

* **Model selection** (:func:`model_selection`): an equal-width zoo of small CNNs of
  graded quality (random init, different source tasks, source epochs, label noise) is
  scored on data-scarce targets (10 labelled images per class) by TransRate's three
  variants and the baselines (LogME, LEEP, NCE, H-score and its shrinkage version), and
  fine-tuned with several seeds (the paper's ground truth); the ImageNet EfficientNet-Lite
  models form a separate zoo in full mode.  :func:`discrimination_check` says per target
  whether the accuracies spread enough to rank anything; :func:`correlations` gives
  Pearson, Kendall and weighted tau with intervals, beside the width and source-epochs
  baselines.
* **Layer selection** (:func:`layer_selection`): the paper's protocol (re-initialise after
  the layer, fine-tune) on a small CNN, several seeds.

Submodules: :mod:`.config` (presets), :mod:`.run` (the runs, cached; the stored full
run), :mod:`.report` (tables, verdicts, generated prose), :mod:`.plots`.
Command line: ``python -m transfer_nb.experiments.transrate --full --save``.
"""
from transfer_nb.experiments.transrate.config import (
    BASELINES, ESTIMATORS, PAPER, PAPER_LAYER, LayerSelectionConfig, ModelSelectionConfig,
    SourceSpec, TargetSpec, TransRateConfig, config, config_hash, describe)
from transfer_nb.experiments.transrate.plots import (
    plot_eps_sweep, plot_layer_selection, plot_model_selection, plot_timings)
from transfer_nb.experiments.transrate.report import (
    VERDICT_RULE, claim_verdict, combine_verdicts, compare_verdict, correlations,
    discrimination_check, eps_sweep, interval_table, layer_correlation, paper_vs_measured,
    report_check, report_eps_sweep, report_layer_selection, report_model_selection,
    timing_table)
from transfer_nb.experiments.transrate.run import (
    RESULTS_CSV, build_source, layer_selection, load_full_run, model_selection, save_full_run,
    score_features)

__all__ = ["SourceSpec", "TargetSpec", "ModelSelectionConfig", "LayerSelectionConfig",
           "TransRateConfig", "config", "config_hash", "describe", "ESTIMATORS", "BASELINES",
           "PAPER", "PAPER_LAYER", "model_selection", "layer_selection", "score_features",
           "build_source", "save_full_run", "load_full_run", "RESULTS_CSV",
           "discrimination_check", "correlations", "interval_table", "eps_sweep",
           "layer_correlation", "timing_table", "claim_verdict", "compare_verdict",
           "combine_verdicts", "paper_vs_measured", "VERDICT_RULE", "report_check",
           "report_model_selection", "report_eps_sweep", "report_layer_selection",
           "plot_model_selection", "plot_eps_sweep", "plot_timings", "plot_layer_selection"]
