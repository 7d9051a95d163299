"""One battery for every estimator in ``transfer_nb.estimators.REGISTRY``.

Each registered score, present and future, is run through the same checks:

* its value on a fixed synthetic input equals a reference written from the
  definitions (``REFERENCES`` below: a new estimator must add one);
* every invariance it promises holds (permuted samples, renamed labels, rotated
  or rescaled features, ...), and the score is not constant: breaking the link
  between inputs and labels moves it the wrong way;
* float32 and torch inputs give the float64 value;
* bad inputs (NaN, wrong shapes, mismatched lengths, one class) raise a
  ValueError whose message says what was wrong.

Inputs are built per input kind (``make_inputs``), so a new estimator whose
inputs are kinds already known needs only a ``register(...)`` call and a
reference here.
"""
import numpy as np
import pytest

from tests.test_coding_rate import ref_layerwise, ref_projected, ref_transrate
from tests.test_estimators import (ref_hscore, ref_hscore_lw, ref_leep, ref_linear_mse,
                                   ref_logme, ref_nce)
from tests.test_estimators_frontier import ref_etran, ref_ncti
from tests.test_estimators_more import ref_gbc, ref_knn, ref_nleep, ref_parc, ref_sfda
from transfer_nb import estimators as E
from transfer_nb.estimators import registry

N, D, K, NZ = 60, 6, 3, 5          # samples, feature dim, target classes, source classes


# --------------------------------------------------------------------------- #
# inputs, one builder per input kind
# --------------------------------------------------------------------------- #
def _task(rng, means, n, signal=1.5):
    y = np.arange(n) % len(means)
    rng.shuffle(y)
    X = rng.normal(size=(n, means.shape[1])) + signal * means[y]
    return X, y


def make_inputs(entry, seed=0, n=N, d=D):
    """Positional inputs for ``entry`` (dict kind -> value), deterministic for ``seed``."""
    torch = pytest.importorskip("torch") if "model" in entry.inputs else None
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, d))
    Z, y = _task(rng, means, n)
    logits = Z @ rng.normal(size=(d, NZ))
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    out = {"features": Z, "labels": y, "source_probs": P,
           "source_labels": P.argmax(1),
           "regression_targets": Z @ rng.normal(size=d) + 0.3 * rng.normal(size=n)}
    if torch is not None:
        Xs, ys = _task(rng, means, n)
        torch.manual_seed(seed)
        out["model"] = torch.nn.Linear(d, K).double()
        out["loss_fn"] = torch.nn.functional.cross_entropy
        out["source_data"] = (torch.tensor(Xs), torch.tensor(ys))
        out["target_data"] = (torch.tensor(Z), torch.tensor(y))
    return {k: out[k] for k in entry.inputs}


# extra keyword arguments per estimator (model-based scores: no progress bar)
CALL_KW = {"pge": {"progress": False, "restarts": 2, "batch_size": 16}}


def call(entry, inputs, **kw):
    return entry(*inputs.values(), **{**CALL_KW.get(entry.name, {}), **kw})


# --------------------------------------------------------------------------- #
# references from the definitions
# --------------------------------------------------------------------------- #
def ref_pge(model, loss_fn, source_data, target_data):
    """PGE with the given weights and full batches: distance of unit mean gradients.

    For a linear softmax classifier ``p = softmax(W x + b)`` the mean cross-entropy
    gradient is ``((p - onehot)^T X / n, mean(p - onehot))``.
    """
    W = model.weight.detach().numpy()
    b = model.bias.detach().numpy()

    def grad(data):
        X, y = (t.numpy() for t in data)
        logits = X @ W.T + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        r = p - np.eye(W.shape[0])[y]
        g = np.r_[(r.T @ X / len(y)).ravel(), r.mean(0)]
        return g / np.linalg.norm(g)

    return float(np.linalg.norm(grad(source_data) - grad(target_data)))


REFERENCES = {
    "transrate": (ref_transrate, {}),
    "transrate_layerwise": (ref_layerwise, {}),
    "transrate_projected": (lambda Z, y: ref_projected(Z, y, eps=1e-4), {}),
    "logme": (ref_logme, {}),
    "leep": (ref_leep, {}),
    "nce": (ref_nce, {}),
    "hscore": (ref_hscore, {}),
    "hscore_shrinkage": (ref_hscore_lw, {}),
    "linear_mse": (lambda Z, Y: ref_linear_mse(Z, Y, 1.0), {}),
    "label_mse": (lambda P, Y: ref_linear_mse(P, Y, 1.0), {}),
    "pge": (ref_pge, {"init": "given", "restarts": 1, "batch_size": N}),
    "knn": (ref_knn, {}),
    "nleep": (ref_nleep, {}),
    "gbc": (ref_gbc, {}),
    "parc": (ref_parc, {}),
    "sfda": (ref_sfda, {}),
    "etran": (ref_etran, {}),
    "ncti": (ref_ncti, {}),
}

