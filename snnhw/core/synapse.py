"""The one synapse: what a layer's neurons receive, for every time step at once.

A synapse turns the previous stage's spikes ``s`` [B, T, n_in] into the input ``a`` [B, T, n_out]
that :mod:`snnhw.core.neuron` integrates, in weight units (an input of 1 adds 64 to ``u``):

* dense: ``s @ W.T`` (``s`` may carry graded integer payloads on a graded first layer);
* conv: a 2-D convolution of the (C, H, W) map, C-order flattened (:class:`ConvShape`);
* sum pool: a depthwise conv whose kernel holds one mantissa everywhere (:func:`pool_kernel`);
* recurrent dense: the previous step's own spikes, inside the neuron's time loop
  (:func:`recurrent_exact` / :func:`recurrent_float`).

The sum is scaled by ``2**weight_exp`` (floor, on the chip) and reaches the neurons one step late
(Lava's Dense pipeline, :func:`snnhw.loihi.delay_one_step`). Two versions share these ops:

* :func:`exact_input`: the chip's integers (int64), bit-identical to Lava. The integer sum is computed
  through float BLAS where :func:`snnhw.loihi.float_exact_bound_dtype` proves it exact.
* :func:`trainable_input`: the float32 forward that autograd differentiates; on a quantized layer its
  value is replaced by the exact integer result (straight-through: the gradient is that of the float
  sum). The float32 sum itself is that exact sum when the weights bound it below 2**24, else the exact
  sum is recomputed.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from snnhw import loihi

Recurrent = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ConvShape(NamedTuple):
    """Geometry of a conv or pool synapse on a (C, H, W) map (no batch); ``groups = C`` for a pool."""

    input_shape: Tuple[int, int, int]
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    groups: int = 1


def pool_kernel(channels: int, kernel: Tuple[int, int], weight, dtype=torch.float32,
                device=None) -> torch.Tensor:
    """The depthwise kernel [C, 1, kH, kW] of a sum pool: every entry is the mantissa ``weight``."""
    return torch.full((int(channels), 1, *kernel), float(weight), dtype=dtype, device=device)


def synaptic_sum(s: torch.Tensor, w: torch.Tensor, conv: Optional[ConvShape] = None) -> torch.Tensor:
    """``sum_i w[o, i] s[..., i]`` per step in the dtype of ``s`` and ``w``: [B, T, n_out]. Dense when
    ``conv`` is None (w [n_out, n_in]), else a 2-D conv (w [out, in / groups, kH, kW])."""
    if conv is None:
        return torch.matmul(s, w.t())
    B, T = s.shape[:2]
    x = s.reshape(B * T, *conv.input_shape)
    return F.conv2d(x, w, stride=conv.stride, padding=conv.padding, groups=conv.groups).reshape(B, T, -1)


def _fan_in(s: torch.Tensor, w: torch.Tensor, conv: Optional[ConvShape]) -> int:
    return int(s.shape[-1]) if conv is None else int(w[0].numel())


def _exact_dtype(bound: float) -> torch.dtype:
    dtype = loihi.float_exact_bound_dtype(bound)
    if dtype is None:
        raise loihi.RangeError(f"synaptic sums up to {bound:.3g} are beyond float64's exact integers (2**53)")
    return dtype


def exact_sum(s: torch.Tensor, w: torch.Tensor, conv: Optional[ConvShape] = None) -> torch.Tensor:
    """The integer synaptic sum (int64) of integer-valued ``s`` and ``w``, exactly.

    Dense: :func:`snnhw.loihi.exact_matmul`. Conv/pool: a float conv in the dtype
    :func:`snnhw.loihi.float_exact_bound_dtype` proves exact for ``max|s| * max|w| * fan_in``."""
    if conv is None:
        return loihi.exact_matmul(s, w)
    bound = float(s.abs().max()) * float(w.abs().max()) * _fan_in(s, w, conv) if s.numel() else 0.0
    dtype = _exact_dtype(bound)
    return synaptic_sum(s.to(dtype), w.to(dtype), conv).round().to(torch.int64)


def exact_input(s: torch.Tensor, w: torch.Tensor, weight_exp: int, conv: Optional[ConvShape] = None,
                graded: bool = False) -> torch.Tensor:
    """What Lava's Dense/Conv delivers: ``int32(floor(sum * 2**weight_exp))``, one step late (int64).

    ``graded`` (dense only): the sum wraps to int32 before the exponent, as Lava's graded Dense does."""
    acc = loihi.scale_sum(exact_sum(s, w, conv), weight_exp, graded)
    return loihi.delay_one_step(acc, dim=1)


def _max_abs(x: torch.Tensor) -> float:
    """max|x| in one pass without a copy (0 for an empty tensor)."""
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(abs(float(lo)), abs(float(hi)))


def exact_input_float(s: torch.Tensor, w: torch.Tensor, weight_exp: int, conv: Optional[ConvShape] = None,
                      graded: bool = False, binary: bool = False) -> Optional[torch.Tensor]:
    """:func:`exact_input`'s integers held in float32, computed without an int64 pass, or None when that is
    not provably exact (the caller uses :func:`exact_input`).

    When ``max|s| * max|w| * fan_in * 2**max(exp, 0) < 2**24``, every partial sum of the float32 product
    is an integer below 2**24 (exact in any summation order), so is the sum times ``2**exp`` (a power of
    two), its floor is exact in float32, and no int32 wrap can act (graded or not): the same integers.
    ``binary``: the caller guarantees ``s`` holds 0/1 (max|s| <= 1 without a pass over it)."""
    bound = (1.0 if binary else _max_abs(s)) * _max_abs(w) * _fan_in(s, w, conv) * 2.0 ** max(0, int(weight_exp))
    if loihi.float_exact_bound_dtype(bound) != torch.float32:
        return None
    acc = _delayed_sum(s.to(torch.float32), w.to(torch.float32), conv)
    if weight_exp:
        acc.mul_(2.0 ** weight_exp)
        if weight_exp < 0:
            acc.floor_()
    return acc


