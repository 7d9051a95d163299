"""Ground truth: linear probe and fine-tuning (tiny synthetic data, CPU, seconds)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset, DataLoader

from transfer_nb.training.transfer import (evaluate, fine_tune, layers_after, linear_probe,
                                  reinit_after_layer, replace_head)


def _blobs(n=200, d=10, k=3, sep=5.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * sep
    y = rng.integers(0, k, size=n)
    return centers[y] + rng.normal(size=(n, d)), y


# ------------------------------------------------------------------ linear probe
def test_linear_probe_separable_high_accuracy():
    Z, y = _blobs(300)
    acc = linear_probe(Z[:200], y[:200], Z[200:], y[200:])
    assert acc > 0.95


def test_linear_probe_noise_is_chance():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(600, 5))
    y = rng.integers(0, 4, size=600)
    acc = linear_probe(Z[:400], y[:400], Z[400:], y[400:])
    assert abs(acc - 0.25) < 0.12


def test_linear_probe_string_labels_torch_input_deterministic():
    Z, y = _blobs(150, k=2)
    names = np.array(["cat", "dog"])[y]
    Zt = torch.tensor(Z, dtype=torch.float32)
    a = linear_probe(Zt[:100], names[:100], Zt[100:], names[100:], seed=3)
    b = linear_probe(Z[:100], names[:100], Z[100:], names[100:], seed=3)
    assert a == pytest.approx(b, abs=1e-9)
    assert a > 0.9


@pytest.mark.parametrize("bad", [
    dict(Z_train=np.zeros((10,)), msg="2-D"),
    dict(Z_test=np.zeros((5, 3)), msg="features"),
    dict(y_train=np.zeros(9), msg="labels"),
    dict(y_train=np.zeros(10), msg="at least 2 classes"),
    dict(Z_train=np.full((10, 4), np.nan), msg="NaN"),
    dict(C=-1.0, msg="C must be"),
])
def test_linear_probe_validation(bad):
    kw = dict(Z_train=np.random.rand(10, 4), y_train=np.arange(10) % 2,
              Z_test=np.random.rand(5, 4), y_test=np.arange(5) % 2)
    msg = bad.pop("msg")
    kw.update(bad)
    with pytest.raises(ValueError, match=msg):
        linear_probe(**kw)


# ----------------------------------------------------------------- fine-tuning
class TinyNet(nn.Module):
    def __init__(self, n_out=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, n_out)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def _image_task(n=96, seed=0):
    """Class 0: bright red images, class 1: bright blue images (+ noise)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 3, 8, 8, generator=g) * 0.3
    x[y == 0, 0] += 0.7
    x[y == 1, 2] += 0.7
    return TensorDataset(x, y)


def test_fine_tune_learns_easy_task_and_is_deterministic():
    torch.manual_seed(0)
    model = TinyNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, test = _image_task(96, 0), _image_task(64, 1)
    r1 = fine_tune(model, train, test, epochs=4, lr=0.05, batch_size=16, seed=0, progress=False)
    r2 = fine_tune(model, DataLoader(train, batch_size=7), test, epochs=4, lr=0.05,
                   batch_size=16, seed=0, progress=False)
    assert r1["accuracy"] > 0.8  # chance is 0.5
    assert r1["accuracy"] == r2["accuracy"]
    assert r1["train_loss"] == pytest.approx(r2["train_loss"])
    assert len(r1["train_loss"]) == 4 and r1["num_classes"] == 2 and r1["head"] == "fc"
    # the caller's model is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_fine_tune_timm_reset_classifier():
    timm = pytest.importorskip("timm")
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=5)
    train, test = _image_task(8, 0), _image_task(8, 1)
    train = TensorDataset(torch.nn.functional.interpolate(train.tensors[0], size=32), train.tensors[1])
    test = TensorDataset(torch.nn.functional.interpolate(test.tensors[0], size=32), test.tensors[1])
    r = fine_tune(model, train, test, epochs=1, lr=0.01, batch_size=8, progress=False,
                  copy_model=False)
    assert r["head"] == "classifier" and r["num_classes"] == 2 and r["steps"] == 1
    assert model.classifier.out_features == 2
    # the reported accuracy is the returned model's on the test set
    assert r["accuracy"] == evaluate(r["model"], test)


