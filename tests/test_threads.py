"""The one "set torch threads, then restore" of the library (transfer_nb._threads)."""
import pytest
import torch

from transfer_nb._threads import torch_threads


def test_sets_then_restores_the_thread_count():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_restores_after_an_exception():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(other):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_none_leaves_every_count_alone():
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_blas_caps_the_numpy_pools_too():
    from threadpoolctl import threadpool_info
    with torch_threads(1, blas=True):
        assert [p["num_threads"] for p in threadpool_info()] == [1] * len(threadpool_info())


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_bad_count_says_what_was_expected(bad):
    with pytest.raises(ValueError, match="whole number of threads"):
        with torch_threads(bad):
            pass
