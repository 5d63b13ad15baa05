"""Subtract reset on Loihi 2, emulated for populations without a current filter (IF, LIF), behind any
synapse the chain mapping supports (Conv, SumPool, a pool -> conv composition, Dense).

A population whose NIR current has no memory (``alpha = 0``: IF, LIF) needs none of the delayed taps of
:mod:`snnhw.nir_import.emulate`: u integrates the input with the NIR voltage decay (``i_decay`` from
beta; 0 for IF), ``v_decay = 4096`` makes v = u every step (v's reset to 0 loses nothing), and the reset
is a **diagonal** one-step self-connection of ``-beta * theta`` (``-theta`` for ``subtract-undecayed``)
into u. Every neuron of a layer shares one threshold scale s, so the diagonal is one scalar per layer:
on Lava a ``Sparse`` identity (coarse + fine, fine exponent >= 0: no floor) from the LIF onto itself
(a Conv/SumPool LIF's ``s_out`` flattened, the ``a_out`` reshaped back: the same scalar for every neuron,
so the order does not matter); on snnhw's core an elementwise recurrent input (:func:`simulate_if`).
The feed-forward synapses are the chain mapping's own (:func:`snnhw.nir_import.quantize.quantize_model`,
split Dense weights), so the network is a :class:`~snnhw.spec.NetworkSpec` plus one reset per layer.

Not covered (:func:`why_not_if`): a current filter, recurrent weights, a bias or leak (Loihi adds its
bias to v, which here has no memory), ``v_reset != 0``, a voltage readout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.network import synapse
from snnhw.core.neuron import ExactCuba, cuba_loop
from snnhw.io.nir import NirModel
from snnhw.nir_import.emulate import chain_refusal
from snnhw.nir_import.quantize import quantize_model
from snnhw.nir_import.reference import one_thread
from snnhw.spec import Flatten, NetworkSpec, Neuron

IF_EMULATION_NOTE = ("Loihi resets v to 0; u carries the NIR membrane potential instead (i_decay from beta, "
                     "v_decay 4096: v = u), the reset as a diagonal one-step self-connection (-beta*theta); no "
                     "current filter, so no delayed taps: exact up to rounding (snnhw.nir_import.emulate_if)")

Reset = Tuple[int, int, int, int]  # (coarse mantissa, exponent, fine mantissa, fine exponent) of the diagonal


@dataclass
class IfEmu:
    """The emulation: ``spec`` (the chain mapping's synapses, neurons with v_decay 4096) and per neuron layer
    the diagonal self-connection ``resets``."""

    spec: NetworkSpec
    resets: List[Reset]
    reset: str

    def summary(self) -> List[Dict]:
        """Per population, what report.json's ``quantization`` shows."""
        return [{"name": l.name, "kind": type(l).__name__, "vth_mant": int(l.neuron.vth_mant),
                 "i_decay": int(l.neuron.i_decay), "v_decay": int(l.neuron.v_decay),
                 "weight_exp": int(l.weight_exp), "self_reset": {"coarse": r[0], "exp": r[1], "fine": r[2],
                                                                 "fine_exp": r[3], "value": reset_value(r)}}
                for l, r in zip(self.spec.neuron_layers(), self.resets)]

    def as_dict(self) -> Dict:
        return {"kind": "subtract-reset emulation (no current filter)", "reset": self.reset,
                "spec": self.spec.to_dict(), "self_reset": [list(r) for r in self.resets]}


def reset_value(r: Reset) -> int:
    """The diagonal's weight in weight units (coarse and fine together, exact: both exponents >= 0)."""
    return int(r[0]) * 2 ** int(r[1]) + int(r[2]) * 2 ** int(r[3])


def why_not_if(model: NirModel) -> Optional[str]:
    """None if every population of ``model`` can be emulated without taps, else the reason (one line)."""
    reason = chain_refusal(model)
    if reason:
        return reason
    for st in model.neuron_stages:
        nd = st.neuron
        if np.any(nd.alpha != 0):
            return f"stage {st.name} has a current filter (its taps need dense synapses)"
        if st.weight_rec is not None:
            return f"stage {st.name} is recurrent"
        if any(b is not None and np.any(b != 0) for b in (st.bias, st.bias_rec)) or np.any(nd.leak != 0):
            return f"stage {st.name} has a bias or leak (Loihi adds its bias to v, which has no memory here)"
        if np.any(nd.v_reset != 0):
            return f"stage {st.name} has v_reset != 0"
    return None


def _reset_target(s: int, i_decay: int, reset: str) -> float:
    """The self-connection's ideal weight (weight units): -theta off the next update, decayed by the chip's
    current factor for ``subtract`` (-beta*theta), undecayed for ``subtract-undecayed``."""
    return -float(s) * (1.0 if reset == "subtract-undecayed" else 1.0 - i_decay / loihi.DECAY_UNITY)


def _reset(s: int, i_decay: int, reset: str) -> Reset:
    sub = _reset_target(s, i_decay, reset)
    e = int(np.clip(np.ceil(np.log2(max(abs(sub) / loihi.MIXED_MANT_MAX, 1e-30))), 0,
                    loihi.RANGES["weight_exp"][1]))
    hi, lo, f = loihi.split_weight(np.array([[sub]]), e)
    return int(hi[0, 0]), e, int(lo[0, 0]), int(f)


def if_emulation(model: NirModel, calib, reset: str) -> Tuple[IfEmu, List[str]]:
    """The emulation of ``model`` (module docstring): the chain mapping's quantized spec on the calibration
    inputs (its v headroom bounds u, which carries v here), each neuron given ``i_decay`` from beta and
    ``v_decay = 4096``, and the diagonal reset per layer. Returns (emulation, notes)."""
    spec, maps = quantize_model(model, calib, reset=reset, split=True)
    notes = [f"layer {m.name}: {n}" for m in maps for n in m.notes if "time constants" not in n]
    resets = []
    for layer, st in zip(spec.neuron_layers(), model.neuron_stages):
        nd = st.neuron
        i_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.beta))), 0, loihi.DECAY_UNITY))
        if np.ptp(nd.beta) > 1e-9:
            notes.append(f"layer {layer.name}: per-neuron time constants of v share one decay (median)")
        s = int(layer.neuron.vth_mant)
        layer.neuron = Neuron(i_decay=i_decay, v_decay=loihi.DECAY_UNITY, vth_mant=s, reset="zero")
        r = _reset(s, i_decay, reset)
        resets.append(r)
        want = _reset_target(s, i_decay, reset)
        if abs(reset_value(r) - want) > 0.5:
            notes.append(f"layer {layer.name}: the reset self-connection is {reset_value(r)} weight units for "
                         f"{want:g} (split weight rounding)")
    return IfEmu(spec.validate(), resets, reset), notes