NAMES = E.list_estimators()


def test_registry_api():
    assert E.REGISTRY is registry.REGISTRY
    assert E.get("leep").func is E.leep
    assert E.get("pge").higher_is_better is False
    assert {"transrate", "logme", "leep", "nce", "hscore", "hscore_shrinkage",
            "linear_mse", "pge"} <= set(NAMES)
    assert E.list_estimators("source_probs") == ["leep", "label_mse"]
    with pytest.raises(ValueError, match=r"unknown estimator 'leap'; expected one of \["):
        E.get("leap")
    with pytest.raises(ValueError, match="already registered"):
        E.register("leep", E.leep, ("source_probs", "labels"))
    with pytest.raises(ValueError, match=r"unknown input kind\(s\) \['probs'\]"):
        E.register("x", E.leep, ("probs", "labels"))
    with pytest.raises(ValueError, match=r"unknown invariance\(s\) \['rotation'\]"):
        E.register("x", E.leep, ("source_probs", "labels"), invariances=("rotation",))
    assert "x" not in E.REGISTRY


def test_register_one_call_adds_to_the_battery():
    try:
        entry = E.register("neg_nce", lambda z, y: -E.nce(z, y),
                           ("source_labels", "labels"), higher_is_better=False)
        assert E.get("neg_nce") is entry and "neg_nce" in E.list_estimators()
        inputs = make_inputs(entry)
        assert entry(*inputs.values()) == pytest.approx(-ref_nce(*inputs.values()))
    finally:
        E.REGISTRY.pop("neg_nce", None)


@pytest.mark.parametrize("name", NAMES)
def test_reference_value(name):
    assert name in REFERENCES, f"add a reference formula for {name!r} to REFERENCES"
    entry = E.get(name)
    ref, kw = REFERENCES[name]
    for seed in (0, 1):
        inputs = make_inputs(entry, seed)
        expected = ref(*inputs.values())
        assert call(entry, inputs, **kw) == pytest.approx(expected, rel=1e-8, abs=1e-10)


# --------------------------------------------------------------------------- #
# invariances
# --------------------------------------------------------------------------- #
ROW_KINDS = ("features", "labels", "source_probs", "source_labels", "regression_targets")


def _rows(value, idx):
    if isinstance(value, tuple):                       # (inputs, targets) torch task
        import torch
        return tuple(t[torch.as_tensor(idx)] for t in value)
    return value[idx]


def transform(kind, inputs, rng):
    """Apply the transformation ``kind`` to ``inputs``; return (new inputs, touched?)."""
    out = dict(inputs)
    touched = False
    if kind == "sample_order":
        p = rng.permutation(N)
        for k in list(out):
            if k in ROW_KINDS or k in ("source_data", "target_data"):
                out[k] = _rows(out[k], p)
                touched = True
    elif kind == "label_names" and "labels" in out:
        names = np.array([f"class-{v}" for v in rng.permutation(50)[:K]])
        out["labels"] = names[out["labels"]]
        touched = True
    elif kind == "source_class_order":
        perm = rng.permutation(NZ)
        if "source_probs" in out:
            out["source_probs"] = out["source_probs"][:, perm]
            touched = True
        if "source_labels" in out:
            out["source_labels"] = np.array([f"src-{v}" for v in perm])[out["source_labels"]]
            touched = True
    elif kind == "orthogonal_rotation" and "features" in out:
        Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
        out["features"] = out["features"] @ Q
        touched = True
    elif kind == "feature_scale" and "features" in out:
        out["features"] = out["features"] * rng.choice([0.01, 7.5])
        touched = True
    return out, touched


INVARIANCE_CASES = [(n, inv) for n in NAMES for inv in sorted(E.get(n).invariances)]


