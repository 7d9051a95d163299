"""Feature extraction: one forward pass, forward hooks on named layers, pooled, streamed.

:func:`extract_features` runs a model once over a data set and returns, for every
requested layer, an ``(n, d)`` float32 array of *pooled* activations, rows in data
order.  Three properties matter for the rest of the library (TransRate per layer,
Head2Toe, linear probes):

* **one pass for all layers** -- forward hooks on named sub-modules capture every
  requested layer in the same forward pass;
* **pooled inside the hook** -- a ``(B, C, H, W)`` map is reduced to ``(B, d)`` before
  the hook returns, so the full map is never kept alive beyond the module that made it;
* **streamed** -- each batch's pooled rows are copied into a preallocated numpy array,
  so memory is the output arrays plus one batch of activations, whatever ``n`` is.

Layer names are the names of :meth:`torch.nn.Module.named_modules` (``"blocks.3"``,
``"layer2"``), plus two *virtual* names that every model has:

``"penultimate"``
    the **input** of the model's classifier, taken to be its last
    :class:`torch.nn.Linear` in registration order provided that no module with
    parameters is registered after it; captured by a forward *pre*-hook -- i.e. the pooled representation a linear probe
    or the classifier sees, whatever the architecture calls its pooling module
    (``global_pool``, ``avgpool``, ``fc_norm`` ...).  A model without such a ``Linear``
    (e.g. a timm model built with ``num_classes=0``) has the model output as its
    penultimate layer.
``"output"``
    the model's own output (logits for a classifier; LEEP and NCE need them).

A real sub-module that happens to be called ``penultimate`` or ``output`` takes
precedence over the virtual name.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import (DataLoader, Dataset, IterableDataset, SequentialSampler,
                              Subset, TensorDataset)

__all__ = ["extract_features", "list_layers", "default_layers", "pool_features",
           "features_cache_key", "FeatureExtractionError", "POOLS", "VIRTUAL_LAYERS"]

#: pooling rules understood by :func:`pool_features`
POOLS = ("avg", "max", "head2toe", "flatten")
#: names that resolve to a hook point without being a sub-module name
VIRTUAL_LAYERS = ("penultimate", "output")

# names of the module containers whose children are a network's blocks / stages
# (timm: blocks / stages / layers, torchvision: features, HF transformers: layer)
_CONTAINER_NAMES = ("blocks", "stages", "layers", "features", "layer")
# top-level children that carry no representation of their own
_SKIP_CHILD_TYPES = (nn.Dropout, nn.Identity, nn.Flatten)


class FeatureExtractionError(RuntimeError, ValueError):
    """A forward pass failed during extraction; the message says on which batch / layer.

    It is both a :class:`RuntimeError` (what torch raises) and a :class:`ValueError`
    (what bad input raises everywhere else in the library) so that either ``except``
    catches it.
    """


class _StopForward(BaseException):
    """Raised by the last needed hook to skip the rest of the network.

    A ``BaseException`` so that a model's own ``except Exception`` cannot swallow it.
    """


# --------------------------------------------------------------------------- layers
def list_layers(model: nn.Module) -> list[str]:
    """Every layer name :func:`extract_features` can hook, in module order.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    list of str
        All sub-module names of ``model.named_modules()`` (the root excluded), then the
        virtual names ``"penultimate"`` and ``"output"`` (see the module docstring)
        unless a real sub-module already has that name.
    """
    names = [name for name, _ in model.named_modules() if name]
    names += [v for v in VIRTUAL_LAYERS if v not in names]
    return names


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The classifier: the last ``Linear`` with no parametrised module registered after it.

    Without the second condition a headless model (timm ``num_classes=0``: the head is
    an ``Identity``) would have the last ``Linear`` of its last block -- e.g. an MLP's
    ``fc2`` before the final norm -- taken for its classifier.
    """
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
        elif found is not None and any(True for _ in module.parameters(recurse=False)):
            found = None
    return found


