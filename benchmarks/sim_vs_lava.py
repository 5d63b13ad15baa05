"""Benchmark: the torch core vs Lava's fixed-point CPU simulator on the same network and inputs.

For each network: random Lava-representable weights, biases and decays (seeded), Bernoulli input
spikes. Lava runs a few samples three ways: plain (one run per sample, every LIF into a RingBuffer sink
read back with Lava's ``Var.get``), ``run_lava`` one sample per run (file recorders), and ``run_lava``
with all samples side by side in one run (see :mod:`snnhw.backends.lava`). The core runs more samples in
one batch, on its default path (the fused numba neuron loop) and on the reference loop
(``SNNHW_KERNEL=reference``). The spikes of every layer are checked identical on the samples both ran
(and fused = reference on all core samples); then it prints
sample*steps per second for each and the ratios (the core's default path and its reference loop: best of
3 runs each, interleaved; Lava: one run each). No assertion on timings: this is a measurement.

The core uses torch's default thread count (all cores; ``--threads 1`` for one). Lava's simulator is not
confined either: it runs every process of the network, and its runtime, as separate OS processes.

Measured 2026-12-02 21:29-21:31 UTC on the idle 2-core machine (load < 1; commit 6d681ca), spikes
identical in every layer (4 Lava samples vs the core, and fused = reference on all core samples):

    net                  threads  core sample*steps/s  fused/ref  Lava plain  core / Lava plain
    4 x 200 LIF, T=100      2          225,601          2.98x       36.4          6193x
    784-1000-1000-10        2           32,066          1.52x       23.6          1361x
    4 x 200 LIF, T=100      1          152,844          2.71x       35.9          4259x
    784-1000-1000-10        1           23,622          1.68x       26.0           910x

So the 1000x goal holds on both nets with the default (2 threads); with one thread the bigger MLP stays
just under it. What is left in the core there: its dense float32 matrix products are ~85 % of its time
(cProfile: matmul 1.42 s, the numba neuron kernel 0.17 s, of 1.70 s, one thread), so only fewer FLOPs
(event-driven sums over the ~10-30 % active inputs) or more threads move it. The exact synapse makes
no int64 passes (it sums, floors and delays in float32 where
:func:`snnhw.core.synapse.exact_input_float` proves that exact). An earlier run on the loaded machine
(19:13 UTC, load 10-15, one thread) gave 4848x and 901x.

    .venv/bin/python benchmarks/sim_vs_lava.py            # 4 x 200 LIF, T=100, and 784-1000-1000-10
    .venv/bin/python benchmarks/sim_vs_lava.py --quick    # fewer samples
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnhw import loihi  # noqa: E402
from snnhw.backends.lava import lava_available, run_lava, run_stages, spec_stages  # noqa: E402
from snnhw.core.network import simulate  # noqa: E402
from snnhw.core.neuron import exact_path  # noqa: E402
from snnhw.spec import Dense, NetworkSpec, Neuron  # noqa: E402


def random_net(sizes, seed: int) -> NetworkSpec:
    """A dense chain ``sizes[0] -> sizes[1] -> ...`` with weights scaled to keep layers active."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.normal(0, 2.5 * 255 / np.sqrt(n_in), (n_out, n_in)).round().clip(-256, 255)
        w, _ = loihi.dense_effective_weights(w)
        layers.append(Dense(f"l{i}", w, Neuron(i_decay=int(rng.integers(256, 2048)),
                                               v_decay=int(rng.integers(64, 1024)), vth_mant=int(rng.integers(40, 120))),
                            weight_exp=0, bias_mant=rng.integers(-8, 16, n_out)))
    return NetworkSpec((sizes[0],), layers).validate()


