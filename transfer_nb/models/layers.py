"""Which layers of a model to read: the one place that turns layer requests into names.

Every model that :func:`transfer_nb.load_model` returns *declares* its feature layers
(like timm's ``feature_info``) in ``model.transfer_nb_feature_info``: a list of
``{"name", "channels", "reduction"}`` dicts, set by the loaders in
:mod:`transfer_nb.models` through :func:`declare_feature_layers`.  Any other model gets
its layers from one tracing fallback, :func:`trace_feature_layers`.

Layer names are the names of :meth:`torch.nn.Module.named_modules` (``"blocks.3"``,
``"layer2"``), plus two *virtual* names that every model has:

``"penultimate"``
    the **input** of the model's classifier (:func:`find_classifier`), captured by a
    forward pre-hook; a model without a classifier (timm ``num_classes=0``) has its
    output as penultimate layer.
``"output"``
    the model's own output (logits for a classifier; LEEP and NCE need them).

A real sub-module that happens to be called ``penultimate`` or ``output`` takes
precedence over the virtual name.

Default layers never repeat a representation: no two of them give identical features
under global average pooling (a ResNet's ``layer4`` averaged *is* its ``avgpool``
output, so only ``avgpool`` is kept).
"""
from __future__ import annotations

import difflib
import re
from typing import Any

import torch
from torch import nn

from transfer_nb.models.pooling import pool_features

__all__ = ["VIRTUAL_LAYERS", "list_layers", "feature_layers", "feature_info",
           "declare_feature_layers", "trace_feature_layers", "find_classifier",
           "resolve_layers", "hook_points"]

#: names that resolve to a hook point without being a sub-module name
VIRTUAL_LAYERS = ("penultimate", "output")

# names of the module containers whose children are a network's blocks / stages
# (timm: blocks / stages / layers, torchvision: features / trunk_output,
# HF transformers: layer)
_CONTAINER_NAMES = ("blocks", "stages", "layers", "features", "layer", "trunk_output")
# modules that carry no representation of their own
_SKIP_TYPES = (nn.Dropout, nn.Identity, nn.Flatten)
# requests meaning "the declared default layers"; "all" is kept as extract_features has
# always read it: hooking every sub-module would include modules reused within one
# forward pass (torchvision's BasicBlock.relu), which have no single output per example
_DEFAULT_REQUESTS = ("default", "all")


# --------------------------------------------------------------------------- listing
def list_layers(model: nn.Module) -> list[str]:
    """Every layer name that can be extracted, in module order.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    list of str
        All sub-module names of ``model.named_modules()`` (the root excluded), then the
        virtual names ``"penultimate"`` and ``"output"`` unless a real sub-module
        already has that name.
    """
    names = [name for name, _ in model.named_modules() if name]
    names += [v for v in VIRTUAL_LAYERS if v not in names]
    return names


