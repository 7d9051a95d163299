"""Lesson 03, Head2Toe: the group-lasso importance of each feature, and keeping the top
fraction of the features."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake, same_set


# ---------------------------------------------------------- 03.1 feature importance
def feature_importance(W):
    """Head2Toe's score of each feature: sum_j W_ij^2 over the row of W (D x K)."""
    W = np.asarray(W, dtype=float)
    return (W ** 2).sum(axis=1)


def _imp_l1(W):
    return np.abs(np.asarray(W, dtype=float)).sum(axis=1)


def _imp_wrong_axis(W):
    return (np.asarray(W, dtype=float) ** 2).sum(axis=0)


def _imp_not_squared(W):
    return np.sqrt((np.asarray(W, dtype=float) ** 2).sum(axis=1))


def _importance_cases():
    rng = np.random.default_rng(301)
    W3 = rng.normal(size=(12, 5))
    W3[[2, 7]] = 0.0                                 # two features the lasso switched off
    return [
        Case("W of shape (6, 3): 6 features, 3 classes", (rng.normal(size=(6, 3)),)),
        Case("W of shape (4, 4) (as many features as classes)", (rng.normal(size=(4, 4)),)),
        Case("W of shape (12, 5) with rows 2 and 7 all zero", (W3,)),
        Case("edge case: one class, W of shape (7, 1)", (rng.normal(size=(7, 1)),)),
    ]


# ------------------------------------------------------------------ 03.2 top features
def top_features(scores, keep_fraction):
    """Indices of the max(1, round(keep_fraction * D)) highest scores, ascending."""
    scores = np.asarray(scores, dtype=float)
    k = max(1, round(keep_fraction * len(scores)))
    return np.sort(np.argsort(-scores)[:k])


def _top_lowest(scores, keep_fraction):
    scores = np.asarray(scores, dtype=float)
    k = max(1, round(keep_fraction * len(scores)))
    return np.sort(np.argsort(scores)[:k])


def _top_floor(scores, keep_fraction):
    scores = np.asarray(scores, dtype=float)
    k = int(keep_fraction * len(scores))
    return np.sort(np.argsort(-scores)[:k])


def _top_ceil(scores, keep_fraction):
    scores = np.asarray(scores, dtype=float)
    k = int(np.ceil(keep_fraction * len(scores)))
    return np.sort(np.argsort(-scores)[:k])


def _top_cases():
    rng = np.random.default_rng(302)
    return [
        Case("20 scores, keep_fraction=0.1 (keep 2)", (rng.exponential(size=20), 0.1)),
        Case("10 scores, keep_fraction=0.27 (0.27 * 10 = 2.7)", (rng.exponential(size=10), 0.27)),
        Case("50 scores, keep_fraction=0.123 (0.123 * 50 = 6.15)",
             (rng.exponential(size=50), 0.123)),
        Case("edge case: 8 scores, keep_fraction=0.05 (0.05 * 8 = 0.4)",
             (rng.exponential(size=8), 0.05)),
    ]


EXERCISES = [
    Exercise(
        id="03.1", lesson=3, title="the group-lasso importance of each feature",
        signature="feature_importance(W) -> array (D,)",
        prompt=("Write `feature_importance(W)`: W is the weight matrix of a linear head "
                "trained with the group lasso, of shape (D, K) (D features, K classes; one "
                "group per feature = one row). Return the score of each feature, "
                "sum_j W_ij^2, as an array of length D."),
        reference=feature_importance,
        cases=_importance_cases,
        hint=("Square the entries and sum each row (axis=1): one number per feature, "
              "length D = W.shape[0]."),
        mistakes=[
            Mistake("l1", _imp_l1,
                    "you summed |W_ij| (an L1 norm over the group); Head2Toe scores a "
                    "feature by the squared L2 norm of its row, sum_j W_ij^2, the norm "
                    "its group lasso penalises."),
            Mistake("wrong_axis", _imp_wrong_axis,
                    "you summed over the features (axis 0) and got one number per class; "
                    "a feature's group is its row, so sum over the classes (axis=1)."),
            Mistake("not_squared", _imp_not_squared,
                    "you returned the L2 norm of each row, sqrt(sum_j W_ij^2); the score "
                    "is its square, sum_j W_ij^2 (the ranking is the same, the values are "
                    "not)."),
        ],
    ),
    Exercise(
        id="03.2", lesson=3, title="keep the top fraction of the features",
        signature="top_features(scores, keep_fraction) -> array of indices",
        prompt=("Write `top_features(scores, keep_fraction)`: from D feature scores, return "
                "the indices of the k highest, k = max(1, round(keep_fraction * D)) with "
                "Python's round, as an integer array in increasing order."),
        reference=top_features,
        cases=_top_cases,
        compare=same_set(),
        hint=("np.argsort(-scores) orders the features from the highest score; take the "
              "first k and sort them. Check k when keep_fraction * D is small or not an "
              "integer."),
        mistakes=[
            Mistake("lowest", _top_lowest,
                    "you kept the k lowest scores; Head2Toe keeps the features with the "
                    "highest importance (np.argsort sorts increasing: use -scores)."),
            Mistake("floor", _top_floor,
                    "your k is int(keep_fraction * D), which rounds down and can keep no "
                    "feature at all; k = max(1, round(keep_fraction * D))."),
            Mistake("ceil", _top_ceil,
                    "your k rounds up (ceil); k = max(1, round(keep_fraction * D)) rounds "
                    "to the nearest integer."),
        ],
    ),
]
