"""The model zoo: real offline ImageNet weights, torchvision/timm builds, offline errors,
small source models and the cached ``train_source``."""
import os
import socket
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transfer_nb import models
from transfer_nb._threads import torch_threads
from transfer_nb.models import (WeightsUnavailableError, list_models, load_model, model_info,
                                train_source)
from transfer_nb.models import efficientnet_lite, source, zoo
from transfer_nb.models.layers import feature_layers

# The few ImageNet classes the photo checks need (the full list ships nowhere offline).
CAT_CLASSES = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat",
               285: "Egyptian cat"}
COFFEE_CLASSES = {967: "espresso", 968: "cup", 504: "coffee mug"}


def _photo(image: np.ndarray, size: int, normalize: str) -> torch.Tensor:
    """Resize the shorter side to ``size``, centre-crop, scale to [0, 1], normalise."""
    from transfer_nb.preprocessing import normalize_images
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear",
                      antialias=True, align_corners=False)
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return normalize_images(x[..., top:top + size, left:left + size], normalize)


def _top5(model, image) -> list[int]:
    x = _photo(image, model.transfer_nb_input_size, model.transfer_nb_normalize)
    with torch.no_grad():
        return model(x).topk(5).indices[0].tolist()


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_real_imagenet_weights(name):
    import skimage.data
    model = load_model(name)
    assert not model.training
    assert model.transfer_nb_normalize == "lite"
    assert model.transfer_nb_input_size == {"efficientnet_lite0": 224, "efficientnet_lite1": 240,
                                            "efficientnet_lite2": 260}[name]
    cat = _top5(model, skimage.data.chelsea())
    coffee = _top5(model, skimage.data.coffee())
    assert cat[0] in CAT_CLASSES, cat           # top-1 is a cat for all three variants
    assert coffee[0] == 967, coffee              # ... and espresso
    assert set(coffee) & set(COFFEE_CLASSES), coffee


def test_efficientnet_lite_layers_and_new_head():
    model = load_model("efficientnet_lite0", num_classes=7)
    names = dict(model.named_modules())
    assert feature_layers(model) == ["bn1"] + [f"blocks.{i}" for i in range(7)] + ["global_pool"]
    assert all(layer in names for layer in feature_layers(model))
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    # the backbone still carries the ImageNet weights
    ref = torch.load(efficientnet_lite.lite_weights_path("efficientnet_lite0"), weights_only=True)
    assert torch.equal(model.conv_stem.weight, ref["_conv_stem.weight"])


def test_map_by_order_rejects_mismatch():
    import timm
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(efficientnet_lite.lite_weights_path("efficientnet_lite0"), weights_only=True)
    items = list(state.items())
    with pytest.raises(ValueError, match="295 tensors in the file, 296 in the model"):
        efficientnet_lite.map_state_dict_by_order(dict(items[:-1]), target)
    swapped = dict(items)
    swapped["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(ValueError, match="tensor #0 '_conv_stem.weight'"):
        efficientnet_lite.map_state_dict_by_order(swapped, target)


# random init + one 64 px forward: under a second each on one core
@pytest.mark.parametrize("name", list_models("torchvision") + list_models("timm"))
def test_zoo_architecture_builds_and_runs(name):
    model = load_model(name, pretrained=False)
    assert not model.training
    assert model.transfer_nb_name == name
    assert model.transfer_nb_normalize in {"imagenet", "lite"}
    names = dict(model.named_modules())
    layers = feature_layers(model)
    assert len(layers) >= 3 and all(layer in names for layer in layers), layers
    size = 224 if name.startswith("timm:vit") else 64
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    assert out.shape == (1, 1000)


def test_resnet_layers_and_new_head():
    model = load_model("resnet18", pretrained=False, num_classes=5)
    # layer4 averaged is exactly avgpool's output: only avgpool is declared
    assert feature_layers(model) == ["layer1", "layer2", "layer3", "avgpool"]
    assert model.transfer_nb_input_size == 224
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    timm_model = load_model("timm:resnet18", pretrained=False, num_classes=4)
    assert feature_layers(timm_model) == ["layer1", "layer2", "layer3", "global_pool"]
    assert timm_model(torch.zeros(1, 3, 32, 32)).shape == (1, 4)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """No cached torchvision / Hugging Face weights, whatever this machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    try:
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    except ImportError:
        pass


@pytest.fixture
def connections(monkeypatch):
    """Every network connection attempted (each refused): fast = none at all, whatever
    the machine's load (timm alone retries ~50 s when it is let near the network)."""
    attempts = []

    def refuse(what):
        def refused(*args, **kwargs):
            attempts.append((what, args[:2]))
            raise OSError(f"test: {what}{args[:2]!r} refused")
        return refused

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))  # name look-ups too
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    return attempts


