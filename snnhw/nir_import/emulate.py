"""Subtract reset on Loihi 2, emulated instead of compensated.

Lava's LIF resets v to 0, so it cannot keep the residual ``v - theta`` of a subtract-reset neuron. Its
synaptic current u, though, is never reset. The emulation maps a chain of CubaLIF/LIF stages so that
**u carries the NIR membrane potential**:

* the chip neuron has ``i_decay`` from the NIR voltage decay beta and ``v_decay = 4096``, so ``v = u``
  every step (v is memoryless and its reset loses nothing); it spikes iff ``u > vth_mant << 6``;
* the NIR current filter ``I = alpha I + W s`` moves into the synapses as a finite impulse response:
  tap ``d`` carries ``alpha**d W`` and arrives ``d`` steps later (truncated where a tap is below half a
  weight unit), for the feed-forward and the recurrent input;
* the reset itself is a recurrent self-connection: subtracting theta at the spike step and decaying
  gives ``-beta * theta`` on the next step (``-theta`` for ``subtract-undecayed``), exactly what a
  one-step recurrent synapse adds to u.

So the chip computes the subtract-reset model itself, up to the rounding of weights (split, as in
:func:`snnhw.loihi.split_weight`, fine exponents >= 0: no floor), of the decay (12 bits) and of the
integer state. On Lava the delayed taps come from a relay population per source: a memoryless LIF that
copies the source's spikes into a shift register (block j holds them j + 1 steps later, one Sparse per
direction), so each input needs five Lava processes whatever the number of taps
(:mod:`snnhw.backends.lava_taps`). snnhw's core runs the same arithmetic directly
(:func:`simulate_emulation`); ``tests/test_nir_emulate.py`` checks both agree bit for bit.

A bias on the current (Affine biases) and a leak on v come from an always-on unit (one neuron per sample
that spikes every step, source :data:`ON_SRC`) through the same taps (the leak on tap 0 only). It fires
from the chip's first step, so a layer at depth k > 1 gets its bias k - 1 steps before its NIR step 0
(noted). Only chains of Dense/identity stages of spiking neurons are emulated (:func:`why_not`); chains
whose populations have no current filter are emulated without taps behind any synapse
(:mod:`snnhw.nir_import.emulate_if`); anything else keeps the threshold compensation
(:mod:`snnhw.nir_import.compensate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.neuron import ExactCuba, cuba_loop
from snnhw.io.nir import NirModel
from snnhw.nir_import.quantize import HEADROOM, STATE_LIMIT_W, VTH_MAX, safe_name
from snnhw.nir_import.reference import float_reference, one_thread

EMULATION_NOTE = ("Loihi resets v to 0; u carries the NIR membrane potential instead (v_decay 4096: v = u), the "
                  "current filter runs as delayed synaptic taps, the reset as a recurrent self-connection "
                  "(-beta*theta): exact up to rounding (snnhw.nir_import.emulate)")
ON_SRC = -2  # the always-on unit's source index (biases and leaks)
MAX_TAPS = 64  # taps per synapse group (the relay holds MAX_TAPS - 1 delayed copies)
TAP_FLOOR = 0.5  # weight units: later taps smaller than this everywhere are dropped


@dataclass
class TapGroup:
    """Every tap from one source into one population: tap 0 (arrives one step later, as a Dense does) as
    coarse + fine mantissas, and taps 1..m side by side along the columns ([n, m * n_src], block j-1 =
    tap j) at one shared coarse/fine exponent pair. ``src``: -1 the input, else a population index (its
    own index: recurrent)."""

    src: int
    w0: np.ndarray
    e0: int
    w0_fine: np.ndarray
    f0: int
    later: Optional[np.ndarray] = None
    e1: int = 0
    later_fine: Optional[np.ndarray] = None
    f1: int = 0

    @property
    def n_later(self) -> int:
        return 0 if self.later is None else self.later.shape[1] // self.w0.shape[1]

    def wide(self) -> List[Tuple[np.ndarray, int]]:
        """Per tap d, (integer matrix, exponent) that sums like its coarse + fine synapses."""
        taps = [loihi.split_wide(self.w0, self.e0, self.w0_fine, self.f0)]
        n_src = self.w0.shape[1]
        for j in range(self.n_later):
            cols = slice(j * n_src, (j + 1) * n_src)
            taps.append(loihi.split_wide(self.later[:, cols], self.e1, self.later_fine[:, cols], self.f1))
        return taps


@dataclass
class EmuPop:
    name: str
    n: int
    i_decay: int
    vth_mant: int
    groups: List[TapGroup] = field(default_factory=list)


@dataclass
class EmuSpec:
    n_in: int
    pops: List[EmuPop]
    reset: str

    def summary(self) -> List[Dict]:
        """Per population, what report.json's ``quantization`` shows."""
        return [{"name": p.name, "vth_mant": p.vth_mant, "i_decay": p.i_decay, "v_decay": loihi.DECAY_UNITY,
                 "inputs": [{"src": g.src, "taps": 1 + g.n_later, "tap0_exp": [g.e0, g.f0],
                             "later_exp": [g.e1, g.f1] if g.n_later else None} for g in p.groups]}
                for p in self.pops]

    def as_dict(self) -> Dict:
        return {"kind": "subtract-reset emulation", "n_in": self.n_in, "reset": self.reset, "populations": [
            {"name": p.name, "n": p.n, "i_decay": p.i_decay, "v_decay": loihi.DECAY_UNITY, "vth_mant": p.vth_mant,
             "inputs": [{"src": g.src, "taps": 1 + g.n_later, "exponents": [g.e0, g.f0, g.e1, g.f1],
                         "w0": g.w0, "w0_fine": g.w0_fine, "later": g.later, "later_fine": g.later_fine}
                        for g in p.groups]} for p in self.pops]}


