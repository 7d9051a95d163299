"""PGE (Qi et al., arXiv 2211.16299): task-to-task transferability from principal gradients.

The paper's core experiment on embedded data sets that work offline:

* **Tasks** (:func:`build_tasks`): several 5-class classification tasks cut from the
  embedded sets (class subsets of digits and glyphs, glyph fonts, shapes with and without
  a domain shift, textures), so that pairs range from close (the same characters in two
  fonts) to far (textures vs digits).  All have the same number of classes, so one
  network with one head serves every task.
* **PGE matrix** (:func:`pge_matrix`): the principal gradient of every task at the same
  randomly re-initialised weights (:func:`transfer_nb.estimators.pge`, ``init="reinit"``),
  and the distance of every pair.  Because the weights of restart ``r`` depend only on
  ``seed + r``, a task's principal gradient does not depend on the task it is compared
  with: it is computed once per task, and ``D[s, t]`` equals ``pge(model, loss, s, t)``.
* **Baseline** (:func:`baseline_matrix`): a task-similarity that needs no gradient: the
  distance between the tasks' normalised mean features of the same random networks.
* **Ground truth** (:func:`transfer_gain`): target accuracy after training on the source
  (:func:`transfer_nb.models.train_source`, cached) then fine-tuning on a data-scarce
  target (:func:`transfer_nb.training.fit`), minus the accuracy of the same fine-tuning
  budget from a random initialisation; several seeds.
* **Stability** (:func:`stability`): the spread of the distance across seeds for several
  numbers of restarts and batches, with wall-clock.

:func:`run` does all four; :func:`correlations`, :func:`report` and the ``plot_*``
functions turn the results into the notebook's tables, prose and figures.

Modules: :mod:`.config` (tasks, presets), :mod:`.run` (matrices, gain, stability),
:mod:`.report` (tables, verdicts, prose), :mod:`.plots`.
"""
from transfer_nb.experiments.pge.config import (PAPER, TASKS, PGEConfig, TaskSpec, _key,
                                                config, describe)
from transfer_nb.experiments.pge.plots import plot_matrices, plot_scatter, plot_stability
from transfer_nb.experiments.pge.report import (correlations, pair_frame, paper_vs_measured,
                                                per_layer_similarity, per_target_correlations,
                                                report, stability_table, verdicts)
from transfer_nb.experiments.pge.run import (_pge_kwargs, baseline_matrix, build_model,
                                             build_tasks, discrimination_check, load_task,
                                             pge_matrix, run, stability, torch_threads,
                                             transfer_gain)

__all__ = ["TaskSpec", "PGEConfig", "config", "describe", "TASKS", "PAPER", "load_task",
           "build_tasks", "build_model", "pge_matrix", "baseline_matrix", "transfer_gain",
           "discrimination_check", "stability", "run", "pair_frame", "correlations",
           "per_target_correlations", "per_layer_similarity", "stability_table",
           "verdicts", "report", "paper_vs_measured", "plot_matrices", "plot_scatter",
           "plot_stability", "torch_threads"]
