"""Linear MSE and Label MSE (Nguyen et al., "Simple Transferability Estimation for
Regression Tasks", UAI 2023): rank a zoo of models on regression targets.

The paper's core experiment on data and models that work offline:

* **Zoo.** Small CNNs of one architecture and one width (so that feature width cannot
  explain a ranking), trained by :func:`transfer_nb.models.train_source` on different
  embedded classification tasks for different numbers of epochs, plus a randomly
  initialised one (0 epochs).
* **Targets.** The embedded regression sets ``rotated_digits`` (cos, sin of the angle
  and the scale of a rotated digit) and ``shape_keypoints`` (ten keypoint coordinates
  of a heart), in a data-scarce regime (tens of training images).  Targets are min-max
  scaled to ``[0, 1]`` per column with the training split's range (the paper's setting).
* **Ground truth.** Every model is fine-tuned with a new linear regression head (all
  layers trained, MSE loss, :func:`transfer_nb.training.fit` with ``loss="mse"``) for
  several seeds; the ground truth is the negative test MSE (mean over seeds).
* **Scores** on the training split: Linear MSE on the penultimate features, Label MSE
  on the source head's softmax outputs (dummy labels), LogME's regression form (the
  mean over target columns of :func:`~transfer_nb.estimators.logme.logme_evidence`,
  the evidence of a Bayesian linear regression; LogME already handles real targets
  there, so nothing new is implemented) and trivial baselines (source epochs, source
  accuracy).  Each is timed.
* **Shuffled control.** The same scores with the training targets permuted (one
  permutation per target, shared by all models): they must lose their correlation.

Expensive work (source training, features, fine-tuning) is cached on disk
(:mod:`transfer_nb.cache`); the scores and their wall-clock times are recomputed on
every :func:`run`.  Correlations go through :func:`transfer_nb.stats.rank_correlations`.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SourceSpec", "RegressionConfig", "Cell", "RegressionResults", "ESTIMATORS",
           "BASELINES", "PAPER", "config", "describe", "scale_targets", "fine_tune_regression",
           "score_features", "score_cells", "run", "ground_truth_check", "correlations",
           "shuffled_correlations", "lambda_scores", "lambda_correlations", "timing_table",
           "paper_vs_measured", "report", "check_report", "plot_scores", "plot_correlations",
           "plot_lambda"]

#: the paper's estimators and the earlier one (LogME) it compares with; higher = better
ESTIMATORS = ("linear_mse", "label_mse", "logme")
#: trivial baselines printed beside them
BASELINES = ("source_epochs", "source_accuracy")
#: what the paper reports
PAPER = {"improvement_low": 0.12, "improvement_high": 0.36, "speedup": 0.27}

_CACHE_KIND = "experiments_regression"
_VERSION = "regression-exp-v1"
_PENULTIMATE, _OUTPUT = "penultimate", "output"


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SourceSpec:
    """One zoo member: a small CNN trained on an embedded classification set.

    ``epochs=0`` is the randomly initialised network (its BatchNorm statistics are
    still computed on the source images).
    """
    name: str
    dataset: str
    epochs: int
    n: int = 1000


@dataclass(frozen=True)
class RegressionConfig:
    mode: str
    sources: tuple
    targets: tuple = ("rotated_digits", "shape_keypoints")
    arch: str = "small_cnn"
    width: int = 16
    image_size: int = 32
    n_train: int = 40
    n_test: int = 300
    epochs: int = 30
    lr: float = 0.003
    batch_size: int = 10
    head_lr_mult: float = 10.0
    weight_decay: float = 1e-4
    seeds: tuple = (0, 1, 2)
    alpha: float = 1.0
    lambdas: tuple = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    timing_repeats: int = 5
    n_boot: int = 1000
    data_seed: int = 0


def _sources(n: int, few: int, many: int, textures_many: bool = True) -> tuple:
    zoo = (SourceSpec("random-init", "digits", 0, n),
           SourceSpec(f"digits-{few}ep", "digits", few, n),
           SourceSpec(f"digits-{many}ep", "digits", many, n),
           SourceSpec(f"glyphs-{few}ep", "glyphs", few, n),
           SourceSpec(f"glyphs-{many}ep", "glyphs", many, n),
           SourceSpec(f"shapes-{few}ep", "shapes", few, n),
           SourceSpec(f"shapes-{many}ep", "shapes", many, n),
           SourceSpec(f"textures-{few}ep", "textures", few, n))
    return zoo + ((SourceSpec(f"textures-{many}ep", "textures", many, n),)
                  if textures_many else ())


def config(fast: bool | None = None) -> RegressionConfig:
    """The fast (CI) or full preset; ``None`` reads :func:`transfer_nb.config.fast_mode`.

    Both run the same protocol; fast mode trains narrower sources for fewer epochs and
    fine-tunes on fewer test images, so that the notebook runs in a few minutes on 2
    CPU cores from a cold cache.
    """
    if fast is None:
        from transfer_nb.config import fast_mode
        fast = fast_mode()
    if fast:
        # 2 CPU cores, <= 4 min from a cold cache: 16 px images, 8 sources of 400
        # images, 15 epochs of 3 batches per fine-tuning (45 Adam steps) x 3 seeds
        return RegressionConfig("fast", _sources(n=400, few=1, many=3, textures_many=False),
                                width=16, image_size=16, n_train=30, n_test=200, epochs=15,
                                seeds=(0, 1, 2), timing_repeats=3)
    return RegressionConfig("full", _sources(n=1200, few=2, many=10), width=32, image_size=32,
                            n_train=60, n_test=400, epochs=40, seeds=(0, 1, 2, 3, 4),
                            timing_repeats=10)


def describe(cfg: RegressionConfig) -> str:
    """Human-readable sizes of a configuration (deterministic: safe to check in CI)."""
    d = cfg.width * 4   # small_cnn, depth 3: width * 2**2 channels
    return "\n".join([
        f"mode: {cfg.mode}",
        f"zoo: {len(cfg.sources)} x {cfg.arch} (width {cfg.width}, {d}-d penultimate "
        f"features), {cfg.sources[0].n} source images at {cfg.image_size}px",
        "  " + ", ".join(s.name for s in cfg.sources),
        f"targets: {', '.join(cfg.targets)}; {cfg.n_train} train / {cfg.n_test} test images",
        f"fine-tuning: new linear head, all layers, MSE on [0, 1]-scaled targets, "
        f"{cfg.epochs} epochs, adam lr={cfg.lr} (head x{cfg.head_lr_mult:g}), "
        f"batch {cfg.batch_size}, seeds {list(cfg.seeds)}",
        f"estimators: {', '.join(ESTIMATORS)} (lambda = {cfg.alpha:g}); "
        f"baselines: {', '.join(BASELINES)}"])


# ------------------------------------------------------------------------ building
def scale_targets(Y, lo, hi) -> np.ndarray:
    """Min-max scale the columns of ``Y`` with the range ``[lo, hi]`` (a training
    split's): ``(Y - lo) / (hi - lo)``, a constant column (``hi == lo``) -> ``Y - lo``."""
    Y = np.asarray(Y, dtype=np.float64)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (Y - lo) / span


def _load(name: str, split: str, n: int | None, cfg: RegressionConfig):
    from transfer_nb.data import load_dataset
    return load_dataset(name, split=split, n=n, image_size=cfg.image_size, seed=cfg.data_seed,
                        normalize="none")


def _build_source(spec: SourceSpec, cfg: RegressionConfig, progress: bool):
    from transfer_nb.models import train_source
    data = _load(spec.dataset, "train", spec.n, cfg)
    model = train_source(cfg.arch, data, epochs=spec.epochs, seed=cfg.data_seed,
                         width=cfg.width, progress=progress)
    model.transfer_nb_name = spec.name
    return model


def fine_tune_regression(model, train, test, *, epochs: int = 30, lr: float = 0.003,
                         batch_size: int = 10, head_lr_mult: float = 10.0,
                         weight_decay: float = 1e-4, seed: int = 0, device=None) -> dict:
    """Fine-tune a copy of ``model`` with a new linear regression head; test MSE.

    The last ``nn.Linear`` is replaced by one with ``m`` outputs (seeded by ``seed``),
    and every layer is trained with the MSE loss by :func:`transfer_nb.training.fit`
    (Adam, cosine decay, the head at ``lr * head_lr_mult``).

    Parameters
    ----------
    model : torch.nn.Module
        Not modified (a copy is trained).
    train, test : tuple (X, Y)
        Images (n, 3, H, W) and real targets (n, m), m >= 2, as arrays or tensors.
    epochs, lr, batch_size, head_lr_mult, weight_decay, seed, device
        Training settings (see :func:`transfer_nb.training.fit`).

    Returns
    -------
    dict
        ``mse`` (test MSE, mean over images and outputs), ``se`` (its standard error:
        the standard deviation of the per-image mean squared error / sqrt(n_test)),
        ``r2`` (1 - mse / variance of the test targets, averaged over outputs),
        ``train_loss`` (per-epoch mean) and ``model`` (the fine-tuned copy).
    """
    import torch
    from transfer_nb import training
    from transfer_nb.models.heads import replace_head

    Xtr, Ytr = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in train)
    Xte, Yte = test
    Yte = np.asarray(Yte, dtype=np.float64)
    if Ytr.ndim != 2 or Ytr.shape[1] < 2 or Yte.ndim != 2 or Yte.shape[1] != Ytr.shape[1]:
        raise ValueError(f"targets must be (n, m) with the same m >= 2 in train and test; got "
                         f"{tuple(Ytr.shape)} and {Yte.shape}")
    net = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = replace_head(net, int(Ytr.shape[1]), generator=torch.Generator().manual_seed(seed))
    for p in net.parameters():
        p.requires_grad_(True)
    res = training.fit(net, (Xtr, Ytr), epochs=epochs, lr=lr, batch_size=batch_size,
                       optimizer="adam", weight_decay=weight_decay, schedule="cosine",
                       loss="mse", seed=seed, device=device,
                       param_groups=[{"params": list(net.get_submodule(head).parameters()),
                                      "lr_mult": head_lr_mult}])
    pred = training.predict(net, torch.as_tensor(np.asarray(Xte), dtype=torch.float32),
                            device=device).astype(np.float64)
    per_image = ((pred - Yte) ** 2).mean(axis=1)
    var = Yte.var(axis=0)
    r2 = float(np.mean(1.0 - ((pred - Yte) ** 2).mean(axis=0) / np.where(var > 0, var, 1.0)))
    return {"mse": float(per_image.mean()),
            "se": float(per_image.std(ddof=1) / np.sqrt(per_image.size)),
            "r2": r2, "train_loss": np.asarray(res["loss_history"]), "model": net}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _timed(fn, repeats: int):
    best, value = np.inf, None
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return float(value), float(best)