def chain_refusal(model: NirModel) -> Optional[str]:
    """What rules out either emulation (this one and :mod:`snnhw.nir_import.emulate_if`): not a chain, a
    voltage readout, a population that does not spike; None if none applies (one line)."""
    if model.chain_error:
        return f"not a chain ({model.chain_error})"
    if model.output_voltage:
        return "the output is a voltage readout"
    for st in model.neuron_stages:
        if not st.neuron.spiking:
            return f"stage {st.name} does not spike"
    return None


def why_not(model: NirModel) -> Optional[str]:
    """None if ``model`` can be emulated, else the reason (one line)."""
    if model.chain_error or model.output_voltage:
        return chain_refusal(model)
    for st in model.neuron_stages:
        if st.kind not in ("dense", "identity"):
            return f"stage {st.name} is a {st.kind} synapse (only dense synapses carry the delayed taps)"
    return chain_refusal(model)


def _exp(wmax: float) -> int:
    """Smallest exponent >= 0 whose mixed 8-bit mantissas reach ``wmax``."""
    return int(np.clip(np.ceil(np.log2(max(wmax / loihi.MIXED_MANT_MAX, 1e-30))), 0, loihi.RANGES["weight_exp"][1]))


def _split(w: np.ndarray, e: int) -> Tuple[np.ndarray, np.ndarray, int]:
    return loihi.split_weight(w, e)


def _group(src: int, w: np.ndarray, alpha: np.ndarray, extra0: Optional[np.ndarray]) -> TapGroup:
    """The taps ``alpha**d * w`` (rows: per-neuron alpha) of one source, ``extra0`` added to tap 0 only
    (the reset's self-connection, a leak)."""
    tap0 = w.copy() if extra0 is None else w + extra0
    e0 = _exp(float(np.abs(tap0).max()))
    hi0, lo0, f0 = _split(tap0, e0)
    wmax = float(np.abs(w).max())
    amax = float(np.max(alpha)) if alpha.size else 0.0
    m = 0
    while m + 1 < MAX_TAPS and wmax * amax ** (m + 1) >= TAP_FLOOR:
        m += 1
    g = TapGroup(src, hi0, e0, lo0, f0)
    if m:
        later = np.concatenate([alpha[:, None] ** d * w for d in range(1, m + 1)], axis=1)
        g.e1 = _exp(float(np.abs(later).max()))
        g.later, g.later_fine, g.f1 = _split(later, g.e1)
    return g


