"""transfer_nb.models.layers and .heads: the one layer resolver, classifier finder,
tracing fallback and head replacement.  Models are built without downloads."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from transfer_nb.features import extract_features
from transfer_nb.models import load_model
from transfer_nb.models.heads import replace_head
from transfer_nb.models.layers import (declare_feature_layers, feature_info, feature_layers,
                                       find_classifier, hook_points, list_layers,
                                       resolve_layers)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.pool(self.blocks(x)).flatten(1))


class Mlp(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class HeadlessMlpNet(nn.Module):
    """Like a timm ViT built with num_classes=0, without timm's get_classifier."""

    def __init__(self, head: nn.Module | None = None):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 8, stride=8)
        self.blocks = nn.Sequential(Mlp(), Mlp())
        self.norm = nn.LayerNorm(8)
        self.head = head if head is not None else nn.Identity()

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(t)).mean(1))


def _images(n=6, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TinyCNN().eval()


# ------------------------------------------------------------------------- resolver
def test_resolver_request_forms(tiny):
    default = ["blocks.0", "blocks.1", "pool"]
    assert feature_layers(tiny) == default
    for request in (None, "default", "all", " default "):
        assert resolve_layers(tiny, request) == default, request
    assert resolve_layers(tiny, "blocks.1") == ["blocks.1"]
    assert resolve_layers(tiny, "blocks.1, penultimate,output") == [
        "blocks.1", "penultimate", "output"]
    assert resolve_layers(tiny, ["output", "blocks.0", "output"]) == ["output", "blocks.0"]
    assert resolve_layers(tiny, ("head",)) == ["head"]
    assert list_layers(tiny)[-2:] == ["penultimate", "output"]


def test_resolver_unknown_name_suggests_close_matches(tiny):
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['blocks.7'\].*"
                                         r"did you mean 'blocks.2', 'blocks.1', 'blocks.0'\?"):
        resolve_layers(tiny, "blocks.7")
    with pytest.raises(ValueError, match="'penultimat' -> did you mean 'penultimate'"):
        resolve_layers(tiny, ["blocks.0", "penultimat"])


@pytest.mark.parametrize("request_, match", [
    ([], "layers is empty"),
    (" , ", "layers is empty"),
    (["blocks.0", 3], r"must be strings; got \['3'\]"),
    (3, "got int"),
])
def test_resolver_bad_requests(tiny, request_, match):
    with pytest.raises(ValueError, match=match):
        resolve_layers(tiny, request_)


def test_hook_points_penultimate_and_output(tiny):
    points = hook_points(tiny, ["penultimate", "output", "pool"])
    assert points["penultimate"] == (tiny.head, True)  # the classifier's input
    assert points["output"] == (tiny, False)
    assert points["pool"] == (tiny.pool, False)
    headless = HeadlessMlpNet()
    assert hook_points(headless, ["penultimate"])["penultimate"] == (headless, False)


# ------------------------------------------------------------------ classifier finder
def test_find_classifier_skips_inner_linear_of_headless_model():
    assert find_classifier(HeadlessMlpNet()) is None  # not blocks.1.fc2
    with_head = HeadlessMlpNet(head=nn.Linear(8, 5))
    assert find_classifier(with_head) == ("head", with_head.head)


def test_find_classifier_timm_style():
    timm = pytest.importorskip("timm")
    headless = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    assert find_classifier(headless) is None
    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    assert find_classifier(model) == ("fc", model.fc)


# ----------------------------------------------------------------------- replace_head
def test_replace_head_headless_model_leaves_inner_fc_alone():
    model = HeadlessMlpNet()
    before = model.blocks[1].fc2.weight.clone()
    with pytest.raises(ValueError, match="cannot find the classifier"):
        replace_head(model, 4)
    assert model.blocks[1].fc2.out_features == 8 and torch.equal(model.blocks[1].fc2.weight, before)


def test_replace_head_torchvision_style():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    name = replace_head(model, 4, generator=torch.Generator().manual_seed(0))
    assert name == "classifier.3" and model.classifier[3].out_features == 4
    assert model(_images(2, 64)).shape == (2, 4)
    # seeded: the same generator seed gives the same head
    other = torchvision.models.mobilenet_v3_small(weights=None)
    replace_head(other, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.classifier[3].weight, other.classifier[3].weight)
    assert not model.classifier[3].bias.any()