def score_features(Z, probs, Y, alpha: float = 1.0, repeats: int = 1) -> dict:
    """Linear MSE, Label MSE and LogME (regression form) of one model, with timings.

    Parameters
    ----------
    Z : array (n, d)
        Penultimate features of the target training images.
    probs : array (n, k)
        The source head's softmax outputs on the same images (Label MSE's dummy labels).
    Y : array (n, m)
        Real targets.
    alpha : float
        Linear / Label MSE's lambda.
    repeats : int
        Timing repeats (the best is kept).

    Returns
    -------
    dict
        ``{estimator: score, "time_" + estimator: seconds}`` for :data:`ESTIMATORS`.
    """
    from transfer_nb.estimators import label_mse, linear_mse
    from transfer_nb.estimators.logme import logme_evidence

    jobs = {"linear_mse": lambda: linear_mse(Z, Y, alpha=alpha),
            "label_mse": lambda: label_mse(probs, Y, alpha=alpha),
            "logme": lambda: float(np.mean(logme_evidence(Z, Y)))}
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = _timed(fn, repeats)
    return out


@dataclass
class Cell:
    """The cached work of one (target, model) pair."""
    target: str
    model: str
    Z: np.ndarray           # penultimate features of the training images
    probs: np.ndarray       # source softmax outputs on them
    Y: np.ndarray           # scaled training targets
    mse: np.ndarray         # test MSE per fine-tuning seed
    se: np.ndarray          # its standard error per seed
    r2: np.ndarray          # test R^2 per seed
    source_epochs: float
    source_accuracy: float
    time_features: float
    time_finetune: float


