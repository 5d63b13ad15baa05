"""Graphs that are not chains on the chip: populations with several synapses (fan-in, skip
connections, a population feeding several others) and NIR Delay nodes as Loihi 2 synaptic delays.

:func:`dag_spec` maps every population of the graph to a Loihi LIF and every (source, delay) pair
into it to one synapse: the linear nodes from that source are composed into one dense matrix (the
map's impulse response on the identity basis; a Delay node splits it into taps, one synapse per
tap). Timing: NIR means every path in the same step, while Loihi's Dense adds one step. A population
therefore sits at depth ``d(P) = 1 + max d(source)`` (the Input: 0). A synapse from a source at depth
``d(S)`` whose NIR path holds ``D`` steps of Delay gets ``d(P) - d(S) - 1 + D`` steps of synaptic
delay (Lava ``DelayDense``, 0..63), so every path reaches P in the same chip step. Chip index
``t + d(P)`` of P equals NIR step ``t``.

Quantization per population, as :mod:`snnhw.nir_import.quantize` does for a chain: one threshold
scale ``s`` (= ``vth_mant``) below the 17-bit, u/v-headroom and bias bounds, every synapse with its
own smallest ``weight_exp`` whose 8-bit mantissas reach ``s`` times its largest weight.

:func:`simulate_dag` runs the result on snnhw's core (bit-exact integers, or the float twin);
:func:`run_dag_lava` on Lava (:func:`snnhw.backends.lava_graph.run_graph`). The tests check the two
bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.core import synapse as syn
from snnhw.core.neuron import CubaParams, cuba_lif_trace
from snnhw.io.nir import NirModel, NIRFormatError
from snnhw.io.nir.chain import linear_input, recurrent, subdag
from snnhw.nir_import.quantize import BIAS_MANT_MAX, EXP_MAX, HEADROOM, STATE_LIMIT_W, VTH_MAX, _exp_for
from snnhw.nir_import.reference import float_reference, one_thread

MAX_SYN_DELAY = 63


@dataclass
class DagSyn:
    """A synapse: source population (-1: input), weights [n_out, n_src] (mantissas or float),
    ``weight_exp``, extra synaptic delay [steps]."""

    src: int
    weight: np.ndarray
    weight_exp: int = 0
    delay: int = 0


@dataclass
class DagPop:
    """A population in chip terms (netx decays, threshold mantissa, bias) and its synapses."""

    name: str
    n: int
    i_decay: float
    v_decay: float
    vth_mant: float
    bias_mant: Optional[np.ndarray]
    syns: List[DagSyn] = field(default_factory=list)
    weight_rec: Optional[np.ndarray] = None
    rec_exp: int = 0
    depth: int = 1


@dataclass
class DagSpec:
    n_in: int
    pops: List[DagPop]
    quantized: bool
    reset: str = "zero"

    def as_dict(self) -> Dict:
        return {"kind": "dag", "n_in": self.n_in, "quantized": self.quantized, "populations": [
            {"name": p.name, "n": p.n, "depth": p.depth, "i_decay": p.i_decay, "v_decay": p.v_decay,
             "vth_mant": p.vth_mant, "recurrent": p.weight_rec is not None,
             "synapses": [{"src": s.src, "weight_exp": s.weight_exp, "delay": s.delay,
                           "max_abs_weight": float(np.abs(s.weight).max()) if s.weight.size else 0.0}
                          for s in p.syns]} for p in self.pops]}


def _taps(g, pop: str, lin: List[str], src: str, others: List[str], n: int) -> List[Tuple[int, np.ndarray]]:
    """[(NIR delay in steps, W [n, n_src])] of the linear map from ``src`` into ``pop``."""
    shape = tuple(g.shapes[src])
    n_in = int(np.prod(shape))
    horizon = 1 + sum(int(g.ops[k].steps.max()) for k in lin if g.ops[k].kind == "delay")
    if n_in * n * horizon > 1 << 24:
        raise NIRFormatError(f"the linear nodes from '{src}' into '{pop}' are too large to compose ({n} x {n_in})")
    imp = torch.zeros((n_in, horizon) + shape, dtype=torch.float64)
    imp[:, 0] = torch.eye(n_in, dtype=torch.float64).reshape((n_in,) + shape)
    vals = {src: imp}
    for o in others:
        vals[o] = torch.zeros((n_in, horizon) + tuple(g.shapes[o]), dtype=torch.float64)
    x, _ = linear_input(g, g.ff_preds(pop), lin, vals)
    zero = {k: torch.zeros_like(v[:1]) for k, v in vals.items()}
    x0, _ = linear_input(g, g.ff_preds(pop), lin, zero)
    resp = (x - x0).reshape(n_in, horizon, n)
    return [(d, resp[:, d].T.numpy()) for d in range(horizon) if torch.any(resp[:, d] != 0)]


def _structure(model: NirModel):
    """Per population: (name, NeuronDyn, [(src index, NIR delay, W)], constant input, depth)."""
    g = model.graph
    pops = g.populations
    index = {g.start: -1, **{p: i for i, p in enumerate(pops)}}
    depth = {-1: 0}
    out = []
    for i, pop in enumerate(pops):
        lin, srcs = subdag(g, g.ff_preds(pop))
        n = int(np.prod(g.shapes[pop]))
        for s in srcs:
            if s in g.neurons and not g.neurons[s].spiking:
                raise NIRFormatError(f"node '{s}' ({g.kind(s)}) feeds '{pop}': on the chip a non-spiking "
                                     f"population can only be the output")
        taps = []
        for s in sorted(srcs, key=lambda k: index[k]):
            taps += [(index[s], d, w) for d, w in _taps(g, pop, lin, s, sorted(srcs - {s}), n)]
        zero = {s: torch.zeros((1, 1) + tuple(g.shapes[s]), dtype=torch.float64) for s in srcs}
        _, c = linear_input(g, g.ff_preds(pop), lin, zero)
        depth[i] = 1 + max(depth[s] for s, _, _ in taps) if taps else 1
        out.append((pop, g.neurons[pop], taps, None if c is None else c.reshape(n).numpy(), depth[i]))
    return out, depth


def _limits(nd, thr, per, bias_w, stats) -> float:
    lim = [float(VTH_MAX)]
    u_need = float(np.max(nd.g_mem * stats[0] / thr))
    v_need = float(np.max(stats[1] / thr))
    lim += [HEADROOM * STATE_LIMIT_W / u_need] if u_need > 0 else []
    lim += [HEADROOM * STATE_LIMIT_W / v_need] if v_need > 0 else []
    bmax = float(np.max(np.abs(bias_w)))
    lim += [BIAS_MANT_MAX / bmax] if bmax > 0 else []
    return min(lim)


def _pop_rows(name, nd, const, theta):
    """(thr, per, bias_w, i_decay, v_decay) of one population (as quantize's ``_rows``)."""
    thr = theta - nd.v_reset
    if np.any(thr <= 0):
        raise NIRFormatError(f"node '{name}': v_threshold must exceed v_reset")
    i_decay = float(loihi.DECAY_UNITY * (1 - np.median(nd.alpha)))
    v_decay = float(loihi.DECAY_UNITY * (1 - np.median(nd.beta)))
    per = nd.g_syn * nd.g_mem / thr
    bias_w = (nd.leak - (1 - nd.beta) * nd.v_reset) / thr
    if const is not None and np.any(const != 0):
        a = 1 - i_decay / loihi.DECAY_UNITY
        if a >= 1:
            raise NIRFormatError(f"node '{name}': a bias on a non-decaying synaptic current ramps without bound")
        bias_w = bias_w + per * const / (1 - a)
    return thr, per, bias_w, i_decay, v_decay


def dag_spec(model: NirModel, calib, *, reset: str, quantized: bool, thetas: Optional[Dict[str, np.ndarray]] = None
             ) -> DagSpec:
    """The chip (``quantized``) or float-twin spec of ``model``'s graph (module docstring).
    ``thetas``: finite thresholds for readout populations (:mod:`snnhw.nir_import.readout`)."""
    g = model.graph
    structure, _ = _structure(model)
    ref = float_reference(model, calib, reset=reset, record=True) if quantized else None
    pops = []
    for k, (name, nd, taps, const, depth) in enumerate(structure):
        theta = (thetas or {}).get(name, nd.theta)
        w_rec, b_rec, _ = recurrent(g, name)
        if b_rec is not None:
            const = b_rec if const is None else const + b_rec
        thr, per, bias_w, i_decay, v_decay = _pop_rows(name, nd, const, theta)
        rows = [per[:, None] * w for _, _, w in taps]
        wr = None if w_rec is None else per[:, None] * w_rec
        if quantized:
            stats = (np.abs(ref.traces[k][0]).max(axis=(0, 1)), np.abs(ref.traces[k][1]).max(axis=(0, 1)))
            s = _limits(nd, thr, per, bias_w, stats)
            for w in rows + ([wr] if wr is not None else []):
                if np.abs(w).max() > 0:
                    s = min(s, loihi.MIXED_MANT_MAX * 2.0 ** EXP_MAX / np.abs(w).max())
            s = max(1, int(np.floor(min(s, VTH_MAX))))
        else:
            s = 1.0
        syns = []
        for (src, dly, _), w in zip(taps, rows):
            sd = depth - (structure[src][4] if src >= 0 else 0) - 1 + dly
            if sd > MAX_SYN_DELAY:
                raise NIRFormatError(f"population '{name}' needs a synaptic delay of {sd} steps from its input "
                                     f"{src}; Loihi 2 allows at most {MAX_SYN_DELAY}")
            syns.append(_syn(src, w, s, sd, quantized))
        pop = DagPop(name, int(nd.n), i_decay, v_decay, s, None, syns, depth=depth)
        if wr is not None:
            r = _syn(0, wr, s, 0, quantized)
            pop.weight_rec, pop.rec_exp = r.weight, r.weight_exp
        bm = s * bias_w
        if quantized:
            bm = np.clip(np.round(bm), -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64)
            pop.i_decay, pop.v_decay = int(round(i_decay)), int(round(v_decay))
        pop.bias_mant = bm if np.any(bm != 0) else None
        pops.append(pop)
    return DagSpec(model.n_in, pops, quantized, reset="zero" if quantized else reset)


def _syn(src: int, w: np.ndarray, s: float, delay: int, quantized: bool) -> DagSyn:
    if not quantized:
        return DagSyn(src, s * w, 0, delay)
    m = float(np.abs(w).max())
    e = _exp_for(s * m, EXP_MAX) if m > 0 else 0
    return DagSyn(src, loihi.round_to_grid(s * w / 2.0 ** e), e, delay)


def _shift(a: torch.Tensor, d: int) -> torch.Tensor:
    if d == 0:
        return a
    out = torch.zeros_like(a)
    out[:, d:] = a[:, :a.shape[1] - d]
    return out


def simulate_dag(spec: DagSpec, x) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(spikes, v) per population [B, T, n] on snnhw's core: bit-exact (quantized) or the float twin."""
    exact = spec.quantized
    s_in = torch.as_tensor(np.asarray(x))
    s_in = (s_in != 0).to(torch.int64) if exact else s_in.to(torch.float32)
    outs, spikes, volts = {-1: s_in}, [], []
    with one_thread(), torch.no_grad():
        for i, p in enumerate(spec.pops):
            a = 0
            for sy in p.syns:
                src = outs[sy.src]
                if exact:
                    part = syn.exact_input(src, torch.as_tensor(sy.weight, dtype=torch.int64), sy.weight_exp)
                else:
                    part = syn.trainable_input(src, torch.as_tensor(sy.weight, dtype=torch.float32), 0,
                                               quantized=False)
                a = a + _shift(part, sy.delay)
            bias = None
            if p.bias_mant is not None:
                bias = (loihi.effective_bias(torch.as_tensor(p.bias_mant), loihi.NETX_BIAS_EXP) if exact else
                        torch.as_tensor(p.bias_mant, dtype=torch.float32) * float(2 ** loihi.NETX_BIAS_EXP))
            w_rec = None if p.weight_rec is None else torch.as_tensor(
                p.weight_rec, dtype=torch.int64 if exact else torch.float32)
            tr = cuba_lif_trace(a, CubaParams(p.i_decay, p.v_decay, p.vth_mant, spec.reset), bias, w_rec=w_rec,
                                rec_exp=p.rec_exp, exact=exact)
            outs[i] = tr.s.to(torch.int64) if exact else tr.s
            spikes.append(tr.s.numpy())
            volts.append(tr.v.numpy())
    return spikes, volts


def run_dag_lava(spec: DagSpec, x: np.ndarray) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(spikes, v) per population [B, T, n] on Lava's CPU simulator, all samples side by side
    (block-diagonal weights)."""
    from snnhw.backends.lava_graph import GraphInput, GraphPop, run_graph

    x = (np.asarray(x) != 0).astype(np.int64)
    B, T, n_in = x.shape
    eye = np.eye(B, dtype=np.int64)
    gp = []
    for p in spec.pops:
        bias = np.zeros(p.n, np.int64) if p.bias_mant is None else np.asarray(p.bias_mant, np.int64)
        gp.append(GraphPop(n=B * p.n, du=loihi.lava_du(p.i_decay), dv=loihi.lava_dv(p.v_decay), vth=int(p.vth_mant),
                           bias_mant=np.tile(bias, B), bias_exp=loihi.NETX_BIAS_EXP,
                           inputs=[GraphInput(s.src, np.kron(eye, s.weight), s.weight_exp, s.delay) for s in p.syns],
                           weights_rec=None if p.weight_rec is None else np.kron(eye, p.weight_rec),
                           rec_exp=p.rec_exp))
    data = x.transpose(0, 2, 1).reshape(B * n_in, T)
    outs = run_graph(gp, data, record=range(len(gp)))
    spikes = [o.s.reshape(B, p.n, T).transpose(0, 2, 1) for o, p in zip(outs, spec.pops)]
    volts = [o.v.reshape(B, p.n, T).transpose(0, 2, 1) for o, p in zip(outs, spec.pops)]
    return spikes, volts