@pytest.mark.parametrize("name", ["resnet18", "timm:resnet18"])
def test_offline_pretrained_request_fails_fast_and_clearly(name, monkeypatch, empty_hub,
                                                           connections):
    monkeypatch.setenv("TRANSFER_NB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        load_model(name)
    assert connections == []  # decided without any network attempt (no retries to wait out)
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert repr(name) in msg and "could not be fetched" in msg
    assert "efficientnet_lite0" in msg and "pretrained=False" in msg and "train_source" in msg
    # random initialisation stays available offline
    assert load_model(name, pretrained=False) is not None


def test_torchvision_weights_in_hub_cache_load_offline(monkeypatch, empty_hub):
    """Weights already downloaded (here: a file the test writes) load without network."""
    monkeypatch.setenv("TRANSFER_NB_OFFLINE", "1")
    donor = load_model("mobilenet_v3_small", pretrained=False)
    with torch.no_grad():
        donor.classifier[3].bias.fill_(0.25)  # recognisable value
    path = zoo.torchvision_weights_file("mobilenet_v3_small")
    os.makedirs(os.path.dirname(path))
    torch.save(donor.state_dict(), path)
    assert model_info("mobilenet_v3_small")["offline"]
    model = load_model("mobilenet_v3_small")
    assert torch.equal(model.classifier[3].bias, torch.full((1000,), 0.25))
    assert feature_layers(model)[-1] == "classifier.1"  # pooled -> Linear -> Hardswish


def test_unreachable_host_or_failed_download_gives_clear_error(monkeypatch, empty_hub):
    monkeypatch.delenv("TRANSFER_NB_OFFLINE", raising=False)
    monkeypatch.setattr(zoo, "_host_reachable", lambda host, *a, **k: False)
    with pytest.raises(WeightsUnavailableError, match="download.pytorch.org is unreachable"):
        load_model("mobilenet_v3_small")

    # reachable host but the download itself fails (URLError): still the clear error
    from torchvision.models._api import WeightsEnum

    def refuse(self, *args, **kwargs):
        raise urllib.error.URLError("simulated: name or service not known")

    monkeypatch.setattr(zoo, "_host_reachable", lambda host, *a, **k: True)
    monkeypatch.setattr(WeightsEnum, "get_state_dict", refuse)
    with pytest.raises(WeightsUnavailableError, match="download failed: .*simulated"):
        load_model("mobilenet_v3_small")


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet1234'.*efficientnet_lite0"):
        load_model("resnet1234")
    with pytest.raises(ValueError, match="unknown model.*small_cnn"):
        model_info("nope")
    with pytest.raises(ValueError, match="unknown timm model"):
        load_model("timm:definitely_not_a_model", pretrained=False)
    with pytest.raises(ValueError, match="unknown torchvision model"):
        load_model("torchvision:nope", pretrained=False)
    with pytest.raises(ValueError, match="no pretrained weights.*train_source"):
        load_model("small_cnn")
    with pytest.raises(ValueError, match="num_classes"):
        load_model("small_cnn", pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="unknown family"):
        list_models("huggingface")
    with pytest.raises(ValueError, match="unknown arch"):
        train_source("resnet18", _toy_dataset())


def test_list_models_and_info():
    names = list_models()
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "resnet18",
            "small_cnn", "small_resnet"} <= set(names)
    assert any(n.startswith("timm:") for n in names)
    info = model_info("efficientnet_lite2")
    assert info["offline"] and info["normalize"] == "lite" and info["input_size"] == 260
    assert model_info("small_cnn")["normalize"] == "none"
    assert model_info("resnet50")["normalize"] == "imagenet"
    for name in names:
        assert model_info(name)["description"]
    assert model_info("torchvision:alexnet")["family"] == "torchvision"


@pytest.mark.parametrize("name", ["small_cnn", "small_resnet"])
def test_small_models(name):
    model = load_model(name, pretrained=False, num_classes=4, width=8)
    n_params = sum(p.numel() for p in model.parameters())
    default = load_model(name, pretrained=False)
    assert 50_000 < sum(p.numel() for p in default.parameters()) < 1_000_000
    assert n_params < sum(p.numel() for p in default.parameters())
    assert model.transfer_nb_normalize == "none" and model.transfer_nb_input_size == 32
    assert feature_layers(model) == ["stages.0", "stages.1", "pool"]
    feats = {}
    for layer in feature_layers(model):
        model.get_submodule(layer).register_forward_hook(
            lambda m, i, o, layer=layer: feats.__setitem__(layer, o))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert feats["pool"].shape == (2, 32)  # width 8 * 2**2, the penultimate features
    with pytest.raises(ValueError, match="does not take option"):
        load_model(name, pretrained=False, heads=3)


# ----------------------------------------------------------------------------- train_source

class _ToyDataset(torch.utils.data.TensorDataset):
    """Stands in for transfer_nb.data's ImageDataset: .spec, .classes, .targets."""

    def __init__(self, images, labels, spec):
        super().__init__(images, labels)
        self.spec = spec
        self.classes = ["dark", "bright"]
        self.targets = labels.numpy()

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x, int(y)


