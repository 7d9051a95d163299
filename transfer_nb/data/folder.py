"""Your own images: a folder in torchvision's ``ImageFolder`` layout.

>>> from transfer_nb.data import load_dataset
>>> ds = load_dataset("folder", root="my_images", split="train", image_size=64)

(or ``load_image_folder("my_images", ...)``, defined beside ``load_dataset`` in
:mod:`transfer_nb.data.registry`).  This module holds the building blocks: listing a
folder's images (:func:`folder_source`), its split (:func:`folder_split`) and the checks.

Two layouts are recognised under ``root``::

    root/cat/1.jpg, root/dog/a.png, ...            one subfolder per class: a stratified
                                                  train/test split (``test_fraction``,
                                                  ``seed``) of all images
    root/train/cat/1.jpg, root/test/cat/9.jpg ...  ``train/`` and ``test/`` hold the split

Class names are the subfolder names, sorted (label ``k`` is ``classes[k]``).  Images may
sit in nested folders below their class folder.  Any file with an extension that Pillow
can open is an image (``.png``, ``.jpg``, ``.bmp``, ``.gif``, ``.tif``, ``.webp`` ...);
other files and hidden names (``.ipynb_checkpoints``, ``.DS_Store``) are ignored.  Grey,
palette and RGBA images become RGB; every image is resized (shorter side) and centre-
cropped to ``image_size`` by the same decoder as Flowers102 and DTD.

The images are listed once per call, with their sizes and modification times: that
list's hash (``ImageDataset.spec["fingerprint"]``) keys every cache, so two folders, or
one folder before and after an edit, never share a cached result.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from transfer_nb.data.base import stratified_split
from transfer_nb.data.online import FileSource

__all__ = ["folder_source", "folder_split", "image_extensions", "check_root",
           "folder_problems", "FolderSource", "DEFAULT_SIZE", "UnreadableImagesWarning"]

DEFAULT_SIZE = (224, 224)
_SPLIT_DIRS = ("train", "test")
_COMMON = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".webp")  # for messages
_SHOWN = 3  # unreadable files named in a message; the rest are counted


class UnreadableImagesWarning(UserWarning):
    """Unreadable image files were left out (``skip_bad=True``): the count and the first
    few paths."""


@functools.lru_cache(maxsize=1)
def image_extensions() -> tuple[str, ...]:
    """Lower-case file extensions (``".png"``, ...) of the formats Pillow can read."""
    from PIL import Image
    Image.init()
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items()
                        if fmt in Image.OPEN))


class FolderSource(FileSource):
    """A :class:`~transfer_nb.data.online.FileSource` over an image folder.

    Attributes
    ----------
    root : str
        The folder, resolved.
    split_of : numpy.ndarray of str, or None
        ``"train"`` / ``"test"`` per image for the ``train/`` + ``test/`` layout; ``None``
        for one subfolder per class.
    fingerprint : str
        sha256 of every image's relative path, size and modification time (bad files
        included), the content key of the folder.
    skipped : list of str
        Unreadable files left out (``skip_bad=True``).
    """

    def __init__(self, root: str, files, targets, classes, split_of, fingerprint: str,
                 skipped, default_size=DEFAULT_SIZE):
        super().__init__(files, targets, classes, default_size)
        self.root = root
        self.split_of = split_of
        self.fingerprint = fingerprint
        self.skipped = list(skipped)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_dirs(base: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(base) if e.is_dir() and _visible(e.name))


def _image_files(class_dir: Path) -> list[Path]:
    """Image files under ``class_dir`` (nested folders too), in sorted order."""
    exts = image_extensions()
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        found.extend(Path(dirpath) / f for f in sorted(filenames)
                     if _visible(f) and os.path.splitext(f)[1].lower() in exts)
    return found


def check_root(root) -> Path:
    """``root`` as a resolved :class:`~pathlib.Path`; ValueError if it is not a folder."""
    if root is None:
        raise ValueError("dataset 'folder' needs root=PATH: a folder with one subfolder of "
                         "images per class (torchvision's ImageFolder layout)")
    path = Path(os.fspath(root)).expanduser()
    if not path.exists():
        raise ValueError(f"image folder {str(path)!r} does not exist; expected a folder with "
                         "one subfolder of images per class (torchvision's ImageFolder layout)")
    if not path.is_dir():
        raise ValueError(f"image folder root {str(path)!r} is a file, not a folder; expected "
                         "a folder with one subfolder of images per class")
    return path.resolve()


def _layout(root: Path) -> list[tuple[str | None, Path]]:
    """``[(split, base folder)]``: ``[(None, root)]`` or train and test subfolders."""
    present = [s for s in _SPLIT_DIRS if (root / s).is_dir()]
    if not present:
        return [(None, root)]
    if len(present) == 1:
        missing = [s for s in _SPLIT_DIRS if s not in present][0]
        raise ValueError(f"image folder {str(root)!r} has a {present[0]!r} subfolder but no "
                         f"{missing!r} one; expected both train/ and test/ (each with one "
                         "subfolder per class) or only class subfolders")
    return [(s, root / s) for s in _SPLIT_DIRS]


def _scan(root: Path, drop=(), problems: list | None = None):
    """List every image: ``(files, class names per file, split per file, classes)``.

    ``drop``: class folder names left out.  A class folder without images is a problem:
    all of them are named in one ValueError, or appended to ``problems`` when it is a
    list (then the scan goes on).
    """
    layout = _layout(root)
    drop = set(drop)
    files, names, splits = [], [], []
    all_classes: set[str] = set()
    empty = []
    for split, base in layout:
        found_classes = _class_dirs(base)
        classes = [c for c in found_classes if c not in drop]
        where = str(base)
        if not found_classes:
            loose = _image_files_here(base)
            hint = (f" (it holds {len(loose)} image file(s) directly: move them into one "
                    "subfolder per class)") if loose else ""
            raise ValueError(f"image folder {where!r} has no class subfolders{hint}; expected "
                             "one subfolder of images per class, e.g. "
                             f"{os.path.join(where, 'cat', '1.jpg')!r}")
        for c in classes:
            found = _image_files(base / c)
            if not found:
                empty.append(str(base / c))
            files.extend(found)
            names.extend([c] * len(found))
            splits.extend([split] * len(found))
        all_classes.update(found_classes)
    unknown = sorted(drop - all_classes)
    if unknown:
        raise ValueError(f"drop_classes {unknown} {'is' if len(unknown) == 1 else 'are'} not "
                         f"a class of {str(root)!r}; its classes are {sorted(all_classes)}")
    if empty:
        message = (f"class folder{'s' if len(empty) > 1 else ''} "
                   f"{', '.join(repr(e) for e in empty)} hold{'s' if len(empty) == 1 else ''} "
                   f"no image files; expected files Pillow reads ({', '.join(_COMMON)}, ...)")
        if problems is None:
            raise ValueError(message)
        problems.append(message)
    classes = sorted(all_classes - drop)
    if len(classes) < 2:
        raise ValueError(f"image folder {str(root)!r} has only one class folder {classes}"
                         + (f" once {sorted(drop)} are left out" if drop else "")
                         + "; expected at least 2 classes (one subfolder each)")
    return files, names, splits, classes


def folder_problems(root, min_per_class: int = 1, drop_classes=(),
                    skip_bad: bool = False) -> list[str]:
    """Every problem of an image folder at once, without raising: class folders without
    images, classes with fewer than ``min_per_class`` images (in ``train/`` for that
    layout), and unreadable files (their count and the first few; not a problem with
    ``skip_bad``, but the classes are counted without them).

    A folder whose layout cannot be read at all (missing, no class subfolders, one class,
    ``train/`` without ``test/``, an unknown name in ``drop_classes``) still raises the
    one ValueError that says so.
    """
    root = check_root(root)
    problems: list[str] = []
    files, names, splits, classes = _scan(root, drop_classes, problems)
    fingerprint = _fingerprint(root, files)
    bad = _bad_files(tuple(str(f) for f in files), bool(skip_bad), fingerprint)
    if bad and not skip_bad:
        shown = ", ".join(repr(p) for p, _ in bad[:_SHOWN])
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        problems.append(f"cannot read {len(bad)} image file{'s' if len(bad) != 1 else ''}: "
                        f"{shown}{more} ({bad[0][1]}); remove "
                        f"{'it' if len(bad) == 1 else 'them'} or pass skip_bad=True to "
                        "leave unreadable files out")
    unreadable = {p for p, _ in bad}
    counts: dict = {}
    for f, c, split in zip(files, names, splits):
        if split != "test" and str(f) not in unreadable:
            counts[c] = counts.get(c, 0) + 1
    small = [(c, counts.get(c, 0)) for c in classes if 0 < counts.get(c, 0) < min_per_class]
    if small:
        where = " in train/" if splits and splits[0] is not None else ""
        problems.append(
            f"class {'; class '.join(f'{c!r} has {k} image' + ('s' if k != 1 else '') for c, k in small)}"
            f"{where}: at least {min_per_class} images per class are needed")
    return problems


def _image_files_here(base: Path) -> list[str]:
    exts = image_extensions()
    return [e.name for e in os.scandir(base)
            if e.is_file() and os.path.splitext(e.name)[1].lower() in exts]


def _fingerprint(root: Path, files: list[Path]) -> str:
    rows = []
    for f in files:
        st = f.stat()
        rows.append([f.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _unreadable(path: Path, full: bool) -> str | None:
    """Why Pillow cannot read ``path`` (``None`` if it can).

    ``full=False`` checks the header and, for PNG, the checksums (``verify``);
    ``full=True`` decodes the pixels, which also catches truncated JPEG data.
    """
    from PIL import Image
    try:
        with Image.open(path) as im:
            if full:
                im.convert("RGB")
            else:
                im.verify()
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ...
        return f"{type(err).__name__}: {err}"
    return None


@functools.lru_cache(maxsize=8)
def _bad_files(files: tuple[str, ...], full: bool, fingerprint: str) -> tuple:
    """``((path, reason), ...)`` for the unreadable files; cached per folder content."""
    del fingerprint  # part of the cache key only: a changed file is checked again
    out = []
    for f in files:
        why = _unreadable(Path(f), full)
        if why is not None:
            out.append((f, why))
    return tuple(out)


def folder_source(root, skip_bad: bool = False, drop_classes=()) -> FolderSource:
    """List and check the images under ``root`` (see the module docstring for layouts).

    Parameters
    ----------
    root : str or path-like
    skip_bad : bool
        ``False``: an unreadable file raises a ValueError naming it.  ``True``: every
        image is decoded once up front and the unreadable ones are left out with a
        warning that names them.
    drop_classes : sequence of str
        Class folders left out (their names must exist).

    Raises
    ------
    ValueError
        Missing or empty folder, fewer than 2 classes, a class folder without images,
        an unreadable image (unless ``skip_bad``), or a class left without any readable
        image.
    """
    root = check_root(root)
    files, names, splits, classes = _scan(root, drop_classes)
    fingerprint = _fingerprint(root, files)
    bad = _bad_files(tuple(str(f) for f in files), bool(skip_bad), fingerprint)
    if bad and not skip_bad:
        path, why = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ValueError(f"cannot read image file {path!r} ({why}){more}; remove it or pass "
                         "skip_bad=True to leave unreadable files out")
    skipped = [p for p, _ in bad]
    if skipped:
        warnings.warn(skipped_message(root, skipped), UnreadableImagesWarning, stacklevel=3)
        dropped = set(skipped)
        keep = [i for i, f in enumerate(files) if str(f) not in dropped]
        files = [files[i] for i in keep]
        names = [names[i] for i in keep]
        splits = [splits[i] for i in keep]
        _require_images(root, names, splits, classes, skipped)
    index = {c: k for k, c in enumerate(classes)}
    split_of = None if splits[0] is None else np.asarray(splits)
    return FolderSource(str(root), files, [index[c] for c in names], classes, split_of,
                        fingerprint, skipped)


def skipped_message(root, skipped) -> str:
    """``"skipped 12 unreadable image files in 'root': 'a', 'b', 'c' (and 9 more)"``."""
    shown = ", ".join(repr(str(p)) for p in skipped[:_SHOWN])
    more = f" (and {len(skipped) - _SHOWN} more)" if len(skipped) > _SHOWN else ""
    return (f"skipped {len(skipped)} unreadable image file{'s' if len(skipped) != 1 else ''} "
            f"in {str(root)!r}: {shown}{more}")


def _require_images(root: Path, names, splits, classes, skipped) -> None:
    """After skipping, every class folder must still hold at least one readable image."""
    have = set(zip(splits, names))
    for split in dict.fromkeys(splits):
        for c in classes:
            base = root if split is None else root / split
            if (base / c).is_dir() and (split, c) not in have:
                raise ValueError(f"class folder {str(base / c)!r} holds no readable image "
                                 f"once the unreadable files {skipped} are skipped")


def folder_split(source: FolderSource, split: str, test_fraction: float, seed: int
                 ) -> np.ndarray:
    """Indices of ``split`` (``"train"``, ``"test"`` or ``"all"``) into ``source``.

    The ``train/`` + ``test/`` layout gives its own split; otherwise
    :func:`~transfer_nb.data.base.stratified_split` with ``test_fraction`` and ``seed``.
    """
    n = len(source.targets)
    if split == "all":
        return np.arange(n, dtype=np.int64)
    if source.split_of is not None:
        return np.flatnonzero(source.split_of == split).astype(np.int64)
    train, test = stratified_split(source.targets, test_fraction, seed)
    return train if split == "train" else test
