"""Ground truth for transferability: what a model really reaches on the target.

Two protocols:

* :func:`linear_probe` -- a multinomial logistic regression on frozen features
  (the cheap ground truth, also used for layer selection in fast mode).
* :func:`fine_tune` -- replace the classification head with a new ``Linear`` for the
  target classes and train *all* layers (the protocol of Huang et al., 2022).  With
  ``reinit_after=name`` every layer after the module ``name`` is re-initialised first:
  the paper's layer-selection protocol ("re-initialise the last k layers and
  fine-tune"), which measures how good the representation *up to* ``name`` is.

Both are deterministic given ``seed`` (CPU; ``num_workers=0``; a seeded generator for
shuffling, initialisation and dropout).
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

from transfer_nb import training
from transfer_nb._validation import as_features, check_scalar, plain, to_numpy
from transfer_nb.preprocessing import get_normalization, input_normalization, normalize_images
from transfer_nb.models.heads import layers_after, reinit_after_layer, replace_head  # noqa: F401

__all__ = ["linear_probe", "fine_tune", "replace_head", "reinit_after_layer",
           "layers_after", "evaluate", "choose_recipe"]


# --------------------------------------------------------------------------- helpers
def _as_labels(y: Any, n: int, name: str) -> np.ndarray:
    # probe labels may be strings and a test split may miss classes, so only the shape
    # is checked here (encode_labels' per-class minimums would be wrong for test labels)
    y = to_numpy(y, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but the features have {n} rows")
    return y


# ---------------------------------------------------------------------- linear probe
def linear_probe(Z_train, y_train, Z_test, y_test, seed: int = 0, C: float = 1.0,
                 standardize: bool = True, max_iter: int = 2000) -> float:
    """Test accuracy of a multinomial logistic regression trained on frozen features.

    Parameters
    ----------
    Z_train, Z_test : array-like of shape (n, d)
        Features (numpy or torch, any float dtype).  Same ``d`` for both.
    y_train, y_test : array-like of shape (n,)
        Labels of any values (ints, strings).  Test items whose label never occurs in
        ``y_train`` cannot be predicted: they count as errors (the accuracy stays that
        of the whole test set) and a ``UserWarning`` says how many there are and
        which labels, since this usually means mismatched splits or label encodings.
    seed : int
        Seed of the solver (lbfgs is deterministic; kept for the record).
    C : float
        Inverse L2 regularisation strength (scikit-learn convention), > 0.
    standardize : bool
        Standardise each feature with the *training* mean / std first.
    max_iter : int
        Iterations of the lbfgs solver.

    Returns
    -------
    float
        Accuracy in [0, 1] on ``(Z_test, y_test)``.
    """
    from sklearn.linear_model import LogisticRegression

    Ztr = as_features(Z_train, "Z_train")
    Zte = as_features(Z_test, "Z_test")
    ytr = _as_labels(y_train, len(Ztr), "y_train")
    yte = _as_labels(y_test, len(Zte), "y_test")
    if Ztr.shape[1] != Zte.shape[1]:
        raise ValueError(f"Z_train has {Ztr.shape[1]} features but Z_test has {Zte.shape[1]}")
    C = check_scalar(C, "C", float, min_val=0, include_boundaries="neither")
    max_iter = check_scalar(max_iter, "max_iter", int, min_val=1)
    seed = check_scalar(seed, "seed", int, min_val=0)
    classes = np.unique(ytr)
    if len(classes) < 2:
        raise ValueError(f"y_train must contain at least 2 classes, got {len(classes)}")
    unseen = ~np.isin(yte, classes)
    if unseen.any():
        labels = plain(np.unique(yte[unseen]))
        shown = labels if len(labels) <= 10 else labels[:10] + ["..."]
        warnings.warn(f"linear_probe: {int(unseen.sum())} of {len(yte)} test items have "
                      f"labels the training set never had ({shown}); they are scored as "
                      "errors", UserWarning, stacklevel=2)
    if standardize:
        mu = Ztr.mean(axis=0)
        sd = Ztr.std(axis=0)
        sd[sd < 1e-12] = 1.0
        Ztr = (Ztr - mu) / sd
        Zte = (Zte - mu) / sd
    clf = LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on separable data is harmless
        clf.fit(Ztr, ytr)
    pred = clf.predict(Zte)
    return float(np.mean(pred == yte))


# ------------------------------------------------------------------- fine-tuning
def _labels_of(ds) -> np.ndarray:
    import torch
    from torch.utils.data import TensorDataset, Subset
    t = getattr(ds, "targets", None)
    if t is not None:
        return np.asarray(t.numpy() if isinstance(t, torch.Tensor) else t).reshape(-1)
    if isinstance(ds, TensorDataset) and len(ds.tensors) >= 2:
        return ds.tensors[1].detach().cpu().numpy().reshape(-1)
    if isinstance(ds, Subset):
        return _labels_of(ds.dataset)[np.asarray(ds.indices)]
    return np.asarray([int(ds[i][1]) for i in range(len(ds))])


def _resolve_normalize(model, normalize, dataset=None):
    """The normalisation name for ``model`` on ``dataset`` (``"auto"``: the model's unless
    the data are already normalised): :func:`transfer_nb.preprocessing.input_normalization`."""
    return input_normalization(model, normalize, dataset)


def fine_tune(model, train_data, test_data, epochs: int = 5, lr: float = 0.01,
              batch_size: int = 32, seed: int = 0, device=None, progress: bool = True,
              reinit_after: str | None = None, head: str = "auto",
              optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 1e-4,
              head_lr_mult: float = 10.0, normalize: str | None = "auto",
              copy_model: bool = True, freeze_bn_stats: bool = False,
              head_init: str = "random", probe_C: float = 1.0) -> dict:
    """Fine-tune all layers of ``model`` on the target and report test accuracy.

    The classification head is replaced by a new ``nn.Linear`` with as many outputs as
    target classes (timm models via ``reset_classifier``; other models: their last
    ``nn.Linear``, or the module named by ``head``).  Optimiser: SGD with Nesterov-free
    momentum 0.9 and weight decay 1e-4 (``optimizer="sgd"``, the usual fine-tuning
    recipe and the paper's), or Adam (``optimizer="adam"``); the new head trains at
    ``lr * head_lr_mult``; the learning rate follows a cosine decay over all steps.

    Parameters
    ----------
    model : torch.nn.Module
        Pretrained model.  Copied first unless ``copy_model=False``.
    train_data, test_data : torch Dataset of (image, label) or DataLoader
        Images in [0, 1]; they are normalised the way the model expects
        (``normalize="auto"`` reads ``model.transfer_nb_normalize`` unless the data set
        says it is already normalised through its ``.normalize`` attribute, as
        :class:`transfer_nb.data.ImageDataset` does; pass ``"none"`` to skip it).
    epochs, lr, batch_size : training budget.
    seed : int
        Seeds head initialisation, re-initialisation, shuffling and dropout.
    device : str or torch.device, optional (default CPU).
    progress : bool
        Show a ``tqdm`` bar over steps.
    reinit_after : str, optional
        Re-initialise every layer after this module (the paper's layer-selection
        protocol), then fine-tune everything.
    head : str
        ``"auto"`` or the module name of the ``nn.Linear`` head to replace.
    optimizer, momentum, weight_decay, head_lr_mult : optimiser settings.
    freeze_bn_stats : bool
        Keep the *pretrained* BatchNorm layers in eval mode (running statistics frozen,
        their affine parameters still trained).  The usual fix for small-batch
        fine-tuning, where batch statistics of ~10 images would overwrite ImageNet's;
        re-initialised BatchNorm layers (``reinit_after``) always train normally.
    head_init : {"random", "probe"}
        ``"probe"`` is LP-FT (Kumar et al., ICLR 2022): the new head starts from a
        multinomial logistic regression fitted on the frozen model's head inputs (L2,
        inverse strength ``probe_C``), so fine-tuning starts from the linear probe
        instead of distorting good features with a random head's large gradients.

    Returns
    -------
    dict
        ``accuracy`` (float, test), ``train_loss`` (mean loss per epoch),
        ``train_accuracy`` (last epoch), ``train_accuracy_curve`` (per epoch),
        ``reinitialized`` (names), ``head`` (name),
        ``num_classes``, ``steps``.
    """
    import torch
    import torch.nn as nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = check_scalar(epochs, "epochs", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    lr = check_scalar(lr, "lr", float, min_val=0, include_boundaries="neither")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    train_ds = training.as_dataset(train_data, "train_data")
    test_ds = training.as_dataset(test_data, "test_data")
    if len(train_ds) == 0 or len(test_ds) == 0:
        raise ValueError("train_data and test_data must not be empty")
    classes = np.unique(_labels_of(train_ds))
    if len(classes) < 2:
        raise ValueError(f"train_data must contain at least 2 classes, got {len(classes)}")
    if not np.issubdtype(classes.dtype, np.integer) or int(classes.min()) < 0:
        raise ValueError("fine_tune needs non-negative integer labels, got "
                         f"{classes[:5].tolist()}...")
    num_classes = len(classes)
    to_idx = _label_map(classes)
    # the data sets (not their in-memory copies) say whether they are normalised already
    norm = _resolve_normalize(model, normalize, getattr(train_data, "dataset", train_data))
    norm_test = _resolve_normalize(model, normalize, getattr(test_data, "dataset", test_data))
    device = torch.device("cpu") if device is None else training.resolve_device(device)

    net = copy.deepcopy(model) if copy_model else model
    reinitialized: list[str] = []
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left alone
        torch.manual_seed(seed)
        head_name = replace_head(net, num_classes, head=head,
                                 generator=torch.Generator().manual_seed(seed))
        if reinit_after is not None:
            torch.manual_seed(seed + 1)
            reinitialized = reinit_after_layer(net, reinit_after, exclude=(head_name,))
    if head_init == "probe":
        _init_head_from_probe(net, head_name, train_ds, to_idx, _normalizer(norm), probe_C,
                              device)
    elif head_init != "random":
        raise ValueError(f"head_init must be 'random' or 'probe', got {head_init!r}")
    for p in net.parameters():
        p.requires_grad_(True)
    name = getattr(model, "transfer_nb_name", type(model).__name__)
    result = training.fit(
        net, train_ds, epochs=epochs, lr=lr, batch_size=batch_size,
        optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, schedule="cosine",
        param_groups=[{"params": list(net.get_submodule(head_name).parameters()),
                       "lr_mult": head_lr_mult}],
        transform=_normalizer(norm), target_transform=to_idx,
        bn="frozen" if freeze_bn_stats else "train", bn_exclude=reinitialized,
        seed=seed, device=device, progress=progress, desc=f"fine-tune {name}")
    acc = evaluate(net, test_ds, batch_size=max(batch_size, 64), device=device,
                   normalize=norm_test, label_map=to_idx)
    return {"accuracy": acc, "train_loss": result["loss_history"],
            "train_accuracy": result["train_accuracy"],
            "train_accuracy_curve": result["accuracy_history"], "reinitialized": reinitialized,
            "head": head_name, "num_classes": num_classes, "steps": result["steps"],
            "model": net if not copy_model else None}


def _init_head_from_probe(net, head_name: str, data, to_idx, transform, C: float, device) -> None:
    """Set the (new) linear head to a logistic regression on its own frozen inputs."""
    import torch
    from sklearn.linear_model import LogisticRegression

    head = net.get_submodule(head_name)
    feats: list = []
    hook = head.register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach().cpu()))
    try:
        training.predict(net, data, batch_size=256, device=device, transform=transform)
    finally:
        hook.remove()
    Z = torch.cat(feats).double().numpy()
    y = to_idx(torch.as_tensor(_labels_of(data).astype(np.int64))).numpy()
    # fitted on the raw head inputs: a model whose penultimate units are nearly constant
    # would get exploding weights from per-feature standardisation (measured: LP-FT then
    # started below the probe and fell to chance on several small CNNs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an initialisation: a few unconverged steps are fine
        clf = LogisticRegression(C=C, max_iter=2000).fit(Z, y)
    coef, icpt = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:                       # sklearn's binary form: one row
        coef, icpt = np.r_[-coef, coef] / 2, np.r_[-icpt, icpt] / 2
    W = np.zeros((head.out_features, Z.shape[1]))
    b = np.zeros(head.out_features)
    W[clf.classes_] = coef
    b[clf.classes_] = icpt
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(W, dtype=head.weight.dtype))
        if head.bias is not None:
            head.bias.copy_(torch.as_tensor(b, dtype=head.bias.dtype))


def _label_map(classes: np.ndarray):
    """Labels -> ``0..K-1`` by the sorted training classes; unseen labels -> ``-1``
    (never predicted, so they count as errors)."""
    import torch
    lut = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long)
    lut[torch.as_tensor(classes.astype(np.int64))] = torch.arange(len(classes))

    def to_idx(yb):
        yb = torch.as_tensor(yb, dtype=torch.long)
        out = torch.full_like(yb, -1)
        ok = (yb >= 0) & (yb < len(lut))
        out[ok] = lut[yb[ok]]
        return out

    return to_idx


def _normalizer(norm: str | None):
    """``transform`` for :func:`training.fit`: float images in [0, 1] -> ``norm``."""
    get_normalization(norm)  # unknown names fail here, before any training
    if norm in (None, "none"):
        return lambda x: x.float()
    return lambda x: normalize_images(x.float(), norm)


def evaluate(model, data, batch_size: int = 64, device=None, normalize: str | None = "auto",
             label_map=None) -> float:
    """Accuracy of ``model`` (eval mode) on ``data``; labels mapped by ``label_map``.

    A thin wrapper of :func:`transfer_nb.training.evaluate` that normalises the images
    the way the model expects (``normalize``, see :func:`fine_tune`).  ``device=None``
    runs where the model's parameters are.
    """
    norm = _resolve_normalize(model, normalize, getattr(data, "dataset", data))
    return training.evaluate(model, data, metric="accuracy", batch_size=batch_size,
                             device=device, transform=_normalizer(norm),
                             target_transform=label_map)


def choose_recipe(models, fit_data, val_data, grid, **fine_tune_kwargs) -> tuple[dict, list]:
    """The fine-tuning recipe of ``grid`` with the best mean validation accuracy.

    Every model fine-tunes on ``fit_data`` with every recipe and is scored on
    ``val_data`` (never the test set): the truth's recipe is chosen the way a practitioner
    would, before any transferability score is compared with it.  Ties go to the recipe
    listed first.

    Parameters
    ----------
    models : dict of str -> torch.nn.Module
        The models the recipe is tuned on (named in the rows).
    fit_data, val_data : torch Dataset of (image, label), or lists of them
        A split of the target's training images, or several splits (equal-length lists:
        the validation accuracy is then averaged over them, which makes the choice less
        dependent on one draw of a few images).
    grid : sequence of dict
        Recipes: keyword arguments of :func:`fine_tune` (e.g. ``{"lr": 1e-3, "epochs": 20}``).
    **fine_tune_kwargs
        Fixed arguments of :func:`fine_tune` shared by every recipe.

    Returns
    -------
    (dict, list of dict)
        The chosen recipe, and one row per (model, split, recipe): the recipe's keys,
        ``model``, ``split``, ``val_accuracy`` and ``chosen``.
    """
    grid = [dict(r) for r in grid]
    if not grid:
        raise ValueError("grid is empty: give at least one recipe, e.g. [{'lr': 1e-3}]")
    if not models:
        raise ValueError("models is empty: give at least one model to tune the recipe on")
    fits = list(fit_data) if isinstance(fit_data, (list, tuple)) else [fit_data]
    vals = list(val_data) if isinstance(val_data, (list, tuple)) else [val_data]
    if len(fits) != len(vals):
        raise ValueError(f"fit_data has {len(fits)} splits but val_data has {len(vals)}")
    rows = []
    for name, model in models.items():
        for k, (fit, val) in enumerate(zip(fits, vals)):
            for i, recipe in enumerate(grid):
                res = fine_tune(model, fit, val, **{**fine_tune_kwargs, **recipe})
                rows.append({**recipe, "recipe": i, "model": name, "split": k,
                             "val_accuracy": float(res["accuracy"])})
    means = [np.mean([r["val_accuracy"] for r in rows if r["recipe"] == i])
             for i in range(len(grid))]
    best = int(np.argmax(means))   # first of the best
    for r in rows:
        r["chosen"] = r.pop("recipe") == best
    return grid[best], rows
