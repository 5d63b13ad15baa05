"""The float reference: a :class:`~snnhw.io.nir.NirModel` simulated in float64 with NIR semantics.

The populations run in topological order. Each one's input is the sum over every linear path into it
(:func:`snnhw.io.nir.chain.linear_input`: fan-in, skip connections, any DAG of Affine/Conv/pool/
Scale/Flatten/Delay nodes), for all steps at once and in the same step (NIR has no synaptic delay;
``synapse_delay`` adds Loihi's); the neurons then run the core's one CUBA loop (:func:`snnhw.core.neuron.cuba_loop`) with the stage's own per-neuron Euler coefficients
(:class:`~snnhw.io.nir.NeuronDyn`) as a :class:`~snnhw.core.neuron.FloatCuba`, in NIR units::

    I[t] = alpha I[t-1] + g_syn a[t]             (gain = g_syn)
    v[t] = beta v[t-1] + g_mem I[t] + leak       (v_gain = g_mem, bias = leak)
    s[t] = v[t] > theta;  "zero": v <- v_reset,  "subtract": v <- v - theta
    ("subtract-undecayed", snnTorch's: v[t+1] = beta v[t] + g_mem I[t+1] + leak - theta s[t])

Recurrent edges act with the previous step's spikes (``a[t] + s[t-1] W_rec^T + b_rec``). A readout
(LI/CubaLI) never fires; its voltage is its output.
"""
from __future__ import annotations

import contextlib
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import torch

from snnhw.core import synapse
from snnhw.core.neuron import FloatCuba, cuba_loop
from snnhw.errors import InputError
from snnhw.io.nir import NirModel, Stage
from snnhw.io.nir.chain import linear_input, recurrent, subdag
from snnhw.io.nir.euler import NeuronDyn
from snnhw.io.nir.model import FlatGraph

RESETS = ("zero", "subtract", "subtract-undecayed")  # core/neuron.py's conventions
NEVER = 1e300  # the threshold of a non-spiking readout (finite, so that a subtract reset stays v - 0)


class RefResult(NamedTuple):
    """Float reference: output spikes [B, T, n_out] and, per neuron population (topological order),
    spikes and (if recorded) (I, v) traces in NIR units (v after the reset); ``output_voltage``: the
    output population's v [B, T, n_out] when it is a non-spiking readout (LI/CubaLI), else None."""

    output: np.ndarray
    layer_spikes: List[np.ndarray]
    traces: Optional[List[Tuple[np.ndarray, np.ndarray]]]
    output_voltage: Optional[np.ndarray] = None


@contextlib.contextmanager
def one_thread():
    """Run a loop of tiny tensor ops on one intra-op thread (several threads only add synchronisation,
    severalfold slower on a busy machine); the previous setting is restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _f64(v) -> torch.Tensor:
    return torch.as_tensor(np.asarray(v, dtype=np.float64))


def synaptic_input(st: Stage, s: torch.Tensor) -> torch.Tensor:
    """What a chain stage's synapse delivers for all steps at once: [B, T, n_out] (float64)."""
    if st.kind == "identity":
        return s.clone()
    if st.kind == "dense":
        return synapse.synaptic_sum(s, torch.as_tensor(st.weight, dtype=torch.float64))
    if st.kind == "conv":
        return synapse.synaptic_sum(s, torch.as_tensor(st.weight, dtype=torch.float64),
                                    synapse.ConvShape(tuple(st.in_shape), tuple(st.stride), tuple(st.padding)))
    if st.kind == "pool":
        c = st.in_shape[0]
        return synapse.synaptic_sum(s, synapse.pool_kernel(c, st.kernel, 1.0, dtype=torch.float64),
                                    synapse.ConvShape(tuple(st.in_shape), tuple(st.stride), groups=c))
    raise ValueError(f"stage {st.name} ({st.kind}) has no synapse")


