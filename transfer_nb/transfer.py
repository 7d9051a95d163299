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
import math
from typing import Any

import numpy as np

from transfer_nb._validation import as_features, to_numpy

__all__ = ["linear_probe", "fine_tune", "replace_head", "reinit_after_layer",
           "layers_after", "evaluate"]


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
        Labels of any values (ints, strings); test labels never seen in training
        count as errors.
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
    import warnings

    Ztr = as_features(Z_train, "Z_train")
    Zte = as_features(Z_test, "Z_test")
    ytr = _as_labels(y_train, len(Ztr), "y_train")
    yte = _as_labels(y_test, len(Zte), "y_test")
    if Ztr.shape[1] != Zte.shape[1]:
        raise ValueError(f"Z_train has {Ztr.shape[1]} features but Z_test has {Zte.shape[1]}")
    if not (isinstance(C, (int, float)) and C > 0 and math.isfinite(C)):
        raise ValueError(f"C must be a positive finite number, got {C!r}")
    classes = np.unique(ytr)
    if len(classes) < 2:
        raise ValueError(f"y_train must contain at least 2 classes, got {len(classes)}")
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


# ----------------------------------------------------------------- model surgery
def _get_module(model, name: str):
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"model has no module named {name!r}") from exc


def _set_module(model, name: str, new) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _last_linear_name(model) -> str | None:
    import torch.nn as nn
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return last


def replace_head(model, num_classes: int, head: str = "auto", generator=None) -> str:
    """Replace the classification head of ``model`` (in place) by a new ``Linear``.

    ``head="auto"``: timm models use ``reset_classifier(num_classes)``; other models
    get their last ``nn.Linear`` replaced.  ``head="<module name>"`` replaces that
    ``nn.Linear``.  Returns the name of the head module.  The new head is initialised
    from ``generator`` (a seeded ``torch.Generator``) when given.
    """
    import torch
    import torch.nn as nn

    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    num_classes = int(num_classes)
    if head == "auto":
        if hasattr(model, "reset_classifier") and hasattr(model, "get_classifier"):
            model.reset_classifier(num_classes)
            clf = model.get_classifier()
            name = next((n for n, m in model.named_modules() if m is clf), None)
            if name is None or not isinstance(clf, nn.Linear):
                raise ValueError("reset_classifier did not produce an nn.Linear head")
        else:
            name = _last_linear_name(model)
            if name is None:
                raise ValueError("model has no nn.Linear layer to use as a head; "
                                 "pass head='<module name>'")
            old = _get_module(model, name)
            _set_module(model, name, nn.Linear(old.in_features, num_classes,
                                               bias=old.bias is not None))
    else:
        old = _get_module(model, head)
        if not isinstance(old, nn.Linear):
            raise ValueError(f"head {head!r} is a {type(old).__name__}, expected nn.Linear")
        name = head
        _set_module(model, name, nn.Linear(old.in_features, num_classes,
                                           bias=old.bias is not None))
    new = _get_module(model, name)
    with torch.no_grad():
        bound = 1.0 / math.sqrt(new.in_features)
        new.weight.copy_(torch.empty_like(new.weight).uniform_(-bound, bound, generator=generator)
                         if generator is not None else new.weight)
        if new.bias is not None:
            new.bias.zero_()
    return name


def layers_after(model, layer: str) -> list[str]:
    """Names of the parameterised leaf modules that come after ``layer`` in module order.

    "After" is the registration order of ``named_modules`` (the forward order for
    sequential backbones such as EfficientNet or ResNet); ``layer`` itself, its
    children and its ancestors are excluded.
    """
    names = [n for n, _ in model.named_modules()]
    if layer not in names:
        raise ValueError(f"model has no module named {layer!r}; "
                         f"some names: {[n for n in names if n][:12]}")
    idx = names.index(layer)
    out = []
    for name, module in list(model.named_modules())[idx + 1:]:
        if name.startswith(layer + "."):
            continue  # inside the kept layer
        has_own = any(True for _ in module.parameters(recurse=False)) or \
            any(True for _ in module.buffers(recurse=False))
        if has_own and hasattr(module, "reset_parameters"):
            out.append(name)
    return out


