"""Input normalisations that pretrained weights expect.

Datasets yield float images in ``[0, 1]``; ``normalize_images`` maps them to what a
model was trained on.  Kept here (not in ``data`` or ``models``) because both need it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # annotations only: importing preprocessing stays torch-free
    import torch

NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    # EfficientNet-Lite (TF-Lite): (p - 127) / 128 ~ (x - 0.5) / 0.5 for x in [0, 1]
    "lite": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    # torchvision / timm ImageNet models
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def get_normalization(name: str | None):
    """Return ``(mean, std)`` for a normalisation name (``None`` means ``"none"``)."""
    key = "none" if name is None else str(name)
    if key not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; expected one of {sorted(NORMALIZATIONS)}")
    return NORMALIZATIONS[key]


def normalize_images(x, name: str | None):
    """Normalise a float tensor ``(..., 3, H, W)`` in ``[0, 1]`` with the named scheme."""
    import torch
    mean, std = get_normalization(name)
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean_t) / std_t


# ------------------------------------------------- pixels <-> model input (one rule)

def check_normalize(normalize):
    """Validate ``normalize`` without a model (names are checked against the known ones)."""
    if normalize is None or normalize == "model" or callable(normalize):
        return normalize
    if isinstance(normalize, str):
        get_normalization(normalize)  # raises a ValueError naming the choices
        return normalize
    raise ValueError(f"normalize must be None, 'model', a normalisation name "
                     f"{sorted(NORMALIZATIONS)} or a callable, got {normalize!r}")


def resolve_normalize(normalize, model: "torch.nn.Module") -> "Callable":
    """The pixel -> model-input map: ``"model"`` reads ``model.transfer_nb_normalize``."""
    normalize = check_normalize(normalize)
    if normalize == "model":
        normalize = getattr(model, "transfer_nb_normalize", None)
    if normalize is None or normalize == "none":
        return lambda x: x
    if callable(normalize):
        return normalize
    name = normalize
    return lambda x: normalize_images(x, name)


def normalization_name(normalize, model: "torch.nn.Module") -> str:
    """The named normalisation of ``normalize`` (``"model"``: the model's; None: ``"none"``).

    The training hook must undo the normalisation of its input, so it takes names only.
    """
    normalize = check_normalize(normalize)
    if callable(normalize) and not isinstance(normalize, str):
        raise ValueError("the perturbation hook needs normalize=None, 'model' or a name "
                         f"{sorted(NORMALIZATIONS)} to map model inputs back to "
                         "pixels; a callable cannot be inverted (call pgd() directly)")
    if normalize == "model":
        normalize = getattr(model, "transfer_nb_normalize", None)
    return "none" if normalize is None else str(normalize)


def to_pixels(x: "torch.Tensor", name: str) -> "torch.Tensor":
    """Inverse of :func:`normalize_images` (model input back to ``[0, 1]`` pixels)."""
    import torch
    mean, std = get_normalization(name)
    shape = (len(mean), 1, 1)
    return (x * torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
            + torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape))


def model_input_transform(normalize, model: "torch.nn.Module", data):
    """``(transform, name)`` that turn ``data``'s batches into model input.

    A data set that normalised itself (``.normalize`` other than ``"none"``, as an
    :class:`transfer_nb.data.ImageDataset` may) gets no transform and its own name;
    pixel data get ``normalize`` (``transform`` None when it is the identity).
    """
    own = getattr(getattr(data, "dataset", data), "normalize", None)
    if isinstance(own, str) and own != "none":
        return None, own
    if callable(normalize) and not isinstance(normalize, str):
        return normalize, None
    name = normalization_name(normalize, model)
    if name == "none":
        return None, name
    return (lambda x: normalize_images(x, name)), name


def input_normalization(model, normalize="auto", data=None) -> str:
    """The normalisation name a model's input needs: the one rule of the library.

    ``"auto"`` (or ``"model"``): the model's ``transfer_nb_normalize`` unless ``data`` is
    already normalised (an ``ImageDataset`` whose ``.normalize`` is not ``"none"``; a
    ``DataLoader`` or ``Subset`` is looked through), then ``"none"``.  None means
    ``"none"``; a name is returned as it is.
    """
    if normalize in ("auto", "model"):
        inner = getattr(data, "dataset", data)
        already = getattr(inner, "normalize", None)
        if isinstance(already, str) and already not in ("", "none"):
            return "none"
        return getattr(model, "transfer_nb_normalize", None) or "none"
    return "none" if normalize is None else normalize