@dataclass
class RegressionResults:
    """What :func:`run` returns: the cells, the score table and the configuration.

    ``table``: one row per (target, model) with the scores, the baselines, the ground
    truth (``neg_mse`` mean over seeds, ``mse_std`` spread over seeds, ``se``, ``r2``)
    and wall-clock times; ``shuffled``: the same scores on permuted targets;
    ``permutations``: target -> the permutation of the training rows used.
    """
    cfg: RegressionConfig
    cells: dict
    table: object
    shuffled: object
    permutations: dict = field(default_factory=dict)


def _cell_key(spec: SourceSpec, target: str, cfg: RegressionConfig) -> str:
    from transfer_nb.cache import hash_inputs
    fields = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k not in ("mode", "sources", "targets", "alpha", "lambdas", "timing_repeats",
                           "n_boot")}
    return hash_inputs(version=_VERSION, source=dataclasses.asdict(spec), target=target, **fields)


def _compute_cell(model, spec: SourceSpec, target: str, cfg: RegressionConfig) -> dict:
    from transfer_nb.features import extract_features

    train = _load(target, "train", cfg.n_train, cfg)
    test = _load(target, "test", cfg.n_test, cfg)
    Ytr_raw = np.asarray(train.targets, dtype=np.float64)
    lo, hi = Ytr_raw.min(axis=0), Ytr_raw.max(axis=0)
    Ytr = scale_targets(Ytr_raw, lo, hi)
    Yte = scale_targets(np.asarray(test.targets, dtype=np.float64), lo, hi)
    Xtr = np.stack([np.asarray(train[i][0]) for i in range(len(train))])
    Xte = np.stack([np.asarray(test[i][0]) for i in range(len(test))])
    t0 = time.perf_counter()
    feats = extract_features(model, train, layers=[_PENULTIMATE, _OUTPUT], progress=False)
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs = [fine_tune_regression(model, (Xtr, Ytr), (Xte, Yte), epochs=cfg.epochs, lr=cfg.lr,
                                 batch_size=cfg.batch_size, head_lr_mult=cfg.head_lr_mult,
                                 weight_decay=cfg.weight_decay, seed=s, device="cpu")
            for s in cfg.seeds]
    t_ft = (time.perf_counter() - t0) / len(cfg.seeds)
    return {"Z": np.asarray(feats[_PENULTIMATE], dtype=np.float64),
            "probs": _softmax(np.asarray(feats[_OUTPUT], dtype=np.float64)),
            "Y": Ytr, "mse": np.array([r["mse"] for r in runs]),
            "se": np.array([r["se"] for r in runs]), "r2": np.array([r["r2"] for r in runs]),
            "source_epochs": np.float64(spec.epochs),
            "source_accuracy": np.float64(model.transfer_nb_source_accuracy),
            "time_features": np.float64(t_feat), "time_finetune": np.float64(t_ft)}


