"""Head2Toe (Evci et al., ICML 2022): features from every layer vs fine-tuning.

The experiment contract (docs/contributing.md): :func:`config` (``"fast"`` | ``"full"``,
your own ``targets=``), :func:`run` -> :class:`~transfer_nb.experiments.base.Results`,
:mod:`.report` (``checks``, ``verdicts``, ``summary``), :mod:`.plots`, and
``python -m transfer_nb.experiments.head2toe --full --save``.

ImageNet EfficientNet-Lite0 (real weights) at 64 px transfers to six 4-class targets, three
near its source domain (photographs) and three far (renderings), with 2 labelled images
per class drawn per seed: (a) a linear probe on the last layer, (b) Head2Toe on every
layer (cross-validated in full mode) and (c) LP-FT fine-tuning whose learning rate and
epochs are chosen on a validation draw of the training split.  All methods of a seed see
the same images, so every comparison is paired.
"""
from transfer_nb.experiments.head2toe import plots, report
from transfer_nb.experiments.head2toe.presets import (FAR, FINETUNE, HEAD2TOE, NEAR, PAPER,
                                                      PRIMARY, PROBE, Head2ToeConfig, config,
                                                      config_hash, describe)
from transfer_nb.experiments.head2toe.runner import choose_recipe, run, target_cell

__all__ = ["config", "run", "report", "plots", "describe", "config_hash", "Head2ToeConfig",
           "PAPER", "PRIMARY", "NEAR", "FAR", "PROBE", "HEAD2TOE", "FINETUNE",
           "choose_recipe", "target_cell"]
