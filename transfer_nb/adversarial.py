"""Adversarial and semi-supervised source training: PGD attacks and pseudo-labels.

Foundations for Deng et al., "Adversarial Training Helps Transfer Learning via Better
Representations" (NeurIPS 2021), and the transfer study it builds on (Salman et al.
2020, "Do Adversarially Robust ImageNet Models Transfer Better?"): a source model is
trained on adversarial examples (PGD inside an L2 or Linf ball of radius ``eps``), on
labelled plus pseudo-labelled data, or both, and then transferred.

* :func:`pgd` -- the projected-gradient-descent attack (Madry et al. 2018).
* :func:`pgd_perturbation` -- the attack as a per-batch hook ``perturb(model, x, y)`` for
  the training loop (``train_source(perturb=...)``, ``training.fit(perturb=...)``); its
  ``cache_key`` attribute puts every attack setting in the trained model's cache key.
* :func:`robust_accuracy` -- accuracy under the attack.
* :func:`pseudo_label`, :func:`pseudo_labeled_dataset`, :func:`semi_supervised_dataset`
  -- confident predictions of a teacher on unlabelled images, and the labelled +
  pseudo-labelled data set a student source model is then trained on (by
  ``train_source``; this module has no training loop).

Pixel space
-----------
Images are float tensors in ``[0, 1]``.  The eps-ball and the clamp to the valid pixel
range live in that space (as in the ``robustness`` library that Salman et al. used:
an L2 eps of 3 means 3 in ``[0, 1]`` pixel units over the whole image).  Models may
expect normalised input (``model.transfer_nb_normalize``, see
:func:`transfer_nb.preprocessing.normalize_images`); the attack applies that
normalisation inside, just before the model, so the caller always passes and gets back
pixel-space images.
"""
from __future__ import annotations

import hashlib
from numbers import Integral, Real
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import preprocessing

__all__ = ["pgd", "pgd_perturbation", "PGDPerturbation", "robust_accuracy", "pseudo_label",
           "pseudo_labeled_dataset", "semi_supervised_dataset", "PseudoLabeledDataset", "NORMS"]

NORMS = ("l2", "linf")

# bump when the attack changes so that models trained with the old one are not reused
_ATTACK_VERSION = 1


# --------------------------------------------------------------------------- validation

def _plain(value):
    """Numpy / 0-d torch scalars as plain Python values for error messages."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.ndim == 0):
        return value.item()
    return value


def _check_real(value, name: str) -> float:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _check_eps(eps) -> float:
    v = _check_real(eps, "eps")
    if v < 0:
        raise ValueError(f"eps must be >= 0 (the radius of the perturbation ball), got {_plain(eps)!r}")
    return v


def _check_norm(norm) -> str:
    if not isinstance(norm, str) or norm.lower() not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}, got {_plain(norm)!r}")
    return norm.lower()


def _check_steps(steps, eps: float) -> int:
    steps = _plain(steps)
    if isinstance(steps, bool) or not isinstance(steps, Integral):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if steps < (0 if eps == 0 else 1):
        raise ValueError(f"steps must be an integer >= 1 when eps > 0, got {int(steps)!r}")
    return int(steps)


def _check_step_size(step_size) -> float | None:
    if step_size is None:
        return None
    v = _check_real(step_size, "step_size")
    if v <= 0:
        raise ValueError(f"step_size must be > 0 (or None for 2.5 * eps / steps), got {_plain(step_size)!r}")
    return v


def _check_clamp(clamp) -> tuple[float, float] | None:
    if clamp is None:
        return None
    try:
        lo, hi = clamp
    except (TypeError, ValueError):
        raise ValueError(f"clamp must be None or a pair (low, high), got {clamp!r}") from None
    lo, hi = _check_real(lo, "clamp[0]"), _check_real(hi, "clamp[1]")
    if not lo < hi:
        raise ValueError(f"clamp must be (low, high) with low < high, got {(lo, hi)!r}")
    return lo, hi


def _check_threshold(threshold) -> float:
    v = _check_real(threshold, "threshold")
    if not 0 < v <= 1:
        raise ValueError(f"threshold must satisfy 0 < threshold <= 1 (a softmax probability), "
                         f"got {_plain(threshold)!r}")
    return v


def _check_batch_size(batch_size) -> int:
    batch_size = _plain(batch_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_normalize(normalize):
    """Validate ``normalize`` without a model (names are checked against the known ones)."""
    if normalize is None or normalize == "model" or callable(normalize):
        return normalize
    if isinstance(normalize, str):
        preprocessing.get_normalization(normalize)  # raises a ValueError naming the choices
        return normalize
    raise ValueError(f"normalize must be None, 'model', a normalisation name "
                     f"{sorted(preprocessing.NORMALIZATIONS)} or a callable, got {normalize!r}")


def _resolve_normalize(normalize, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The pixel -> model-input map: ``"model"`` reads ``model.transfer_nb_normalize``."""
    normalize = _check_normalize(normalize)
    if normalize == "model":
        normalize = getattr(model, "transfer_nb_normalize", None)
    if normalize is None or normalize == "none":
        return lambda x: x
    if callable(normalize):
        return normalize
    name = normalize
    return lambda x: preprocessing.normalize_images(x, name)


