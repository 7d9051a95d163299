"""The one training loop of the project, and the one evaluation loop.

:func:`fit` trains source models (:func:`transfer_nb.models.train_source`), fine-tunes
(:func:`transfer_nb.training.transfer.fine_tune`) and adversarially trains (its ``perturb`` hook);
:func:`evaluate` and :func:`predict` run a model in eval mode without gradients.

Everything is deterministic given ``seed`` on the CPU: shuffling uses a local
``torch.Generator`` and the global RNG (dropout, random attack starts) is seeded inside
:func:`fit` and restored for the caller afterwards.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from transfer_nb._validation import check_scalar
from transfer_nb.training.inputs import (as_dataset, batch_targets, check_callable,
                                         check_choice, check_loss, fork_devices, loss_value,
                                         make_loader, model_device, resolve_device,
                                         split_batch)

__all__ = ["resolve_device", "as_dataset", "fit", "evaluate", "predict",
           "recalibrate_batchnorm"]

_OPTIMIZERS = ("sgd", "adam")
_SCHEDULES = ("cosine", "constant")
_METRICS = ("accuracy", "mse", "loss")
_BN_MODES = ("train", "frozen")


# --------------------------------------------------------------------- helpers
def _batchnorms(model: nn.Module, exclude=()) -> list[nn.Module]:
    exclude = set(exclude)
    return [m for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and n not in exclude]


@contextlib.contextmanager
def _kept_modes(model: nn.Module):
    """Restore every sub-module's train/eval mode on exit (a BatchNorm layer deliberately
    left in eval mode stays so; ``model.train(was_training)`` would flip it)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    model.train()
    for m in frozen:
        m.eval()


