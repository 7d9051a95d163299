"""Lesson 02, TransRate for model and layer selection: how to tell whether an estimator
works (the mean within-target Kendall tau; a paired bootstrap of two correlations)."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# ----------------------------------------------------------- 02.1 within-target tau
def mean_within_tau(scores, truth, groups):
    """Kendall's tau-b between scores and truth within each group, averaged over groups."""
    from scipy.stats import kendalltau

    scores, truth, groups = np.asarray(scores), np.asarray(truth), np.asarray(groups)
    taus = [kendalltau(scores[groups == g], truth[groups == g]).statistic
            for g in np.unique(groups)]
    return float(np.mean(taus))


def _tau_pooled(scores, truth, groups):
    from scipy.stats import kendalltau
    return float(kendalltau(scores, truth).statistic)


def _tau_pearson(scores, truth, groups):
    scores, truth, groups = np.asarray(scores), np.asarray(truth), np.asarray(groups)
    return float(np.mean([np.corrcoef(scores[groups == g], truth[groups == g])[0, 1]
                          for g in np.unique(groups)]))


def _tau_size_weighted(scores, truth, groups):
    from scipy.stats import kendalltau
    scores, truth, groups = np.asarray(scores), np.asarray(truth), np.asarray(groups)
    gs = np.unique(groups)
    taus = np.array([kendalltau(scores[groups == g], truth[groups == g]).statistic for g in gs])
    sizes = np.array([np.sum(groups == g) for g in gs])
    return float(np.sum(taus * sizes) / sizes.sum())


def _tau_cases():
    rng = np.random.default_rng(201)

    def grouped(sizes, offsets, slope, noise, names=None):
        s, t, g = [], [], []
        for k, (size, off) in enumerate(zip(sizes, offsets)):
            x = rng.normal(size=size)
            s.append(x - 3.0 * off)                  # a target where every score is low...
            t.append(slope * x + noise * rng.normal(size=size) + off)   # ...but accuracy high
            g += [names[k] if names else k] * size
        return np.concatenate(s), np.concatenate(t), np.array(g)

    s1, t1, g1 = grouped([8, 8, 8], [0.0, 2.0, 4.0], 1.0, 0.5)
    s2, t2, g2 = grouped([5, 12, 7], [1.0, -1.0, 0.0], 0.6, 0.6, ["cifar", "dtd", "svhn"])
    s3, t3, g3 = grouped([6, 4], [0.0, 3.0], -0.8, 0.4)
    s4, t4, g4 = grouped([10], [0.0], 1.0, 1.0)
    return [
        Case("3 targets of 8 models, each target's scores shifted down as its accuracies "
             "go up (Simpson's paradox)", (s1, t1, g1)),
        Case("3 targets named 'cifar', 'dtd', 'svhn' with 5, 12 and 7 models", (s2, t2, g2)),
        Case("2 targets of 6 and 4 models, scores that rank them backwards", (s3, t3, g3)),
        Case("edge case: one target of 10 models", (s4, t4, g4)),
    ]


# -------------------------------------------------------- 02.2 paired bootstrap
def paired_bootstrap_diff(score_a, score_b, truth, idx):
    """Pearson r(a, truth) - r(b, truth) on each bootstrap resample idx[i] (shared by both)."""
    a, b, t = np.asarray(score_a), np.asarray(score_b), np.asarray(truth)

    def r(x, y):                                  # Pearson r of every row pair
        x = x - x.mean(axis=1, keepdims=True)
        y = y - y.mean(axis=1, keepdims=True)
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))

    return r(a[idx], t[idx]) - r(b[idx], t[idx])  # the same rows for a, b and the truth


def _r_rows(x, y):
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))


def _boot_separate(a, b, t, idx):
    a, b, t, idx = np.asarray(a), np.asarray(b), np.asarray(t), np.asarray(idx)
    other = idx[::-1]
    return _r_rows(a[idx], t[idx]) - _r_rows(b[other], t[other])


def _boot_full_sample(a, b, t, idx):
    a, b, t = np.asarray(a), np.asarray(b), np.asarray(t)
    diff = np.corrcoef(a, t)[0, 1] - np.corrcoef(b, t)[0, 1]
    return np.full(np.asarray(idx).shape[0], diff)


