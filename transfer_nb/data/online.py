"""Real data sets that torchvision downloads: CIFAR-10/100, SVHN, Flowers102, DTD.

The files live under one root folder, in *exactly torchvision's on-disk layout*, so a
folder that torchvision filled can be reused as is (``TRANSFER_NB_DATA=/that/folder``):

=============  ======================================================================
cifar10        ``cifar-10-batches-py/data_batch_{1..5}``, ``test_batch``, ``batches.meta``
cifar100       ``cifar-100-python/train``, ``test``, ``meta``
svhn           ``train_32x32.mat``, ``test_32x32.mat``, ``extra_32x32.mat``
flowers102     ``flowers-102/jpg/image_00001.jpg ..``, ``imagelabels.mat``, ``setid.mat``
dtd            ``dtd/dtd/images/<class>/<file>.jpg``, ``dtd/dtd/labels/{train,val,test}N.txt``
=============  ======================================================================

Downloading (``download=True`` or ``TRANSFER_NB_DOWNLOAD=1``) is delegated to the
torchvision classes, which verify the MD5 of what they download.  *Reading* is done
here: torchvision's CIFAR, SVHN and Flowers102 classes re-check the MD5 of every file
on each construction, so they refuse any file that is not the byte-exact original
(the small files the tests write, or a re-saved copy).  These readers parse the same
formats without that check, and decode only the images that are kept.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from transfer_nb.data.base import ArraySource

__all__ = ["data_root", "DatasetNotAvailableError", "online_source", "is_downloaded",
           "ONLINE_SPLITS"]

ONLINE_SPLITS = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "svhn": ("train", "test", "extra"),
    "flowers102": ("train", "val", "test"),
    "dtd": ("train", "val", "test"),
}

_FALSE = {"", "0", "false", "no", "off"}


class DatasetNotAvailableError(RuntimeError):
    """An online data set is not on disk and downloading was not allowed (or failed)."""


def data_root(root=None) -> Path:
    """Folder for downloaded data: ``root``, else ``$TRANSFER_NB_DATA``, else
    ``~/.cache/transfer_nb/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("TRANSFER_NB_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "transfer_nb" / "data"


def download_allowed(download) -> bool:
    """``download`` if given, else the ``TRANSFER_NB_DOWNLOAD`` environment switch."""
    if download is not None:
        return bool(download)
    return os.environ.get("TRANSFER_NB_DOWNLOAD", "").strip().lower() not in _FALSE


# ---------------------------------------------------------------------------------------
# which files each data set needs
# ---------------------------------------------------------------------------------------
def _required_files(name: str, root: Path, split: str, partition: int) -> list[Path]:
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        return [base / f for f in files + ["batches.meta"]]
    if name == "cifar100":
        base = root / "cifar-100-python"
        return [base / split, base / "meta"]
    if name == "svhn":
        return [root / f"{split}_32x32.mat"]
    if name == "flowers102":
        base = root / "flowers-102"
        return [base / "jpg", base / "imagelabels.mat", base / "setid.mat"]
    if name == "dtd":
        base = root / "dtd" / "dtd"
        return [base / "images", base / "labels" / f"{split}{partition}.txt"]
    raise ValueError(f"not an online data set: {name!r}")


def is_downloaded(name: str, split: str = "train", root=None, partition: int = 1) -> bool:
    """Whether the files of ``name``/``split`` are present under the data root."""
    return all(p.exists() for p in _required_files(name, data_root(root), split, partition))


def _download(name: str, root: Path, split: str, partition: int) -> None:
    """Fetch with torchvision (which verifies checksums) into torchvision's layout."""
    from torchvision import datasets as tvd
    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        tvd.CIFAR10(str(root), train=split == "train", download=True)
    elif name == "cifar100":
        tvd.CIFAR100(str(root), train=split == "train", download=True)
    elif name == "svhn":
        tvd.SVHN(str(root), split=split, download=True)
    elif name == "flowers102":
        tvd.Flowers102(str(root), split=split, download=True)
    elif name == "dtd":
        tvd.DTD(str(root), split=split, partition=partition, download=True)


def _ensure_files(name: str, root: Path, split: str, partition: int, download,
                  offline_names) -> None:
    missing = [p for p in _required_files(name, root, split, partition) if not p.exists()]
    if not missing:
        return
    alternatives = ", ".join(offline_names)
    if not download_allowed(download):
        raise DatasetNotAvailableError(
            f"dataset {name!r} (split {split!r}) is not available offline: looked in "
            f"{root} and did not find {', '.join(str(p) for p in missing)}. Pass "
            f"download=True (or set TRANSFER_NB_DOWNLOAD=1) to download it with torchvision "
            f"into {root}, or set TRANSFER_NB_DATA / root= to a folder in torchvision's "
            f"layout that holds it. Offline alternatives that need no download: {alternatives}.")
    try:
        _download(name, root, split, partition)
    except Exception as err:  # network errors come in many types; say what to do instead
        raise DatasetNotAvailableError(
            f"downloading dataset {name!r} into {root} failed ({type(err).__name__}: {err}). "
            f"Offline alternatives that need no download: {alternatives}.") from err
    still = [p for p in _required_files(name, root, split, partition) if not p.exists()]
    if still:
        raise DatasetNotAvailableError(
            f"dataset {name!r} was downloaded into {root} but {still[0]} is still missing")


# ---------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------
def _unpickle(path: Path) -> dict:
    # the CIFAR pickles were written by Python 2: latin1 turns their byte keys into str
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _cifar_source(root: Path, split: str, coarse: bool, hundred: bool) -> ArraySource:
    if hundred:
        base = root / "cifar-100-python"
        entries = [_unpickle(base / split)]
        meta = _unpickle(base / "meta")
        classes = meta["coarse_label_names" if coarse else "fine_label_names"]
        key = "coarse_labels" if coarse else "fine_labels"
    else:
        base = root / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        entries = [_unpickle(base / n) for n in names]
        classes = _unpickle(base / "batches.meta")["label_names"]
        key = "labels"
    data = np.concatenate([np.asarray(e["data"], dtype=np.uint8) for e in entries])
    targets = np.concatenate([np.asarray(e[key], dtype=np.int64) for e in entries])
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32))  # rows are R, G, B planes
    return ArraySource(images, targets, [str(c) for c in classes])


