"""Tests for transfer_nb.features: shapes, agreement with a manual forward, streaming,
data types, caching and error handling.  Models are built without weights (offline)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from transfer_nb.features import FeatureExtractionError, extract_features, pool_features
from transfer_nb.models.layers import declare_feature_layers, feature_layers, list_layers



# ------------------------------------------------------------------ models / data
class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
            nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.pool(self.blocks(x)).flatten(1))


class CountingCNN(TinyCNN):
    """TinyCNN that counts its forward calls (to see whether the cache ran the model).

    It declares its layers, as zoo models do, so that ``layers=None`` does not trace
    it with an extra forward pass.
    """

    def __init__(self):
        super().__init__()
        self.calls = 0
        declare_feature_layers(self, ["blocks.0", "blocks.1", "pool"], input_size=16)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x)


class Tokens(nn.Module):
    """A transformer-like model: (B, 3, H, W) -> (B, N, C) tokens."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.blocks = nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, C)
        return self.head(self.blocks(t).mean(1))


class ItemDataset(Dataset):
    """A plain map-style dataset of (image, label) pairs without .spec."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i % 3


class StreamDataset(IterableDataset):
    def __init__(self, x):
        self.x = x

    def __iter__(self):
        for i in range(len(self.x)):
            yield self.x[i], 0


def _images(n=11, size=16, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TinyCNN().eval()


@pytest.fixture(scope="module")
def resnet18():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def lite0():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("efficientnet_lite0", pretrained=False).eval()


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# -------------------------------------------------------------------------- layers
def test_list_and_default_layers(tiny):
    names = list_layers(tiny)
    assert names[:2] == ["blocks", "blocks.0"]
    assert names[-2:] == ["penultimate", "output"]
    # blocks.2 averaged is exactly the pool output: only "pool" is kept
    assert feature_layers(tiny) == ["blocks.0", "blocks.1", "pool"]


def test_default_layers_declared(tiny):
    model = TinyCNN()
    declare_feature_layers(model, ["blocks.1", "pool"], input_size=16)
    assert feature_layers(model) == ["blocks.1", "pool"]
    assert model.transfer_nb_feature_info == [
        {"name": "blocks.1", "channels": 6, "reduction": 2},
        {"name": "pool", "channels": 8, "reduction": 64}]  # measured at 64 px: 1x1 map
    assert list(extract_features(model, _images(3), progress=False)) == ["blocks.1", "pool"]
    assert list(extract_features(model, _images(3), layers="default",
                                 progress=False)) == ["blocks.1", "pool"]


# -------------------------------------------------------------------------- shapes
def test_shapes_tiny_every_default_layer(tiny):
    feats = extract_features(tiny, _images(5), progress=False)
    assert {k: v.shape for k, v in feats.items()} == {
        "blocks.0": (5, 4), "blocks.1": (5, 6), "pool": (5, 8)}
    assert all(v.dtype == np.float32 for v in feats.values())


def test_shapes_efficientnet_lite0(lite0):
    feats = extract_features(lite0, _images(3, 32), progress=False)
    assert list(feats) == feature_layers(lite0)
    assert list(feats) == [f"blocks.{i}" for i in range(7)] + ["global_pool"]
    dims = [16, 24, 40, 80, 112, 192, 320, 1280]
    assert [v.shape for v in feats.values()] == [(3, d) for d in dims]


def test_shapes_resnet18(resnet18):
    feats = extract_features(resnet18, _images(3, 32), progress=False)
    assert list(feats) == ["layer1", "layer2", "layer3", "avgpool"]
    assert [v.shape[1] for v in feats.values()] == [64, 128, 256, 512]


# ---------------------------------------------------------- agreement with manual
def test_equals_manual_forward_tiny(tiny):
    x = _images(6)
    feats = extract_features(tiny, x, layers=["blocks.1", "penultimate", "output"],
                             progress=False, device="cpu")
    with torch.no_grad():
        h1 = tiny.blocks[1](tiny.blocks[0](x))
        h2 = tiny.blocks[2](h1)
        pen = tiny.pool(h2).flatten(1)
        logits = tiny.head(pen)
    np.testing.assert_allclose(feats["blocks.1"], h1.mean((2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(feats["penultimate"], pen.numpy(), atol=1e-6)
    np.testing.assert_allclose(feats["output"], logits.numpy(), atol=1e-6)


def test_equals_manual_forward_resnet(resnet18):
    x = _images(4, 32)
    feats = extract_features(resnet18, x, layers=["layer2", "penultimate"], pool="max",
                             progress=False, device="cpu")
    r = resnet18
    with torch.no_grad():
        h = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        l2 = r.layer2(r.layer1(h))
        pen = r.avgpool(r.layer4(r.layer3(l2))).flatten(1)
    np.testing.assert_allclose(feats["layer2"], l2.amax((2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(feats["penultimate"], pen.numpy(), atol=1e-5)


def test_batch_size_independence(lite0):
    x = _images(7, 32, seed=1)
    # on the CPU: cuDNN picks algorithms per batch shape, so on CUDA (TF32) the batch
    # size would change results beyond these tolerances
    one = extract_features(lite0, x, batch_size=1, progress=False, device="cpu")
    seven = extract_features(lite0, x, batch_size=7, progress=False, device="cpu")
    three = extract_features(lite0, x, batch_size=3, progress=False, stop_early=False,
                             device="cpu")
    for name in one:
        np.testing.assert_allclose(one[name], seven[name], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(one[name], three[name], atol=1e-5, rtol=1e-5)


def test_stop_early_gives_same_result_and_skips_head(tiny):
    model = CountingCNN().eval()
    x = _images(9)
    calls = []
    handle = model.head.register_forward_hook(lambda *a: calls.append(1))
    try:
        early = extract_features(model, x, layers=["blocks.1"], batch_size=3, progress=False,
                                 device="cpu")  # exact equality: one deterministic device
        assert len(calls) == 1  # only the first batch runs the whole network
        full = extract_features(model, x, layers=["blocks.1"], batch_size=3,
                                progress=False, stop_early=False, device="cpu")
    finally:
        handle.remove()
    np.testing.assert_array_equal(early["blocks.1"], full["blocks.1"])


# ------------------------------------------------------------------------- pooling
def test_pool_variants(tiny):
    x = _images(4)
    feats = extract_features(tiny, x, layers=["blocks.0", "blocks.2"],
                             pool={"blocks.0": "head2toe"}, head2toe_target=64,
                             progress=False, device="cpu")  # vs the CPU reference below
    # blocks.0: 4 channels < 64 -> 16 positions = 4x4 grid -> 64 features
    assert feats["blocks.0"].shape == (4, 64)
    assert feats["blocks.2"].shape == (4, 8)  # not in the dict -> avg
    with torch.no_grad():
        h0 = tiny.blocks[0](x)
    ref = torch.nn.functional.adaptive_avg_pool2d(h0, 4).flatten(1).numpy()
    np.testing.assert_allclose(feats["blocks.0"], ref, atol=1e-6)


def test_pool_features_rules():
    x = torch.randn(2, 16, 8, 8)
    assert pool_features(x, "head2toe", head2toe_target=16).shape == (2, 16)  # C >= target
    assert pool_features(x, "head2toe", head2toe_target=64).shape == (2, 64)  # 2x2 grid
    assert pool_features(x, "head2toe", head2toe_target=10**6).shape == (2, 16 * 64)  # capped
    assert pool_features(x, "flatten").shape == (2, 1024)
    torch.testing.assert_close(pool_features(x, "max"), x.amax((2, 3)))
    tokens = torch.randn(2, 5, 4)
    torch.testing.assert_close(pool_features(tokens, "avg"), tokens.mean(1))
    assert pool_features(tokens, "head2toe", head2toe_target=12).shape == (2, 12)
    vec = torch.randn(2, 7)
    assert pool_features(vec, "head2toe") is not None and pool_features(vec).shape == (2, 7)
    with pytest.raises(ValueError, match="unknown pool"):
        pool_features(x, "median")


def test_token_outputs_are_averaged_over_tokens():
    torch.manual_seed(0)
    model = Tokens().eval()
    x = _images(3)
    feats = extract_features(model, x, layers=["blocks", "penultimate"], progress=False,
                             device="cpu")  # vs the CPU reference below
    with torch.no_grad():
        t = model.blocks(model.embed(x).flatten(2).transpose(1, 2))
    np.testing.assert_allclose(feats["blocks"], t.mean(1).numpy(), atol=1e-6)
    np.testing.assert_allclose(feats["penultimate"], t.mean(1).numpy(), atol=1e-6)


# ---------------------------------------------------------------------- data kinds
def test_data_kinds_agree(tiny):
    x = _images(10)
    # on the CPU: the variants batch differently, and on CUDA (TF32) batch shapes change
    # results beyond atol=1e-6
    ref = extract_features(tiny, x, batch_size=4, progress=False, device="cpu")
    y = torch.arange(10)
    variants = [
        TensorDataset(x, y),
        DataLoader(TensorDataset(x, y), batch_size=3),
        ItemDataset(x),
        DataLoader(StreamDataset(x), batch_size=4),  # unknown length: buffers grow
        x.numpy(),
    ]
    for data in variants:
        got = extract_features(tiny, data, batch_size=4, progress=True, device="cpu")
        assert list(got) == list(ref)
        for name in ref:
            np.testing.assert_allclose(got[name], ref[name], atol=1e-6)


def test_layer_order_follows_request(tiny):
    feats = extract_features(tiny, _images(2), layers=["penultimate", "blocks.0"],
                             progress=False)
    assert list(feats) == ["penultimate", "blocks.0"]


# ---------------------------------------------------------------------------- cache
def _calls(model, data, cache, **kw):
    before = model.calls
    feats = extract_features(model, data, cache=cache, progress=False, **kw)
    return feats, model.calls - before


def test_cache_hit_and_invalidation(tmp_path):
    torch.manual_seed(0)
    model = CountingCNN().eval()
    x = _images(6)
    first, n1 = _calls(model, x, tmp_path, batch_size=4)
    assert n1 == 2 and len(list(tmp_path.glob("*.npz"))) == 1
    second, n2 = _calls(model, x, tmp_path, batch_size=2)  # batch size is not in the key
    assert n2 == 0
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert list(second) == list(first)

    # every input that changes the result changes the key
    assert _calls(model, x + 1, tmp_path)[1] > 0                       # data
    assert _calls(model, x, tmp_path, layers=["blocks.0"])[1] > 0      # layers
    assert _calls(model, x, tmp_path, pool="max")[1] > 0               # pool
    assert _calls(model, x, tmp_path, pool="head2toe", head2toe_target=32)[1] > 0
    assert _calls(model, x, tmp_path, pool="head2toe", head2toe_target=64)[1] > 0
    with torch.no_grad():
        model.blocks[0][0].weight.add_(0.1)                              # weights
    third, n3 = _calls(model, x, tmp_path)
    assert n3 > 0 and not np.allclose(third["blocks.0"], first["blocks.0"])
    assert _calls(model, x, tmp_path)[1] == 0  # and that new result is cached too


def test_cache_true_uses_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = CountingCNN().eval()
    data = TensorDataset(_images(4), torch.zeros(4))
    assert _calls(model, data, True)[1] == 1
    assert _calls(model, data, True)[1] == 0
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1
    # a plain Dataset without .spec is keyed on its items' content
    assert _calls(model, ItemDataset(_images(4)), True)[1] == 1
    assert _calls(model, ItemDataset(_images(4)), True)[1] == 0
    assert _calls(model, ItemDataset(_images(4, seed=5)), True)[1] == 1


def test_cache_uses_dataset_spec(tmp_path):
    class Spec(ItemDataset):
        def __init__(self, x, spec):
            super().__init__(x)
            self.spec = spec

    torch.manual_seed(0)
    model = CountingCNN().eval()
    x = _images(4)
    assert _calls(model, Spec(x, {"name": "a"}), tmp_path)[1] == 1
    assert _calls(model, Spec(x, {"name": "a"}), tmp_path)[1] == 0
    assert _calls(model, Spec(x, {"name": "b"}), tmp_path)[1] == 1


def test_corrupted_cache_file_is_recomputed(tmp_path):
    torch.manual_seed(0)
    model = CountingCNN().eval()
    x = _images(5)
    first, _ = _calls(model, x, tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:50])  # truncated
    again, n = _calls(model, x, tmp_path)
    assert n == 1
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert _calls(model, x, tmp_path)[1] == 0  # rewritten intact


def test_cache_refuses_shuffled_loader(tmp_path, tiny):
    loader = DataLoader(TensorDataset(_images(4)), batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=False"):
        extract_features(tiny, loader, cache=tmp_path, progress=False)


# -------------------------------------------------------------------- bad inputs
def test_unknown_layer_lists_valid_names(tiny):
    with pytest.raises(ValueError) as info:
        extract_features(tiny, _images(2), layers=["blocks.3", "blocks.0"], progress=False)
    msg = str(info.value)
    assert "blocks.3" in msg and "did you mean" in msg
    assert "blocks.2" in msg and "penultimate" in msg and "list_layers" in msg


def test_unknown_layer_long_list_is_truncated(resnet18):
    with pytest.raises(ValueError, match=r"Valid names \(\d+\).*\.\.\.") as info:
        extract_features(resnet18, _images(2), layers="layer9", progress=False)
    assert "'layer4'" in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": []}, "empty"),
    ({"pool": "median"}, "unknown pool"),
    ({"pool": {"nope": "avg"}}, "not extracted"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_arguments(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        extract_features(tiny, _images(2), progress=False, **kwargs)


@pytest.mark.parametrize("data", [torch.empty(0, 3, 8, 8), TensorDataset(torch.empty(0, 3, 8, 8)),
                                  ItemDataset(torch.empty(0, 3, 8, 8))])
def test_empty_data(tiny, data):
    with pytest.raises(ValueError, match="empty"):
        extract_features(tiny, data, progress=False)


def test_non_image_inputs(tiny):
    with pytest.raises(ValueError, match="floating point"):
        extract_features(tiny, torch.zeros(2, 3, 8, 8, dtype=torch.uint8), progress=False)
    with pytest.raises(ValueError, match="image tensors"):
        extract_features(tiny, ItemDataset(["a", "b"]), progress=False)
    with pytest.raises(FeatureExtractionError, match=r"batch 0 .*before any requested layer"):
        extract_features(tiny, torch.randn(2, 5, 8, 8), progress=False)  # 5 channels
    assert _no_hooks(tiny)


def test_reused_module_is_an_error(resnet18):
    with pytest.raises(FeatureExtractionError, match="more than once"):
        extract_features(resnet18, _images(2, 32), layers=["layer1.0.relu"], progress=False)
    assert _no_hooks(resnet18)


def test_failure_midway_restores_model():
    class Flaky(TinyCNN):
        def __init__(self):
            super().__init__()
            self.n = 0

        def forward(self, x):
            self.n += 1
            if self.n == 2:  # second batch: after the hooks have been registered and run
                self.blocks[0](x)
                raise RuntimeError("boom")
            return super().forward(x)

    torch.manual_seed(0)
    model = Flaky()
    model.train()
    model.blocks[1].eval()  # mixed training flags must come back exactly
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FeatureExtractionError, match="batch 1 .*boom") as info:
        extract_features(model, _images(6), layers=["blocks.0", "pool"], batch_size=3,
                         progress=False)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value.__cause__, RuntimeError)
    assert _no_hooks(model)
    assert [m.training for m in model.modules()] == flags
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_training_flag_and_device_restored(tiny):
    model = TinyCNN().train()
    extract_features(model, _images(2), device="cpu", progress=False)
    assert model.training and all(m.training for m in model.modules())
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert _no_hooks(model)
