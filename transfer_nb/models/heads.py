"""Model surgery: a new classification head, and re-initialising the layers after one.

The head is found by the one classifier finder,
:func:`transfer_nb.models.layers.find_classifier`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import layers as _layers

__all__ = ["replace_head", "layers_after", "reinit_after_layer"]


def _get_module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise ValueError(f"model has no module named {name!r}") from exc


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)  # nn.Sequential children too: their names are strings


def replace_head(model: nn.Module, num_outputs: int, head: str = "auto",
                 generator: torch.Generator | None = None) -> str:
    """Replace the classification head of ``model`` (in place) by a new ``nn.Linear``.

    Parameters
    ----------
    model : torch.nn.Module
    num_outputs : int
        Outputs of the new head (classes; 1 for a scalar regression).
    head : str
        ``"auto"``: timm models use ``reset_classifier(num_outputs)`` (it also gives a
        headless model a head); other models get the ``nn.Linear`` of
        :func:`~transfer_nb.models.layers.find_classifier` replaced.  A module name:
        replace that ``nn.Linear``.
    generator : torch.Generator, optional
        Seeds the new weights (uniform in ``+-1/sqrt(in_features)``); without it they
        keep PyTorch's default initialisation.  The bias starts at zero.

    Returns
    -------
    str
        The name of the head module.

    Raises
    ------
    ValueError
        ``num_outputs`` not a positive integer, no classifier found, or ``head`` not
        an ``nn.Linear``.
    """
    if not isinstance(num_outputs, (int, np.integer)) or isinstance(num_outputs, bool) \
            or num_outputs < 1:
        raise ValueError(f"num_outputs must be a positive integer, got {num_outputs!r}")
    num_outputs = int(num_outputs)
    if head == "auto":
        if hasattr(model, "reset_classifier") and hasattr(model, "get_classifier"):
            model.reset_classifier(num_outputs)
            found = _layers.find_classifier(model)
            if found is None:
                raise ValueError("reset_classifier did not produce an nn.Linear head; "
                                 "pass head='<module name>'")
            name = found[0]
        else:
            found = _layers.find_classifier(model)
            if found is None:
                raise ValueError(f"cannot find the classifier (a final nn.Linear) of "
                                 f"{type(model).__name__}; pass head='<module name>'")
            name, old = found
            _set_module(model, name, nn.Linear(old.in_features, num_outputs,
                                               bias=old.bias is not None))
    else:
        old = _get_module(model, head)
        if not isinstance(old, nn.Linear):
            raise ValueError(f"head {head!r} is a {type(old).__name__}, expected nn.Linear")
        name = head
        _set_module(model, name, nn.Linear(old.in_features, num_outputs,
                                           bias=old.bias is not None))
    new = _get_module(model, name)
    with torch.no_grad():
        if generator is not None:
            bound = 1.0 / math.sqrt(new.in_features)
            new.weight.copy_(torch.empty_like(new.weight).uniform_(-bound, bound,
                                                                   generator=generator))
        if new.bias is not None:
            new.bias.zero_()
    return name


def layers_after(model: nn.Module, layer: str) -> list[str]:
    """Names of the parameterised leaf modules that come after ``layer`` in module order.

    "After" is the registration order of ``named_modules`` (the forward order for
    sequential backbones such as EfficientNet or ResNet); ``layer`` itself, its
    children and its ancestors are excluded.

    Raises
    ------
    ValueError
        ``layer`` is not a module name of ``model``.
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


def reinit_after_layer(model: nn.Module, layer: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Re-initialise (in place) every layer after ``layer``; returns their names.

    Uses each module's own ``reset_parameters`` (PyTorch default initialisation;
    BatchNorm running statistics are reset too).  Modules named in ``exclude`` (and
    their children) are left alone.  Seed torch before calling for a deterministic
    result.
    """
    names = [n for n in layers_after(model, layer)
             if not any(n == e or n.startswith(e + ".") for e in exclude)]
    for name in names:
        module = model.get_submodule(name)
        module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return names
