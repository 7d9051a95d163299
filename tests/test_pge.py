"""PGE (principal gradient expectation): the distance on arrays and the torch pipeline."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transfer_nb.estimators import pge, pge_distance

torch = pytest.importorskip("torch")
F = torch.nn.functional


def unit(v):
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- #
# pge_distance
# --------------------------------------------------------------------------- #
def test_distance_reference_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4, 10)), rng.normal(size=(3, 5, 10))
    expected = np.linalg.norm(unit(a.reshape(-1, 10).mean(0)) - unit(b.reshape(-1, 10).mean(0)))
    assert pge_distance(a, b) == pytest.approx(expected, rel=1e-12)
    per = [np.linalg.norm(unit(a[r].mean(0)) - unit(b[r].mean(0))) for r in range(3)]
    assert pge_distance(a, b, reduce="mean_distance") == pytest.approx(np.mean(per))
    assert pge_distance(a.mean(1), b.mean(1), reduce="mean_distance") == pytest.approx(
        np.mean(per))
    assert pge_distance(a[0, 0], b[0, 0]) == pytest.approx(
        np.linalg.norm(unit(a[0, 0]) - unit(b[0, 0])))


def test_distance_extremes():
    g = np.array([1.0, 2.0, -3.0])
    assert pge_distance(g, g) == 0.0
    assert pge_distance(g, 7 * g) == pytest.approx(0.0, abs=1e-15)
    assert pge_distance(g, -g) == pytest.approx(2.0)
    assert pge_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(np.sqrt(2))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(2, 20), st.integers(0, 10_000),
       st.floats(0.01, 100))
def test_distance_properties(R, p, seed, scale):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(R, p)), rng.normal(size=(R, p))
    d = pge_distance(a, b)
    assert 0 <= d <= 2 + 1e-12
    assert pge_distance(b, a) == pytest.approx(d)                       # symmetric
    assert pge_distance(scale * a, b) == pytest.approx(d, abs=1e-12)    # scale free
    perm = rng.permutation(R)
    assert pge_distance(a[perm], b) == pytest.approx(d, abs=1e-12)      # restart order
    Q, _ = np.linalg.qr(rng.normal(size=(p, p)))
    assert pge_distance(a @ Q, b @ Q) == pytest.approx(d, abs=1e-10)    # rotation


@pytest.mark.parametrize("a,b,kw,match", [
    (np.ones(3), np.ones(4), {}, "3 parameters but grads_b has 4"),
    (np.zeros(3), np.ones(3), {}, "exactly zero"),
    (np.array([np.nan, 1, 1]), np.ones(3), {}, "NaN or Inf"),
    (np.ones(3), np.ones(3), {"reduce": "max"}, "reduce must be one of"),
    (np.ones((1, 1, 1, 3)), np.ones(3), {}, r"shape \(p,\), \(restarts, p\)"),
    (np.ones(3), np.ones((2, 3)), {"reduce": "mean_distance"}, "needs per-restart"),
    (np.ones((2, 3)), np.ones((3, 3)), {"reduce": "mean_distance"}, "2 restarts but"),
    (np.zeros((2, 0)), np.zeros((2, 0)), {}, "empty"),
    (np.array(["a", "b"]), np.ones(2), {}, "real gradients"),
])
def test_distance_bad_input(a, b, kw, match):
    with pytest.raises(ValueError, match=match):
        pge_distance(a, b, **kw)


# --------------------------------------------------------------------------- #
# pge on a small network
# --------------------------------------------------------------------------- #
def make_task(n=64, d=6, K=3, seed=0, shuffle_labels=False, w=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    W = w if w is not None else torch.randn(d, K, generator=torch.Generator().manual_seed(99))
    y = (X @ W).argmax(1)
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return X, y


def make_model(d=6, K=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 8), torch.nn.Tanh(), torch.nn.Linear(8, K))


def test_given_weights_full_batch_equals_manual_gradient():
    model = make_model()
    src, tgt = make_task(seed=1), make_task(seed=2, shuffle_labels=True)

    def manual(X, y):
        model.zero_grad()
        F.cross_entropy(model(X), y).backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double().numpy()
        model.zero_grad()
        return g
    gs, gt = manual(*src), manual(*tgt)
    out = pge(model, F.cross_entropy, src, tgt, restarts=1, batch_size=64, init="given",
              progress=False, return_details=True)
    assert out["distance"] == pytest.approx(np.linalg.norm(unit(gs) - unit(gt)), rel=1e-6)
    np.testing.assert_allclose(out["source_gradient"], unit(gs), rtol=1e-5, atol=1e-7)
    assert out["source_gradients"].shape == (1, gs.size)
    assert out["param_names"] == [n for n, _ in model.named_parameters()]


def test_batches_are_weighted_by_size():
    """With batches of 64 and 36 the expectation is the full-data gradient."""
    model = make_model()
    src, tgt = make_task(n=100, seed=1), make_task(n=100, seed=2)
    full = pge(model, F.cross_entropy, src, tgt, restarts=1, batch_size=100, init="given",
               progress=False)
    batched = pge(model, F.cross_entropy, src, tgt, restarts=1, batch_size=64, init="given",
                  progress=False)
    assert batched == pytest.approx(full, rel=1e-5)


def test_same_task_is_zero_and_deterministic():
    model = make_model()
    src = make_task(seed=3)
    assert pge(model, F.cross_entropy, src, src, restarts=2, progress=False) == pytest.approx(
        0.0, abs=1e-6)
    tgt = make_task(seed=4, shuffle_labels=True)
    a = pge(model, F.cross_entropy, src, tgt, restarts=2, progress=False)
    b = pge(model, F.cross_entropy, src, tgt, restarts=2, progress=False)
    c = pge(model, F.cross_entropy, src, tgt, restarts=2, seed=5, progress=False)
    assert a == b and a != c


def test_related_task_is_closer_than_unrelated():
    model = make_model()
    src = make_task(n=256, seed=10)
    related = make_task(n=256, seed=11)                      # same rule, new samples
    unrelated = make_task(n=256, seed=12, shuffle_labels=True)
    kw = dict(restarts=4, batch_size=64, progress=False)
    assert pge(model, F.cross_entropy, src, related, **kw) < pge(
        model, F.cross_entropy, src, unrelated, **kw)


@pytest.mark.parametrize("init", ["reinit", "head", "perturb", "given"])
def test_model_state_and_rng_are_restored(init):
    model = make_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    src, tgt = make_task(seed=1), make_task(seed=2)
    out = pge(model, F.cross_entropy, src, tgt, restarts=2, init=init, progress=False,
              return_details=True)
    assert 0 <= out["distance"] <= 2
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(p.grad is None for p in model.parameters())
    if init == "given":       # restarts only reshuffle batches: same gradients
        np.testing.assert_allclose(out["source_gradients"][0], out["source_gradients"][1],
                                   rtol=1e-5, atol=1e-7)
    else:                     # fresh weights per restart
        assert not np.allclose(out["source_gradients"][0], out["source_gradients"][1])


def test_mean_distance_and_details():
    model = make_model()
    src, tgt = make_task(seed=1), make_task(seed=2, shuffle_labels=True)
    out = pge(model, F.cross_entropy, src, tgt, restarts=3, reduce="mean_distance",
              progress=False, return_details=True)
    assert out["distance"] == pytest.approx(out["per_restart_distance"].mean())
    assert pge_distance(out["source_gradients"], out["target_gradients"]) == pytest.approx(
        np.linalg.norm(out["source_gradient"] - out["target_gradient"]))


def test_params_subset_dataloader_and_numpy_input():
    model = make_model()
    X, y = make_task(seed=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    tgt = (make_task(seed=2)[0].numpy(), make_task(seed=2)[1].numpy())
    out = pge(model, F.cross_entropy, loader, tgt, restarts=1, params=["2.weight", "2.bias"],
              progress=False, return_details=True, max_batches=2)
    assert out["source_gradients"].shape == (1, 8 * 3 + 3)
    assert out["param_names"] == ["2.weight", "2.bias"]


def test_pge_bad_input():
    model = make_model()
    src = make_task(seed=1)
    ce = F.cross_entropy
    cases = [
        (dict(model="not a model"), "torch.nn.Module"),
        (dict(loss_fn=3), "loss_fn must be callable"),
        (dict(restarts=0), "restarts must be an integer >= 1"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(max_batches=0), "max_batches must be None or an integer >= 1"),
        (dict(init="zeros"), "init must be one of"),
        (dict(reduce="median"), "reduce must be one of"),
        (dict(init="perturb", noise=0.0), "noise must be a finite number > 0"),
        (dict(params=["nope"]), r"params \['nope'\] are not parameters"),
        (dict(target_data=[1, 2, 3]), "target_data must be a torch Dataset"),
        (dict(target_data=(src[0], src[1][:5])), "64 rows but targets have 5"),
        (dict(loss_fn=lambda o, t: F.cross_entropy(o, t, reduction="none")),
         "scalar \\(mean\\) loss"),
    ]
    for override, match in cases:
        kw = dict(model=model, loss_fn=ce, source_data=src, target_data=src, restarts=1,
                  progress=False)
        kw.update(override)
        with pytest.raises(ValueError, match=match):
            pge(**kw)


# --------------------------------------------------------------------------- #
# the documented algorithm, step by step
# --------------------------------------------------------------------------- #
def _reinit_gradient(model, X, y, seed):
    """Full-batch gradient after re-initialising every module with seed (docstring step 2)."""
    import copy
    m = copy.deepcopy(model)
    torch.manual_seed(seed)
    for mod in m.modules():
        if hasattr(mod, "reset_parameters") and any(True for _ in mod.parameters(recurse=False)):
            mod.reset_parameters()
    m.eval()
    params = list(m.parameters())
    grads = torch.autograd.grad(F.cross_entropy(m(X), y), params)
    return torch.cat([g.reshape(-1) for g in grads]).double().numpy()


def test_restarts_average_as_documented():
    model = make_model()
    src, tgt = make_task(n=48, seed=1), make_task(n=48, seed=2, shuffle_labels=True)
    out = pge(model, F.cross_entropy, src, tgt, restarts=3, batch_size=48, seed=7,
              progress=False, return_details=True)
    gs = np.stack([_reinit_gradient(model, *src, seed=7 + r) for r in range(3)])
    gt = np.stack([_reinit_gradient(model, *tgt, seed=7 + r) for r in range(3)])
    np.testing.assert_allclose(out["source_gradients"], gs, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(out["target_gradients"], gt, rtol=1e-5, atol=1e-8)
    # principal gradient: mean over restarts, then unit norm; distance between the two
    np.testing.assert_allclose(out["source_gradient"], unit(gs.mean(0)), rtol=1e-5, atol=1e-8)
    assert out["distance"] == pytest.approx(
        np.linalg.norm(unit(gs.mean(0)) - unit(gt.mean(0))), rel=1e-5)
    # not the mean of the per-restart distances
    assert out["distance"] != pytest.approx(out["per_restart_distance"].mean(), rel=1e-3)


def test_identical_tasks_give_zero_for_every_init():
    model = make_model()
    src = make_task(n=80, seed=5)
    for init in ("reinit", "head", "perturb", "given"):
        assert pge(model, F.cross_entropy, src, src, restarts=3, batch_size=16, init=init,
                   progress=False) == pytest.approx(0.0, abs=1e-6)


def test_independent_of_batch_order_when_all_batches_are_used():
    model = make_model()
    src, tgt = make_task(n=100, seed=1), make_task(n=100, seed=2, shuffle_labels=True)
    kw = dict(restarts=2, batch_size=16, progress=False)
    ref = pge(model, F.cross_entropy, src, tgt, **kw)
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    permuted = pge(model, F.cross_entropy, (src[0][perm], src[1][perm]), tgt, **kw)
    assert permuted == pytest.approx(ref, abs=1e-6)
    # seed changes the weights of each restart, the shuffling too: with init="given" only
    # the shuffling changes, and with every batch used the distance does not move
    g1 = pge(model, F.cross_entropy, src, tgt, init="given", seed=0, **kw)
    g2 = pge(model, F.cross_entropy, src, tgt, init="given", seed=11, **kw)
    assert g1 == pytest.approx(g2, abs=1e-6)
    # ... whereas with one batch per restart it does
    b1 = pge(model, F.cross_entropy, src, tgt, init="given", seed=0, max_batches=1, **kw)
    b2 = pge(model, F.cross_entropy, src, tgt, init="given", seed=11, max_batches=1, **kw)
    assert abs(b1 - b2) > 1e-3
