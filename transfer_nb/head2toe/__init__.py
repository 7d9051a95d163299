"""Head2Toe (Evci et al., ICML 2022): a linear head on features selected from every layer.

The method, as the paper and its code describe it:

1. **Features from head to toe.**  One forward pass (:func:`head2toe_features`, i.e.
   :func:`transfer_nb.features.extract_features` with ``pool="head2toe"``): a layer whose
   feature map has ``C >= target`` channels is globally averaged, otherwise it is
   average-pooled to about ``target / C`` positions and flattened (``target`` = 8192 in
   the paper), so that every layer contributes a comparable number of features.
2. **Per-layer L2 normalisation, then concatenation** (:func:`concat_features`): each
   layer's vector is divided by its Euclidean norm per example, so that no layer
   dominates by scale.
3. **Selection by group lasso**: a linear head ``W`` (``D x K``) is trained with the
   cross-entropy plus ``group_lasso * sum_i ||W_i,:||_2`` -- one group per *input
   feature*, so whole features are switched off -- and each feature is scored by
   ``sum_j W_ij^2``.
4. **Keep the top ``keep_fraction``** of the features and retrain an *unregularised*
   linear head on them (Adam, cosine decay, a few hundred steps).
5. Hyper-parameters (``keep_fraction``, ``group_lasso``) are chosen by cross-validation
   on the training set (:class:`Head2ToeCV`).

Every head is trained by :func:`transfer_nb.training.fit` (the project's only training
loop); the group lasso enters through its ``regularizer=`` hook.

Defaults and their sources
--------------------------
``keep_fraction = 0.1``
    the paper's default fraction (its sweeps use 0.01 .. 0.2, :data:`KEEP_FRACTIONS`).
``group_lasso = 1e-4``
    the order of the coefficient the paper's code uses (DESIGN.md "Head2Toe");
    :data:`GROUP_LASSOS` spans a decade either side for cross-validation.
``steps = 300``, ``optimizer = Adam``, cosine decay
    "a few hundred steps" of Adam with cosine decay, as in the paper's head training.
``lr = 0.01``
    Adam's usual rate for a linear head (the paper tunes it in {0.1, 0.01}; features
    are L2-normalised per layer, so the scale does not change between models).
``batch_size = 128``
    the paper's head batch size; small targets are thus trained full-batch.
``n_folds = 3``
    three stratified folds: the data-scarce targets of the notebook have few images
    per class, and each class needs an example in every fold.
"""
from transfer_nb.head2toe.estimator import (
                                            DEFAULT_TARGET,
                                            GROUP_LASSOS,
                                            KEEP_FRACTIONS,
                                            Head2Toe,
                                            concat_features,
                                            feature_scores,
                                            group_lasso_penalty,
                                            head2toe_features,
                                            select_top,
)
from transfer_nb.head2toe.search import Head2ToeCV, fraction_sweep

__all__ = [
                                            "DEFAULT_TARGET",
                                            "GROUP_LASSOS",
                                            "KEEP_FRACTIONS",
                                            "Head2Toe",
                                            "Head2ToeCV",
                                            "concat_features",
                                            "feature_scores",
                                            "fraction_sweep",
                                            "group_lasso_penalty",
                                            "head2toe_features",
                                            "select_top",
]