def _pop_input(g: FlatGraph, pop: str, values, synapse_delay: int) -> torch.Tensor:
    """The summed input [B, T, n] into population ``pop`` (every linear path from every source, module
    docstring), ``synapse_delay`` steps late; the constant part (biases) is present from step 0."""
    preds = g.ff_preds(pop)
    lin, _ = subdag(g, preds)
    x, c = linear_input(g, preds, lin, values)
    B, T = x.shape[:2]
    a = x.reshape(B, T, -1)
    if synapse_delay:
        a = torch.cat([torch.zeros(B, synapse_delay, a.shape[2], dtype=torch.float64), a[:, :T - synapse_delay]],
                      dim=1)
    if c is not None:
        a = a + c.reshape(-1)
    return a


def _recurrent(g: FlatGraph, pop: str, T: int, a: torch.Tensor):
    """``(a_t, s_prev) -> a_t + s_prev W_rec^T (+ b_rec)`` for the loop, or None; the recurrent bias
    enters at step 0 through ``a`` (later steps add it with the recurrent input)."""
    w, b, _ = recurrent(g, pop)
    if w is None:
        return None
    rec = synapse.recurrent_float(torch.as_tensor(w, dtype=torch.float64), 0, dtype=torch.float64)
    if b is None:
        return rec
    br = torch.as_tensor(b, dtype=torch.float64)
    if T:
        a[:, 0] = a[:, 0] + br
    return lambda at, s_prev: rec(at, s_prev) + br


def _stage_params(nd: NeuronDyn, reset: str, theta_scale: float, shared_decay: bool) -> FloatCuba:
    alpha, beta = _f64(nd.alpha), _f64(nd.beta)
    if shared_decay:
        alpha = torch.full_like(alpha, float(np.median(nd.alpha)))
        beta = torch.full_like(beta, float(np.median(nd.beta)))
    leak = _f64(nd.leak)
    theta = np.where(np.isfinite(nd.theta), nd.theta, NEVER)  # a readout: never fires (finite: no inf*0)
    return FloatCuba(alpha=alpha, beta=beta, theta=_f64(theta) * theta_scale, gain=_f64(nd.g_syn),
                     bias=leak if bool(torch.any(leak != 0)) else None, reset=reset, v_gain=_f64(nd.g_mem),
                     v_reset=_f64(nd.v_reset))


def _stage_input(st: Stage, s: torch.Tensor, synapse_delay: int) -> torch.Tensor:
    """A chain stage's synaptic input [B, T, n] with ``synapse_delay`` steps of delay and the constant
    biases; the recurrent bias enters at step 0 here (later steps add it with the recurrent input)."""
    B, T = s.shape[:2]
    a = synaptic_input(st, s)
    if synapse_delay:
        a = torch.cat([torch.zeros(B, synapse_delay, a.shape[2], dtype=torch.float64), a[:, :T - synapse_delay]],
                      dim=1)
    if st.bias is not None:  # a constant: present from step 0 (as Loihi's bias is), delay or not
        a = a + torch.as_tensor(st.bias, dtype=torch.float64)
    if st.bias_rec is not None and T:
        a[:, 0] = a[:, 0] + torch.as_tensor(st.bias_rec, dtype=torch.float64)
    return a


def _stage_recurrent(st: Stage):
    if st.weight_rec is None:
        return None
    rec = synapse.recurrent_float(torch.as_tensor(st.weight_rec, dtype=torch.float64), 0, dtype=torch.float64)
    if st.bias_rec is None:
        return rec
    br = torch.as_tensor(st.bias_rec, dtype=torch.float64)
    return lambda at, s_prev: rec(at, s_prev) + br