def test_replace_head_timm_style():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False).eval()
    assert replace_head(model, 3) == "fc" and model(_images(2, 32)).shape == (2, 3)
    headless = timm.create_model("resnet18", pretrained=False, num_classes=0).eval()
    assert replace_head(headless, 2) == "fc" and headless(_images(2, 32)).shape == (2, 2)


@pytest.mark.parametrize("name", ["small_cnn", "small_resnet"])
def test_replace_head_small_models(name):
    model = load_model(name, pretrained=False, width=4)
    assert replace_head(model, 1) == "fc"  # one output: a regression head
    assert model(_images(2)).shape == (2, 1)
    with pytest.raises(ValueError, match="num_outputs must be a positive integer, got 0"):
        replace_head(model, 0)
    with pytest.raises(ValueError, match="expected nn.Linear"):
        replace_head(model, 2, head="pool")


def test_load_model_new_head_uses_replace_head():
    model = load_model("resnet18", pretrained=False, num_classes=5)
    assert find_classifier(model) == ("fc", model.fc) and model.fc.out_features == 5


# ------------------------------------------------------------------- default layers
def _assert_pairwise_distinct(feats):
    for a, b in itertools.combinations(feats, 2):
        if feats[a].shape == feats[b].shape:
            assert not np.allclose(feats[a], feats[b], rtol=1e-4, atol=1e-5), (a, b)


def test_efficientnet_lite0_default_layers_are_pairwise_distinct():
    model = load_model("efficientnet_lite0")
    assert feature_layers(model) == (["bn1"] + [f"blocks.{i}" for i in range(7)]
                                     + ["global_pool"])
    x = _images(4, 64) * 2 - 1
    feats = extract_features(model, x, progress=False, device="cpu")
    _assert_pairwise_distinct(feats)
    # why bn2 is not declared: averaged, it is global_pool
    both = extract_features(model, x, layers="bn2,global_pool", progress=False, device="cpu")
    np.testing.assert_allclose(both["bn2"], both["global_pool"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["small_cnn", "small_resnet"])
def test_small_model_default_layers_are_pairwise_distinct(name):
    torch.manual_seed(0)
    model = load_model(name, pretrained=False)
    assert feature_layers(model) == ["stages.0", "stages.1", "pool"]
    x = _images(4)
    feats = extract_features(model, x, progress=False, device="cpu")
    _assert_pairwise_distinct(feats)
    both = extract_features(model, x, layers=["stages.2", "pool"], progress=False, device="cpu")
    np.testing.assert_allclose(both["stages.2"], both["pool"], rtol=1e-5, atol=1e-6)


def test_declared_feature_info_small_cnn():
    model = load_model("small_cnn", pretrained=False)  # width 32, 3 stages
    assert feature_info(model) == [
        {"name": "stages.0", "channels": 32, "reduction": 2},
        {"name": "stages.1", "channels": 64, "reduction": 4},
        {"name": "pool", "channels": 128, "reduction": None}]
    with pytest.raises(ValueError, match="'stages.11' -> did you mean 'stages.1.1', 'stages.1'"):
        declare_feature_layers(model, ["stages.11"])


def test_resnet_same_layers_through_load_model_and_feature_layers():
    torchvision = pytest.importorskip("torchvision")
    plain = torchvision.models.resnet18(weights=None)
    zoo = load_model("resnet18", pretrained=False)
    assert feature_layers(plain) == feature_layers(zoo) == ["layer1", "layer2", "layer3",
                                                            "avgpool"]


def test_tracing_fallback_unknown_sequential():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Dropout(), nn.Linear(4, 2))
    # "1" (ReLU) averaged equals "2" (the pool); dropout / flatten / classifier are skipped
    assert feature_layers(model) == ["0", "2"]
    assert [i["channels"] for i in feature_info(model)] == [4, 4]
    headless = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert find_classifier(headless) is None and feature_layers(headless) == ["0", "2"]
    # the representation made by a functional call in forward: the virtual "penultimate"
    assert feature_layers(HeadlessMlpNet(head=nn.Linear(8, 5))) == [
        "blocks.0", "blocks.1", "penultimate"]


def test_tracing_fallback_without_a_runnable_forward():
    """A model that does not take 3-channel images: structural stages + penultimate."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    assert feature_layers(model) == ["0", "1", "penultimate"]
