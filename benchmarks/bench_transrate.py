"""TransRate: the paper's snippet (slogdet of a d x d matrix per class) vs transfer_nb.

Run from the repository root::

    .venv/bin/python benchmarks/bench_transrate.py            # full sizes (minutes)
    .venv/bin/python benchmarks/bench_transrate.py --quick    # small sizes (seconds)
    .venv/bin/python benchmarks/bench_transrate.py --threads 1  # fixed BLAS threads

For every (n, d, K) both are timed in the same run on the same float64 data and
the table prints seconds, the speed-up and the relative difference.  Targets:
relative difference <= 1e-8 everywhere, speed-up >= 50x on (2000, 8000, 10).

A second table times ``variant="projected"`` (the authors' model-selection
pipeline) against its textbook form (d x d covariance, ``pinv``, ``svd`` of a
d x d product per class, as in their ``pre_transrate_low_dim_proj``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from transfer_nb.coding_rate import transrate

FULL = [(2000, 1280, 10), (2000, 8000, 10), (5000, 2048, 100)]
QUICK = [(500, 256, 10), (400, 2000, 10), (1000, 512, 50)]


# --- the reference, as the paper prints it (Huang et al., ICML 2022) --------
def reference_coding_rate(Z, eps=1e-4):
    n, d = Z.shape
    (_, rate) = np.linalg.slogdet(np.eye(d) + 1 / (n * eps) * Z.transpose() @ Z)
    return 0.5 * rate


def reference_transrate(Z, y, eps=1e-4):
    Z = Z - np.mean(Z, axis=0, keepdims=True)
    RZ = reference_coding_rate(Z, eps)
    RZY = 0.0
    K = int(y.max() + 1)
    for i in range(K):
        RZY += reference_coding_rate(Z[(y == i).flatten()], eps)
    return RZ - RZY / K


def reference_projected(Z, y, eps=1.5e-2):
    """The authors' model-selection pipeline (use_Z_proj=True), d x d matrices."""
    n, d = Z.shape
    mu = Z.mean(0)
    covf = (Z - mu).T @ (Z - mu) / n
    covg = np.zeros((d, d))
    scatter, sizes = [], []
    for k in range(int(y.max() + 1)):
        Zk = Z[y == k]
        mk = Zk.mean(0)
        covg += len(Zk) * np.outer(mk - mu, mk - mu)
        scatter.append((Zk - mk).T @ (Zk - mk))
        sizes.append(len(Zk))
    P = np.linalg.pinv(covf, rcond=1e-10, hermitian=True) @ covg / n
    sv = np.linalg.svd(covf @ P, compute_uv=False)
    r = np.linalg.matrix_rank(covf @ P, rtol=1e-9)
    rz = 0.5 * np.sum(np.log1p(sv / eps)) / r
    rzc = sum(nk / n * 0.5 * np.sum(np.log1p(np.linalg.svd(S @ P / nk, compute_uv=False)
                                              / eps)) / r
              for S, nk in zip(scatter, sizes))
    return rz - rzc
# -----------------------------------------------------------------------------


def make_data(n, d, K, seed=0):
    """Features with class structure on a low-rank subspace plus noise (float64)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % K
    rng.shuffle(y)
    rank = min(64, d)
    means = rng.normal(size=(K, rank)) @ rng.normal(size=(rank, d)) / np.sqrt(rank)
    Z = means[y] + rng.normal(size=(n, d))
    return Z, y


def timed(fn, *args, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return out, best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--eps", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS threads for both sides (threadpoolctl); "
                             "useful on a busy machine")
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    sizes = QUICK if args.quick else FULL

    header = (f"{'n':>6} {'d':>6} {'K':>4} | {'reference s':>11} {'transfer_nb s':>13} "
              f"{'speed-up':>9} | {'rel. diff':>9} | {'TransRate':>12}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for n, d, K in sizes:
        Z, y = make_data(n, d, K)
        ref, t_ref = timed(reference_transrate, Z, y, args.eps)
        ours, t_ours = timed(transrate, Z, y, args.eps, repeat=3)
        rel = abs(ours - ref) / abs(ref)
        worst = max(worst, rel)
        print(f"{n:>6} {d:>6} {K:>4} | {t_ref:>11.3f} {t_ours:>13.3f} "
              f"{t_ref / t_ours:>8.1f}x | {rel:>9.2e} | {ours:>12.4f}", flush=True)
    print(f"\nworst relative difference: {worst:.2e} "
          f"({'OK' if worst <= 1e-8 else 'ABOVE'} the 1e-8 target)")

    print("\nvariant='projected' (eps 1.5e-2) against its textbook form")
    print(header)
    print("-" * len(header))
    worst = 0.0
    for n, d, K in sizes:
        Z, y = make_data(n, d, K)
        ref, t_ref = timed(reference_projected, Z, y, 1.5e-2)
        ours, t_ours = timed(lambda *a: transrate(*a, variant="projected"), Z, y, 1.5e-2,
                             repeat=3)
        rel = abs(ours - ref) / abs(ref)
        worst = max(worst, rel)
        print(f"{n:>6} {d:>6} {K:>4} | {t_ref:>11.3f} {t_ours:>13.3f} "
              f"{t_ref / t_ours:>8.1f}x | {rel:>9.2e} | {ours:>12.4f}", flush=True)
    print(f"\nworst relative difference (projected): {worst:.2e}")


if __name__ == "__main__":
    main()
