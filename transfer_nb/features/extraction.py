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

Which layers, and where each is read, is decided by
:mod:`transfer_nb.models.layers` (:func:`~transfer_nb.models.layers.resolve_layers`,
:func:`~transfer_nb.models.layers.hook_points`); this module only hooks those names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transfer_nb import training as _training
from transfer_nb.cache import cache_dir, features_cache_key, load_arrays, save_arrays
from transfer_nb.data.batching import as_image_tensor, data_len, plan_batches
from transfer_nb.models import layers as _layers
from transfer_nb.models.pooling import pool_features, resolve_pools

__all__ = ["extract_features", "FeatureExtractionError"]


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


def _cache_path(cache: Any, key: str) -> Path | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return cache_dir("features") / f"{key}.npz"
    if isinstance(cache, (str, Path)):
        return Path(cache) / f"{key}.npz"
    raise ValueError(f"cache must be None, False, True or a directory path; "
                     f"got {type(cache).__name__}")


# --------------------------------------------------------------------------- device
def _module_devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in list(model.parameters()) + list(model.buffers())}


def _placement(model: nn.Module, device: Any) -> tuple[torch.device, bool]:
    """(device for the inputs, whether the model must be moved there).

    The device itself is chosen by :func:`transfer_nb.training.resolve_device` (the one
    device picker of the library); this only adds what is specific to a model that is
    already placed: a model spread over several devices is run where it is.
    """
    current = _module_devices(model)
    if len(current) > 1:
        if device is not None:
            raise ValueError(f"the model's tensors live on several devices "
                             f"{sorted(map(str, current))}; pass device=None to run it "
                             "where it is")
        return next(iter(model.parameters())).device, False
    run = _training.resolve_device(device)
    if run.type == "cuda" and run.index is None:
        run = torch.device("cuda", torch.cuda.current_device())
    return run, bool(current) and current != {run}


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
        is: its batch size and workers win) or an ``(n, C, H, W)`` tensor.  Items must
        be image tensors (PIL images are refused with the fix: ``ToTensor()``).  A
        ``DataLoader`` must yield the data in order (``shuffle=False``, i.e. a
        ``SequentialSampler``): a shuffled one is refused with a ValueError, because
        its rows could not be matched with the data set's labels.
    layers : None, "default", "all", str or list of str
        Anything :func:`transfer_nb.models.layers.resolve_layers` accepts: names from
        ``list_layers(model)`` (the virtual ``"penultimate"`` and ``"output"``
        included), as a list or a comma-separated string; ``None``, ``"default"`` or
        ``"all"``: the model's default layers
        (:func:`transfer_nb.models.layers.feature_layers`: every block / stage output
        and the penultimate representation).
    pool : str or dict
        One of :data:`POOLS` for every layer, or a dict ``layer -> pool`` (layers not
        in it are averaged).  See :func:`pool_features`.
    batch_size : int
        Images per forward pass (ignored for a ``DataLoader``).
    device : None, str or torch.device
        Chosen by :func:`transfer_nb.training.resolve_device` (``None`` / ``"auto"``:
        CUDA when available, else the CPU; a device this machine lacks is a
        ValueError before any work).  The model is moved there for the
        pass and moved back afterwards (a model spread over several devices is run
        where it is).
    cache : None, bool, str or Path
        ``True``: cache the result in ``transfer_nb.cache.cache_dir("features")``; a
        path: cache in that directory; ``None`` / ``False``: no cache.  The key covers
        weights, model class and structure, the data's *content*
        (:func:`transfer_nb.cache.data_fingerprint`: images, ``.normalize``,
        transforms), layers, pooling and the library version (see
        :func:`transfer_nb.cache.features_cache_key`); a corrupted file is recomputed.
        Data whose content cannot be described (an ``IterableDataset``, items that
        change between reads) is refused with a ValueError rather than risk returning
        another data set's features.  A cache that cannot be written (read-only
        folder) gives a :class:`transfer_nb.cache.CacheWriteWarning`; the features are
        returned all the same.
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
        Empty data, unknown / empty layer list, non-image inputs (PIL images), bad
        ``pool``, a shuffled ``DataLoader``, a device this machine does not have.
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
    if device is not None:
        _training.resolve_device(device)  # a device this machine lacks: fail before any work
    names = _layers.resolve_layers(model, layers)
    pools = resolve_pools(names, pool)
    if data_len(data) == 0:
        raise ValueError("data is empty: there is nothing to extract features from")

    path = None
    if cache is not None and cache is not False:
        path = _cache_path(cache, features_cache_key(model, data, names, pools,
                                                     head2toe_target))
        hit = _load_hit(path, names, data_len(data))
        if hit is not None:
            return hit

    result = _extract(model, data, names, pools, int(batch_size), device, progress,
                      num_workers, int(head2toe_target), stop_early)
    if path is not None:
        save_arrays(path, result)
    return result


def _load_hit(path: Path, names: list[str], n: int | None) -> dict[str, np.ndarray] | None:
    arrays = load_arrays(path)
    if arrays is None:
        return None
    ok = all(name in arrays and arrays[name].ndim == 2
             and (n is None or arrays[name].shape[0] == n) for name in names)
    if not ok:  # stale or foreign file under our key: recompute and overwrite
        return None
    return {name: arrays[name] for name in names}


def _extract(model, data, names, pools, batch_size, device, progress, num_workers,
             head2toe_target, stop_early):
    from tqdm.auto import tqdm

    batches, n_expected, n_batches = plan_batches(data, batch_size, num_workers)
    if n_expected == 0:
        raise ValueError("data is empty: there is nothing to extract features from")
    run_device, move = _placement(model, device)
    home = next(iter(_module_devices(model)), None)  # one device when move is True
    param = next(iter(model.parameters()), None)
    in_dtype = param.dtype if param is not None and param.is_floating_point() else None

    points = _layers.hook_points(model, names)
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
                x = as_image_tensor(batch, f"batch {b}")
                x = x.to(run_device, dtype=in_dtype if in_dtype is not None else x.dtype)
                captured.clear()
                state["stop"] = stop_early and b > 0
                _forward(model, x, b, rows, names, captured)
                missing = [name for name in names if name not in captured]
                if missing:
                    raise FeatureExtractionError(
                        f"layer(s) {missing} did not run in the forward pass of batch {b}; "
                        "they are not used by model.forward -- choose others "
                        "(see feature_layers(model))")
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