def find_classifier(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The model's classifier: ``(name, module)``, or ``None`` for a headless model.

    timm models answer through ``get_classifier()`` (a non-``Linear`` answer, such as
    the ``Identity`` of ``num_classes=0``, means no classifier).  Other models: the
    last :class:`torch.nn.Linear` in registration order provided that no module with
    parameters is registered after it -- without that condition a headless model would
    have the last ``Linear`` of its last block (an MLP's ``fc2`` before the final norm)
    taken for its classifier.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    (str, torch.nn.Linear) or None
    """
    get = getattr(model, "get_classifier", None)
    if callable(get) and hasattr(model, "reset_classifier"):
        try:
            clf = get()
        except Exception:  # a custom get_classifier that fails: use the structural rule
            clf = None
        else:
            if not isinstance(clf, nn.Linear):
                return None
            name = next((n for n, m in model.named_modules() if m is clf and n), None)
            if name is not None:
                return name, clf
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name:
            found = (name, module)
        elif found is not None and any(True for _ in module.parameters(recurse=False)):
            found = None
    return found


# ---------------------------------------------------------------------- declaration
def declare_feature_layers(model: nn.Module, names: list[str] | None = None,
                           input_size: int = 224) -> list[dict]:
    """Set ``model.transfer_nb_feature_info`` (the model's default layers) and return it.

    Parameters
    ----------
    model : torch.nn.Module
    names : list of str, optional
        The layers to declare (module names or virtual names); ``None``: those of
        :func:`trace_feature_layers`.
    input_size : int
        Square input resolution of the one forward pass that measures each layer's
        ``channels`` and ``reduction`` (a smaller size is tried first).

    Returns
    -------
    list of dict
        ``{"name", "channels", "reduction"}`` per layer: ``channels`` is the feature
        count after average pooling, ``reduction`` the input-to-map stride of a
        ``(B, C, H, W)`` output (``None`` for vectors and token sequences).

    Raises
    ------
    ValueError
        A name that is not a layer of ``model``.
    """
    if names is None:
        info = trace_feature_layers(model, input_size)
    else:
        names = resolve_layers(model, list(names))
        info = _measure(model, names, input_size)
    model.transfer_nb_feature_info = info
    return info


def feature_info(model: nn.Module) -> list[dict]:
    """The declared ``{"name", "channels", "reduction"}`` list, else the traced one."""
    info = getattr(model, "transfer_nb_feature_info", None)
    if info is not None:
        return [dict(i) for i in info]
    return trace_feature_layers(model)


def feature_layers(model: nn.Module) -> list[str]:
    """The default feature layers of ``model`` (what ``layers=None`` extracts).

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`transfer_nb.load_model` declares them
        (``model.transfer_nb_feature_info``); any other model is traced once
        (:func:`trace_feature_layers`).

    Returns
    -------
    list of str
        Every block / stage output and the penultimate representation, no two of
        them giving identical average-pooled features.
    """
    return [i["name"] for i in feature_info(model)]


# --------------------------------------------------------------------------- tracing
def _stage_layers(model: nn.Module, classifier: str | None) -> list[str]:
    """Block / stage names from the module structure alone."""
    children = list(model.named_children())
    stage_names = [n for n, _ in children if re.fullmatch(r"layer\d+", n)]
    if len(stage_names) >= 2:  # torchvision ResNet-like
        return sorted(stage_names, key=lambda n: int(n[5:]))
    best = None
    for name, module in model.named_modules():
        if not name or name.rsplit(".", 1)[-1] not in _CONTAINER_NAMES:
            continue
        if not isinstance(module, (nn.Sequential, nn.ModuleList)) or len(module) < 2:
            continue
        rank = (name.count("."), -len(module))  # shallowest, then most children
        if best is None or rank < best[0]:
            best = (rank, name, module)
    if best is not None:
        _, name, module = best
        return [f"{name}.{child}" for child, _ in module.named_children()]
    return [n for n, m in children if not isinstance(m, _SKIP_TYPES) and n != classifier]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None or a.shape[0] != b.shape[0] or a[0].numel() != b[0].numel():
        return False
    return torch.equal(_flat(a), _flat(b))


def _avg(x: torch.Tensor) -> torch.Tensor:
    return pool_features(x.float(), "avg")


def _run_recorded(model: nn.Module, input_size: int, names: set[str] | None = None):
    """One eval forward pass on a seeded random batch recording module outputs.

    Returns ``(records, classifier_input, output, size)``: ``records`` is a list of
    ``(name, output)`` in execution order (cloned, so later in-place operations do not
    change them); ``(None, None, None, None)`` when no tried input size runs.
    """
    clf = find_classifier(model)
    records: list[tuple[str, torch.Tensor]] = []
    state: dict[str, Any] = {}
    hooks = []

    def make_hook(name):
        def hook(module, args, output):
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                output = output[0]
            if isinstance(output, torch.Tensor) and output.ndim >= 1:
                records.append((name, output.detach().clone()))
        return hook

    def pre_hook(module, args):
        if args and isinstance(args[0], torch.Tensor) and "clf_in" not in state:
            state["clf_in"] = args[0].detach().clone()

    for name, module in model.named_modules():
        if name and (names is None or name in names):
            hooks.append(module.register_forward_hook(make_hook(name)))
    if clf is not None:
        hooks.append(clf[1].register_forward_pre_hook(pre_hook))
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    training = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        # a small input is enough for most CNNs; fall back to the native size (ViTs)
        for size in dict.fromkeys((64, int(input_size))):
            records.clear()
            state.clear()
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(2, 3, size, size, generator=gen).to(device, dtype)
            try:
                with torch.no_grad():
                    out = model(x)
            except Exception:
                continue
            if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
                out = out[0]
            if isinstance(out, torch.Tensor):
                return records, state.get("clf_in"), out.detach(), size
        return None, None, None, None
    finally:
        for h in hooks:
            h.remove()
        for module, flag in training:
            module.training = flag


def _describe(name: str, value: torch.Tensor | None, size: int | None) -> dict:
    channels = reduction = None
    if value is not None:
        if value.ndim <= 1:
            channels = 1
        elif value.ndim == 3:  # (B, N, C) tokens: channels last
            channels = int(value.shape[-1])
        else:
            channels = int(value.shape[1])
        if value.ndim == 4 and size:
            reduction = max(1, round(size / value.shape[2]))
    return {"name": name, "channels": channels, "reduction": reduction}


def _measure(model: nn.Module, names: list[str], input_size: int) -> list[dict]:
    """``{"name", "channels", "reduction"}`` of given layers, from one forward pass."""
    records, clf_in, out, size = _run_recorded(model, input_size, set(names))
    values = dict(records or [])
    if out is not None:
        values.setdefault("output", out)
        values.setdefault("penultimate", clf_in if clf_in is not None else out)
    return [_describe(n, values.get(n), size) for n in names]


def trace_feature_layers(model: nn.Module, input_size: int = 224) -> list[dict]:
    """The tracing fallback: default layers of a model that declares none.

    One forward pass on a seeded random ``(2, 3, s, s)`` batch (``s`` = 64, else
    ``input_size``) records every module's output.  The layers are the block / stage
    outputs -- torchvision ResNet's ``layerN``, else the children of the shallowest
    block container (``blocks``, ``stages``, ``layers``, ``features``, ``layer``,
    ``trunk_output``), else the top-level children except dropout / identity /
    flatten and the classifier -- followed by the penultimate layer: the earliest
    module of the run executed just before the classifier (:func:`find_classifier`)
    whose outputs equal its input (``avgpool`` for torchvision's ResNet,
    ``global_pool`` for timm's EfficientNet), or the virtual ``"penultimate"`` when no
    module outputs it.  A layer whose average-pooled features equal (exactly: the
    result must not depend on the weights' values) those of a later one is dropped (a
    ResNet's ``layer4`` duplicates ``avgpool``).

    Parameters
    ----------
    model : torch.nn.Module
    input_size : int
        Native resolution, tried when 64 px fails.

    Returns
    -------
    list of dict
        ``{"name", "channels", "reduction"}`` per layer, as :func:`feature_info`.
        When no forward pass runs (inputs that are not 3-channel images), the
        structural stages and ``"penultimate"``, with ``channels``/``reduction`` None.
    """
    clf = find_classifier(model)
    clf_name = clf[0] if clf is not None else None
    stages = _stage_layers(model, clf_name)
    records, clf_in, out, size = _run_recorded(model, input_size)
    if records is None:
        return [_describe(n, None, None) for n in stages + ["penultimate"]]
    target = clf_in if clf is not None else out
    end = len(records)
    if clf is not None:
        end = next((i for i, (n, _) in enumerate(records) if n == clf_name), len(records))
    run = []  # modules executed just before the classifier that output its input
    for name, value in reversed(records[:end]):
        if not _same(value, target):
            break
        run.append(name)
    # prefer a container over its parts (timm's "global_pool" over "global_pool.pool"),
    # then the earliest: it names where the representation is made ("avgpool"), not a
    # Dropout / Identity that merely passes it on
    outer = [n for n in run if not any(n.startswith(o + ".") for o in run)]
    penultimate = outer[-1] if outer else "penultimate"
    last_value = {}
    for name, value in records:
        last_value[name] = value  # a reused module: its last call
    last_value["penultimate"] = target
    names = [s for s in stages if s != penultimate and s in last_value] + [penultimate]
    # drop a layer whose pooled features a later layer repeats
    pooled = {n: _avg(last_value[n]) for n in names if last_value[n] is not None}
    kept = [n for i, n in enumerate(names)
            if not any(n in pooled and m in pooled and pooled[n].shape == pooled[m].shape
                       and torch.equal(pooled[n], pooled[m]) for m in names[i + 1:])]
    return [_describe(n, last_value[n], size) for n in kept]


# ------------------------------------------------------------------------ resolving
def resolve_layers(model: nn.Module, layers: Any) -> list[str]:
    """Turn a layer request into a list of valid layer names.

    Parameters
    ----------
    model : torch.nn.Module
    layers : None, str or iterable of str
        ``None``, ``"default"`` or ``"all"``: :func:`feature_layers`; a layer name, a
        comma-separated string of names (``"blocks.2, penultimate"``) or a list of
        names, among them the virtual ``"penultimate"`` and ``"output"``.

    Returns
    -------
    list of str
        The names in the order requested, duplicates removed.

    Raises
    ------
    ValueError
        An empty request, a non-string name, or an unknown name (the message suggests
        close matches and lists the valid names).
    """
    if layers is None or (isinstance(layers, str) and layers.strip() in _DEFAULT_REQUESTS):
        return feature_layers(model)
    if isinstance(layers, str):
        names = [n.strip() for n in layers.split(",") if n.strip()]
    else:
        try:
            names = list(layers)
        except TypeError:
            raise ValueError(f"layers must be None, 'default', 'all', a layer name, a "
                             f"comma-separated string or a list of names; got "
                             f"{type(layers).__name__}") from None
    if not names:
        raise ValueError("layers is empty: pass at least one layer name "
                         "(see list_layers(model)) or None for the defaults")
    bad_type = [n for n in names if not isinstance(n, str)]
    if bad_type:
        raise ValueError(f"layer names must be strings; got {[repr(b) for b in bad_type[:5]]}")
    names = list(dict.fromkeys(names))  # de-duplicate, keep order
    valid = list_layers(model)
    valid_set = set(valid)
    unknown = [n for n in names if n not in valid_set]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, valid, n=3, cutoff=0.5)
            if close:
                hints.append(f"{n!r} -> did you mean {', '.join(map(repr, close))}?")
        shown = valid if len(valid) <= 40 else valid[:20] + ["..."] + valid[-10:]
        raise ValueError(
            f"unknown layer name(s) {unknown} for {type(model).__name__}. "
            + (" ".join(hints) + " " if hints else "")
            + f"Valid names ({len(valid)}): {', '.join(shown)}. "
            "See list_layers(model) for all of them.")
    return names


def hook_points(model: nn.Module, names: list[str]) -> dict[str, tuple[nn.Module, bool]]:
    """Where to read each resolved layer: ``name -> (module, True for its input)``.

    Parameters
    ----------
    model : torch.nn.Module
    names : list of str
        Names from :func:`resolve_layers`.

    Returns
    -------
    dict
        A real sub-module is read at its output; ``"penultimate"`` at the input of
        :func:`find_classifier` (the model output when there is none); ``"output"`` at
        the model's output.
    """
    modules = dict(model.named_modules())
    points = {}
    for name in names:
        if name and name in modules:
            points[name] = (modules[name], False)
        elif name == "penultimate":
            clf = find_classifier(model)
            points[name] = (clf[1], True) if clf is not None else (model, False)
        elif name == "output":
            points[name] = (model, False)
        else:
            raise ValueError(f"unknown layer {name!r}; resolve names with resolve_layers first")
    return points
