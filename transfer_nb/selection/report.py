"""Reading a :func:`score_models` table: the ranking, what each column means, where an
estimator is degenerate on these data, whether the ground truth can separate the models,
and how far the estimators agree.  The CLI (``transfer-nb rank``) prints these; in a
notebook ``rank_table(table)`` and ``ranking_notes(table)`` give the same."""
from __future__ import annotations

import numpy as np

from transfer_nb import stats
from transfer_nb.estimators import registry
from transfer_nb.evaluation import constant_up_to_rounding, degenerate_reason, truth_separation

__all__ = ["rank_table", "default_sort_column", "score_columns", "higher_is_better",
           "SCORE_MEANINGS", "column_meanings", "ranking_notes", "estimator_agreement",
           "top_models", "truth_check", "next_step", "degenerate_columns", "MIN_MODELS"]

#: fewer scored models than this and no ranking can be checked: with 4 items the smallest
#: two-sided permutation p is 0.083 (DESIGN, "Power to decide")
MIN_MODELS = 5

#: one line per column a ranking can show: what it measures (higher is better for all
#: of them unless the registry says otherwise)
SCORE_MEANINGS = {
    "transrate": "TransRate, coding rate of all features minus that within each class "
                 "(nats): how much the features say about your labels",
    "transrate_layerwise": "TransRate as in the authors' layer-selection code (normalised "
                           "features, per-dimension rate)",
    "transrate_projected": "TransRate as in the authors' model-selection code (features "
                           "projected on the class-mean directions)",
    "logme": "LogME, evidence per image of a Bayesian linear model predicting the labels "
             "from the features",
    "leep": "LEEP, log-likelihood of your labels under the source classifier's predictions "
            "mapped to your classes",
    "nce": "NCE, negative conditional entropy of your labels given the source model's "
           "predicted class",
    "hscore": "H-score, spread of the class means relative to the spread of all features "
              "(at most K - 1)",
    "hscore_shrinkage": "H-score with a Ledoit-Wolf shrunk covariance (usable when images "
                        "< feature width)",
    "knn": "k-NN, leave-one-out nearest-neighbour accuracy on the features",
    "nleep": "N-LEEP, LEEP on the clusters of a Gaussian mixture of the features",
    "gbc": "GBC, minus the overlap (Bhattacharyya) of the per-class Gaussians",
    "parc": "PARC, correlation of the features' and the labels' pairwise similarities",
    "sfda": "SFDA, Fisher discriminant accuracy of the features (self-challenging)",
    "etran": "ETran, energy of the features (in-distribution for the source?) plus LDA "
             "accuracy; one model's raw sum, not the authors' across-model normalisation",
    "ncti": "NCTI, how close the features are to neural collapse (nuclear norm + "
            "nearest-centre accuracy - class variability); one model's raw sum",
    "accuracy": "accuracy, the ground truth: held-out accuracy after transfer",
    "params": "params, parameters of the model (a static baseline)",
    "width": "width, feature dimension of the scored layer (a static baseline)",
    "imagenet_top1": "imagenet_top1, published ImageNet top-1 % of the weights (a static "
                     "baseline; not measured here)",
}

# columns a ranking never sorts by default nor compares as estimators
_INFO = ("rank", "layer", "image_size", "width", "n_train", "n_classes", "n_test",
         "accuracy", "params", "imagenet_top1", "note", "depth")


def score_columns(table) -> list[str]:
    """The estimator columns of a table, in its order (``attrs["estimators"]`` when set)."""
    named = table.attrs.get("estimators")
    if named:
        return [c for c in named if c in table.columns]
    return [c for c in table.columns if c in registry.REGISTRY and c not in _INFO]


def higher_is_better(column: str) -> bool:
    """Whether a larger value ranks first (False only for estimators registered so)."""
    entry = registry.REGISTRY.get(column)
    return True if entry is None else bool(entry.higher_is_better)


def default_sort_column(table) -> str:
    """The first estimator column (``accuracy`` when there is none)."""
    scores = score_columns(table)
    if scores:
        return scores[0]
    if "accuracy" in table.columns:
        return "accuracy"
    raise ValueError(f"nothing to rank by: no estimator column in {list(table.columns)}")


