"""The one training loop: fit / evaluate / predict / resolve_device (tiny CPU models)."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from transfer_nb import training
from transfer_nb._threads import torch_threads
from transfer_nb.training import evaluate, fit, predict, recalibrate_batchnorm, resolve_device


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is fastest and immune to a busy machine."""
    with torch_threads(1):
        yield


def _blobs(n=200, seed=0):
    """Two Gaussian blobs at (-2, -2) and (2, 2): linearly separable up to ~0.1% overlap."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)
    return X.astype(np.float32), y


def _linear(d_in=2, d_out=2, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 4)
        self.bn = nn.BatchNorm1d(4)
        self.fc2 = nn.Linear(4, 2)
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


# ------------------------------------------------------------------ learning
def test_fit_separable_toy_reaches_high_accuracy():
    X, y = _blobs(200, seed=0)
    Xt, yt = _blobs(200, seed=1)
    model = _linear()
    out = fit(model, (X, y), epochs=5, lr=0.1, batch_size=16, device="cpu")
    assert evaluate(model, (Xt, yt)) > 0.9
    assert out["steps"] == 5 * math.ceil(200 / 16)
    assert len(out["loss_history"]) == 5
    assert out["loss_history"][-1] < out["loss_history"][0]
    assert out["train_accuracy"] > 0.9


def test_fit_mse_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3)).astype(np.float32)
    W = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], dtype=np.float32)
    Y = X @ W + 0.01 * rng.normal(size=(256, 2)).astype(np.float32)  # noise variance 1e-4
    model = _linear(3, 2)
    before = evaluate(model, (X, Y), metric="mse")
    fit(model, (X, Y), epochs=30, lr=0.05, batch_size=32, loss="mse", device="cpu")
    mse = evaluate(model, (X, Y), metric="mse")
    assert before > 1.0
    assert mse < 1e-3
    pred = predict(model, X)
    assert pred.shape == (256, 2)
    assert mse == pytest.approx(float(np.mean((pred - Y) ** 2)), rel=1e-4)
    np.testing.assert_allclose(model.weight.detach().numpy().T, W, atol=0.01)


def test_fit_loss_callable_and_schedules_follow_the_formula():
    """Loss = mean(w * 1): gradient 1 every step, so w moves by exactly -lr * factor(s)."""
    X, y = np.ones((4, 1), np.float32), np.zeros(4, np.float32)
    lr = 0.1
    for schedule, factor_sum in [("constant", 4.0),
                                 ("cosine", sum(0.5 * (1 + math.cos(math.pi * s / 4))
                                                for s in range(4)))]:
        model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(model.weight)
        fit(model, (X, y), epochs=4, lr=lr, batch_size=4, momentum=0.0, schedule=schedule,
            loss=lambda out, t: out.mean(), device="cpu")
        assert model.weight.item() == pytest.approx(-lr * factor_sum, abs=1e-6), schedule
    assert factor_sum == pytest.approx(2.5)


def test_steps_override_epochs():
    X, y = _blobs(40)
    calls = []
    out = fit(_linear(), (X, y), epochs=100, steps=7, batch_size=16, device="cpu",
              perturb=lambda m, x, t: calls.append(len(x)) or x)
    assert out["steps"] == 7 and len(calls) == 7
    assert calls[:3] == [16, 16, 8]  # three batches per pass, the data cycled
    assert len(out["loss_history"]) == 3  # passes 1, 2 and the partial third
    assert fit(_linear(), (X, y), epochs=0, device="cpu")["steps"] == 0


# ----------------------------------------------------------------- seeding
def test_same_seed_same_weights_different_seed_different():
    X, y = _blobs(64)
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        m = copy.deepcopy(model)
        fit(m, (X, y), epochs=2, batch_size=8, seed=seed, device="cpu")
        runs[name] = _weights(m)
    assert _same(runs["a"], runs["b"])
    assert not _same(runs["a"], runs["c"])


def test_data_loader_and_dataset_give_identical_training():
    X, y = _blobs(64)
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    m1, m2 = _linear(), _linear()
    fit(m1, ds, epochs=2, batch_size=8, device="cpu")
    fit(m2, DataLoader(ds, batch_size=5), epochs=2, batch_size=8, device="cpu")
    assert _same(_weights(m1), _weights(m2))


def test_fit_and_evaluate_restore_global_rng_and_mode():
    X, y = _blobs(64)
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model.eval()
    fit(model, (X, y), epochs=1, batch_size=8, seed=0, device="cpu")
    assert not model.training  # fit leaves the mode it found
    model.train()
    evaluate(model, (X, y))
    predict(model, X)
    assert model.training  # evaluate / predict restore train mode
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- hooks
def test_bn_frozen_keeps_running_stats_but_trains_affine():
    X, y = _blobs(64)
    torch.manual_seed(0)
    model = BNNet()
    model.bn.running_mean.fill_(0.5)
    model.bn.running_var.fill_(2.0)
    before = _weights(model)
    fit(model, (X, y), epochs=2, batch_size=8, bn="frozen", device="cpu")
    after = _weights(model)
    for k in ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]:
        assert torch.equal(before[k], after[k]), k
    for k in ["bn.weight", "bn.bias", "fc1.weight", "fc2.weight"]:
        assert not torch.equal(before[k], after[k]), k
    # bn="train" (or an excluded layer) updates the statistics
    for kw in [dict(bn="train"), dict(bn="frozen", bn_exclude=["bn"])]:
        m = BNNet()
        fit(m, (X, y), epochs=1, batch_size=8, device="cpu", **kw)
        assert int(m.bn.num_batches_tracked) == 8, kw


def test_perturb_called_per_batch_identity_matches_no_perturb_and_train_mode_restored():
    X, y = _blobs(40)
    torch.manual_seed(0)
    base = BNNet()
    calls = []

    def identity(model, x, t):
        calls.append((x.shape[0], t.dtype))
        model.eval()  # attacks often switch to eval; fit must switch back
        return x + 0.0 * x

    m1, m2 = copy.deepcopy(base), copy.deepcopy(base)
    fit(m1, (X, y), epochs=2, batch_size=16, device="cpu", perturb=identity)
    fit(m2, (X, y), epochs=2, batch_size=16, device="cpu")
    assert len(calls) == 2 * 3 and calls[0] == (16, torch.int64)
    assert _same(_weights(m1), _weights(m2))
    assert all(m1.modes)  # every training forward ran in train mode


def test_transform_is_applied_per_batch():
    X, y = _blobs(32)
    m1, m2 = _linear(), _linear()
    fit(m1, (X, y), epochs=2, batch_size=8, device="cpu", transform=lambda x: -x)
    fit(m2, (-X, y), epochs=2, batch_size=8, device="cpu")
    assert _same(_weights(m1), _weights(m2))


def test_lr_mult_zero_group_is_frozen():
    X, y = _blobs(64)
    torch.manual_seed(0)
    model = BNNet()
    before = _weights(model)
    fit(model, (X, y), epochs=2, batch_size=8, weight_decay=1e-2, device="cpu",
        param_groups=[{"params": model.fc1.parameters(), "lr_mult": 0.0}])
    after = _weights(model)
    assert torch.equal(before["fc1.weight"], after["fc1.weight"])
    assert torch.equal(before["fc1.bias"], after["fc1.bias"])
    assert not torch.equal(before["fc2.weight"], after["fc2.weight"])


def test_regularizer_is_added_to_the_loss():
    X, y = _blobs(64)
    plain, reg = _linear(), _linear()
    fit(plain, (X, y), epochs=5, lr=0.004, batch_size=8, momentum=0.0, schedule="constant",
        device="cpu")

    def l2(model):
        return 100.0 * sum((p ** 2).sum() for p in model.parameters())

    fit(reg, (X, y), epochs=5, lr=0.004, batch_size=8, momentum=0.0, schedule="constant",
        device="cpu", regularizer=l2)
    assert plain.weight.detach().abs().max().item() > 0.3
    assert reg.weight.detach().abs().max().item() < 0.01


# --------------------------------------------------------------- evaluation
def test_evaluate_and_predict_known_values():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    model = nn.Identity()  # outputs are the inputs
    assert evaluate(model, (X, y)) == 0.75
    assert evaluate(model, TensorDataset(X, y), batch_size=3) == 0.75
    assert evaluate(model, (X, y), target_transform=lambda t: 1 - t) == 0.25
    assert evaluate(model, (X, y), metric="loss") == pytest.approx(float(F.cross_entropy(X, y)))
    assert evaluate(model, (X, X * 0.5), metric="mse") == pytest.approx(0.125)
    np.testing.assert_array_equal(predict(model, X), X.numpy())
    np.testing.assert_array_equal(predict(model, (X, y), transform=lambda x: 2 * x), 2 * X.numpy())


def test_evaluate_perturb_and_per_module_modes_restored():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    seen = []

    def swap(model, x, t):  # an "attack" that swaps the two logits
        seen.append((model.training, torch.is_grad_enabled(), t.tolist()))
        return x.flip(1)

    assert evaluate(nn.Identity(), (X, y), perturb=swap) == 0.25
    assert seen == [(False, True, [0, 1, 1, 1])]
    model = BNNet()
    model.train()
    model.bn.eval()  # deliberately frozen statistics: every call must keep that
    evaluate(model, (X, y))
    fit(model, (X, y), epochs=1, batch_size=2, device="cpu")
    recalibrate_batchnorm(model, X)
    assert model.training and model.fc1.training and not model.bn.training


def test_recalibrate_batchnorm_computes_exact_statistics():
    X = torch.from_numpy(_blobs(49)[0])
    bn = nn.BatchNorm1d(2)
    bn.eval()
    recalibrate_batchnorm(bn, X, batch_size=64)  # one batch: the exact statistics
    assert not bn.training and bn.momentum == 0.1
    torch.testing.assert_close(bn.running_mean, X.mean(0))
    torch.testing.assert_close(bn.running_var, X.var(0, unbiased=True))
    recalibrate_batchnorm(bn, X, batch_size=7)  # equal batches: the mean of batch means
    torch.testing.assert_close(bn.running_mean, X.mean(0))


# --------------------------------------------------------------- validation
@pytest.mark.parametrize("kw,msg", [
    (dict(lr=0), "lr must be a finite number > 0, got 0"),
    (dict(lr=-1.0), r"lr must be a finite number > 0, got -1.0"),
    (dict(lr="x"), "lr must be a finite number > 0, got 'x'"),
    (dict(lr=float("nan")), "lr must be a finite number > 0, got nan"),
    (dict(epochs=-1), "epochs must be an integer >= 0, got -1"),
    (dict(epochs=np.int64(-2)), r"epochs must be an integer >= 0, got -2$"),
    (dict(steps=1.5), "steps"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(optimizer="foo"), r"optimizer must be one of \['sgd', 'adam'\], got 'foo'"),
    (dict(loss="foo"), "loss must be one of"),
    (dict(schedule="step"), "schedule"),
    (dict(momentum=1.0), "momentum"),
    (dict(weight_decay=-1), "weight_decay"),
    (dict(bn="off"), "bn must be one of"),
    (dict(perturb=3), "perturb must be None or a callable"),
    (dict(device="banana"), "not a device name"),
    (dict(param_groups=[{"lr_mult": 2}]), "param_groups"),
])
def test_fit_bad_arguments(kw, msg):
    X, y = _blobs(8)
    with pytest.raises(ValueError, match=msg):
        fit(_linear(), (X, y), **kw)


def test_fit_bad_data_and_targets():
    X, y = _blobs(8)
    with pytest.raises(ValueError, match="model must be"):
        fit("net", (X, y))
    with pytest.raises(ValueError, match="data must be"):
        fit(_linear(), 42, device="cpu")
    with pytest.raises(ValueError, match="one target per input"):
        fit(_linear(), (X, y[:5]), device="cpu")
    with pytest.raises(ValueError, match="data is empty"):
        fit(_linear(), (X[:0], y[:0]), device="cpu")
    with pytest.raises(ValueError, match="integer class labels"):
        fit(_linear(), (X, y.astype(np.float32)), device="cpu")
    with pytest.raises(ValueError, match="loss='mse' needs targets"):
        fit(_linear(), (X, y.astype(np.float32)), loss="mse", device="cpu")
    m = _linear()
    with pytest.raises(ValueError, match="each parameter may be in one group"):
        fit(m, (X, y), param_groups=[{"params": [m.weight]}, {"params": [m.weight]}])
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate(m, (X, y), metric="f1")


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    for bad in ["cuda:3", "cuda"]:
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(bad)
    X, y = _blobs(8)
    with pytest.raises(ValueError, match=r"device 'cuda:3' was requested but CUDA is not"):
        fit(_linear(), (X, y), device="cuda:3")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device(3)


def test_resolve_device_index_beyond_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device(None) == torch.device("cuda")
    with pytest.raises(ValueError, match=r"has 1 CUDA device\(s\)"):
        resolve_device("cuda:3")


def test_as_dataset_materializes_in_memory_sets():
    class InMemory(torch.utils.data.Dataset):
        def __init__(self):
            self.X, self.y = torch.rand(5, 2), torch.arange(5)

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return self.X[i], int(self.y[i])

        def tensors(self):
            return self.X, self.y

    ds = training.as_dataset(InMemory())
    assert isinstance(ds, TensorDataset) and len(ds) == 5