def _boot_truth_fixed(a, b, t, idx):
    a, b, t, idx = np.asarray(a), np.asarray(b), np.asarray(t), np.asarray(idx)
    tt = np.broadcast_to(t, idx.shape)
    return _r_rows(a[idx], tt) - _r_rows(b[idx], tt)


def _boot_cases():
    rng = np.random.default_rng(202)
    out = []
    for label, n, B in (("12 models, 40 resamples", 12, 40),
                        ("30 models, 25 resamples", 30, 25),
                        ("edge case: 8 models, a single resample (B = 1)", 8, 1)):
        t = rng.uniform(0.4, 0.9, size=n)
        a = t + 0.05 * rng.normal(size=n)
        b = 0.5 * t + 0.08 * rng.normal(size=n)
        idx = rng.integers(0, n, size=(B, n))
        out.append(Case(f"{label}: idx of shape ({B}, {n})", (a, b, t, idx)))
    return out


EXERCISES = [
    Exercise(
        id="02.1", lesson=2, title="the mean within-target Kendall tau",
        signature="mean_within_tau(scores, truth, groups) -> float",
        prompt=("Write `mean_within_tau(scores, truth, groups)`: one score, one fine-tuned "
                "accuracy and one target name per row (arrays of length n). Compute "
                "Kendall's tau (tau-b, `scipy.stats.kendalltau`) between scores and truth "
                "within each target, and return the plain mean over targets (a float)."),
        reference=mean_within_tau,
        cases=_tau_cases,
        hint=("Loop over np.unique(groups); select a target's rows with a mask "
              "groups == g; one tau per target; then np.mean of the taus."),
        mistakes=[
            Mistake("pooled", _tau_pooled,
                    "you computed one tau over all rows; choosing a model is a question "
                    "within one target, and pooling mixes in the differences between "
                    "targets (Simpson's paradox: here every target agrees but the pool "
                    "says the opposite). Compute a tau per target, then average."),
            Mistake("pearson", _tau_pearson,
                    "your values are Pearson's r per target; the question asks for "
                    "Kendall's tau (scipy.stats.kendalltau), which counts agreeing pairs "
                    "of models and ignores how far apart they are."),
            Mistake("size_weighted", _tau_size_weighted,
                    "you weighted each target by its number of models; the mean here is "
                    "plain: every target counts once."),
        ],
    ),
    Exercise(
        id="02.2", lesson=2, title="a paired bootstrap of r(a) - r(b)",
        signature="paired_bootstrap_diff(score_a, score_b, truth, idx) -> array (B,)",
        prompt=("Write `paired_bootstrap_diff(score_a, score_b, truth, idx)`: two "
                "estimators' scores and the truth for n models, and `idx`, an integer "
                "array of shape (B, n) whose row i is one bootstrap resample of the models. "
                "Return the array of B differences r(a, truth) - r(b, truth), each computed "
                "on the rows idx[i] (r: Pearson's correlation)."),
        reference=paired_bootstrap_diff,
        cases=_boot_cases,
        hint=("For each row of idx: a[idx[i]], b[idx[i]] and truth[idx[i]] are one "
              "resample; np.corrcoef(x, y)[0, 1] is Pearson's r. Return "
              "np.array([...]) of length B."),
        mistakes=[
            Mistake("separate_resamples", _boot_separate,
                    "score b is resampled with other rows than score a (paired means the "
                    "same resample idx[i] for a, b and the truth): the item-to-item noise "
                    "the two scores share then no longer cancels, and the interval widens."),
            Mistake("full_sample", _boot_full_sample,
                    "every difference is the same, the full-sample r(a) - r(b): compute "
                    "each one on its resample, a[idx[i]], b[idx[i]], truth[idx[i]]."),
            Mistake("truth_not_resampled", _boot_truth_fixed,
                    "you resampled the scores but not the truth: each resampled score must "
                    "stay beside its own model's accuracy, truth[idx[i]]."),
        ],
    ),
]