def rank_table(table, by: str | None = None):
    """``score_models``' table sorted best first by ``by``, with a 1-based ``rank``
    column first; timings and empty notes left out.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`transfer_nb.selection.score_models` (or any table with score columns).
    by : str, optional
        Column to rank by (default: the first estimator, :func:`default_sort_column`).
        Lower is better only for estimators registered so.  Rows where it is NaN (a
        model that could not be scored) come last, without a rank.

    Returns
    -------
    pandas.DataFrame
        ``attrs["sort_by"]`` names the column, ``attrs["higher_is_better"]`` its direction.
    """
    import pandas as pd

    by = by if by is not None else default_sort_column(table)
    if by not in table.columns:
        raise ValueError(f"cannot rank by {by!r}: columns are {list(table.columns)}")
    if not pd.api.types.is_numeric_dtype(table[by]):
        raise ValueError(f"cannot rank by {by!r}: it is not a numeric column")
    higher = higher_is_better(by)
    ranked = table.sort_values(by, ascending=not higher, na_position="last", kind="stable")
    keep = [c for c in ranked.columns if not str(c).endswith("_seconds")
            and not (c == "note" and not ranked[c].astype(bool).any())]
    ranked = ranked[keep].copy()
    finite = ranked[by].notna().to_numpy()
    rank = pd.array([k + 1 if ok else pd.NA for k, ok in enumerate(finite)], dtype="Int64")
    ranked.insert(0, "rank", rank)
    for col in ("image_size", "width", "n_train", "n_classes", "n_test", "params"):
        if col in ranked.columns and ranked[col].notna().all():
            ranked[col] = ranked[col].astype(np.int64)
    ranked.attrs.update(table.attrs)
    ranked.attrs.update(sort_by=by, higher_is_better=higher)
    return ranked


def column_meanings(columns) -> list[str]:
    """``"name: meaning"`` for every column of ``columns`` that has one."""
    out = []
    for col in columns:
        if col in SCORE_MEANINGS:
            out.append(SCORE_MEANINGS[col])
        elif col in registry.REGISTRY:
            ref = registry.REGISTRY[col].reference
            out.append(f"{col}, a registered estimator" + (f" ({ref})" if ref else ""))
    return out


def _ok(table):
    failed = table.attrs.get("failed") or {}
    return table.loc[[m for m in table.index if m not in failed]]


def _n_classes(ok):
    """Classes per row: the ``n_classes`` column, else ``attrs["n_classes"]`` (a
    :func:`score_layers` table); ``None`` when neither says."""
    if "n_classes" in ok.columns:
        return ok["n_classes"].to_numpy(float)
    k = ok.attrs.get("n_classes")
    return None if k is None else np.full(len(ok), float(k))


def _narrow_rows(ok) -> np.ndarray:
    """Rows with n_train <= width (``n_train`` from the column or ``attrs``); every row
    when the table does not say."""
    n_train = ok["n_train"].to_numpy(float) if "n_train" in ok.columns else \
        np.full(len(ok), float(ok.attrs.get("n_train", -np.inf)))
    if "width" not in ok.columns or not np.isfinite(n_train).all():
        return np.ones(len(ok), dtype=bool)
    return n_train <= ok["width"].to_numpy(float)


def degenerate_columns(table) -> dict:
    """``{estimator column: why it cannot rank these rows}``: constant up to rounding, or
    H-score at its bound ``K - 1`` for any row
    (:func:`transfer_nb.evaluation.degenerate_reason`).  Such a column is never said to
    put a model first nor compared with the others."""

    ok = _ok(table)
    k = _n_classes(ok)
    out = {}
    for col in score_columns(ok):
        v = ok[col].to_numpy(float)
        fin = np.isfinite(v)
        why = degenerate_reason(v[fin], None, None if k is None else k[fin], col,
                                [str(i) for i in ok.index[fin]])
        if why:
            out[col] = why
    return out