def _optimizer_groups(model: nn.Module, param_groups, lr: float) -> list[dict]:
    """``param_groups`` with absolute ``lr``; unlisted trainable parameters at ``lr``."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if param_groups is None:
        return [{"params": trainable, "lr": lr}]
    if not isinstance(param_groups, (list, tuple)):
        raise ValueError("param_groups must be a list of dicts {'params': [...], 'lr_mult': float}, "
                         f"got {type(param_groups).__name__}")
    seen: set[int] = set()
    groups = []
    for i, g in enumerate(param_groups):
        if not isinstance(g, dict) or "params" not in g:
            raise ValueError(f"param_groups[{i}] must be a dict with a 'params' entry, got "
                             f"{type(g).__name__}")
        params = list(g["params"])
        if not all(isinstance(p, torch.Tensor) for p in params):
            raise ValueError(f"param_groups[{i}]['params'] must hold parameters (tensors)")
        if any(id(p) in seen for p in params):
            raise ValueError(f"param_groups[{i}] repeats a parameter of an earlier group; "
                             "each parameter may be in one group only")
        seen.update(id(p) for p in params)
        mult = check_scalar(g.get("lr_mult", 1.0), f"param_groups[{i}]['lr_mult']", float,
                            min_val=0)
        extra = {k: v for k, v in g.items() if k not in ("params", "lr_mult", "lr")}
        groups.append({**extra, "params": params, "lr": lr * mult})
    rest = [p for p in trainable if id(p) not in seen]
    return ([{"params": rest, "lr": lr}] if rest else []) + groups


# ------------------------------------------------------------------------- fit
def fit(model: nn.Module, data, *, epochs: int = 1, steps: int | None = None, lr: float = 0.01,
        batch_size: int = 32, optimizer: str = "sgd", momentum: float = 0.9,
        nesterov: bool = False, weight_decay: float = 0.0, schedule: str = "cosine",
        param_groups: list | None = None, loss="cross_entropy",
        regularizer: Callable | None = None, perturb: Callable | None = None,
        transform: Callable | None = None, target_transform: Callable | None = None,
        bn: str = "train", bn_exclude=(), seed: int = 0, device=None,
        progress: bool = False, desc: str | None = None) -> dict:
    """Train ``model`` in place: the project's only training loop.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place and moved to ``device``; left in the train/eval mode it had.
    data : Dataset of (x, y), DataLoader or tuple (X, y) of tensors / arrays
        A ``DataLoader`` contributes its data set only: batching and shuffling are
        ``batch_size`` and ``seed``'s.
    epochs : int
        Passes over the data (>= 0; 0 trains nothing).  Ignored when ``steps`` is given.
    steps : int, optional
        Number of optimisation steps (batches), overriding ``epochs``; the data are
        cycled, reshuffled each pass.
    lr : float
        Base learning rate (> 0).
    batch_size : int
        Training batch size; the last batch of an epoch may be smaller.
    optimizer : {"sgd", "adam"}
        SGD with ``momentum`` (and ``nesterov``) or Adam; both with ``weight_decay``
        (L2 added to the gradient).
    momentum : float
        SGD momentum in [0, 1).
    nesterov : bool
        Nesterov momentum (SGD with ``momentum > 0`` only).
    weight_decay : float
        >= 0.
    schedule : {"cosine", "constant"}
        ``"cosine"``: the learning rate decays as ``0.5 (1 + cos(pi t / T))`` over all
        ``T`` steps; ``"constant"`` keeps it.
    param_groups : list of dict, optional
        ``{"params": [...], "lr_mult": float, ...}``: those parameters train at
        ``lr * lr_mult`` (other keys, e.g. ``weight_decay``, go to the optimiser).  Trainable
        parameters in no group train at ``lr``; ``requires_grad=False`` ones stay frozen.
    loss : "cross_entropy", "mse" or callable(outputs, targets) -> scalar tensor
        ``"cross_entropy"`` needs integer labels; ``"mse"`` float targets of the outputs'
        shape ``(n, m)`` (``(n,)`` for a single output).
    regularizer : callable(model) -> scalar tensor, optional
        Added to the loss at every step (e.g. a group-lasso penalty).
    perturb : callable(model, x, y) -> x_adv, optional
        Applied to every (transformed) batch with gradients enabled, e.g. a PGD attack for
        adversarial training; the model's train mode is restored after it.  It takes and
        returns model input (after ``transform``): a hook that attacks in pixel space
        undoes the normalisation itself (``transfer_nb.adversarial.PGDPerturbation``).
    transform : callable(x) -> x, optional
        Applied to every batch on ``device`` before ``perturb`` (normalisation,
        augmentation).
    target_transform : callable(y) -> y, optional
        Applied to every batch of targets as the data yield them (e.g. a label map).
    bn : {"train", "frozen"}
        ``"frozen"`` keeps BatchNorm layers in eval mode (pretrained running statistics
        kept; their affine parameters still train), except those named in ``bn_exclude``.
    bn_exclude : iterable of str
        Module names of BatchNorm layers that train normally under ``bn="frozen"``
        (e.g. re-initialised ones).
    seed : int
        Seeds the shuffling (a local ``torch.Generator``) and the global RNG during
        training (dropout, random attack starts); the caller's global RNG state is
        restored afterwards.
    device : None, "auto", str or torch.device
        See :func:`resolve_device`.
    progress : bool
        Show a ``tqdm.auto`` bar over steps.
    desc : str, optional
        The bar's label.

    Returns
    -------
    dict
        ``loss_history`` (mean data loss of each epoch, the regulariser excluded),
        ``final_loss`` (data loss of the last step; NaN without steps), ``steps``
        (optimisation steps taken), ``accuracy_history`` (running training accuracy
        per epoch, classification losses only) and ``train_accuracy`` (running accuracy over the
        last epoch with ``loss="cross_entropy"``, else NaN).

    Raises
    ------
    ValueError
        Bad hyper-parameters (the message names the parameter), empty data, an
        unavailable device or targets that do not fit the loss.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = check_scalar(epochs, "epochs", int, min_val=0)
    if steps is not None:
        steps = check_scalar(steps, "steps", int, min_val=0)
    lr = check_scalar(lr, "lr", float, min_val=0, include_boundaries="neither")
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    optimizer = check_choice(optimizer, "optimizer", _OPTIMIZERS)
    momentum = check_scalar(momentum, "momentum", float, min_val=0, max_val=1,
                            include_boundaries="left")
    weight_decay = check_scalar(weight_decay, "weight_decay", float, min_val=0)
    schedule = check_choice(schedule, "schedule", _SCHEDULES)
    bn = check_choice(bn, "bn", _BN_MODES)
    loss = check_loss(loss)
    seed = check_scalar(seed, "seed", int, min_val=0)
    check_callable(regularizer, "regularizer", "(model) -> scalar tensor")
    check_callable(perturb, "perturb", "(model, x, y) -> x_adv")
    check_callable(transform, "transform", "(x) -> x")
    check_callable(target_transform, "target_transform", "(y) -> y")
    if isinstance(bn_exclude, str):
        bn_exclude = (bn_exclude,)
    ds = as_dataset(data, "data")
    if len(ds) == 0:
        raise ValueError("data is empty; expected at least one (input, target) pair")
    device = resolve_device(device)

    model.to(device)
    groups = _optimizer_groups(model, param_groups, lr)
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum,
                              nesterov=bool(nesterov) and momentum > 0, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    loader = make_loader(ds, batch_size, shuffle=True, generator=gen)
    total = steps if steps is not None else epochs * len(loader)
    if schedule == "cosine":
        denom = max(total, 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, denom) / denom)))
    else:
        sched = None
    frozen = _batchnorms(model, bn_exclude) if bn == "frozen" else []
    is_ce = isinstance(loss, str) and loss == "cross_entropy"

    from tqdm.auto import tqdm
    name = getattr(model, "transfer_nb_name", type(model).__name__)
    bar = tqdm(total=total, desc=desc or f"fit {name}", disable=not progress, leave=False)
    history: list[float] = []
    acc_history: list[float] = []
    final_loss = float("nan")
    train_acc = float("nan")
    step = 0
    try:
        with _kept_modes(model), torch.random.fork_rng(devices=fork_devices(device)):
            torch.manual_seed(seed)
            while step < total:
                _train_mode(model, frozen)
                tot = 0.0
                correct = count = 0
                for batch in loader:
                    x, y = split_batch(batch)
                    x = x.to(device)
                    y = batch_targets(y, loss, device, target_transform)
                    if transform is not None:
                        x = transform(x)
                    if perturb is not None:
                        # the attack may switch to eval mode or leave gradients behind
                        with torch.enable_grad():
                            x = perturb(model, x, y).detach()
                        _train_mode(model, frozen)
                    opt.zero_grad(set_to_none=True)
                    outputs = model(x)
                    value = loss_value(loss, outputs, y)
                    objective = value
                    if regularizer is not None:
                        reg = regularizer(model)
                        if not isinstance(reg, torch.Tensor) or reg.ndim != 0:
                            raise ValueError("regularizer must return a scalar tensor, got "
                                             f"{type(reg).__name__}")
                        objective = value + reg
                    objective.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    final_loss = float(value.detach())
                    m = int(x.shape[0])
                    tot += final_loss * m
                    count += m
                    if is_ce:
                        correct += int((outputs.detach().argmax(1) == y).sum())
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{final_loss:.3f}", refresh=False)
                    if step >= total:
                        break
                history.append(tot / count)
                if is_ce:
                    train_acc = correct / count
                    acc_history.append(train_acc)
    finally:
        bar.close()
    return {"loss_history": history, "final_loss": final_loss, "steps": step,
            "train_accuracy": train_acc, "accuracy_history": acc_history}


