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
from typing import Any, Callable

import numpy as np

__all__ = ["cache_dir", "hash_inputs", "hash_state_dict", "atomic_write_bytes",
           "save_arrays", "load_arrays", "cached_arrays"]


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
