"""TransRate (Huang et al., ICML 2022): model selection and layer selection.

The experiment contract (docs/contributing.md): :func:`config` (``"fast"`` | ``"full"``,
your own ``targets=``), :func:`run` -> :class:`~transfer_nb.experiments.base.Results`,
:mod:`.report` (``checks``, ``verdicts``, ``summary``), :mod:`.plots`, and
``python -m transfer_nb.experiments.transrate --full --save``.

* **Model selection**: a zoo of one architecture at one width and one epoch budget, whose
  quality varies through the source task, source data size, label noise and
  augmentation, scored on few-shot targets (5 labelled images per class) by TransRate's
  three computations and the baselines (LogME, LEEP, NCE, H-score and its shrinkage
  version, source accuracy, source data size); the truth is LP-FT fine-tuning (head from
  the linear probe, then every layer), its learning rate chosen per target on a
  validation split of the training images, several seeds.  The random-init model is
  declared out of the verdicts in the config (its features are degenerate).
* **Layer selection**: the paper's protocol (keep layers up to L, re-initialise the rest,
  new head, fine-tune) on an equal-width residual stack, several (source, target) cases.
* An EfficientNet-Lite0/1/2 illustration (full mode; three items decide nothing).
"""
from transfer_nb.experiments.transrate import plots, report
from transfer_nb.experiments.transrate.presets import (BASELINES, ESTIMATORS, PAPER,
                                                       PAPER_LAYER, PRIMARY, TransRateConfig,
                                                       config, config_hash, describe)
from transfer_nb.experiments.transrate.runner import build_source, choose_recipe, run, score_features

__all__ = ["config", "run", "report", "plots", "describe", "config_hash", "TransRateConfig",
           "ESTIMATORS", "BASELINES", "PAPER", "PAPER_LAYER", "PRIMARY", "build_source",
           "choose_recipe", "score_features"]
