"""Regression experiment: sources, fine-tuning ground truth, estimator scores."""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from scipy.special import softmax

from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.regression.config import (_CACHE_KIND, _OUTPUT, _PENULTIMATE, _VERSION,
                                                       RegressionConfig, SourceSpec, config)

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
        out[name], out["time_" + name] = timed(fn, repeats)
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
            "probs": softmax(np.asarray(feats[_OUTPUT], dtype=np.float64), axis=1),
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
