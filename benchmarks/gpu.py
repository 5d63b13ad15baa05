"""GPU training throughput: snnhw's Loihi-exact QAT on its Triton kernels vs its reference loop vs lava-dl
slayer's CUDA CUBA blocks vs snnTorch ``Synaptic``, on CUDA.

Two nets, each with random input spikes (rate 0.2), cross-entropy on output spike counts, one Adam step
per batch (forward + backward + step timed, CUDA synchronized):

* the MLP of ``benchmarks/train_throughput.py``: 64-256-256-10, batch 64, T = 20;
* a 3-layer 512-wide net: 512-512-512-512, batch 64, T = 100.

Prints samples/s, peak CUDA memory per sample (MB) and the ratios, and which snnhw path ran
(:func:`snnhw.core.neuron.exact_path` on a CUDA tensor: "triton" when triton imports). lava-dl is optional:
when it does not import, or its CUDA extension does not build, the one-line reason is printed and the
rest goes on. Without CUDA the script prints one line and exits with status 1.

    .venv/bin/python benchmarks/gpu.py [--iters 20]

Not measured yet: the session that wrote this had no GPU (docs/architecture.md says so).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import batch, kernel, slayer_step, snnhw_step, snntorch_step  # noqa: E402

NETS = (("MLP 64-256-256-10, B=64, T=20", (64, 256, 256, 10), 64, 20),
        ("3-layer 512-wide 512-512-512-512, B=64, T=100", (512, 512, 512, 512), 64, 100))
DEV = "cuda"


def on_cuda(builder, sizes, B, T):
    """``builder`` (one of train_throughput's model builders) for ``sizes`` on CUDA, bound to one batch:
    returns a no-argument training step."""
    step = builder(sizes, T, DEV)
    x, y = batch(0, B, sizes, T, DEV)
    return lambda: step(x, y)


def bench(step, B, iters, warmup=3):
    """(samples/s, peak CUDA MB per sample) of ``step``, CUDA synchronized; warm-up compiles kernels."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    rate = iters * B / (time.perf_counter() - t0)
    return rate, torch.cuda.max_memory_allocated() / B / 2 ** 20


# lava-dl may fail to import or to build its CUDA extension (a JIT C++/CUDA build needing nvcc)
OPTIONAL_FAILURES = (ImportError, RuntimeError, OSError, subprocess.CalledProcessError)


def run_net(title, sizes, B, T, iters, path):
    print(f"\n{title}")
    runs = [(f"snnhw ({path}, Loihi-exact QAT)", snnhw_step, "fused"),
            ("snnhw (reference loop)", snnhw_step, "reference"),
            ("lava-dl slayer cuba.Dense (CUDA)", slayer_step, None),
            ("snnTorch Synaptic", snntorch_step, None)]
    res = {}
    for name, make, k in runs:
        try:
            with kernel(k) if k else contextlib.nullcontext():
                res[name] = bench(on_cuda(make, sizes, B, T), B, iters)
        except OPTIONAL_FAILURES as e:
            if make is not slayer_step and not isinstance(e, ImportError):
                raise
            print(f"{name:40s} skipped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            continue
        print(f"{name:40s} {res[name][0]:10.1f} samples/s  {res[name][1]:8.2f} MB/sample peak", flush=True)
    main = runs[0][0]
    for other in runs[1:]:
        if main in res and other[0] in res:
            print(f"snnhw {path} / {other[0]:34s} = {res[main][0] / res[other[0]][0]:.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device (torch.cuda.is_available() is False); nothing measured",
              file=sys.stderr)
        return 1
    torch.manual_seed(0)
    from snnhw.core.neuron import exact_path

    with kernel("fused"):
        path = exact_path(torch.zeros(1, device=DEV))
    print(f"path that ran by default on CUDA: {path}")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    for title, sizes, B, T in NETS:
        run_net(title, sizes, B, T, a.iters, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
