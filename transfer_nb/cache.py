"""On-disk cache for expensive results, keyed on every input and written atomically.

Keys are SHA-256 digests of a canonical description of *all* inputs (model weights,
data spec, layers, pooling, hyper-parameters ...).  Files are written to a temporary
name in the same directory and moved into place with ``os.replace`` so that a crash
never leaves a half-written file under the final name.  A file that cannot be read
back (truncated, corrupted) is treated as a miss, removed and recomputed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["cache_dir", "hash_inputs", "hash_state_dict", "atomic_write_bytes",
           "save_arrays", "load_arrays", "cached_arrays", "features_cache_key"]


def cache_dir(kind: str = "") -> Path:
    """Return the cache directory (``$TRANSFER_NB_CACHE`` or ``~/.cache/transfer_nb``)."""
    root = os.environ.get("TRANSFER_NB_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "transfer_nb")
    path = Path(root) / kind if kind else Path(root)
    path.mkdir(parents=True, exist_ok=True)
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


def atomic_write_bytes(path: os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_arrays(path: os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Save a dict of arrays as ``.npz`` atomically."""
    import io
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: os.PathLike) -> dict[str, np.ndarray] | None:
    """Load a dict of arrays saved by :func:`save_arrays`; ``None`` when missing or unreadable.

    A corrupted file is deleted so that the caller recomputes and rewrites it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # truncated zip, bad CRC, not an npz at all ...
        try:
            path.unlink()
        except OSError:
            pass
        return None


def cached_arrays(kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]],
                  directory: os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``key`` or compute, save and return them."""
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


def _data_fingerprint(data: Any) -> Any:
    """What defines the rows fed to the model, for the cache key.

    Uses ``data.spec`` when the data set has one (``transfer_nb.load_dataset``),
    hashes the image tensor of tensors / ``TensorDataset`` s, and otherwise hashes every
    item's image (one extra pass over the data, no model: still cheaper than a miss).
    """
    import torch
    from torch.utils.data import (DataLoader, Dataset, IterableDataset, SequentialSampler,
                                  Subset, TensorDataset)
    from transfer_nb.features.batching import as_image_tensor

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
            _hash_tensor(h, as_image_tensor(data[i], f"item {i}"))
        return {"items": h.hexdigest(), "len": len(data)}
    raise ValueError(f"cannot build a cache key for data of type {type(data).__name__}")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def features_cache_key(model: Any, data: Any, layers: Sequence[str],
                       pools: Mapping[str, str], head2toe_target: int) -> str:
    """SHA-256 key of every input that determines ``extract_features``' result.

    Covers the model weights (:func:`hash_state_dict`), its class
    and structure (``repr(model)``: kernel sizes, activations ... that are not weights),
    the data (see ``_data_fingerprint``), the layer list in order, the pooling of each
    layer, ``head2toe_target`` when a layer uses it, and the library version.  Batch
    size, device and progress are left out: they do not change the result beyond
    float32 rounding.
    """
    from transfer_nb._version import __version__

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