def score_cells(cells: dict, cfg: RegressionConfig, permutations: dict | None = None):
    """The score table of ``cells`` (``{(target, model): Cell}``), one row per cell.

    With ``permutations`` (target -> permutation of the training rows) the estimators
    see ``Y[perm]`` instead of ``Y``: the shuffled control.  The ground-truth and
    baseline columns are the same either way.
    """
    import pandas as pd
    rows = []
    for (target, model), c in cells.items():
        Y = c.Y if permutations is None else c.Y[permutations[target]]
        row = {"target": target, "model": model}
        row.update(score_features(c.Z, c.probs, Y, alpha=cfg.alpha, repeats=cfg.timing_repeats))
        row.update(source_epochs=c.source_epochs, source_accuracy=c.source_accuracy,
                   neg_mse=-float(np.mean(c.mse)), mse_std=float(np.std(c.mse, ddof=1))
                   if c.mse.size > 1 else 0.0, se=float(np.mean(c.se)),
                   r2=float(np.mean(c.r2)), feature_dim=int(c.Z.shape[1]),
                   time_features=c.time_features, time_finetune=c.time_finetune)
        rows.append(row)
    return pd.DataFrame(rows)


def run(cfg: RegressionConfig | None = None, progress: bool = True,
        use_cache: bool = True) -> RegressionResults:
    """Run the experiment: train / load the zoo, extract, fine-tune, score, control.

    Parameters
    ----------
    cfg : RegressionConfig, optional
        Default :func:`config` (fast or full by the environment).
    progress : bool
        One ``tqdm.auto`` bar over the (target, model) pairs.
    use_cache : bool
        Read / write each pair's features and fine-tuning results on disk.

    Returns
    -------
    RegressionResults
    """
    from transfer_nb.cache import cache_dir, load_arrays, save_arrays

    cfg = config() if cfg is None else cfg
    if not isinstance(cfg, RegressionConfig):
        raise ValueError(f"cfg must be a RegressionConfig, got {type(cfg).__name__}")
    if len(cfg.sources) < 3 or not cfg.targets:
        raise ValueError(f"need >= 3 sources and >= 1 target, got {len(cfg.sources)} and "
                         f"{len(cfg.targets)}")
    loaded: dict = {}
    pairs = [(t, s) for t in cfg.targets for s in cfg.sources]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="regression zoo")
    cells = {}
    for target, spec in pairs:
        if bar is not None:
            bar.set_postfix_str(f"{target} / {spec.name}")
        path = cache_dir(_CACHE_KIND) / f"cell-{_cell_key(spec, target, cfg)}.npz"
        arr = load_arrays(path) if use_cache else None
        if arr is None:
            if spec.name not in loaded:
                loaded[spec.name] = _build_source(spec, cfg, progress=False)
            arr = _compute_cell(loaded[spec.name], spec, target, cfg)
            if use_cache:
                save_arrays(path, arr)
        cells[(target, spec.name)] = Cell(
            target, spec.name, arr["Z"], arr["probs"], arr["Y"], np.asarray(arr["mse"]),
            np.asarray(arr["se"]), np.asarray(arr["r2"]), float(arr["source_epochs"]),
            float(arr["source_accuracy"]), float(arr["time_features"]),
            float(arr["time_finetune"]))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rng = np.random.default_rng(cfg.data_seed)
    perms = {t: rng.permutation(cells[(t, cfg.sources[0].name)].Y.shape[0])
             for t in cfg.targets}
    return RegressionResults(cfg, cells, score_cells(cells, cfg),
                             score_cells(cells, cfg, perms), perms)


