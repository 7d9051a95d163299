"""Torch's thread count for a block of code: the one "set, then restore" of the library.

The experiments run tiny convolutions, where one intra-op thread is measured faster than
two (a second thread spin-waits on a shared machine); :func:`transfer_nb.selection`'s
parallel jobs cap every pool at ``cores // jobs`` so that the jobs do not oversubscribe
the cores.  Both go through :func:`torch_threads`.
"""
from __future__ import annotations

import contextlib

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None = 1, *, blas: bool = False):
    """Run the block with ``n`` torch intra-op threads, then restore the count it found.

    Parameters
    ----------
    n : int or None
        Threads for the block (at least 1); ``None`` leaves every count unchanged.
    blas : bool
        Also cap the BLAS / OpenMP pools (NumPy, SciPy) at ``n`` threads (threadpoolctl).

    Raises
    ------
    ValueError
        ``n`` is not None and not a whole number >= 1.
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise ValueError(f"n must be a whole number of threads >= 1 (or None), got {n!r}")
    # torch imported here: `import transfer_nb` and the command line start without it
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        if blas:
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=int(n)):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(before)
