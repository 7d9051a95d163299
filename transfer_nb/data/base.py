"""Core pieces shared by every data set: ``ImageDataset``, sources, splits, resizing.

A *source* knows the labels of every image of one data set (or one official split) and
can produce the pixels of any subset of them at a requested size.  Keeping labels and
pixels apart lets ``load_dataset`` split and subsample on labels first and only then
decode, render or resize the images it keeps (decoding all of Flowers102 at 224 px to
keep 100 images would be wasteful).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from transfer_nb._validation import check_fraction, plain
from transfer_nb.preprocessing import get_normalization, normalize_images

__all__ = ["ImageDataset", "ArraySource", "ConcatSource", "resize_images",
           "stratified_split", "grouped_split", "stratified_subsample", "as_size"]

# Resize in chunks so that upsampling a few thousand images to 224 px never needs
# several float copies of the whole set at once.
_RESIZE_CHUNK = 256


def as_size(image_size) -> tuple[int, int] | None:
    """Validate ``image_size`` (``None``, an int or ``(h, w)``) and return ``(h, w)``.

    Raises
    ------
    ValueError
        If a size is not a positive integer.
    """
    if image_size is None:
        return None
    if isinstance(image_size, (bool, np.bool_)):
        raise ValueError("image_size must be a positive int or (height, width), "
                         f"got {plain(image_size)!r}")
    if isinstance(image_size, (int, np.integer)):
        sizes = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in image_size):
        sizes = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError("image_size must be a positive int or (height, width), "
                         f"got {plain(image_size)!r}")
    if min(sizes) <= 0:
        raise ValueError(f"image_size must be positive, got {plain(image_size)!r}")
    return sizes


def resize_images(images: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Resize ``(N, C, H, W)`` images to ``size`` with antialiasing.

    uint8 input stays uint8 (rounded), float input stays float and is clipped to
    ``[0, 1]``.  Bilinear interpolation with ``antialias=True`` averages over the
    footprint when shrinking (no aliasing moiré on textures) and never overshoots.
    """
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images
    out_dtype = images.dtype
    chunks = []
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        x = images[start:start + _RESIZE_CHUNK].float()
        if out_dtype == torch.uint8:
            x = x / 255.0
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 1.0)
        if out_dtype == torch.uint8:
            x = (x * 255.0).round_().to(torch.uint8)
        chunks.append(x)
    if not chunks:
        return images.new_zeros((0, images.shape[1], *size))
    return torch.cat(chunks)