def emulation_spec(model: NirModel, calib, reset: str) -> Tuple[EmuSpec, List[str]]:
    """The emulation of ``model`` (module docstring), scaled on the calibration inputs: per stage the
    largest threshold scale that keeps u (= the NIR v, before and after the reset) within
    :data:`HEADROOM` of its 24-bit range (u wraps). Returns (spec, notes)."""
    ref = float_reference(model, calib, reset=reset, record=True)
    pops, notes = [], []
    for k, st in enumerate(model.neuron_stages):
        nd = st.neuron
        v_rel = float(np.max(np.abs(ref.traces[k][1]) / nd.theta)) + 1.0  # + 1: v before a reset
        s = int(max(1, min(np.floor(HEADROOM * STATE_LIMIT_W / v_rel), VTH_MAX)))
        i_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.beta))), 0, loihi.DECAY_UNITY))
        if np.ptp(nd.beta) > 1e-9:
            notes.append(f"layer {safe_name(st.name)}: per-neuron time constants of v share one decay (median); "
                         f"the current's are exact (taps per neuron)")
        beta_c = 1 - i_decay / loihi.DECAY_UNITY
        per = s * nd.g_syn * nd.g_mem / nd.theta
        w = np.eye(nd.n) if st.kind == "identity" else st.weight
        groups = [_group(k - 1, per[:, None] * w, nd.alpha, None)]
        sub = -float(s) * (1.0 if reset == "subtract-undecayed" else beta_c)
        wr = np.zeros((nd.n, nd.n)) if st.weight_rec is None else per[:, None] * st.weight_rec
        groups.append(_group(k, wr, nd.alpha if st.weight_rec is not None else np.zeros(nd.n),
                             np.diag(np.full(nd.n, sub))))
        cur = sum(b for b in (st.bias, st.bias_rec) if b is not None)
        if np.any(cur != 0) or np.any(nd.leak != 0):
            groups.append(_group(ON_SRC, (per * cur)[:, None] if np.ndim(cur) else np.zeros((nd.n, 1)), nd.alpha,
                                 (s * nd.leak / nd.theta)[:, None]))
            if k:
                notes.append(f"layer {safe_name(st.name)}: bias from the chip's first step, {k} step(s) before "
                             f"the layer's first NIR step")
        pops.append(EmuPop(safe_name(st.name), nd.n, i_decay, s, groups))
    return EmuSpec(int(model.n_in), pops, reset), notes


def _ff_input(g: TapGroup, s: torch.Tensor, T: int) -> torch.Tensor:
    """[B, T, n] input of a feed-forward tap group: tap d of step t's spikes arrives at step t + 1 + d."""
    B = s.shape[0]
    taps = g.wide()
    a = torch.zeros((B, T, taps[0][0].shape[0]), dtype=torch.int64)
    for d, (w, e) in enumerate(taps):
        part = loihi.dense_accumulate(s, torch.as_tensor(w, dtype=torch.int64), e)
        if 1 + d < T:
            a[:, 1 + d:] += part[:, :T - 1 - d]
    return a


def _recurrent(g: TapGroup):
    """The recurrent tap group in the neuron loop: ``recurrent(a_t, s_prev)`` adds tap d of the spikes of
    d + 1 steps ago (stateful: called once per step, in order)."""
    taps = [(torch.as_tensor(w, dtype=torch.int64), e) for w, e in g.wide()]
    hist: List[torch.Tensor] = []

    def rec(at: torch.Tensor, s_prev: torch.Tensor) -> torch.Tensor:
        hist.insert(0, s_prev.to(torch.int64))
        del hist[len(taps):]
        return loihi.sum_ports(at, *(loihi.dense_accumulate(s, w, e) for (w, e), s in zip(taps, hist)))
    return rec


def simulate_emulation(spec: EmuSpec, x) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(spikes, u) per population [B, T, n] on snnhw's core, in Lava's integer arithmetic
    (:func:`snnhw.loihi.lif_integrate`); population k's step ``t + k + 1`` is NIR step ``t``."""
    s_in = (torch.as_tensor(np.asarray(x)) != 0).to(torch.int64)
    T = s_in.shape[1]
    outs, spikes, us = {-1: s_in, ON_SRC: torch.ones((s_in.shape[0], T, 1), dtype=torch.int64)}, [], []
    with one_thread(), torch.no_grad():
        for i, p in enumerate(spec.pops):
            a = sum(_ff_input(g, outs[g.src], T) for g in p.groups if g.src != i)
            rec = [g for g in p.groups if g.src == i]
            params = ExactCuba(loihi.decay_factor(p.i_decay), loihi.decay_factor(loihi.DECAY_UNITY),
                               loihi.effective_threshold(p.vth_mant), 0, False)
            run = cuba_loop(a, params, recurrent=_recurrent(rec[0]) if rec else None, record=True)
            outs[i] = run.s.to(torch.int64)
            spikes.append(run.s.numpy().astype(np.int64))
            us.append(run.u.numpy())
    return spikes, us


def run_emulation_lava(spec: EmuSpec, x) -> List[np.ndarray]:
    """Spikes per population [B, T, n] on Lava's CPU simulator (fixed_pt), all samples side by side."""
    from snnhw.backends.lava_taps import TapInput, TapPop, run_taps

    x = (np.asarray(x) != 0).astype(np.int64)
    B, T, _ = x.shape
    pops = [TapPop(p.n, loihi.lava_du(p.i_decay), loihi.lava_dv(loihi.DECAY_UNITY), p.vth_mant,
                   [TapInput(g.src, g.w0, g.e0, g.w0_fine, g.f0, g.later, g.e1, g.later_fine, g.f1, g.n_later)
                    for g in p.groups]) for p in spec.pops]
    outs = run_taps(pops, x, B)
    return [o.reshape(B, p.n, T).transpose(0, 2, 1) for o, p in zip(outs, spec.pops)]
