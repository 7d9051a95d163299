"""Running the TransRate experiment: model selection and layer selection, cached.

* :func:`model_selection`: every model of the zoo is scored on each target by TransRate
  and the baselines (LogME, LEEP, NCE, H-score) and fine-tuned on it (the paper's ground
  truth: new head, all layers trained).
* :func:`layer_selection`: :func:`transfer_nb.selection.score_layers` on one model --
  TransRate of every default layer vs the accuracy of transferring up to that layer
  (``finetune_reinit``, the paper's protocol, or ``linear_probe``), on the target's own
  train / test splits.

Every result is cached on disk (:mod:`transfer_nb.cache`) under a key that covers the
whole configuration; the wall-clock times stored in a cached row are those of the run
that computed it.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from transfer_nb.experiments._timing import timed
from transfer_nb.experiments.transrate.config import (
    _CACHE_KIND, _VERSION, ESTIMATORS, LayerSelectionConfig, ModelSelectionConfig, SourceSpec,
    TargetSpec, _ls, _ms)

__all__ = ["model_selection", "layer_selection", "score_features"]

#: cache version of the layer-selection tables (columns of score_layers)
_LAYER_VERSION = "transrate-layers-v3"

# ----------------------------------------------------------------------- building
def _load_target(spec: TargetSpec, split: str, n: int, image_size: int, seed: int,
                 normalize: str | None):
    """``n`` images of a target split; the whole split when it has fewer (lfw_faces)."""
    from transfer_nb.data import load_dataset
    kw = dict(split=split, image_size=image_size, seed=seed, normalize=normalize,
              **dict(spec.options))
    full = load_dataset(spec.dataset, **kw)
    if n is None or n >= len(full):
        return full
    return load_dataset(spec.dataset, n=n, **kw)


def _build_source(spec: SourceSpec, image_size: int, seed: int, progress: bool):
    """Train (or load from the cache) one small source model of the zoo."""
    from transfer_nb.models import train_source
    data = _load_target(TargetSpec(spec.dataset, spec.dataset, spec.options), "train",
                        spec.n, image_size, seed, "none")
    model = train_source(spec.arch, data, epochs=spec.epochs, seed=seed, width=spec.width,
                         progress=progress)
    model.transfer_nb_name = spec.name
    return model


def _image_size_for(model, ms: "ModelSelectionConfig") -> int:
    """Small sources see the target at their source resolution, ImageNet models at
    ``ms.image_size``."""
    return ms.source_image_size if getattr(model, "transfer_nb_normalize", "none") == "none" \
        else ms.image_size


# virtual layer names of transfer_nb.features: the classifier's input and the model output
_PENULTIMATE, _OUTPUT = "penultimate", "output"


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def score_features(Z, y, logits, eps: float = 1e-4, repeats: int = 1) -> dict:
    """All five estimators (and TransRate's layerwise variant) with their wall-clock.

    ``Z``: penultimate features, ``logits``: source-head outputs on the same images
    (LEEP uses their softmax, NCE their argmax as source labels).  Returns a flat
    dict ``{estimator: score, "time_" + estimator: seconds}``.
    """
    from transfer_nb import estimators as est
    from transfer_nb.coding_rate import transrate

    Z = np.asarray(Z, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    jobs = {
        "transrate": lambda: transrate(Z, y, eps=eps),
        "logme": lambda: est.logme(Z, y),
        "leep": lambda: est.leep(_softmax(logits), y),
        "nce": lambda: est.nce(np.argmax(logits, axis=1), y),
        "hscore": lambda: est.hscore(Z, y),
    }
    out = {}
    for name, fn in jobs.items():
        out[name], out["time_" + name] = timed(fn, repeats)
    out["transrate_layerwise"] = float(transrate(Z, y, eps=eps, variant="layerwise"))
    return out


def _model_key(model_name, ms: ModelSelectionConfig):
    if isinstance(model_name, SourceSpec):
        return {"source": dataclasses.asdict(model_name), "image_size": ms.source_image_size,
                "seed": ms.seed}
    return {"pretrained": model_name}


def _cell_key(model_name, target: TargetSpec, ms: ModelSelectionConfig) -> str:
    from transfer_nb.cache import hash_inputs
    return hash_inputs(version=_VERSION, model=_model_key(model_name, ms),
                       target=dataclasses.asdict(target), image_size=ms.image_size,
                       n_train=ms.n_train, n_test=ms.n_test, epochs=ms.epochs, lr=ms.lr,
                       batch_size=ms.batch_size, optimizer=ms.optimizer, eps=ms.eps,
                       seed=ms.seed, repeats=ms.timing_repeats)


def _evaluate_cell(model, target: TargetSpec, ms: ModelSelectionConfig) -> dict:
    """Scores, timings and fine-tuned accuracy of one model on one target.

    No progress bar of its own: the caller shows one bar over all pairs.  (A bar per
    fine-tuning floods a notebook kernel's iopub channel with widget messages, which
    then drops messages and stalls nbval.)
    """
    from transfer_nb.features import extract_features
    from transfer_nb.transfer import fine_tune

    norm = getattr(model, "transfer_nb_normalize", None) or "none"
    size = _image_size_for(model, ms)
    train = _load_target(target, "train", ms.n_train, size, ms.seed, norm)
    test = _load_target(target, "test", ms.n_test, size, ms.seed, norm)
    y = np.asarray(train.targets)
    penult, head = _PENULTIMATE, _OUTPUT
    t0 = time.perf_counter()
    feats = extract_features(model, train, layers=[penult, head], progress=False)
    t_feat = time.perf_counter() - t0
    out = score_features(feats[penult], y, feats[head], eps=ms.eps, repeats=ms.timing_repeats)
    out["time_features"] = t_feat
    out["feature_dim"] = float(feats[penult].shape[1])
    t0 = time.perf_counter()
    res = fine_tune(model, train, test, epochs=ms.epochs, lr=ms.lr, batch_size=ms.batch_size,
                    seed=ms.seed, progress=False, optimizer=ms.optimizer, normalize="none")
    out["time_finetune"] = time.perf_counter() - t0
    out["accuracy"] = float(res["accuracy"])
    out["train_loss"] = np.asarray(res["train_loss"], dtype=np.float64)
    out["num_classes"] = float(res["num_classes"])
    out["n_train"], out["n_test"], out["image_size"] = float(len(train)), float(len(test)), float(size)
    return out


def model_selection(cfg, progress: bool = True, use_cache: bool = True):
    """Run the model-selection experiment; one row per (target, model).

    Parameters
    ----------
    cfg : TransRateConfig or ModelSelectionConfig
    progress : bool
        tqdm bars (to stderr) over the (target, model) pairs and the fine-tuning.
    use_cache : bool
        Read / write each (target, model) result from / to the on-disk cache.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, model, kind, feature_dim, transrate, logme, leep, nce, hscore,
        transrate_layerwise, accuracy, time_transrate, time_logme, time_leep, time_nce,
        time_hscore, time_features, time_finetune, final_train_loss``.
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, load_arrays, save_arrays

    ms = _ms(cfg)
    if not ms.targets:
        raise ValueError("the configuration has no targets")
    zoo = list(ms.pretrained) + list(ms.sources)
    if len(zoo) < 2:
        raise ValueError("model selection needs at least 2 models in the zoo")
    loaded: dict = {}

    def get_model(entry):
        key = entry.name if isinstance(entry, SourceSpec) else entry
        if key not in loaded:
            if isinstance(entry, SourceSpec):
                loaded[key] = _build_source(entry, ms.source_image_size, ms.seed, progress)
            else:
                from transfer_nb.models import load_model
                loaded[key] = load_model(entry, pretrained=True)
        return loaded[key]

    pairs = [(t, m) for t in ms.targets for m in zoo]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pairs), desc="model selection")
    rows = []
    for target, entry in pairs:
        mname = entry.name if isinstance(entry, SourceSpec) else entry
        if bar is not None:
            bar.set_postfix_str(f"{target.name} / {mname}")
        path = cache_dir(_CACHE_KIND) / f"ms-{_cell_key(entry, target, ms)}.npz"
        cell = load_arrays(path) if use_cache else None
        if cell is None:
            cell = _evaluate_cell(get_model(entry), target, ms)
            if use_cache:
                save_arrays(path, cell)
        row = {"target": target.name, "model": mname,
               "kind": "trained source" if isinstance(entry, SourceSpec) else "ImageNet"}
        for k, v in cell.items():
            v = np.asarray(v)
            if k == "train_loss":
                row["final_train_loss"] = float(v[-1]) if v.size else float("nan")
            else:
                row[k] = float(v)
        rows.append(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    front = ["target", "model", "kind", "feature_dim", *ESTIMATORS, "transrate_layerwise",
             "accuracy"]
    front = [c for c in front if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


# ------------------------------------------------------------------ layer selection
def layer_selection(cfg, progress: bool = True, use_cache: bool = True):
    """TransRate of every layer of one model vs the accuracy of transferring up to it.

    Runs :func:`transfer_nb.selection.score_layers` -- the procedure of the
    ``%transrate`` magic and the ``LayerSelector`` widget -- on ``n_train`` images of the
    target's train split, with ``n_test`` images of its test split held out.
    ``protocol="finetune_reinit"`` (the paper's): keep the layers up to ``layer``,
    re-initialise every later layer, replace the head and fine-tune everything.
    ``protocol="linear_probe"``: logistic regression on the (pooled) layer features.
    TransRate is computed on the training images, accuracy on the test images.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer, depth, width, transrate, transrate_layerwise, accuracy, protocol``.
    """
    import pandas as pd
    from transfer_nb.cache import cache_dir, hash_inputs, load_arrays, save_arrays

    ls = _ls(cfg)
    if ls.protocol not in ("finetune_reinit", "linear_probe"):
        raise ValueError(f"protocol must be 'finetune_reinit' or 'linear_probe', got {ls.protocol!r}")
    key = hash_inputs(version=_LAYER_VERSION, kind="layer", **dataclasses.asdict(ls))
    path = cache_dir(_CACHE_KIND) / f"ls-{key}.npz"
    hit = load_arrays(path) if use_cache else None
    if hit is None:
        table = _run_layer_selection(ls, progress)
        hit = {"layer": np.asarray(table.index, dtype=str),
               **{c: table[c].to_numpy() for c in table.columns}}
        if use_cache:
            save_arrays(path, hit)
    df = pd.DataFrame({"layer": [str(s) for s in hit["layer"]],
                       "depth": np.asarray(hit["depth"]).astype(int),
                       "width": np.asarray(hit["width"]).astype(int),
                       "transrate": hit["transrate"],
                       "transrate_layerwise": hit["transrate_layerwise"],
                       "accuracy": hit["accuracy"]})
    df["protocol"] = ls.protocol
    return df


def _run_layer_selection(ls: LayerSelectionConfig, progress: bool):
    from transfer_nb.models import load_model
    from transfer_nb.selection import score_layers

    model = load_model(ls.model, pretrained=True)
    norm = getattr(model, "transfer_nb_normalize", None) or "none"
    train = _load_target(ls.target, "train", ls.n_train, ls.image_size, ls.seed, norm)
    test = _load_target(ls.target, "test", ls.n_test, ls.image_size, ls.seed, norm)
    return score_layers(model, train, layers=list(ls.layers) if ls.layers else None,
                        estimators=("transrate", "transrate_layerwise"), truth=ls.protocol,
                        test_data=test, seed=ls.seed, eps=ls.eps,
                        finetune={"epochs": ls.epochs, "lr": ls.lr,
                                  "batch_size": ls.batch_size, "optimizer": ls.optimizer},
                        progress=progress)
