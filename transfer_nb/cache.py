"""On-disk cache for expensive results, keyed on every input and written atomically.

Keys are SHA-256 digests of a canonical description of *all* inputs (model weights,
data spec, layers, pooling, hyper-parameters ...).  Files are written to a temporary
name in the same directory and moved into place with ``os.replace`` so that a crash
never leaves a half-written file under the final name, with the ordinary
umask-respecting mode (``0o666 & ~umask``).  A file that cannot be parsed back
(truncated, corrupted) is treated as a miss, removed and recomputed; a file that merely
cannot be *read* (permissions, a directory in its place) is a miss and is left alone.
A cache that cannot be written (read-only directory, a directory where the file should
be) is a :class:`CacheWriteWarning`, never an error: the computed result is returned.

Every data key comes from one function, :func:`data_fingerprint`, used by both the
feature cache (:func:`features_cache_key`) and the source-model cache
(:func:`transfer_nb.models.source.source_cache_key`).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from transfer_nb._version import __version__

__all__ = ["cache_dir", "hash_inputs", "hash_state_dict", "atomic_write_bytes",
           "write_cache_bytes", "read_cache_bytes", "save_arrays", "load_arrays",
           "cached_arrays", "discard_corrupt", "data_fingerprint", "features_cache_key", "CacheWriteWarning",
           "UncacheableDataError"]


class CacheWriteWarning(UserWarning):
    """A result was computed but could not be written to the cache (it is returned)."""


class UncacheableDataError(ValueError):
    """The data cannot be described by a cache key (so it must not be cached)."""


def cache_dir(kind: str = "") -> Path:
    """Return the cache directory (``$TRANSFER_NB_CACHE`` or ``~/.cache/transfer_nb``).

    The directory is created when possible.  One that cannot be created (read-only home,
    a file in its place) is not an error here: reads from it miss and writes to it give
    a :class:`CacheWriteWarning`, so the computation still runs.
    """
    root = os.environ.get("TRANSFER_NB_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "transfer_nb")
    path = Path(root) / kind if kind else Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # reported when (if) something is written there
    return path


def _canonical(obj: Any) -> Any:
    """Turn ``obj`` into something ``json.dumps`` renders identically every time."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"ndarray": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
                "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    try:  # torch tensors without importing torch at module level
        import torch
        if isinstance(obj, torch.Tensor):
            return _canonical(obj.detach().cpu().numpy())
        if isinstance(obj, torch.nn.Module):
            return hash_state_dict(obj.state_dict())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return repr(obj)