# ---------------------------------------------------------------------- analysis
def ground_truth_check(results: RegressionResults):
    """Does the ground truth discriminate?  One row per target.

    ``spread``: max - min of the models' mean test MSE; ``se``: the median standard
    error of a single model's test MSE; ``max_r2``: the best model's test R^2.  A
    target discriminates when ``spread >= 3 se`` and no model is at the ceiling
    (``max_r2 < 0.97``, the regression analogue of accuracy >= 0.97).
    """
    import pandas as pd
    rows = []
    for target, part in results.table.groupby("target", sort=False):
        spread = float(part["neg_mse"].max() - part["neg_mse"].min())
        se = float(part["se"].median())
        max_r2 = float(part["r2"].max())
        ok = spread >= 3 * se and max_r2 < 0.97
        why = "" if ok else ("spread < 3 SE" if spread < 3 * se else "a model at R2 >= 0.97")
        rows.append({"target": target, "models": int(len(part)), "spread": spread, "se": se,
                     "spread_in_se": spread / se if se > 0 else float("inf"),
                     "best_mse": float(-part["neg_mse"].max()),
                     "worst_mse": float(-part["neg_mse"].min()), "max_r2": max_r2,
                     "discriminates": bool(ok), "reason": why})
    return pd.DataFrame(rows).set_index("target")


def _correlate(table, columns, n_boot: int, seed: int = 0):
    import pandas as pd
    from transfer_nb import stats
    out = []
    for target, part in table.groupby("target", sort=False):
        corr = stats.rank_correlations({c: part[c].to_numpy() for c in columns},
                                       part["neg_mse"].to_numpy(), n_boot=n_boot, seed=seed)
        corr.insert(0, "target", target)
        out.append(corr.reset_index())
    return pd.concat(out, ignore_index=True)


