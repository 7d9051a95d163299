"""Real image data sets that ship inside installed wheels (no network needed).

* ``digits``    -- scikit-learn's handwritten digits (1797 images, 8x8, 10 classes).
* ``textures``  -- patches cropped from the texture photos scikit-image ships.
* ``lfw_faces`` -- scikit-image's ``lfw_subset``: 100 faces and 100 non-faces, 25x25.

Files are read straight from scikit-image's package ``data`` folder: those images are
in the wheel, whereas ``skimage.data.<name>()`` resolves through pooch and, for images
*not* in the wheel, would try to download.  Only shipped files are used here.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

from transfer_nb.data.base import ArraySource

__all__ = ["digits_source", "textures_source", "lfw_faces_source", "TEXTURE_PHOTOS",
           "DEFAULT_TEXTURES"]

# Texture classes -> file shipped in scikit-image's wheel (checked for 0.22 .. 0.26).
# brick / grass / gravel are scikit-image's texture photos; moon (lunar surface seen
# from close by) and ihc (immunohistochemistry tissue stain) are homogeneous enough to
# tile into patches; the others are offered as extra, less texture-like classes
# (photos of objects and scenes among them).
TEXTURE_PHOTOS = {
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "moon": "moon.png",
    "ihc": "ihc.png",
    "hubble": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
    # photos of objects and scenes (natural images, as ImageNet's are): near-domain
    # targets of the Head2Toe experiment
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "camera": "camera.png",
    "coins": "coins.png",
    "motorcycle": "motorcycle_left.png",
    "clock": "clock_motion.png",
}
DEFAULT_TEXTURES = ("brick", "grass", "gravel", "moon", "ihc")


def _skimage_data_file(filename: str) -> str:
    """Path of an image shipped in scikit-image's wheel, or a clear error."""
    import skimage
    path = os.path.join(os.path.dirname(skimage.__file__), "data", filename)
    if not os.path.exists(path):
        raise RuntimeError(
            f"{filename} is not shipped with this scikit-image ({skimage.__version__}) "
            f"at {path}; the embedded data sets need a scikit-image wheel that ships it")
    return path


@functools.lru_cache(maxsize=2)
def digits_source() -> ArraySource:
    """scikit-learn's ``load_digits``: values 0..16 scaled to ``[0, 1]``, 1 channel."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return ArraySource(images, bunch.target.astype(np.int64), [str(d) for d in range(10)])


@functools.lru_cache(maxsize=2)
def lfw_faces_source() -> ArraySource:
    """scikit-image's ``lfw_subset`` (first 100 faces, then 100 non-faces), 25x25 grey.

    Label 1 is ``"face"`` so that the positive class of this binary task is the face.
    """
    try:
        faces = np.load(_skimage_data_file("lfw_subset.npy"))
    except RuntimeError:
        from skimage.data import lfw_subset  # newer layouts: let scikit-image find it
        faces = lfw_subset()
    faces = np.clip(faces.astype(np.float32), 0.0, 1.0)
    n = faces.shape[0]
    targets = np.zeros(n, dtype=np.int64)
    targets[: n // 2] = 1  # documented order: 100 faces, then 100 non-faces
    return ArraySource(torch.from_numpy(faces).unsqueeze(1), targets, ["non-face", "face"])


@functools.lru_cache(maxsize=8)
def _texture_photo(name: str) -> np.ndarray:
    """One texture photo as a float32 grey image in [0, 1]."""
    from skimage import io
    img = io.imread(_skimage_data_file(TEXTURE_PHOTOS[name]))
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3:
        # Grey for every class: a colour cue would make ihc/hubble trivially separable
        # from the grey photos, and the task is meant to be about texture.
        img = img[..., :3] @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
    return img


@functools.lru_cache(maxsize=8)
def textures_source(classes: tuple[str, ...] = DEFAULT_TEXTURES, n_per_class: int = 200,
                    region: int = 96, strips: int = 4, gen_seed: int = 0) -> ArraySource:
    """Random patches of texture photos, one class per photo.

    Each photo is cut into ``strips`` vertical strips; ``n_per_class`` square crops of
    ``region`` photo pixels are taken at random positions inside the strips (as many in
    each), given a random flip / 90-degree rotation (the texture class does not depend
    on orientation), and kept at ``region`` pixels (``load_dataset`` resizes them with
    antialiasing; 32 px by default, i.e. the photo scaled down 3x).

    Crops overlap each other, but never across strips, and the source records each
    crop's strip in ``groups``: splits put whole strips in train or test, so a test
    patch shares no pixel with a training patch (random crops split at random would).
    """
    rng = np.random.default_rng([int(gen_seed), 0x7E47])
    crops, targets, groups = [], [], []
    for label, name in enumerate(classes):
        img = _texture_photo(name)
        height, width = img.shape
        strip_w = width // strips
        if strip_w < region or height < region:
            raise ValueError(f"region={region} px does not fit in the {name!r} photo "
                             f"({height}x{width}) cut into {strips} strips")
        for k in range(n_per_class):
            strip = k % strips  # as many crops in every strip
            y0 = int(rng.integers(0, height - region + 1))
            x0 = strip * strip_w + int(rng.integers(0, strip_w - region + 1))
            p = np.rot90(img[y0:y0 + region, x0:x0 + region], k=int(rng.integers(4)))
            if rng.integers(2):
                p = p[:, ::-1]
            crops.append(np.ascontiguousarray(p))
            targets.append(label)
            groups.append(strip)
    images = torch.from_numpy(np.stack(crops)).unsqueeze(1)
    source = ArraySource(images, np.asarray(targets, dtype=np.int64), list(classes))
    source.groups = np.asarray(groups, dtype=np.int64)
    return source
