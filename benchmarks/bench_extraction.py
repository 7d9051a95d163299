"""Benchmark: all-block feature extraction vs a bare forward pass, and its memory.

Run::

    .venv/bin/python benchmarks/bench_extraction.py            # defaults below
    .venv/bin/python benchmarks/bench_extraction.py --sizes 256 1024 --image-size 64

Speed
    :func:`transfer_nb.extract_features` with every default layer of EfficientNet-Lite0
    (7 blocks + penultimate, pooled in the hooks) against the same model's bare forward
    pass over the same batches under ``torch.inference_mode()``.  Printed as a ratio
    (target <= 1.15).  Timings are interleaved and the median of the repeats is kept,
    so that a noisy neighbour hurts both sides alike.

Memory
    Each (size, method) runs in a fresh subprocess so that peaks do not mix:
    after a two-batch warm-up with the same method, the peak resident set ``VmHWM`` is
    reset to the current RSS (``/proc/self/clear_refs``) and read again after the
    run; the growth is the memory the run needed beyond the steady state.  The
    numpy outputs are tracked by ``tracemalloc`` (numpy reports its allocations to it).
    A *naive* reference keeps every block's full feature map and pools at the end --
    what one writes without hooks that pool -- to show the growth that streaming avoids.
    Streaming is flat in ``n`` when its peak growth minus the outputs' bytes stays the
    same from one size to the next.  The children run with glibc's mmap threshold
    fixed (``MALLOC_MMAP_THRESHOLD_=131072``): with the default dynamic threshold the
    same run varies by tens of MiB depending on allocation history.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfer_nb.features import default_layers, extract_features, pool_features  # noqa: E402


def load_lite0() -> tuple[torch.nn.Module, str]:
    """EfficientNet-Lite0 from the library's zoo if it is there, else timm's architecture."""
    try:
        import transfer_nb
        return transfer_nb.load_model("efficientnet_lite0"), "transfer_nb.load_model"
    except Exception:  # zoo not ready or weights missing: the architecture is what counts
        import timm
        torch.manual_seed(0)
        model = timm.create_model("efficientnet_lite0", pretrained=False)
        return model.eval(), "timm (pretrained=False)"


def make_data(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def bare_forward(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])


def naive_extract(model: torch.nn.Module, x: torch.Tensor, layers: list[str],
                  batch_size: int) -> dict[str, np.ndarray]:
    """Reference without pooling in the hook: keep full maps, concatenate, then pool."""
    modules = dict(model.named_modules())
    maps: dict[str, list[torch.Tensor]] = {name: [] for name in layers if name in modules}
    handles = [modules[name].register_forward_hook(
        lambda m, a, out, name=name: maps[name].append(out)) for name in maps]
    try:
        bare_forward(model, x, batch_size)
    finally:
        for h in handles:
            h.remove()
    return {name: pool_features(torch.cat(chunks), "avg").numpy()
            for name, chunks in maps.items()}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_method(model, x, layers, batch_size, method) -> dict:
    if method == "stream":
        return extract_features(model, x, layers=layers, batch_size=batch_size,
                                progress=False)
    if method == "naive":
        return naive_extract(model, x, layers, batch_size)
    bare_forward(model, x, batch_size)
    return {}


def memory_child(n: int, size: int, batch_size: int, method: str) -> dict:
    """Run one method once in this (fresh) process and report its peak memory growth."""
    model, _ = load_lite0()
    x = make_data(n, size)
    layers = default_layers(model)
    # warm-up on two batches with the same method, so that allocator pools and kernel
    # workspaces that do not depend on n are in place before the peak is measured
    run_method(model, x[:2 * batch_size], layers, batch_size, method)
    reset = reset_peak_rss()
    base = _status_kib("VmRSS") if reset else _status_kib("VmHWM")
    tracemalloc.start()
    out = run_method(model, x, layers, batch_size, method)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"n": n, "method": method, "rss_peak_growth_mib": (_status_kib("VmHWM") - base) / 1024,
            "tracemalloc_peak_mib": traced_peak / 2**20,
            "output_mib": sum(a.nbytes for a in out.values()) / 2**20}


def time_methods(model, x, batch_size, repeats):
    """Wall and CPU seconds per method: (median, min) over interleaved repeats.

    The order of the three methods rotates from one repeat to the next, so that a
    warm cache or a burst of load from other processes does not favour one of them.
    CPU time (``time.process_time``) is the steadier figure on a shared machine.
    """
    layers = default_layers(model)
    methods = {
        "bare": lambda: bare_forward(model, x, batch_size),
        "extract": lambda: extract_features(model, x, layers=layers, batch_size=batch_size,
                                            progress=False),
        # without skipping what follows the last requested layer (the classifier here)
        "extract_full": lambda: extract_features(model, x, layers=layers,
                                                 batch_size=batch_size, progress=False,
                                                 stop_early=False),
    }
    for fn in methods.values():  # warm-up
        fn()
    wall = {k: [] for k in methods}
    cpu = {k: [] for k in methods}
    order = list(methods)
    for r in range(repeats):
        for key in order[r % 3:] + order[:r % 3]:
            t, c = time.perf_counter(), time.process_time()
            methods[key]()
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
    return ({k: (statistics.median(v), min(v)) for k, v in wall.items()},
            {k: (statistics.median(v), min(v)) for k, v in cpu.items()}, layers)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-n", type=int, default=256, help="images for the timing")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for the timing (0: torch's default)")
    parser.add_argument("--mem-repeats", type=int, default=1,
                        help="fresh subprocesses per (n, method); the median is printed")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory part")
    parser.add_argument("--child", nargs=2, metavar=("N", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(memory_child(int(args.child[0]), args.image_size, args.batch_size,
                                      args.child[1])))
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    model, source = load_lite0()
    x = make_data(args.time_n, args.image_size)
    print(f"EfficientNet-Lite0 from {source}; {torch.get_num_threads()} threads; "
          f"images {args.image_size}x{args.image_size}, batch {args.batch_size}")
    wall, cpu, layers = time_methods(model, x, args.batch_size, args.repeats)
    print(f"layers ({len(layers)}): {', '.join(layers)}")
    print(f"\nspeed, n={args.time_n}, {args.repeats} interleaved repeats "
          "(seconds: median / min):")
    labels = {"bare": "bare forward", "extract": "extract_features",
              "extract_full": "extract_features(stop_early=False)"}
    for key, label in labels.items():
        print(f"  {label:36s} wall {wall[key][0]:7.3f} / {wall[key][1]:7.3f}"
              f"   cpu {cpu[key][0]:7.3f} / {cpu[key][1]:7.3f}")
    for key in ("extract", "extract_full"):
        print(f"  ratio {labels[key]} / bare: wall median {wall[key][0] / wall['bare'][0]:.3f}, "
              f"wall min {wall[key][1] / wall['bare'][1]:.3f}, "
              f"cpu median {cpu[key][0] / cpu['bare'][0]:.3f}   (target <= 1.15)")

    if args.no_memory:
        return
    # glibc raises its mmap threshold dynamically after large frees, so whether the
    # output arrays land in the heap (fragmenting it) depends on history: fixing the
    # threshold makes the peaks reproducible from one run to the next
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_",
                                                                  "131072")}
    print(f"\nmemory (each run in a fresh subprocess, median of {args.mem_repeats}; MiB):")
    print(f"  {'n':>6} {'method':>7} {'RSS peak growth':>16} {'outputs':>8} "
          f"{'growth - outputs':>17} {'tracemalloc peak':>17}")
    for n in args.sizes:
        for method in ("bare", "stream", "naive"):
            cmd = [sys.executable, __file__, "--child", str(n), method,
                   "--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
            runs = [json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                              env=env)
                               .stdout.strip().splitlines()[-1])
                    for _ in range(args.mem_repeats)]
            res = {k: statistics.median(r[k] for r in runs)
                   for k in ("rss_peak_growth_mib", "output_mib", "tracemalloc_peak_mib")}
            print(f"  {n:>6} {method:>7} {res['rss_peak_growth_mib']:16.1f} "
                  f"{res['output_mib']:8.2f} "
                  f"{res['rss_peak_growth_mib'] - res['output_mib']:17.1f} "
                  f"{res['tracemalloc_peak_mib']:17.2f}")


if __name__ == "__main__":
    main()
