"""``load_dataset``, ``list_datasets`` and ``dataset_info``: the data sets by name."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np

from transfer_nb._validation import check_fraction, check_scalar, plain
from transfer_nb.data import embedded, folder, online, regression, synthetic
from transfer_nb.data.base import (ConcatSource, ImageDataset, as_size, grouped_split,
                                   stratified_split, stratified_subsample)
from transfer_nb.preprocessing import get_normalization

__all__ = ["load_dataset", "load_image_folder", "list_datasets", "dataset_info", "DATASETS"]

# Bump when the generated/decoded content of any data set changes, so that caches keyed
# on ``ImageDataset.spec`` stop matching stale entries.
DATA_VERSION = 1
_EMBEDDED_SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class _Entry:
    name: str
    offline: bool
    description: str
    num_classes: int | None                             # None: regression
    native_size: tuple[int, int]
    options: dict = field(default_factory=dict)        # accepted options -> default
    official_splits: tuple[str, ...] | None = None     # None: stratified split of one pool
    task: str = "classification"                       # or "regression"
    target_names: tuple[str, ...] | None = None        # regression: the output columns
    needs_root: bool = False                           # "folder": the user's own images


_TEST_FRACTION = {"test_fraction": 0.25}
_ONLINE = {"root": None, "download": None}

DATASETS: dict[str, _Entry] = {e.name: e for e in [
    _Entry("digits", True, "scikit-learn handwritten digits: 1797 grey 8x8 images, 10 classes "
           "(0-9); stratified 75/25 train/test split.", 10, (8, 8), dict(_TEST_FRACTION)),
    _Entry("textures", True, "random patches of scikit-image's shipped photos (brick, grass, "
           "gravel, moon surface, ihc tissue): 200 per class, 96 photo pixels each, grey "
           "32x32; train and test come from different strips of each photo (no shared "
           "pixels). Options classes=, n_per_class=, region=.", len(embedded.DEFAULT_TEXTURES),
           (32, 32), {"classes": embedded.DEFAULT_TEXTURES, "n_per_class": 200, "region": 96,
                      "gen_seed": 0, **_TEST_FRACTION}),
    _Entry("lfw_faces", True, "scikit-image's lfw_subset: 100 faces and 100 non-faces, grey "
           "25x25, classes ['non-face', 'face'].", 2, (25, 25), dict(_TEST_FRACTION)),
    _Entry("glyphs", True, "characters rendered from matplotlib's fonts with random rotation/"
           "scale/shift; chars= (default digits) and fonts= (default DejaVu Sans/Serif/Mono) "
           "let source and target domains differ; 200 per class, grey 32x32.", 10, (32, 32),
           {"chars": "digits", "fonts": synthetic.DEFAULT_FONTS, "n_per_class": 200,
            "jitter": 1.0, "invert": False, "gen_seed": 0, **_TEST_FRACTION}),
    _Entry("shapes", True, "8 procedurally drawn shapes (circle, triangle, square, pentagon, "
           "hexagon, star, cross, heart), 300 per class, RGB 32x32; shift=0..1 (or color=, "
           "texture=, noise=, fill=) moves to a harder domain.", len(synthetic.SHAPE_CLASSES),
           (32, 32), {"classes": synthetic.SHAPE_CLASSES, "n_per_class": 300, "shift": 0.0,
                      "color": None, "texture": None, "noise": None, "fill": None,
                      "gen_seed": 0, **_TEST_FRACTION}),
    _Entry("cifar10", False, "CIFAR-10 via torchvision: 50000/10000 RGB 32x32, 10 classes.",
           10, (32, 32), dict(_ONLINE), online.ONLINE_SPLITS["cifar10"]),
    _Entry("cifar100", False, "CIFAR-100 via torchvision: 50000/10000 RGB 32x32, 100 fine "
           "classes (label_type='coarse': 20 superclasses).", 100, (32, 32),
           {"label_type": "fine", **_ONLINE}, online.ONLINE_SPLITS["cifar100"]),
    _Entry("svhn", False, "SVHN via torchvision: 73257/26032 (+531131 extra) RGB 32x32 house "
           "numbers, 10 classes.", 10, (32, 32), dict(_ONLINE), online.ONLINE_SPLITS["svhn"]),
    _Entry("flowers102", False, "Oxford Flowers102 via torchvision: 1020/1020/6149 RGB photos, "
           "102 classes; resized (shorter side) and centre-cropped, 224 px by default.", 102,
           (224, 224), dict(_ONLINE), online.ONLINE_SPLITS["flowers102"]),
    _Entry("dtd", False, "Describable Textures (DTD) via torchvision: 1880/1880/1880 RGB photos "
           "per partition, 47 classes; resized and centre-cropped, 224 px by default.", 47,
           (224, 224), {"partition": 1, **_ONLINE}, online.ONLINE_SPLITS["dtd"]),
    _Entry("shape_keypoints", True, "REGRESSION: a heart under a random rotation (any angle), "
           "scale and shift, RGB 32x32, 2000 images; targets (x, y) of its tip, notch, left "
           "and right lobe tops and centre as fractions of the image (10 outputs, exact). "
           "shift=/color=/texture=/noise=/fill= as for shapes.", None, (32, 32),
           {"n_images": 2000, "shift": 0.0, "color": None, "texture": None, "noise": None,
            "fill": None, "gen_seed": 0, **_TEST_FRACTION},
           task="regression", target_names=regression.keypoint_target_names()),
    _Entry("rotated_digits", True, "REGRESSION: the 1797 scikit-learn digits rotated by up "
           "to +-max_angle degrees (default 60) and scaled (8x8 box spans 0.45-0.7 of the "
           "image), grey 32x32; targets (cos angle, sin angle, scale).", None, (32, 32),
           {"max_angle": 60.0, "min_scale": 0.45, "max_scale": 0.7, "gen_seed": 0,
            **_TEST_FRACTION}, task="regression", target_names=regression.ROTATION_TARGETS),
    _Entry("folder", False, "your own images in torchvision's ImageFolder layout: root=PATH "
           "with one subfolder per class (classes = folder names, sorted), or train/ and "
           "test/ subfolders that each hold the class folders; without them a stratified "
           "split (test_fraction=0.25, seed). Any image Pillow reads, converted to RGB, "
           "resized and centre-cropped, 224 px by default; skip_bad=True leaves unreadable "
           "files out with a warning; drop_classes=[NAME, ...] leaves class folders out.",
           None, folder.DEFAULT_SIZE,
           {"root": None, "skip_bad": False, "drop_classes": (), **_TEST_FRACTION},
           needs_root=True),
]}


def list_datasets(offline: bool | None = None, task: str | None = "classification"
                  ) -> list[str]:
    """Names of the ready-made data sets accepted by :func:`load_dataset`.

    ``"folder"`` (your own images, ``load_dataset("folder", root=PATH)``) is not listed:
    it loads nothing without a ``root``; see ``dataset_info("folder")``.

    Parameters
    ----------
    offline : bool, optional
        ``True``: only the embedded sets that work without a network; ``False``: only
        the torchvision ones; ``None`` (default): all.
    task : {"classification", "regression", None}, default "classification"
        Only the sets of this task; ``None``: every set.  The default keeps callers
        that expect classes (widgets, class-based estimators) on classification sets.
    """
    if task not in ("classification", "regression", None):
        raise ValueError(f"task must be 'classification', 'regression' or None, got {task!r}")
    return [k for k, e in DATASETS.items()
            if not e.needs_root and (offline is None or e.offline == bool(offline))
            and (task is None or e.task == task)]


def _offline_names() -> list[str]:
    return list_datasets(offline=True, task=None)


def _entry(name) -> _Entry:
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    return DATASETS[name.lower()]


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def dataset_info(name: str) -> dict:
    """Facts about a data set without loading it.

    Returns
    -------
    dict
        ``name``, ``task`` (``"classification"`` or ``"regression"``), ``offline``
        (works without network), ``description``, ``splits``, ``num_classes`` (with
        default options; ``None`` for regression), ``native_size`` ``(h, w)``,
        ``options`` (accepted options and their defaults); regression sets add
        ``target_names`` and ``num_outputs``; online sets add ``data_dir`` and
        ``downloaded`` (whether the train split's files are present); ``"folder"`` has
        ``needs_root=True`` (and ``num_classes=None``: it depends on the folder).
    """
    e = _entry(name)
    info = {"name": e.name, "task": e.task, "offline": e.offline,
            "description": e.description,
            "splits": list(e.official_splits or ("train", "test")) + ["all"],
            "num_classes": e.num_classes, "native_size": list(e.native_size),
            "options": _jsonable(dict(e.options))}
    if e.target_names is not None:
        info["target_names"] = list(e.target_names)
        info["num_outputs"] = len(e.target_names)
    if e.needs_root:
        info["needs_root"] = True
    elif not e.offline:
        info["data_dir"] = str(online.data_root())
        info["downloaded"] = online.is_downloaded(e.name, e.official_splits[0])
    return info


# ---------------------------------------------------------------------------------------
# option validation
# ---------------------------------------------------------------------------------------
def _name_subset(name: str, value, allowed) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    unknown = plain([v for v in values if v not in allowed])
    if unknown:
        raise ValueError(f"unknown {name} {unknown}; expected some of {list(allowed)}")
    values = tuple(dict.fromkeys(values))
    if len(values) < 2:
        raise ValueError(f"{name} must name at least 2 distinct classes, got {plain(list(values))}")
    return values


def _resolve_options(e: _Entry, options: dict) -> dict:
    unknown = sorted(set(options) - set(e.options))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset {e.name!r}; it accepts "
                         f"{sorted(e.options) or 'no options'}")
    opts = {**e.options, **options}
    if "test_fraction" in opts:
        opts["test_fraction"] = check_fraction(opts["test_fraction"], "test_fraction",
                                               allow_zero=False, allow_one=False)
    if "gen_seed" in opts:
        opts["gen_seed"] = check_scalar(opts["gen_seed"], "gen_seed", int, min_val=0)
    if "n_per_class" in opts:
        opts["n_per_class"] = check_scalar(opts["n_per_class"], "n_per_class", int, min_val=2)
    if "n_images" in opts:
        opts["n_images"] = check_scalar(opts["n_images"], "n_images", int, min_val=2)
    if e.name == "textures":
        opts["classes"] = _name_subset("texture classes", opts["classes"], embedded.TEXTURE_PHOTOS)
        opts["region"] = check_scalar(opts["region"], "region", int, min_val=4)
    elif e.name == "glyphs":
        opts["chars"] = synthetic.resolve_chars(opts["chars"])
        opts["fonts"] = synthetic.resolve_fonts(opts["fonts"])
        # 1 = default strength
        opts["jitter"] = check_scalar(opts["jitter"], "jitter", float, min_val=0, max_val=2)
        opts["invert"] = bool(opts["invert"])
    elif e.name in ("shapes", "shape_keypoints"):
        if "classes" in opts:
            opts["classes"] = _name_subset("shape classes", opts["classes"],
                                           synthetic.SHAPE_CLASSES)
        opts["shift"] = check_fraction(opts["shift"], "shift", allow_zero=True)
        for k in ("color", "texture", "noise", "fill"):
            if opts[k] is not None:
                opts[k] = check_fraction(opts[k], k, allow_zero=True)
    elif e.name == "rotated_digits":
        opts["max_angle"] = check_scalar(opts["max_angle"], "max_angle", float,
                                         min_val=0.0, max_val=180.0)
        opts["min_scale"] = check_scalar(opts["min_scale"], "min_scale", float,
                                         min_val=0.05, max_val=2.0)
        opts["max_scale"] = check_scalar(opts["max_scale"], "max_scale", float,
                                         min_val=0.05, max_val=2.0)
        if opts["min_scale"] > opts["max_scale"]:
            raise ValueError(f"min_scale must be <= max_scale, got {opts['min_scale']} > "
                             f"{opts['max_scale']}")
    elif e.name == "cifar100":
        if opts["label_type"] not in ("fine", "coarse"):
            raise ValueError(f"label_type must be 'fine' or 'coarse', got {opts['label_type']!r}")
    elif e.name == "dtd":
        opts["partition"] = check_scalar(opts["partition"], "partition", int,
                                         min_val=1, max_val=10)
    elif e.name == "folder":
        if not isinstance(opts["skip_bad"], (bool, np.bool_)):
            raise ValueError(f"skip_bad must be True or False, got {plain(opts['skip_bad'])!r}")
        opts["skip_bad"] = bool(opts["skip_bad"])
        drop = opts["drop_classes"]
        drop = [drop] if isinstance(drop, str) else list(drop or ())
        if not all(isinstance(c, str) and c for c in drop):
            raise ValueError(f"drop_classes must be class folder names, got {drop!r}")
        opts["drop_classes"] = tuple(sorted(set(drop)))
    if e.needs_root:
        opts["root"] = str(folder.check_root(opts["root"]))
    elif not e.offline:
        opts["root"] = str(online.data_root(opts["root"]).resolve())
    return opts


# ---------------------------------------------------------------------------------------
# sources (cached: building an embedded pool costs 10-500 ms, reuse is free)
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _embedded_source(name: str, frozen: str):
    opts = json.loads(frozen)
    if name == "digits":
        return embedded.digits_source()
    if name == "lfw_faces":
        return embedded.lfw_faces_source()
    if name == "textures":
        return embedded.textures_source(tuple(opts["classes"]), opts["n_per_class"],
                                        opts["region"], 4, opts["gen_seed"])
    if name == "glyphs":
        return synthetic.GlyphSource(opts["chars"], tuple(opts["fonts"]), opts["n_per_class"],
                                     opts["jitter"], opts["invert"], opts["gen_seed"])
    if name == "shapes":
        return synthetic.ShapeSource(tuple(opts["classes"]), opts["n_per_class"], opts["shift"],
                                     opts["color"], opts["texture"], opts["noise"], opts["fill"],
                                     opts["gen_seed"])
    if name == "shape_keypoints":
        return regression.ShapeKeypointSource(opts["n_images"], opts["shift"], opts["color"],
                                              opts["texture"], opts["noise"], opts["fill"],
                                              opts["gen_seed"])
    if name == "rotated_digits":
        return regression.RotatedDigitSource(opts["max_angle"], opts["min_scale"],
                                             opts["max_scale"], opts["gen_seed"])
    raise ValueError(f"not an embedded data set: {name!r}")  # pragma: no cover


def _strata(source) -> np.ndarray:
    """What splits and subsamples stratify on: the classes, or a regression source's
    own ``strata`` (its targets are real numbers)."""
    strata = getattr(source, "strata", None)
    return source.targets if strata is None else strata


def load_dataset(name: str, split: str = "train", n: int | None = None, image_size=None,
                 seed: int = 0, normalize: str | None = None, **options) -> ImageDataset:
    """Load a labelled image data set as an in-memory :class:`ImageDataset`.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`: embedded offline ``digits``, ``textures``,
        ``lfw_faces``, ``glyphs``, ``shapes``; online ``cifar10``, ``cifar100``,
        ``svhn``, ``flowers102``, ``dtd``; regression (``list_datasets(task=
        "regression")``, module :mod:`transfer_nb.data.regression`): embedded
        ``shape_keypoints`` and ``rotated_digits``; ``"folder"`` with ``root=PATH``:
        your own images, one subfolder per class (:mod:`transfer_nb.data.folder`).
    split : str
        ``"train"``, ``"test"`` or ``"all"``; online sets use their official splits
        (``"val"`` for flowers102/dtd, ``"extra"`` for svhn).  Embedded sets have no
        official split: a stratified split (``test_fraction=0.25``) fixed by ``seed``.
    n : int, optional
        Keep ``n`` images of the split, stratified by class (regression sets: by
        their ``strata``), chosen by ``seed``.
    image_size : int or (int, int), optional
        Output size (an int means square).  Default: the native size (8 for digits,
        25 for lfw_faces, 32 for the others, 224 for flowers102/dtd/folder).  Arrays are
        resized with antialiasing; glyphs and shapes are rendered at this size.
    seed : int
        Chooses the split, the subsample and the order of the images.  Generated
        content is fixed by the ``gen_seed`` option instead, so that train and test of
        one seed come from one pool.
    normalize : {None, "none", "lite", "imagenet"}
        Applied to the ``[0, 1]`` images (see ``transfer_nb.preprocessing``).
    **options
        Data-set specific (see ``dataset_info(name)["options"]``), e.g.
        ``glyphs(chars="uppercase", fonts=["STIXGeneral"])``, ``shapes(shift=0.7)``,
        ``cifar100(label_type="coarse")``, ``dtd(partition=2)``, ``folder(root=PATH,
        test_fraction=0.25, skip_bad=False)``; online sets accept
        ``root=`` (default ``$TRANSFER_NB_DATA`` or ``~/.cache/transfer_nb/data``) and
        ``download=`` (default ``$TRANSFER_NB_DOWNLOAD``).

    Returns
    -------
    ImageDataset
        ``ds[i] -> (float32 tensor (3, H, W), int)``, with ``.classes``, ``.targets``,
        ``.name`` and ``.spec`` (every input that defines the content, JSON-safe).
        Regression sets: ``ds[i] -> (image, float32 tensor (m,))``, ``.targets``
        float32 ``(N, m)``, ``.classes = None``, ``.target_names``, ``.task``.

    Raises
    ------
    ValueError
        Unknown name, split or option, ``n`` larger than the split, ``image_size <= 0``.
    DatasetNotAvailableError
        (a ``RuntimeError``) an online set is not on disk and downloading is off or fails.
    """
    e = _entry(name)
    splits = (e.official_splits or ("train", "test")) + ("all",)
    if split not in splits:
        raise ValueError(f"unknown split {split!r} for dataset {e.name!r}; expected one of "
                         f"{list(splits)}")
    if n is not None:
        n = check_scalar(n, "n", int, min_val=1)
    seed = check_scalar(seed, "seed", int, min_val=0)
    size = as_size(image_size) or e.native_size
    get_normalization(normalize)
    download = options.get("download")
    opts = _resolve_options(e, options)

    if e.needs_root:
        source = folder.folder_source(opts["root"], opts["skip_bad"], opts["drop_classes"])
        indices = folder.folder_split(source, split, opts["test_fraction"], seed)
    elif e.official_splits is None:
        source = _embedded_source(e.name, json.dumps(_jsonable(opts), sort_keys=True))
        strata = _strata(source)
        if split == "all":
            indices = np.arange(len(source.targets))
        else:
            if getattr(source, "groups", None) is not None:  # textures: whole strips
                train, test = grouped_split(source.targets, source.groups,
                                            opts["test_fraction"], seed)
            else:
                train, test = stratified_split(strata, opts["test_fraction"], seed)
            indices = train if split == "train" else test
    else:
        parts = e.official_splits if split == "all" else (split,)
        sources = [online.online_source(e.name, s, opts, download, _offline_names())
                   for s in parts]
        source = sources[0] if len(sources) == 1 else ConcatSource(sources)
        indices = np.arange(len(source.targets))

    if n is not None:
        if n > len(indices):
            raise ValueError(f"n={n} requested but split {split!r} of dataset {e.name!r} has "
                             f"only {len(indices)} images")
        indices = indices[stratified_subsample(_strata(source)[indices], n, seed)]
    # a seeded shuffle: any prefix of the set is then a fair mix of classes
    indices = indices[np.random.default_rng([seed, 0x0D3]).permutation(len(indices))]

    images = source.images(indices, size)
    targets = source.targets[indices]
    spec_opts = {k: v for k, v in opts.items() if k != "download"}
    spec = {"name": e.name, "split": split, "n": n, "seed": seed, "image_size": list(size),
            "normalize": "none" if normalize is None else str(normalize),
            "options": _jsonable(spec_opts), "version": DATA_VERSION}
    if getattr(source, "fingerprint", None) is not None:  # "folder": its content
        spec["fingerprint"] = source.fingerprint
    return ImageDataset(images, targets, source.classes, name=e.name, spec=spec,
                        normalize=normalize, source_indices=indices,
                        target_names=getattr(source, "target_names", None))


def load_image_folder(root, split: str = "train", n: int | None = None, image_size=None,
                      seed: int = 0, normalize: str | None = None, test_fraction: float = 0.25,
                      skip_bad: bool = False, drop_classes=()):
    """Load your own images, one subfolder per class, as an :class:`ImageDataset`.

    Same as ``load_dataset("folder", root=root, ...)``: see :mod:`transfer_nb.data.folder`
    for the layouts and :func:`load_dataset` for ``split``, ``n``, ``image_size`` (default
    224), ``seed`` and ``normalize``.

    Parameters
    ----------
    root : str or path-like
        The folder: ``root/<class>/<images>`` or ``root/{train,test}/<class>/<images>``.
    test_fraction : float in (0, 1)
        Share of each class in the test split (ignored with ``train/`` and ``test/``).
    skip_bad : bool
        Leave unreadable images out with a warning naming them instead of raising.
    drop_classes : sequence of str
        Class folders left out.

    Returns
    -------
    ImageDataset
        ``.classes`` are the folder names sorted; ``.spec["fingerprint"]`` hashes the
        folder's file list, sizes and modification times.
    """
    return load_dataset("folder", split=split, n=n, image_size=image_size, seed=seed,
                        normalize=normalize, root=root, test_fraction=test_fraction,
                        skip_bad=skip_bad, drop_classes=drop_classes)