def default_layers(model: nn.Module) -> list[str]:
    """The layers extracted when ``layers=None``: every block / stage output + penultimate.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`transfer_nb.load_model` carries the list itself as
        ``model.transfer_nb_layers``; that list is returned as is.

    Returns
    -------
    list of str
        Otherwise a heuristic that covers the common families:

        * torchvision ResNet-like: the top-level ``layer1``, ``layer2``, ...;
        * a block container (timm ``blocks`` / ``stages`` / ``layers``, torchvision
          ``features``, transformers ``layer``): its children, e.g. ``blocks.0`` ...;
          the shallowest such container wins;
        * anything else: the top-level children except the final classifier and
          dropout / identity / flatten modules;

        followed by ``"penultimate"`` (the input of the last ``Linear``, or the model
        output when there is no ``Linear``).
    """
    explicit = getattr(model, "transfer_nb_layers", None)
    if explicit is not None:
        return list(explicit)

    children = list(model.named_children())
    if not children:
        return ["output"]

    stage_names = [n for n, _ in children if re.fullmatch(r"layer\d+", n)]
    if len(stage_names) >= 2:
        layers = stage_names
    else:
        layers = _container_children(model)
        if layers is None:
            last = _last_linear(model)
            layers = [n for n, m in children
                      if not isinstance(m, _SKIP_CHILD_TYPES)
                      and not (last is not None and m is last[1])]
    return [n for n in layers if n != "penultimate"] + ["penultimate"]


def _container_children(model: nn.Module) -> list[str] | None:
    best: tuple[int, int, str, nn.Module] | None = None
    for name, module in model.named_modules():
        if not name or name.rsplit(".", 1)[-1] not in _CONTAINER_NAMES:
            continue
        if not isinstance(module, (nn.Sequential, nn.ModuleList)) or len(module) < 2:
            continue
        # shallowest first, then the one with the most children
        rank = (name.count("."), -len(module), name, module)
        if best is None or rank[:2] < best[:2]:
            best = rank
    if best is None:
        return None
    name, module = best[2], best[3]
    return [f"{name}.{child}" for child, _ in module.named_children()]


def _resolve_layers(model: nn.Module, layers: Any) -> list[str]:
    if layers is None or (isinstance(layers, str) and layers == "all"):
        # "all" means every *default* layer (every block + penultimate): hooking every
        # sub-module would include modules reused within a forward (torchvision's
        # BasicBlock.relu), which have no single output per example.
        names = default_layers(model)
    elif isinstance(layers, str):
        names = [layers]
    else:
        try:
            names = list(layers)
        except TypeError:
            raise ValueError(f"layers must be None, 'all', a layer name or a list of "
                             f"names; got {type(layers).__name__}") from None
    if not names:
        raise ValueError("layers is empty: pass at least one layer name "
                         "(see transfer_nb.list_layers(model)) or None for the defaults")
    bad_type = [n for n in names if not isinstance(n, str)]
    if bad_type:
        raise ValueError(f"layer names must be strings; got {bad_type[:5]!r}")
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
            "See transfer_nb.list_layers(model) for all of them.")
    return names