def test_reinit_after_changes_only_later_layers():
    torch.manual_seed(0)
    model = TinyNet()
    assert layers_after(model, "bn1") == ["conv2", "fc"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    names = reinit_after_layer(model, "bn1")
    assert names == ["conv2", "fc"]
    after = model.state_dict()
    for k in ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"]:
        assert torch.equal(before[k], after[k]), k
    for k in ["conv2.weight", "fc.weight"]:
        assert not torch.equal(before[k], after[k]), k


def test_fine_tune_reinit_after_reports_layers():
    model = TinyNet()
    r = fine_tune(model, _image_task(32), _image_task(16, 1), epochs=1, batch_size=16,
                  reinit_after="conv1", progress=False)
    assert r["reinitialized"] == ["bn1", "conv2"]  # the head is new anyway


def test_replace_head_last_linear():
    model = TinyNet(n_out=10)
    name = replace_head(model, 4)
    assert name == "fc" and model.fc.out_features == 4


@pytest.mark.parametrize("kw,msg", [
    (dict(epochs=0), "epochs"),
    (dict(lr=-1.0), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(reinit_after="nope"), "no module named"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(head="conv1"), "expected nn.Linear"),
])
def test_fine_tune_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        fine_tune(TinyNet(), _image_task(8), _image_task(8), progress=False, **kw)


def test_fine_tune_rejects_bad_inputs():
    with pytest.raises(ValueError, match="nn.Module"):
        fine_tune("resnet", _image_task(8), _image_task(8), progress=False)
    one_class = TensorDataset(torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        fine_tune(TinyNet(), one_class, _image_task(8), progress=False)
    with pytest.raises(ValueError, match="Dataset"):
        fine_tune(TinyNet(), 42, _image_task(8), progress=False)


def test_freeze_bn_stats_keeps_pretrained_running_stats():
    torch.manual_seed(0)
    model = TinyNet()
    model.bn1.running_mean.fill_(0.5)
    model.bn1.running_var.fill_(0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = fine_tune(model, _image_task(96), _image_task(64, 1), epochs=4, lr=0.05, batch_size=16,
                  progress=False, freeze_bn_stats=True, copy_model=False)
    for k in ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]:
        assert torch.equal(model.state_dict()[k], before[k]), k
    assert not torch.equal(model.bn1.weight, before["bn1.weight"])  # affine still trained
    assert r["accuracy"] > 0.8  # chance is 0.5
    other = TinyNet()
    fine_tune(other, _image_task(32), _image_task(16, 1), epochs=1, batch_size=16,
              progress=False, freeze_bn_stats=False, copy_model=False)
    assert int(other.bn1.num_batches_tracked) == 2  # two batches updated the statistics


def test_freeze_bn_stats_leaves_reinitialized_bn_training():
    model = TinyNet()
    r = fine_tune(model, _image_task(32), _image_task(16, 1), epochs=1, batch_size=16,
                  progress=False, freeze_bn_stats=True, reinit_after="conv1", copy_model=False)
    assert r["reinitialized"] == ["bn1", "conv2"]
    assert int(model.bn1.num_batches_tracked) == 2


def test_fine_tune_reports_steps_and_restores_global_rng():
    model = TinyNet()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    r = fine_tune(model, _image_task(40), _image_task(16, 1), epochs=3, batch_size=16,
                  progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert r["steps"] == 3 * 3 and len(r["train_loss"]) == 3
    assert r["train_accuracy"] * 40 == pytest.approx(round(r["train_accuracy"] * 40))


class _Pick(nn.Module):
    """Logits = the first two channels of the top-left pixel."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x[:, :2, 0, 0]


def test_evaluate_known_accuracy_label_map_and_normalize():
    x = torch.zeros(4, 3, 2, 2)
    x[[0, 2], 0] = 1.0
    x[[1, 3], 1] = 1.0  # predictions 0, 1, 0, 1
    y = torch.tensor([0, 1, 1, 1])
    data = TensorDataset(x, y)
    model = _Pick()
    model.train()
    assert evaluate(model, data) == 0.75
    assert model.training  # the caller's mode is restored
    assert evaluate(model, data, label_map=lambda t: 1 - t) == 0.25
    assert evaluate(model, DataLoader(data, batch_size=3), normalize="lite", batch_size=2) == 0.75


def test_lp_ft_head_starts_as_the_logistic_regression_probe():
    """head_init='probe' (LP-FT): the new head's logits equal a logistic regression fitted on
    the frozen head inputs, before any fine-tuning step."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from torch import nn
    from torch.utils.data import TensorDataset

    from transfer_nb.training.transfer import _init_head_from_probe, _label_map
    torch.manual_seed(0)
    X = torch.randn(60, 5) + 3
    y = torch.arange(60) % 3
    net = nn.Sequential(nn.Identity(), nn.Linear(5, 3))
    _init_head_from_probe(net, "1", TensorDataset(X, y), _label_map(np.arange(3)),
                          lambda x: x, 1.0, torch.device("cpu"))
    clf = LogisticRegression(max_iter=2000).fit(X.double().numpy(), y.numpy())
    np.testing.assert_allclose(net(X).detach().double().numpy(),
                               clf.decision_function(X.double().numpy()), atol=1e-4)
    with pytest.raises(ValueError, match="head_init must be 'random' or 'probe'"):
        from transfer_nb.training.transfer import fine_tune
        fine_tune(nn.Sequential(nn.Flatten(), nn.Linear(5, 3)), TensorDataset(X, y),
                  TensorDataset(X, y), epochs=1, head_init="lp", progress=False)