def _svhn_source(root: Path, split: str) -> ArraySource:
    from scipy.io import loadmat
    mat = loadmat(str(root / f"{split}_32x32.mat"))
    x = np.asarray(mat["X"], dtype=np.uint8)          # (32, 32, 3, N)
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    y[y == 10] = 0                                     # SVHN stores digit 0 as label 10
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    return ArraySource(images, y, [str(d) for d in range(10)])


def _load_image_file(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Decode one image: shorter side resized to fit ``size``, centre crop, RGB uint8 CHW.

    The torchvision evaluation recipe (resize + centre crop) keeps the aspect ratio;
    PIL's bilinear resize with ``reducing_gap`` filters over the footprint when shrinking.
    """
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        h, w = size
        scale = max(h / im.height, w / im.width)
        new = (max(w, round(im.width * scale)), max(h, round(im.height * scale)))
        im = im.resize(new, Image.BILINEAR, reducing_gap=2.0)
        left, top = (new[0] - w) // 2, (new[1] - h) // 2
        im = im.crop((left, top, left + w, top + h))
        return np.array(im, dtype=np.uint8).transpose(2, 0, 1)  # a writable copy


class FileSource:
    """Labels known up front; images decoded from files only when asked for."""

    def __init__(self, files: list[Path], targets, classes, default_size: tuple[int, int]):
        self.files = list(files)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.native_size = default_size

    def images(self, indices, size=None) -> torch.Tensor:
        size = tuple(size) if size is not None else self.native_size
        indices = np.asarray(indices, dtype=np.int64)
        out = torch.empty((len(indices), 3, *size), dtype=torch.uint8)
        for j, i in enumerate(indices):
            try:
                out[j] = torch.from_numpy(_load_image_file(self.files[i], size))
            except (OSError, SyntaxError, ValueError) as err:  # Pillow's decode errors
                raise ValueError(f"cannot read image file {str(self.files[i])!r} "
                                 f"({type(err).__name__}: {err})") from err
        return out


FLOWERS_SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def _flowers_source(root: Path, split: str, default_size) -> FileSource:
    from scipy.io import loadmat
    from torchvision.datasets import Flowers102
    base = root / "flowers-102"
    ids = np.asarray(loadmat(str(base / "setid.mat"), squeeze_me=True)[FLOWERS_SPLIT_KEYS[split]],
                     dtype=np.int64).reshape(-1)
    labels = np.asarray(loadmat(str(base / "imagelabels.mat"), squeeze_me=True)["labels"],
                        dtype=np.int64).reshape(-1) - 1   # 1-based in the .mat file
    files = [base / "jpg" / f"image_{i:05d}.jpg" for i in ids]
    return FileSource(files, labels[ids - 1], list(Flowers102.classes), default_size)


def _dtd_lines(path: Path) -> list[tuple[str, str]]:
    with open(path) as f:
        return [tuple(line.strip().split("/", 1)) for line in f if line.strip()]


def _dtd_source(root: Path, split: str, partition: int, default_size) -> FileSource:
    base = root / "dtd" / "dtd"
    entries = _dtd_lines(base / "labels" / f"{split}{partition}.txt")
    # class list from every split file present (torchvision uses only the requested
    # one), so that a label means the same class in train, val and test
    names = {c for c, _ in entries}
    for other in ONLINE_SPLITS["dtd"]:
        p = base / "labels" / f"{other}{partition}.txt"
        if p.exists():
            names.update(c for c, _ in _dtd_lines(p))
    classes = sorted(names)
    index = {c: k for k, c in enumerate(classes)}
    files = [base / "images" / c / f for c, f in entries]
    return FileSource(files, [index[c] for c, _ in entries], classes, default_size)


def online_source(name: str, split: str, options: dict, download, offline_names):
    """Source for one official split of an online data set (files fetched if allowed)."""
    root = data_root(options.get("root"))
    partition = int(options.get("partition", 1))
    _ensure_files(name, root, split, partition, download, offline_names)
    if name in ("cifar10", "cifar100"):
        return _cifar_source(root, split, options.get("label_type") == "coarse",
                             name == "cifar100")
    if name == "svhn":
        return _svhn_source(root, split)
    if name == "flowers102":
        return _flowers_source(root, split, (224, 224))
    if name == "dtd":
        return _dtd_source(root, split, partition, (224, 224))
    raise ValueError(f"not an online data set: {name!r}")

