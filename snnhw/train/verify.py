"""Verification: the same samples through snnhw's fixed-point core and through Lava (or netx-on-Lava),
or, without Lava, the artifact round trip (:func:`artifact_roundtrip`).

The torch side is :func:`snnhw.core.network.simulate` on the run's quantized spec. The Lava side is
:func:`snnhw.backends.lava.run_lava` (Lava's CPU simulator, or Loihi 2 when lava-loihi is installed;
the result says which ran), or, with ``backend="netx"``, lava-dl's own ``netx.hdf5.Network`` loading
the run's ``model.net`` (:func:`snnhw.io.netx.run_netx_lava`). Lava is imported only here, lazily.
Output spikes are [samples, steps, outputs], index t-1 = time step t (Lava's RingBuffer sink).

The round trip re-reads the run's ``model.net`` and ``model.nir`` through snnhw's own readers
(:func:`snnhw.io.netx.read_netx`, :func:`snnhw.io.nir.read_nir_spec`) and re-simulates them on the core:
both must reproduce the trained network's output spikes exactly (and, for a voltage readout, the output
layer's v at every step; on Lava too, where the v is read back each step). A difference, or a written file
that cannot be read back, is a bug in snnhw's writers or readers, not something a user caused: it
raises :class:`RoundTripMismatch`, an internal error (a ``RuntimeError``: the CLI prints it with
its traceback and exits 1), and the run directory is not published.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from snnhw.core.network import simulate
from snnhw.errors import FileFormatError, InputError
from snnhw.report.schema import VERIFY_LAVA_CPU, VERIFY_LOIHI2, VERIFY_NETX, ArtifactRoundTrip
from snnhw.spec import NetworkSpec
from snnhw.train.evaluate import predict

BACKENDS = ("lava", "netx")
#: report.json ``verification`` for the backend name a Lava run returns (``LavaResult.backend``, or
#: :func:`lava_outputs`'s name for netx).
LAVA_VERIFICATION = {"lava-cpu-sim": VERIFY_LAVA_CPU, "loihi2": VERIFY_LOIHI2, "lava-dl-netx-cpu-sim": VERIFY_NETX}


def verification_name(lava_backend: str) -> str:
    """The ``verification`` value of a Lava run whose backend was ``lava_backend``."""
    return LAVA_VERIFICATION[lava_backend]


class RoundTripMismatch(RuntimeError):
    """A file this run wrote does not reproduce the trained network: an internal error (a bug)."""


def torch_outputs(spec: NetworkSpec, inputs: np.ndarray, voltage: bool = False):
    """(output spikes uint8 [S, T, out], per-layer spike arrays, the output layer's post-reset v int64
    [S, T, out] when ``voltage`` else None) of the core's simulation."""
    res = simulate(spec, inputs, record=voltage)
    v = res.traces[-1].v.numpy().astype(np.int64) if voltage else None
    return (res.output.numpy() != 0).astype(np.uint8), [(s.numpy() != 0) for s in res.layer_spikes], v


