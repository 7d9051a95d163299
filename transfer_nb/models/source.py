"""Train small source models (plain or adversarial) and cache them on disk.

:func:`train_source` is what the adversarial-source and PGE experiments use to get
source models: SGD with momentum, cosine learning-rate decay, optional random-shift
augmentation and an optional ``perturb`` hook that replaces each training batch by an
adversarial one (the PGD attack lives in :mod:`transfer_nb.adversarial`).

The trained state dict is cached under ``cache_dir("models")`` with a key covering the
architecture and its options, the data set's content (images, labels, ``.normalize``:
:func:`transfer_nb.cache.data_fingerprint`, the same fingerprint as the feature cache),
every hyper-parameter, the perturbation and the torch version; it is written
atomically, a file whose content cannot be parsed is deleted and the model retrained,
and a cache that cannot be written is a warning (the trained model is returned).
"""
from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import cache as _cache
from .. import training
from .._validation import check_scalar
from . import small

__all__ = ["train_source", "source_cache_key", "describe_perturb"]

# bump when the training procedure changes so that old cache entries are not reused
_FORMAT_VERSION = 1


def describe_perturb(perturb: Callable | None):
    """A stable, hashable description of a ``perturb`` callable for the cache key.

    A callable may carry a ``cache_key`` attribute (any JSON-able value, e.g. a dict
    ``{"attack": "pgd", "norm": "l2", "eps": 0.5, "steps": 7}``); this is what the
    adversarial module should set.  Otherwise ``functools.partial`` objects are
    described by function, arguments and keywords, and plain functions by their
    qualified name (so two different lambdas in one module look alike: give them a
    ``cache_key``).
    """
    if perturb is None:
        return None
    key = getattr(perturb, "cache_key", None)
    if key is not None:
        return {"cache_key": key}
    if isinstance(perturb, functools.partial):
        return {"partial": describe_perturb(perturb.func), "args": [repr(a) for a in perturb.args],
                "kwargs": {k: repr(v) for k, v in sorted(perturb.keywords.items())}}
    func = getattr(perturb, "__func__", perturb)
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__qualname__)}"


def _num_classes(dataset) -> int:
    classes = getattr(dataset, "classes", None)
    if classes is not None and len(classes) > 0:
        return len(classes)
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [int(dataset[i][1]) for i in range(len(dataset))]
    return int(np.max(np.asarray(targets))) + 1


def source_cache_key(arch: str, dataset, *, arch_options: dict, num_classes: int, epochs: int,
                     lr: float, batch_size: int, weight_decay: float, momentum: float,
                     augment: bool, seed: int, adversarial_eps: float,
                     perturb: Callable | None, recalibrate_bn: bool = True) -> str:
    """SHA-256 key over every input that defines the trained weights.

    The data set enters through :func:`transfer_nb.cache.data_fingerprint` with its
    labels (images, targets, class names, ``.normalize``, or every item): two data sets
    of the same size, or one changed in place, never share a key.

    Raises
    ------
    transfer_nb.cache.UncacheableDataError
        When the data set's content cannot be described (see ``data_fingerprint``).
    """
    return _cache.hash_inputs(
        kind="source_model", version=_FORMAT_VERSION, arch=arch, arch_options=arch_options,
        num_classes=num_classes, dataset=_cache.data_fingerprint(dataset, labels=True),
        n=len(dataset), epochs=epochs,
        lr=float(lr), batch_size=batch_size, weight_decay=float(weight_decay),
        momentum=float(momentum), augment=bool(augment), seed=seed,
        recalibrate_bn=bool(recalibrate_bn), adversarial_eps=float(adversarial_eps),
        perturb=describe_perturb(perturb),
        torch=torch.__version__)