def correlations(results: RegressionResults, n_boot: int | None = None):
    """Pearson / Kendall / weighted tau (bootstrap intervals, permutation p) of every
    estimator and baseline with the negative test MSE, per target (long format)."""
    n_boot = results.cfg.n_boot if n_boot is None else n_boot
    return _correlate(results.table, (*ESTIMATORS, *BASELINES), n_boot)


def shuffled_correlations(results: RegressionResults, n_boot: int | None = None):
    """:func:`correlations` of the estimators computed on permuted training targets."""
    n_boot = results.cfg.n_boot if n_boot is None else n_boot
    return _correlate(results.shuffled, ESTIMATORS, n_boot)


def lambda_scores(results: RegressionResults, target: str, lam: float):
    """Linear MSE and Label MSE of every model on ``target`` at ``lambda = lam``.

    Returns a DataFrame indexed by model with columns ``linear_mse, label_mse, neg_mse``.
    """
    import pandas as pd
    from transfer_nb.estimators import label_mse, linear_mse
    if target not in results.cfg.targets:
        raise ValueError(f"target must be one of {list(results.cfg.targets)}, got {target!r}")
    rows = {}
    for (t, model), c in results.cells.items():
        if t == target:
            rows[model] = {"linear_mse": linear_mse(c.Z, c.Y, alpha=lam),
                           "label_mse": label_mse(c.probs, c.Y, alpha=lam),
                           "neg_mse": -float(np.mean(c.mse))}
    return pd.DataFrame.from_dict(rows, orient="index")


def lambda_correlations(results: RegressionResults, target: str, lambdas=None,
                        n_boot: int = 200):
    """Pearson r (with interval) of Linear / Label MSE vs the ground truth for each
    lambda in ``lambdas`` (default: the configuration's grid), one row per lambda."""
    import pandas as pd
    from transfer_nb import stats
    rows = []
    for lam in (results.cfg.lambdas if lambdas is None else lambdas):
        s = lambda_scores(results, target, lam)
        corr = stats.rank_correlations({"linear_mse": s["linear_mse"].to_numpy(),
                                        "label_mse": s["label_mse"].to_numpy()},
                                       s["neg_mse"].to_numpy(), n_boot=n_boot)
        row = {"lambda": float(lam)}
        for name in ("linear_mse", "label_mse"):
            for col in ("pearson", "pearson_low", "pearson_high"):
                row[f"{name}_{col}"] = float(corr.loc[name, col])
        rows.append(row)
    return pd.DataFrame(rows)


def timing_table(results: RegressionResults):
    """Median wall-clock seconds per estimator over all cells, and relative to LogME."""
    import pandas as pd
    t = results.table
    med = {e: float(t["time_" + e].median()) for e in ESTIMATORS}
    return pd.DataFrame({"median seconds": med,
                         "relative to logme": {e: med[e] / med["logme"] for e in ESTIMATORS}})


def _verdict_better(lin_low, lin_high, lin, base, base_low, base_high) -> str:
    """Rule: 'reproduced' when the baseline's point estimate lies below the estimator's
    interval, 'not reproduced' when the estimator's point estimate lies below the
    baseline's interval (or above it, reversed), else 'inconclusive'."""
    if not all(np.isfinite([lin_low, lin_high, base, base_low, base_high])):
        return "inconclusive"
    if base < lin_low:
        return "reproduced"
    if lin < base_low:
        return "not reproduced"
    return "inconclusive"


def _verdict_control(r, low, high, real) -> str:
    """Rule for the shuffled control: 'reproduced' (correlation lost) when the shuffled
    interval contains 0 and the shuffled r is at most half the real r (or <= 0);
    'not reproduced' when the shuffled interval lies above 0; else 'inconclusive'."""
    if not all(np.isfinite([r, low, high])):
        return "inconclusive"
    if low > 0:
        return "not reproduced"
    if low <= 0 <= high and (r <= 0 or (np.isfinite(real) and real > 0 and r <= real / 2)):
        return "reproduced"
    return "inconclusive"


