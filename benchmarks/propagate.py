"""Time the deep-chain propagation study against its floor: the bare matrix multiplications it contains.

    .venv/bin/python benchmarks/propagate.py                      # 100 x 1000, T = 20, float-soft + loihi2
    .venv/bin/python benchmarks/propagate.py --repeats 20 --batch 10 --threads 2 --out bench.json

For each semantics the study (one init, default ``micheli`` for float and ``hardware`` for loihi2) is
timed end to end (weight generation, rounding, synapse, neuron recurrence, statistics); the floor is
the same number of float32 matrix products of the same shapes ([batch*steps, width] x [width, width]
per layer and repeat) on pre-generated matrices. The ratio study/floor says how far the study is from
the cost of its linear algebra; a second column adds the cost of drawing the fresh weight matrices
(standard normals), which every repeat needs and which dominates when batch*steps is small.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnhw.init.propagate import propagate, write_json  # noqa: E402


def floor_seconds(layers: int, width: int, steps: int, repeats: int, batch: int, reps: int = 3) -> float:
    """Time of ``layers * repeats`` products [batch*steps, width] x [width, width] (float32), best of ``reps``
    passes over one layer's matrices (the cost does not depend on the values)."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(repeats, width, width, generator=g)
    s = (torch.rand(repeats, batch * steps, width, generator=g) < 0.15).to(torch.float32)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(layers):
            torch.matmul(s, W.transpose(1, 2))
        best = min(best, time.perf_counter() - t)
    return best


def randn_seconds(layers: int, width: int, repeats: int) -> float:
    """Time to draw the study's weights (``layers`` x [repeats, width, width] standard normals, float32):
    a second floor, since every repeat needs fresh matrices."""
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(layers):
        torch.randn(repeats, width, width, generator=g)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=100)
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--semantics", default="float-soft,loihi2")
    p.add_argument("--float-init", default="micheli")
    p.add_argument("--loihi-init", default="hardware")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    fl = floor_seconds(a.layers, a.width, a.steps, a.repeats, a.batch)
    rn = randn_seconds(a.layers, a.width, a.repeats)
    for sem in [s for s in a.semantics.split(",") if s]:
        init = a.loihi_init if sem == "loihi2" else a.float_init
        t = time.perf_counter()
        propagate(layers=a.layers, widths=[a.width], steps=a.steps, repeats=a.repeats, batch=a.batch,
                  inits=[init], semantics=sem, seed=0)
        study = time.perf_counter() - t
        rows.append({"semantics": sem, "init": init, "study_s": study, "floor_s": fl, "ratio": study / fl,
                     "randn_s": rn, "ratio_to_matmul_plus_randn": study / (fl + rn)})
    print(f"{a.layers} layers x {a.width} neurons, T={a.steps}, {a.repeats} repeats x {a.batch} samples, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'semantics':<12}{'init':<12}{'study s':>10}{'matmul floor s':>16}{'ratio':>8}"
          f"{'+randn s':>10}{'ratio':>8}")
    for r in rows:
        print(f"{r['semantics']:<12}{r['init']:<12}{r['study_s']:>10.2f}{r['floor_s']:>16.2f}{r['ratio']:>8.1f}"
              f"{r['floor_s'] + r['randn_s']:>10.2f}{r['ratio_to_matmul_plus_randn']:>8.1f}")
    if a.out:
        write_json({"config": vars(a), "rows": rows}, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