# -------------------------------------------------------------------------- pooling
def pool_features(x: torch.Tensor, pool: str = "avg",
                  head2toe_target: int = 8192) -> torch.Tensor:
    """Reduce one layer's activations to a ``(batch, d)`` matrix.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` feature maps (channels first; more trailing spatial dims are
        treated alike), ``(B, N, C)`` token sequences (transformers), ``(B, d)``
        vectors (returned as they are) or ``(B,)`` scalars (made ``(B, 1)``).
    pool : {"avg", "max", "head2toe", "flatten"}
        ``"avg"`` / ``"max"``: global average / max over the spatial positions (tokens).
        ``"head2toe"``: the rule of Evci et al. (2022): a map with ``C >= head2toe_target``
        channels is globally averaged; otherwise it is average-pooled to about
        ``head2toe_target / C`` positions -- a square grid of side
        ``round(sqrt(head2toe_target / C))``, capped by the map size, via
        :func:`torch.nn.functional.adaptive_avg_pool2d` (tokens: ``adaptive_avg_pool1d``
        to ``round(head2toe_target / C)`` positions) -- and flattened, so every layer
        contributes about ``head2toe_target`` features.
        ``"flatten"``: everything, unpooled (large!).
    head2toe_target : int
        Target feature count per layer for ``pool="head2toe"``.

    Returns
    -------
    torch.Tensor
        ``(B, d)``.
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS}")
    if x.ndim == 0:
        raise ValueError("a layer produced a scalar; it has no batch dimension")
    if x.ndim == 1:
        return x.reshape(-1, 1)
    if x.ndim == 2 or pool == "flatten":
        return x.reshape(x.shape[0], -1)
    if x.ndim == 3:  # (B, N, C): tokens along dim 1, channels last
        if pool == "avg":
            return x.mean(dim=1)
        if pool == "max":
            return x.amax(dim=1)
        b, n, c = x.shape
        if c >= head2toe_target:
            return x.mean(dim=1)
        positions = max(1, min(n, round(head2toe_target / c)))
        return F.adaptive_avg_pool1d(x.transpose(1, 2), positions).reshape(b, -1)
    spatial = tuple(range(2, x.ndim))  # (B, C, *spatial): channels first
    if pool == "avg":
        return x.mean(dim=spatial)
    if pool == "max":
        return x.amax(dim=spatial)
    b, c = x.shape[:2]
    if c >= head2toe_target or x.ndim != 4:
        return x.mean(dim=spatial)
    side = max(1, round((head2toe_target / c) ** 0.5))
    grid = (min(side, x.shape[2]), min(side, x.shape[3]))
    return F.adaptive_avg_pool2d(x, grid).reshape(b, -1)


def _resolve_pools(layers: list[str], pool: Any) -> dict[str, str]:
    if isinstance(pool, str):
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS} "
                             "or a dict layer -> pool")
        return {name: pool for name in layers}
    if isinstance(pool, Mapping):
        extra = [k for k in pool if k not in layers]
        if extra:
            raise ValueError(f"pool names layer(s) {extra} that are not extracted; "
                             f"the requested layers are {layers}")
        bad = {k: v for k, v in pool.items() if v not in POOLS}
        if bad:
            raise ValueError(f"unknown pool(s) {bad}; expected one of {POOLS}")
        # layers the dict does not mention use global average pooling
        return {name: pool.get(name, "avg") for name in layers}
    raise ValueError(f"pool must be one of {POOLS} or a dict layer -> pool; "
                     f"got {type(pool).__name__}")


# ----------------------------------------------------------------------------- data
def _as_image_tensor(batch: Any, where: str) -> torch.Tensor:
    """The image part of a batch: ``batch[0]`` of an (image, label) pair, or the batch."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError(f"{where}: empty batch")
        batch = batch[0]
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(batch)
    if not isinstance(batch, torch.Tensor):
        raise ValueError(f"{where}: expected image tensors (or (image, label) pairs), got "
                         f"{type(batch).__name__}; add a transform that makes tensors "
                         "(e.g. torchvision.transforms.ToTensor())")
    if not batch.is_floating_point():
        raise ValueError(f"{where}: images must be floating point, got {batch.dtype}; "
                         "convert them (e.g. x.float() / 255) and normalise them the way "
                         "the model expects")
    if batch.ndim < 2:
        raise ValueError(f"{where}: expected a batch of images (batch, channels, H, W), "
                         f"got shape {tuple(batch.shape)}")
    return batch


