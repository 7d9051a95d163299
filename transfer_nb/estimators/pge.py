r"""PGE: Principal Gradient Expectation ("Transferability Estimation Based On
Principal Gradient Expectation", Qi et al., arXiv 2211.16299).

No official code is public.  This is our reading of the paper's algorithm,
and every choice the paper leaves open is a documented default:

1. **Shared weights.**  Source and target tasks are scored with the *same*
   network and the *same* weights :math:`\theta_r` at restart ``r``, so their
   gradients live in one space and are comparable.
2. **Restart scheme.**  For each of ``restarts`` restarts the weights are set
   afresh: ``init="reinit"`` (default) re-initialises every module that has
   ``reset_parameters()`` with seed ``seed + r`` (the paper's
   "restart" of a randomly initialised network); ``init="head"`` only the last
   such module (keep a pretrained body, restart the head); ``init="perturb"``
   adds Gaussian noise of relative size ``noise`` (times each tensor's RMS)
   to the given weights; ``init="given"`` keeps the given weights (restarts then
   differ only by batch order, which matters only with ``max_batches``).
   The model's own weights and mode are restored afterwards.
3. **Batch gradients.**  For every batch ``b`` of a task the gradient
   :math:`g_{r,b} = \nabla_\theta \ell(\mathrm{model}(x_b), y_b)` of the loss
   w.r.t. the selected parameters (default: all that require grad) is taken at
   :math:`\theta_r`, without any update of the weights ("weight unit" = the
   flattened parameter vector).  The model is in eval mode (deterministic
   dropout / batch norm) unless ``train_mode=True``.
4. **Expectation.**  The batch gradients are averaged, weighted by batch size
   (equal to the plain average for equal batches, and to the full-data
   gradient when every batch is used): :math:`G_r = \mathbb E_b[g_{r,b}]`.
5. **Principal gradient and distance.**  ``reduce="expectation"`` (default,
   the abstract's wording: "take the average of all the gradients to get the
   expectation ... distance of normalized principal gradients"): the principal
   gradient is :math:`\bar G = \frac1R\sum_r G_r`, normalised to unit L2
   norm, and PGE :math:`= \|\bar G_s/\|\bar G_s\| - \bar G_t/\|\bar G_t\|\|_2`.
   ``reduce="mean_distance"``: each :math:`G_r` is normalised and the
   distances are averaged over restarts.

PGE is a *distance* in ``[0, 2]``: **lower = more transferable** (the opposite
sign convention to the other estimators).
"""
from __future__ import annotations

import copy

import numpy as np

from transfer_nb._validation import check_scalar, plain, to_numpy

__all__ = ["pge", "pge_distance"]

_REDUCE = ("expectation", "mean_distance")
_INIT = ("reinit", "head", "perturb", "given")


def _as_grad_array(g, name: str) -> np.ndarray:
    a = to_numpy(g, name)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {a.dtype}; expected real gradients.")
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (1, 2, 3):
        raise ValueError(
            f"{name} must have shape (p,), (restarts, p) or (restarts, batches, p); "
            f"got shape {a.shape}.")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); expected gradients.")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf; expected finite gradients "
                         "(check the loss for overflow).")
    return a


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if (norm == 0).any():
        raise ValueError(f"{name}: the expected gradient is exactly zero, so it has no "
                         "direction; expected a loss that depends on the parameters.")
    return v / norm


