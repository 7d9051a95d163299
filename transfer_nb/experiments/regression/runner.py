"""Running the regression experiment (cached per cell): the zoo, the LP-FT truth and its
recipe, the scores and the shuffled-target control.

* :func:`fine_tune_regression` -- fine-tune a copy of a model with a new linear regression
  head (LP-FT: the head starts from the ridge probe), MSE loss; test MSE.
* :func:`choose_recipe` -- the learning rate of a target, chosen on a validation split of
  its training images before any score is correlated.
* :func:`score_features` -- every estimator of :data:`ESTIMATORS`, each timed alone.
* :func:`run` -- everything, as a :class:`transfer_nb.experiments.base.Results`.

The zoo is built by the shared builder :func:`transfer_nb.experiments.zoo.build_source`
(same fields, same cache).
"""
from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np

from transfer_nb._threads import torch_threads
from transfer_nb.estimators.label_mse import label_mse
from transfer_nb.estimators.linear_mse import linear_mse, minmax_scale, ridge_fit
from transfer_nb.estimators.logme import logme_evidence
from transfer_nb.experiments import base
from transfer_nb.experiments._results import run_meta
from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.regression.presets import (ESTIMATORS, VERSION, RegressionConfig,
                                                        config_hash)
from transfer_nb.experiments.zoo import build_source, recipe_arrays, recipe_sources

__all__ = ["fine_tune_regression", "probe_regression", "choose_recipe", "score_features",
           "load_regression_target", "run"]

_KIND = "experiments_regression"
_PEN, _OUT = "penultimate", "output"
_CV = ("linear_mse", "label_mse")
#: the probe's (and LP-FT head's) ridge penalty, chosen by the library's CV on the
#: training images of each cell
_PROBE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    X = np.stack([np.asarray(ds[i][0]) for i in range(len(ds))]).astype(np.float32)
    return X, np.asarray(ds.targets, dtype=np.float64)


def load_regression_target(target: base.TargetSpec, cfg: RegressionConfig, seed: int = 0):
    """``((Xtr, Ytr), (Xte, Yte))``: images and targets of a regression target through
    :func:`base.load_target`, the declared columns kept, min-max scaled to ``[0, 1]``
    with the training split's range (the paper's setting; test values may leave it)."""
    train, test = base.load_target(target, cfg.image_size, seed)
    (Xtr, Ytr), (Xte, Yte) = _arrays(train), _arrays(test)
    if Ytr.ndim != 2:
        raise ValueError(f"target {target.name!r} has no real-valued targets (a regression "
                         f"data set is needed)")
    cols = dict(cfg.columns).get(target.name)
    if cols is not None:
        Ytr, Yte = Ytr[:, list(cols)], Yte[:, list(cols)]
    lo, hi = Ytr.min(axis=0), Ytr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (Xtr, minmax_scale(Ytr)), (Xte, (Yte - lo) / span)


def probe_regression(Ztr, Ytr, Zte, Yte) -> dict:
    """The frozen-feature ridge probe: lambda by 5-fold CV on the training images
    (:func:`transfer_nb.estimators.linear_mse.linear_mse` with ``alpha="cv"``), fitted by
    :func:`~transfer_nb.estimators.linear_mse.ridge_fit`; its test ``mse``, ``r2``,
    weights ``A``, ``b`` and ``lam``."""
    _, lam = linear_mse(Ztr, Ytr, alpha="cv", cv_grid=_PROBE_GRID, scale_targets=False,
                        return_alpha=True)
    A, b = ridge_fit(Ztr, Ytr, lam)
    pred = np.asarray(Zte, dtype=np.float64) @ A.T + b
    return {"mse": float(((pred - Yte) ** 2).mean()), "r2": _r2(pred, Yte), "A": A, "b": b,
            "lam": lam}


def _r2(pred, Y) -> float:
    var = Y.var(axis=0)
    return float(np.mean(1.0 - ((pred - Y) ** 2).mean(axis=0) / np.where(var > 0, var, 1.0)))


