"""Run a :class:`~snnhw.spec.NetworkSpec` on Lava: the reference the torch core is checked against.

:func:`run_lava` runs every sample of an input array through Lava's bit-accurate CPU models
(``Loihi2SimCfg(select_tag="fixed_pt")``), or through Loihi 2 when lava-loihi is installed
(:func:`loihi2_hardware_available`), and returns the core's layout (:class:`LavaResult`). Parameters go
to Lava in its own units (see :mod:`snnhw.loihi`): ``du = i_decay - 1``, ``dv = v_decay``,
``vth = vth_mant``, ``bias_mant``/``bias_exp`` per neuron, Dense ``weights`` (the spec's effective 8-bit
mantissas, which Lava's clip/truncate leaves unchanged), ``weight_exp`` on the sum.

The Lava backend is four modules:

* :mod:`snnhw.backends.lava` (this one): the entry point, batching over samples;
* :mod:`snnhw.backends.lava_pack`: a spec as Lava stages holding K samples side by side (block-diagonal
  synapses), the Conv/SumPool mapping and its exactness conditions;
* :mod:`snnhw.backends.lava_stages`: :class:`LavaStage` and :func:`run_stages` (build the processes,
  run, read the results back through :mod:`snnhw.backends.lava_procs` recorders);
* :mod:`snnhw.backends.lava_runtime`: whether Lava is installed, the run configuration.

Only :mod:`snnhw.backends` imports ``lava``, lazily inside functions: this module imports without it.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from snnhw.backends.lava_pack import (MAX_CONV_GROUPS, add_self_reset, conv_batch_cap, default_batch, from_lava_layout,
                                      spec_stages, to_lava_layout)
from snnhw.backends.lava_runtime import (lava_available, loihi2_hardware_available, require_hardware,
                                         require_lava)
from snnhw.backends.lava_stages import LavaStage, LavaSynapse, StageOutput, run_stages
from snnhw.errors import InputError
from snnhw.spec import Dense, NetworkSpec

__all__ = ["BACKEND_HW", "BACKEND_SIM", "LavaResult", "LavaStage", "LavaSynapse", "StageOutput",
           "lava_available", "loihi2_hardware_available", "run_lava", "run_stages", "spec_stages"]

BACKEND_SIM = "lava-cpu-sim"
BACKEND_HW = "loihi2"


class LavaResult(NamedTuple):
    """What a Lava run returns, in the torch core's layout.

    ``output``: int64 [samples, steps, outputs], the last LIF's spikes (index t-1 = time step t, as
    Lava's RingBuffer sink stores them). ``layer_spikes``: one such array per neuron layer. ``traces``:
    with ``record=True`` a list of (u, v) int64 arrays [samples, steps, neurons] per neuron layer
    (24-bit state values; v after the reset, as Lava's Monitor reads it), else ``None``.
    ``backend``: ``"lava-cpu-sim"`` or ``"loihi2"``.
    """

    output: np.ndarray
    layer_spikes: List[np.ndarray]
    traces: Optional[List[Tuple[np.ndarray, np.ndarray]]]
    backend: str


def _check_inputs(spec: NetworkSpec, x) -> np.ndarray:
    """``x`` as int64 [samples, steps, n_in]: 0/1 spikes (nonzero -> 1), or payloads for a graded
    first layer; one-line errors."""
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if x.ndim != 3 or x.shape[2] != spec.n_in:
        raise InputError(f"inputs must be shaped [samples, steps, {spec.n_in}], got {tuple(x.shape)}")
    if x.size and not np.all(np.equal(np.mod(x, 1), 0)):
        raise InputError("inputs must be integers (0/1 spikes or integer graded payloads)")
    graded = isinstance(spec.layers[0], Dense) and spec.layers[0].graded_input
    x = x.astype(np.int64)
    if not graded:
        x = (x != 0).astype(np.int64)
    if x.shape[1] < 1:
        raise InputError("inputs need at least one time step")
    return x


def _batch_size(spec: NetworkSpec, batch: Optional[int], n: int) -> int:
    """Samples per Lava run: ``batch`` if given (checked), else :func:`default_batch`."""
    if batch is None:
        return default_batch(spec, max(n, 1))
    if int(batch) < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    cap = conv_batch_cap(spec)
    if cap is not None and int(batch) > cap:
        raise InputError(f"batch {batch} gives a Lava Conv more than {MAX_CONV_GROUPS} groups (Lava stores "
                         f"groups as int8); use batch <= {cap}")
    return int(batch)


def _concat(parts: List[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty


def run_lava(spec: NetworkSpec, x, *, record: bool = False, batch: Optional[int] = None,
             hardware: Optional[bool] = None, progress=None,
             self_reset: Optional[List[Tuple[int, int, int, int]]] = None) -> LavaResult:
    """Run ``spec`` on Lava for every sample of ``x`` and return the core's layout (:class:`LavaResult`).

    Args:
        spec: a quantized NetworkSpec (validated here; Dense weights must be Lava-representable).
        x: [samples, steps, inputs] 0/1 spikes, or int32 payloads if the first layer is graded.
        record: also return u/v traces per neuron layer (CPU simulator only).
        batch: samples per Lava run (K side-by-side copies); default: as many as fit
            :data:`~snnhw.backends.lava_pack.MAX_BLOCK_ENTRIES` (at most
            :data:`~snnhw.backends.lava_pack.MAX_BATCH`).
        hardware: None = use Loihi 2 iff :func:`loihi2_hardware_available`; False forces the CPU simulator.
        progress: optional callable ``progress(done_samples, total_samples)``.
        self_reset: per neuron layer, a diagonal one-step self-connection (coarse mantissa, exponent, fine
            mantissa, fine exponent), the same scalar for every neuron (:mod:`snnhw.nir_import.emulate_if`).
    """
    require_lava()
    if not spec.quantized:
        raise InputError("the Lava backend runs quantized (integer) specs only")
    spec.validate()
    x = _check_inputs(spec, x)
    n, T = x.shape[:2]
    k_max = _batch_size(spec, batch, n)
    hw = loihi2_hardware_available() if hardware is None else bool(hardware)
    if hw:
        require_hardware()
    layers = spec.neuron_layers()
    spikes = [[] for _ in layers]
    traces = [([], []) for _ in layers]
    for start in range(0, n, k_max):
        xb = x[start:start + k_max]
        k = xb.shape[0]
        stages, shapes = spec_stages(spec, k)
        if self_reset is not None:
            add_self_reset(stages, self_reset)
        outs = run_stages(stages, to_lava_layout(xb, tuple(spec.input_shape)), record=record, hardware=hw)
        for i, (o, shp) in enumerate(zip(outs, shapes)):
            spikes[i].append(from_lava_layout(o.s, shp, k))
            if record:
                traces[i][0].append(from_lava_layout(o.u, shp, k))
                traces[i][1].append(from_lava_layout(o.v, shp, k))
        if progress is not None:
            progress(min(start + k, n), n)
    empty = [np.zeros((0, T, int(np.prod(l.out_shape))), np.int64) for l in layers]
    layer_spikes = [_concat(s, e) for s, e in zip(spikes, empty)]
    tr = [(_concat(u, e), _concat(v, e)) for (u, v), e in zip(traces, empty)] if record else None
    return LavaResult(layer_spikes[-1], layer_spikes, tr, BACKEND_HW if hw else BACKEND_SIM)
