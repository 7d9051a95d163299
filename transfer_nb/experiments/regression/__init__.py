"""Linear MSE and Label MSE (Nguyen et al., "Simple Transferability Estimation for
Regression Tasks", UAI 2023): rank a zoo of models on regression targets.

The experiment contract (docs/contributing.md): :func:`config` (``"fast"`` | ``"full"``,
your own regression ``targets=``), :func:`run` -> :class:`~transfer_nb.experiments.base.Results`,
:mod:`.report` (``checks``, ``verdicts``, ``summary``), :mod:`.plots`, :mod:`.power`
(how the primary's interval width depends on targets, models and seeds), and
``python -m transfer_nb.experiments.regression --full --save``.

* **Zoo**: small CNNs of one architecture, one width and one epoch budget, whose quality
  varies through what they learned (source task, source data size, label noise), built
  by the shared zoo builder; the random-init model is declared out of the verdicts in
  the config (a leverage point), and shown beside them.
* **Targets**: keypoint subsets of ``shape_keypoints`` (the paper's tasks are keypoint
  subsets) and ``rotated_digits`` with different angle and scale ranges, tens of
  training images, targets min-max scaled with the training range.
* **Truth**: LP-FT fine-tuning with a regression head (head from the ridge probe, then
  every layer, MSE loss), lr chosen per target on a validation split, several seeds;
  the negative test MSE.
* **Scores**: Linear MSE on standardised features and Label MSE on standardised
  log-probabilities (lambda = 1 then means the same for every model), LogME, the raw
  forms (lambda = 1 on raw features / softmax outputs) and trivial baselines; each
  with a shuffled-target control judged as a paired difference.
"""
from transfer_nb.experiments.regression import plots, power, report
from transfer_nb.experiments.regression.presets import (BASELINES, ESTIMATORS, KEYPOINTS,
                                                        PAPER, PRIMARY, RegressionConfig,
                                                        config, config_hash, describe)
from transfer_nb.experiments.regression.report import lambda_scores
from transfer_nb.experiments.regression.runner import (choose_recipe, fine_tune_regression,
                                                       load_regression_target,
                                                       probe_regression, run, score_features)

__all__ = ["config", "run", "report", "plots", "power", "describe", "config_hash", "RegressionConfig",
           "ESTIMATORS", "BASELINES", "PAPER", "PRIMARY", "KEYPOINTS", "choose_recipe",
           "fine_tune_regression", "load_regression_target", "probe_regression",
           "score_features", "lambda_scores"]