def fine_tune_regression(model, train, test, *, epochs: int = 30, lr: float = 0.003,
                         batch_size: int = 10, head_lr_mult: float = 10.0,
                         weight_decay: float = 1e-4, seed: int = 0, head_init: str = "probe",
                         device=None) -> dict:
    """Fine-tune a copy of ``model`` with a new linear regression head; its test MSE.

    The last ``nn.Linear`` is replaced by one with ``m`` outputs -- random (seeded by
    ``seed``) or, with ``head_init="probe"`` (LP-FT, Kumar et al. 2022), the ridge probe
    on the frozen head inputs -- and every layer is trained with the MSE loss by
    :func:`transfer_nb.training.fit` (Adam, cosine decay, the head at ``lr *
    head_lr_mult``).

    Parameters
    ----------
    model : torch.nn.Module
        Not modified (a copy is trained).
    train, test : tuple (X, Y)
        Images (n, 3, H, W) and real targets (n, m), m >= 2.

    Returns
    -------
    dict
        ``mse`` (test, mean over images and outputs), ``se`` (std of the per-image error /
        sqrt(n_test)), ``r2`` (mean over outputs), ``train_loss`` (per epoch), ``model``.
    """
    import torch
    from transfer_nb import training  # lazy: pulls in torch
    from transfer_nb.models.heads import replace_head  # lazy: pulls in torch

    Xtr, Ytr = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in train)
    Xte, Yte = np.asarray(test[0], dtype=np.float32), np.asarray(test[1], dtype=np.float64)
    if Ytr.ndim != 2 or Ytr.shape[1] < 2 or Yte.ndim != 2 or Yte.shape[1] != Ytr.shape[1]:
        raise ValueError(f"targets must be (n, m) with the same m >= 2 in train and test; got "
                         f"{tuple(Ytr.shape)} and {Yte.shape}")
    if head_init not in ("random", "probe"):
        raise ValueError(f"head_init must be 'random' or 'probe', got {head_init!r}")
    net = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = replace_head(net, int(Ytr.shape[1]), generator=torch.Generator().manual_seed(seed))
    module = net.get_submodule(head)
    if head_init == "probe":
        feats: list = []
        hook = module.register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
        try:
            training.predict(net, Xtr, device=device)
        finally:
            hook.remove()
        Z = torch.cat(feats).double().numpy()
        p = probe_regression(Z, Ytr.double().numpy(), Z, Ytr.double().numpy())
        with torch.no_grad():
            module.weight.copy_(torch.as_tensor(p["A"], dtype=module.weight.dtype))
            module.bias.copy_(torch.as_tensor(p["b"], dtype=module.bias.dtype))
    for q in net.parameters():
        q.requires_grad_(True)
    res = training.fit(net, (Xtr, Ytr), epochs=epochs, lr=lr, batch_size=batch_size,
                       optimizer="adam", weight_decay=weight_decay, schedule="cosine",
                       loss="mse", seed=seed, device=device,
                       param_groups=[{"params": list(module.parameters()),
                                      "lr_mult": head_lr_mult}])
    pred = training.predict(net, torch.as_tensor(Xte), device=device).astype(np.float64)
    per_image = ((pred - Yte) ** 2).mean(axis=1)
    return {"mse": float(per_image.mean()),
            "se": float(per_image.std(ddof=1) / np.sqrt(per_image.size)),
            "r2": _r2(pred, Yte), "train_loss": np.asarray(res["loss_history"]), "model": net}


def _fine_tune(model, train, test, cfg: RegressionConfig, lr: float, seed: int) -> dict:
    return fine_tune_regression(model, train, test, epochs=cfg.epochs, lr=lr,
                                batch_size=cfg.batch_size, seed=seed, head_init=cfg.head_init,
                                device="cpu")


