"""The on-disk cache: keys cover every input, writes are atomic, corruption is recovered."""
import os

import numpy as np
import pytest
import torch

from transfer_nb import cache


def test_hash_inputs_changes_with_every_input():
    base = dict(layers=["a", "b"], pool="avg", n=10, arr=np.arange(5.0))
    key = cache.hash_inputs(**base)
    assert key == cache.hash_inputs(**dict(base))  # stable
    for change in ({"layers": ["a"]}, {"pool": "max"}, {"n": 11}, {"arr": np.arange(5.0) + 1e-9}):
        assert cache.hash_inputs(**{**base, **change}) != key, change


def test_hash_state_dict_sees_weight_change():
    model = torch.nn.Linear(3, 2)
    before = cache.hash_state_dict(model.state_dict())
    with torch.no_grad():
        model.weight[0, 0] += 1e-6
    assert cache.hash_state_dict(model.state_dict()) != before


def test_cached_arrays_hits_and_recovers_from_corruption(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6).reshape(2, 3)}

    first = cache.cached_arrays("k", "key1", compute, directory=tmp_path)
    second = cache.cached_arrays("k", "key1", compute, directory=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], second["x"])

    path = tmp_path / "key1.npz"
    path.write_bytes(path.read_bytes()[:20])  # a truncated file, as after a crash mid-copy
    third = cache.cached_arrays("k", "key1", compute, directory=tmp_path)
    assert len(calls) == 2
    np.testing.assert_array_equal(third["x"], first["x"])


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        cache.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # temp file cleaned up


def test_features_cache_key_covers_data_layers_pool_and_weights():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1))
    x = torch.zeros(4, 3, 8, 8)
    key = cache.features_cache_key(model, x, ["0"], {"0": "avg"}, 8192)
    assert key == cache.features_cache_key(model, x.clone(), ["0"], {"0": "avg"}, 8192)
    assert key != cache.features_cache_key(model, x + 1, ["0"], {"0": "avg"}, 8192)
    assert key != cache.features_cache_key(model, x, ["1"], {"1": "avg"}, 8192)
    assert key != cache.features_cache_key(model, x, ["0"], {"0": "max"}, 8192)
    # head2toe_target only matters for a head2toe layer
    assert key == cache.features_cache_key(model, x, ["0"], {"0": "avg"}, 64)
    with torch.no_grad():
        model[0].bias += 1
    assert key != cache.features_cache_key(model, x, ["0"], {"0": "avg"}, 8192)
