"""Benchmark: every classification score against LogME on the same (2000, 1280) features.

Run from the repository root (inside the team's CPU lock)::

    .venv/bin/python benchmarks/bench_estimators.py               # real features
    .venv/bin/python benchmarks/bench_estimators.py --synthetic   # no model needed
    .venv/bin/python benchmarks/bench_estimators.py --all         # every feature score

Features
    By default the penultimate features (1280-d) of ImageNet EfficientNet-Lite0 on the
    2000 rendered glyphs of the embedded ``glyphs`` set (10 classes, 64 px), extracted
    once (cached) and not timed: real features, with the decaying spectrum that decides
    how many PCA components N-LEEP keeps.  ``--synthetic``: class means on a 64-d
    subspace plus noise with a power-law spectrum, also 2000 x 1280, 10 classes.

Timing
    Each score is run ``--repeats`` times in this process, interleaved with LogME, and
    the best time of each is kept; the table prints seconds and the ratio to LogME's
    best.  A score more than 10x slower than LogME says why in its docstring.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfer_nb.estimators import registry  # noqa: E402

NEW = ("knn", "nleep", "gbc", "parc", "sfda", "etran", "ncti")


def real_features(n: int = 2000, image_size: int = 64):
    """EfficientNet-Lite0 penultimate features of ``n`` glyph images and their labels."""
    import torch

    from transfer_nb.data import load_dataset
    from transfer_nb.features import extract_features
    from transfer_nb.models import load_model

    torch.manual_seed(0)
    model = load_model("efficientnet_lite0", pretrained=True)
    data = load_dataset("glyphs", split="all", n=n, image_size=image_size, seed=0,
                        normalize=getattr(model, "transfer_nb_normalize", "none") or "none")
    feats = extract_features(model, data, layers=["penultimate"], cache=True, progress=False)
    return np.asarray(feats["penultimate"], dtype=np.float64), np.asarray(data.targets)


def synthetic_features(n: int = 2000, d: int = 1280, k: int = 10, seed: int = 0):
    """Class structure on a 64-d subspace plus noise whose variances fall as 1/i."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    means = rng.normal(size=(k, 64)) @ rng.normal(size=(64, d)) / 8.0
    noise = rng.normal(size=(n, d)) * np.sqrt(1.0 / np.arange(1, d + 1)) * 4.0
    return means[y] + noise, y


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(best seconds, value) of ``repeats`` calls."""
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true", help="synthetic features, no model")
    ap.add_argument("--all", action="store_true",
                    help="time every registered (features, labels) score, not only the newer seven")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    Z, y = synthetic_features() if args.synthetic else real_features()
    source = "synthetic" if args.synthetic else "EfficientNet-Lite0 penultimate, glyphs 64 px"
    print(f"features: {Z.shape[0]} x {Z.shape[1]} ({source}), {len(np.unique(y))} classes; "
          f"prepared in {time.perf_counter() - t0:.1f} s")
    names = [n for n in registry.list_estimators("features")
             if registry.get(n).inputs == ("features", "labels") and n != "logme"]
    if not args.all:
        names = [n for n in names if n in NEW]
    logme = registry.get("logme").func
    rows, logme_times = [], []
    for name in names:
        fn = registry.get(name).func
        t_logme, logme_value = best_time(lambda: logme(Z, y), args.repeats)
        t, value = best_time(lambda: fn(Z, y), args.repeats)
        logme_times.append(t_logme)
        rows.append((name, t, value))
    t_ref = min(logme_times)
    print(f"\n{'score':<22}{'seconds':>10}{'x LogME':>10}{'value':>14}")
    print(f"{'logme':<22}{t_ref:>10.3f}{1.0:>10.2f}{logme_value:>14.5g}")
    for name, t, value in rows:
        flag = "  (> 10x: see its docstring)" if t > 10 * t_ref else ""
        print(f"{name:<22}{t:>10.3f}{t / t_ref:>10.2f}{value:>14.5g}{flag}")


if __name__ == "__main__":
    main()
