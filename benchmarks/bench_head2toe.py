"""Head2Toe selection vs fine-tuning the whole network: time and peak memory.

On one target (textures by default), with EfficientNet-Lite0's ImageNet weights:

* **Head2Toe**: the all-layer feature extraction (one forward pass over the training
  images) plus the group-lasso selection head and the final head on the kept fraction;
* **fine-tuning**: every layer trained with a new head on the same images
  (:func:`transfer_nb.training.transfer.fine_tune`, the same number of epochs the experiment
  uses).

Peak memory: the process's peak resident set (``VmHWM``, torch's CPU tensors
included) above the resident set at the start of each measurement; the peak is reset
before each one (``/proc/self/clear_refs``, Linux), so the two are measured
independently.  Python allocations alone (``tracemalloc``: numpy arrays, Python
objects) are printed beside.  Timings on a shared machine are inflated by
contention; the ratio is what to read.

    PYTHONPATH=. python benchmarks/bench_head2toe.py [--target textures] [--per-class 10]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def _status_kib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")  # pragma: no cover - not Linux


def _measure(fn):
    """``(value, seconds, python peak MiB, resident-set peak growth MiB)`` of ``fn()``."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set to the current one
    except OSError:  # pragma: no cover - not Linux
        pass
    rss0 = _status_kib("VmRSS")
    tracemalloc.start()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _status_kib("VmHWM") - rss0
    return value, seconds, peak / 2**20, max(rss, 0.0) / 2**10


def main(argv=None) -> int:
    from torch.utils.data import Subset

    from transfer_nb.data import load_dataset
    from transfer_nb.data.base import stratified_subsample
    from transfer_nb.head2toe import Head2Toe, head2toe_features
    from transfer_nb.models import load_model
    from transfer_nb.training.transfer import fine_tune

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", default="textures")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--features-per-layer", type=int, default=8192)
    p.add_argument("--keep-fraction", type=float, default=0.1)
    p.add_argument("--head-steps", type=int, default=300)
    p.add_argument("--ft-epochs", type=int, default=10)
    args = p.parse_args(argv)

    model = load_model("efficientnet_lite0", pretrained=True)
    pool = load_dataset(args.target, split="train", image_size=args.image_size,
                        normalize="lite")
    y_pool = np.asarray(pool.targets)
    idx = stratified_subsample(y_pool, args.per_class * len(np.unique(y_pool)), 0)
    train = Subset(pool, idx.tolist())
    y = y_pool[idx]

    def head2toe():
        feats = head2toe_features(model, train, target=args.features_per_layer, device="cpu")
        m = Head2Toe(args.keep_fraction, steps=args.head_steps, seed=0).fit(feats, y)
        return sum(f.shape[1] for f in feats.values()), m

    def finetune():
        return fine_tune(model, train, train, epochs=args.ft_epochs, lr=0.01, batch_size=10,
                         seed=0, progress=False, device="cpu", freeze_bn_stats=True)

    (dim, m), t_h, py_h, rss_h = _measure(head2toe)
    ft, t_f, py_f, rss_f = _measure(finetune)
    print(f"target {args.target}: {len(idx)} training images at {args.image_size}px, "
          f"{dim} Head2Toe features ({len(m.selected_)} kept)")
    print(f"{'':28s}{'time (s)':>10s}{'python peak (MiB)':>20s}{'RSS growth (MiB)':>18s}")
    print(f"{'Head2Toe (extract+select)':28s}{t_h:10.2f}{py_h:20.1f}{rss_h:18.1f}")
    print(f"{'fine-tuning (all layers)':28s}{t_f:10.2f}{py_f:20.1f}{rss_f:18.1f}")
    print(f"ratio fine-tuning / Head2Toe: time {t_f / t_h:.2f}x, resident-set peak "
          f"{rss_f / max(rss_h, 1e-9):.2f}x "
          f"({ft['steps']} SGD steps through the network vs {m.fit_steps_} head steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
