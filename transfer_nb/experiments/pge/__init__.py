"""PGE (Qi et al., arXiv 2211.16299): source selection from principal gradients.

The experiment contract (docs/contributing.md): :func:`config` (``"fast"`` | ``"full"``;
``targets=`` names of its tasks -- an image folder is refused, a PGE target must be one of
its tasks),
:func:`run` -> :class:`~transfer_nb.experiments.base.Results`, :mod:`.report`
(``checks``, ``verdicts``, ``summary``), :mod:`.plots`, and
``python -m transfer_nb.experiments.pge --full --save``.

* **Tasks**: nine classification tasks from the embedded sets (glyph character sets in
  two fonts, digits, shapes with and without a domain shift, textures); each is a source
  (a small CNN trained on it) and a target (5 labelled images per class); every ordered
  pair is an item.
* **Truth**: LP-FT transfer accuracy -- every transfer **replaces the head**, so the
  source's class indices never reach the target; lr chosen per target on a validation
  split; several seeds; the gates (docs/contributing.md, rule 1) per
  target.
* **PGE** on the **body's** parameters (every parameter but the head's), the source in
  its role on source images, the target on its few-shot images; a **label-permutation
  control** (each target's labels deranged) and a **gradient-free baseline** (distance of
  random networks' mean features) on the same pairs.
* **Primary claim**: within-target Kendall tau of -PGE with transfer accuracy, pooled over
  targets, with a permutation test shuffling sources within each target.
* **Stability**: 10 seeds x 4 pairs, noise/signal with bootstrap intervals per number of
  restarts and batches, expectation vs per-restart normalisation.
"""
from transfer_nb.experiments.pge import plots, report
from transfer_nb.experiments.pge.presets import (PAPER, PRIMARY, TASKS, PGEConfig, config,
                                                 config_hash, describe)
from transfer_nb.experiments.pge.report import explorer_input, per_layer_similarity
from transfer_nb.experiments.pge.runner import (body_params, label_permutation, run,
                                                task_data, task_gradients)

__all__ = ["config", "run", "report", "plots", "describe", "config_hash", "PGEConfig",
           "TASKS", "PAPER", "PRIMARY", "task_data", "task_gradients", "body_params",
           "label_permutation", "per_layer_similarity", "explorer_input"]