def _to_nchw(images) -> torch.Tensor:
    """Accept numpy/torch images as NCHW, NHW (grey) or NHWC and return an NCHW tensor."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError("images must have shape (N, C, H, W) with C in {1, 3}, (N, H, W) or "
                         f"(N, H, W, C); got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.contiguous()
    if not torch.is_floating_point(x):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    return x.float().contiguous()


class ImageDataset(Dataset):
    """A small labelled image data set held in memory as one tensor.

    ``ds[i]`` returns ``(image, label)``: a float32 tensor ``(3, H, W)`` (grey images
    are repeated to 3 channels because pretrained models expect RGB), with values in
    ``[0, 1]`` then normalised with ``normalize``, and a Python ``int``.

    Regression sets (``classes=None``) hold real targets instead: ``.targets`` is a
    float32 array ``(N, m)``, ``ds[i]`` returns a float32 tensor ``(m,)`` as label,
    ``.classes`` and ``.num_classes`` are ``None``, ``.target_names`` names the ``m``
    outputs and ``.num_outputs == m`` (the size of the regression head).

    Parameters
    ----------
    images : array or tensor
        ``(N, C, H, W)`` with ``C`` in {1, 3}, ``(N, H, W)`` or ``(N, H, W, C)``;
        uint8 (0..255) or float in ``[0, 1]``.  Stored as given (1 channel stays 1
        channel, uint8 stays uint8) to save memory; conversion happens per item.
    targets : array-like of int, or of float with shape (N,) or (N, m)
        Labels in ``0 .. len(classes) - 1``; real targets when ``classes`` is None
        (stored as float32 ``(N, m)``; a 1-D array becomes ``(N, 1)``).
    classes : sequence of str, or None
        Class names; ``classes[k]`` is the name of label ``k``.  ``None`` makes a
        regression set.
    name : str
        Data set name.
    spec : dict, optional
        Every input that defines the content (JSON-serialisable), for cache keys.
    normalize : {None, "none", "lite", "imagenet"}
        Normalisation applied on the fly (``transfer_nb.preprocessing``).
    source_indices : array-like of int, optional
        Position of each image in the data set's full pool (``split="all"`` order);
        lets callers check that splits are disjoint or align with other views.
    target_names : sequence of str, optional
        Regression only: one name per output column (default ``"y0", "y1", ...``).

    Attributes
    ----------
    task : {"classification", "regression"}
    classes : list of str, or None (regression)
    targets : numpy.ndarray of int64, shape (N,); float32 (N, m) for regression
    target_names : list of str, or None (classification)
    name : str
    spec : dict
    normalize : str
    source_indices : numpy.ndarray of int64, shape (N,)
    """

    def __init__(self, images, targets, classes: Sequence[str] | None, name: str = "custom",
                 spec: dict | None = None, normalize: str | None = None,
                 source_indices=None, target_names: Sequence[str] | None = None):
        get_normalization(normalize)  # validate early: the error names the valid choices
        self._images = _to_nchw(images)
        self.task = "classification" if classes is not None else "regression"
        if classes is None:
            self.targets, self.target_names = _real_targets(targets, target_names)
            self.classes = None
        else:
            self.targets = np.asarray(targets, dtype=np.int64).reshape(-1)
            self.classes = [str(c) for c in classes]
            self.target_names = None
        if len(self.targets) != self._images.shape[0]:
            raise ValueError(f"{self._images.shape[0]} images but {len(self.targets)} targets")
        if self.classes is not None and len(self.targets) and (
                self.targets.min() < 0 or self.targets.max() >= len(self.classes)):
            raise ValueError(f"targets must lie in 0..{len(self.classes) - 1} "
                             f"(one per class), got {plain(self.targets.min())}.."
                             f"{plain(self.targets.max())}")
        self.name = str(name)
        self.normalize = "none" if normalize is None else str(normalize)
        self.spec = dict(spec) if spec is not None else {"name": self.name}
        self.source_indices = (np.arange(len(self.targets), dtype=np.int64)
                               if source_indices is None
                               else np.asarray(source_indices, dtype=np.int64).reshape(-1))
        if len(self.source_indices) != len(self.targets):
            raise ValueError("source_indices must have one entry per image")
        # Targets as a tensor once, so that batches and tensors() do not rebuild it.
        self._targets_t = torch.from_numpy(self.targets)

    # -- torch Dataset protocol ---------------------------------------------------------
    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"index {index} out of range for {len(self)} images")
            x = self._prepare(self._images[i:i + 1])[0]
            if self.classes is None:
                return x, self._targets_t[i].clone()
            return x, int(self.targets[i])
        raise TypeError(f"ImageDataset indices must be integers, got {type(index).__name__}")

    # -- conveniences -------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw stored images -> float32 RGB, normalised."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return normalize_images(x, self.normalize).contiguous()

    def tensors(self, indices=None) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (or ``indices``) as one batch: ``(X (N, 3, H, W) float32, y int64)``.

        ``y`` is float32 ``(N, m)`` for a regression set.

        Faster than iterating a ``DataLoader`` for these small in-memory sets.
        """
        if indices is None:
            return self._prepare(self._images), self._targets_t.clone()
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return self._prepare(self._images[idx]), self._targets_t[idx]

    def subset(self, indices) -> "ImageDataset":
        """A new ``ImageDataset`` with the images at ``indices`` (spec records which)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset indices out of range for {len(self)} images")
        spec = dict(self.spec)
        spec["subset"] = hashlib.sha256(idx.tobytes()).hexdigest()[:16]
        spec["subset_len"] = int(len(idx))
        return ImageDataset(self._images[torch.from_numpy(idx)], self.targets[idx], self.classes,
                            name=self.name, spec=spec, normalize=self.normalize,
                            source_indices=self.source_indices[idx],
                            target_names=self.target_names)

    @property
    def images(self) -> torch.Tensor:
        """The stored images (uint8 or float in [0, 1], 1 or 3 channels), unnormalised."""
        return self._images

    @property
    def num_classes(self) -> int | None:
        """Number of classes; ``None`` for a regression set."""
        return None if self.classes is None else len(self.classes)

    @property
    def num_outputs(self) -> int:
        """Outputs a head needs: the number of classes, or of regression targets."""
        return len(self.classes) if self.classes is not None else int(self.targets.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self._images.shape[-2]), int(self._images.shape[-1])

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name (every class, zeros included)."""
        if self.classes is None:
            raise ValueError(f"{self.name!r} is a regression set: it has no classes to count")
        counts = np.bincount(self.targets, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, counts)}

    def __repr__(self) -> str:
        h, w = self.image_size
        split = self.spec.get("split", "?")
        what = (f"classes={len(self.classes)}" if self.classes is not None
                else f"targets={self.target_names}")
        return (f"ImageDataset(name={self.name!r}, split={split!r}, n={len(self)}, "
                f"{what}, size={h}x{w}, normalize={self.normalize!r})")


