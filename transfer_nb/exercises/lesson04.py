"""Lesson 04, transferability for regression: the Linear MSE closed form, and how much
one model carries a correlation (leave one out)."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# ------------------------------------------------------------------ 04.1 Linear MSE
def linear_mse(Z, Y, lam):
    """-min_{A,b} 1/n sum_i ||y_i - A z_i - b||^2 + lam ||A||_F^2, on standardised
    features and min-max scaled targets (the library's linear_mse(..., scale_features=True))."""
    Z = np.asarray(Z, dtype=float)
    Y = np.asarray(Y, dtype=float).reshape(len(Z), -1)
    n, d = Z.shape
    sd = Z.std(axis=0)
    X = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)       # standardise each feature
    span = Y.max(axis=0) - Y.min(axis=0)
    Y = (Y - Y.min(axis=0)) / np.where(span > 0, span, 1.0)      # each target into [0, 1]
    Yc = Y - Y.mean(axis=0)                                      # the intercept b takes the means
    A = np.linalg.solve(X.T @ X + n * lam * np.eye(d), X.T @ Yc)  # ridge with alpha = n lam
    objective = ((Yc - X @ A) ** 2).sum() / n + lam * (A ** 2).sum()
    return -objective                                            # higher = more transferable


def _prepare(Z, Y, standardise=True, minmax=True):
    Z = np.asarray(Z, dtype=float)
    Y = np.asarray(Y, dtype=float).reshape(len(Z), -1)
    X = Z - Z.mean(axis=0)
    if standardise:
        sd = Z.std(axis=0)
        X = X / np.where(sd > 0, sd, 1.0)
    if minmax:
        span = Y.max(axis=0) - Y.min(axis=0)
        Y = (Y - Y.min(axis=0)) / np.where(span > 0, span, 1.0)
    return X, Y - Y.mean(axis=0)


def _objective(X, Yc, lam, alpha):
    n, d = X.shape
    A = np.linalg.solve(X.T @ X + alpha * np.eye(d), X.T @ Yc)
    return ((Yc - X @ A) ** 2).sum() / n + lam * (A ** 2).sum()


def _lmse_lam_not_scaled(Z, Y, lam):
    X, Yc = _prepare(Z, Y)
    return -_objective(X, Yc, lam, lam)


def _lmse_not_standardised(Z, Y, lam):
    X, Yc = _prepare(Z, Y, standardise=False)
    return -_objective(X, Yc, lam, X.shape[0] * lam)


def _lmse_positive(Z, Y, lam):
    return -linear_mse(Z, Y, lam)


def _lmse_targets_raw(Z, Y, lam):
    X, Yc = _prepare(Z, Y, minmax=False)
    return -_objective(X, Yc, lam, X.shape[0] * lam)


def _lmse_no_penalty(Z, Y, lam):
    X, Yc = _prepare(Z, Y)
    n, d = X.shape
    A = np.linalg.solve(X.T @ X + n * lam * np.eye(d), X.T @ Yc)
    return -((Yc - X @ A) ** 2).sum() / n


def _lmse_cases():
    rng = np.random.default_rng(401)
    Z1 = rng.normal(size=(40, 5)) * np.array([0.1, 1.0, 10.0, 3.0, 0.5]) + 2.0
    y1 = Z1 @ np.array([2.0, -1.0, 0.05, 0.3, 1.0]) + 0.5 * rng.normal(size=40) + 7.0
    Z2 = rng.normal(size=(15, 30)) * rng.uniform(0.2, 4.0, size=30)
    Y2 = np.stack([Z2[:, 0] - Z2[:, 1], 100.0 * rng.normal(size=15)], axis=1)
    Z3 = rng.normal(size=(25, 4)) * np.array([1.0, 5.0, 0.2, 1.0])
    Z3[:, 3] = 4.2                                    # a constant feature
    y3 = -3.0 * Z3[:, 1] + 2.0 * rng.normal(size=25)
    Z4 = rng.normal(size=(5, 2)) * np.array([2.0, 0.3])
    y4 = rng.uniform(10, 20, size=5)
    return [
        Case("Z of shape (40, 5) with columns of different spread, y of shape (40,), "
             "lam=0.1", (Z1, y1, 0.1)),
        Case("Z of shape (15, 30) (more features than samples), Y of shape (15, 2), lam=1.0",
             (Z2, Y2, 1.0)),
        Case("Z of shape (25, 4) whose last column is constant, y of shape (25,), lam=0.01",
             (Z3, y3, 0.01)),
        Case("edge case: 5 samples, Z of shape (5, 2), lam=10.0", (Z4, y4, 10.0)),
    ]


# ------------------------------------------------------------ 04.2 leave one out
def r_without_each(scores, truth):
    """Pearson r of scores and truth with item i left out, for every i."""
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    out = []
    for i in range(len(scores)):
        keep = np.arange(len(scores)) != i          # drop item i by position
        out.append(np.corrcoef(scores[keep], truth[keep])[0, 1])
    return np.array(out)