def hash_inputs(**inputs: Any) -> str:
    """SHA-256 hex digest of every keyword input (arrays and modules by content)."""
    text = json.dumps(_canonical(inputs), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_state_dict(state_dict: dict) -> str:
    """Digest of a model's parameters and buffers (names, shapes, dtypes and values)."""
    h = hashlib.sha256()
    for name, tensor in state_dict.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()


def _file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` would give a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``.

    The file gets the ordinary mode of a new file (``0o666 & ~umask``), not the
    ``0o600`` of :func:`tempfile.mkstemp`.  Raises ``OSError`` when it cannot be
    written (see :func:`write_cache_bytes` for the warning variant).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_cache_bytes(path: os.PathLike, data: bytes) -> bool:
    """:func:`atomic_write_bytes`, but a failure is a :class:`CacheWriteWarning`.

    Returns True when the file was written.  The computation that produced ``data`` is
    done: losing it because the cache is read-only (or a directory sits where the file
    should be) would be worse than not caching it.
    """
    try:
        atomic_write_bytes(path, data)
        return True
    except OSError as err:
        warnings.warn(f"could not write the cache file {str(path)!r} "
                      f"({type(err).__name__}: {err}); the result is returned but not "
                      "cached (set TRANSFER_NB_CACHE to a writable folder to cache it)",
                      CacheWriteWarning, stacklevel=3)
        return False


def read_cache_bytes(path: os.PathLike) -> bytes | None:
    """The bytes of a cache file; ``None`` when it is missing or cannot be read.

    A file that exists but cannot be read (no permission, a directory in its place) is
    a miss and is *not* touched: only content that fails to parse counts as corrupt.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return None


def discard_corrupt(path: os.PathLike) -> None:
    """Remove a cache file whose content could not be parsed (it is recomputed)."""
    try:
        Path(path).unlink()
    except OSError:
        pass


def save_arrays(path: os.PathLike, arrays: dict[str, np.ndarray]) -> bool:
    """Save a dict of arrays as ``.npz`` atomically; True when written.

    A file that cannot be written is a :class:`CacheWriteWarning` (see
    :func:`write_cache_bytes`), not an error.
    """
    import io
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return write_cache_bytes(path, buf.getvalue())


def load_arrays(path: os.PathLike) -> dict[str, np.ndarray] | None:
    """Load a dict of arrays saved by :func:`save_arrays`; ``None`` when missing or unreadable.

    A file whose content is corrupted (truncated, bad CRC, not an npz) is deleted so
    that the caller recomputes and rewrites it; a file that cannot be read at all
    (permissions, a directory) is a miss and is left in place.
    """
    import io
    raw = read_cache_bytes(path)
    if raw is None:
        return None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # truncated zip, bad CRC, not an npz at all ...
        discard_corrupt(path)
        return None


def cached_arrays(kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]],
                  directory: os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``key`` or compute, save and return them.

    A result that cannot be saved is returned all the same (with a
    :class:`CacheWriteWarning`).
    """
    base = Path(directory) if directory is not None else cache_dir(kind)
    path = base / f"{key}.npz"
    hit = load_arrays(path)
    if hit is not None:
        return hit
    result = compute()
    save_arrays(path, result)
    return result


# ------------------------------------------------------------ feature-extraction keys
def _hash_tensor(h: "hashlib._Hash", x: Any) -> None:
    import torch
    t = torch.as_tensor(x).detach().cpu().contiguous()
    h.update(f"{tuple(t.shape)}|{t.dtype}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def _hash_label(h: "hashlib._Hash", y: Any) -> None:
    try:
        _hash_tensor(h, y)
    except (TypeError, ValueError, RuntimeError):  # a string label, a dict ...
        h.update(repr(y).encode())
        h.update(b"|")


def _is_plain_image_dataset(data: Any) -> bool:
    """An ``ImageDataset`` whose items are its stored images, normalised (no override)."""
    from transfer_nb.data.base import ImageDataset  # lazy: pulls in torch
    cls = type(data)
    return (isinstance(data, ImageDataset) and cls.__getitem__ is ImageDataset.__getitem__
            and cls._prepare is ImageDataset._prepare)


def data_fingerprint(data: Any, *, labels: bool = False) -> Any:
    """A JSON-able description of *the content* of ``data``, for cache keys.

    The one fingerprint of the library: :func:`features_cache_key` uses it with
    ``labels=False`` (only the images reach the model) and
    :func:`transfer_nb.models.source.source_cache_key` with ``labels=True``.
    A ``spec`` attribute is never trusted alone (a user-built ``ImageDataset`` has a
    default one; images or ``.normalize`` can be changed in place): the content is
    always hashed, the ``spec`` only added.

    * tensor / array of images: its bytes, shape and dtype;
    * ``ImageDataset``: the stored images (bytes, shape, so image size), ``.normalize``
      and, with ``labels``, the targets and class names -- everything that defines its
      items, without a pass over them;
    * ``TensorDataset``: its first tensor (and, with ``labels``, the second);
    * ``Subset``: the indices and the fingerprint of the parent;
    * ``DataLoader`` yielding its data set in order: the data set's fingerprint (plus
      ``drop_last`` and the collate function);
    * any other map-style ``Dataset``: every item (image, and label with ``labels``),
      read once -- its transforms are therefore covered.

    Raises
    ------
    UncacheableDataError
        (a ``ValueError``) for what cannot be described: an ``IterableDataset``, a data
        set whose items change from one read to the next (random transforms), an
        unsupported type.
    ValueError
        A ``DataLoader`` that does not yield its rows in order (shuffled).
    """
    import torch
    from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

    from transfer_nb.data.batching import as_image_tensor, check_in_order  # lazy: pulls in torch

    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        h = hashlib.sha256()
        _hash_tensor(h, data)
        return {"tensor": h.hexdigest()}
    if isinstance(data, DataLoader):
        check_in_order(data)
        fp = {"loader_of": data_fingerprint(data.dataset, labels=labels),
              "drop_last": data.drop_last, "collate": _qualname(data.collate_fn)}
        if data.drop_last:
            fp["batch_size"] = data.batch_size
        return fp
    if isinstance(data, IterableDataset):
        raise UncacheableDataError(
            "an IterableDataset cannot be cached: its content cannot be described "
            "without consuming it; pass a map-style Dataset, or do not cache")
    spec = getattr(data, "spec", None)
    extra = {} if spec is None else {"spec": spec}
    if _is_plain_image_dataset(data):
        h = hashlib.sha256()
        _hash_tensor(h, data.images)
        fp = {"image_dataset": h.hexdigest(), "normalize": str(data.normalize), **extra}
        if labels:
            h = hashlib.sha256()
            _hash_tensor(h, torch.as_tensor(np.asarray(data.targets)))
            fp["targets"] = h.hexdigest()
            fp["classes"] = None if data.classes is None else list(data.classes)
        return fp
    if isinstance(data, TensorDataset):
        h = hashlib.sha256()
        _hash_tensor(h, data.tensors[0])
        if labels and len(data.tensors) > 1:
            _hash_tensor(h, data.tensors[1])
        return {"tensor_dataset": h.hexdigest(), "labels": bool(labels)}
    if isinstance(data, Subset):
        h = hashlib.sha256()
        _hash_tensor(h, torch.as_tensor(list(data.indices), dtype=torch.int64))
        return {"subset_of": data_fingerprint(data.dataset, labels=labels),
                "indices": h.hexdigest()}
    if isinstance(data, Dataset):
        h = hashlib.sha256()
        first = None
        for i in range(len(data)):
            item = data[i]
            image = as_image_tensor(item, f"item {i}")
            _hash_tensor(h, image)
            if labels:
                _hash_label(h, item[1] if isinstance(item, (tuple, list)) and len(item) > 1
                            else None)
            if i == 0:
                first = image.clone()
        if first is not None and not torch.equal(first, as_image_tensor(data[0], "item 0")):
            raise UncacheableDataError(
                "the data set's items change from one read to the next (a random "
                "transform?), so no cache key can describe them; do not cache, or "
                "cache a data set with deterministic transforms")
        return {"items": h.hexdigest(), "len": len(data), "labels": bool(labels), **extra}
    raise UncacheableDataError(
        f"cannot build a cache key for data of type {type(data).__name__}")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def features_cache_key(model: Any, data: Any, layers: Sequence[str],
                       pools: Mapping[str, str], head2toe_target: int) -> str:
    """SHA-256 key of every input that determines ``extract_features``' result.

    Covers the model weights (:func:`hash_state_dict`), its class
    and structure (``repr(model)``: kernel sizes, activations ... that are not weights),
    the data (its content: see :func:`data_fingerprint`), the layer list in order, the pooling of each
    layer, ``head2toe_target`` when a layer uses it, and the library version.  Batch
    size, device and progress are left out: they do not change the result beyond
    float32 rounding.
    """
    inputs = {
        "kind": "features",
        "version": __version__,
        "model_class": _qualname(type(model)),
        "model_structure": hashlib.sha256(repr(model).encode()).hexdigest(),
        "weights": hash_state_dict(model.state_dict()),
        "data": data_fingerprint(data),
        "layers": list(layers),
        "pool": [pools[name] for name in layers],
    }
    if "head2toe" in pools.values():
        inputs["head2toe_target"] = int(head2toe_target)
    return hash_inputs(**inputs)
