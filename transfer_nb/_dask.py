"""Calls as tasks on a ``dask.distributed`` cluster: the one Dask map of the library
(:func:`transfer_nb.experiments.base.parallel_map` and :func:`transfer_nb.score_models`'
``backend="dask"`` both go through :func:`dask_map`)."""
from __future__ import annotations

import pickle

__all__ = ["dask_map", "require_distributed"]


def _run_pickled(blob: bytes) -> bytes:
    fn, args = pickle.loads(blob)
    return _dumps()(fn(*args))


def require_distributed():
    """``dask.distributed`` (its ``Client``, ``LocalCluster``, ``as_completed``).

    Raises
    ------
    ImportError
        dask.distributed is not installed (the ``dask`` extra)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a dependency of the dask extra
        raise ImportError("running on Dask needs dask.distributed: "
                          "pip install 'transfer-nb[dask]'") from None
    return Client, LocalCluster, as_completed


def _dumps():
    try:
        import cloudpickle           # closures and lambdas too (a dependency of dask)
        return cloudpickle.dumps
    except ImportError:  # pragma: no cover - distributed requires cloudpickle
        return pickle.dumps


def dask_map(fn, calls: list, scheduler=None, done=None, n_workers: int = 1) -> list:
    """``[fn(*args) for args in calls]``, each call a task on a Dask cluster; results in
    call order.

    Parameters
    ----------
    fn : callable
        Pickled with its arguments to the workers (cloudpickle: a closure works too).
    calls : list of tuple
        The positional arguments of each call.
    scheduler : str, distributed.Client or cluster, optional
        An existing scheduler's address (``"tcp://host:8786"``), a client (used as is,
        left open) or a cluster object; None starts a :class:`LocalCluster` of
        ``n_workers`` single-threaded worker processes for these calls.
    done : callable, optional
        Called with the count of finished calls as each one finishes.
    """
    Client, LocalCluster, as_completed = require_distributed()
    if not calls:
        return []
    cluster = client = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=int(n_workers), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    elif not isinstance(scheduler, Client):
        client = Client(scheduler)          # an address or a cluster object
    use = client if client is not None else scheduler
    try:
        # each call and each result travel as one pickle: Dask's own serializers for some
        # types (a torch module) rebuild them without their hook dictionaries
        dumps = _dumps()
        futures = [use.submit(_run_pickled, dumps((fn, tuple(args))), pure=False)
                   for args in calls]
        for k, _ in enumerate(as_completed(futures), start=1):
            if done is not None:
                done(k)
        return [pickle.loads(blob) for blob in use.gather(futures)]
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