def reinit_after_layer(model, layer: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Re-initialise (in place) every layer after ``layer``; returns their names.

    Uses each module's own ``reset_parameters`` (PyTorch default initialisation;
    BatchNorm running statistics are reset too).  Seed torch before calling for a
    deterministic result.
    """
    names = [n for n in layers_after(model, layer)
             if not any(n == e or n.startswith(e + ".") for e in exclude)]
    for name in names:
        module = model.get_submodule(name)
        module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return names


# ------------------------------------------------------------------- fine-tuning
def _dataset_of(data, name: str):
    from torch.utils.data import DataLoader, Dataset
    if isinstance(data, DataLoader):
        return data.dataset
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return data
    raise ValueError(f"{name} must be a torch Dataset of (image, label) pairs or a DataLoader, "
                     f"got {type(data).__name__}")


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
    """``"auto"``: the model's ``transfer_nb_normalize`` unless the data are already
    normalised (an ``ImageDataset`` whose ``.normalize`` is not ``"none"``)."""
    if normalize == "auto":
        already = getattr(dataset, "normalize", None)
        if isinstance(already, str) and already not in ("", "none"):
            return "none"
        return getattr(model, "transfer_nb_normalize", None) or "none"
    return "none" if normalize is None else normalize


def _materialize(ds):
    """An in-memory ``ImageDataset`` as a ``TensorDataset`` (one decode, fast batches)."""
    import torch
    from torch.utils.data import TensorDataset
    tensors = getattr(ds, "tensors", None)
    if callable(tensors):
        try:
            X, y = tensors()
            if isinstance(X, torch.Tensor) and len(X) == len(ds):
                return TensorDataset(X, torch.as_tensor(y))
        except Exception:  # pragma: no cover - fall back to item-wise access
            pass
    return ds


def fine_tune(model, train_data, test_data, epochs: int = 5, lr: float = 0.01,
              batch_size: int = 32, seed: int = 0, device=None, progress: bool = True,
              reinit_after: str | None = None, head: str = "auto",
              optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 1e-4,
              head_lr_mult: float = 10.0, normalize: str | None = "auto",
              copy_model: bool = True, freeze_bn_stats: bool = False) -> dict:
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

    Returns
    -------
    dict
        ``accuracy`` (float, test), ``train_loss`` (mean loss per epoch),
        ``train_accuracy`` (last epoch), ``reinitialized`` (names), ``head`` (name),
        ``num_classes``, ``steps``.
    """
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader
    from transfer_nb.preprocessing import normalize_images

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    train_ds = _dataset_of(train_data, "train_data")
    test_ds = _dataset_of(test_data, "test_data")
    if len(train_ds) == 0 or len(test_ds) == 0:
        raise ValueError("train_data and test_data must not be empty")
    y_train = _labels_of(train_ds)
    y_test = _labels_of(test_ds)
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise ValueError(f"train_data must contain at least 2 classes, got {len(classes)}")
    if not np.issubdtype(classes.dtype, np.integer) or int(classes.min()) < 0:
        raise ValueError("fine_tune needs non-negative integer labels, got "
                         f"{classes[:5].tolist()}...")
    # labels -> 0..K-1 (test labels unseen in training can never be predicted)
    lut = {int(c): i for i, c in enumerate(classes)}
    num_classes = len(classes)
    norm = _resolve_normalize(model, normalize, train_ds)
    norm_test = _resolve_normalize(model, normalize, test_ds)
    train_ds, test_ds = _materialize(train_ds), _materialize(test_ds)
    device = torch.device(device) if device is not None else torch.device("cpu")

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = copy.deepcopy(model) if copy_model else model
    reinitialized: list[str] = []
    head_name = replace_head(net, num_classes, head=head, generator=gen)
    if reinit_after is not None:
        torch.manual_seed(seed + 1)
        reinitialized = reinit_after_layer(net, reinit_after, exclude=(head_name,))
    net.to(device)

    head_params = list(net.get_submodule(head_name).parameters())
    head_ids = {id(p) for p in head_params}
    body_params = [p for p in net.parameters() if id(p) not in head_ids]
    for p in net.parameters():
        p.requires_grad_(True)
    groups = [{"params": body_params, "lr": lr},
              {"params": head_params, "lr": lr * head_lr_mult}]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    loader = DataLoader(train_ds, batch_size=int(batch_size), shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(seed), drop_last=False)
    steps = int(epochs) * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps)))
    map_t = torch.full((int(max(int(c) for c in classes)) + 1,), -1, dtype=torch.long)
    for c, i in lut.items():
        if c >= 0:
            map_t[c] = i

    def to_idx(yb):
        yb = torch.as_tensor(yb, dtype=torch.long)
        out = torch.full_like(yb, -1)
        ok = (yb >= 0) & (yb < len(map_t))
        out[ok] = map_t[yb[ok]]
        return out

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"fine-tune {getattr(model, 'transfer_nb_name', type(model).__name__)}",
                   leave=False)
    loss_fn = nn.CrossEntropyLoss()
    train_loss: list[float] = []
    train_acc = float("nan")
    torch.manual_seed(seed)
    frozen_bn = []
    if freeze_bn_stats:
        reset = set(reinitialized)
        frozen_bn = [m for n, m in net.named_modules()
                     if isinstance(m, nn.modules.batchnorm._BatchNorm) and n not in reset]
    for _ in range(int(epochs)):
        net.train()
        for m in frozen_bn:
            m.eval()
        tot, correct, count = 0.0, 0, 0
        for xb, yb in loader:
            xb = normalize_images(xb.float(), norm).to(device)
            t = to_idx(yb).to(device)
            logits = net(xb)
            loss = loss_fn(logits, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(t)
            correct += int((logits.argmax(1) == t).sum())
            count += len(t)
            if bar is not None:
                bar.update(1)
        train_loss.append(tot / count)
        train_acc = correct / count
    if bar is not None:
        bar.close()
    acc = evaluate(net, test_ds, batch_size=max(int(batch_size), 64), device=device,
                   normalize=norm_test, label_map=to_idx)
    return {"accuracy": acc, "train_loss": train_loss, "train_accuracy": train_acc,
            "reinitialized": reinitialized, "head": head_name, "num_classes": num_classes,
            "steps": steps, "model": net if not copy_model else None}


def evaluate(model, data, batch_size: int = 64, device=None, normalize: str | None = "auto",
             label_map=None) -> float:
    """Accuracy of ``model`` (eval mode) on ``data``; labels mapped by ``label_map``."""
    import torch
    from torch.utils.data import DataLoader
    from transfer_nb.preprocessing import normalize_images

    ds = _dataset_of(data, "data")
    norm = _resolve_normalize(model, normalize, ds)
    device = torch.device(device) if device is not None else torch.device("cpu")
    model.eval()
    correct = count = 0
    with torch.no_grad():
        for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0):
            xb = normalize_images(xb.float(), norm).to(device)
            t = label_map(yb) if label_map is not None else torch.as_tensor(yb, dtype=torch.long)
            pred = model(xb).argmax(1).cpu()
            correct += int((pred == t).sum())
            count += len(t)
    return correct / max(count, 1)