def estimator_agreement(table):
    """Kendall tau between the rankings of every pair of estimator columns (lower-is-better
    scores flipped), over the models both scored; a square DataFrame (NaN with fewer
    than 3 models in common, or for a column constant across them)."""
    import pandas as pd
    from scipy.stats import kendalltau

    ok = _ok(table)
    scores = score_columns(ok)
    left_out = degenerate_columns(ok)
    out = pd.DataFrame(np.nan, index=scores, columns=scores)
    for i, a in enumerate(scores):
        for b in scores[i:]:
            va = ok[a].to_numpy(float) * (1 if higher_is_better(a) else -1)
            vb = ok[b].to_numpy(float) * (1 if higher_is_better(b) else -1)
            both = np.isfinite(va) & np.isfinite(vb)
            if a in left_out or b in left_out:
                continue
            if both.sum() >= 3 and not _constant(va[both]) and not _constant(vb[both]):
                tau = float(kendalltau(va[both], vb[both]).statistic)
                out.loc[a, b] = out.loc[b, a] = tau
    return out


def top_models(table) -> dict:
    """``{column: the model it ranks first}`` for the estimators (and ``accuracy``);
    ties go to the first in table order; a column that cannot rank the models
    (:func:`degenerate_columns`) has none."""
    ok = _ok(table)
    out = {}
    left_out = degenerate_columns(ok)
    for col in score_columns(ok) + (["accuracy"] if "accuracy" in ok.columns else []):
        if col in left_out:
            continue
        values = ok[col].to_numpy(float) * (1 if higher_is_better(col) else -1)
        if np.isfinite(values).any() and not _constant(values):
            out[col] = ok.index[int(np.nanargmax(values))]
    return out


def _constant(values) -> bool:
    return constant_up_to_rounding(values)


def ranking_notes(table) -> list[str]:
    """Plain-words notes on a :func:`score_models` table, one per finding:

    * an estimator degenerate on these data: H-score at exactly ``K - 1`` when
      ``n_train <= width`` (the pseudo-inverse explains every direction); LogME at its
      ``beta -> inf`` limit when ``n_train <= width`` (the labels lie in the span of the
      features, so it measures the features' spectrum rather than the fit); a score
      constant across the models;
    * a ground truth that cannot separate the models (spread < 3 standard errors, or a
      model at the 0.97 ceiling: :func:`transfer_nb.stats.discrimination`);
    * how far the estimators agree (Kendall tau between their rankings) and which model
      each puts first.
    """
    ok = _ok(table)
    notes = []
    if len(ok) == 0:
        return ["no model could be scored"]
    scores = score_columns(ok)
    wide = ok.index[(ok.get("n_train", np.inf) <= ok.get("width", -np.inf))] \
        if {"n_train", "width"} <= set(ok.columns) else ok.index[:0]
    flagged = set()
    k = _n_classes(ok)
    if "hscore" in scores and k is not None:
        h = ok["hscore"].to_numpy(float)
        at = np.isclose(h, k - 1, rtol=1e-6, atol=1e-9) & _narrow_rows(ok)
        if at.any():
            flagged.add("hscore")
            names = ", ".join(map(str, ok.index[at]))
            notes.append(f"hscore is exactly K - 1 = {(k - 1)[at][0]:g} for {names}: with "
                         "n_train <= width every direction is 'explained', so it cannot "
                         "rank these models (hscore_shrinkage can)")
    if "logme" in scores and len(wide):
        flagged.add("logme")
        notes.append(f"logme: n_train <= width for {', '.join(map(str, wide))}: the labels "
                     "lie in the span of the features and LogME is at its limit "
                     "(beta -> inf); it then reflects the features' spectrum more than the "
                     "fit")
    for col in scores:
        if col not in flagged and _constant(ok[col].to_numpy(float)):
            notes.append(f"{col} is the same for every model "
                         f"({ok[col].dropna().iloc[0]:.4g}): it cannot rank them")
    check = truth_check(ok)
    if check is not None and not check["passes"]:
        notes.append(f"the ground truth cannot separate the models ({check['reason']}; "
                     "one seed, test sampling only): it cannot check this ranking")
    notes += _agreement_lines(ok)
    return notes


def truth_check(table) -> dict | None:
    """:func:`transfer_nb.stats.discrimination` of the ``accuracy`` column (spread against
    the median binomial standard error over ``n_test``, and the 0.97 ceiling); ``None``
    without a ground truth or ``n_test``."""

    ok = _ok(table)
    if "accuracy" not in ok.columns or ok["accuracy"].notna().sum() < 2 \
            or "n_test" not in ok.columns:
        return None
    acc = ok["accuracy"].dropna()
    n_test = ok.loc[acc.index, "n_test"]
    if not n_test.notna().all():
        return None
    return truth_separation(acc.to_numpy(float), n_test.to_numpy(float))


