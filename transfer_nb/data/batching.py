"""Batching: turn any supported ``data`` into a stream of image batches, rows in order."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset,
                              SequentialSampler, TensorDataset)

__all__ = ["as_image_tensor", "plan_batches", "data_len", "check_in_order"]


def check_in_order(loader: DataLoader) -> None:
    """Raise a ValueError unless ``loader`` yields its data set's rows in order.

    Features come back one row per item *in data order*, so that they line up with the
    data set's labels; a shuffled loader (``shuffle=True``, a ``RandomSampler``, any
    sampler other than ``SequentialSampler``) would give rows in an order nobody can
    recover.  We refuse it rather than return rows that silently do not match
    ``dataset.targets``.  An ``IterableDataset`` is taken in the order it yields.
    """
    if isinstance(loader.dataset, IterableDataset):
        return
    if loader.batch_size is not None:  # automatic batching: the sampler decides
        ordered = isinstance(loader.sampler, SequentialSampler)
    elif loader.batch_sampler is not None:
        bs = loader.batch_sampler
        ordered = type(bs) is BatchSampler and isinstance(bs.sampler, SequentialSampler)
    else:  # batching disabled: one item at a time, in the sampler's order
        ordered = isinstance(loader.sampler, SequentialSampler)
    if not ordered:
        raise ValueError(
            "the DataLoader does not yield the data in order (shuffle=True or a custom "
            "sampler), so the feature rows would not match the data set's labels; pass "
            "the dataset itself, or a DataLoader with shuffle=False (SequentialSampler)")


def _check_first_item(dataset: Any) -> None:
    """Fail early, with the fix, when items are not image tensors (e.g. PIL images).

    Without this, torch's ``default_collate`` fails deep inside the DataLoader with a
    message about "batch must contain tensors ... found <class 'PIL.Image.Image'>".
    """
    try:
        n = len(dataset)
    except TypeError:
        return
    if n:
        as_image_tensor(dataset[0], "item 0 of the data set")


def as_image_tensor(batch: Any, where: str) -> torch.Tensor:
    """The image part of a batch: ``batch[0]`` of an (image, label) pair, or the batch."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError(f"{where}: empty batch")
        batch = batch[0]
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(batch)
    if not isinstance(batch, torch.Tensor):
        kind = type(batch)
        what = (f"a PIL image ({kind.__module__}.{kind.__name__})"
                if kind.__module__.startswith("PIL") else kind.__name__)
        raise ValueError(f"{where}: expected image tensors (or (image, label) pairs), got "
                         f"{what}; add a transform that makes tensors, e.g. "
                         "transform=torchvision.transforms.ToTensor() (plus the model's "
                         "Normalize) on the data set")
    if not batch.is_floating_point():
        raise ValueError(f"{where}: images must be floating point, got {batch.dtype}; "
                         "convert them (e.g. x.float() / 255) and normalise them the way "
                         "the model expects")
    if batch.ndim < 2:
        raise ValueError(f"{where}: expected a batch of images (batch, channels, H, W), "
                         f"got shape {tuple(batch.shape)}")
    return batch


def plan_batches(data: Any, batch_size: int, num_workers: int
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
        check_in_order(data)
        if not isinstance(data.dataset, IterableDataset):
            _check_first_item(data.dataset)
        return data, _loader_rows(data), _safe_len(data)
    if isinstance(data, TensorDataset):
        # slicing the stored tensor is much cheaper than collating items one by one
        images = data.tensors[0]
        return _slices(images, batch_size), len(images), -(-len(images) // batch_size)
    if isinstance(data, IterableDataset):
        loader = DataLoader(data, batch_size=batch_size, num_workers=num_workers)
        return loader, None, None
    if isinstance(data, Dataset):
        _check_first_item(data)
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


def data_len(data: Any) -> int | None:
    if isinstance(data, DataLoader):
        return _loader_rows(data)
    if isinstance(data, (IterableDataset,)):
        return None
    return _safe_len(data)
