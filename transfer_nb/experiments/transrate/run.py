"""Running the TransRate experiment: model selection and layer selection, cached.

* :func:`model_selection`: every model of the equal-width zoo (and, when configured, the
  ImageNet EfficientNet-Lite models as a separate zoo) is scored on each data-scarce
  target by the three TransRate variants and the baselines (LogME, LEEP, NCE, H-score,
  shrinkage H-score), each timed, and fine-tuned on it with several seeds (the paper's
  ground truth: new head, all layers trained); a linear probe on the same features is a
  second ground-truth column.
* :func:`layer_selection`: :func:`transfer_nb.selection.score_layers` with the paper's
  protocol (``truth="finetune_reinit"``: re-initialise every layer after the chosen one,
  fine-tune) on one small CNN, once per seed.
* :func:`save_full_run` / :func:`load_full_run`: the stored full-mode table under
  ``results/`` with a JSON sidecar (config hash, commit, device, date).

Every (model, target) cell is cached on disk (:mod:`transfer_nb.cache`) under a key over
the whole configuration; the wall-clock times in a cached row are those of the run that
computed it.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.transrate.config import (
    _CACHE_KIND, _VERSION, ESTIMATORS, LayerSelectionConfig, ModelSelectionConfig, SourceSpec,
    TargetSpec, _ls, _ms, config, config_hash)

__all__ = ["model_selection", "layer_selection", "score_features", "build_source",
           "save_full_run", "load_full_run", "RESULTS_CSV"]

_LAYER_VERSION = "transrate-layers-v4"
_PENULTIMATE, _OUTPUT = "penultimate", "output"
#: where the stored full run lives (relative to the repository root)
RESULTS_CSV = Path("results") / "transrate_model_selection.csv"


# ----------------------------------------------------------------------- building
def _load(dataset: str, options: tuple, split: str, n: int | None, image_size: int, seed: int,
          normalize: str = "none"):
    from transfer_nb.data import load_dataset
    return load_dataset(dataset, split=split, n=n, image_size=image_size, seed=seed,
                        normalize=normalize, **dict(options))


def _target_data(target: TargetSpec, image_size: int, seed: int, normalize: str = "none"):
    """``per_class`` training images per class and ``n_test`` test images (at most the split)."""
    from transfer_nb.data import dataset_info
    k = int(dataset_info(target.dataset)["num_classes"])
    if dict(target.options).get("chars") == "lowercase":
        k = 26
    train = _load(target.dataset, target.options, "train", target.per_class * k, image_size,
                  seed, normalize)
    full_test = _load(target.dataset, target.options, "test", None, image_size, seed, normalize)
    test = full_test if target.n_test >= len(full_test) else _load(
        target.dataset, target.options, "test", target.n_test, image_size, seed, normalize)
    return train, test


def _with_label_noise(data, fraction: float, seed: int):
    """A copy of an ImageDataset whose labels are replaced, for ``fraction`` of the images,
    by uniformly random classes (fixed by ``seed``; recorded in ``spec``)."""
    from transfer_nb.data.base import ImageDataset
    if fraction <= 0:
        return data
    rng = np.random.default_rng([seed, 7919])
    y = np.asarray(data.targets).copy()
    flip = rng.random(len(y)) < fraction
    y[flip] = rng.integers(0, len(data.classes), size=int(flip.sum()))
    return ImageDataset(data._images, y, data.classes, name=data.name,
                        spec={**data.spec, "label_noise": float(fraction), "noise_seed": seed},
                        normalize=data.normalize, source_indices=data.source_indices)


def build_source(spec: SourceSpec, arch: str, width: int, depth: int, image_size: int,
                 lr: float = 0.05, batch_size: int = 64, seed: int = 0):
    """Train (or load from the cache) one source model of the zoo (``epochs=0``: random)."""
    import torch
    from transfer_nb.models import train_source
    data = _load(spec.dataset, spec.options, "train", spec.n, image_size, seed)
    data = _with_label_noise(data, spec.label_noise, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured faster than 2 threads for these tiny convs
    try:
        model = train_source(arch, data, epochs=spec.epochs, lr=lr, batch_size=batch_size,
                             seed=seed, width=width, depth=depth, progress=False)
    finally:
        torch.set_num_threads(threads)
    model.transfer_nb_name = spec.name
    return model


def score_features(Z, y, logits, eps: float = 1e-4, projected_eps: float = 1.5e-2,
                   repeats: int = 1) -> dict:
    """Every estimator of :data:`ESTIMATORS` with its wall-clock.

    ``Z``: penultimate features, ``logits``: the source head's outputs on the same images
    (LEEP uses their softmax, NCE their argmax as source labels).  TransRate's snippet and
    layerwise variants use ``eps``, the projected one ``projected_eps`` (the authors'
    CIFAR-100 setting, eigenvalue normalisation off).  Returns a flat dict
    ``{estimator: score, "time_" + estimator: seconds}``.
    """
    from scipy.special import softmax
    from transfer_nb.estimators import registry

    Z = np.asarray(Z, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    f = {name: registry.get(name).func for name in ESTIMATORS}
    jobs = {
        "transrate": lambda: f["transrate"](Z, y, eps=eps),
        "transrate_layerwise": lambda: f["transrate_layerwise"](Z, y, eps=eps),
        "transrate_projected": lambda: f["transrate_projected"](
            Z, y, eps=projected_eps, normalize_eigenvalues=False),
        "logme": lambda: f["logme"](Z, y),
        "leep": lambda: f["leep"](softmax(logits, axis=1), y),
        "nce": lambda: f["nce"](np.argmax(logits, axis=1), y),
        "hscore": lambda: f["hscore"](Z, y),
        "hscore_shrinkage": lambda: f["hscore_shrinkage"](Z, y),
    }
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = timed(fn, repeats)
    return out


def _cell_key(entry, target: TargetSpec, ms: ModelSelectionConfig) -> str:
    from transfer_nb.cache import hash_inputs
    model = (dataclasses.asdict(entry) if isinstance(entry, SourceSpec) else {"pretrained": entry})
    common = {k: v for k, v in dataclasses.asdict(ms).items()
              if k not in ("targets", "sources", "pretrained")}
    return hash_inputs(version=_VERSION, model=model, target=dataclasses.asdict(target),
                       **common)


def _evaluate_cell(model, target: TargetSpec, ms: ModelSelectionConfig, image_size: int,
                   normalize: str) -> dict:
    """Scores, timings, linear-probe and fine-tuned accuracies (one per seed) of one model
    on one target."""
    import torch
    from transfer_nb.coding_rate import transrate
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import fine_tune, linear_probe

    train, test = _target_data(target, image_size, ms.seed, normalize)
    y = np.asarray(train.targets)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured faster than 2 threads for these tiny convs
    try:
        t0 = time.perf_counter()
        feats = extract_features(model, train, layers=[_PENULTIMATE, _OUTPUT], progress=False)
        out = {"time_features": time.perf_counter() - t0}
        test_feats = extract_features(model, test, layers=[_PENULTIMATE], progress=False)
        Z = np.asarray(feats[_PENULTIMATE], dtype=np.float64)
        out.update(score_features(Z, y, feats[_OUTPUT], eps=ms.eps,
                                  projected_eps=ms.projected_eps, repeats=ms.timing_repeats))
        out["projected_eps_sweep"] = np.array([transrate(Z, y, eps=e, variant="projected",
                                                         normalize_eigenvalues=False)
                                               for e in ms.eps_sweep])
        out["width"] = float(Z.shape[1])
        out["linear_probe"] = float(linear_probe(Z, y, test_feats[_PENULTIMATE],
                                                 np.asarray(test.targets), seed=ms.seed))
        accs, t0 = [], time.perf_counter()
        for seed in ms.seeds:
            res = fine_tune(model, train, test, epochs=ms.epochs, lr=ms.lr,
                            batch_size=ms.batch_size, seed=seed, progress=False,
                            normalize="none")
            accs.append(float(res["accuracy"]))
        out["time_finetune"] = (time.perf_counter() - t0) / len(ms.seeds)
    finally:
        torch.set_num_threads(threads)
    out["accuracy_seeds"] = np.asarray(accs)
    out["n_train"], out["n_test"] = float(len(train)), float(len(test))
    out["num_classes"] = float(len(np.unique(y)))
    return out


def model_selection(cfg, progress: bool = True, use_cache: bool = True):
    """Run the model-selection experiment; one row per (zoo, target, model).

    Returns
    -------
    pandas.DataFrame
        Columns ``zoo`` (``"small_cnn"`` or ``"imagenet"``), ``target, model, width,
        source_epochs, label_noise``, one column per estimator of :data:`ESTIMATORS`,
        ``accuracy`` (mean fine-tuned test accuracy over the seeds), ``accuracy_std``,
        ``accuracy_seed<i>``, ``linear_probe``, ``n_train, n_test, num_classes``,
        ``projected_eps=<eps>`` (the eps sweep) and ``time_*`` (seconds).
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, load_arrays, save_arrays

    ms = _ms(cfg)
    if not ms.targets:
        raise ValueError("the configuration has no targets")
    if len(ms.sources) < 2:
        raise ValueError("model selection needs at least 2 models in the zoo")
    zoo = [("small_cnn", s) for s in ms.sources] + [("imagenet", p) for p in ms.pretrained]
    loaded: dict = {}

    def get_model(entry):
        key = entry.name if isinstance(entry, SourceSpec) else entry
        if key not in loaded:
            if isinstance(entry, SourceSpec):
                loaded[key] = build_source(entry, ms.arch, ms.width, ms.depth, ms.image_size,
                                           ms.source_lr, ms.source_batch_size, ms.seed)
            else:
                from transfer_nb.models import load_model
                loaded[key] = load_model(entry, pretrained=True)
        return loaded[key]

    pairs = [(t, z, m) for z, m in zoo for t in ms.targets]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="model selection (score + fine-tune x seeds)")
    rows = []
    for target, zname, entry in pairs:
        path = cache_dir(_CACHE_KIND) / f"ms-{_cell_key(entry, target, ms)}.npz"
        cell = load_arrays(path) if use_cache else None
        if cell is None:
            model = get_model(entry)
            if zname == "small_cnn":
                cell = _evaluate_cell(model, target, ms, ms.image_size, "none")
            else:
                cell = _evaluate_cell(model, target, ms, ms.pretrained_image_size,
                                      getattr(model, "transfer_nb_normalize", "none") or "none")
            if use_cache:
                save_arrays(path, cell)
        src = entry if isinstance(entry, SourceSpec) else None
        row = {"zoo": zname, "target": target.name,
               "model": src.name if src else entry,
               "source_epochs": float(src.epochs) if src else np.nan,
               "label_noise": float(src.label_noise) if src else np.nan}
        accs = np.asarray(cell["accuracy_seeds"], dtype=np.float64)
        row["accuracy"] = float(accs.mean())
        row["accuracy_std"] = float(accs.std(ddof=1)) if accs.size > 1 else 0.0
        for s, a in zip(ms.seeds, accs):
            row[f"accuracy_seed{s}"] = float(a)
        for e, v in zip(ms.eps_sweep, np.asarray(cell["projected_eps_sweep"])):
            row[f"projected_eps={e:g}"] = float(v)
        for k, v in cell.items():
            if k not in ("accuracy_seeds", "projected_eps_sweep"):
                row[k] = float(np.asarray(v))
        rows.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    front = ["zoo", "target", "model", "width", "source_epochs", "label_noise", *ESTIMATORS,
             "accuracy", "accuracy_std", "linear_probe"]
    return df[front + [c for c in df.columns if c not in front]]