def paper_vs_measured(results: RegressionResults, corr=None, shuffled=None):
    """The closing table: one row per (claim, target), verdicts by stated rules.

    * "beats LogME by 12-36 %" (Pearson): measured relative improvement
      ``(r_est - r_logme) / |r_logme|``; verdict by :func:`_verdict_better`'s rule
      (LogME's point estimate below the estimator's 95 % interval -> reproduced; the
      estimator's below LogME's interval -> not reproduced; else inconclusive).
    * "correlates with the ground truth": ``stats.interval_verdict`` on the Pearson
      interval with threshold 0.
    * "at least 27 % faster than LogME": median time saving over all cells >= 27 %.
    * shuffled control (not a paper claim): by :func:`_verdict_control` ("reproduced"
      = the correlation is lost: the interval on permuted targets contains 0 and the
      point estimate is at most half the real one).
    Targets whose ground truth does not discriminate get "excluded".
    """
    import pandas as pd
    from transfer_nb import stats
    corr = correlations(results) if corr is None else corr
    shuffled = shuffled_correlations(results) if shuffled is None else shuffled
    check = ground_truth_check(results)
    c = corr.set_index(["target", "score"])
    s = shuffled.set_index(["target", "score"])
    rows = []
    for target in results.cfg.targets:
        ok = bool(check.loc[target, "discriminates"])
        base = c.loc[(target, "logme")]
        for est in ("linear_mse", "label_mse"):
            r = c.loc[(target, est)]
            imp = (r["pearson"] - base["pearson"]) / abs(base["pearson"]) \
                if base["pearson"] != 0 else float("nan")
            v = _verdict_better(r["pearson_low"], r["pearson_high"], r["pearson"],
                                base["pearson"], base["pearson_low"], base["pearson_high"])
            rows.append({"claim": f"{est} beats LogME (Pearson)", "target": target,
                         "paper": "+12% to +36%",
                         "measured": f"{imp:+.0%} (r {r['pearson']:.2f} vs {base['pearson']:.2f})",
                         "verdict": v if ok else "excluded"})
            v = stats.interval_verdict(r["pearson_low"], r["pearson_high"], 0.0)
            rows.append({"claim": f"{est} correlates with -test MSE", "target": target,
                         "paper": "positive",
                         "measured": f"r {r['pearson']:.2f} [{r['pearson_low']:.2f}, "
                                     f"{r['pearson_high']:.2f}]",
                         "verdict": v if ok else "excluded"})
        for est in ESTIMATORS:
            r = s.loc[(target, est)]
            real = c.loc[(target, est), "pearson"]
            v = _verdict_control(r["pearson"], r["pearson_low"], r["pearson_high"], real)
            rows.append({"claim": f"shuffled control: {est} loses its correlation",
                         "target": target, "paper": "(control)",
                         "measured": f"r {r['pearson']:.2f} [{r['pearson_low']:.2f}, "
                                     f"{r['pearson_high']:.2f}]",
                         "verdict": v if ok else "excluded"})
    tt = timing_table(results)
    for est in ("linear_mse", "label_mse"):
        saving = 1.0 - tt.loc[est, "relative to logme"]
        rows.append({"claim": f"{est} at least 27% faster than LogME", "target": "all",
                     "paper": ">= 27% faster", "measured": f"{saving:.0%} faster",
                     "verdict": "reproduced" if saving >= PAPER["speedup"] else "not reproduced"})
    return pd.DataFrame(rows)


def report(results: RegressionResults, corr=None, shuffled=None) -> str:
    """A Markdown paragraph with the run's numbers (for ``display(Markdown(...))``)."""
    corr = correlations(results) if corr is None else corr
    shuffled = shuffled_correlations(results) if shuffled is None else shuffled
    check = ground_truth_check(results)
    table = paper_vs_measured(results, corr, shuffled)
    lines = []
    for target in results.cfg.targets:
        row = check.loc[target]
        if not row["discriminates"]:
            lines.append(f"- **{target}**: the ground truth does not discriminate "
                         f"({row['reason']}); excluded from the verdicts.")
            continue
        c = corr[corr["target"] == target].set_index("score")
        best = c.loc[list(ESTIMATORS + BASELINES), "pearson"].idxmax()
        parts = ", ".join(f"{e} {c.loc[e, 'pearson']:.2f} [{c.loc[e, 'pearson_low']:.2f}, "
                          f"{c.loc[e, 'pearson_high']:.2f}]" for e in (*ESTIMATORS, *BASELINES))
        lines.append(f"- **{target}** (test MSE from {row['best_mse']:.4f} to "
                     f"{row['worst_mse']:.4f}, a spread of {row['spread_in_se']:.1f} standard "
                     f"errors): Pearson r with 95% intervals: {parts}. Highest: {best}.")
    tt = timing_table(results)
    lines.append(f"- Median time per score: Linear MSE {tt.loc['linear_mse', 'median seconds'] * 1e3:.2f} ms, "
                 f"Label MSE {tt.loc['label_mse', 'median seconds'] * 1e3:.2f} ms, LogME "
                 f"{tt.loc['logme', 'median seconds'] * 1e3:.2f} ms (measured on a shared machine).")
    counts = table["verdict"].value_counts()
    lines.append("- Verdicts: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in
                 ("reproduced", "not reproduced", "inconclusive", "excluded")) + ".")
    return "\n".join(lines)