def _plan_batches(data: Any, batch_size: int, num_workers: int
                  ) -> tuple[Iterable, int | None, int | None]:
    """Return (iterable of raw batches, expected row count or None, batch count or None)."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim < 2:
            raise ValueError(f"a tensor of images must be (n, channels, H, W); got shape "
                             f"{tuple(data.shape)}")
        return _slices(data, batch_size), len(data), -(-len(data) // batch_size)
    if isinstance(data, DataLoader):
        return data, _loader_rows(data), _safe_len(data)
    if isinstance(data, TensorDataset):
        # slicing the stored tensor is much cheaper than collating items one by one
        images = data.tensors[0]
        return _slices(images, batch_size), len(images), -(-len(images) // batch_size)
    if isinstance(data, IterableDataset):
        loader = DataLoader(data, batch_size=batch_size, num_workers=num_workers)
        return loader, None, None
    if isinstance(data, Dataset):
        loader = DataLoader(data, batch_size=batch_size, shuffle=False,
                            num_workers=num_workers)
        return loader, len(data), len(loader)
    raise ValueError(f"data must be a torch Dataset of (image, label) pairs, a DataLoader "
                     f"or a tensor of images; got {type(data).__name__}")


def _slices(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


def _safe_len(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def _loader_rows(loader: DataLoader) -> int | None:
    """Rows a DataLoader yields, when that is knowable without iterating it."""
    if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        return None  # custom batch sampler or iterable: count while going
    rows = _safe_len(loader.sampler)
    if rows is None:
        return None
    if loader.drop_last:
        rows = (rows // loader.batch_size) * loader.batch_size
    return rows


def _data_len(data: Any) -> int | None:
    if isinstance(data, DataLoader):
        return _loader_rows(data)
    if isinstance(data, (IterableDataset,)):
        return None
    return _safe_len(data)


# ---------------------------------------------------------------------------- cache
def _hash_tensor(h: "hashlib._Hash", x: Any) -> None:
    t = torch.as_tensor(x).detach().cpu().contiguous()
    h.update(f"{tuple(t.shape)}|{t.dtype}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def _data_fingerprint(data: Any) -> Any:
    """What defines the rows fed to the model, for the cache key.

    Uses ``data.spec`` when the data set has one (``transfer_nb.load_dataset``),
    hashes the image tensor of tensors / ``TensorDataset`` s, and otherwise hashes every
    item's image (one extra pass over the data, no model: still cheaper than a miss).
    """
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        h = hashlib.sha256()
        _hash_tensor(h, data)
        return {"tensor": h.hexdigest()}
    if isinstance(data, DataLoader):
        sampler = data.sampler if data.batch_size is not None else None
        if not isinstance(sampler, SequentialSampler):
            raise ValueError("cache=True needs a DataLoader that yields the data set in "
                             "order (shuffle=False, no custom sampler / batch_sampler): "
                             "the cache key could not describe the rows otherwise")
        fp = {"loader_of": _data_fingerprint(data.dataset), "drop_last": data.drop_last,
              "collate": _qualname(data.collate_fn)}
        if data.drop_last:
            fp["batch_size"] = data.batch_size
        return fp
    if isinstance(data, IterableDataset):
        raise ValueError("cache=True is not supported for an IterableDataset: its content "
                         "cannot be described without consuming it; pass a map-style "
                         "Dataset or cache=None")
    spec = getattr(data, "spec", None)
    if spec is not None:
        return {"spec": spec, "class": _qualname(type(data)), "len": len(data)}
    if isinstance(data, TensorDataset):
        h = hashlib.sha256()
        _hash_tensor(h, data.tensors[0])  # only the images reach the model
        return {"tensor_dataset": h.hexdigest()}
    if isinstance(data, Subset):
        h = hashlib.sha256()
        _hash_tensor(h, torch.as_tensor(list(data.indices), dtype=torch.int64))
        return {"subset_of": _data_fingerprint(data.dataset), "indices": h.hexdigest()}
    if isinstance(data, Dataset):
        h = hashlib.sha256()
        for i in range(len(data)):
            _hash_tensor(h, _as_image_tensor(data[i], f"item {i}"))
        return {"items": h.hexdigest(), "len": len(data)}
    raise ValueError(f"cannot build a cache key for data of type {type(data).__name__}")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def features_cache_key(model: nn.Module, data: Any, layers: Sequence[str],
                       pools: Mapping[str, str], head2toe_target: int) -> str:
    """SHA-256 key of every input that determines :func:`extract_features`' result.

    Covers the model weights (:func:`transfer_nb.cache.hash_state_dict`), its class
    and structure (``repr(model)``: kernel sizes, activations ... that are not weights),
    the data (see ``_data_fingerprint``), the layer list in order, the pooling of each
    layer, ``head2toe_target`` when a layer uses it, and the library version.  Batch
    size, device and progress are left out: they do not change the result beyond
    float32 rounding.
    """
    from transfer_nb import __version__
    from transfer_nb.cache import hash_inputs, hash_state_dict

    inputs = {
        "kind": "features",
        "version": __version__,
        "model_class": _qualname(type(model)),
        "model_structure": hashlib.sha256(repr(model).encode()).hexdigest(),
        "weights": hash_state_dict(model.state_dict()),
        "data": _data_fingerprint(data),
        "layers": list(layers),
        "pool": [pools[name] for name in layers],
    }
    if "head2toe" in pools.values():
        inputs["head2toe_target"] = int(head2toe_target)
    return hash_inputs(**inputs)


def _cache_path(cache: Any, key: str) -> Path | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        from transfer_nb.cache import cache_dir
        return cache_dir("features") / f"{key}.npz"
    if isinstance(cache, (str, Path)):
        return Path(cache) / f"{key}.npz"
    raise ValueError(f"cache must be None, False, True or a directory path; "
                     f"got {type(cache).__name__}")


# --------------------------------------------------------------------------- device
def _module_devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in list(model.parameters()) + list(model.buffers())}


def _pick_device(model: nn.Module, device: Any) -> tuple[torch.device, bool]:
    """(device for the inputs, whether the model must be moved there)."""
    current = _module_devices(model)
    if device is None:
        if len(current) > 1:
            # a model spread over devices is placed by its owner: leave it alone
            return next(iter(model.parameters())).device, False
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if len(current) > 1:
        raise ValueError(f"the model's tensors live on several devices {sorted(map(str, current))}; "
                         "pass device=None to run it where it is")
    return device, bool(current) and current != {device}


# ------------------------------------------------------------------------- extract
def extract_features(model: nn.Module, data: Any, layers: Any = None,
                     pool: Any = "avg", batch_size: int = 64, device: Any = None,
                     cache: Any = None, progress: bool = True, num_workers: int = 0,
                     head2toe_target: int = 8192, stop_early: bool = True
                     ) -> dict[str, np.ndarray]:
    """Pooled activations of several layers, from one streamed forward pass.

    Parameters
    ----------
    model : torch.nn.Module
        Takes a batch of images the way they come out of ``data`` (already normalised).
    data : Dataset, DataLoader, torch.Tensor or numpy.ndarray
        A map-style ``Dataset`` of ``(image, label)`` pairs (or of bare images), a
        ``TensorDataset`` (its first tensor is the images), a ``DataLoader`` (used as it
        is: its batch size, sampler and workers win) or an ``(n, C, H, W)`` tensor.
    layers : None, "all", str or list of str
        Names from :func:`list_layers`. ``None`` or ``"all"``: :func:`default_layers`
        (every block / stage output and ``"penultimate"``).
    pool : str or dict
        One of :data:`POOLS` for every layer, or a dict ``layer -> pool`` (layers not
        in it are averaged).  See :func:`pool_features`.
    batch_size : int
        Images per forward pass (ignored for a ``DataLoader``).
    device : None, str or torch.device
        ``None``: CUDA when available, else the CPU.  The model is moved there for the
        pass and moved back afterwards (a model spread over several devices is run
        where it is).
    cache : None, bool, str or Path
        ``True``: cache the result in ``transfer_nb.cache.cache_dir("features")``; a
        path: cache in that directory; ``None`` / ``False``: no cache.  The key covers
        weights, model class and structure, data, layers, pooling and the library
        version (see :func:`features_cache_key`); a corrupted file is recomputed.
    progress : bool
        Show a ``tqdm.auto`` progress bar over batches.
    num_workers : int
        DataLoader workers when ``data`` is a ``Dataset``.
    head2toe_target : int
        Features per layer aimed at by ``pool="head2toe"`` (8192 as in the paper).
    stop_early : bool
        Stop each forward pass once every requested layer has been captured (the
        classifier and later blocks are skipped); it changes no result.

    Returns
    -------
    dict of str -> numpy.ndarray
        ``layer -> (n, d)`` float32, rows in data order, keys in the order requested.

    Raises
    ------
    ValueError
        Empty data, unknown / empty layer list, non-image inputs, bad ``pool``.
    FeatureExtractionError
        The forward pass failed (the message names the batch and the last layer that
        ran) or a layer did not run exactly once per forward pass.

    Notes
    -----
    The model runs under ``torch.inference_mode()`` in eval mode; its training flags,
    device and hooks are restored afterwards, also when an error interrupts the pass.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(head2toe_target, (int, np.integer)) or head2toe_target < 1:
        raise ValueError(f"head2toe_target must be a positive integer, got {head2toe_target!r}")
    names = _resolve_layers(model, layers)
    pools = _resolve_pools(names, pool)
    if _data_len(data) == 0:
        raise ValueError("data is empty: there is nothing to extract features from")

    path = None
    if cache is not None and cache is not False:
        path = _cache_path(cache, features_cache_key(model, data, names, pools,
                                                     head2toe_target))
        hit = _load_hit(path, names, _data_len(data))
        if hit is not None:
            return hit

    result = _extract(model, data, names, pools, int(batch_size), device, progress,
                      num_workers, int(head2toe_target), stop_early)
    if path is not None:
        from transfer_nb.cache import save_arrays
        save_arrays(path, result)
    return result


