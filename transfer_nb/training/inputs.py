"""What the training loop reads: devices, data sets, batches, targets and losses.

:mod:`transfer_nb.training` builds on these; they are separate so that the loop itself
(:func:`transfer_nb.training.fit`, :func:`~transfer_nb.training.evaluate`) reads on its own.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from transfer_nb._validation import plain

__all__ = ["resolve_device", "model_device", "fork_devices", "as_dataset", "make_loader",
           "split_batch", "batch_targets", "loss_value", "check_loss", "check_choice",
           "check_callable", "LOSSES"]

LOSSES = ("cross_entropy", "mse")


# ------------------------------------------------------------------ validation
def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {plain(value)!r}")
    return value


def check_callable(value, name: str, signature: str):
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be None or a callable {signature}, "
                         f"got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------- device
def resolve_device(device=None) -> torch.device:
    """The ``torch.device`` to run on.

    Parameters
    ----------
    device : None, "auto", str or torch.device
        ``None`` or ``"auto"``: CUDA when available, else the CPU.  Otherwise a device
        string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) or ``torch.device``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        An unparsable device name, or a device this machine does not have.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be None, 'auto', a string such as 'cpu' or 'cuda:0', "
                         f"or a torch.device; got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {device!r} is not a device name; expected 'auto', 'cpu', "
                         "'cuda', 'cuda:<index>' or 'mps'") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} was requested but CUDA is not available "
                             "on this machine; use device='cpu' or device=None (auto)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {str(device)!r} was requested but this machine has "
                             f"{count} CUDA device(s) (cuda:0..cuda:{count - 1})")
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {str(device)!r} was requested but MPS is not available "
                             "on this machine; use device='cpu' or device=None (auto)")
        return dev
    raise ValueError(f"device {str(device)!r} is not supported; expected 'auto', 'cpu', "
                     "'cuda', 'cuda:<index>' or 'mps'")


def model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    if p is None:
        p = next(iter(model.buffers()), None)
    return p.device if p is not None else torch.device("cpu")


def fork_devices(device: torch.device) -> list:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# ------------------------------------------------------------------------ data
def as_dataset(data, name: str = "data", *, inputs_only: bool = False):
    """A torch ``Dataset`` for ``data``.

    Parameters
    ----------
    data : Dataset, DataLoader, tuple (X, y) or, with ``inputs_only``, an array X
        A ``DataLoader`` gives its ``.dataset`` (the caller batches and shuffles
        itself); a tuple of tensors / arrays becomes a ``TensorDataset`` (float arrays
        as float32, integer labels as int64).  A data set with a ``tensors()`` method
        (an in-memory :class:`transfer_nb.data.ImageDataset`) is materialised once as
        a ``TensorDataset`` for fast batches.
    name : str
        Parameter name used in error messages.
    inputs_only : bool
        Also accept a bare tensor / array of inputs (for :func:`predict`).

    Returns
    -------
    torch.utils.data.Dataset
    """
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, (tuple, list)) and not isinstance(data, Dataset) and len(data) == 2:
        X, y = (_as_tensor(v, f"{name}[{i}]") for i, v in enumerate(data))
        if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: inputs have shape {tuple(X.shape)} but targets have shape "
                             f"{tuple(y.shape)}; expected one target per input row")
        return TensorDataset(X, y)
    if inputs_only and (isinstance(data, (torch.Tensor, np.ndarray))):
        X = _as_tensor(data, name)
        if X.ndim == 0:
            raise ValueError(f"{name} must have one row per input, got a scalar")
        return TensorDataset(X)
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return _materialize(data)
    expected = "a torch Dataset of (input, target) pairs, a DataLoader or a tuple (X, y)"
    if inputs_only:
        expected += " or an array of inputs"
    raise ValueError(f"{name} must be {expected}; got {type(data).__name__}")


def _as_tensor(v, name: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v
    try:
        a = np.asarray(v)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if a.dtype.kind == "f":
        return torch.as_tensor(a, dtype=torch.float32)
    if a.dtype.kind in "iub":
        return torch.as_tensor(a.astype(np.int64) if a.dtype.kind != "b" else a)
    raise ValueError(f"{name} has dtype {a.dtype}; expected numbers (floats or integers)")


def _materialize(ds):
    """An in-memory data set with ``tensors()`` as a ``TensorDataset`` (one decode)."""
    from torch.utils.data import TensorDataset
    tensors = getattr(ds, "tensors", None)
    if callable(tensors):
        try:
            X, y = tensors()
            if isinstance(X, torch.Tensor) and len(X) == len(ds):
                return TensorDataset(X, torch.as_tensor(y))
        except Exception:  # pragma: no cover - fall back to item-wise access
            pass
    return ds


def split_batch(batch):
    """``(x, y)`` of a batch; ``y`` is ``None`` for input-only data."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def make_loader(ds, batch_size: int, shuffle: bool, generator=None):
    from torch.utils.data import DataLoader
    if generator is None:
        # a DataLoader draws its base seed from the global RNG unless it has a generator:
        # evaluation must not move the caller's random stream
        generator = torch.Generator().manual_seed(0)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=0, drop_last=False)


# ------------------------------------------------------------------------ loss
def batch_targets(y, loss, device, target_transform, what: str = "loss='cross_entropy'"):
    if y is None:
        raise ValueError("data must yield (input, target) pairs for training and scoring; "
                         "got inputs only")
    y = torch.as_tensor(y)
    if target_transform is not None:
        y = torch.as_tensor(target_transform(y))
    if loss == "cross_entropy":
        if y.is_floating_point():
            raise ValueError(f"{what} needs integer class labels, got float targets; "
                             "use 'mse' for regression targets")
        y = y.long()
    return y.to(device)


def loss_value(loss, outputs, y):
    if loss == "cross_entropy":
        if outputs.ndim != 2:
            raise ValueError(f"loss='cross_entropy' needs outputs of shape (n, classes), got "
                             f"{tuple(outputs.shape)}")
        return nn.functional.cross_entropy(outputs, y)
    if loss == "mse":
        y = y.to(outputs.dtype)
        if y.ndim == 1 and outputs.ndim == 2 and outputs.shape[1] == 1:
            y = y[:, None]
        if y.shape != outputs.shape:
            raise ValueError(f"loss='mse' needs targets of the outputs' shape; got outputs "
                             f"{tuple(outputs.shape)} and targets {tuple(y.shape)} "
                             "(regression targets are float arrays of shape (n, m))")
        return nn.functional.mse_loss(outputs, y)
    value = loss(outputs, y)
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        raise ValueError("loss must return a scalar tensor, got "
                         f"{type(value).__name__} of shape {tuple(getattr(value, 'shape', ()))}")
    return value


def check_loss(loss):
    if callable(loss):
        return loss
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)} or a callable(outputs, targets) "
                         f"-> scalar tensor, got {plain(loss)!r}")
    return loss
