"""The float reference: a :class:`~snnhw.io.nir.NirModel` simulated in float64 with NIR semantics.

Each stage's synapse (:mod:`snnhw.core.synapse`) delivers its input for all steps at once, in the same
step (NIR has no synaptic delay; ``synapse_delay`` adds Loihi's); the neurons then run the core's one
CUBA loop (:func:`snnhw.core.neuron.cuba_loop`) with the stage's own per-neuron Euler coefficients
(:class:`~snnhw.io.nir.NeuronDyn`) as a :class:`~snnhw.core.neuron.FloatCuba`, in NIR units::

    I[t] = alpha I[t-1] + g_syn a[t]             (gain = g_syn)
    v[t] = beta v[t-1] + g_mem I[t] + leak       (v_gain = g_mem, bias = leak)
    s[t] = v[t] > theta;  "zero": v <- v_reset,  "subtract": v <- v - theta

Recurrent edges act with the previous step's spikes (``a[t] + s[t-1] W_rec^T + b_rec``).
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

RESETS = ("zero", "subtract")


class RefResult(NamedTuple):
    """Float reference: output spikes [B, T, n_out] and, per neuron stage, spikes and (if recorded)
    (I, v) traces in NIR units (v after the reset)."""

    output: np.ndarray
    layer_spikes: List[np.ndarray]
    traces: Optional[List[Tuple[np.ndarray, np.ndarray]]]


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
    """What the stage's synapse delivers for all steps at once: [B, T, n_out] (float64)."""
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


def _stage_input(st: Stage, s: torch.Tensor, synapse_delay: int) -> torch.Tensor:
    """The synaptic input [B, T, n] with ``synapse_delay`` steps of delay and the constant biases; the
    recurrent bias enters at step 0 here (later steps add it with the recurrent input)."""
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


def _recurrent(st: Stage):
    """``(a_t, s_prev) -> a_t + s_prev W_rec^T (+ b_rec)`` for the loop, or None."""
    if st.weight_rec is None:
        return None
    rec = synapse.recurrent_float(torch.as_tensor(st.weight_rec, dtype=torch.float64), 0, dtype=torch.float64)
    if st.bias_rec is None:
        return rec
    br = torch.as_tensor(st.bias_rec, dtype=torch.float64)
    return lambda at, s_prev: rec(at, s_prev) + br


def _stage_params(st: Stage, reset: str, theta_scale: float, shared_decay: bool) -> FloatCuba:
    nd = st.neuron
    alpha, beta = _f64(nd.alpha), _f64(nd.beta)
    if shared_decay:
        alpha = torch.full_like(alpha, float(np.median(nd.alpha)))
        beta = torch.full_like(beta, float(np.median(nd.beta)))
    leak = _f64(nd.leak)
    return FloatCuba(alpha=alpha, beta=beta, theta=_f64(nd.theta) * theta_scale, gain=_f64(nd.g_syn),
                     bias=leak if bool(torch.any(leak != 0)) else None, reset=reset, v_gain=_f64(nd.g_mem),
                     v_reset=_f64(nd.v_reset))


def float_reference(model: NirModel, x, *, reset: str = "zero", synapse_delay: int = 0, record: bool = False,
                    theta_scale: Optional[List[float]] = None, shared_decay: bool = False,
                    upto: Optional[int] = None) -> RefResult:
    """Simulate ``model`` in float64 with NIR semantics (module docstring) on inputs ``x`` [B, T, n_in].

    ``reset``: "zero" (what NIR says) or "subtract" (what snnTorch-trained graphs often mean).
    ``synapse_delay``: extra steps each synapse's spike input waits (0 = NIR; 1 = Loihi's Dense pipeline;
    a constant Affine bias is present from step 0 either way).
    ``theta_scale``: optional per-neuron-stage threshold multipliers (used by the compensation).
    ``shared_decay``: replace per-neuron alpha/beta by their median (what a shared-decay chip does).
    ``upto``: stop after this many neuron stages.
    """
    if reset not in RESETS:
        raise InputError(f"reset must be 'zero' or 'subtract', not '{reset}'")
    s = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if s.ndim != 3 or s.shape[2] != model.n_in:
        raise InputError(f"inputs must be shaped [samples, steps, {model.n_in}], got {tuple(s.shape)}")
    spikes, traces = [], [] if record else None
    with one_thread():
        for k, st in enumerate(model.neuron_stages):
            if upto is not None and k >= upto:
                break
            params = _stage_params(st, reset, theta_scale[k] if theta_scale is not None else 1.0, shared_decay)
            run = cuba_loop(_stage_input(st, s, synapse_delay), params, recurrent=_recurrent(st), record=record)
            spikes.append(run.s.numpy())
            if record:
                traces.append((run.u.numpy(), run.v.numpy()))
            s = run.s
    return RefResult(spikes[-1], spikes, traces)
