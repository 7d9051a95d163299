"""PGD attack, the perturbation hook, robust accuracy and pseudo-labelling (tiny CPU models)."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from transfer_nb import adversarial
from transfer_nb.data.base import ImageDataset
from transfer_nb.models import source


def _images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g)
    x[0, 0, 0, :4] = 0.0  # pixels on the boundary of the valid range
    x[1, 1, 2, :4] = 1.0
    return x


def _linear(k=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, k))


def _conv(k=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, k))


def _labels(n=16, k=3, seed=1):
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("norm,eps", [("l2", 0.5), ("linf", 0.03)])
def test_attack_raises_loss(norm, eps):
    model, x, y = _conv(), _images(), _labels()
    model.eval()
    x_adv = adversarial.pgd(model, x, y, eps, norm=norm, steps=5,
                            generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y, reduction="none")
        adv = F.cross_entropy(model(x_adv), y, reduction="none")
    assert adv.sum() > clean.sum()
    assert (adv > clean).float().mean() >= 0.9


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_binary_linear_model_exact_worst_case(norm):
    # for a linear binary classifier the loss gradient always points along -d (d = w_y -
    # w_other), so PGD without random start ends at -eps * d/||d||_2 (L2) or
    # -eps * sign(d) (Linf): the logit margin drops by eps*||d||_2 or eps*||d||_1
    model, x = _linear(k=2), _images()
    y = torch.zeros(len(x), dtype=torch.long)
    eps = 0.2 if norm == "l2" else 0.01
    x_adv = adversarial.pgd(model, x, y, eps, norm=norm, steps=4, random_start=False, clamp=None)
    w = model[1].weight.detach()
    d = (w[0] - w[1]).flatten()
    drop = eps * (d.norm() if norm == "l2" else d.abs().sum())
    with torch.no_grad():
        margin = lambda z: model(z)[:, 0] - model(z)[:, 1]  # noqa: E731
        torch.testing.assert_close(margin(x) - margin(x_adv), drop.expand(len(x)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm,eps", [("l2", 0.3), ("l2", 2.0), ("linf", 0.05), ("linf", 0.5)])
@pytest.mark.parametrize("normalize", [None, "imagenet"])
def test_result_inside_ball_and_pixel_range(norm, eps, normalize):
    model, x, y = _conv(), _images(), _labels()
    x_adv = adversarial.pgd(model, x, y, eps, norm=norm, steps=6, normalize=normalize,
                            generator=torch.Generator().manual_seed(3))
    delta = (x_adv - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().max(dim=1).values
    assert float(size.max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    # the attack does move the images (a no-op would pass the two bounds above)
    assert float(size.min()) > 0.5 * eps


def test_eps_zero_returns_input_exactly():
    x = _images()
    out = adversarial.pgd(_conv(), x, _labels(), 0.0, norm="linf", steps=0)
    assert torch.equal(out, x)
    out[0] += 1  # a copy, not the caller's tensor
    assert not torch.equal(out, x)


def test_same_seed_same_output_other_seed_differs():
    model, x, y = _conv(), _images(), _labels()

    def run(seed):
        return adversarial.pgd(model, x, y, 0.5, steps=3, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_model_modes_params_and_grads_restored():
    model = _conv()
    model.train()
    model[1].eval()  # a deliberately frozen BatchNorm must stay frozen
    model[0].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    adversarial.pgd(model, _images(), _labels(), 0.5, steps=3)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats too


def test_modes_restored_when_loss_fn_fails():
    model = _conv()
    model.train()
    with pytest.raises(ValueError, match="scalar"):
        adversarial.pgd(model, _images(), _labels(), 0.5, steps=2,
                        loss_fn=lambda out, y: F.cross_entropy(out, y, reduction="none"))
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_normalize_model_attribute_is_used_inside_the_attack():
    model, x, y = _conv(), _images(), _labels()
    model.transfer_nb_normalize = "imagenet"
    kw = dict(steps=3, generator=None, random_start=False)
    via_attr = adversarial.pgd(model, x, y, 0.5, **kw)
    via_name = adversarial.pgd(model, x, y, 0.5, normalize="imagenet", **kw)
    from transfer_nb.preprocessing import normalize_images
    via_call = adversarial.pgd(model, x, y, 0.5, normalize=lambda z: normalize_images(z, "imagenet"), **kw)
    plain = adversarial.pgd(model, x, y, 0.5, normalize=None, **kw)
    assert torch.equal(via_attr, via_name) and torch.equal(via_attr, via_call)
    assert not torch.equal(via_attr, plain)


def test_input_outside_pixel_range_is_rejected():
    from transfer_nb.preprocessing import normalize_images
    x = normalize_images(_images(), "imagenet")
    with pytest.raises(ValueError, match="outside clamp"):
        adversarial.pgd(_conv(), x, _labels(), 0.5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=-0.1), "eps must be >= 0"),
    (dict(eps=float("nan")), "eps must be finite"),
    (dict(eps=float("inf")), "eps must be finite"),
    (dict(eps="big"), "eps must be a real number"),
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(steps=2.5), "steps must be an integer"),
    (dict(steps=True), "steps must be an integer"),
    (dict(norm="l1"), r"norm must be one of \['l2', 'linf'\]"),
    (dict(step_size=0.0), "step_size must be > 0"),
    (dict(step_size=-1), "step_size must be > 0"),
    (dict(clamp=(1.0, 0.0)), "low < high"),
    (dict(normalize="imagenett"), "unknown normalization"),
])
def test_bad_attack_settings_raise(kwargs, match):
    args = dict(eps=0.5, norm="l2", steps=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        adversarial.pgd(_linear(), _images(), _labels(), **args)
    with pytest.raises(ValueError, match=match):
        adversarial.pgd_perturbation(**args)


def test_error_messages_print_plain_values():
    with pytest.raises(ValueError) as info:
        adversarial.pgd(_linear(), _images(), _labels(), np.float64(-0.5))
    assert "-0.5" in str(info.value) and "np.float64" not in str(info.value)


# ---------------------------------------------------------------- perturbation hook


def test_perturbation_hook_matches_pgd_and_describes_itself():
    model, x, y = _conv(), _images(), _labels()
    p = adversarial.pgd_perturbation(0.5, norm="l2", steps=4, seed=5)
    out = p(model, x, y)
    ref = adversarial.pgd(model, x, y, 0.5, norm="l2", steps=4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, ref)
    p.reset()
    assert torch.equal(p(model, x, y), ref)
    key = p.cache_key
    assert key["attack"] == "pgd" and key["eps"] == 0.5 and key["norm"] == "l2" and key["steps"] == 4
    assert key["step_size"] == pytest.approx(2.5 * 0.5 / 4)  # the Madry / robustness default
    assert source.describe_perturb(p) == {"cache_key": key}


def test_attack_settings_land_in_the_source_cache_key():
    data = ImageDataset(_images(8).numpy(), [0, 1] * 4, ["a", "b"], name="tiny")

    def key(perturb, eps):
        return source.source_cache_key(
            "small_cnn", data, arch_options={}, num_classes=2, epochs=1, lr=0.1, batch_size=4,
            weight_decay=0.0, momentum=0.9, augment=False, seed=0, adversarial_eps=eps, perturb=perturb)

    keys = {key(adversarial.pgd_perturbation(0.5, steps=3), 0.5),
            key(adversarial.pgd_perturbation(0.5, steps=5), 0.5),
            key(adversarial.pgd_perturbation(0.5, norm="linf", steps=3), 0.5),
            key(adversarial.pgd_perturbation(0.5, steps=3, seed=1), 0.5),
            key(adversarial.pgd_perturbation(0.5, steps=3, normalize="imagenet"), 0.5)}
    assert len(keys) == 5
    assert key(adversarial.pgd_perturbation(0.5, steps=3), 0.5) in keys  # stable


def test_train_source_runs_with_the_hook():
    data = ImageDataset(_images(8).numpy(), [0, 1] * 4, ["a", "b"], name="tiny-adv")
    p = adversarial.pgd_perturbation(0.25, norm="linf", steps=2)
    model = source.train_source("small_cnn", data, epochs=1, batch_size=4, width=4, depth=1,
                                perturb=p, adversarial_eps=p.eps, progress=False, device="cpu")
    assert model.transfer_nb_train_config["perturb"] == {"cache_key": p.cache_key}
    assert model.transfer_nb_train_config["adversarial_eps"] == 0.25


# ---------------------------------------------------------------- robust accuracy


def _binary_task(n=40, seed=0):
    model, x = _linear(k=2, seed=seed), _images(n, seed=seed)
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = pred.clone()
    y[:10] = 1 - y[:10]  # 10 wrong of 40: clean accuracy exactly 0.75
    return model, x, y


def test_robust_accuracy_equals_clean_at_eps_zero_and_drops_with_eps():
    model, x, y = _binary_task()
    clean = adversarial.robust_accuracy(model, (x, y), 0.0, batch_size=16)
    assert clean == 0.75
    accs = [adversarial.robust_accuracy(model, (x, y), eps, steps=5, batch_size=16)
            for eps in (0.05, 0.5, 3.0)]
    assert all(a <= clean for a in accs)
    assert accs[0] >= accs[1] >= accs[2]
    assert accs[2] < clean


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_robust_accuracy_of_linear_model_is_exact(norm):
    # an example survives iff its margin exceeds eps * ||d|| (dual norm), see above
    model, x, y = _binary_task()
    eps = 0.1 if norm == "l2" else 0.003
    w = model[1].weight.detach()
    with torch.no_grad():
        logits = model(x)
    sign = torch.where(y == 0, 1.0, -1.0)
    margin = sign * (logits[:, 0] - logits[:, 1])
    d = (w[0] - w[1]).flatten()
    budget = eps * (d.norm() if norm == "l2" else d.abs().sum())
    expected = float((margin > budget).float().mean())
    assert 0 < expected < 0.75  # the chosen eps attacks some but not all correct examples
    got = adversarial.robust_accuracy(model, (x, y), eps, norm=norm, steps=4, random_start=False,
                                      clamp=None, batch_size=16)
    assert got == pytest.approx(expected)


def test_robust_accuracy_accepts_a_dataset_and_restores_mode():
    model, x, y = _binary_task()
    model.train()
    data = ImageDataset(x.numpy(), y.numpy(), ["a", "b"])
    assert adversarial.robust_accuracy(model, data, 0.0) == 0.75
    assert model.training


# ---------------------------------------------------------------- pseudo-labels


class _ProbModel(nn.Module):
    """Returns log of its input, so that the softmax of its output is the input itself."""

    def forward(self, x):
        return x.flatten(1).log()


_PROBS = torch.tensor([[0.95, 0.03, 0.02],
                       [0.50, 0.30, 0.20],
                       [0.05, 0.92, 0.03],
                       [0.34, 0.33, 0.33],
                       [0.01, 0.01, 0.98],
                       [0.10, 0.85, 0.05]])


def test_pseudo_label_keeps_exactly_the_confident_predictions():
    idx, labels, conf = adversarial.pseudo_label(_ProbModel(), _PROBS, threshold=0.9, batch_size=4)
    np.testing.assert_array_equal(idx, [0, 2, 4])
    np.testing.assert_array_equal(labels, [0, 1, 2])
    np.testing.assert_allclose(conf, [0.95, 0.92, 0.98], rtol=1e-5)
    assert idx.dtype == np.int64 and labels.dtype == np.int64
    # lower threshold: more kept; threshold <= 1/K keeps everything
    idx, labels, _ = adversarial.pseudo_label(_ProbModel(), _PROBS, threshold=0.5)
    np.testing.assert_array_equal(idx, [0, 1, 2, 4, 5])
    np.testing.assert_array_equal(labels, [0, 0, 1, 2, 1])
    idx, _, _ = adversarial.pseudo_label(_ProbModel(), (_PROBS,), threshold=1 / 3)
    np.testing.assert_array_equal(idx, np.arange(6))


def test_pseudo_label_threshold_is_inclusive():
    _, _, conf = adversarial.pseudo_label(_ProbModel(), _PROBS, threshold=1 / 3)
    t = float(conf[2])  # exactly the confidence the model gives image 2
    idx, _, _ = adversarial.pseudo_label(_ProbModel(), _PROBS, threshold=t)
    assert 2 in idx and 5 not in idx


@pytest.mark.parametrize("threshold,match", [(0.0, "0 < threshold <= 1"), (1.5, "0 < threshold <= 1"),
                                             (-0.2, "0 < threshold <= 1"),
                                             (float("nan"), "threshold must be finite"),
                                             ("high", "threshold must be a real number")])
def test_bad_threshold_raises(threshold, match):
    with pytest.raises(ValueError, match=match):
        adversarial.pseudo_label(_ProbModel(), _PROBS, threshold=threshold)


def test_pseudo_labeled_dataset_combines_both_parts():
    labeled = ImageDataset(_images(4).numpy(), [0, 1, 2, 0], ["a", "b", "c"], name="lab")
    unl_images = _images(6, seed=9)
    unlabeled = ImageDataset(unl_images.numpy(), [0] * 6, ["a", "b", "c"], name="unl")
    ds = adversarial.pseudo_labeled_dataset(labeled, unlabeled, [1, 4], [2, 1])
    assert len(ds) == 6 and ds.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(ds.targets, [0, 1, 2, 0, 2, 1])
    np.testing.assert_array_equal(ds.is_pseudo, [False] * 4 + [True] * 2)
    x, y = ds[4]
    assert y == 2 and torch.allclose(x, unl_images[1])
    x, y = ds[-1]
    assert y == 1 and torch.allclose(x, unl_images[4])
    assert ds[0][1] == 0
    other = adversarial.pseudo_labeled_dataset(labeled, unlabeled, [1, 4], [2, 2])
    assert ds.spec["labeled"] == labeled.spec and ds.spec != other.spec
    with pytest.raises(ValueError, match="indices must lie in 0..5"):
        adversarial.pseudo_labeled_dataset(labeled, unlabeled, [6], [0])
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        adversarial.pseudo_labeled_dataset(labeled, unlabeled, [0], [3])
    with pytest.raises(ValueError, match="duplicates"):
        adversarial.pseudo_labeled_dataset(labeled, unlabeled, [0, 0], [1, 1])


def test_semi_supervised_dataset_uses_the_teachers_confident_labels():
    labeled = ImageDataset(_images(4).numpy(), [0, 1, 2, 0], ["a", "b", "c"])
    probs = _PROBS.view(6, 3, 1, 1)  # images of shape 3x1x1 whose pixels are the probabilities
    unlabeled = ImageDataset(probs.numpy(), [0] * 6, ["a", "b", "c"])
    ds = adversarial.semi_supervised_dataset(_ProbModel(), labeled, unlabeled, threshold=0.9)
    np.testing.assert_array_equal(ds.pseudo_indices, [0, 2, 4])
    np.testing.assert_array_equal(ds.targets[4:], [0, 1, 2])
    assert math.isclose(float(ds[5][0].flatten()[1]), 0.92, rel_tol=1e-6)


# ------------------------------------------- the hook inside fit / evaluate (pixel space)


class _Recorder(nn.Module):
    """A linear classifier that records the inputs of its training-mode forward passes."""

    def __init__(self, normalize):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
        self.transfer_nb_normalize = normalize
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.net(x)


@pytest.mark.parametrize("where", ["fit_transform", "dataset"])
def test_fit_hook_attacks_pixels_and_the_model_sees_normalised_input_once(where):
    # the hook gets the batch the model takes (normalised by fit's transform or by the
    # data set itself); it must attack in [0, 1] pixels and hand back normalised input
    from transfer_nb import training
    from transfer_nb.preprocessing import normalize_images
    x, y = _images(4), torch.tensor([0, 1, 0, 1])
    model = _Recorder("imagenet")
    eps = 0.5
    hook = adversarial.pgd_perturbation(eps, norm="l2", steps=3)
    if where == "dataset":
        data, transform = ImageDataset(x.numpy(), y.numpy(), ["a", "b"], normalize="imagenet"), None
    else:
        data, transform = (x, y), (lambda z: normalize_images(z, "imagenet"))
    training.fit(model, data, epochs=1, batch_size=4, lr=1e-3, perturb=hook, transform=transform)
    (seen,) = model.seen
    pixels = adversarial._to_pixels(seen, "imagenet")
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    # each row is within eps (pixel L2) of one clean image, and was moved
    dist = torch.cdist(pixels.flatten(1), x.flatten(1))
    nearest = dist.min(dim=1).values
    assert float(nearest.max()) <= eps + 1e-4
    assert float(nearest.min()) > 0.1


def test_hook_in_pixel_space_matches_pgd_on_pixels():
    from transfer_nb.preprocessing import normalize_images
    model, x, y = _conv(), _images(), _labels()
    model.transfer_nb_normalize = "lite"
    out = adversarial.pgd_perturbation(0.5, steps=3, seed=2)(model, normalize_images(x, "lite"), y)
    ref = adversarial.pgd(model, x, y, 0.5, steps=3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, normalize_images(ref, "lite"), atol=1e-5, rtol=0)


def test_robust_accuracy_same_for_pixel_and_prenormalised_data():
    model, x, y = _binary_task()
    from transfer_nb.preprocessing import normalize_images
    # a model that normalises nothing itself but was "trained" on imagenet-normalised input
    model.transfer_nb_normalize = "imagenet"
    pix = adversarial.robust_accuracy(model, (x, y), 0.5, steps=3, batch_size=16)
    pre = adversarial.robust_accuracy(
        model, ImageDataset(x.numpy(), y.numpy(), ["a", "b"], normalize="imagenet"), 0.5,
        steps=3, batch_size=16)
    assert pix == pre
    with torch.no_grad():
        clean = float((model(normalize_images(x, "imagenet")).argmax(1) == y).float().mean())
    assert adversarial.robust_accuracy(model, (x, y), 0.0) == clean


def test_hook_rejects_a_callable_normalisation():
    with pytest.raises(ValueError, match="cannot be inverted"):
        adversarial.pgd_perturbation(0.5, normalize=lambda z: z)