def _describe_callable(obj) -> object:
    if obj is None or isinstance(obj, str):
        return obj
    func = getattr(obj, "__func__", obj)
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__qualname__)}"


# --------------------------------------------------------------------------- model state

class _AttackMode:
    """Context: every sub-module in eval mode and parameters frozen; all restored on exit.

    Modes are saved per sub-module (not ``model.train(was_training)``) so that a model
    whose BatchNorm layers were deliberately left in eval mode (frozen statistics) gets
    exactly that state back.
    """

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.model.eval()
        for p, _ in self.flags:
            p.requires_grad_(False)  # no parameter gradients are needed for the attack
        return self.model

    def __exit__(self, *exc):
        for m, mode in self.modes:
            m.training = mode
        for p, flag in self.flags:
            p.requires_grad_(flag)
        return False


def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _place_model(model: nn.Module, device) -> torch.device:
    """``device=None``: where the model is; otherwise move the model there."""
    if device is None:
        return _model_device(model)
    device = torch.device(device)
    model.to(device)
    return device


# --------------------------------------------------------------------------- PGD

def _per_example_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each example, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.ndim - 1)))


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str,
             clamp: tuple[float, float] | None) -> torch.Tensor:
    """Project onto the eps-ball around ``x``, then onto the pixel range."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        n = _per_example_norm(delta)
        delta = delta * torch.where(n > eps, eps / n.clamp_min(1e-30), torch.ones_like(n))
    x_adv = x + delta
    if clamp is not None:
        # for x inside the box, clamping moves every coordinate towards x, so the
        # result stays inside the ball too (for both norms)
        x_adv = x_adv.clamp(*clamp)
    return x_adv


def _random_start(x: torch.Tensor, eps: float, norm: str, generator) -> torch.Tensor:
    gen_device = generator.device if generator is not None else x.device
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=gen_device, dtype=x.dtype).to(x.device)
        return (2 * u - 1) * eps
    # robustness library: a uniformly random direction, on the sphere of radius eps
    g = torch.randn(x.shape, generator=generator, device=gen_device, dtype=x.dtype).to(x.device)
    return eps * g / _per_example_norm(g).clamp_min(1e-12)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "l2",
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        clamp: tuple[float, float] | None = (0.0, 1.0), loss_fn: Callable | None = None,
        generator: torch.Generator | None = None, normalize="model") -> torch.Tensor:
    """Projected gradient ascent on the loss inside an L2 or Linf ball (Madry et al. 2018).

    Starting from ``x`` (plus a random point of the ball with ``random_start``), take
    ``steps`` steps of size ``step_size`` up the loss -- along the per-example
    L2-normalised gradient for ``norm="l2"``, along its sign for ``norm="linf"`` -- and
    after each step project back onto the ball ``||x_adv - x|| <= eps`` (per example)
    and onto the pixel range ``clamp``.  The last iterate is returned (the
    ``robustness`` library can instead keep the highest-loss iterate; we do not).

    The attack runs with every sub-module in eval mode (BatchNorm uses its running
    statistics and is not updated by the attack) and with the parameters'
    ``requires_grad`` switched off; the gradient with respect to the input is taken
    with :func:`torch.autograd.grad`, so no ``.grad`` of any parameter is touched.
    Modes and ``requires_grad`` flags are restored afterwards, sub-module by
    sub-module.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    x : torch.Tensor, shape (n, ...)
        Clean inputs in pixel space, inside ``clamp`` (a ValueError otherwise: passing
        already-normalised images is the usual mistake).
    y : torch.Tensor, shape (n,)
        Labels (or whatever ``loss_fn`` takes as targets).
    eps : float
        Radius of the ball, >= 0, in pixel units.  ``eps = 0`` returns a copy of ``x``
        (exactly equal) without calling the model.
    norm : {"l2", "linf"}
        The ball: per-example L2 norm over all pixels and channels, or max-abs.
    steps : int
        Number of gradient steps, >= 1 (when ``eps > 0``).
    step_size : float, optional
        Step length; default ``2.5 * eps / steps``, the convention of Madry et al. and
        of the ``robustness`` library (Salman et al. 2020), which lets the iterate
        cross the ball and still reach its boundary with a few steps to spare.
    random_start : bool
        Start at a random point: uniform in the Linf box, or uniformly random direction
        on the L2 sphere of radius ``eps`` (as the ``robustness`` library does).
    clamp : (float, float) or None
        Valid pixel range; ``None`` for no range constraint.
    loss_fn : callable, optional
        ``loss_fn(logits, y) -> scalar`` to ascend; default cross-entropy summed over
        the batch (each example's gradient is then independent of the batch size).
    generator : torch.Generator, optional
        Random source of the random start (its own device; the noise is moved to
        ``x``'s device).  ``None`` uses the global RNG.
    normalize : "model" (default), None, str or callable
        Map from pixel space to the model's input, applied inside the attack only:
        ``"model"`` reads ``model.transfer_nb_normalize`` (no attribute: identity),
        ``None`` is the identity, a name is passed to
        :func:`transfer_nb.preprocessing.normalize_images`, a callable is applied as is.

    Returns
    -------
    torch.Tensor
        Adversarial inputs, same shape, dtype and device as ``x``, detached, in pixel
        space: ``||x_adv - x|| <= eps`` per example and inside ``clamp``.

    Raises
    ------
    ValueError
        Bad ``eps``, ``norm``, ``steps``, ``step_size``, ``clamp`` or ``normalize``;
        ``x`` not floating point, without a batch dimension, outside ``clamp``, or with
        a different number of rows than ``y``.
    """
    eps = _check_eps(eps)
    norm = _check_norm(norm)
    steps = _check_steps(steps, eps)
    step_size = _check_step_size(step_size)
    clamp = _check_clamp(clamp)
    _check_normalize(normalize)
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor of images, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch dimension (n, ...), got shape {tuple(x.shape)}")
    x = x.detach()
    if eps == 0:
        return x.clone()
    y = torch.as_tensor(y, device=x.device)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
    if clamp is not None and x.numel() > 0:
        lo, hi = float(x.min()), float(x.max())
        if lo < clamp[0] - 1e-6 or hi > clamp[1] + 1e-6:
            raise ValueError(f"x has values in [{lo:.4g}, {hi:.4g}], outside clamp={clamp}; pass images "
                             "in pixel space and let normalize= map them to the model's input")
    if step_size is None:
        step_size = 2.5 * eps / steps
    if loss_fn is None:
        def loss_fn(logits, target):
            return F.cross_entropy(logits, target, reduction="sum")
    transform = _resolve_normalize(normalize, model)

    with _AttackMode(model):
        x_adv = x.clone()
        if random_start:
            x_adv = _project(x + _random_start(x, eps, norm, generator), x, eps, norm, clamp)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(model(transform(x_adv)), y)
                if loss.ndim != 0:
                    raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
                (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                if norm == "linf":
                    direction = grad.sign()
                else:  # zero gradient: zero step
                    direction = grad / _per_example_norm(grad).clamp_min(1e-12)
                x_adv = _project(x_adv.detach() + step_size * direction, x, eps, norm, clamp)
    return x_adv.detach()


class PGDPerturbation:
    """A PGD attack with fixed settings, as a per-batch hook ``perturb(model, x, y)``.

    Build with :func:`pgd_perturbation`.  ``cache_key`` (read by
    :func:`transfer_nb.models.source.describe_perturb`) and :meth:`describe` give every
    setting, so a source model trained with it is cached under those settings.
    ``eps`` is an attribute: pass ``adversarial_eps=perturb.eps`` to ``train_source``.
    With ``seed`` set, the random starts come from a private generator seeded once at
    construction (the same sequence of batches gives the same attacks); ``seed=None``
    uses the global RNG (``train_source`` seeds it).
    """

    def __init__(self, eps: float, norm: str = "l2", steps: int = 10, step_size: float | None = None,
                 random_start: bool = True, clamp=(0.0, 1.0), loss_fn: Callable | None = None,
                 normalize="model", seed: int | None = 0):
        self.eps = _check_eps(eps)
        self.norm = _check_norm(norm)
        self.steps = _check_steps(steps, self.eps)
        step = _check_step_size(step_size)
        self.step_size = (2.5 * self.eps / self.steps if self.steps else 0.0) if step is None else step
        self.random_start = bool(random_start)
        self.clamp = _check_clamp(clamp)
        self.loss_fn = loss_fn
        self.normalize = _check_normalize(normalize)
        seed = _plain(seed)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.reset()

    def reset(self) -> None:
        """Re-seed the private generator (back to the first random start)."""
        self.generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)

    def describe(self) -> dict:
        """Every setting of the attack, JSON-able (the ``cache_key``)."""
        return {"attack": "pgd", "version": _ATTACK_VERSION, "eps": self.eps, "norm": self.norm,
                "steps": self.steps, "step_size": self.step_size, "random_start": self.random_start,
                "clamp": None if self.clamp is None else list(self.clamp),
                "loss": _describe_callable(self.loss_fn) or "cross_entropy_sum",
                "normalize": _describe_callable(self.normalize), "seed": self.seed}

    @property
    def cache_key(self) -> dict:
        return self.describe()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(model, x, y, self.eps, norm=self.norm, steps=self.steps, step_size=self.step_size,
                   random_start=self.random_start, clamp=self.clamp, loss_fn=self.loss_fn,
                   generator=self.generator, normalize=self.normalize)

    def __repr__(self) -> str:
        return (f"PGDPerturbation(eps={self.eps}, norm={self.norm!r}, steps={self.steps}, "
                f"step_size={self.step_size:.4g}, random_start={self.random_start}, seed={self.seed})")


def pgd_perturbation(eps: float, norm: str = "l2", steps: int = 10, step_size: float | None = None,
                     random_start: bool = True, clamp=(0.0, 1.0), loss_fn: Callable | None = None,
                     normalize="model", seed: int | None = 0) -> PGDPerturbation:
    """The PGD attack as a training hook ``perturb(model, x, y) -> x_adv``.

    Parameters are those of :func:`pgd` (validated here, once), plus ``seed`` for the
    random starts (see :class:`PGDPerturbation`).  The hook expects pixel-space batches
    in ``clamp``: a training loop that normalises batches must do so after the hook.

    Examples
    --------
    >>> perturb = pgd_perturbation(eps=0.5, norm="l2", steps=7)
    >>> model = train_source("small_cnn", data, perturb=perturb,
    ...                      adversarial_eps=perturb.eps)  # doctest: +SKIP
    """
    return PGDPerturbation(eps, norm=norm, steps=steps, step_size=step_size, random_start=random_start,
                           clamp=clamp, loss_fn=loss_fn, normalize=normalize, seed=seed)


# --------------------------------------------------------------------------- data batches

def _batches(data, batch_size: int, need_labels: bool):
    """Yield ``(x, y)`` batches (``y`` None when absent) from the accepted data forms.

    ``data``: a torch Dataset (items ``(x, y)`` or ``x``), a DataLoader, a tuple
    ``(X, y)`` or ``(X,)`` of tensors/arrays, or a tensor/array ``X``.
    """
    from torch.utils.data import DataLoader

    def split(batch):
        if isinstance(batch, (tuple, list)):
            return torch.as_tensor(batch[0]), (torch.as_tensor(batch[1]) if len(batch) > 1 else None)
        return torch.as_tensor(batch), None

    if isinstance(data, DataLoader):
        batches = (split(b) for b in data)
    elif isinstance(data, tuple) and 1 <= len(data) <= 2:
        X = torch.as_tensor(np.asarray(data[0]) if not isinstance(data[0], torch.Tensor) else data[0])
        Y = None if len(data) == 1 else torch.as_tensor(
            np.asarray(data[1]) if not isinstance(data[1], torch.Tensor) else data[1])
        if Y is not None and len(Y) != len(X):
            raise ValueError(f"data has {len(X)} inputs but {len(Y)} labels")
        batches = ((X[i:i + batch_size], None if Y is None else Y[i:i + batch_size])
                   for i in range(0, len(X), batch_size))
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        X = torch.as_tensor(data)
        batches = ((X[i:i + batch_size], None) for i in range(0, len(X), batch_size))
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        batches = (split(b) for b in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0))
    else:
        raise ValueError(f"data must be a Dataset, DataLoader, tensor or tuple (X, y), "
                         f"got {type(data).__name__}")
    for x, y in batches:
        if need_labels and y is None:
            raise ValueError("data yields no labels; expected (x, y) pairs")
        yield x.float() if not x.is_floating_point() else x, y


# --------------------------------------------------------------------------- evaluation

def robust_accuracy(model: nn.Module, data, eps: float, norm: str = "l2", steps: int = 10,
                    step_size: float | None = None, batch_size: int = 256, device=None,
                    random_start: bool = True, clamp=(0.0, 1.0), normalize="model",
                    seed: int = 0) -> float:
    """Accuracy of ``model`` on PGD adversarial examples of ``data`` (see :func:`pgd`).

    Each batch is attacked (with ``model`` in eval mode), then classified in eval mode;
    the fraction of examples still classified correctly is returned.  At ``eps = 0``
    this is exactly the clean accuracy.

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset, DataLoader or tuple (X, y)
        Pixel-space images in ``clamp`` and integer labels.
    eps, norm, steps, step_size, random_start, clamp, normalize
        The attack, as in :func:`pgd`.
    batch_size : int
    device : str or torch.device, optional
        ``None``: where the model is; otherwise the model is moved there.
    seed : int
        Seeds the random starts (a private generator: the global RNG is untouched).

    Returns
    -------
    float
    """
    eps = _check_eps(eps)
    norm = _check_norm(norm)
    steps = _check_steps(steps, eps)
    step_size = _check_step_size(step_size)
    batch_size = _check_batch_size(batch_size)
    device = _place_model(model, device)
    transform = _resolve_normalize(normalize, model)
    generator = torch.Generator().manual_seed(int(seed))
    correct = total = 0
    for x, y in _batches(data, batch_size, need_labels=True):
        x, y = x.to(device), y.to(device).long()
        x_adv = pgd(model, x, y, eps, norm=norm, steps=steps, step_size=step_size,
                    random_start=random_start, clamp=clamp, generator=generator, normalize=normalize)
        with _AttackMode(model), torch.no_grad():
            pred = model(transform(x_adv)).argmax(1)
        correct += int((pred == y).sum())
        total += int(y.numel())
    if total == 0:
        raise ValueError("data is empty")
    return correct / total


# --------------------------------------------------------------------------- pseudo-labels

def pseudo_label(model: nn.Module, unlabeled_data, threshold: float = 0.9, batch_size: int = 256,
                 device=None, normalize="model") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident predictions of a teacher ``model`` on unlabelled images.

    The model (in eval mode; modes restored) predicts every image; an image is kept
    when its maximum softmax probability is ``>= threshold`` (inclusive), and its
    pseudo-label is the arg-max class.  Deng et al. (2021) train the source on labelled
    plus pseudo-labelled data; the confidence filter is the usual pseudo-labelling
    safeguard (FixMatch uses 0.95).  Any ``threshold <= 1 / n_classes`` keeps every
    image, since the maximum of a softmax is at least ``1 / n_classes``.

    Parameters
    ----------
    model : torch.nn.Module
        Teacher classifier returning logits.
    unlabeled_data : Dataset, DataLoader, tensor or tuple (X,) / (X, y)
        Pixel-space images; labels, if the items carry them, are ignored.
    threshold : float
        ``0 < threshold <= 1``.
    batch_size : int
    device : str or torch.device, optional
        ``None``: where the model is; otherwise the model is moved there.
    normalize : "model", None, str or callable
        Pixel -> model input, as in :func:`pgd`.

    Returns
    -------
    indices : numpy.ndarray of int64
        Positions in ``unlabeled_data`` of the kept images, increasing.
    labels : numpy.ndarray of int64
        Their pseudo-labels.
    confidences : numpy.ndarray of float64
        Their maximum softmax probabilities (all ``>= threshold``).
    """
    threshold = _check_threshold(threshold)
    batch_size = _check_batch_size(batch_size)
    device = _place_model(model, device)
    transform = _resolve_normalize(normalize, model)
    confs, preds = [], []
    with _AttackMode(model), torch.no_grad():
        for x, _ in _batches(unlabeled_data, batch_size, need_labels=False):
            probs = torch.softmax(model(transform(x.to(device))).float(), dim=1)
            conf, pred = probs.max(dim=1)
            confs.append(conf.cpu().double().numpy())
            preds.append(pred.cpu().numpy().astype(np.int64))
    conf = np.concatenate(confs) if confs else np.zeros(0)
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    keep = np.flatnonzero(conf >= threshold).astype(np.int64)
    return keep, pred[keep], conf[keep]


class PseudoLabeledDataset(torch.utils.data.Dataset):
    """Labelled examples followed by pseudo-labelled ones, as ``(x, int label)`` pairs.

    Items ``0 .. n_labeled - 1`` are ``labeled[i]``; item ``n_labeled + j`` is image
    ``unlabeled[pseudo_indices[j]]`` (its own label, if any, dropped) with label
    ``pseudo_labels[j]``.

    Attributes
    ----------
    classes : list of str or None
        From ``labeled.classes`` (what ``train_source`` uses for the number of outputs).
    targets : numpy.ndarray of int64
        Every label, labelled then pseudo.
    is_pseudo : numpy.ndarray of bool
    spec : dict or None
        When both parts have a ``spec``: both specs plus a digest of the pseudo-labels
        (so a cached source model is keyed by what it was trained on); otherwise None
        and ``train_source`` hashes the content.
    """

    def __init__(self, labeled, unlabeled, indices, labels):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(idx) != len(lab):
            raise ValueError(f"indices has {len(idx)} entries but labels has {len(lab)}")
        if len(idx) and (idx.min() < 0 or idx.max() >= len(unlabeled)):
            raise ValueError(f"indices must lie in 0..{len(unlabeled) - 1}, "
                             f"got {int(idx.min())}..{int(idx.max())}")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("indices contains duplicates; each unlabelled image is pseudo-labelled once")
        classes = getattr(labeled, "classes", None)
        self.classes = None if classes is None else list(classes)
        if len(lab) and (lab.min() < 0 or (self.classes and lab.max() >= len(self.classes))):
            hi = f"{len(self.classes) - 1}" if self.classes else "K-1"
            raise ValueError(f"labels must lie in 0..{hi}, got {int(lab.min())}..{int(lab.max())}")
        self.labeled, self.unlabeled = labeled, unlabeled
        self.pseudo_indices, self.pseudo_labels = idx, lab
        self.n_labeled = len(labeled)
        own = getattr(labeled, "targets", None)
        if own is None:
            own = [int(labeled[i][1]) for i in range(self.n_labeled)]
        self.targets = np.concatenate([np.asarray(own, dtype=np.int64).reshape(-1), lab])
        self.is_pseudo = np.arange(len(self.targets)) >= self.n_labeled
        spec_l, spec_u = getattr(labeled, "spec", None), getattr(unlabeled, "spec", None)
        if spec_l is not None and spec_u is not None:
            digest = hashlib.sha256(idx.tobytes() + b"|" + lab.tobytes()).hexdigest()[:16]
            self.spec = {"kind": "pseudo_labeled", "labeled": spec_l, "unlabeled": spec_u,
                         "pseudo": digest, "n_pseudo": int(len(idx))}
        else:
            self.spec = None

    def __len__(self) -> int:
        return self.n_labeled + len(self.pseudo_indices)

    def __getitem__(self, i):
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        if i < self.n_labeled:
            x, y = self.labeled[i][:2]
            return x, int(y)
        j = i - self.n_labeled
        item = self.unlabeled[int(self.pseudo_indices[j])]
        x = item[0] if isinstance(item, (tuple, list)) else item
        return x, int(self.pseudo_labels[j])


def pseudo_labeled_dataset(labeled, unlabeled, indices, labels) -> PseudoLabeledDataset:
    """Labelled data plus the pseudo-labelled images ``unlabeled[indices]``.

    ``indices`` and ``labels`` are the first two outputs of :func:`pseudo_label`.  The
    result is what a student source model is trained on, e.g.
    ``train_source(arch, pseudo_labeled_dataset(...), ...)``.  See
    :class:`PseudoLabeledDataset`.
    """
    return PseudoLabeledDataset(labeled, unlabeled, indices, labels)


def semi_supervised_dataset(teacher: nn.Module, labeled, unlabeled, threshold: float = 0.9,
                            batch_size: int = 256, device=None, normalize="model") -> PseudoLabeledDataset:
    """:func:`pseudo_label` the unlabelled images with ``teacher``, then combine.

    Self-training in one call: the teacher (usually a source model trained on
    ``labeled`` alone) labels ``unlabeled``; the confident ones join ``labeled``.
    """
    idx, lab, _ = pseudo_label(teacher, unlabeled, threshold=threshold, batch_size=batch_size,
                               device=device, normalize=normalize)
    return pseudo_labeled_dataset(labeled, unlabeled, idx, lab)
