"""Lesson 05, adversarially trained sources: one L2 PGD step with its projection, and a
paired per-seed t-interval."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# --------------------------------------------------------------------- 05.1 PGD step
def pgd_l2_step(x, grad, x0, eps, step):
    """One L2 PGD step for a batch (first axis = examples), as transfer_nb.adversarial.pgd."""
    x, grad, x0 = (np.asarray(a, dtype=float) for a in (x, grad, x0))
    axes = tuple(range(1, x.ndim))                    # every axis but the batch

    def norms(t):                                     # one L2 norm per example
        return np.sqrt((t ** 2).sum(axis=axes, keepdims=True))

    x_new = x + step * grad / np.maximum(norms(grad), 1e-12)   # a zero gradient: no step
    delta = x_new - x0
    n = norms(delta)
    delta = delta * np.where(n > eps, eps / np.maximum(n, 1e-30), 1.0)  # back onto the ball
    return np.clip(x0 + delta, 0.0, 1.0)              # and into the pixel range


def _axes(x):
    return tuple(range(1, np.ndim(x)))


def _project_clip(x_new, x0, eps):
    delta = x_new - x0
    n = np.sqrt((delta ** 2).sum(axis=_axes(delta), keepdims=True))
    delta = delta * np.where(n > eps, eps / np.maximum(n, 1e-30), 1.0)
    return np.clip(x0 + delta, 0.0, 1.0)


def _pgd_sign(x, grad, x0, eps, step):
    x, grad, x0 = (np.asarray(a, dtype=float) for a in (x, grad, x0))
    return _project_clip(x + step * np.sign(grad), x0, eps)


def _pgd_no_projection(x, grad, x0, eps, step):
    x, grad, x0 = (np.asarray(a, dtype=float) for a in (x, grad, x0))
    g = np.sqrt((grad ** 2).sum(axis=_axes(grad), keepdims=True))
    return np.clip(x + step * grad / np.maximum(g, 1e-12), 0.0, 1.0)


def _pgd_batch_norm(x, grad, x0, eps, step):
    x, grad, x0 = (np.asarray(a, dtype=float) for a in (x, grad, x0))
    x_new = x + step * grad / max(np.linalg.norm(grad), 1e-12)
    delta = x_new - x0
    n = np.linalg.norm(delta)
    return np.clip(x0 + delta * (eps / n if n > eps else 1.0), 0.0, 1.0)


def _pgd_linf_projection(x, grad, x0, eps, step):
    x, grad, x0 = (np.asarray(a, dtype=float) for a in (x, grad, x0))
    g = np.sqrt((grad ** 2).sum(axis=_axes(grad), keepdims=True))
    x_new = x + step * grad / np.maximum(g, 1e-12)
    return np.clip(x0 + np.clip(x_new - x0, -eps, eps), 0.0, 1.0)


def _pgd_cases():
    rng = np.random.default_rng(501)
    x0a = rng.uniform(0.2, 0.8, size=(2, 3, 4, 4))
    ga = rng.normal(size=x0a.shape) * np.array([1.0, 5.0])[:, None, None, None]
    x0b = rng.uniform(0.2, 0.8, size=(3, 2))
    gb = rng.normal(size=x0b.shape)
    db = rng.normal(size=x0b.shape)
    xb = x0b + 0.15 * db / np.linalg.norm(db, axis=1, keepdims=True)   # on the ball's surface
    x0c = rng.uniform(0.3, 0.7, size=(3, 5))
    x0c[1, 2] = 0.98                                  # a pixel near white
    gc = rng.normal(size=x0c.shape)
    gc[1, 2] = 3.0                                    # pushed past 1
    gc[2] = 0.0                                       # an example with a zero gradient
    return [
        Case("a batch of 2 images (2, 3, 4, 4), first step (x = x0), eps=0.5, step=1.0 "
             "(the step leaves the ball)", (x0a.copy(), ga, x0a, 0.5, 1.0)),
        Case("3 vectors (3, 2) already on the ball's surface, eps=0.15, step=0.1",
             (xb, gb, x0b, 0.15, 0.1)),
        Case("edge case: 3 vectors (3, 5), one pixel pushed past 1, one example with a "
             "zero gradient, eps=2.0, step=0.5", (x0c.copy(), gc, x0c, 2.0, 0.5)),
    ]


# ------------------------------------------------------- 05.2 paired t-interval
def paired_t_interval(a, b):
    """Mean of the per-seed differences a - b and its 95% Student-t interval."""
    from scipy.stats import t

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    half = t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return d.mean(), d.mean() - half, d.mean() + half


def _t_welch(a, b):
    from scipy.stats import t
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    m = a.mean() - b.mean()
    half = t.ppf(0.975, df) * np.sqrt(va + vb)
    return m, m - half, m + half


def _t_z(a, b):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    half = 1.959963984540054 * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def _t_ddof0(a, b):
    from scipy.stats import t
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    half = t.ppf(0.975, len(d) - 1) * d.std() / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def _t_cases():
    rng = np.random.default_rng(502)
    out = []
    for label, n in (("5 seeds", 5), ("3 seeds", 3), ("10 seeds", 10),
                     ("edge case: 2 seeds", 2)):
        seed_effect = rng.normal(scale=0.05, size=n)          # shared by both methods
        a = 0.70 + seed_effect + rng.normal(scale=0.01, size=n)
        b = 0.66 + seed_effect + rng.normal(scale=0.01, size=n)
        out.append(Case(f"{label}: a and b of length {n}", (a, b)))
    return out


EXERCISES = [
    Exercise(
        id="05.1", lesson=5, title="one L2 PGD step, projected onto the eps-ball",
        signature="pgd_l2_step(x, grad, x0, eps, step) -> array like x",
        prompt=("Write `pgd_l2_step(x, grad, x0, eps, step)` for a batch (first axis = "
                "examples): move each example of x by `step` along its gradient divided by "
                "that example's L2 norm (a zero gradient makes no step), project back onto "
                "the L2 ball of radius eps around x0 (shrink x - x0 to norm eps when it is "
                "longer), then clip to [0, 1]. Return the new batch."),
        reference=pgd_l2_step,
        cases=_pgd_cases,
        hint=("Per-example norms: np.sqrt((g ** 2).sum(axis=tuple(range(1, g.ndim)), "
              "keepdims=True)). Step: x + step * g / max(norm, 1e-12). Projection: "
              "delta = x_new - x0, scaled by eps / ||delta|| when ||delta|| > eps. Then "
              "np.clip."),
        mistakes=[
            Mistake("sign_step", _pgd_sign,
                    "you stepped along sign(grad): that is the L-infinity step (FGSM/PGD "
                    "for the max-norm ball). For the L2 ball the step follows the gradient "
                    "divided by its L2 norm."),
            Mistake("no_projection", _pgd_no_projection,
                    "you did not project: after the step, x - x0 can be longer than eps; "
                    "shrink it back to norm eps (per example), then clip."),
            Mistake("batch_norm", _pgd_batch_norm,
                    "you took one norm over the whole batch; every example has its own "
                    "gradient norm and its own ball: sum over every axis but the first."),
            Mistake("linf_projection", _pgd_linf_projection,
                    "you clipped each pixel of x - x0 to [-eps, eps]: that is the "
                    "projection onto the L-infinity ball. The L2 projection rescales the "
                    "whole difference to norm eps when it is longer."),
        ],
    ),
    Exercise(
        id="05.2", lesson=5, title="a paired per-seed t-interval",
        signature="paired_t_interval(a, b) -> (mean, low, high)",
        prompt=("Write `paired_t_interval(a, b)`: one accuracy per seed for method a and for "
                "method b, paired by seed (same length). Return (mean, low, high): the mean "
                "of the differences a - b and its 95% Student-t confidence interval."),
        reference=paired_t_interval,
        cases=_t_cases,
        hint=("Work on d = a - b: its mean, its standard deviation with ddof=1, "
              "scipy.stats.t.ppf(0.975, n - 1) for the quantile; half-width = quantile * "
              "sd / sqrt(n)."),
        mistakes=[
            Mistake("unpaired", _t_welch,
                    "your interval is the unpaired (Welch) one, built from the spread of a "
                    "and of b separately; pairing by seed cancels the seed-to-seed noise "
                    "both methods share: work on the differences d = a - b."),
            Mistake("z", _t_z,
                    "you used the normal quantile 1.96; with n seeds the mean of the "
                    "differences follows Student's t with n - 1 degrees of freedom "
                    "(scipy.stats.t.ppf(0.975, n - 1), 2.78 for 5 seeds)."),
            Mistake("ddof0", _t_ddof0,
                    "your standard deviation divides by n (np.std's default); the "
                    "interval uses the sample standard deviation, ddof=1."),
        ],
    ),
]
