"""Issue 15: nothing computed on the wrong data, nothing lost.  One test per item."""
import builtins
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from transfer_nb import cache, cli
from transfer_nb.coding_rate import transrate
from transfer_nb.data.base import ImageDataset
from transfer_nb.data.registry import load_dataset
from transfer_nb.estimators.hscore import hscore
from transfer_nb.estimators.logme import logme
from transfer_nb.features import extract_features
from transfer_nb.models.source import train_source
from transfer_nb.training.transfer import linear_probe


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2)).eval()


def _images(n=8, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def _user_dataset(seed, n=8, normalize=None):
    """An ImageDataset built by hand (no spec): what a user makes from own arrays."""
    return ImageDataset(_images(n, seed).numpy(), [0, 1] * (n // 2), ["a", "b"],
                        normalize=normalize)


def _feats(model, data, **kw):
    kw.setdefault("device", "cpu")
    return extract_features(model, data, layers=["2"], progress=False, **kw)["2"]


# ---------------------------------------------------------------------------- item 1
def test_results_for_the_wrong_data(tmp_path):
    model = _net()
    first, second = _user_dataset(0), _user_dataset(1)  # same size, same default spec
    a = _feats(model, first, cache=tmp_path)
    b = _feats(model, second, cache=tmp_path)
    np.testing.assert_array_equal(b, _feats(model, second))  # not first's features
    assert not np.allclose(a, b)
    # in-place changes of what the model sees change the key too
    first.normalize = "imagenet"
    np.testing.assert_array_equal(_feats(model, first, cache=tmp_path), _feats(model, first))
    first.normalize = "none"
    first.images.mul_(0.5)
    np.testing.assert_array_equal(_feats(model, first, cache=tmp_path), _feats(model, first))
    # train_source caches by default: a second data set of the same size is trained on,
    # not served the first one's weights; same data -> same key (a hit)
    cfg = dict(epochs=1, batch_size=4, width=4, depth=1, progress=False, device="cpu")
    m1 = train_source("small_cnn", _user_dataset(0), **cfg)
    m2 = train_source("small_cnn", _user_dataset(1), **cfg)
    assert m1.transfer_nb_cache_key != m2.transfer_nb_cache_key
    assert any(not torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                     m2.state_dict().values()))
    assert train_source("small_cnn", _user_dataset(0), **cfg).transfer_nb_cache_key \
        == m1.transfer_nb_cache_key
    # labels are part of the source key (not of the feature key)
    relabelled = _user_dataset(0)
    relabelled.targets[:] = relabelled.targets[::-1]
    assert cache.data_fingerprint(relabelled, labels=True) \
        != cache.data_fingerprint(_user_dataset(0), labels=True)
    assert cache.data_fingerprint(relabelled) == cache.data_fingerprint(_user_dataset(0))


# ---------------------------------------------------------------------------- item 2
def test_rows_that_do_not_match_labels():
    model, data = _net(), _user_dataset(0)
    with pytest.raises(ValueError, match="shuffle=False"):
        _feats(model, DataLoader(data, batch_size=3, shuffle=True))
    in_order = _feats(model, DataLoader(data, batch_size=3, shuffle=False))
    np.testing.assert_allclose(in_order, _feats(model, data), rtol=1e-6)


# ---------------------------------------------------------------------------- item 3
def test_a_computed_result_thrown_away(tmp_path, monkeypatch):
    model, data = _net(), _user_dataset(0)
    expected = _feats(model, data)
    # a directory where the cache file should be
    key = cache.features_cache_key(model, data, ["2"], {"2": "avg"}, 8192)
    (tmp_path / f"{key}.npz").mkdir()
    with pytest.warns(cache.CacheWriteWarning, match="not cached"):
        got = _feats(model, data, cache=tmp_path)
    np.testing.assert_array_equal(got, expected)
    # a cache folder that cannot be created (a file in its place: read-only as root too)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.warns(cache.CacheWriteWarning):
        np.testing.assert_array_equal(_feats(model, data, cache=blocker / "sub"), expected)
    monkeypatch.setenv("TRANSFER_NB_CACHE", str(blocker / "home"))
    with pytest.warns(cache.CacheWriteWarning):
        m = train_source("small_cnn", data, epochs=1, batch_size=4, width=4, depth=1,
                         progress=False, device="cpu")
    assert m.transfer_nb_source_accuracy >= 0.0 and m.transfer_nb_cache_key is not None
    # a file that cannot be read is a miss, not deleted; a corrupt one is deleted
    good = tmp_path / "good.npz"
    old = os.umask(0o022)
    try:
        assert cache.save_arrays(good, {"a": np.arange(3)})
    finally:
        os.umask(old)
    assert good.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600
    real_open = builtins.open

    def no_permission(file, *args, **kwargs):
        if os.fspath(file) == str(good):
            raise PermissionError(13, "Permission denied", str(good))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    assert cache.load_arrays(good) is None
    monkeypatch.setattr(builtins, "open", real_open)
    assert good.exists()
    np.testing.assert_array_equal(cache.load_arrays(good)["a"], np.arange(3))
    good.write_bytes(good.read_bytes()[:20])  # truncated: corrupt
    assert cache.load_arrays(good) is None and not good.exists()


# ---------------------------------------------------------------------------- item 4
def test_silent_wrong_values_at_extreme_scales():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    Z = rng.normal(size=(60, 8)) + y[:, None] * 0.5
    ref = logme(Z, y)
    for c in (1e-200, 1e100, 1e200, 2.0 ** 600):
        assert logme(Z * c, y) == pytest.approx(ref, rel=1e-7)
    assert logme(Z * 2.0 ** 600, y) == ref  # a power of two: bit for bit
    # alpha refers to the features as given: evidence(cF, c^2 alpha, beta) = evidence(F, alpha, beta)
    from transfer_nb.estimators.logme import logme_evidence
    _, a1, b1 = logme_evidence(Z, (y == 0).astype(float), return_params=True)
    _, a2, b2 = logme_evidence(Z * 2.0 ** 10, (y == 0).astype(float), return_params=True)
    np.testing.assert_array_equal(a2, a1 * 2.0 ** 20)
    np.testing.assert_array_equal(b2, b1)
    ref = hscore(Z, y, shrinkage=True)
    assert ref > 0.1
    for c in (1e-100, 1e100, 1e200):
        assert hscore(Z * c, y, shrinkage=True) == pytest.approx(ref, rel=1e-9)
        assert hscore(Z * c, y) == pytest.approx(hscore(Z, y), rel=1e-9)
    ref = transrate(Z, y, variant="layerwise")
    for c in (1e-30, 1e-300, 1e200):
        assert transrate(Z * c, y, variant="layerwise") == pytest.approx(ref, rel=1e-9)


# ---------------------------------------------------------------------------- item 5
def test_the_command_line(tmp_path, monkeypatch, capsys):
    from transfer_nb.config import fast_mode

    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    (nb_dir / "01_x.ipynb").write_text("{}")
    seen = []

    def fake_run(notebooks, out, timeout=1800):
        seen.append(fast_mode())
        return [{"name": p.name, "ok": True, "seconds": 0.0, "error": None}
                for p in notebooks]

    monkeypatch.setattr(cli, "run_notebooks", fake_run)
    monkeypatch.setattr(cli, "run_demo", lambda *a, **k: pytest.fail("demo ran"))
    monkeypatch.delenv("TRANSFER_NB_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert cli.main(["run", "--notebooks", str(nb_dir), "--out", str(tmp_path / "b")]) == 0
    monkeypatch.delenv("TRANSFER_NB_FAST", raising=False)
    assert cli.main(["run", "--full", "--notebooks", str(nb_dir),
                     "--out", str(tmp_path / "b")]) == 0
    monkeypatch.setenv("TRANSFER_NB_FAST", "0")
    assert cli.main(["run", "--notebooks", str(nb_dir), "--out", str(tmp_path / "b")]) == 0
    assert seen == [True, False, False]
    capsys.readouterr()
    assert cli.main(["run", "--notebooks", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------- item 6
class _PILDataset(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        from PIL import Image
        return Image.new("RGB", (8, 8)), i % 2


def test_errors_that_do_not_say_what_was_wrong():
    model = _net()
    with pytest.raises(ValueError, match=r"PIL image.*ToTensor"):
        _feats(model, _PILDataset())
    with pytest.raises(ValueError, match=r"PIL image.*ToTensor"):
        _feats(model, DataLoader(_PILDataset(), batch_size=2))
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        load_dataset("digits", seed=-1)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got 'a'"):
        train_source("small_cnn", _user_dataset(0), seed="a", progress=False)
    Z, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=r"max_iter must be an integer >= 1, got -5"):
        logme(Z, y, max_iter=-5)
    with pytest.raises(ValueError, match=r"tol must be a finite number > 0, got nan"):
        logme(Z, y, tol=float("nan"))
    with pytest.raises(ValueError, match=r"rcond must lie in \[0, 1\], got -1"):
        hscore(Z, y, rcond=-1)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus <= 3:
        with pytest.raises(ValueError, match="'cuda:3' was requested"):
            _feats(model, _images(4), device="cuda:3")
    with pytest.warns(UserWarning, match=r"2 of 6 test items have labels the training "
                                         r"set never had \(\[7\]\)"):
        acc = linear_probe(Z[:14], y[:14], Z[14:], [0, 1, 0, 1, 7, 7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        linear_probe(Z[:14], y[:14], Z[14:], y[14:])  # no warning without unseen labels
    assert acc <= 4 / 6
