"""Linear MSE and Label MSE (Nguyen et al., "Simple Transferability Estimation for
Regression Tasks", UAI 2023): rank a zoo of models on regression targets.

The paper's core experiment on data and models that work offline:

* **Zoo.** Small CNNs of one architecture and one width (so that feature width cannot
  explain a ranking), trained by :func:`transfer_nb.models.train_source` on different
  embedded classification tasks for different numbers of epochs, plus a randomly
  initialised one (0 epochs).
* **Targets.** The embedded regression sets ``rotated_digits`` (cos, sin of the angle
  and the scale of a rotated digit) and ``shape_keypoints`` (ten keypoint coordinates
  of a heart), in a data-scarce regime (tens of training images).  Targets are min-max
  scaled to ``[0, 1]`` per column with the training split's range (the paper's setting).
* **Ground truth.** Every model is fine-tuned with a new linear regression head (all
  layers trained, MSE loss, :func:`transfer_nb.training.fit` with ``loss="mse"``) for
  several seeds; the ground truth is the negative test MSE (mean over seeds).
* **Scores** on the training split: Linear MSE on the penultimate features, Label MSE
  on the source head's softmax outputs (dummy labels), LogME's regression form (the
  mean over target columns of :func:`~transfer_nb.estimators.logme.logme_evidence`,
  the evidence of a Bayesian linear regression; LogME already handles real targets
  there, so nothing new is implemented) and trivial baselines (source epochs, source
  accuracy).  Each is timed.
* **Shuffled control.** The same scores with the training targets permuted (one
  permutation per target, shared by all models): they must lose their correlation.

Expensive work (source training, features, fine-tuning) is cached on disk
(:mod:`transfer_nb.cache`); the scores and their wall-clock times are recomputed on
every :func:`run`.  Correlations go through :func:`transfer_nb.stats.rank_correlations`.

Modules: :mod:`.config`, :mod:`.run` (sources, fine-tuning, scores), :mod:`.report`
(checks, correlations, verdicts, prose), :mod:`.plots`.
"""
from transfer_nb.experiments.regression.config import (BASELINES, ESTIMATORS, PAPER,
                                                       RegressionConfig, SourceSpec, config,
                                                       describe)
from transfer_nb.experiments.regression.plots import (plot_correlations, plot_lambda,
                                                      plot_scores)
from transfer_nb.experiments.regression.report import (_verdict_better, _verdict_control,
                                                       check_report, correlations,
                                                       ground_truth_check, lambda_correlations,
                                                       lambda_scores, paper_vs_measured, report,
                                                       shuffled_correlations, timing_table)
from transfer_nb.experiments.regression.run import (Cell, RegressionResults, _build_source,
                                                    _load, fine_tune_regression, run,
                                                    scale_targets, score_cells, score_features)

__all__ = ["SourceSpec", "RegressionConfig", "Cell", "RegressionResults", "ESTIMATORS",
           "BASELINES", "PAPER", "config", "describe", "scale_targets", "fine_tune_regression",
           "score_features", "score_cells", "run", "ground_truth_check", "correlations",
           "shuffled_correlations", "lambda_scores", "lambda_correlations", "timing_table",
           "paper_vs_measured", "report", "check_report", "plot_scores", "plot_correlations",
           "plot_lambda"]