def simulate_if(emu: IfEmu, x) -> List[np.ndarray]:
    """Spikes per neuron layer [B, T, n] on snnhw's core, in Lava's integer arithmetic; layer k's step
    ``t + k + 1`` is NIR step ``t``."""
    s = (torch.as_tensor(np.asarray(x)) != 0).to(torch.float32)
    out = []
    with one_thread(), torch.no_grad():
        layers = [l for l in emu.spec.layers if not isinstance(l, Flatten)]
        for layer, r in zip(layers, emu.resets):
            a = synapse(layer, s, True, binary=True).to(torch.int64)
            wide, e = loihi.split_wide(np.array([[r[0]]]), r[1], np.array([[r[2]]]), r[3])
            w = int(wide[0, 0])

            def rec(at: torch.Tensor, s_prev: torch.Tensor, w=w, e=e) -> torch.Tensor:
                # a diagonal Dense: each neuron's sum is its own spike times w (Dense rules: loihi)
                return loihi.sum_ports(at, loihi.scale_sum(s_prev.to(torch.int64) * w, e))
            n = layer.neuron
            params = ExactCuba(loihi.decay_factor(n.i_decay), loihi.decay_factor(n.v_decay),
                               loihi.effective_threshold(n.vth_mant), 0, False)
            run = cuba_loop(a, params, recurrent=rec)
            s = run.s.to(torch.float32)
            out.append(run.s.numpy().astype(np.int64))
    return out


def run_if_lava(emu: IfEmu, x) -> List[np.ndarray]:
    """Spikes per neuron layer [B, T, n] on Lava's CPU simulator (fixed_pt)."""
    from snnhw.backends.lava import run_lava

    return [np.asarray(s) for s in run_lava(emu.spec, x, hardware=False, self_reset=emu.resets).layer_spikes]
