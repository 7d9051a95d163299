"""Adversarial source training: the PGD attack, its training hook and robust accuracy.

Foundations for Deng et al., "Adversarial Training Helps Transfer Learning via Better
Representations" (NeurIPS 2021), and the transfer study it builds on (Salman et al.
2020, "Do Adversarially Robust ImageNet Models Transfer Better?"): a source model is
trained on adversarial examples (PGD inside an L2 or Linf ball of radius ``eps``), on
labelled plus pseudo-labelled data, or both, and then transferred.

* :func:`pgd` -- the projected-gradient-descent attack (Madry et al. 2018).
* :func:`pgd_perturbation` -- the attack as a per-batch hook ``perturb(model, x, y)`` for
  the training loop (``train_source(perturb=...)``, ``training.fit(perturb=...)``); its
  ``cache_key`` attribute puts every attack setting in the trained model's cache key.
* :func:`robust_accuracy` -- accuracy under the attack (scored by
  :func:`transfer_nb.training.evaluate`; this module has no training or scoring loop).

Pseudo-labelling (the semi-supervised half of Deng et al.) lives in
:mod:`transfer_nb.adversarial.semi`; its names are re-exported here.

Pixel space
-----------
Images are float tensors in ``[0, 1]``.  The eps-ball and the clamp to the valid pixel
range live in that space (as in the ``robustness`` library that Salman et al. used:
an L2 eps of 3 means 3 in ``[0, 1]`` pixel units over the whole image).  Models may
expect normalised input (``model.transfer_nb_normalize``, see
:func:`transfer_nb.preprocessing.normalize_images`); the attack applies that
normalisation inside, just before the model, so the caller of :func:`pgd` always
passes and gets back pixel-space images.

The training hook is different: :func:`transfer_nb.training.fit` (and ``evaluate``)
hand it the batch the model takes -- after ``transform``, which may normalise, and
after any normalisation the data set applied itself (``ImageDataset.normalize``).  A
:class:`PGDPerturbation` therefore maps that batch back to pixels with its named
normalisation, attacks in ``[0, 1]`` pixel space and returns the adversarial batch
normalised again: the eps-ball is in pixels, and the model sees normalised input
exactly once.
"""
from __future__ import annotations

from numbers import Integral
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from transfer_nb import preprocessing
from transfer_nb import training
from transfer_nb._validation import check_batch_size as _check_batch_size  # noqa: F401
from transfer_nb._validation import check_real as _check_real
from transfer_nb._validation import plain as _plain
from transfer_nb.preprocessing import check_normalize as _check_normalize
from transfer_nb.preprocessing import model_input_transform as _model_input_transform
from transfer_nb.preprocessing import normalization_name as _normalization_name
from transfer_nb.preprocessing import resolve_normalize as _resolve_normalize  # noqa: F401
from transfer_nb.preprocessing import to_pixels as _to_pixels

__all__ = ["pgd", "pgd_perturbation", "PGDPerturbation", "robust_accuracy", "pseudo_label",
           "pseudo_labeled_dataset", "semi_supervised_dataset", "PseudoLabeledDataset", "NORMS"]

NORMS = ("l2", "linf")

# bump when the attack changes so that models trained with the old one are not reused
_ATTACK_VERSION = 2  # 2: the hook attacks model-input batches in pixel space


# --------------------------------------------------------------------------- validation





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

    The hook takes and returns *model input*: the batch as the training loop hands it
    (normalised or not).  With a normalisation other than ``"none"`` (``normalize``, a
    name; ``"model"`` reads ``model.transfer_nb_normalize``) the batch is mapped back to
    ``[0, 1]`` pixels, attacked there (eps-ball and clamp in pixels) and normalised
    again, so the model sees normalised input exactly once.
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
        if callable(self.normalize) and not isinstance(self.normalize, str):
            raise ValueError("pgd_perturbation needs normalize=None, 'model' or a name "
                             f"{sorted(preprocessing.NORMALIZATIONS)}: the hook maps model inputs "
                             "back to pixels, and a callable cannot be inverted")
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
        """Adversarial version of the model-input batch ``x`` (same space as ``x``)."""
        name = _normalization_name(self.normalize, model)
        if self.eps == 0:
            return torch.as_tensor(x).detach().clone()
        pixels = x if name == "none" else _to_pixels(x, name)
        x_adv = pgd(model, pixels, y, self.eps, norm=self.norm, steps=self.steps,
                    step_size=self.step_size, random_start=self.random_start, clamp=self.clamp,
                    loss_fn=self.loss_fn, generator=self.generator, normalize=name)
        return x_adv if name == "none" else preprocessing.normalize_images(x_adv, name)

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


# --------------------------------------------------------------------------- evaluation

def robust_accuracy(model: nn.Module, data, eps: float, norm: str = "l2", steps: int = 10,
                    step_size: float | None = None, batch_size: int = 256, device=None,
                    random_start: bool = True, clamp=(0.0, 1.0), normalize="model",
                    seed: int = 0) -> float:
    """Accuracy of ``model`` on PGD adversarial examples of ``data`` (see :func:`pgd`).

    :func:`transfer_nb.training.evaluate` with a :class:`PGDPerturbation` hook: each
    batch is attacked (with ``model`` in eval mode), then classified in eval mode; the
    fraction of examples still classified correctly is returned.  At ``eps = 0`` this
    is exactly the clean accuracy.

    Parameters
    ----------
    model : torch.nn.Module
    data : Dataset, DataLoader or tuple (X, y)
        Pixel-space images in ``clamp`` and integer labels, or an ``ImageDataset``
        normalised already (its ``.normalize``: the attack maps it back to pixels).
    eps, norm, steps, step_size, random_start, clamp
        The attack, as in :func:`pgd`.
    normalize : "model" (default), None or a normalisation name
        Pixel -> model input (a name, so that it can be undone).
    batch_size : int
    device : str or torch.device, optional
        ``None``: where the model is; otherwise the model is moved there.
    seed : int
        Seeds the random starts (a private generator: the global RNG is untouched).

    Returns
    -------
    float
    """
    batch_size = _check_batch_size(batch_size)
    if isinstance(data, tuple) and len(data) == 2:
        data = tuple(torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
                     for v in data)
        data = (data[0].float() if not data[0].is_floating_point() else data[0], data[1].long())
    transform, name = _model_input_transform(normalize, model, data)
    if name is None:
        raise ValueError("robust_accuracy needs normalize=None, 'model' or a normalisation name "
                         f"{sorted(preprocessing.NORMALIZATIONS)}, not a callable")
    hook = PGDPerturbation(eps, norm=norm, steps=steps, step_size=step_size,
                           random_start=random_start, clamp=clamp, normalize=name, seed=int(seed))
    if device is not None:
        model.to(torch.device(device))
    return training.evaluate(model, data, metric="accuracy", batch_size=batch_size,
                             transform=transform, perturb=hook)


# --------------------------------------------------------------------------- pseudo-labels
# re-exported (defined in transfer_nb.adversarial.semi, which imports helpers from here)
from transfer_nb.adversarial.semi import (PseudoLabeledDataset, pseudo_label,  # noqa: E402
                                          pseudo_labeled_dataset, semi_supervised_dataset)