# -------------------------------------------------------------------- evaluate
def _outputs(model: nn.Module, data, *, batch_size: int, device, transform, name: str = "data",
             inputs_only: bool = False, targets: Callable | None = None,
             perturb: Callable | None = None):
    """Yield ``(outputs, y)`` per batch in eval mode without gradients; restores the modes.

    ``targets(y, device)`` prepares each batch's targets (``y`` as the data yield it
    otherwise); ``perturb(model, x, y)`` runs with gradients on the transformed batch.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    check_callable(transform, "transform", "(x) -> x")
    check_callable(perturb, "perturb", "(model, x, y) -> x_adv")
    ds = as_dataset(data, name, inputs_only=inputs_only)
    if len(ds) == 0:
        raise ValueError(f"{name} is empty; expected at least one example")
    if device is None:
        device = model_device(model)
    else:
        device = resolve_device(device)
        model.to(device)
    with _kept_modes(model):
        model.eval()
        for batch in make_loader(ds, batch_size, shuffle=False):
            x, y = split_batch(batch)
            x = x.to(device)
            if targets is not None:
                y = targets(y, device)
            if transform is not None:
                x = transform(x)
            if perturb is not None:
                with torch.enable_grad():
                    x = perturb(model, x, y).detach()
                model.eval()
            with torch.no_grad():
                out = model(x)
            yield out, y


def evaluate(model: nn.Module, data, *, metric: str = "accuracy", batch_size: int = 256,
             device=None, transform: Callable | None = None,
             target_transform: Callable | None = None, loss="cross_entropy",
             perturb: Callable | None = None) -> float:
    """Score ``model`` on ``data`` in eval mode, without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        Left in the train/eval mode it had.
    data : Dataset of (x, y), DataLoader or tuple (X, y)
    metric : {"accuracy", "mse", "loss"}
        ``"accuracy"``: fraction of ``argmax`` predictions equal to the integer labels
        (labels outside the outputs, e.g. ``-1``, count as errors); ``"mse"``: mean
        squared error over all output entries; ``"loss"``: mean of ``loss`` per example.
    batch_size : int
    device : None, str or torch.device
        ``None``: where the model's parameters are; otherwise the model is moved there.
    transform : callable(x) -> x, optional
        Applied to every batch on the device (e.g. normalisation).
    target_transform : callable(y) -> y, optional
        Applied to every batch of targets (e.g. a label map).
    loss : "cross_entropy", "mse" or callable
        The loss of ``metric="loss"``.
    perturb : callable(model, x, y) -> x_adv, optional
        Applied (with gradients, model in eval mode) to every transformed batch before
        scoring, e.g. a PGD attack for robust accuracy.

    Returns
    -------
    float
    """
    metric = check_choice(metric, "metric", _METRICS)
    loss = check_loss(loss)
    check_callable(target_transform, "target_transform", "(y) -> y")
    kind = {"accuracy": "cross_entropy", "mse": "mse", "loss": loss}[metric]
    total = 0.0
    count = 0

    def targets(y, device):
        return batch_targets(y, kind, device, target_transform, what=f"metric={metric!r}")

    batches = _outputs(model, data, batch_size=batch_size, device=device, transform=transform,
                       targets=targets, perturb=perturb)
    with contextlib.closing(batches):  # restores the model's modes even on an error
        for outputs, y in batches:
            total, count = _accumulate(metric, loss, outputs, y, total, count)
    return total / count


def _accumulate(metric, loss, outputs, y, total, count):
    m = int(outputs.shape[0])
    if metric == "accuracy":
        if outputs.ndim != 2:
            raise ValueError("metric='accuracy' needs outputs of shape (n, classes), got "
                             f"{tuple(outputs.shape)}")
        return total + int((outputs.argmax(1) == y).sum()), count + m
    if metric == "mse":
        err = loss_value("mse", outputs, y)  # validates the shapes
        return total + float(err) * outputs.numel(), count + outputs.numel()
    return total + float(loss_value(loss, outputs, y)) * m, count + m


def predict(model: nn.Module, data, *, batch_size: int = 256, device=None,
            transform: Callable | None = None) -> np.ndarray:
    """The model's outputs on ``data`` (eval mode, no gradients) as one numpy array.

    Parameters
    ----------
    model : torch.nn.Module
        Left in the train/eval mode it had.
    data : Dataset, DataLoader, tuple (X, y) or an array / tensor of inputs
        Targets, if any, are ignored.
    batch_size : int
    device : None, str or torch.device
        ``None``: where the model's parameters are; otherwise the model is moved there.
    transform : callable(x) -> x, optional
        Applied to every batch on the device.

    Returns
    -------
    numpy.ndarray of shape (n, ...)
        Outputs in data order.
    """
    batches = _outputs(model, data, batch_size=batch_size, device=device, transform=transform,
                       inputs_only=True)
    with contextlib.closing(batches):
        outs = [o.detach().float().cpu() for o, _ in batches]
    return torch.cat(outs).numpy()


def recalibrate_batchnorm(model: nn.Module, data, *, batch_size: int = 256, device=None,
                          transform: Callable | None = None) -> None:
    """Recompute BatchNorm running statistics over one pass of ``data``.

    With momentum 0.1 the running statistics still weigh their initial values (mean 0,
    var 1) by ``0.9**steps``; after a short schedule (tens of steps) that mismatch alone
    can push eval-mode accuracy to chance.  A cumulative average (``momentum=None``) of
    the batch statistics over clean training images makes eval mode match the trained
    weights (exact when ``batch_size`` covers the data).  The model keeps its train/eval
    mode; without BatchNorm layers nothing happens.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bns = _batchnorms(model)
    if not bns:
        return
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    ds = as_dataset(data, "data", inputs_only=True)
    device = model_device(model) if device is None else resolve_device(device)
    model.to(device)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    try:
        with _kept_modes(model), torch.no_grad():
            model.train()
            for batch in make_loader(ds, batch_size, shuffle=False):
                x = split_batch(batch)[0].to(device)
                model(transform(x) if transform is not None else x)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
