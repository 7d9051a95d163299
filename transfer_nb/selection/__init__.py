"""Layer selection: the one procedure that scores every layer of a model on a target.

:func:`score_layers` extracts the features of every requested layer in one pass, scores
each layer with transferability estimators (TransRate by default) and, when asked,
measures each layer's ground truth.  The ``%transrate`` magic, the ``LayerSelector``
widget and the TransRate experiment's layer selection all call it (or, when they already
hold the features, :func:`score_layer_features`, the same procedure minus extraction),
so they measure the same thing.

The protocol, stated once:

* **Held-out part.**  Ground truth is trained on a training part and scored on a held-out
  part.  When a separate test set is given (``test_data``; a dataset *name* uses its own
  ``"test"`` split, which for ``textures`` keeps overlapping crops on one side) the
  whole of ``data`` is the training part; otherwise ``data`` is split class by class
  with :func:`transfer_nb.data.base.stratified_split` (``test_size``, ``seed``).
* **Estimators see the training part only** -- what an estimator is allowed to see --
  so the score columns do not change when the ground truth is added.
* **Ground truth** (``truth``): ``"linear_probe"`` -- logistic regression on the layer's
  pooled training features, accuracy on the held-out ones
  (:func:`transfer_nb.transfer.linear_probe`); ``"finetune_reinit"`` -- the TransRate
  paper's protocol: keep the layers up to this one, re-initialise every later layer,
  new head, fine-tune everything (:func:`transfer_nb.transfer.fine_tune`).

:func:`score_models` is the same protocol across models: one layer of each of several
source models on one target, one independent job per model (joblib or Dask).

Modules: :mod:`.layers` (score_layers, the one layer-selection procedure) and
:mod:`.models` (score_models).
"""
from transfer_nb.selection.layers import (TRUTHS, extract_layer_features, feature_estimators,
                                          score_layer_features, score_layers)
from transfer_nb.selection.models import MODEL_ESTIMATORS, MODEL_TRUTHS, score_models

__all__ = ["score_layers", "score_layer_features", "extract_layer_features", "score_models",
           "feature_estimators", "TRUTHS", "MODEL_ESTIMATORS", "MODEL_TRUTHS"]
