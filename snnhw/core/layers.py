"""Trainable spiking layers whose forward pass IS the chip's arithmetic (quantization-aware training).

Every layer is a synapse followed by a CUBA LIF population, in Lava's order ``Dense -> LIF``, and
converts to and from the matching :mod:`snnhw.spec` layer. Units are the chip's (:mod:`snnhw.loihi`):

* ``weight`` (a float ``nn.Parameter``) is held in **mantissa units**. On a quantized layer the forward
  uses ``quantize_weight(weight, weight_exp)``: rounded to the nearest point of :func:`weight_grid`
  (even integers, multiples of ``2**-weight_exp`` for a negative exponent) clamped to at most
  ``WEIGHT_MANT_MAX = 254`` (8-bit signed mantissas with the LSB Lava's mixed-sign Dense clears;
  -256 is left out because an all-negative matrix holding it is altered by Lava's inhibitory sign
  mode and netx's re-encoding). The backward is straight-through inside the range and zero outside.
  Every grid point is also exactly storable in a lava-dl netx file.
* ``weight_exp`` (int, -8..0 while training; a positive exponent from an init is folded into the
  weights; conv layers always use 0, as Lava's Conv ignores it) scales the accumulated sum by ``2**weight_exp`` with floor rounding
  (:func:`snnhw.loihi.dense_accumulate`); the floor is straight-through in the backward.
* the synaptic input reaches the neurons one step late (:func:`snnhw.loihi.delay_one_step`).
* neurons: :func:`snnhw.core.neuron.cuba_lif` with ``exact=True`` (integer, bit-identical to Lava) on
  a quantized layer, the float twin otherwise. ``vth_mant`` (17-bit unsigned) and the decays
  (12-bit, netx units) are per-layer constants chosen at init and kept legal (clamped, integer).
* optional ``bias`` (mantissa units, 13-bit signed, rounded with STE): ``B = bias_mant << 6`` (netx).

Tensors are ``[batch, time, features]``; conv/pool layers see features as the C-order flattening of
``(C, H, W)``. A :class:`SpikingNet` built from these layers converts to a
:class:`~snnhw.spec.NetworkSpec` (:meth:`SpikingNet.to_spec`) whose
:func:`snnhw.core.network.simulate` output equals the model's forward output exactly.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from snnhw import loihi
from snnhw.core.neuron import CubaParams, cuba_lif
from snnhw.core.surrogate import Surrogate
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

WEIGHT_MANT_MAX = 254  # largest trained |mantissa| (even); see module docstring for why not 256
BIAS_MANT_RANGE = loihi.RANGES["bias_mant"]


class _RoundGridClamp(torch.autograd.Function):
    """Nearest multiple of ``step`` in [-lim, lim]; straight-through inside the range, zero outside."""

    @staticmethod
    def forward(ctx, w, step, lim):
        ctx.save_for_backward(w)
        ctx.lim = lim
        return (torch.round(w / step) * step).clamp(-lim, lim)

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        inside = (w.abs() <= ctx.lim + 1).to(g.dtype)
        return g * inside, None, None


def weight_grid(weight_exp: int) -> Tuple[int, int]:
    """(step, limit) of the trainable mantissa grid for a layer with ``weight_exp`` (<= 0).

    Mantissas are multiples of ``step = max(2, 2**-weight_exp)`` in ``[-limit, limit]``: even (Lava's
    mixed-sign Dense clears the LSB) and, for a negative exponent, multiples of ``2**-weight_exp`` so
    that ``weight * 2**weight_exp`` is an integer — a netx file stores exactly these integers (it has
    no exponent), and ``floor(sum * 2**weight_exp)`` then loses nothing. ``limit`` is the largest such
    multiple <= 254.
    """
    step = max(2, 1 << max(0, -int(weight_exp)))
    return step, (WEIGHT_MANT_MAX // step) * step


def quantize_weight(w: torch.Tensor, weight_exp: int = 0) -> torch.Tensor:
    """Legal Loihi mixed-sign weight mantissas on :func:`weight_grid` with a straight-through gradient."""
    step, lim = weight_grid(weight_exp)
    return _RoundGridClamp.apply(w, step, lim)


def quantize_bias(b: torch.Tensor) -> torch.Tensor:
    """13-bit signed bias mantissas (round half to even, clamp) with a straight-through gradient."""
    lo, hi = BIAS_MANT_RANGE
    q = torch.round(b).clamp(lo, hi)
    return b + (q - b).detach()


def _ste(value_float: torch.Tensor, exact: torch.Tensor, bound: float) -> torch.Tensor:
    """``exact`` in the forward, the gradient of ``value_float`` in the backward. ``bound`` >= max|exact|
    decides whether float32 holds the integers exactly (below 2**24) or float64 is needed."""
    dtype = torch.float32 if bound < 2 ** 24 else torch.float64
    vf = value_float.to(dtype)
    return vf + (exact.to(dtype) - vf).detach()


def _bound(fan_in: int, w: torch.Tensor, exp: int) -> float:
    """Upper bound on |sum * 2**exp| for 0/1 inputs (cheap: from the weights only)."""
    return float(fan_in) * float(w.detach().abs().max()) * 2.0 ** max(0, int(exp)) + 1.0


def _neuron_params(neuron: Neuron) -> CubaParams:
    return CubaParams(neuron.i_decay, neuron.v_decay, neuron.vth_mant, neuron.reset)


class _SpikingLayer(nn.Module):
    """Shared neuron handling: legal per-layer constants and the CUBA LIF call."""

    kind = ""

    def __init__(self, name: str, neuron: Neuron, quantized: bool, surrogate: Surrogate,
                 weight_exp: int = 0):
        super().__init__()
        self.name = name
        self.quantized = bool(quantized)
        self.surrogate = surrogate
        self.neuron = Neuron(**vars(neuron)) if isinstance(neuron, Neuron) else Neuron(**neuron)
        self.weight_exp = int(weight_exp)
        self.legalize_constants()

    def legalize_constants(self) -> None:
        """Make vth_mant / decays / weight_exp legal chip integers on a quantized layer (clamp+round)."""
        if not self.quantized:
            return
        n = self.neuron
        lo, hi = loihi.RANGES["vth_mant"]
        n.vth_mant = int(min(max(round(float(n.vth_mant)), lo), hi))
        n.i_decay = int(min(max(round(float(n.i_decay)), 0), loihi.DECAY_UNITY))
        n.v_decay = int(min(max(round(float(n.v_decay)), 0), loihi.DECAY_UNITY))
        self.weight_exp = self._legal_exp("weight", self.weight_exp)

    def _legal_exp(self, name: str, exp) -> int:
        """Clamp an exponent to -8..0. A positive exponent is folded into the float weights (same
        effective weights), because a netx file cannot hold effective weights beyond 8 bits."""
        exp = int(exp)
        p = getattr(self, name, None)
        if exp > 0 and isinstance(p, nn.Parameter):
            with torch.no_grad():
                p.mul_(float(2 ** exp))
            exp = 0
        lo = loihi.RANGES["weight_exp"][0]
        return int(min(max(exp, lo), 0)) if isinstance(p, nn.Parameter) else int(min(max(exp, lo), loihi.RANGES["weight_exp"][1]))

    def effective_bias(self, per_channel: int = 1) -> Optional[torch.Tensor]:
        """Bias added to v every step, in state units (``bias_mant << 6``), or None."""
        if getattr(self, "bias", None) is None:
            return None
        mant = quantize_bias(self.bias) if self.quantized else self.bias
        b = mant * float(1 << loihi.NETX_BIAS_EXP)
        if per_channel > 1:
            b = b.repeat_interleave(per_channel)
        return b

    def bias_mant_array(self) -> Optional[np.ndarray]:
        if getattr(self, "bias", None) is None:
            return None
        with torch.no_grad():
            if self.quantized:
                return quantize_bias(self.bias).detach().cpu().numpy().astype(np.int64)
            return self.bias.detach().cpu().numpy().astype(np.float32)

    def neurons(self, a: torch.Tensor, bias=None, w_rec=None, rec_exp: int = 0) -> torch.Tensor:
        dev = a.device
        if dev.type != "cpu":
            # snnhw.core.neuron allocates its state on the CPU: run the neuron recurrence there
            # (synapses stay on the accelerator); autograd carries the gradients across.
            a = a.cpu()
            bias = None if bias is None else bias.cpu()
            w_rec = None if w_rec is None else w_rec.cpu()
        s = cuba_lif(a, _neuron_params(self.neuron), bias, w_rec=w_rec, rec_exp=rec_exp,
                     exact=self.quantized, surrogate=self.surrogate)
        return s.to(dev)

    def clamp_parameters_(self) -> None:
        """Keep the float shadow weights near the legal grid (called after each optimizer step)."""
        with torch.no_grad():
            for name, exp in (("weight", self.weight_exp), ("weight_rec", getattr(self, "rec_exp", 0))):
                p = getattr(self, name, None)
                if isinstance(p, nn.Parameter) and self.quantized:
                    lim = weight_grid(exp)[1]
                    p.clamp_(-lim - 1, lim + 1)
            b = getattr(self, "bias", None)
            if isinstance(b, nn.Parameter) and self.quantized:
                b.clamp_(BIAS_MANT_RANGE[0] - 0.5, BIAS_MANT_RANGE[1] + 0.5)

    def _weights(self, name: str = "weight") -> torch.Tensor:
        p = getattr(self, name)
        exp = self.weight_exp if name == "weight" else self.rec_exp
        return quantize_weight(p, exp) if self.quantized else p

    def _mant_array(self, name: str = "weight") -> np.ndarray:
        with torch.no_grad():
            w = self._weights(name).detach().cpu().numpy()
        return w.astype(np.int64) if self.quantized else w.astype(np.float32)


class SpikingDense(_SpikingLayer):
    """Dense synapse (+ optional recurrent Dense ``weight_rec``, one step delayed) + CUBA LIF."""

    kind = "dense"

    def __init__(self, name: str, n_in: int, n_out: int, neuron: Neuron, *, quantized: bool = True,
                 weight_exp: int = 0, recurrent: bool = False, rec_exp: int = 0, bias: bool = False,
                 surrogate: Surrogate = Surrogate()):
        super().__init__(name, neuron, quantized, surrogate, weight_exp)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.weight = nn.Parameter(torch.zeros(self.n_out, self.n_in))
        self.weight_rec = nn.Parameter(torch.zeros(self.n_out, self.n_out)) if recurrent else None
        self.rec_exp = int(rec_exp)
        self.bias = nn.Parameter(torch.zeros(self.n_out)) if bias else None

    def legalize_constants(self) -> None:
        super().legalize_constants()
        if self.quantized and hasattr(self, "rec_exp"):
            self.rec_exp = self._legal_exp("weight_rec", self.rec_exp)

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return (self.n_out,)

    def synapse(self, s: torch.Tensor) -> torch.Tensor:
        """Synaptic input [B, T, n_out] in weight units, already delayed one step."""
        w = self._weights()
        raw = torch.matmul(s, w.t())
        acc = raw * (2.0 ** self.weight_exp)
        if self.quantized:
            bound = _bound(self.n_in, w, 0)
            if bound < 2 ** 24:  # float32 already holds the integer sum exactly: floor/wrap it as Lava does
                # (integer-valued, so the cast is exact without a rounding pass)
                exact = loihi.i32(loihi.shift_floor(raw.detach().to(torch.int64), self.weight_exp))
            else:
                exact = loihi.dense_accumulate(s.detach().to(torch.int64), w.detach().to(torch.int64),
                                               self.weight_exp)
            acc = _ste(acc, exact, _bound(self.n_in, w, self.weight_exp))
        return loihi.delay_one_step(acc, dim=1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a = self.synapse(s)
        w_rec = self._weights("weight_rec") if self.weight_rec is not None else None
        return self.neurons(a, self.effective_bias(), w_rec=w_rec, rec_exp=self.rec_exp)

    def to_spec_layer(self) -> Dense:
        return Dense(name=self.name, weight=self._mant_array(), neuron=Neuron(**vars(self.neuron)),
                     weight_exp=self.weight_exp, bias_mant=self.bias_mant_array(),
                     weight_rec=self._mant_array("weight_rec") if self.weight_rec is not None else None,
                     rec_exp=self.rec_exp)

    def synapse_count(self) -> int:
        return self.n_in * self.n_out + (self.n_out ** 2 if self.weight_rec is not None else 0)


class SpikingConv(_SpikingLayer):
    """2-D convolution synapse on a (C, H, W) map + CUBA LIF (one population per output pixel)."""

    kind = "conv"

    def __init__(self, name: str, input_shape: Sequence[int], out_channels: int, kernel: int,
                 neuron: Neuron, *, stride: int = 1, padding: int = 0, quantized: bool = True,
                 weight_exp: int = 0, bias: bool = False, surrogate: Surrogate = Surrogate()):
        super().__init__(name, neuron, quantized, surrogate, weight_exp)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.stride, self.padding = (int(stride),) * 2, (int(padding),) * 2
        c = self.input_shape[0]
        self.weight = nn.Parameter(torch.zeros(int(out_channels), c, int(kernel), int(kernel)))
        self.bias = nn.Parameter(torch.zeros(int(out_channels))) if bias else None

    def _legal_exp(self, name: str, exp) -> int:
        """Conv layers always run with ``weight_exp = 0``: Lava's Conv process ignores the exponent.
        Any exponent from an init is folded into the float weights (``w * 2**exp``)."""
        exp = int(exp)
        p = getattr(self, name, None)
        if exp != 0 and isinstance(p, nn.Parameter):
            with torch.no_grad():
                p.mul_(float(2.0 ** exp))
            return 0
        return exp if not isinstance(p, nn.Parameter) else 0

    @property
    def out_shape(self) -> Tuple[int, int, int]:
        c, h, w = self.input_shape
        k = self.weight.shape[2]
        return (int(self.weight.shape[0]), (h + 2 * self.padding[0] - k) // self.stride[0] + 1,
                (w + 2 * self.padding[1] - k) // self.stride[1] + 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        B, T = s.shape[:2]
        w = self._weights()
        x = s.reshape(B * T, *self.input_shape)
        raw = F.conv2d(x, w, stride=self.stride, padding=self.padding)
        acc = raw * (2.0 ** self.weight_exp)
        if self.quantized:
            if _bound(int(w[0].numel()), w, 0) >= 2 ** 24:  # float32 would not hold the sums exactly
                raw = F.conv2d(x.detach().to(torch.float64), w.detach().to(torch.float64), stride=self.stride,
                               padding=self.padding)
            exact = loihi.i32(loihi.shift_floor(raw.detach().round().to(torch.int64), self.weight_exp))
            acc = _ste(acc, exact, _bound(int(w[0].numel()), w, self.weight_exp))
        a = loihi.delay_one_step(acc.reshape(B, T, -1), dim=1)
        per = int(np.prod(self.out_shape[1:]))
        return self.neurons(a, self.effective_bias(per))

    def to_spec_layer(self) -> Conv:
        return Conv(name=self.name, weight=self._mant_array(), input_shape=self.input_shape,
                    neuron=Neuron(**vars(self.neuron)), stride=self.stride, padding=self.padding,
                    weight_exp=self.weight_exp, bias_mant=self.bias_mant_array())

    def synapse_count(self) -> int:
        oc, ic, kh, kw = self.weight.shape
        return int(np.prod(self.out_shape)) * ic * kh * kw


class SpikingSumPool(_SpikingLayer):
    """Sum pooling with one fixed integer mantissa ``pool_weight`` per window + CUBA LIF (not trained)."""

    kind = "pool"

    def __init__(self, name: str, input_shape: Sequence[int], kernel: int, neuron: Neuron, *,
                 pool_weight: int = 64, quantized: bool = True, weight_exp: int = 0,
                 surrogate: Surrogate = Surrogate()):
        super().__init__(name, neuron, quantized, surrogate, weight_exp)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.kernel = (int(kernel),) * 2
        self.pool_weight = int(pool_weight) if quantized else float(pool_weight)
        self.bias = None

    @property
    def out_shape(self) -> Tuple[int, int, int]:
        c, h, w = self.input_shape
        return (c, (h - self.kernel[0]) // self.kernel[0] + 1, (w - self.kernel[1]) // self.kernel[1] + 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        B, T = s.shape[:2]
        c = self.input_shape[0]
        x = s.reshape(B * T, *self.input_shape)
        w = torch.full((c, 1, *self.kernel), float(self.pool_weight), dtype=x.dtype, device=x.device)
        raw = F.conv2d(x, w, stride=self.kernel, groups=c)
        acc = raw * (2.0 ** self.weight_exp)
        if self.quantized:
            if _bound(int(w[0].numel()), w, 0) >= 2 ** 24:
                raw = F.conv2d(x.detach().to(torch.float64), w.to(torch.float64), stride=self.kernel, groups=c)
            exact = loihi.i32(loihi.shift_floor(raw.detach().round().to(torch.int64), self.weight_exp))
            acc = _ste(acc, exact, _bound(int(w[0].numel()), w, self.weight_exp))
        a = loihi.delay_one_step(acc.reshape(B, T, -1), dim=1)
        return self.neurons(a)

    def to_spec_layer(self) -> SumPool:
        return SumPool(name=self.name, input_shape=self.input_shape, kernel=self.kernel, stride=self.kernel,
                       weight=self.pool_weight, neuron=Neuron(**vars(self.neuron)),
                       weight_exp=self.weight_exp)

    def synapse_count(self) -> int:
        return int(np.prod(self.out_shape)) * self.kernel[0] * self.kernel[1]


class FlattenLayer(nn.Module):
    """(C, H, W) -> vector in C-order; our tensors are already flat, so this is the identity."""

    kind = "flatten"

    def __init__(self, name: str, input_shape: Sequence[int]):
        super().__init__()
        self.name = name
        self.input_shape = tuple(int(v) for v in input_shape)

    @property
    def out_shape(self) -> Tuple[int]:
        return (int(np.prod(self.input_shape)),)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s

    def to_spec_layer(self) -> Flatten:
        return Flatten(name=self.name, input_shape=self.input_shape)


class SpikingNet(nn.Module):
    """A chain of spiking layers fed by input spikes [B, T, n_in]; ``quantized`` selects the chip's
    integer arithmetic (True) or the float twin (False)."""

    def __init__(self, input_shape: Sequence[int], layers: List[nn.Module], quantized: bool = True,
                 metadata: Optional[dict] = None):
        super().__init__()
        self.input_shape = tuple(int(v) for v in input_shape)
        self.layers = nn.ModuleList(layers)
        self.quantized = bool(quantized)
        self.metadata = dict(metadata or {})

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    def neuron_layers(self) -> List[_SpikingLayer]:
        return [l for l in self.layers if isinstance(l, _SpikingLayer)]

    def forward(self, x: torch.Tensor, return_all: bool = False):
        """Output spikes [B, T, n_out] (float 0/1); with ``return_all`` also each neuron layer's spikes."""
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"inputs must be shaped [batch, steps, {self.n_in}], got {tuple(x.shape)}")
        s = (x != 0).to(torch.float32)
        spikes = []
        for layer in self.layers:
            s = layer(s)
            if isinstance(layer, _SpikingLayer):
                spikes.append(s)
        return (s, spikes) if return_all else s

    def clamp_parameters_(self) -> None:
        for l in self.neuron_layers():
            l.clamp_parameters_()

    def to_spec(self) -> NetworkSpec:
        """The network as a validated :class:`NetworkSpec` (legal integers when quantized)."""
        spec = NetworkSpec(input_shape=self.input_shape, layers=[l.to_spec_layer() for l in self.layers],
                           quantized=self.quantized, metadata=dict(self.metadata))
        return spec.validate()

    def load_spec(self, spec: NetworkSpec) -> "SpikingNet":
        """Copy weights, exponents, thresholds, decays and biases from a spec of the same shape."""
        if len(spec.layers) != len(self.layers):
            raise ValueError(f"spec has {len(spec.layers)} layers, model has {len(self.layers)}")
        with torch.no_grad():
            for ml, sl in zip(self.layers, spec.layers):
                if ml.kind != sl.kind:
                    raise ValueError(f"layer {ml.name}: spec layer is '{sl.kind}', model layer is '{ml.kind}'")
                if isinstance(ml, FlattenLayer):
                    continue
                ml.neuron = Neuron(**vars(sl.neuron))
                ml.weight_exp = int(sl.weight_exp) if self.quantized else sl.weight_exp
                if isinstance(ml, SpikingSumPool):
                    ml.pool_weight = sl.weight
                else:
                    w = torch.as_tensor(np.asarray(sl.weight, dtype=np.float32))
                    if w.shape != ml.weight.shape:
                        raise ValueError(f"layer {ml.name}: spec weight {tuple(w.shape)} != model "
                                         f"{tuple(ml.weight.shape)}")
                    ml.weight.copy_(w)
                    if isinstance(ml, SpikingDense) and ml.weight_rec is not None:
                        if sl.weight_rec is None:
                            raise ValueError(f"layer {ml.name}: spec has no recurrent weights")
                        ml.weight_rec.copy_(torch.as_tensor(np.asarray(sl.weight_rec, dtype=np.float32)))
                        ml.rec_exp = int(sl.rec_exp)
                    if ml.bias is not None:
                        if sl.bias_mant is None:
                            ml.bias.zero_()
                        else:
                            ml.bias.copy_(torch.as_tensor(np.asarray(sl.bias_mant, dtype=np.float32)))
                ml.legalize_constants()
        return self

    @classmethod
    def from_spec(cls, spec: NetworkSpec, surrogate: Surrogate = Surrogate()) -> "SpikingNet":
        """Build a trainable model with the spec's structure and values."""
        layers: List[nn.Module] = []
        q = spec.quantized
        for sl in spec.layers:
            if isinstance(sl, Dense):
                layers.append(SpikingDense(sl.name, sl.n_in, sl.n_out, sl.neuron, quantized=q,
                                           weight_exp=sl.weight_exp, recurrent=sl.weight_rec is not None,
                                           rec_exp=sl.rec_exp, bias=sl.bias_mant is not None,
                                           surrogate=surrogate))
            elif isinstance(sl, Conv):
                if sl.weight.shape[2] != sl.weight.shape[3] or sl.stride[0] != sl.stride[1] \
                        or sl.padding[0] != sl.padding[1]:
                    raise ValueError(f"layer {sl.name}: only square kernels, strides and paddings are trainable")
                layers.append(SpikingConv(sl.name, sl.input_shape, sl.weight.shape[0], sl.weight.shape[2],
                                          sl.neuron, stride=sl.stride[0], padding=sl.padding[0], quantized=q,
                                          weight_exp=sl.weight_exp, bias=sl.bias_mant is not None,
                                          surrogate=surrogate))
            elif isinstance(sl, SumPool):
                if tuple(sl.kernel) != tuple(sl.stride) or sl.kernel[0] != sl.kernel[1]:
                    raise ValueError(f"layer {sl.name}: only square pools with stride == kernel are trainable")
                layers.append(SpikingSumPool(sl.name, sl.input_shape, sl.kernel[0], sl.neuron,
                                             pool_weight=sl.weight, quantized=q, weight_exp=sl.weight_exp,
                                             surrogate=surrogate))
            elif isinstance(sl, Flatten):
                layers.append(FlattenLayer(sl.name, sl.input_shape))
            else:
                raise ValueError(f"layer {sl.name}: unsupported kind '{sl.kind}'")
        model = cls(spec.input_shape, layers, quantized=q, metadata=spec.metadata)
        return model.load_spec(spec)