def _load_hit(path: Path, names: list[str], n: int | None) -> dict[str, np.ndarray] | None:
    from transfer_nb.cache import load_arrays
    arrays = load_arrays(path)
    if arrays is None:
        return None
    ok = all(name in arrays and arrays[name].ndim == 2
             and (n is None or arrays[name].shape[0] == n) for name in names)
    if not ok:  # stale or foreign file under our key: recompute and overwrite
        return None
    return {name: arrays[name] for name in names}


def _hook_points(model: nn.Module, names: list[str]) -> dict[str, tuple[nn.Module, bool]]:
    """layer name -> (module to hook, True for a pre-hook on its input)."""
    modules = dict(model.named_modules())
    points = {}
    for name in names:
        if name in modules and name:
            points[name] = (modules[name], False)
        elif name == "penultimate":
            last = _last_linear(model)
            points[name] = (last[1], True) if last is not None else (model, False)
        elif name == "output":
            points[name] = (model, False)
        else:  # pragma: no cover - _resolve_layers already checked
            raise ValueError(f"unknown layer {name!r}")
    return points


def _extract(model, data, names, pools, batch_size, device, progress, num_workers,
             head2toe_target, stop_early):
    from tqdm.auto import tqdm

    batches, n_expected, n_batches = _plan_batches(data, batch_size, num_workers)
    if n_expected == 0:
        raise ValueError("data is empty: there is nothing to extract features from")
    run_device, move = _pick_device(model, device)
    home = next(iter(_module_devices(model)), None)  # one device when move is True
    param = next(iter(model.parameters()), None)
    in_dtype = param.dtype if param is not None and param.is_floating_point() else None

    points = _hook_points(model, names)
    # the root's own forward hook fires after the whole network: no point stopping then
    stop_early = stop_early and not any(m is model for m, _ in points.values())
    captured: dict[str, torch.Tensor] = {}
    handles = []
    # the first batch always runs the whole network, so that a module reused within
    # forward (which would silently give only its first call's output) is detected
    state = {"stop": False}

    def make_hook(name: str, pre: bool):
        layer_pool = pools[name]

        def hook(module, args, output=None):
            value = args[0] if pre else output
            if isinstance(value, (tuple, list)):  # e.g. attention returning (out, weights)
                value = value[0] if value and isinstance(value[0], torch.Tensor) else value
            if not isinstance(value, torch.Tensor):
                raise FeatureExtractionError(
                    f"layer {name!r} produced a {type(value).__name__}, not a tensor; "
                    "choose another layer (see list_layers(model))")
            if name in captured:
                raise FeatureExtractionError(
                    f"layer {name!r} ran more than once in one forward pass (the module "
                    "is reused), so it has no single output per example; choose its "
                    "parent block instead")
            captured[name] = pool_features(value, layer_pool, head2toe_target)
            if state["stop"] and len(captured) == len(names):
                raise _StopForward
        return hook

    training = [(m, m.training) for m in model.modules()]
    out: dict[str, np.ndarray] = {}
    rows = 0
    bar = None
    try:
        if move:
            model.to(run_device)
        model.eval()
        for name, (module, pre) in points.items():
            if pre:
                handles.append(module.register_forward_pre_hook(make_hook(name, True)))
            else:
                handles.append(module.register_forward_hook(make_hook(name, False)))
        bar = tqdm(total=n_batches, desc="extract_features", unit="batch",
                   disable=not progress, leave=False)
        with torch.inference_mode():
            for b, batch in enumerate(batches):
                x = _as_image_tensor(batch, f"batch {b}")
                x = x.to(run_device, dtype=in_dtype if in_dtype is not None else x.dtype)
                captured.clear()
                state["stop"] = stop_early and b > 0
                _forward(model, x, b, rows, names, captured)
                missing = [name for name in names if name not in captured]
                if missing:
                    raise FeatureExtractionError(
                        f"layer(s) {missing} did not run in the forward pass of batch {b}; "
                        "they are not used by model.forward -- choose others "
                        "(see default_layers(model))")
                bsz = len(x)
                for name in names:
                    feats = captured[name]
                    if feats.shape[0] != bsz:
                        raise FeatureExtractionError(
                            f"layer {name!r} returned {feats.shape[0]} rows for a batch of "
                            f"{bsz} images; its first dimension is not the batch")
                    out[name] = _write(out.get(name), feats, rows, n_expected, name)
                rows += bsz
                captured.clear()
                bar.update(1)
    finally:
        captured.clear()
        for handle in handles:
            handle.remove()
        for module, flag in training:
            module.training = flag  # per module: a frozen BN may have been in eval
        if move:
            model.to(home)
        if bar is not None:
            bar.close()
    if rows == 0:
        raise ValueError("data is empty: there is nothing to extract features from")
    # trim only when the expected count was unknown or overestimated
    return {name: (arr if arr.shape[0] == rows else arr[:rows].copy())
            for name, arr in out.items()}