def _random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pad by H/8 (reflect) and crop back at a random offset per image (CIFAR-style)."""
    pad = max(1, x.shape[-1] // 8)
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    n, _, h, w = x.shape
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, offs[i, 0]:offs[i, 0] + h, offs[i, 1]:offs[i, 1] + w]
                        for i in range(n)])


def _train(model: nn.Module, dataset, *, epochs: int, lr: float, batch_size: int,
           weight_decay: float, momentum: float, augment: bool, seed: int,
           perturb: Callable | None, progress: bool, device,
           recalibrate_bn: bool = True) -> dict:
    """Train ``model`` in place with :func:`training.fit`; ``{"train_accuracy", "final_loss"}``."""
    transform = None
    if augment:
        aug_gen = torch.Generator().manual_seed(seed + 1)

        def transform(x):
            return _random_shift(x.cpu(), aug_gen).to(x.device)

    result = training.fit(
        model, dataset, epochs=epochs, lr=lr, batch_size=batch_size, optimizer="sgd",
        momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay,
        schedule="cosine", perturb=perturb, transform=transform, seed=seed, device=device,
        progress=progress, desc=f"train {getattr(model, 'transfer_nb_name', 'source')}")
    eval_batch = max(batch_size, 256)
    if recalibrate_bn and epochs > 0:
        training.recalibrate_batchnorm(model, dataset, batch_size=eval_batch, device=device)
    accuracy = training.evaluate(model, dataset, batch_size=eval_batch, device=device)
    return {"train_accuracy": accuracy, "final_loss": result["final_loss"],
            "accuracy_curve": [float(a) for a in result["accuracy_history"]]}


def _load_cached(path: Path, model: nn.Module) -> dict | None:
    """Load a cached checkpoint into ``model``; ``None`` if missing or unusable.

    A file that cannot be read (permissions, a directory in its place) is a miss and is
    left alone; only one whose content cannot be parsed or loaded is removed.
    """
    raw = _cache.read_cache_bytes(path)
    if raw is None:
        return None
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        model.load_state_dict(payload["state_dict"], strict=True)
        return dict(payload["meta"])
    except Exception:  # truncated / corrupted / incompatible: retrain and rewrite
        _cache.discard_corrupt(path)
        return None


def train_source(arch: str, dataset, epochs: int = 10, lr: float = 0.05, batch_size: int = 128,
                 seed: int = 0, width: int | None = None, depth: int | None = None,
                 weight_decay: float = 5e-4, momentum: float = 0.9, augment: bool = False,
                 recalibrate_bn: bool = True, adversarial_eps: float = 0.0,
                 perturb: Callable | None = None,
                 cache: bool = True, progress: bool = True, device=None,
                 **arch_options) -> nn.Module:
    """Train (or load from the cache) a small source model on ``dataset``.

    Parameters
    ----------
    arch : {"small_cnn", "small_resnet"}
        Architecture (see :mod:`transfer_nb.models.small`).
    dataset : torch Dataset
        Yields ``(3xHxW float tensor, int label)``; e.g. an ``ImageDataset`` from
        :mod:`transfer_nb.data` (``.classes`` gives the number of outputs).  The cache
        key covers its content (:func:`transfer_nb.cache.data_fingerprint`), never
        just its name or size.
    epochs, lr, batch_size, weight_decay, momentum : training hyper-parameters
        SGD (Nesterov momentum) with cosine decay of ``lr`` over all steps.
    seed : int
        Seeds the initialisation, the shuffling and the augmentation; the global RNG
        state of the caller is restored afterwards.
    width, depth, **arch_options
        Architecture options (``None``: the architecture's default).
    augment : bool
        Random shifts (reflect-pad by H/8 and crop).  No flips: they would hurt digits
        and glyphs.
    recalibrate_bn : bool
        After training, recompute the BatchNorm statistics exactly over the clean,
        un-augmented training set (see :func:`transfer_nb.training.recalibrate_batchnorm`); ``False`` keeps
        the running averages of training (those of the perturbed batches when
        ``perturb`` is given).
    adversarial_eps : float
        Perturbation budget, recorded in the cache key and on the model.  With
        ``adversarial_eps > 0`` a ``perturb`` is required.
    perturb : callable, optional
        ``perturb(model, x, y) -> x_adv`` applied to every training batch (adversarial
        training); give it a ``cache_key`` attribute describing its settings.
    cache : bool
        Read and write the on-disk cache.  A cache that cannot be written (read-only
        folder) is a :class:`transfer_nb.cache.CacheWriteWarning` and data whose content
        cannot be described (random transforms) a ``UserWarning``: in both cases the
        model is trained and returned, just not cached.
    progress : bool
        Show a ``tqdm.auto`` progress bar.
    device : str or torch.device, optional
        Defaults to CUDA when available, else CPU.  The model is returned there.

    Returns
    -------
    torch.nn.Module
        In eval mode, with the ``transfer_nb_*`` attributes of :func:`load_model`
        (``transfer_nb_input_size`` is the training resolution) plus
        ``transfer_nb_source_accuracy`` (clean training-set accuracy),
        ``transfer_nb_train_curve`` (running training accuracy per epoch: a learning
        curve for :func:`transfer_nb.experiments.gates.plateau`),
        ``transfer_nb_train_config`` (the hyper-parameters) and ``transfer_nb_cache_key``
        (``None`` when the model was not cached).

    Raises
    ------
    ValueError
        Unknown architecture, bad hyper-parameters, empty data set, or
        ``adversarial_eps > 0`` without ``perturb``.
    """
    if arch not in small.SMALL_MODELS:
        raise ValueError(f"train_source trains small source models; unknown arch {arch!r}, "
                         f"expected one of {sorted(small.SMALL_MODELS)}")
    seed = check_scalar(seed, "seed", int, min_val=0)
    epochs = check_scalar(epochs, "epochs", int, min_val=0)
    batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
    lr = check_scalar(lr, "lr", float, min_val=0, include_boundaries="neither")
    adversarial_eps = check_scalar(adversarial_eps, "adversarial_eps", float, min_val=0)
    if adversarial_eps > 0 and perturb is None:
        raise ValueError("adversarial_eps > 0 needs perturb=callable(model, x, y) -> x_adv "
                         "(e.g. a PGD attack from transfer_nb.adversarial)")
    if perturb is not None and not callable(perturb):
        raise ValueError(f"perturb must be callable(model, x, y) -> x_adv, got {type(perturb).__name__}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    device = training.resolve_device(device)

    num_classes = _num_classes(dataset)
    options = {"width": width, "depth": depth, **arch_options}
    hyper = dict(epochs=epochs, lr=float(lr), batch_size=batch_size, weight_decay=float(weight_decay),
                 momentum=float(momentum), augment=bool(augment), seed=seed,
                 recalibrate_bn=bool(recalibrate_bn), adversarial_eps=float(adversarial_eps))
    # seed the initialisation without disturbing the caller's global RNG stream
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = small.build_small_model(arch, num_classes=num_classes, **options)
    full_options = model.transfer_nb_options

    key = path = None
    if cache:
        try:
            key = source_cache_key(arch, dataset, arch_options=full_options,
                                   num_classes=num_classes, perturb=perturb, **hyper)
        except _cache.UncacheableDataError as err:
            warnings.warn(f"train_source: not caching ({err})", UserWarning, stacklevel=2)
        else:
            path = _cache.cache_dir("models") / f"{arch}-{key}.pt"
    meta = _load_cached(path, model) if path is not None else None
    if meta is None:
        model.to(device)
        # fit seeds shuffling, augmentation and the global RNG and restores the caller's
        meta = _train(model, dataset, perturb=perturb, progress=progress, device=device,
                      **{k: v for k, v in hyper.items() if k != "adversarial_eps"})
        if path is not None:
            buf = io.BytesIO()
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save({"state_dict": state, "meta": meta}, buf)
            _cache.write_cache_bytes(path, buf.getvalue())  # warns if it cannot
    model.to(device).eval()
    # the native resolution of a trained source is the one it was trained at
    first = dataset[0][0]
    if isinstance(first, torch.Tensor) and first.ndim == 3 and first.shape[-1] == first.shape[-2]:
        model.transfer_nb_input_size = int(first.shape[-1])
    model.transfer_nb_source_accuracy = float(meta["train_accuracy"])
    # running training accuracy per epoch (of the perturbed batches under ``perturb``);
    # empty for a checkpoint cached before the curve was stored
    model.transfer_nb_train_curve = [float(a) for a in meta.get("accuracy_curve", [])]
    model.transfer_nb_train_config = {"arch": arch, **full_options, "num_classes": num_classes, **hyper,
                                      "perturb": describe_perturb(perturb)}
    model.transfer_nb_cache_key = key
    return model
