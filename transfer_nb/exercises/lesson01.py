"""Lesson 01, the coding rate: R(Z, eps) in NumPy, TransRate from its coding rates, and
what shuffled labels do to it."""
from __future__ import annotations

import numpy as np

from transfer_nb.exercises._core import Case, Exercise, Mistake


# ------------------------------------------------------------------ 01.1 coding rate
def coding_rate(Z, eps):
    """R(Z, eps) = 1/2 logdet(I_d + Z^T Z / (n eps)), Z of shape (n, d), not centred."""
    Z = np.asarray(Z, dtype=float)
    n, d = Z.shape
    _, logdet = np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))
    return 0.5 * logdet


def _cr_no_half(Z, eps):
    Z = np.asarray(Z, dtype=float)
    n, d = Z.shape
    return np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))[1]


def _cr_eps_not_scaled(Z, eps):
    Z = np.asarray(Z, dtype=float)
    d = Z.shape[1]
    return 0.5 * np.linalg.slogdet(np.eye(d) + Z.T @ Z / eps)[1]


def _cr_n_is_d(Z, eps):
    Z = np.asarray(Z, dtype=float)
    d = Z.shape[1]
    return 0.5 * np.linalg.slogdet(np.eye(d) + Z.T @ Z / (d * eps))[1]


def _cr_centred(Z, eps):
    Z = np.asarray(Z, dtype=float)
    return coding_rate(Z - Z.mean(axis=0), eps)


def _coding_rate_cases():
    rng = np.random.default_rng(101)
    return [
        Case("Z of shape (50, 4), eps=0.1", (rng.normal(size=(50, 4)) + 1.0, 0.1)),
        Case("Z of shape (10, 30) (wider than tall), eps=0.01",
             (rng.normal(size=(10, 30)), 0.01)),
        Case("Z of shape (30, 3) with a large scale, eps=1.0",
             (5.0 * rng.normal(size=(30, 3)) - 2.0, 1.0)),
        Case("edge case: a single row, Z of shape (1, 5), eps=0.5",
             (rng.normal(size=(1, 5)), 0.5)),
    ]


# ------------------------------------------------------------- 01.2 TransRate snippet
def transrate_snippet(Z, y, eps):
    """TransRate as in the paper's snippet: R(Z) - mean over classes of R(Z_k)."""
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y)

    def rate(A):                                 # 1/2 logdet(I + A^T A / (n eps))
        n, d = A.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + A.T @ A / (n * eps))[1]

    Z = Z - Z.mean(axis=0)                       # centre once, on the global mean
    per_class = [rate(Z[y == c]) for c in np.unique(y)]   # rows of that Z, not re-centred
    return rate(Z) - np.mean(per_class)          # every class weighs 1/K


def _rate(A, eps, n=None):
    n = A.shape[0] if n is None else n
    return 0.5 * np.linalg.slogdet(np.eye(A.shape[1]) + A.T @ A / (n * eps))[1]


def _tr_recentred(Z, y, eps):
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y)
    Z = Z - Z.mean(axis=0)
    rk = [_rate(Z[y == c] - Z[y == c].mean(axis=0), eps) for c in np.unique(y)]
    return _rate(Z, eps) - np.mean(rk)


def _tr_weighted(Z, y, eps):
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y)
    Z = Z - Z.mean(axis=0)
    classes = np.unique(y)
    w = np.array([np.mean(y == c) for c in classes])
    rk = np.array([_rate(Z[y == c], eps) for c in classes])
    return _rate(Z, eps) - float(np.sum(w * rk))


def _tr_not_centred(Z, y, eps):
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y)
    rk = [_rate(Z[y == c], eps) for c in np.unique(y)]
    return _rate(Z, eps) - np.mean(rk)


def _tr_global_n(Z, y, eps):
    Z = np.asarray(Z, dtype=float)
    y = np.asarray(y)
    Z = Z - Z.mean(axis=0)
    rk = [_rate(Z[y == c], eps, n=Z.shape[0]) for c in np.unique(y)]
    return _rate(Z, eps) - np.mean(rk)


def _transrate_cases():
    rng = np.random.default_rng(102)

    def blobs(counts, d, spread, offset):
        means = rng.normal(scale=spread, size=(len(counts), d)) + offset
        Z = np.concatenate([m + rng.normal(size=(c, d)) for m, c in zip(means, counts)])
        y = np.repeat(np.arange(len(counts)), counts)
        perm = rng.permutation(len(y))
        return Z[perm], y[perm]

    Z1, y1 = blobs([10, 20, 30], 3, 2.0, 3.0)
    Z2, y2 = blobs([8, 16], 20, 1.0, -1.0)
    Z3, y3 = blobs([6, 12, 9], 4, 3.0, 0.5)
    y3 = np.array(["cat", "dog", "eel"])[y3]
    Z4, y4 = blobs([2, 2], 3, 1.0, 2.0)
    return [
        Case("Z of shape (60, 3), 3 classes of 10, 20 and 30 rows, eps=0.1", (Z1, y1, 0.1)),
        Case("Z of shape (24, 20) (fewer rows per class than columns), 2 classes of 8 "
             "and 16, eps=0.01", (Z2, y2, 0.01)),
        Case("Z of shape (27, 4), string labels 'cat', 'dog', 'eel', eps=0.5", (Z3, y3, 0.5)),
        Case("edge case: 2 classes of 2 rows, Z of shape (4, 3), eps=1.0", (Z4, y4, 1.0)),
    ]