# ------------------------------------------------------------------ layer selection
def layer_selection(cfg, progress: bool = True, use_cache: bool = True):
    """TransRate of every layer of one small CNN vs the paper's layer-selection truth.

    The model (``ls.arch``, trained on ``ls.source``) is scored by
    :func:`transfer_nb.selection.score_layers` with ``truth="finetune_reinit"`` -- keep
    the layers up to ``layer``, re-initialise every later one, replace the head and
    fine-tune everything -- once per seed of ``ls.seeds``; TransRate (snippet and
    layerwise) on the target's training images, accuracy on its test images.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer, depth, width, transrate, transrate_layerwise, accuracy``
        (mean over seeds), ``accuracy_std``, ``accuracy_seed<i>``, ``protocol``.
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, hash_inputs, load_arrays, save_arrays

    ls = _ls(cfg)
    key = hash_inputs(version=_LAYER_VERSION, kind="layer", **dataclasses.asdict(ls))
    path = cache_dir(_CACHE_KIND) / f"ls-{key}.npz"
    hit = load_arrays(path) if use_cache else None
    if hit is None:
        hit = _run_layer_selection(ls, progress)
        if use_cache:
            save_arrays(path, hit)
    acc = np.asarray(hit["accuracy"], dtype=np.float64)  # (seeds, layers)
    df = pd.DataFrame({"layer": [str(s) for s in hit["layer"]],
                       "depth": np.asarray(hit["depth"]).astype(int),
                       "width": np.asarray(hit["width"]).astype(int),
                       "transrate": hit["transrate"],
                       "transrate_layerwise": hit["transrate_layerwise"],
                       "accuracy": acc.mean(axis=0),
                       "accuracy_std": acc.std(axis=0, ddof=1) if len(acc) > 1 else 0.0})
    for s, a in zip(ls.seeds, acc):
        df[f"accuracy_seed{s}"] = a
    df["protocol"] = "finetune_reinit"
    return df


def _run_layer_selection(ls: LayerSelectionConfig, progress: bool) -> dict:
    import torch
    from transfer_nb.selection import score_layers

    model = build_source(ls.source, ls.arch, ls.width, ls.depth, ls.image_size, ls.source_lr,
                         ls.source_batch_size, ls.seed)
    train, test = _target_data(ls.target, ls.image_size, ls.seed)
    it = ls.seeds
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(ls.seeds, desc="layer selection (re-init + fine-tune per layer, per seed)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tables = []
    try:
        for seed in it:
            tables.append(score_layers(
                model, train, estimators=("transrate", "transrate_layerwise"),
                truth="finetune_reinit", test_data=test, seed=seed, eps=ls.eps,
                finetune={"epochs": ls.epochs, "lr": ls.lr, "batch_size": ls.batch_size},
                progress=False))
    finally:
        torch.set_num_threads(threads)
    t = tables[0]
    return {"layer": np.asarray(t.index, dtype=str), "depth": t["depth"].to_numpy(),
            "width": t["width"].to_numpy(), "transrate": t["transrate"].to_numpy(),
            "transrate_layerwise": t["transrate_layerwise"].to_numpy(),
            "accuracy": np.stack([tb["accuracy"].to_numpy() for tb in tables])}


# ------------------------------------------------------------------ stored full run
def _repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def save_full_run(df=None, root: Path | str | None = None, progress: bool = True) -> Path:
    """Run (or take) the full-mode model selection and store it under ``results/``.

    Writes ``results/transrate_model_selection.csv`` and a JSON sidecar
    (``.json``: ``config_hash`` of ``config(fast=False)``, git ``commit``, ``device``,
    ``date``).  Returns the CSV path.
    """
    import datetime
    import json
    import platform
    import subprocess

    root = Path(root) if root is not None else _repo_root()
    cfg = config(fast=False)
    if df is None:
        df = model_selection(cfg, progress=progress)
    path = root / RESULTS_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    import torch
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"cpu ({platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads)")
    meta = {"config_hash": config_hash(cfg), "commit": commit, "device": device,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mode": cfg.mode}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_full_run(root: Path | str | None = None):
    """``(DataFrame, metadata dict)`` of the stored full run, or ``(None, None)`` when
    none is stored.  ``metadata["stale"]`` is True when its config hash no longer
    matches ``config(fast=False)``."""
    import json
    import pandas as pd
    root = Path(root) if root is not None else _repo_root()
    path = root / RESULTS_CSV
    side = path.with_suffix(".json")
    if not path.exists() or not side.exists():
        return None, None
    meta = json.loads(side.read_text())
    meta["stale"] = meta.get("config_hash") != config_hash(config(fast=False))
    return pd.read_csv(path), meta