def bench(name: str, sizes, T: int, lava_samples: int, core_samples: int, seed: int = 0, threads: int = 0):
    """A generator: the first ``next`` times the core, the second runs Lava, compares and prints."""
    spec = random_net(sizes, seed)
    rng = np.random.default_rng(seed + 1)
    x = (rng.random((max(lava_samples, core_samples), T, sizes[0])) < 0.1).astype(np.int64)
    xl = x[:lava_samples]

    if threads:
        torch.set_num_threads(threads)
    # The core runs before Lava: after Lava's in-process runs, numba's kernel measured ~13x slower in the
    # same process (its OpenMP worker threads are gone; cause not found), which is a benchmark artifact.
    simulate(spec, x[:2])  # warm-up (and the numba kernel's first load)
    path = exact_path(torch.zeros(1))
    t_core = t_ref = float("inf")
    for _ in range(3):  # interleaved, best of 3 each: a burst of load (or Lava's processes still
        t = time.perf_counter()  # winding down) should not decide the figures
        core = simulate(spec, x[:core_samples])
        t_core = min(t_core, time.perf_counter() - t)
        os.environ["SNNHW_KERNEL"] = "reference"
        try:
            t = time.perf_counter()
            ref = simulate(spec, x[:core_samples])
            t_ref = min(t_ref, time.perf_counter() - t)
        finally:
            os.environ.pop("SNNHW_KERNEL")
    yield  # main() times every net's core before any Lava run

    t = time.perf_counter()
    plain = [run_stages(spec_stages(spec, 1)[0], xl[i].T, probes="lava") for i in range(lava_samples)]
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    per_run = [run_lava(spec, xl[i:i + 1], batch=1) for i in range(lava_samples)]
    t_lava1 = time.perf_counter() - t
    t = time.perf_counter()
    packed = run_lava(spec, xl, batch=lava_samples)
    t_lavak = time.perf_counter() - t

    same = all(np.array_equal(np.stack([p[i].s.T for p in plain]), packed.layer_spikes[i])
               for i in range(len(sizes) - 1))
    same &= all(np.array_equal(np.concatenate([r.layer_spikes[i] for r in per_run]), packed.layer_spikes[i])
               and np.array_equal(packed.layer_spikes[i], core.layer_spikes[i][:lava_samples].numpy().astype(np.int64))
               for i in range(len(sizes) - 1))
    same &= all(torch.equal(a, b) for a, b in zip(core.layer_spikes, ref.layer_spikes))
    rates = [float(core.layer_spikes[i][:lava_samples].mean()) for i in range(len(sizes) - 1)]
    r0 = lava_samples * T / t_plain
    r1 = lava_samples * T / t_lava1
    rk = lava_samples * T / t_lavak
    rc = core_samples * T / t_core
    print(f"\n== {name}: {'-'.join(map(str, sizes))}, T={T} ==")
    print(f"spikes identical (all layers, {lava_samples} samples, every Lava variant = core; "
          f"core {path} = core reference on all {core_samples}): {same}")
    print("spike rates per layer: " + ", ".join(f"{r:.3f}" for r in rates))
    print(f"Lava CPU sim, plain (RingBuffer sinks, Var.get), 1 sample per run: {r0:10.1f} sample*steps/s  "
          f"({lava_samples} runs, {t_plain:.2f} s)")
    print(f"Lava CPU sim, snnhw run_lava, 1 sample per run: {r1:10.1f} sample*steps/s  "
          f"({lava_samples} runs, {t_lava1:.2f} s)")
    print(f"Lava CPU sim, snnhw run_lava, {lava_samples} samples packed in 1 run: {rk:10.1f} sample*steps/s  "
          f"({t_lavak:.2f} s)")
    print(f"core (torch, batch {core_samples}, {torch.get_num_threads()} threads): {rc:10.1f} sample*steps/s  "
          f"({t_core:.2f} s)")
    rr = core_samples * T / t_ref
    print(f"core reference loop (SNNHW_KERNEL=reference, same batch): {rr:10.1f} sample*steps/s  "
          f"({t_ref:.2f} s)")
    print(f"core path that ran by default: {path};  {path} / reference loop: {rc / rr:.2f}x")
    print(f"ratio core / Lava plain      : {rc / r0:10.1f}x")
    print(f"ratio core / run_lava 1/run  : {rc / r1:10.1f}x")
    print(f"ratio core / run_lava packed : {rc / rk:10.1f}x")
    if not same:
        raise SystemExit("MISMATCH between the core and Lava")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0: torch's default, all cores. On a shared/oversubscribed CPU, "
                        "torch's multi-threaded int64 ops can be 50x slower than one thread)")
    args = p.parse_args(argv)
    if not lava_available():
        print("lava-nc is not installed: nothing to compare against", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    q = args.quick
    runs = [bench("4 x 200 LIF", [200, 200, 200, 200, 200], 100, 2 if q else 4, 64 if q else 1024, threads=args.threads),
            bench("bigger MLP", [784, 1000, 1000, 10], 100, 2 if q else 4, 32 if q else 256, threads=args.threads)]
    for r in runs:  # the core of every net first (see bench), then Lava and the comparison
        next(r)
    for r in runs:
        next(r, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
