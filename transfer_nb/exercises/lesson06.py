"""Lesson 06, PGE: the distance between two tasks' normalised expected gradients, and the
same distance per restart, averaged."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# ----------------------------------------------------------------- 06.1 PGE distance
def pge_distance(grads_a, grads_b):
    """|| mean(g_a) / ||mean(g_a)|| - mean(g_b) / ||mean(g_b)|| ||, from (batches, p) arrays."""
    ga = np.asarray(grads_a, dtype=float).mean(axis=0)   # the expected gradient of task a
    gb = np.asarray(grads_b, dtype=float).mean(axis=0)
    ga = ga / np.linalg.norm(ga)                         # the principal gradient: unit norm
    gb = gb / np.linalg.norm(gb)
    return float(np.linalg.norm(ga - gb))


def _pge_not_normalised(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))


def _unit_rows(g):
    return g / np.linalg.norm(g, axis=-1, keepdims=True)


def _pge_per_batch(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(_unit_rows(a).mean(axis=0) - _unit_rows(b).mean(axis=0)))


def _pge_cosine(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ga, gb = a.mean(axis=0), b.mean(axis=0)
    return float(1.0 - ga @ gb / (np.linalg.norm(ga) * np.linalg.norm(gb)))


def _pge_cases():
    rng = np.random.default_rng(601)
    common = rng.normal(size=10)
    a1 = common + rng.normal(size=(4, 10)) * rng.uniform(0.5, 3.0, size=(4, 1))
    b1 = 0.2 * common + rng.normal(size=(6, 10)) * rng.uniform(0.5, 3.0, size=(6, 1))
    a2 = np.array([[1.0, 0.0, 0.0], [3.0, 1.0, 0.0], [0.5, 0.5, 0.5]]) * 100.0
    b2 = np.array([[0.0, 0.01, 0.0], [0.01, 0.02, 0.01]])
    a3 = rng.normal(size=(5, 4)) + 1.0
    b3 = 7.0 * a3[::-1]                        # the same task, gradients 7 times larger
    return [
        Case("task a: 4 batches, task b: 6 batches, 10 parameters", (a1, b1)),
        Case("3 parameters, task a's gradients 10^4 times larger than task b's", (a2, b2)),
        Case("edge case: the same task (b = 7 a, batches in another order): distance 0",
             (a3, b3)),
    ]


# ------------------------------------------------------- 06.2 distance per restart
def pge_per_restart(grads_a, grads_b):
    """Mean over restarts of the distance of each restart's normalised expected gradients;
    grads of shape (restarts, batches, p), the same restarts for both tasks."""
    ga = np.asarray(grads_a, dtype=float).mean(axis=1)   # (R, p): one expectation per restart
    gb = np.asarray(grads_b, dtype=float).mean(axis=1)
    ga = ga / np.linalg.norm(ga, axis=1, keepdims=True)
    gb = gb / np.linalg.norm(gb, axis=1, keepdims=True)
    return float(np.linalg.norm(ga - gb, axis=1).mean())


def _restart_pooled(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return pge_distance(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))


def _restart_not_normalised(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a.mean(axis=1) - b.mean(axis=1), axis=1).mean())


def _restart_wrong_axis(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ga, gb = _unit_rows(a.mean(axis=0)), _unit_rows(b.mean(axis=0))
    return float(np.linalg.norm(ga - gb, axis=1).mean())


def _restart_cases():
    rng = np.random.default_rng(602)

    def task(R, B, p, direction, scale):
        per_restart = rng.normal(size=(R, 1, p)) * 2.0 + direction   # weights differ per restart
        return (per_restart + rng.normal(size=(R, B, p))) * scale

    d = rng.normal(size=8)
    a1, b1 = task(3, 5, 8, d, 1.0), task(3, 5, 8, 0.5 * d, 4.0)
    e = rng.normal(size=20)
    a2, b2 = task(5, 2, 20, e, 0.1), task(5, 2, 20, -e, 1.0)
    a3, b3 = task(1, 4, 6, 0.0, 1.0), task(1, 4, 6, 0.0, 1.0)
    return [
        Case("3 restarts of 5 batches, 8 parameters", (a1, b1)),
        Case("5 restarts of 2 batches, 20 parameters, task b's gradients 10 times larger",
             (a2, b2)),
        Case("edge case: a single restart of 4 batches, 6 parameters", (a3, b3)),
    ]


EXERCISES = [
    Exercise(
        id="06.1", lesson=6, title="the PGE distance between two tasks",
        signature="pge_distance(grads_a, grads_b) -> float",
        prompt=("Write `pge_distance(grads_a, grads_b)`: each task's per-batch gradients, "
                "arrays of shape (batches, p) with the same p (the batch counts may "
                "differ). Average each task's gradients over its batches (the expected "
                "gradient), divide each by its L2 norm, and return the L2 distance between "
                "the two unit vectors (a float in [0, 2])."),
        reference=pge_distance,
        cases=_pge_cases,
        hint=("g = grads.mean(axis=0) for each task; g / np.linalg.norm(g); then "
              "np.linalg.norm of the difference."),
        mistakes=[
            Mistake("not_normalised", _pge_not_normalised,
                    "you did not normalise: the distance then measures how large the "
                    "gradients are (a task with a larger loss is 'far'). Divide each "
                    "expected gradient by its L2 norm first; PGE compares directions."),
            Mistake("normalised_per_batch", _pge_per_batch,
                    "you normalised every batch's gradient before averaging; PGE averages "
                    "the raw gradients first (the expectation) and normalises that mean "
                    "once per task."),
            Mistake("cosine", _pge_cosine,
                    "you returned 1 - cos(g_a, g_b); PGE is the L2 distance between the "
                    "unit vectors, ||u_a - u_b|| = sqrt(2 - 2 cos)."),
        ],
    ),
    Exercise(
        id="06.2", lesson=6, title="PGE per restart, averaged over restarts",
        signature="pge_per_restart(grads_a, grads_b) -> float",
        prompt=("Write `pge_per_restart(grads_a, grads_b)`: gradients of shape (restarts, "
                "batches, p) for two tasks, restart r computed at the same weights for "
                "both. For each restart, average over its batches, normalise each task's "
                "mean to unit L2 norm and take the distance; return the mean of the "
                "restarts' distances."),
        reference=pge_per_restart,
        cases=_restart_cases,
        hint=("grads.mean(axis=1) gives one expected gradient per restart, shape "
              "(restarts, p); normalise each row (keepdims=True); the distances are "
              "np.linalg.norm(ua - ub, axis=1); average them."),
        mistakes=[
            Mistake("pooled_restarts", _restart_pooled,
                    "you pooled every restart before taking one distance (the library's "
                    "default, reduce='expectation'); this exercise asks for one distance "
                    "per restart, then their mean (reduce='mean_distance'), which shows how "
                    "much the restarts disagree."),
            Mistake("not_normalised", _restart_not_normalised,
                    "you did not normalise each restart's expected gradient: divide it by "
                    "its L2 norm before the distance, or the size of the gradients decides."),
            Mistake("wrong_axis", _restart_wrong_axis,
                    "you averaged over the restarts (axis 0) and kept one vector per batch; "
                    "average over the batches (axis=1) and keep one per restart."),
        ],
    ),
]