def lava_outputs(spec: NetworkSpec, inputs: np.ndarray, backend: str = "lava", netx_path: Optional[str] = None,
                 voltage: bool = False):
    """(output spikes uint8, per-layer spikes or None, backend name, the output layer's v int64 read back
    from Lava each step when ``voltage`` else None)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown verification backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if backend == "netx":
        from snnhw.backends.netx_lava import run_netx_lava

        if not netx_path:
            raise InputError("the netx backend needs the run's model.net")
        if voltage:
            raise InputError("the netx backend reads output spikes only; a voltage readout is verified on "
                             "snnhw's Lava network (--backend lava)")
        out = run_netx_lava(netx_path, inputs)
        return (out != 0).astype(np.uint8), None, "lava-dl-netx-cpu-sim", None
    from snnhw.backends.lava import run_lava

    res = run_lava(spec, inputs, record=voltage, hardware=False if voltage else None)
    v = np.asarray(res.traces[-1][1], dtype=np.int64) if voltage else None
    return ((res.output != 0).astype(np.uint8), [(s != 0) for s in res.layer_spikes], res.backend, v)


def output_match(a: np.ndarray, b: np.ndarray, a_v: Optional[np.ndarray] = None,
                 b_v: Optional[np.ndarray] = None) -> Dict:
    """How two runs' outputs [samples, steps, outputs] match: ``output_spikes`` (fraction of equal spike
    entries), ``identical_samples`` (samples whose spikes — and, with the v traces ``a_v``/``b_v`` of a
    voltage readout, whose whole v trace — are identical) and ``output_voltage`` (that count as a
    fraction; None without v traces)."""
    same = np.all(a == b, axis=(1, 2))
    if a_v is not None:
        same = same & np.all(a_v == b_v, axis=(1, 2))
    return {"output_spikes": float(np.mean(a == b)) if a.size else 1.0, "identical_samples": int(np.sum(same)),
            "output_voltage": None if a_v is None else float(np.mean(same)) if len(same) else 1.0}


def compare(torch_out: np.ndarray, lava_out: np.ndarray, labels: np.ndarray, torch_v: Optional[np.ndarray] = None,
            lava_v: Optional[np.ndarray] = None) -> Dict:
    """Agreement of two output spike arrays and the accuracies of their class decisions; with the output
    v traces of a voltage readout, ``output_voltage`` (the fraction of samples whose whole v trace is
    identical) and the decisions of :func:`predict` on v."""
    if torch_out.shape != lava_out.shape:
        raise InputError(f"output shapes differ: torch {torch_out.shape} vs lava {lava_out.shape}")
    voltage = torch_v is not None
    if voltage and torch_v.shape != lava_v.shape:
        raise InputError(f"output v shapes differ: torch {torch_v.shape} vs lava {lava_v.shape}")
    pt, pl = (predict(torch_v, "voltage"), predict(lava_v, "voltage")) if voltage else (predict(torch_out),
                                                                                       predict(lava_out))
    return {**output_match(torch_out, lava_out, torch_v, lava_v),
            "predictions": float(np.mean(pt == pl)) if len(pt) else 1.0,
            "torch_accuracy": float(np.mean(pt == labels)), "lava_accuracy": float(np.mean(pl == labels)),
            "readout": "voltage" if voltage else "spikes"}


def verify(spec: NetworkSpec, inputs: np.ndarray, labels: np.ndarray, backend: str = "lava",
           netx_path: Optional[str] = None) -> Dict:
    """Run both sides and compare (see :func:`compare`; a voltage readout, ``spec.readout``, also
    compares the output layer's v per step); returns arrays and numbers."""
    voltage = spec.readout == "voltage"
    t0 = time.time()
    tout, tlayers, tv = torch_outputs(spec, inputs, voltage)
    t1 = time.time()
    lout, llayers, name, lv = lava_outputs(spec, inputs, backend, netx_path, voltage)
    t2 = time.time()
    cmp = compare(tout, lout, labels, tv, lv)
    return {"torch_output": tout, "lava_output": lout, "torch_layers": tlayers, "lava_layers": llayers,
            "torch_voltage": tv, "lava_voltage": lv, "backend": name, "samples": int(len(inputs)),
            "torch_seconds": t1 - t0, "lava_seconds": t2 - t1, **cmp}


def _read_netx(path: str) -> NetworkSpec:
    from snnhw.io.netx import read_netx

    return read_netx(path)


def _read_nir(path: str) -> NetworkSpec:
    from snnhw.io.nir import read_nir_spec

    return read_nir_spec(path)


#: artifact file name -> (the reader's public name, the reader)
READERS: Dict[str, Tuple[str, Callable[[str], NetworkSpec]]] = {
    "model.net": ("snnhw.io.netx.read_netx", _read_netx),
    "model.nir": ("snnhw.io.nir.read_nir_spec", _read_nir),
}


def roundtrip_one(path: str, inputs: np.ndarray, expected: np.ndarray,
                  expected_v: Optional[np.ndarray] = None) -> ArtifactRoundTrip:
    """``path`` read back by its snnhw reader and simulated on ``inputs`` (uint8 0/1 [S, T, in]),
    compared with ``expected`` (uint8 [S, T, out]) and, for a voltage readout, the output layer's v
    ``expected_v`` (int64 [S, T, out]): a sample is identical when its spikes and v trace are. A file
    that cannot be read back raises :class:`RoundTripMismatch`."""
    name = os.path.basename(path)
    reader, read = READERS[name]
    try:
        spec = read(path)
    except FileFormatError as e:
        raise RoundTripMismatch(f"internal error: {name} written by this run cannot be re-read by {reader}: "
                                f"{str(e).splitlines()[0]}") from e
    got, _, got_v = torch_outputs(spec, inputs, voltage=expected_v is not None)
    if got.shape != expected.shape:
        raise RoundTripMismatch(f"internal error: {name} re-read by {reader} gives output spikes {got.shape}, "
                                f"the trained network {expected.shape}")
    m = output_match(got, expected, got_v, expected_v)
    return ArtifactRoundTrip(artifact=name, reader=reader, samples=int(len(inputs)),
                             exact=m["identical_samples"] == len(inputs), **m)


def artifact_roundtrip(run_dir: str, artifacts: List[str], inputs: np.ndarray, expected: np.ndarray,
                       expected_v: Optional[np.ndarray] = None) -> List[ArtifactRoundTrip]:
    """Each of ``artifacts`` (file names in ``run_dir``, from :data:`READERS`) re-read and re-simulated
    (:func:`roundtrip_one`); raises :class:`RoundTripMismatch` naming every file that is not exact (one line)."""
    results = [roundtrip_one(os.path.join(run_dir, a), inputs, expected, expected_v) for a in artifacts]
    bad = [r for r in results if not r.exact]
    if bad:
        raise RoundTripMismatch("internal error: artifact round trip differs from the trained network: " + "; ".join(
            f"{r.artifact} (re-read by {r.reader}) on {r.samples - r.identical_samples}/{r.samples} samples"
            for r in bad) + f" (unpublished run kept in {run_dir})")
    return results