def score_features(Z, logits, Y, alpha: float = 1.0, repeats: int = 1,
                   cv_grid: tuple = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)) -> dict:
    """Every estimator of :data:`ESTIMATORS` and its wall-clock (``time_<name>``, best of
    ``repeats``, each estimator timed alone on the same inputs), and the lambda that
    cross-validation chose for Linear / Label MSE (``lambda_<name>``).

    ``Z``: penultimate features, ``logits``: the source head's outputs on the same images,
    ``Y``: (scaled) real targets.  ``linear_mse`` standardises the features and
    ``label_mse`` the source's log-probabilities (``log_softmax`` of the logits: softmax
    saturates, so the probabilities of a confident model barely vary and lambda = 1
    shrinks them all to the mean; log-probabilities keep the graded confidence); both
    choose lambda from ``cv_grid`` by 5-fold cross-validation on the training images and
    report the paper's training objective at that lambda.  ``linear_mse_fixed``:
    standardised features at ``lambda = alpha`` (the paper's fixed lambda; the form the
    speed claim is timed on); ``linear_mse_raw`` / ``label_mse_probs``: lambda = 1 on raw
    features / softmax probabilities (what an unscaled reading of the paper computes).
    """
    from scipy.special import log_softmax, softmax

    Z = np.asarray(Z, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    chosen = {}

    def cv(fn, name, *args, **kw):
        value, chosen[name] = fn(*args, alpha="cv", cv_grid=cv_grid, scale_features=True,
                                 return_alpha=True, **kw)
        return value

    jobs = {
        "linear_mse": lambda: cv(linear_mse, "linear_mse", Z, Y),
        "label_mse": lambda: cv(label_mse, "label_mse", log_softmax(logits, axis=1), Y,
                                kind="raw"),
        "logme": lambda: float(np.mean(logme_evidence(Z, Y))),
        "linear_mse_fixed": lambda: linear_mse(Z, Y, alpha=alpha, scale_features=True),
        "linear_mse_raw": lambda: linear_mse(Z, Y, alpha=1.0),
        "label_mse_probs": lambda: label_mse(softmax(logits, axis=1), Y, alpha=1.0),
    }
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = timed(fn, repeats)
    out.update({f"lambda_{k}": float(v) for k, v in chosen.items()})
    return out


def choose_recipe(cfg: RegressionConfig, target: base.TargetSpec, models: dict) -> tuple:
    """The learning rate of ``cfg.lr_grid`` with the lowest mean validation MSE.

    The target's *training* images are split (``validation_fraction`` held out, seed 0);
    each grid value fine-tunes the recipe models on the rest with seed 0.  The test
    images are never seen.  Returns ``(lr, rows)``.
    """
    (X, Y), _ = load_regression_target(target, cfg)
    perm = np.random.default_rng(0).permutation(len(X))
    k = max(2, int(round(cfg.validation_fraction * len(X))))
    val, fit = perm[:k], perm[k:]
    rows = []
    with torch_threads(1):
        for spec in recipe_sources(cfg.sources, cfg.degenerate, cfg.recipe_models):
            for lr in cfg.lr_grid:
                mse = _fine_tune(models[spec.name][0], (X[fit], Y[fit]), (X[val], Y[val]),
                                 cfg, lr, 0)["mse"]
                rows.append({"target": target.name, "model": spec.name, "lr": lr,
                             "val_mse": float(mse)})
    mean = {lr: np.mean([r["val_mse"] for r in rows if r["lr"] == lr]) for lr in cfg.lr_grid}
    best = float(min(mean, key=mean.get))
    return best, rows


def _cell(model, target: base.TargetSpec, cfg: RegressionConfig, lr: float) -> dict:
    """Features, logits, probe and per-seed LP-FT results of one model on one target."""
    from transfer_nb.features import extract_features  # lazy: pulls in torch
    (Xtr, Ytr), (Xte, Yte) = load_regression_target(target, cfg)
    with torch_threads(1):
        t0 = time.perf_counter()
        feats = extract_features(model, Xtr, layers=[_PEN, _OUT], progress=False)
        t_feat = time.perf_counter() - t0
        Zte = extract_features(model, Xte, layers=[_PEN], progress=False)[_PEN]
        Z = np.asarray(feats[_PEN], dtype=np.float64)
        probe = probe_regression(Z, Ytr, np.asarray(Zte, dtype=np.float64), Yte)
        runs, times = [], []
        for seed in cfg.seeds:
            t0 = time.perf_counter()
            runs.append(_fine_tune(model, (Xtr, Ytr), (Xte, Yte), cfg, lr, seed))
            times.append(time.perf_counter() - t0)
    return {"Z": Z, "logits": np.asarray(feats[_OUT], dtype=np.float64), "Y": Ytr,
            "mse": np.array([r["mse"] for r in runs]), "se": np.array([r["se"] for r in runs]),
            "r2": np.array([r["r2"] for r in runs]),
            "curves": np.stack([r["train_loss"] for r in runs]),
            "probe_mse": np.float64(probe["mse"]), "probe_r2": np.float64(probe["r2"]),
            "probe_lam": np.float64(probe["lam"]), "time_features": np.float64(t_feat),
            "time_finetune": np.float64(np.mean(times)), "n_test": np.float64(len(Xte))}


# ------------------------------------------------------------------------------ cache keys
_OUTSIDE = "the scores are recomputed on every run, outside the cells"
_COMMON = {"mode": "a preset's name: every field it sets is in the key itself",
           "n_boot": "read by the reports only", "primary": "read by the reports only",
           "targets": "the cell runs on one target, whose spec is in the key",
           "columns": "the target's own columns are in the key",
           **dict.fromkeys(("alpha", "cv_grid", "lambdas", "timing_repeats"), _OUTSIDE),
           "data_seed": "the shuffled control's permutation, drawn outside the cells",
           "jobs": "where the cells run, not what they compute"}

#: every cell's key holds every config field (:func:`base.cell_key`) but these, each with
#: the reason it cannot change that cell
CELL_EXCLUDE = {
    "recipe": _COMMON,
    "cell": {**_COMMON, "sources": "the cell runs on one source, whose spec is in the key",
             **dict.fromkeys(("degenerate", "lr_grid", "recipe_models",
                              "validation_fraction"),
                             "acts on the cell only through the chosen lr, in the key")},
}


def cell_key(cfg: RegressionConfig, part: str, **inputs) -> dict:
    """The cache key of one cell: :func:`transfer_nb.experiments.base.cell_key` with the
    fields :data:`CELL_EXCLUDE` leaves out of ``part``."""
    return base.cell_key(cfg, part, CELL_EXCLUDE[part], **inputs)


def _lambda_rows(target: str, model: str, Z, logits, Y, lambdas) -> list:
    from scipy.special import log_softmax

    lp = log_softmax(logits, axis=1)
    return [{"target": target, "model": model, "lambda": float(lam),
             "linear_mse": linear_mse(Z, Y, alpha=lam, scale_features=True),
             "label_mse": label_mse(lp, Y, alpha=lam, kind="raw", scale_features=True)}
            for lam in lambdas]


def run(cfg: RegressionConfig, progress: bool = True, use_cache: bool = True) -> base.Results:
    """Run the experiment: every expensive cell cached on disk under a key over its inputs;
    the scores (and their timings) recomputed on every run.

    Returns
    -------
    Results
        ``table``: one row per (target, model, seed): the scores, the same scores on
        shuffled training targets (``<score>_shuffled``), baselines, the truth
        (``neg_mse``, ``mse``, ``se``, ``r2``), the ridge probe and timings; ``tables``:
        ``recipe`` (lr grid per target), ``curves`` (training loss per epoch),
        ``lambdas`` (Linear / Label MSE over ``cfg.lambdas``).
    """
    import pandas as pd
    from tqdm.auto import tqdm
    if not isinstance(cfg, RegressionConfig):
        raise ValueError(f"cfg must come from regression.config(), got {type(cfg).__name__}")
    if len(cfg.sources) < 3 or not cfg.targets:
        raise ValueError(f"need >= 3 sources and >= 1 target, got {len(cfg.sources)} and "
                         f"{len(cfg.targets)}")
    t_start = time.perf_counter()
    jobs = max(1, int(cfg.jobs))
    bar = tqdm(total=len(cfg.sources) * (1 + 2 * len(cfg.targets)) + len(cfg.targets),
               desc="regression experiment", disable=not progress)
    # train_source caches the weights
    built = base.parallel_map(build_source, [(spec, cfg) for spec in cfg.sources], jobs, bar)
    models = {spec.name: m for spec, m in zip(cfg.sources, built)}
    rows, recipe, curves, lam_rows = [], [], [], []
    rng = np.random.default_rng(cfg.data_seed)
    tkeys = [{"target": dataclasses.asdict(target),
              "columns": dict(cfg.columns).get(target.name)} for target in cfg.targets]
    chosen = [s.name for s in recipe_sources(cfg.sources, cfg.degenerate,
                                            cfg.recipe_models)]
    recs = base.cached_cells(_KIND, VERSION, [
        (cell_key(cfg, "recipe", **tkey), _recipe_job,
         (cfg, target, {k: models[k] for k in chosen}))
        for target, tkey in zip(cfg.targets, tkeys)], use_cache, jobs, bar)
    lrs = [float(rec["chosen_lr"]) for rec in recs]
    cells = base.cached_cells(_KIND, VERSION, [
        (cell_key(cfg, "cell", **tkey, source=dataclasses.asdict(spec), lr=lr), _cell,
         (models[spec.name][0], target, cfg, lr))
        for target, tkey, lr in zip(cfg.targets, tkeys, lrs) for spec in cfg.sources],
        use_cache, jobs, bar)
    for ti, (target, rec, lr) in enumerate(zip(cfg.targets, recs, lrs)):
        recipe += [{"target": target.name, "model": str(m), "lr": float(v), "val_mse": float(a),
                    "chosen": float(v) == lr}
                   for m, v, a in zip(rec["model"], rec["lr"], rec["val_mse"])]
        perm = None
        for si, spec in enumerate(cfg.sources):
            src_acc = models[spec.name][1]
            cell = cells[ti * len(cfg.sources) + si]
            Y = np.asarray(cell["Y"])
            if perm is None:   # one permutation per target, shared by every model
                perm = rng.permutation(Y.shape[0])
            real = score_features(cell["Z"], cell["logits"], Y, cfg.alpha, cfg.timing_repeats,
                                  cfg.cv_grid)
            shuf = score_features(cell["Z"], cell["logits"], Y[perm], cfg.alpha, 1, cfg.cv_grid)
            lam_rows += _lambda_rows(target.name, spec.name, cell["Z"], cell["logits"], Y,
                                     cfg.lambdas)
            row = {"target": target.name, "model": spec.name, "source_dataset": spec.dataset,
                   "source_n": float(spec.n), "source_epochs": float(spec.epochs),
                   "label_noise": spec.label_noise, "source_accuracy": src_acc, "lr": lr,
                   **real, **{f"{k}_shuffled": shuf[k] for k in ESTIMATORS},
                   **{f"lambda_{k}_shuffled": shuf[f"lambda_{k}"] for k in _CV},
                   "probe_mse": float(cell["probe_mse"]), "probe_r2": float(cell["probe_r2"]),
                   "probe_neg_mse": -float(cell["probe_mse"]),
                   "probe_lambda": float(cell["probe_lam"]), "n_test": float(cell["n_test"]),
                   "feature_dim": float(np.asarray(cell["Z"]).shape[1]),
                   "time_features": float(cell["time_features"]),
                   "time_finetune": float(cell["time_finetune"])}
            for i, seed in enumerate(cfg.seeds):
                mse = float(cell["mse"][i])
                rows.append({**row, "seed": seed, "mse": mse, "neg_mse": -mse,
                             "se": float(cell["se"][i]), "r2": float(cell["r2"][i])})
                curves += [{"target": target.name, "model": spec.name, "seed": seed,
                            "epoch": e + 1, "train_loss": float(v)}
                           for e, v in enumerate(cell["curves"][i])]
            bar.update(1)
    bar.close()
    meta = run_meta("regression", cfg, config_hash(cfg), t_start,
                    jobs="dask" if base.on_dask() else base.parallel_width(jobs))
    return base.Results("regression", pd.DataFrame(rows),
                        {"recipe": pd.DataFrame(recipe), "curves": pd.DataFrame(curves),
                         "lambdas": pd.DataFrame(lam_rows)}, meta, cfg)


def _recipe_job(cfg: RegressionConfig, target: base.TargetSpec, models: dict) -> dict:
    return recipe_arrays(*choose_recipe(cfg, target, models), metric="val_mse")
