"""Model and layer selection: score your models, or one model's layers, on your data.

:func:`score_models` scores several models on one target (one row per model);
:func:`score_layers` scores every layer of one model (one row per layer).  The
``%transrate`` magic, the ``LayerSelector`` widget and the TransRate experiment's layer
selection call :func:`score_layers` (or, when they already hold the features,
:func:`score_layer_features`, the same procedure minus extraction), so they measure the
same thing.  :func:`rank_table` sorts a table best first and :func:`ranking_notes` says
how to read it (degenerate estimators, a ground truth that cannot separate the models,
how far the estimators agree).

The protocol, stated once (both functions, same parameter names):

* **What is scored.**  Without a ground truth every image of ``data`` is scored (a
  dataset *name* means its training split).  With ``ground_truth=...`` the estimators see
  the training part only and the truth is measured on a held-out part: ``test_data``
  when given, else the data's own test split (a dataset name; a folder holding
  ``train/`` and ``test/``), else a stratified split of everything
  (:func:`transfer_nb.data.base.stratified_split`, ``test_fraction=0.25``, ``seed``) --
  the same split for a folder path and for the dataset object loaded from it.  The class
  counts (at least 2 images per class in the scored part) are checked, with the class
  names, before any model runs.
* **Ground truth** (``ground_truth``): ``"linear_probe"`` -- logistic regression on the
  pooled training features, accuracy on the held-out ones
  (:func:`transfer_nb.training.transfer.linear_probe`); ``"fine_tune"`` (models) -- new head,
  every layer fine-tuned; ``"fine_tune_reinit"`` (layers) -- the TransRate paper's
  protocol: keep the layers up to this one, re-initialise every later layer, new head,
  fine-tune everything (:func:`transfer_nb.training.transfer.fine_tune`).
* **Estimators**: the same defaults, :data:`DEFAULT_ESTIMATORS` (TransRate, LogME, LEEP,
  NCE, H-score) for models; for layers the ones of them that read a layer's features
  (:data:`LAYER_ESTIMATORS`: LEEP and NCE read the model's outputs, the same for every
  layer).
* **Image size**: each model at the resolution it was trained at unless ``image_size``
  is given, with a note when that enlarges the images more than 2x.
* **Progress bars** are on (``progress=False`` silences them).

Modules: :mod:`.layers` (score_layers), :mod:`.models` (score_models), :mod:`.report`
(ranking and notes), :mod:`.baselines` (static baselines: parameters, width, published
ImageNet top-1), ``_target`` (the data rule) and ``_jobs`` (parallel jobs).
"""
from transfer_nb.selection.baselines import BASELINES
from transfer_nb.selection.layers import (LAYER_ESTIMATORS, LAYER_TRUTHS, TRUTHS,
                                          extract_layer_features, feature_estimators,
                                          score_layer_features, score_layers)
from transfer_nb.selection.models import (DEFAULT_ESTIMATORS, MODEL_ESTIMATORS, MODEL_TRUTHS,
                                          score_models)
from transfer_nb.selection.report import (estimator_agreement, next_step, rank_table,
                                          ranking_notes, top_models)

__all__ = ["score_layers", "score_layer_features", "extract_layer_features", "score_models",
           "rank_table", "ranking_notes", "next_step", "estimator_agreement", "top_models",
           "feature_estimators", "DEFAULT_ESTIMATORS", "LAYER_ESTIMATORS", "MODEL_ESTIMATORS",
           "MODEL_TRUTHS", "LAYER_TRUTHS", "TRUTHS", "BASELINES"]