@pytest.mark.parametrize("name,invariance", INVARIANCE_CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_promised_invariance(name, invariance, seed):
    entry = E.get(name)
    inputs = make_inputs(entry, seed)
    new, touched = transform(invariance, inputs, np.random.default_rng(100 + seed))
    assert touched, f"{name} promises {invariance!r} but takes none of the inputs it acts on"
    assert call(entry, new) == pytest.approx(call(entry, inputs), rel=1e-6, abs=1e-9)


def test_every_known_invariance_has_a_transform():
    entry = registry.Estimator("all", None, ROW_KINDS)
    for inv in registry.INVARIANCES:
        _, touched = transform(inv, make_inputs(entry), np.random.default_rng(0))
        assert touched, inv


@pytest.mark.parametrize("name", NAMES)
def test_breaking_the_labels_makes_the_score_worse(name):
    """Shuffling the target labels (or targets) against the rest loses information."""
    entry = E.get(name)
    inputs = make_inputs(entry, 3)
    broken = dict(inputs)
    p = np.random.default_rng(5).permutation(N)
    for k in ("labels", "regression_targets"):
        if k in broken:
            broken[k] = broken[k][p]
    if "target_data" in broken:
        X, y = broken["target_data"]
        broken["target_data"] = (X, _rows((y,), p)[0])
    good, bad = call(entry, inputs), call(entry, broken)
    assert (good > bad) if entry.higher_is_better else (good < bad), (good, bad)


FLOAT_KINDS = ("features", "source_probs", "regression_targets")


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if set(E.get(n).inputs) & set(FLOAT_KINDS)])
def test_float32_and_torch_inputs(name):
    torch = pytest.importorskip("torch")
    entry = E.get(name)
    inputs = make_inputs(entry, 4)
    low = {k: (v.astype(np.float32) if k in FLOAT_KINDS else v) for k, v in inputs.items()}
    as64 = {k: (v.astype(np.float64) if k in FLOAT_KINDS else v) for k, v in low.items()}
    expected = call(entry, as64)
    assert call(entry, low) == pytest.approx(expected, rel=1e-12)
    tens = {k: torch.as_tensor(v) for k, v in low.items()}
    assert call(entry, tens) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #
def _nan_rows(a):
    a = np.array(a, dtype=np.float64)
    a[3] = np.nan
    return a


BAD_CASES = {
    # kind: [(case id, modifier, message regex)]
    "features": [
        ("nan", _nan_rows, "NaN or Inf"),
        ("1d", lambda a: a[:, 0], r"2-D array.*got 1-D"),
        ("empty", lambda a: a[:0], "empty"),
        ("short", lambda a: a[:-1], r"\b59\b.*\b60\b|\b60\b.*\b59\b"),
    ],
    "source_probs": [
        ("nan", _nan_rows, "NaN or Inf"),
        ("1d", lambda a: a[:, 0], r"2-D array.*got 1-D"),
        ("short", lambda a: a[:-1], r"\b59\b.*\b60\b|\b60\b.*\b59\b"),
    ],
    "regression_targets": [
        ("nan", _nan_rows, "NaN or Inf"),
        ("3d", lambda a: a.reshape(-1, 1, 1), "2-D array"),
        ("short", lambda a: a[:-1], r"\b59\b.*\b60\b|\b60\b.*\b59\b"),
    ],
    "labels": [
        ("nan", _nan_rows, "NaN or Inf"),
        ("onehot", lambda a: np.eye(K)[a], r"1-D array of labels.*one-hot"),
        ("short", lambda a: a[:-1], r"\b59\b.*\b60\b|\b60\b.*\b59\b"),
        ("one_class", lambda a: np.zeros_like(a), r"1 distinct class.*\[0\].*at least 2"),
        ("singleton", lambda a: np.r_[np.zeros(len(a) - 1, int), 7],
         r"class\(es\) \[7\] have fewer than 2 samples"),
        ("strings_one_class", lambda a: np.array(["c"] * len(a)),
         r"1 distinct class\(es\) \(\['c'\]\)"),
    ],
    "source_labels": [
        ("nan", _nan_rows, "NaN or Inf"),
        ("2d", lambda a: np.eye(NZ)[a], "1-D array of labels"),
        ("short", lambda a: a[:-1], r"\b59\b.*\b60\b|\b60\b.*\b59\b"),
    ],
    "model": [("not_a_module", lambda m: "resnet", "torch.nn.Module")],
    "loss_fn": [("not_callable", lambda f: 3, "loss_fn must be callable")],
    "target_data": [
        ("short", lambda t: (t[0], t[1][:-1]), r"\b60\b rows but targets have \b59\b"),
        ("nan", lambda t: (t[0] * float("nan"), t[1]), "NaN or Inf"),
        ("not_data", lambda t: [1, 2, 3], "torch Dataset, a DataLoader or a tuple"),
    ],
}

BAD = [(n, kind, case, mod, match) for n in NAMES for kind in E.get(n).inputs
       for case, mod, match in BAD_CASES.get(kind, [])]


@pytest.mark.parametrize("name,kind,case,modifier,match", BAD,
                         ids=[f"{n}-{k}-{c}" for n, k, c, _, _ in BAD])
def test_bad_input(name, kind, case, modifier, match):
    entry = E.get(name)
    inputs = make_inputs(entry, 6)
    inputs[kind] = modifier(inputs[kind])
    with pytest.raises(ValueError, match=match) as err:
        call(entry, inputs)
    assert "np." not in str(err.value)          # plain values in messages


@pytest.mark.parametrize("name", NAMES)
def test_every_input_kind_has_bad_cases(name):
    for kind in E.get(name).inputs:
        if kind != "source_data":               # checked through target_data
            assert BAD_CASES.get(kind), f"add bad-input cases for {kind!r}"
