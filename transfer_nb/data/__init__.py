"""Data sets for transferability experiments: embedded offline ones and torchvision ones.

>>> from transfer_nb.data import load_dataset, list_datasets
>>> ds = load_dataset("digits", split="train", image_size=32)   # works offline
>>> x, y = ds[0]            # float32 (3, 32, 32), int

Embedded (offline): ``digits``, ``textures``, ``lfw_faces``, ``glyphs``, ``shapes``.
Online (torchvision, ``download=True``): ``cifar10``, ``cifar100``, ``svhn``,
``flowers102``, ``dtd``.  Your own images: ``load_dataset("folder", root=PATH)`` or
:func:`load_image_folder` (one subfolder per class).  See :func:`load_dataset` and
:func:`dataset_info`.
"""
from transfer_nb.data.base import ImageDataset
from transfer_nb.data.online import DatasetNotAvailableError, data_root
from transfer_nb.data.registry import dataset_info, list_datasets, load_dataset, load_image_folder

__all__ = ["load_dataset", "list_datasets", "dataset_info", "load_image_folder", "ImageDataset",
           "DatasetNotAvailableError", "data_root"]