def _toy_dataset(seed=0, n=64, size=16):
    """Two separable classes: dark vs bright noisy images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.3 * torch.rand(n, 3, size, size, generator=g) + 0.6 * labels.view(-1, 1, 1, 1).float()
    return _ToyDataset(images, labels, spec={"name": "toy", "seed": seed, "n": n, "size": size})


_FAST = dict(epochs=3, lr=0.05, batch_size=8, width=4, progress=False)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest and immune to a busy machine."""
    with torch_threads(1):
        yield


@pytest.fixture
def count_training(monkeypatch):
    calls = []
    real = source._train

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(source, "_train", counting)
    return calls


def test_train_source_learns_and_caches(count_training):
    data = _toy_dataset()
    model = train_source("small_cnn", data, **_FAST)
    assert len(count_training) == 1
    assert not model.training
    assert model.transfer_nb_source_accuracy > 0.9
    assert feature_layers(model)[-1] == "pool" and model.transfer_nb_normalize == "none"
    assert model.transfer_nb_input_size == 16  # the toy images' resolution
    files = list((models.source._cache.cache_dir("models")).glob("*.pt"))
    assert len(files) == 1 and not list(files[0].parent.glob("*.tmp"))

    again = train_source("small_cnn", data, **_FAST)
    assert len(count_training) == 1  # cache hit: no training
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    assert again.transfer_nb_source_accuracy == model.transfer_nb_source_accuracy

    # cache=False trains again and, given the seed, reproduces the weights exactly
    fresh = train_source("small_cnn", data, cache=False, **_FAST)
    assert len(count_training) == 2
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_train_source_cache_invalidated_by_any_input(count_training):
    base = {**_FAST, "epochs": 1}
    train_source("small_cnn", _toy_dataset(), **base)
    assert len(count_training) == 1
    changes = [{"epochs": 2}, {"lr": 0.01}, {"batch_size": 16}, {"seed": 1}, {"width": 5},
               {"depth": 2}, {"weight_decay": 0.0}, {"momentum": 0.0}, {"augment": True},
               {"recalibrate_bn": False},
               {"arch": "small_resnet"}, {"dataset_seed": 1}]
    for i, change in enumerate(changes, start=2):
        kw = {**base, **change}
        arch = kw.pop("arch", "small_cnn")
        data = _toy_dataset(seed=kw.pop("dataset_seed", 0))
        train_source(arch, data, **kw)
        assert len(count_training) == i, change
    # the unchanged inputs still hit the cache
    train_source("small_cnn", _toy_dataset(), **base)
    assert len(count_training) == len(changes) + 1


def test_train_source_recovers_from_corrupt_cache(count_training):
    data = _toy_dataset()
    model = train_source("small_cnn", data, **_FAST)
    (path,) = models.source._cache.cache_dir("models").glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])  # truncated by a crash or a full disk
    again = train_source("small_cnn", data, **_FAST)
    assert len(count_training) == 2
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    torch.load(path, weights_only=True)  # rewritten intact


def test_train_source_perturb_hook_and_validation(count_training):
    data = _toy_dataset()
    seen = []

    def noise(model, x, y):
        seen.append(x.shape)
        return (x + 0.01).clamp(0, 1)

    noise.cache_key = {"attack": "shift", "eps": 0.01}
    model = train_source("small_cnn", data, adversarial_eps=0.01, perturb=noise, **_FAST)
    assert seen and model.transfer_nb_train_config["adversarial_eps"] == 0.01
    plain = train_source("small_cnn", data, **_FAST)
    assert len(count_training) == 2  # eps / perturb are part of the key
    assert plain.transfer_nb_cache_key != model.transfer_nb_cache_key
    with pytest.raises(ValueError, match="needs perturb"):
        train_source("small_cnn", data, adversarial_eps=0.5, **_FAST)
    with pytest.raises(ValueError, match="epochs"):
        train_source("small_cnn", data, **{**_FAST, "epochs": -1})
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 'x'"):
        train_source("small_cnn", data, **{**_FAST, "lr": "x"})
    with pytest.raises(ValueError, match="CUDA is not available"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.cuda, "is_available", lambda: False)
            train_source("small_cnn", data, **{**_FAST, "device": "cuda:3"})


def test_train_source_restores_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_source("small_resnet", _toy_dataset(n=16), epochs=1, batch_size=8, width=4,
                 progress=False, cache=False)
    assert torch.equal(torch.rand(3), expected)


def test_cache_dir_follows_env(tmp_path, monkeypatch, count_training):
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(tmp_path / "elsewhere"))
    train_source("small_cnn", _toy_dataset(n=16), **{**_FAST, "epochs": 1})
    assert list((tmp_path / "elsewhere" / "models").glob("*.pt"))
    assert os.environ["TRANSFER_NB_CACHE"].endswith("elsewhere")
