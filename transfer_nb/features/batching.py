"""Batching: turn any supported ``data`` into a stream of image batches, rows in order."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

__all__ = ["as_image_tensor", "plan_batches", "data_len"]


def as_image_tensor(batch: Any, where: str) -> torch.Tensor:
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


def data_len(data: Any) -> int | None:
    if isinstance(data, DataLoader):
        return _loader_rows(data)
    if isinstance(data, (IterableDataset,)):
        return None
    return _safe_len(data)
