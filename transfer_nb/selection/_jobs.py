"""Running :func:`score_models`' jobs: here one by one, on joblib workers, or on Dask,
with each job's threads capped so that ``n_jobs`` jobs do not oversubscribe the cores."""
from __future__ import annotations

import os

from transfer_nb._dask import dask_map
from transfer_nb._threads import torch_threads

__all__ = ["BACKENDS", "run_jobs", "threads_per_job", "usable_cores"]

#: job engines (``None``: joblib's default, loky processes)
BACKENDS = (None, "loky", "threading", "dask")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_job(n_jobs: int, n_models: int, backend, scheduler) -> int | None:
    """Threads each job may use: ``cores // jobs running at once`` (at least 1) when more
    than one job runs on this machine; ``None`` (leave torch's default) for one job at
    a time or a remote Dask scheduler, whose workers have their own cores."""
    at_once = min(int(n_jobs), int(n_models))
    if at_once <= 1 or (backend == "dask" and scheduler is not None):
        return None
    return max(1, usable_cores() // at_once)


def run_jobs(func, jobs, n_jobs, backend, scheduler, progress, on_progress,
             desc: str = "jobs") -> list:
    """``[func(**job) for job in jobs]`` here, on joblib or on Dask; results in job order.

    Each job's ``threads`` is set here (:func:`threads_per_job`).  On joblib the jobs that
    fill whole rounds of ``n_jobs`` run ``n_jobs`` at a time on ``cores // n_jobs``
    threads each; the remainder (``len(jobs) % n_jobs``) then shares all the cores, so a
    last job never runs alone on one thread while the other cores idle.  With
    ``backend="threading"`` the jobs share one process: the cap is set once around them
    (torch's and BLAS's thread counts are per process)."""
    from tqdm.auto import tqdm

    total = len(jobs)
    bar = tqdm(total=total, desc=desc, unit="model", disable=not progress)
    rows, finished = [], [0]

    def done():
        finished[0] += 1
        bar.update(1)
        if on_progress is not None:
            on_progress(finished[0], total)

    if on_progress is not None:
        on_progress(0, total)
    try:
        if backend == "dask":
            threads = threads_per_job(n_jobs, total, backend, scheduler)
            return _run_dask(func, [{**job, "threads": threads} for job in jobs], n_jobs,
                             scheduler, lambda k: done())
        width = min(int(n_jobs), total)
        cut = total - total % width
        for part, at_once in ((jobs[:cut], width), (jobs[cut:], total - cut)):
            if not part:
                continue
            threads = threads_per_job(at_once, len(part), backend, scheduler)
            if at_once == 1:
                for job in part:
                    bar.set_postfix_str(str(job["name"]))
                    rows.append(func(**{**job, "threads": None}))
                    done()
                continue
            from joblib import Parallel, delayed

            shared = threads if backend == "threading" else None
            each = None if backend == "threading" else threads
            parallel = Parallel(n_jobs=at_once, backend=backend or "loky",
                                return_as="generator")
            with torch_threads(shared, blas=True):
                for row in parallel(delayed(func)(**{**job, "threads": each})
                                    for job in part):
                    rows.append(row)
                    done()
        return rows
    finally:
        bar.close()


def _call(func, job):
    return func(**job)


def _run_dask(func, jobs, n_jobs, scheduler, done) -> list:
    """Each job a task on a dask.distributed cluster: ``scheduler`` (address, client or
    cluster) or a local cluster of ``n_jobs`` single-threaded worker processes
    (:func:`transfer_nb._dask.dask_map`)."""
    return dask_map(_call, [(func, job) for job in jobs], scheduler, done, n_workers=n_jobs)
