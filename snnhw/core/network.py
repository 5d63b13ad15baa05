"""Run a :class:`~snnhw.spec.NetworkSpec` on torch: Loihi-exact (quantized spec) or float twin.

``simulate(spec, x)`` takes input spikes ``x`` shaped [batch, steps, inputs] — exactly what a Lava
``RingBuffer`` source sends, column t at time step t+1 — and returns the last layer's spikes
[batch, steps, outputs], indexed like Lava's ``RingBuffer`` sink (index t-1 holds time step t).
Each synapse stage (:mod:`snnhw.core.synapse`) adds Lava's one-step Dense delay; the synaptic products
for all time steps are computed at once and only the neuron recurrence (:mod:`snnhw.core.neuron`)
loops over time.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional

import numpy as np
import torch

from snnhw import loihi
from snnhw.core import synapse as syn
from snnhw.core.neuron import CubaParams, CubaTrace, cuba_lif, cuba_lif_trace
from snnhw.errors import InputError
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, SumPool


class SimResult(NamedTuple):
    """Output spikes plus, per neuron layer, spikes and (if recorded) u/v traces, all [B, T, ...]."""

    output: torch.Tensor
    layer_spikes: List[torch.Tensor]
    traces: Optional[List[CubaTrace]]


def _params(layer) -> CubaParams:
    n = layer.neuron
    return CubaParams(n.i_decay, n.v_decay, n.vth_mant, n.reset)


def layer_bias(layer, exact: bool) -> Optional[torch.Tensor]:
    """Effective bias ``B`` [n_out] added to v every step (state units), or None.

    Exact: ``bias_mant << bias_exp`` as Lava computes it; float: ``bias_mant * 2**bias_exp``.
    Conv/pool biases are per channel and repeated over the channel's (H, W) positions."""
    if layer.bias_mant is None:
        return None
    mant = np.asarray(layer.bias_mant)
    if exact:
        b = loihi.effective_bias(torch.as_tensor(mant.astype(np.int64)), layer.bias_exp)
    else:
        b = torch.as_tensor(mant, dtype=torch.float32) * float(2.0 ** layer.bias_exp)
    if isinstance(layer, (Conv, SumPool)):
        b = b.repeat_interleave(int(np.prod(layer.out_shape[1:])))
    return b.reshape(layer.n_out)


def dense_weights(layer: Dense, recurrent: bool = False):
    """(integer matrix, exponent) a Dense layer's feed-forward (or recurrent) input is computed with: the
    coarse matrix, or for a split layer (:attr:`snnhw.spec.Dense.split`) the one wide matrix that sums
    exactly like the coarse and the fine Dense together (:func:`snnhw.loihi.split_wide`)."""
    w, e, fine, f = ((layer.weight_rec, layer.rec_exp, layer.weight_rec_fine, layer.rec_fine_exp) if recurrent
                     else (layer.weight, layer.weight_exp, layer.weight_fine, layer.fine_exp))
    if fine is None:
        return np.asarray(w), int(e)
    return loihi.split_wide(w, e, fine, f)


def synapse(layer, s: torch.Tensor, exact: bool, binary: bool = False) -> torch.Tensor:
    """The input a [B, T, n_out] that ``layer``'s neurons receive (delayed one step), from spikes
    ``s`` [B, T, n_in] of the previous stage: exact, :func:`snnhw.core.synapse.exact_input`'s integers
    (in float32 where :func:`~snnhw.core.synapse.exact_input_float` proves that exact, else int64), or the
    float forward of :func:`snnhw.core.synapse.trainable_input` (float32). ``binary``: the caller
    guarantees ``s`` is 0/1 float32 (simulate's spikes)."""
    exp = layer.weight_exp
    if isinstance(layer, Dense):
        wd, exp = dense_weights(layer)
        w, conv = torch.as_tensor(wd), None
    elif isinstance(layer, Conv):
        w = torch.as_tensor(np.asarray(layer.weight))
        conv = syn.ConvShape(layer.input_shape, layer.stride, layer.padding)
    elif isinstance(layer, SumPool):
        c = layer.input_shape[0]
        w = syn.pool_kernel(c, layer.kernel, layer.weight)
        conv = syn.ConvShape(layer.input_shape, layer.stride, (0, 0), groups=c)
    else:
        raise TypeError(f"layer {layer.name}: {type(layer).__name__} has no synapse")
    w = w.to(s.device)
    if exact:
        graded = isinstance(layer, Dense) and layer.graded_input
        if not binary and s.is_floating_point():
            s = s.to(torch.int64)  # integer payloads (a float is truncated, as exact_input's int64 route does)
        fast = syn.exact_input_float(s, w, exp, conv, graded=graded, binary=binary)
        if fast is not None:  # the same integers in float32 (the neuron kernel reads them directly)
            return fast
        w = w.to(torch.int64) if conv is None else w  # a conv sums in float, exactly (synapse.exact_sum)
        return syn.exact_input(s.to(torch.int64), w, exp, conv, graded=graded)
    return syn.trainable_input(s.to(torch.float32), w.to(torch.float32), exp, conv, quantized=False)


def simulate(spec: NetworkSpec, x, *, exact: Optional[bool] = None, record: bool = False) -> SimResult:
    """Run ``spec`` on input spikes (or graded payloads for a graded first layer) ``x`` [B, T, n_in].

    Runs on ``x``'s device when ``x`` is a tensor (CUDA: the Triton kernels of
    :mod:`snnhw.core.fused_triton`). ``exact`` defaults to ``spec.quantized``. With ``record=True`` the
    u and v traces of every neuron layer are returned (v after reset, as Lava's Monitor shows it).
    """
    exact = spec.quantized if exact is None else exact
    s = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if s.ndim != 3 or s.shape[2] != spec.n_in:
        raise InputError(f"inputs must be shaped [samples, steps, {spec.n_in}], got {tuple(s.shape)}")
    binary = not (isinstance(spec.layers[0], Dense) and spec.layers[0].graded_input)
    if binary:
        s = (s != 0).to(torch.float32)  # Lava's Dense reads binary spikes as bool
    layer_spikes, traces = [], [] if record else None
    for layer in spec.layers:
        if isinstance(layer, Flatten):
            continue  # our tensors are already flat (C, H, W in C-order)
        a = synapse(layer, s, exact, binary=binary)
        bias = layer_bias(layer, exact)
        bias = None if bias is None else bias.to(s.device)
        w_rec, rec_exp = None, 0
        if isinstance(layer, Dense) and layer.weight_rec is not None:
            wr, rec_exp = dense_weights(layer, recurrent=True)
            w_rec = torch.as_tensor(wr, dtype=torch.int64 if exact else torch.float32, device=s.device)
        if record:
            tr = cuba_lif_trace(a, _params(layer), bias, w_rec=w_rec, rec_exp=rec_exp, exact=exact)
            traces.append(tr)
            out = tr.s.to(torch.float32)
        else:
            with torch.no_grad():
                out = cuba_lif(a, _params(layer), bias, w_rec=w_rec, rec_exp=rec_exp, exact=exact)
        layer_spikes.append(out)
        s, binary = out, True
    return SimResult(layer_spikes[-1], layer_spikes, traces)
