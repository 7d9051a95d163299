"""Input normalisations that pretrained weights expect.

Datasets yield float images in ``[0, 1]``; ``normalize_images`` maps them to what a
model was trained on.  Kept here (not in ``data`` or ``models``) because both need it.
"""
from __future__ import annotations

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
