"""Non-spiking readouts (LI, CubaLI) on the chip: a Loihi LIF that cannot fire, its v read back.

NIR's LI/CubaLI never spike; their output is the voltage. Loihi 2's LIF always has a threshold, so a
readout population becomes a LIF whose threshold lies above the reachable range:
:func:`chip_model` gives every readout stage the threshold ``READOUT_MARGIN * max|v|``, with
``max|v|`` measured by the float reference on the import's inputs and calibration inputs (so v
never reaches it on those inputs, and the calibration still uses the full weight range). The
chip's v then reads back in NIR units as ``v_state / 64 * theta_chip / vth_mant``
(:func:`voltage_nir`), where ``theta_chip`` is that threshold (times a compensation multiplier, if
any) and ``vth_mant`` the mantissa the calibration chose.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.backends import lava_runtime
from snnhw.io.nir import NirModel, NIRFormatError
from snnhw.nir_import.reference import float_reference, one_thread
from snnhw.spec import NetworkSpec

READOUT_MARGIN = 4.0  # chip threshold of a readout = this x the largest |v| the reference reaches


def check_chip_readouts(model: NirModel) -> None:
    """A readout can only be the output population on the chip (a LIF sends spikes, not its v)."""
    g = model.graph
    for pop in g.populations:
        if not g.neurons[pop].spiking and pop != g.output:
            raise NIRFormatError(f"node '{pop}' ({g.kind(pop)}) feeds other nodes: on the chip a non-spiking "
                                 f"population can only be the output")


def chip_model(model: NirModel, inputs: List[np.ndarray], reset: str) -> NirModel:
    """``model`` with a finite threshold on each readout stage (module docstring); the graph and the
    float reference are unchanged."""
    if not any(not s.neuron.spiking for s in model.neuron_stages):
        return model
    check_chip_readouts(model)
    refs = [float_reference(model, x, reset=reset, record=True) for x in inputs]
    out = copy.copy(model)
    out.stages = []
    k = 0
    for st in model.stages:
        if st.neuron is not None:
            if not st.neuron.spiking:
                vmax = max(float(np.abs(r.traces[k][1]).max()) if r.traces[k][1].size else 0.0 for r in refs)
                st = copy.copy(st)
                st.neuron = copy.copy(st.neuron)
                st.neuron.theta = np.full(st.neuron.n, READOUT_MARGIN * max(vmax, 1e-12))
            k += 1
        out.stages.append(st)
    return out


def readout_thetas(model: NirModel, inputs: List[np.ndarray], reset: str) -> dict:
    """{population: chip threshold} for every readout population of ``model``'s graph (module docstring)."""
    g = model.graph
    ks = [k for k, p in enumerate(g.populations) if not g.neurons[p].spiking]
    if not ks:
        return {}
    refs = [float_reference(model, x, reset=reset, record=True) for x in inputs]
    out = {}
    for k in ks:
        vmax = max(float(np.abs(r.traces[k][1]).max()) if r.traces[k][1].size else 0.0 for r in refs)
        pop = g.populations[k]
        out[pop] = np.full(g.neurons[pop].n, READOUT_MARGIN * max(vmax, 1e-12))
    return out


def voltage_nir(v_state: np.ndarray, theta_chip: float, vth_mant: float) -> np.ndarray:
    """The chip's v (state units) in NIR units (module docstring)."""
    return np.asarray(v_state, dtype=np.float64) / float(1 << loihi.ACT_SHIFT) * theta_chip / float(vth_mant)


def run_with_voltage(spec: NetworkSpec, x: np.ndarray, exact: bool) -> Tuple[List[np.ndarray], np.ndarray, str]:
    """(per-layer spikes, the last layer's v [B, T, n] in state units, backend) of ``spec``: on Lava's CPU
    simulator when lava-nc is installed (``exact``), else on snnhw's core (bit-exact / float twin)."""
    if exact and lava_runtime.lava_available():
        from snnhw.backends.lava import run_lava

        res = run_lava(spec, x, record=True, hardware=False)
        return [np.asarray(s) for s in res.layer_spikes], np.asarray(res.traces[-1][1]), res.backend
    from snnhw.core.network import simulate
    from snnhw.nir_import.chip import CORE_BACKEND

    with one_thread():
        r = simulate(spec, x, record=True)
    backend = CORE_BACKEND if exact else "snnhw-float-twin"
    return [t.s.numpy() for t in r.traces], r.traces[-1].v.numpy(), backend


def readout_theta(model: NirModel, theta_scale: Optional[List[float]]) -> float:
    """The chip threshold of the output readout (NIR units, relative to v_reset = 0)."""
    st = model.neuron_stages[-1]
    k = theta_scale[-1] if theta_scale else 1.0
    return float(np.median(st.neuron.theta)) * float(k)
