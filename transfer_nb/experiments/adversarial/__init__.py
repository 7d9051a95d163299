"""Adversarial and semi-supervised sources (Deng et al., NeurIPS 2021).

"Adversarial Training Helps Transfer Learning via Better Representations" builds on
Salman et al. (2020, "Do Adversarially Robust ImageNet Models Transfer Better?"), who
trained ImageNet sources with an L2 PGD adversary of radius eps in {0, 0.01, 0.03,
0.05, 0.1, 0.25, 0.5, 1, 3, 5} and found that moderate eps transfers best while the
source's own (clean) accuracy falls as eps grows.  Deng et al. explain the gain by
better representations in the few-label target regime and add a second route to them:
semi-supervised source training on pseudo-labelled unlabelled source data, alone and
combined with adversarial training.

This module reproduces that experiment at CPU scale, offline:

* source: ``shapes`` with ``shift=0.5`` (8 drawn shapes in random colours, on a textured,
  noisy background, half hollowed: hard enough that robustness costs accuracy), a
  labelled set plus an unlabelled pool;
* target: ``glyphs`` (the digits 0-9 rendered from fonts), 10 labelled images per class
  per seed, 20 more per class for validation, 1000 test images;
* sources: ``small_cnn`` trained with a multi-step L2 PGD adversary
  (:mod:`transfer_nb.adversarial`)
  for each eps of the sweep (eps = 0 is standard training), plus students trained on
  labelled + pseudo-labelled data (:mod:`transfer_nb.adversarial.semi`) without and with
  the adversary;
* per source and seed: clean and robust source test accuracy (the trade-off), target
  linear-probe (the primary truth) and LP-FT accuracy, and TransRate and LogME of
  the source's target features (does an estimator see the better representation?).

eps is a fraction of the typical image norm ``||x||_2`` (RMS over the source images,
pixels in [0, 1]); :func:`imagenet_equivalent` maps a fraction to the L2 eps of the same
fraction of ImageNet's typical norm (195.4 for 3 x 224 x 224 images, from ImageNet's
mean pixel power; see :mod:`.presets`), the scale of Salman et al.'s grid.

On the experiment contract: :func:`config` (``"fast"`` | ``"full"``, ``targets=`` your own
image folder), :func:`run` -> :class:`~transfer_nb.experiments.base.Results` (one row per
(source, seed), cached per row), :mod:`.report` (``checks``: the premise gate and each
truth's gates; ``verdicts``; ``summary``), :mod:`.plots`, and ``python -m
transfer_nb.experiments.adversarial --full --save``.
"""
from transfer_nb.experiments.adversarial import plots, report
from transfer_nb.experiments.adversarial.presets import (ESTIMATORS, IMAGENET_NORM, PAPER, PRIMARY,
                                                         SOURCE_KINDS, AdversarialConfig, config,
                                                         config_hash, describe,
                                                         imagenet_equivalent, imagenet_fraction)
from transfer_nb.experiments.adversarial.report import source_summary as summary
from transfer_nb.experiments.adversarial.runner import (adversarial_examples, build_source, run,
                                                        run_cell, score_features, source_data,
                                                        target_data, typical_norm)

__all__ = ["config", "run", "report", "plots", "describe", "config_hash", "AdversarialConfig",
           "imagenet_equivalent", "imagenet_fraction", "IMAGENET_NORM", "typical_norm",
           "source_data", "target_data", "build_source", "score_features",
           "run_cell", "adversarial_examples", "summary", "SOURCE_KINDS", "ESTIMATORS", "PAPER",
           "PRIMARY"]