EXERCISES = [
    Exercise(
        id="01.1", lesson=1, title="the coding rate R(Z, eps) in NumPy",
        signature="coding_rate(Z, eps) -> float",
        prompt=("Write `coding_rate(Z, eps)`: for features `Z` of shape (n, d) return "
                "R(Z, eps) = 1/2 logdet(I_d + Z^T Z / (n eps)) as a float, in nats. Do not "
                "centre Z. `np.linalg.slogdet` returns (sign, log|det|)."),
        reference=coding_rate,
        cases=_coding_rate_cases,
        hint=("Build the d x d matrix I + Z^T Z / (n eps) with n the number of rows of Z, "
              "take its log-determinant with np.linalg.slogdet(...)[1], and halve it."),
        mistakes=[
            Mistake("no_half", _cr_no_half,
                    "your R is twice the reference: the coding rate has a 1/2 in front of "
                    "the log-determinant."),
            Mistake("eps_not_scaled", _cr_eps_not_scaled,
                    "your R is too large: the matrix is Z^T Z / (n eps), where n is the "
                    "number of rows of Z; you divided by eps alone (for Z Z^T the same 1/n "
                    "is needed)."),
            Mistake("n_is_d", _cr_n_is_d,
                    "you scaled by the number of columns d; n in Z^T Z / (n eps) is the "
                    "number of rows (samples): Z has shape (n, d)."),
            Mistake("centred", _cr_centred,
                    "you centred Z first; R(Z, eps) here is the coding rate of Z as given "
                    "(TransRate centres Z before it calls the coding rate, 01.2)."),
        ],
    ),
    Exercise(
        id="01.2", lesson=1, title="TransRate from R(Z) and the class-wise rates",
        signature="transrate_snippet(Z, y, eps) -> float",
        prompt=("Write `transrate_snippet(Z, y, eps)` as in the paper's snippet: centre Z "
                "once on its mean; R(Z) of that centred Z; for each class k the coding rate "
                "R(Z_k) of its rows (not re-centred, with n_k = its number of rows); return "
                "R(Z) minus the plain mean of the R(Z_k) over the K classes. Labels may be "
                "any values (ints with gaps, strings)."),
        reference=transrate_snippet,
        cases=_transrate_cases,
        hint=("Centre Z once (Z - Z.mean(axis=0)); select the rows of class c with "
              "Z[y == c] for c in np.unique(y); each coding rate uses its own number of "
              "rows; average the class rates with np.mean."),
        mistakes=[
            Mistake("recentred", _tr_recentred,
                    "you re-centred each class on its own mean; the snippet takes the rows "
                    "of the globally centred Z as they are, so the class term also counts "
                    "how far the class mean sits from the global mean."),
            Mistake("weighted", _tr_weighted,
                    "you weighted each class by its share n_k / n; the snippet averages "
                    "the class rates plainly (every class weighs 1/K; the 'layerwise' and "
                    "'projected' variants are the ones that weigh by n_k / n)."),
            Mistake("not_centred", _tr_not_centred,
                    "you did not centre Z: subtract the mean row once, before R(Z) and "
                    "the class rates."),
            Mistake("global_n", _tr_global_n,
                    "your class rates divide by the total n; each coding rate uses the "
                    "number of rows of its own matrix, n_k for class k."),
        ],
    ),
    Exercise(
        id="01.3", lesson=1, title="predict: TransRate after shuffling the labels",
        kind="choice",
        prompt=("Features Z of 3 well-separated classes, 500 rows per class, d = 8 "
                "(many more rows per class than dimensions). You compute TransRate, then "
                "shuffle the labels at random and compute it again. What happens? Answer "
                "with a letter, e.g. check('01.3', 'a')."),
        options={
            "a": "it stays about the same: TransRate looks only at the features",
            "b": "it falls to about 0: each shuffled class looks like the whole set, so "
                 "R(Z|Y) rises to about R(Z)",
            "c": "it rises: shuffled classes are more spread out, so they carry more "
                 "information",
            "d": "it becomes strongly negative",
        },
        reference="b",
        hint=("What does a class of randomly chosen rows look like, compared with the whole "
              "set? Compare its coding rate with R(Z)."),
        explanation=("A shuffled class is a random sample of all rows: its coding rate is "
                     "about R(Z), so R(Z) - R(Z|Y) is about 0 (slightly above, from the "
                     "smaller sample). The labels no longer tell the classes apart, and "
                     "TransRate measures exactly that. With fewer rows per class than "
                     "dimensions the snippet stays well above 0 even then: it counts "
                     "dimensions (lesson 02)."),
        mistakes=[
            Mistake("features_only", "a",
                    "TransRate is R(Z) minus R(Z|Y), and R(Z|Y) is computed on the rows "
                    "of each class: the labels decide which rows those are."),
            Mistake("rises", "c",
                    "a shuffled class is spread like the whole set, so its coding rate "
                    "grows towards R(Z); what does that do to R(Z) - R(Z|Y)?"),
            Mistake("negative", "d",
                    "each shuffled class looks like the whole set, so R(Z_k) is close to "
                    "R(Z), not above it: the difference ends near 0, not far below."),
        ],
    ),
]
