"""Small CNN / ResNet source models that experiments train themselves.

These are the models an experiment trains on a source task (plain, adversarial or
semi-supervised training, see :func:`transfer_nb.models.train_source`) and then
transfers.  They are sized for 32x32 inputs and a CPU budget: a few hundred thousand
parameters.  Both end with an adaptive average pool, so other input sizes work too.

Every model exposes the same module names so that feature extraction code can treat
them alike:

``stages.0`` ... ``stages.{k-1}``
    stage outputs (feature maps); all but the last are default extraction layers
    (the last one, averaged, *is* ``pool``),
``pool``
    global average pool + flatten, the penultimate representation ``(n, C)``,
``fc``
    the linear classifier.
"""
from __future__ import annotations

import torch
from torch import nn

from transfer_nb._validation import check_scalar

from . import layers as _layers

__all__ = ["SmallCNN", "SmallResNet", "BasicBlock", "build_small_model", "SMALL_MODELS",
           "small_feature_layers"]


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    # bias=False: the following BatchNorm has its own shift
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _head(channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    # the pool is a module (not a functional call in forward) so that forward hooks can
    # read the penultimate representation under a stable name
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), nn.Linear(channels, num_classes)


class SmallCNN(nn.Module):
    """VGG-style CNN: ``depth`` stages of two 3x3 conv-BN-ReLU, each followed by 2x2 max pool.

    Parameters
    ----------
    num_classes : int
        Number of output logits.
    width : int
        Channels of the first stage; stage ``i`` has ``width * 2**i`` channels.
    depth : int
        Number of stages (each halves the resolution).
    in_channels : int
        Input channels (3 for the RGB tensors the data sets yield).

    Notes
    -----
    ``width=32, depth=3`` has about 0.29 M parameters.
    """

    def __init__(self, num_classes: int = 10, width: int = 32, depth: int = 3,
                 in_channels: int = 3):
        super().__init__()
        num_classes = check_scalar(num_classes, "num_classes", int, min_val=1)
        width = check_scalar(width, "width", int, min_val=1)
        depth = check_scalar(depth, "depth", int, min_val=1)
        stages = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * 2 ** i
            stages.append(nn.Sequential(*_conv_bn_relu(c_in, c_out), *_conv_bn_relu(c_out, c_out),
                                        nn.MaxPool2d(2)))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool, self.fc = _head(c_in, num_classes)
        self.num_features = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(x)))


class BasicBlock(nn.Module):
    """Pre-activation-free ResNet basic block (two 3x3 convs and a shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or c_in != c_out:
            # projection shortcut when the shape changes (ResNet "option B")
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """CIFAR-style ResNet: a 3x3 stem, ``len(blocks)`` stages of basic blocks.

    Parameters
    ----------
    num_classes : int
        Number of output logits.
    width : int
        Channels of the first stage; stage ``i`` has ``width * 2**i`` channels and
        (for ``i > 0``) stride 2.
    depth : int
        Number of stages.
    blocks_per_stage : int
        Basic blocks in each stage (3 with ``depth=3`` is the classic ResNet-20).
    in_channels : int
        Input channels.

    Notes
    -----
    ``width=16, depth=3, blocks_per_stage=2`` has about 0.18 M parameters.
    """

    def __init__(self, num_classes: int = 10, width: int = 16, depth: int = 3,
                 blocks_per_stage: int = 2, in_channels: int = 3):
        super().__init__()
        num_classes = check_scalar(num_classes, "num_classes", int, min_val=1)
        width = check_scalar(width, "width", int, min_val=1)
        depth = check_scalar(depth, "depth", int, min_val=1)
        blocks_per_stage = check_scalar(blocks_per_stage, "blocks_per_stage", int, min_val=1)
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, width))
        stages = []
        c_in = width
        for i in range(depth):
            c_out = width * 2 ** i
            blocks = [BasicBlock(c_in, c_out, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(c_out, c_out) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool, self.fc = _head(c_in, num_classes)
        self.num_features = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


# name -> (class, default keyword options)
SMALL_MODELS: dict[str, tuple[type, dict]] = {
    "small_cnn": (SmallCNN, {"width": 32, "depth": 3}),
    "small_resnet": (SmallResNet, {"width": 16, "depth": 3, "blocks_per_stage": 2}),
}


def small_feature_layers(model: nn.Module) -> list[str]:
    """The declared feature layers: every stage output but the last, then ``pool``.

    The last stage's average-pooled features are exactly ``pool``'s, so only ``pool``
    (the penultimate representation) is kept.
    """
    return [f"stages.{i}" for i in range(len(model.stages) - 1)] + ["pool"]


def build_small_model(name: str, num_classes: int = 10, **options) -> nn.Module:
    """Build a randomly initialised small model with ``transfer_nb_*`` attributes set.

    Parameters
    ----------
    name : {"small_cnn", "small_resnet"}
        Architecture.
    num_classes : int
        Number of output logits.
    **options
        Architecture options (``width``, ``depth``, ``blocks_per_stage`` for the ResNet);
        ``None`` values fall back to the defaults.

    Returns
    -------
    torch.nn.Module
        In eval mode, with ``.transfer_nb_name``, ``.transfer_nb_normalize`` (``"none"``),
        ``.transfer_nb_feature_info`` (:func:`small_feature_layers`),
        ``.transfer_nb_input_size`` (32)
        and ``.transfer_nb_options`` (the full set of architecture options).
    """
    if name not in SMALL_MODELS:
        raise ValueError(f"unknown small model {name!r}; expected one of {sorted(SMALL_MODELS)}")
    cls, defaults = SMALL_MODELS[name]
    unknown = set(options) - set(defaults) - {"in_channels"}
    if unknown:
        raise ValueError(f"{name} does not take option(s) {sorted(unknown)}; "
                         f"valid options: {sorted(defaults)}")
    opts = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    model = cls(num_classes=num_classes, **opts)
    model.eval()
    model.transfer_nb_name = name
    model.transfer_nb_normalize = "none"
    _layers.declare_feature_layers(model, small_feature_layers(model), input_size=32)
    model.transfer_nb_input_size = 32
    model.transfer_nb_options = dict(opts)
    return model