def _by_stages(model: NirModel, s: torch.Tensor, reset: str, synapse_delay: int, record: bool,
               theta_scale, shared_decay: bool, upto: Optional[int]):
    """The chain's stages, one after the other (what the chip mapping and the compensation change)."""
    spikes, traces, vout = [], [] if record else None, None
    for k, st in enumerate(model.neuron_stages):
        if upto is not None and k >= upto:
            break
        nd = st.neuron
        params = _stage_params(nd, reset, theta_scale[k] if theta_scale is not None else 1.0, shared_decay)
        run = cuba_loop(_stage_input(st, s, synapse_delay), params, recurrent=_stage_recurrent(st),
                        record=record or not nd.spiking)
        spikes.append(run.s.numpy())
        if record:
            traces.append((run.u.numpy(), run.v.numpy()))
        s = run.s if nd.spiking else run.v  # a readout passes its voltage on
        vout = None if nd.spiking else run.v.numpy()
    return spikes, traces, vout, len(spikes) - 1


def _by_graph(model: NirModel, s: torch.Tensor, reset: str, synapse_delay: int, record: bool,
              theta_scale, shared_decay: bool, upto: Optional[int]):
    """Every population in topological order, its input summed over every linear path into it."""
    g = model.graph
    B, T = s.shape[:2]
    values = {g.start: s.reshape((B, T) + tuple(g.shapes[g.start]))}
    spikes, traces, vout = [], [] if record else None, None
    for k, pop in enumerate(g.populations):
        if upto is not None and k >= upto:
            break
        nd = g.neurons[pop]
        params = _stage_params(nd, reset, theta_scale[k] if theta_scale is not None else 1.0, shared_decay)
        a = _pop_input(g, pop, values, synapse_delay)
        rec = _recurrent(g, pop, T, a)
        run = cuba_loop(a, params, recurrent=rec, record=record or not nd.spiking)
        spikes.append(run.s.numpy())
        if record:
            traces.append((run.u.numpy(), run.v.numpy()))
        out = run.s if nd.spiking else run.v  # a readout passes its voltage on
        values[pop] = out.reshape((B, T) + tuple(g.shapes[pop]))
        if pop == g.output and not nd.spiking:
            vout = run.v.numpy()
    pops = g.populations[:len(spikes)]
    return spikes, traces, vout, pops.index(g.output) if g.output in pops else len(spikes) - 1


def float_reference(model: NirModel, x, *, reset: str = "zero", synapse_delay: int = 0, record: bool = False,
                    theta_scale: Optional[List[float]] = None, shared_decay: bool = False,
                    upto: Optional[int] = None, via: str = "auto") -> RefResult:
    """Simulate ``model`` in float64 with NIR semantics (module docstring) on inputs ``x`` [B, T, n_in].

    ``reset``: "zero" (what NIR says), "subtract" (Sinabs, Spyx, Rockpool: theta comes off at the spike
    step) or "subtract-undecayed" (snnTorch's subtract: theta comes off the next update, after the decay).
    ``synapse_delay``: extra steps each population's input waits (0 = NIR; 1 = Loihi's Dense pipeline;
    constant biases are present from step 0 either way).
    ``theta_scale``: optional per-population threshold multipliers (used by the compensation).
    ``shared_decay``: replace per-neuron alpha/beta by their median (what a shared-decay chip does).
    ``upto``: stop after this many populations (topological order).
    ``via``: "auto" runs a chain through its stages (so that a model whose stages were changed, e.g. by
    the subtract-reset compensation, runs as changed) and any other graph population by population;
    "graph" / "stages" force one (the tests check both agree on chains).
    """
    if reset not in RESETS:
        raise InputError(f"reset must be one of {', '.join(RESETS)}, not '{reset}'")
    s = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if s.ndim != 3 or s.shape[2] != model.n_in:
        raise InputError(f"inputs must be shaped [samples, steps, {model.n_in}], got {tuple(s.shape)}")
    chain = bool(model.stages) and not model.chain_error
    run = _by_stages if (via == "stages" or (via == "auto" and chain) or model.graph is None) else _by_graph
    with one_thread():
        spikes, traces, vout, out_k = run(model, s, reset, synapse_delay, record, theta_scale, shared_decay, upto)
    return RefResult(spikes[out_k], spikes, traces, vout)