def check_report(results: RegressionResults) -> str:
    """The discrimination check of every target as Markdown bullet points."""
    check = ground_truth_check(results)
    return "\n".join(
        f"- **{t}**: test MSE spread {r['spread']:.4f} = {r['spread_in_se']:.1f} standard "
        f"errors (needs >= 3), best R2 {r['max_r2']:.3f} (needs < 0.97): "
        + ("discriminates." if r["discriminates"] else f"does not discriminate ({r['reason']}).")
        for t, r in check.iterrows())


# ------------------------------------------------------------------------- plots
def plot_scores(results: RegressionResults, columns=ESTIMATORS):
    """Each estimator vs the ground truth, one row of panels per target."""
    import matplotlib.pyplot as plt
    targets = list(results.cfg.targets)
    fig, axes = plt.subplots(len(targets), len(columns), figsize=(3.6 * len(columns),
                                                                  3.0 * len(targets)),
                             squeeze=False, layout="constrained")
    t = results.table
    for i, target in enumerate(targets):
        part = t[t["target"] == target]
        for j, col in enumerate(columns):
            ax = axes[i, j]
            ax.scatter(part[col], part["neg_mse"], c="C0")
            for _, r in part.iterrows():
                ax.annotate(r["model"], (r[col], r["neg_mse"]), fontsize=6)
            ax.set_xlabel(col)
            ax.set_ylabel(f"{target}: -test MSE" if j == 0 else "")
    return fig


def plot_correlations(corr, shuffled=None, stat: str = "pearson"):
    """Correlation with its 95 % interval per score and target (shuffled control beside)."""
    import matplotlib.pyplot as plt
    frames = [("real targets", corr)] + ([("shuffled targets", shuffled)]
                                         if shuffled is not None else [])
    targets = list(dict.fromkeys(corr["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.0 * len(targets), 3.2), squeeze=False,
                             layout="constrained")
    for ax, target in zip(axes[0], targets):
        for k, (label, df) in enumerate(frames):
            part = df[df["target"] == target]
            y = np.arange(len(part)) + 0.2 * k
            lo = part[stat] - part[f"{stat}_low"]
            hi = part[f"{stat}_high"] - part[stat]
            ax.errorbar(part[stat], y, xerr=[lo, hi], fmt="o", label=label, color=f"C{k}")
            if k == 0:
                ax.set_yticks(y, part["score"])
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(target)
        ax.set_xlabel(f"{stat} with -test MSE")
    axes[0, -1].legend(fontsize=7)
    return fig


def plot_lambda(table, target: str = ""):
    """Pearson r (and interval) of Linear / Label MSE against lambda."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    lam = table["lambda"].to_numpy()
    x = np.where(lam > 0, lam, lam[lam > 0].min() / 10 if (lam > 0).any() else 1e-5)
    for k, name in enumerate(("linear_mse", "label_mse")):
        ax.plot(x, table[f"{name}_pearson"], "o-", color=f"C{k}", label=name)
        ax.fill_between(x, table[f"{name}_pearson_low"], table[f"{name}_pearson_high"],
                        color=f"C{k}", alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("lambda (leftmost point: lambda = 0)")
    ax.set_ylabel("Pearson r with -test MSE")
    ax.set_title(target)
    ax.legend(fontsize=7)
    return fig