def _forward(model: nn.Module, x: torch.Tensor, b: int, start: int, names: list[str],
             captured: dict) -> None:
    """Run one batch; wrap torch's error with the batch and layer it happened at."""
    try:
        model(x)
    except _StopForward:
        pass  # every requested layer is in: the rest of the network is not needed
    except FeatureExtractionError:
        raise
    except Exception as err:
        done = [name for name in names if name in captured]
        where = (f"after layer {done[-1]!r} (the last requested layer that ran)" if done
                 else "before any requested layer ran")
        raise FeatureExtractionError(
            f"forward pass failed on batch {b} (rows {start}..{start + len(x) - 1}, "
            f"input shape {tuple(x.shape)}, dtype {x.dtype}) {where}: "
            f"{type(err).__name__}: {err}") from err


def _write(buf: np.ndarray | None, feats: torch.Tensor, start: int, n_expected: int | None,
           name: str) -> np.ndarray:
    """Copy one batch of pooled rows into the layer's preallocated output."""
    rows, d = feats.shape
    if buf is None:
        # allocate once, for the whole data set: the only memory that grows with n
        capacity = n_expected if n_expected is not None else max(rows, 1024)
        buf = np.empty((max(capacity, rows), d), dtype=np.float32)
    elif buf.shape[1] != d:
        raise FeatureExtractionError(
            f"layer {name!r} gave {d} features per example on rows {start}.. but "
            f"{buf.shape[1]} before; images of different sizes need pool='avg' or 'max'")
    if start + rows > buf.shape[0]:  # row count unknown (or underestimated): grow x2
        grown = np.empty((max(2 * buf.shape[0], start + rows), d), dtype=np.float32)
        grown[:start] = buf[:start]
        buf = grown
    buf[start:start + rows] = feats.detach().to("cpu", torch.float32).numpy()
    return buf