def next_step(table, evaluation=None) -> str:
    """One sentence: what to do after this ranking, chosen from what it showed.

    In order: too few models to check any ranking (add models); no ground truth (add
    one); a ground truth that cannot separate the models (more held-out images per
    class, or a harder target); scores at their limit because images <= feature width
    (more images per class); estimators that disagree (which one to trust, from
    ``evaluation`` when given, else evaluate them); otherwise confirm on a second target.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`transfer_nb.selection.score_models`.
    evaluation : pandas.DataFrame, optional
        From :func:`transfer_nb.evaluation.evaluate_estimators` on ``table``.
    """
    ok = _ok(table)
    n = len(ok)
    scores = score_columns(ok)
    has_truth = "accuracy" in ok.columns and ok["accuracy"].notna().sum() >= 2
    check = truth_check(ok)
    if n < MIN_MODELS:
        also = ("; and a ground truth that separates them: this one cannot "
                f"({check['reason']}), so use a harder target or more held-out images per "
                "class") if check is not None and not check["passes"] else ""
        return (f"add models: with {n} model{'s' if n != 1 else ''} no ranking can be checked "
                f"(at least {MIN_MODELS}: with 4 the smallest two-sided permutation p is "
                f"0.083; a correlation of 0.5 needs about 16){also}")
    if not has_truth:
        return ("add ground_truth='linear_probe' and evaluate_estimators() to see which "
                "estimator ranks these models like their held-out accuracy")
    if check is not None and not check["passes"]:
        return ("use more held-out images per class or a harder target (more classes, "
                "fewer labels): the ground truth cannot separate these models "
                f"({check['reason']}), so no estimator can be checked against it")
    if {"n_train", "width"} <= set(ok.columns) and \
            (ok["n_train"] <= ok["width"]).any() and ({"hscore", "logme"} & set(scores)):
        return ("use more images per class: with n_train <= width H-score and LogME are at "
                "their limits on these data")
    firsts = top_models(ok)
    distinct = {firsts[c] for c in scores if c in firsts}
    if len(distinct) > 1:
        if evaluation is not None and evaluation.attrs.get("best"):
            best = evaluation.attrs["best"]
            return (f"the estimators disagree: trust {best}, whose paired interval against "
                    "the runner-up excludes 0 on these models, and confirm on a second target")
        if evaluation is not None:
            return ("the estimators disagree and none is separable from the others: add "
                    "models before trusting one")
        return ("the estimators disagree: evaluate_estimators() says which of them ranks "
                "these models like the ground truth")
    return ("confirm on a second target (another folder of the same task) before relying "
            "on this ranking")


def _agreement_lines(ok) -> list[str]:
    scores = score_columns(ok)
    firsts = top_models(ok)
    lines = []
    if len(scores) >= 2:
        taus = estimator_agreement(ok)
        pairs = [f"{a}~{b} {taus.loc[a, b]:+.2f}" for i, a in enumerate(scores)
                 for b in scores[i + 1:] if np.isfinite(taus.loc[a, b])]
        if pairs:
            lines.append("agreement (Kendall tau between the estimators' rankings): "
                         + ", ".join(pairs))
        elif len(ok) < 3:
            lines.append("agreement: 3 or more models are needed to compare the estimators' "
                         "rankings")
    distinct = list(dict.fromkeys(firsts[c] for c in scores if c in firsts))
    truth = f"; the ground truth (accuracy) puts {firsts['accuracy']} first" \
        if "accuracy" in firsts else ""
    if len(distinct) > 1:
        lines.append("the estimators disagree on the best model: " + ", ".join(
            f"{col} -> {firsts[col]}" for col in scores if col in firsts) + truth)
    elif distinct:
        ranked = [c for c in scores if c in firsts]
        every = (f"every estimator that can rank them ({', '.join(ranked)}) puts"
                 if len(ranked) < len(scores) and len(ranked) > 1 else
                 "every estimator puts" if len(ranked) > 1 else f"{ranked[0]} puts")
        lines.append(f"{every} {distinct[0]} first{truth}")
    return lines