def _real_targets(targets, names) -> tuple[np.ndarray, list[str]]:
    """Regression targets -> float32 ``(N, m)`` (finite) and ``m`` output names."""
    y = np.asarray(targets)
    if y.dtype == object or y.dtype.kind not in "biuf":
        raise ValueError(f"regression targets must be real numbers, got dtype {y.dtype}")
    y = y.astype(np.float32)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"regression targets must have shape (N,) or (N, m), got {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("regression targets contain NaN or Inf; expected finite numbers")
    names = [f"y{j}" for j in range(y.shape[1])] if names is None else [str(t) for t in names]
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} target_names for {y.shape[1]} target columns")
    return np.ascontiguousarray(y), names


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------
class ArraySource:
    """Labels and pixels of a data set held as one ``(N, C, H, W)`` tensor."""

    def __init__(self, images: torch.Tensor, targets, classes: Sequence[str]):
        self._images = _to_nchw(images)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.native_size = (int(self._images.shape[-2]), int(self._images.shape[-1]))

    def images(self, indices: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
        # Indexing with a tensor copies, so cached sources are never modified downstream.
        sel = self._images[torch.as_tensor(np.asarray(indices, dtype=np.int64))]
        return resize_images(sel, size)


class ConcatSource:
    """Several sources (official splits) seen as one, for ``split="all"``."""

    def __init__(self, sources: Sequence):
        self._sources = list(sources)
        self.classes = list(self._sources[0].classes)
        for s in self._sources[1:]:
            if list(s.classes) != self.classes:
                raise ValueError("cannot concatenate splits with different class lists")
        self.targets = np.concatenate([s.targets for s in self._sources])
        self._offsets = np.cumsum([0] + [len(s.targets) for s in self._sources])
        self.native_size = self._sources[0].native_size

    def images(self, indices: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        if size is None:
            size = self.native_size
        which = np.searchsorted(self._offsets, indices, side="right") - 1
        out = None
        for k, src in enumerate(self._sources):
            mask = which == k
            if not mask.any():
                continue
            part = src.images(indices[mask] - self._offsets[k], size)
            if out is None:
                out = part.new_empty((len(indices), *part.shape[1:]))
            out[torch.from_numpy(np.flatnonzero(mask))] = part
        if out is None:
            return self._sources[0].images(np.zeros(0, dtype=np.int64), size)
        return out


# ---------------------------------------------------------------------------------------
# Deterministic stratified splits and subsamples
# ---------------------------------------------------------------------------------------
def stratified_split(targets, test_fraction: float = 0.3, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train / test, class by class, deterministically for ``seed``.

    The library's one train/test split (``load_dataset`` and the layer-selection
    procedure of :mod:`transfer_nb.selection` both use it).  Each class with at least 2
    items puts ``round(test_fraction * n_k)`` (at least 1, at most ``n_k - 1``) in the
    test part, so both parts see every class; a class with a single item stays in train.

    Parameters
    ----------
    targets : array-like, shape (n,)
        Labels of any type.
    test_fraction : float
        Fraction of every class that goes to the test part, strictly in ``(0, 1)``.
    seed : int
        Seeds the shuffle (one rule: ``numpy.random.default_rng([seed, 0x5917])``).

    Returns
    -------
    train, test : numpy.ndarray of int64
        Sorted, disjoint index arrays whose union is ``range(len(targets))``.
    """
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise ValueError(f"targets must be a 1-D array of labels, got shape {list(targets.shape)}")
    test_fraction = check_fraction(test_fraction, "test_fraction", allow_zero=False,
                                   allow_one=False)
    rng = np.random.default_rng([int(seed), 0x5917])
    train, test = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(float(test_fraction) * len(idx)))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return (np.sort(np.concatenate(train)).astype(np.int64),
            np.sort(np.concatenate(test)).astype(np.int64))


def grouped_split(targets: np.ndarray, groups: np.ndarray, test_fraction: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`stratified_split` but whole groups go to one side, class by class.

    Used where images of one group share pixels (overlapping crops of one strip of a
    photo): per class, ``round(test_fraction * n_groups)`` groups (at least 1, at most
    all but one) chosen by ``seed`` form the test part.
    """
    test_fraction = check_fraction(test_fraction, "test_fraction", allow_zero=False,
                                   allow_one=False)
    rng = np.random.default_rng([int(seed), 0x6209])
    test_mask = np.zeros(len(targets), dtype=bool)
    for c in np.unique(targets):
        in_class = targets == c
        names = np.unique(groups[in_class])
        if len(names) < 2:
            continue
        k = min(max(int(round(test_fraction * len(names))), 1), len(names) - 1)
        chosen = names[rng.permutation(len(names))[:k]]
        test_mask |= in_class & np.isin(groups, chosen)
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def stratified_subsample(targets: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Pick ``n`` indices keeping class proportions (largest-remainder rounding).

    Deterministic for ``seed``; returns sorted indices.
    """
    classes, counts = np.unique(targets, return_counts=True)
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(np.int64)
    # hand the leftover images to the classes with the largest fractional quota
    # (ties go to the earlier class) so that sum(take) == n exactly
    order = np.lexsort((np.arange(len(classes)), -(quota - take)))
    take[order[:n - int(take.sum())]] += 1
    rng = np.random.default_rng([int(seed), 0x5AB5])
    chosen = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(targets == c)
        chosen.append(idx[rng.permutation(len(idx))[:k]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
