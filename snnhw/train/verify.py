"""Verification: the same samples through snnhw's fixed-point core and through Lava (or netx-on-Lava).

The torch side is :func:`snnhw.core.network.simulate` on the run's quantized spec. The Lava side is
:func:`snnhw.backends.lava.run_lava` (Lava's CPU simulator, or Loihi 2 when lava-loihi is installed;
the result says which ran), or, with ``backend="netx"``, lava-dl's own ``netx.hdf5.Network`` loading
the run's ``model.net`` (:func:`snnhw.io.netx.run_netx_lava`). Lava is imported only here, lazily.
Output spikes are [samples, steps, outputs], index t-1 = time step t (Lava's RingBuffer sink).
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from snnhw.core.network import simulate
from snnhw.errors import InputError
from snnhw.spec import NetworkSpec
from snnhw.train.evaluate import predict

BACKENDS = ("lava", "netx")


def torch_outputs(spec: NetworkSpec, inputs: np.ndarray):
    """(output spikes uint8 [S, T, out], per-layer spike arrays) of the core's simulation."""
    res = simulate(spec, inputs)
    return (res.output.numpy() != 0).astype(np.uint8), [(s.numpy() != 0) for s in res.layer_spikes]


def lava_outputs(spec: NetworkSpec, inputs: np.ndarray, backend: str = "lava", netx_path: Optional[str] = None):
    """(output spikes uint8, per-layer spikes or None, backend name) from Lava."""
    if backend not in BACKENDS:
        raise InputError(f"unknown verification backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if backend == "netx":
        from snnhw.backends.netx_lava import run_netx_lava

        if not netx_path:
            raise InputError("the netx backend needs the run's model.net")
        out = run_netx_lava(netx_path, inputs)
        return (out != 0).astype(np.uint8), None, "lava-dl-netx-cpu-sim"
    from snnhw.backends.lava import run_lava

    res = run_lava(spec, inputs)
    return ((res.output != 0).astype(np.uint8), [(s != 0) for s in res.layer_spikes], res.backend)


def compare(torch_out: np.ndarray, lava_out: np.ndarray, labels: np.ndarray) -> Dict:
    """Agreement of two output spike arrays and the accuracies of their class decisions."""
    if torch_out.shape != lava_out.shape:
        raise InputError(f"output shapes differ: torch {torch_out.shape} vs lava {lava_out.shape}")
    pt, pl = predict(torch_out), predict(lava_out)
    return {"output_spikes": float(np.mean(torch_out == lava_out)) if torch_out.size else 1.0,
            "predictions": float(np.mean(pt == pl)) if len(pt) else 1.0,
            "identical_samples": int(np.sum(np.all(torch_out == lava_out, axis=(1, 2)))),
            "torch_accuracy": float(np.mean(pt == labels)), "lava_accuracy": float(np.mean(pl == labels))}


def verify(spec: NetworkSpec, inputs: np.ndarray, labels: np.ndarray, backend: str = "lava",
           netx_path: Optional[str] = None) -> Dict:
    """Run both sides and compare; returns arrays and numbers (see :func:`compare`)."""
    t0 = time.time()
    tout, tlayers = torch_outputs(spec, inputs)
    t1 = time.time()
    lout, llayers, name = lava_outputs(spec, inputs, backend, netx_path)
    t2 = time.time()
    cmp = compare(tout, lout, labels)
    return {"torch_output": tout, "lava_output": lout, "torch_layers": tlayers, "lava_layers": llayers,
            "backend": name, "samples": int(len(inputs)), "torch_seconds": t1 - t0, "lava_seconds": t2 - t1,
            **cmp}
