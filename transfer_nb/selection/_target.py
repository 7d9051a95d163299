"""The target data of a selection: what is scored, what is held out, and the checks made
before any model is loaded.  :func:`score_models` and :func:`score_layers` share it, so
the two read a folder, a dataset name or a dataset object the same way.

The one rule (also in :mod:`transfer_nb.selection`'s docstring):

* No ground truth asked: **every image is scored** (a folder: all of it, both parts of a
  ``train/`` + ``test/`` layout; a dataset object: all of it; a dataset *name*: its
  training split, or ``split``).
* A ground truth asked: the estimators see the training part, the truth is scored on the
  held-out part.  The held-out part is ``test_data`` when given (used whole); else the
  data's own split when it has one (a dataset name; a folder with ``train/`` and
  ``test/``); else a stratified split of everything
  (:func:`transfer_nb.data.base.stratified_split`, ``test_fraction``, ``seed``) -- the
  same for a folder path and for the dataset object loaded from it.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["target_parts", "check_class_counts", "check_folder_problems", "dataset_labels", "subset", "load_target",
           "is_folder", "normalized_for", "split_indices", "model_input_size",
           "source_image_size", "upsampling_note", "MIN_PER_CLASS", "TEST_FRACTION"]

#: images per class the estimators need in the scored part (class-conditional statistics)
MIN_PER_CLASS = 2
#: held-out share of a split made here: the data loaders' default too
TEST_FRACTION = 0.25


# --------------------------------------------------------------------------- datasets
def subset(data, indices):
    """``data`` restricted to ``indices`` (an ImageDataset keeps its attributes)."""
    if hasattr(data, "subset"):
        return data.subset(indices)
    from torch.utils.data import Subset
    return Subset(data, [int(i) for i in indices])


def dataset_labels(data) -> np.ndarray:
    """Labels of a dataset without decoding images when it exposes ``.targets``."""
    targets = getattr(data, "targets", None)
    if targets is not None and len(targets) == len(data):
        return np.asarray(targets)
    tensors = getattr(data, "tensors", None)  # TensorDataset
    if isinstance(tensors, (tuple, list)) and len(tensors) >= 2:
        return np.asarray(tensors[1].cpu().numpy())
    if isinstance(data, _subset_type()):
        return dataset_labels(data.dataset)[np.asarray(data.indices, dtype=np.int64)]
    return np.asarray([int(data[i][1]) for i in range(len(data))])


def _subset_type():
    from torch.utils.data import Subset
    return Subset


def _classes(data):
    classes = getattr(data, "classes", None)
    if classes is None and isinstance(data, _subset_type()):
        classes = getattr(data.dataset, "classes", None)
    return classes


def is_folder(data) -> bool:
    """Whether ``data`` is read as an image folder (not a dataset name)."""
    if isinstance(data, os.PathLike):
        return True
    if not isinstance(data, str):
        return False
    from transfer_nb.data import list_datasets  # lazy: pulls in torch
    return os.path.isdir(data) or data not in list_datasets()


def _check_folder(data):
    from transfer_nb.data import list_datasets  # lazy: pulls in torch
    from transfer_nb.data.folder import check_root  # lazy: pulls in torch
    if not os.path.exists(os.fspath(data)):
        raise ValueError(f"data {os.fspath(data)!r} does not exist as a folder and is not "
                         f"a dataset name (list_datasets(): {list_datasets()})")
    return check_root(data)  # ValueError: a file, not a folder


def check_folder_problems(data, skip_bad: bool = False, drop_classes=()) -> None:
    """Every problem of an image folder in one ValueError, before anything is loaded:
    empty class folders, classes with fewer than :data:`MIN_PER_CLASS` images, unreadable
    files (:func:`transfer_nb.data.folder.folder_problems`), and how to leave a class out."""
    from transfer_nb.data.folder import folder_problems  # lazy: pulls in torch

    problems = folder_problems(_check_folder(data), MIN_PER_CLASS, drop_classes, skip_bad)
    if problems:
        raise ValueError(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in "
                         f"{os.fspath(data)!r}: " + "; ".join(problems)
                         + "; fix them, or leave a class out with drop_classes=['NAME']")


def load_target(data, split, n=None, image_size=None, seed=0, skip_bad=False,
                drop_classes=()):
    """A folder path or dataset name -> an unnormalised ImageDataset; a Dataset as is."""
    if isinstance(data, (str, os.PathLike)):
        from transfer_nb.data import load_dataset  # lazy: pulls in torch

        if not is_folder(data):
            return load_dataset(data, split=split, n=n, image_size=image_size, seed=seed)
        return load_dataset("folder", root=_check_folder(data), split=split, n=n,
                            image_size=image_size, seed=seed, skip_bad=bool(skip_bad),
                            drop_classes=drop_classes)
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise ValueError(f"data must be a folder, a dataset name or a torch Dataset, got "
                         f"{type(data).__name__}")
    return data


def _has_own_split(data, skip_bad, drop_classes=()) -> bool:
    """A dataset name, or a folder holding ``train/`` and ``test/``."""
    if not isinstance(data, (str, os.PathLike)):
        return False
    if not is_folder(data):
        return True
    from transfer_nb.data.folder import folder_source  # lazy: pulls in torch
    return folder_source(_check_folder(data), skip_bad=bool(skip_bad),
                         drop_classes=drop_classes).split_of is not None


def split_indices(labels, test_fraction: float, seed: int):
    """``(train, held-out)`` indices: the one stratified split of a selection."""
    from transfer_nb.data.base import stratified_split  # lazy: pulls in torch

    train, test = stratified_split(labels, test_fraction, seed)
    if len(test) == 0:
        raise ValueError("every class has a single image: nothing left to hold out for the "
                         "ground truth (give a separate test set)")
    return train, test


def normalized_for(data, model):
    """``data`` as ``model`` expects it: an ImageDataset re-normalised the model's way
    (its stored images are in [0, 1]); anything else unchanged."""
    import copy

    from transfer_nb.data.base import ImageDataset  # lazy: pulls in torch

    norm = getattr(model, "transfer_nb_normalize", None)
    if not isinstance(data, ImageDataset) or norm is None or data.normalize == norm:
        return data
    view = copy.copy(data)  # shares the image tensor
    view.normalize = str(norm)
    view.spec = {**data.spec, "normalize": str(norm)}  # the cache key sees the change
    return view


# --------------------------------------------------------------------------- the rule
def target_parts(data, test_data=None, held_out: bool = False, *, n=None, n_test=None,
                 image_size=None, seed: int = 0, test_fraction: float = TEST_FRACTION,
                 skip_bad: bool = False, split: str = "train", drop_classes=()):
    """``(scored part, held-out part or None, split_made)`` by the module's one rule.

    Parameters
    ----------
    data, test_data : folder path, dataset name or torch Dataset
    held_out : bool
        Whether a ground truth is asked (then a held-out part is made).
    n, n_test : int, optional
        Images to use of ``data`` (of its training split when it has one) and of the
        held-out set; drawn stratified by ``seed`` (paths only).
    image_size, seed, skip_bad, drop_classes : passed to the loaders (paths only); a
        folder's problems are all reported at once first (:func:`check_folder_problems`).
    test_fraction : float
        Held-out share of a split made here.
    split : str
        The split of a dataset *name* that is scored (``"train"``).

    Returns
    -------
    train, test, split_made : dataset, dataset or None, bool
        ``split_made``: the held-out part was cut out of ``data`` here.
    """
    load = dict(image_size=image_size, seed=seed, skip_bad=skip_bad,
                drop_classes=drop_classes)
    named = isinstance(data, str) and not is_folder(data)
    if isinstance(data, (str, os.PathLike)) and not named:
        check_folder_problems(data, skip_bad, drop_classes)
    if test_data is not None:
        train = load_target(data, split if named else "all", n, **load)
        test = None
        if held_out:
            test_named = isinstance(test_data, str) and not is_folder(test_data)
            test = load_target(test_data, "test" if test_named else "all",
                               n_test if n_test is not None else n, **load)
        elif isinstance(test_data, (str, os.PathLike)) and is_folder(test_data):
            _check_folder(test_data)  # a wrong path fails even when unused
        split_made = False
    elif _has_own_split(data, skip_bad, drop_classes):
        train = load_target(data, split if named else ("train" if held_out else "all"), n,
                            **load)
        test = load_target(data, "test", n_test if n_test is not None else n, **load) \
            if held_out else None
        split_made = False
    else:  # a folder without train/ + test/, or a dataset object
        whole = load_target(data, "all", n, **load)
        test, split_made = None, held_out
        train = whole
        if held_out:
            tr, te = split_indices(dataset_labels(whole), test_fraction, seed)
            train, test = subset(whole, tr), subset(whole, te)
    if len(train) == 0:
        raise ValueError("the dataset is empty")
    return train, test, split_made


def _labels_of(part) -> np.ndarray:
    return np.asarray(part).ravel() if isinstance(part, (np.ndarray, list)) \
        else dataset_labels(part)


def check_class_counts(train, test=None, split_made: bool = False,
                       minimum: int = MIN_PER_CLASS) -> None:
    """Every class needs ``minimum`` images in the scored part: fail before any work,
    naming the classes (folder names) and, when a split was made here, what it held out.

    ``train`` and ``test`` are datasets or label arrays.

    Raises
    ------
    ValueError
        Fewer than 2 classes, or a class with fewer than ``minimum`` scored images.
    """
    labels = _labels_of(train)
    classes = None if isinstance(train, np.ndarray) else _classes(train)
    values, counts = np.unique(labels, return_counts=True)
    held = {}
    if test is not None and split_made:
        hv, hc = np.unique(_labels_of(test), return_counts=True)
        held = {v.item(): int(c) for v, c in zip(hv, hc)}

    def name(v):
        v = v.item() if hasattr(v, "item") else v
        if classes is not None and isinstance(v, (int, np.integer)) and 0 <= v < len(classes):
            return repr(str(classes[v]))
        return repr(v)

    if len(values) < 2:
        raise ValueError(f"the images to score hold {len(values)} class "
                         f"({', '.join(name(v) for v in values)}); the estimators need at "
                         "least 2 classes")
    few = [(v, int(c)) for v, c in zip(values, counts) if c < minimum]
    if not few:
        return
    parts = []
    for v, c in few:
        h = held.get(v.item(), 0)
        parts.append(f"{name(v)} has {c + h} image{'s' if c + h != 1 else ''}"
                     + (f", {h} held out for the ground truth, {c} left to score" if h else ""))
    hint = ("add images to these classes"
            + (", or give a separate held-out set (test_data)" if held else ""))
    raise ValueError(f"class {'; class '.join(parts)}: the estimators need at least {minimum} "
                     f"images per class; {hint}")


# --------------------------------------------------------------------- image sizes
def model_input_size(model) -> int | None:
    """The resolution a model was trained at: the zoo's ``input_size`` for a name,
    ``transfer_nb_input_size`` for a module (``None`` when it does not say)."""
    if isinstance(model, str):
        from transfer_nb.models import model_info  # lazy: pulls in torch
        size = model_info(model).get("input_size")
    else:
        size = getattr(model, "transfer_nb_input_size", None)
    return int(size) if size else None


def source_image_size(data, skip_bad: bool = False, sample: int = 64,
                      drop_classes=()) -> int | None:
    """The data's own resolution: the median shorter side of a folder's images (``sample``
    of them, evenly spaced; headers only), a dataset name's native size; ``None`` for a
    dataset object (used as it is)."""
    if not isinstance(data, (str, os.PathLike)):
        return None
    if not is_folder(data):
        from transfer_nb.data import dataset_info  # lazy: pulls in torch
        return int(min(dataset_info(data)["native_size"]))
    from PIL import Image

    from transfer_nb.data.folder import folder_source  # lazy: pulls in torch
    files = folder_source(_check_folder(data), skip_bad=bool(skip_bad),
                          drop_classes=drop_classes).files
    if not len(files):
        return None
    pick = np.unique(np.linspace(0, len(files) - 1, min(sample, len(files))).astype(int))
    sides = []
    for i in pick:
        try:
            with Image.open(files[i]) as im:
                sides.append(min(im.size))
        except OSError:  # an unreadable file is the loader's to report
            continue
    return int(np.median(sides)) if sides else None


def upsampling_note(own: int, side: int) -> str:
    """What to say when images of ``own`` px are shown to a model at ``side`` px: how much
    they are enlarged, and that the faster run at ``own`` px is another experiment (its
    scores are not comparable with these; its ranking can differ), never a free speed-up."""
    return (f"images upsampled {side / own:.1f}x ({own} -> {side} px); a separate run at "
            f"image_size={own} is faster, but scores at different image sizes are not "
            "comparable and its ranking can differ")
