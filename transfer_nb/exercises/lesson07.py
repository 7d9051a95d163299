"""Lesson 07, which estimator: the Kendall tau of a size-only ranking (ties included), and
how much of a correlation is the gap between model families (leave one family out)."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# ------------------------------------------------------------------ 07.1 tau-b by hand
def kendall_tau_b(x, y):
    """Kendall's tau-b from the pairs: (C - D) / sqrt((P - Tx) (P - Ty))."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(x), k=1)          # every pair i < j once
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant_minus_discordant = np.sum(sx * sy)
    untied_x, untied_y = np.sum(sx != 0), np.sum(sy != 0)   # P - Tx, P - Ty
    return float(concordant_minus_discordant / np.sqrt(untied_x * untied_y))


def _tau_a(x, y):
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    return float(np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / len(i))


def _pearson(x, y):
    return float(np.corrcoef(np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0, 1])


def _spearman(x, y):
    from scipy.stats import spearmanr
    return float(spearmanr(x, y).statistic)


def _tau_cases():
    rng = np.random.default_rng(701)
    widths1 = np.array([1280, 1280, 1280, 64, 64, 128, 128, 256], dtype=float)
    acc1 = rng.uniform(0.3, 0.8, size=8) + widths1 / 4000
    params2 = np.array([4.7e6, 5.4e6, 6.1e6, 0.2e6, 0.4e6, 1.1e6, 2.3e6])
    acc2 = np.array([0.74, 0.71, 0.78, 0.52, 0.55, 0.55, 0.61])
    widths3 = np.array([16, 32, 32, 64, 64, 64], dtype=float)
    acc3 = np.array([0.50, 0.62, 0.58, 0.61, 0.70, 0.58])
    return [
        Case("8 models, widths 1280 (x3), 64 (x2), 128 (x2), 256", (widths1, acc1)),
        Case("7 models, parameter counts from 0.2 to 6.1 million, two accuracies tied",
             (params2, acc2)),
        Case("edge case: 6 models, widths and accuracies both with ties", (widths3, acc3)),
    ]


# --------------------------------------------------------- 07.2 leave one family out
def leave_family_out(scores, truth, families):
    """{family: Kendall tau-b of scores and truth over the models of the other families}."""
    from scipy.stats import kendalltau

    scores, truth, families = np.asarray(scores), np.asarray(truth), np.asarray(families)
    return {str(f): float(kendalltau(scores[families != f], truth[families != f]).statistic)
            for f in np.unique(families)}


def _lfo_kept(scores, truth, families):
    import warnings

    from scipy.stats import kendalltau
    scores, truth, families = np.asarray(scores), np.asarray(truth), np.asarray(families)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # a family of one model: tau is NaN
        return {str(f): float(kendalltau(scores[families == f],
                                         truth[families == f]).statistic)
                for f in np.unique(families)}


def _lfo_pearson(scores, truth, families):
    scores, truth, families = np.asarray(scores), np.asarray(truth), np.asarray(families)
    return {str(f): _pearson(scores[families != f], truth[families != f])
            for f in np.unique(families)}


def _lfo_cases():
    rng = np.random.default_rng(702)

    def zoo(sizes, gaps, names):
        s, t, f = [], [], []
        for size, gap, name in zip(sizes, gaps, names):
            x = rng.normal(size=size)
            s.append(x + gap)                          # the family's gap in score...
            t.append(0.3 * x + 0.5 * rng.normal(size=size) + gap)   # ...and in accuracy
            f += [name] * size
        return np.concatenate(s), np.concatenate(t), np.array(f)

    return [
        Case("3 families ('imagenet', 'small_cnn', 'vit') of 6, 5 and 4 models",
             zoo([6, 5, 4], [2.0, 0.0, 1.0], ["imagenet", "small_cnn", "vit"])),
        Case("2 families of 7 and 7 models, far apart", zoo([7, 7], [3.0, 0.0], ["a", "b"])),
        Case("edge case: 3 families, one with a single model",
             zoo([5, 1, 6], [0.0, 2.0, 1.0], ["big", "one", "small"])),
    ]


EXERCISES = [
    Exercise(
        id="07.1", lesson=7, title="Kendall's tau of a size-only ranking, ties included",
        signature="kendall_tau_b(x, y) -> float",
        prompt=("Write `kendall_tau_b(x, y)` without scipy: x the models' sizes (widths or "
                "parameter counts; several models share a width), y their accuracies. Over "
                "all pairs i < j count concordant (C) and discordant (D) pairs; return "
                "tau-b = (C - D) / sqrt((P - Tx)(P - Ty)), P the number of pairs, Tx and Ty "
                "the pairs tied in x and in y."),
        reference=kendall_tau_b,
        cases=_tau_cases,
        hint=("np.triu_indices(n, k=1) lists the pairs; np.sign(x[i] - x[j]) is +1, -1 or "
              "0 (a tie); a pair is concordant when the two signs agree. Ties count in "
              "neither C nor D, and shrink the denominator."),
        mistakes=[
            Mistake("tau_a", _tau_a,
                    "you divided by the number of pairs P (tau-a); with ties, tau-b divides "
                    "by sqrt((P - Tx)(P - Ty)), the pairs not tied in x times those not "
                    "tied in y. Models that share a width are ties."),
            Mistake("pearson", _pearson,
                    "your value is Pearson's r of the raw sizes: the largest models then "
                    "dominate. Kendall's tau uses only the order of each pair."),
            Mistake("spearman", _spearman,
                    "your value is Spearman's rho (the correlation of ranks); Kendall's tau "
                    "counts concordant and discordant pairs."),
        ],
    ),
    Exercise(
        id="07.2", lesson=7, title="leave one model family out",
        signature="leave_family_out(scores, truth, families) -> dict",
        prompt=("Write `leave_family_out(scores, truth, families)`: one score, one accuracy "
                "and one family name per model. Return a dict {family: tau}, one entry per "
                "family, where tau is Kendall's tau-b (scipy.stats.kendalltau) of scores and "
                "truth over the models of all the *other* families. When the values drop "
                "far below the full tau, the gap between families carried it."),
        reference=leave_family_out,
        cases=_lfo_cases,
        hint=("for f in np.unique(families): keep = families != f; "
              "kendalltau(scores[keep], truth[keep]).statistic; use str(f) as the key."),
        mistakes=[
            Mistake("kept_family", _lfo_kept,
                    "you kept only the family (families == f); leaving it out means the "
                    "models of every other family (families != f)."),
            Mistake("pearson", _lfo_pearson,
                    "your values are Pearson's r; the lesson ranks estimators by Kendall's "
                    "tau (scipy.stats.kendalltau)."),
        ],
    ),
]