def _loo_kendall(scores, truth):
    from scipy.stats import kendalltau
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    return np.array([kendalltau(np.delete(scores, i), np.delete(truth, i)).statistic
                     for i in range(len(scores))])


def _loo_by_value(scores, truth):
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    return np.array([np.corrcoef(scores[scores != s], truth[scores != s])[0, 1]
                     for s in scores])


def _loo_change(scores, truth):
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    return np.corrcoef(scores, truth)[0, 1] - r_without_each(scores, truth)


def _loo_cases():
    rng = np.random.default_rng(402)
    t1 = rng.uniform(0.3, 0.6, size=8)
    s1 = t1 + 0.1 * rng.normal(size=8)
    s1[0], t1[0] = -2.0, 0.05                       # a random-init model far from the rest
    t2 = rng.uniform(size=12)
    s2 = rng.normal(size=12) + t2
    t3 = rng.uniform(size=9)
    s3 = t3 + 0.3 * rng.normal(size=9)
    s3[[1, 5, 7]] = 0.4                              # three models with the same score
    t4 = np.array([0.2, 0.5, 0.4, 0.9])
    s4 = np.array([1.0, 2.0, 4.0, 3.0])
    return [
        Case("8 models, one far from the others (a leverage point)", (s1, t1)),
        Case("12 models", (s2, t2)),
        Case("9 models, three of which have the same score 0.4", (s3, t3)),
        Case("edge case: 4 models (each r is on 3 of them)", (s4, t4)),
    ]


EXERCISES = [
    Exercise(
        id="04.1", lesson=4, title="the Linear MSE closed form",
        signature="linear_mse(Z, Y, lam) -> float",
        prompt=("Write `linear_mse(Z, Y, lam)`: features Z (n, d), targets Y (n,) or (n, m), "
                "lam > 0. Standardise each column of Z (mean 0, standard deviation 1; a "
                "constant column becomes 0), scale each column of Y to [0, 1] (min-max), then "
                "return -min_{A,b} 1/n sum_i ||y_i - A z_i - b||^2 + lam ||A||_F^2 (a float "
                "<= 0), in closed form."),
        reference=linear_mse,
        cases=_lmse_cases,
        hint=("Centre Y so the intercept disappears; with X the standardised Z the "
              "minimiser is A = solve(X^T X + n lam I, X^T Y_c); evaluate the objective at "
              "A (the residual term and the penalty) and return its negative."),
        mistakes=[
            Mistake("lam_not_scaled", _lmse_lam_not_scaled,
                    "your ridge solves (X^T X + lam I) A = X^T Y; the objective averages the "
                    "residual over n samples, so its minimiser solves (X^T X + n lam I) A = "
                    "X^T Y: scale lam by n."),
            Mistake("not_standardised", _lmse_not_standardised,
                    "you did not standardise the features: divide each centred column of Z "
                    "by its standard deviation (a constant column stays 0), so that lam "
                    "means the same for every model whatever the spread of its features."),
            Mistake("positive", _lmse_positive,
                    "the sign: Linear MSE is the negative of the minimum (higher = more "
                    "transferable), so return -objective."),
            Mistake("targets_not_scaled", _lmse_targets_raw,
                    "you did not min-max scale the targets: each column of Y goes to [0, 1] "
                    "first, (y - min) / (max - min), so that scores of different targets "
                    "are comparable."),
            Mistake("no_penalty", _lmse_no_penalty,
                    "you returned the residual MSE alone; the minimum of the objective also "
                    "counts the penalty lam ||A||_F^2 at the minimiser."),
        ],
    ),
    Exercise(
        id="04.2", lesson=4, title="leave one model out: how much does one model carry r?",
        signature="r_without_each(scores, truth) -> array (n,)",
        prompt=("Write `r_without_each(scores, truth)`: an estimator's scores and the "
                "fine-tuned results of n models. Return an array of length n whose entry i "
                "is Pearson's r of scores and truth with model i left out. Its min and max "
                "show whether one model (a leverage point) carries the correlation."),
        reference=r_without_each,
        cases=_loo_cases,
        hint=("For each i, np.delete(scores, i) and np.delete(truth, i) drop model i from "
              "both; np.corrcoef(x, y)[0, 1] is Pearson's r."),
        mistakes=[
            Mistake("kendall", _loo_kendall,
                    "your values are Kendall's tau; the question is about Pearson's r "
                    "(np.corrcoef), the statistic one far-away model can swing (a rank "
                    "statistic barely moves, which is why the lessons report both)."),
            Mistake("by_value", _loo_by_value,
                    "you dropped every model whose score equals model i's (a mask on "
                    "values, scores != scores[i]); models that tie lose several at once. "
                    "Drop model i by its position: np.delete(x, i)."),
            Mistake("change", _loo_change,
                    "you returned how much r changes, r(all) - r(without i); return r "
                    "without model i itself."),
        ],
    ),
]