def _delayed_sum(s: torch.Tensor, w: torch.Tensor, conv: Optional[ConvShape]) -> torch.Tensor:
    """``delay_one_step(synaptic_sum(s, w, conv), dim=1)`` for s [B, T, n_in]; a dense sum is written in
    place by one matrix product of the rows shifted by one step (no zero-filled copy)."""
    if conv is not None or s.dim() != 3 or s.shape[1] < 2:
        return loihi.delay_one_step(synaptic_sum(s, w, conv), dim=1)
    B, T, n = s.shape
    out = torch.empty(B, T, w.shape[0], dtype=s.dtype, device=s.device)
    flat = out.view(B * T, -1)
    torch.matmul(s.reshape(B * T, n)[:-1], w.t(), out=flat[1:])  # row b*T+t gets step t-1 (t >= 1)
    out[:, 0] = 0
    return out


def _weight_bound(fan_in: int, w: torch.Tensor, exp: int) -> float:
    """Upper bound on |sum * 2**exp| for 0/1 inputs (cheap: from the weights only)."""
    return float(fan_in) * float(w.detach().abs().max()) * 2.0 ** max(0, int(exp)) + 1.0


def straight_through(value: torch.Tensor, exact: torch.Tensor, bound: float) -> torch.Tensor:
    """``exact`` in the forward, the gradient of ``value`` in the backward, in the float dtype that
    holds integers up to ``bound`` (>= max|exact|) exactly."""
    vf = value.to(_exact_dtype(bound))
    return vf + (exact.to(vf.dtype) - vf).detach()


class _FloorDelay(torch.autograd.Function):
    """``delay_one_step(floor(raw * scale), dim=1)`` for float32 raw [B, T, N] whose scaled values are
    exact integers' floors (:func:`trainable_input`); backward: the gradient of the unrounded
    ``delay_one_step(raw * scale)`` (straight-through floor). One output tensor, nothing saved."""

    @staticmethod
    def forward(ctx, raw, scale):
        ctx.scale = scale
        out = torch.empty_like(raw)
        out[:, 0] = 0
        if scale == 1.0:
            out[:, 1:] = raw[:, :-1]
        else:
            torch.mul(raw[:, :-1], scale, out=out[:, 1:])
            out[:, 1:].floor_()
        return out

    @staticmethod
    def backward(ctx, g):
        graw = torch.empty_like(g)
        graw[:, -1] = 0
        if ctx.scale == 1.0:
            graw[:, :-1] = g[:, 1:]
        else:
            torch.mul(g[:, 1:], ctx.scale, out=graw[:, :-1])
        return graw, None


def trainable_input(s: torch.Tensor, w: torch.Tensor, weight_exp: int, conv: Optional[ConvShape] = None,
                    quantized: bool = True) -> torch.Tensor:
    """The differentiable synaptic input [B, T, n_out], one step late: ``synaptic_sum * 2**weight_exp``.

    ``s``: 0/1 spikes (float); ``w``: the (quantized, integer-valued on a quantized layer) weights with
    their autograd graph. On a quantized layer the value is :func:`exact_input`'s, straight-through."""
    raw = synaptic_sum(s, w, conv)
    fan_in = _fan_in(s, w, conv)
    if quantized and raw.dtype == torch.float32 and raw.dim() == 3 and \
            loihi.float_exact_bound_dtype(_weight_bound(fan_in, w, weight_exp)) == torch.float32:
        # the sum, its scaling by 2**exp and the floor are exact in float32 and below 2**31 (no wrap):
        # the same value as the int64 route below, in one pass
        return _FloorDelay.apply(raw, float(2.0 ** weight_exp))
    acc = raw * (2.0 ** weight_exp)
    if quantized:
        if loihi.float_exact_bound_dtype(_weight_bound(fan_in, w, 0)) == torch.float32:
            total = raw.detach().round().to(torch.int64)  # the float32 sum is already the exact sum
        else:
            total = exact_sum(s.detach(), w.detach(), conv)
        acc = straight_through(acc, loihi.scale_sum(total, weight_exp), _weight_bound(fan_in, w, weight_exp))
    return loihi.delay_one_step(acc, dim=1)


def recurrent_exact(w_rec: torch.Tensor, rec_exp: int) -> Recurrent:
    """The recurrent Dense in the neuron's loop (exact): ``at + int32(floor(s_prev @ W.T * 2**rec_exp))``,
    summed in int32 as two ports into one InPort are (:func:`snnhw.loihi.sum_ports`)."""
    wr = w_rec.detach().to(torch.int64)
    return lambda at, s_prev: loihi.sum_ports(at, loihi.dense_accumulate(s_prev.to(torch.int64), wr, rec_exp))


def recurrent_float(w_rec: torch.Tensor, rec_exp, dtype=torch.float32) -> Recurrent:
    """The recurrent Dense in the float loop: ``at + s_prev @ (W * 2**rec_exp).T``."""
    wr = w_rec.detach().to(dtype) * (2.0 ** rec_exp)
    return lambda at, s_prev: at + s_prev @ wr.t()