def pge_distance(grads_a, grads_b, reduce: str = "expectation") -> float:
    r"""PGE distance between two tasks' gradients.

    Parameters
    ----------
    grads_a, grads_b : array-like of shape (p,), (R, p) or (R, B, p)
        Gradients of task a and task b w.r.t. the same ``p`` parameters: one
        expected gradient, one per restart, or one per restart and batch.
    reduce : {"expectation", "mean_distance"}, default "expectation"
        ``"expectation"``: average over every leading axis, normalise to unit
        norm, return :math:`\|\hat g_a - \hat g_b\|_2`.  ``"mean_distance"``:
        average over batches within each restart, normalise each restart's
        gradient, average the per-restart distances (needs the same number of
        restarts ``R`` on both sides).

    Returns
    -------
    float
        A distance in ``[0, 2]`` (0: same direction; lower = more transferable).

    Raises
    ------
    ValueError
        On mismatched parameter counts, non-finite or zero gradients, or an
        unknown ``reduce``.
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}; got {reduce!r}.")
    a = _as_grad_array(grads_a, "grads_a")
    b = _as_grad_array(grads_b, "grads_b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"grads_a has {a.shape[-1]} parameters but grads_b has {b.shape[-1]}; expected "
            "gradients w.r.t. the same parameters.")
    if reduce == "expectation":
        ga = _unit(a.reshape(-1, a.shape[-1]).mean(axis=0), "grads_a")
        gb = _unit(b.reshape(-1, b.shape[-1]).mean(axis=0), "grads_b")
        return float(np.linalg.norm(ga - gb))
    if a.ndim == 1 or b.ndim == 1:
        raise ValueError("reduce='mean_distance' needs per-restart gradients of shape "
                         "(R, p) or (R, B, p); got a 1-D array.")
    ra = a.mean(axis=1) if a.ndim == 3 else a
    rb = b.mean(axis=1) if b.ndim == 3 else b
    if ra.shape[0] != rb.shape[0]:
        raise ValueError(f"grads_a has {ra.shape[0]} restarts but grads_b has "
                         f"{rb.shape[0]}; expected the same restarts on both sides.")
    d = np.linalg.norm(_unit(ra, "grads_a") - _unit(rb, "grads_b"), axis=-1)
    return float(d.mean())


# --------------------------------------------------------------------------- #
# torch part
# --------------------------------------------------------------------------- #
def _make_loader(data, batch_size: int, generator, name: str):
    import torch
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data, Dataset):
        X, y = data
        X = torch.as_tensor(to_numpy(X, f"{name}[0]")).float() if not torch.is_tensor(X) else X
        y = torch.as_tensor(to_numpy(y, f"{name}[1]")) if not torch.is_tensor(y) else y
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: inputs have {X.shape[0]} rows but targets have "
                             f"{y.shape[0]}; expected one target per input.")
        data = TensorDataset(X, y)
    if not isinstance(data, Dataset):
        raise ValueError(
            f"{name} must be a torch Dataset, a DataLoader or a tuple (inputs, targets); "
            f"got {type(data).__name__}.")
    if len(data) == 0:
        raise ValueError(f"{name} is empty; expected at least one example.")
    return DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)


def _expected_gradient(model, loss_fn, loader, params, device, max_batches):
    import torch

    total = None
    count = 0
    for b, batch in enumerate(loader):
        if max_batches is not None and b >= max_batches:
            break
        x, y = batch[0], batch[1]
        x = x.to(device)
        y = y.to(device) if torch.is_tensor(y) else y
        loss = loss_fn(model(x), y)
        if loss.dim() != 0:
            raise ValueError("loss_fn must return a scalar (mean) loss; got shape "
                             f"{tuple(loss.shape)}.")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params)]).detach().double().cpu()
        m = int(x.shape[0])
        total = flat * m if total is None else total + flat * m
        count += m
    if count == 0:
        raise ValueError("no batch was processed; expected a non-empty data set and "
                         "max_batches >= 1.")
    return (total / count).numpy()


def _restart_weights(model, init: str, initial_state, gen_seed: int, noise: float):
    import torch

    model.load_state_dict(initial_state)
    if init == "given":
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(gen_seed)
        if init in ("reinit", "head"):
            mods = [m for m in model.modules()
                    if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
            if not mods:
                raise ValueError(f"init={init!r}: the model has no module with "
                                 "reset_parameters(); use init='perturb' or 'given'.")
            for m in (mods if init == "reinit" else mods[-1:]):
                m.reset_parameters()
        else:  # perturb
            with torch.no_grad():
                for p in model.parameters():
                    if not p.is_floating_point():
                        continue
                    scale = p.detach().pow(2).mean().sqrt()
                    scale = scale if scale > 0 else torch.ones_like(scale)
                    p.add_(torch.randn_like(p) * noise * scale)


def pge(model, loss_fn, source_data, target_data, restarts: int = 5, batch_size: int = 64,
        max_batches: int | None = None, init: str = "reinit", noise: float = 0.01,
        params=None, seed: int = 0, reduce: str = "expectation", train_mode: bool = False,
        device=None, progress: bool = True, return_details: bool = False):
    r"""Principal Gradient Expectation distance between a source and a target task.

    See the module docstring for the algorithm (our reading of arXiv 2211.16299;
    no official code is public).  **Lower = more transferable.**

    Parameters
    ----------
    model : torch.nn.Module
        One network used for both tasks; its output must suit ``loss_fn`` on both
        (e.g. a head with ``max(K_source, K_target)`` logits).  Its weights and
        train/eval mode are restored on return.
    loss_fn : callable
        ``loss_fn(output, target) -> scalar tensor`` (e.g.
        ``torch.nn.functional.cross_entropy``).
    source_data, target_data : Dataset, DataLoader or tuple (inputs, targets)
        The two tasks.  Arrays are converted to tensors (inputs float32); targets
        are passed to ``loss_fn`` unchanged.  A DataLoader is used as given.
    restarts : int, default 5
        Number of restarts (fresh weights per restart, see ``init``).
    batch_size : int, default 64
        Batch size when a Dataset or tuple is given (shuffled per restart with
        seed ``seed + r``).
    max_batches : int, optional
        Use at most this many batches per task and restart (default: all).
    init : {"reinit", "head", "perturb", "given"}, default "reinit"
        How the weights are set at each restart (see the module docstring).
    noise : float, default 0.01
        Relative noise for ``init="perturb"``.
    params : iterable of str, optional
        Names (from ``model.named_parameters()``) of the parameters whose gradient
        is used; default all that require grad.
    seed : int, default 0
        Restart ``r`` uses seed ``seed + r`` (global RNG state is not touched).
    reduce : {"expectation", "mean_distance"}, default "expectation"
        See :func:`pge_distance`.
    train_mode : bool, default False
        Compute gradients in train mode (dropout / batch-norm batch statistics).
    device : str or torch.device, optional
        Where to compute; default the model's device.
    progress : bool, default True
        Show a ``tqdm`` progress bar over restarts.
    return_details : bool, default False
        Return a dict instead of the distance.

    Returns
    -------
    float or dict
        The distance, or ``{"distance", "per_restart_distance",
        "source_gradient", "target_gradient", "source_gradients",
        "target_gradients", "param_names"}`` where ``*_gradient`` are the unit
        principal gradients and ``*_gradients`` the (R, p) per-restart expected
        gradients.

    Raises
    ------
    ValueError
        On bad arguments or data (see messages).
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if not callable(loss_fn):
        raise ValueError("loss_fn must be callable as loss_fn(output, target).")
    restarts = check_scalar(restarts, "restarts", int, min_val=1)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    if max_batches is not None:
        try:
            max_batches = check_scalar(max_batches, "max_batches", int, min_val=1)
        except ValueError:
            raise ValueError("max_batches must be None or an integer >= 1, got "
                             f"{plain(max_batches)!r}") from None
    seed = check_scalar(seed, "seed", int)
    if init not in _INIT:
        raise ValueError(f"init must be one of {_INIT}; got {init!r}.")
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}; got {reduce!r}.")
    if init == "perturb":
        noise = check_scalar(noise, "noise", float, min_val=0, include_boundaries="neither")

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if params is not None:
        wanted = [params] if isinstance(params, str) else list(params)
        lookup = dict(model.named_parameters())
        missing = [w for w in wanted if w not in lookup]
        if missing:
            raise ValueError(f"params {plain(missing)} are not parameters of the model; expected "
                             f"names from model.named_parameters(), e.g. {list(lookup)[:3]}.")
        named = [(w, lookup[w]) for w in wanted]
    if not named:
        raise ValueError("the model has no parameters that require grad; expected at "
                         "least one trainable parameter.")
    names = [n for n, _ in named]

    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    initial_state = copy.deepcopy(model.state_dict())
    was_training = model.training
    original_device = next(iter(model.parameters())).device
    model.to(device)
    model.train(train_mode)

    iterator = range(restarts)
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="PGE restarts", leave=False)
    gs, gt = [], []
    try:
        for r in iterator:
            _restart_weights(model, init, initial_state, seed + r, float(noise))
            lookup = dict(model.named_parameters())
            plist = [lookup[n] for n in names]
            for data, out, tag in ((source_data, gs, "source_data"),
                                   (target_data, gt, "target_data")):
                gen = torch.Generator().manual_seed(seed + r)
                loader = _make_loader(data, batch_size, gen, tag)
                out.append(_expected_gradient(model, loss_fn, loader, plist, device,
                                              max_batches))
    finally:
        model.load_state_dict(initial_state)
        model.to(original_device)
        model.train(was_training)

    Gs, Gt = np.stack(gs), np.stack(gt)
    dist = pge_distance(Gs, Gt, reduce=reduce)
    if not return_details:
        return dist
    per = np.linalg.norm(_unit(Gs, "source") - _unit(Gt, "target"), axis=-1)
    return {
        "distance": dist,
        "per_restart_distance": per,
        "source_gradient": _unit(Gs.mean(axis=0), "source"),
        "target_gradient": _unit(Gt.mean(axis=0), "target"),
        "source_gradients": Gs,
        "target_gradients": Gt,
        "param_names": names,
    }
