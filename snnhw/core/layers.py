"""Trainable spiking layers whose forward pass IS the chip's arithmetic (quantization-aware training).

Every layer is a synapse (:mod:`snnhw.core.synapse`) followed by a CUBA LIF population
(:mod:`snnhw.core.neuron`), in Lava's order ``Dense -> LIF``, and converts to and from the matching
:mod:`snnhw.spec` layer. Units are the chip's (:mod:`snnhw.loihi`):

* ``weight`` (a float ``nn.Parameter``) is held in **mantissa units**. On a quantized layer the forward
  uses ``quantize_weight(weight, weight_exp)``: rounded to the nearest point of
  :func:`snnhw.loihi.weight_grid` (even integers, multiples of ``2**-weight_exp`` for a negative
  exponent, |mantissa| <= :data:`snnhw.loihi.MIXED_MANT_MAX`; every grid point is exactly storable in a
  lava-dl netx file). The backward is straight-through inside the range and zero outside.
* ``weight_exp`` (-8..0 while training; a positive exponent from an init is folded into the weights;
  conv layers always use 0, as Lava's Conv ignores it) scales the accumulated sum by ``2**weight_exp``
  with floor rounding; the floor is straight-through in the backward.
* the synaptic input reaches the neurons one step late (Lava's Dense pipeline).
* neurons: :func:`snnhw.core.neuron.cuba_lif` with ``exact=True`` (integer, bit-identical to Lava) on
  a quantized layer, the float twin otherwise, on the input's device.
* optional ``bias`` (mantissa units, 13-bit signed, rounded with STE): ``B = bias_mant << 6`` (netx).

Per-layer constants — ``vth_mant`` (17-bit unsigned), ``i_decay``/``v_decay`` (12-bit, netx units),
``weight_exp``, ``rec_exp`` (dense) and ``pool_weight`` (pool) — are 0-d buffers (a ``state_dict`` holds
everything the layer computes with) that read as Python numbers (int64 buffer: int, float64: float) and
accept plain numbers. ``layer.neuron`` is a :class:`~snnhw.spec.Neuron` built from them (assigning one
writes them; mutating the returned object does not).

Tensors are ``[batch, time, features]``; conv/pool layers see features as the C-order flattening of
``(C, H, W)``. A :class:`SpikingNet` converts to a :class:`~snnhw.spec.NetworkSpec`
(:meth:`SpikingNet.to_spec`) that :func:`snnhw.core.network.simulate` runs exactly like the model.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from snnhw import loihi
from snnhw.core import synapse as syn
from snnhw.core.neuron import CubaParams, CubaTrace, cuba_li, cuba_lif
from snnhw.core.surrogate import Surrogate
from snnhw.errors import InputError
from snnhw.spec import READOUTS, Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool, readout_of

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


def quantize_weight(w: torch.Tensor, weight_exp: int = 0) -> torch.Tensor:
    """Legal mixed-sign weight mantissas on :func:`snnhw.loihi.weight_grid`, straight-through gradient."""
    step, lim = loihi.weight_grid(weight_exp)
    return _RoundGridClamp.apply(w, step, lim)


def quantize_bias(b: torch.Tensor) -> torch.Tensor:
    """13-bit signed bias mantissas (round half to even, clamp) with a straight-through gradient."""
    lo, hi = BIAS_MANT_RANGE
    q = torch.round(b).clamp(lo, hi)
    return b + (q - b).detach()


def _constant(value, device=None) -> torch.Tensor:
    """A 0-d buffer holding a chip constant: int64 for an integer, float64 otherwise."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(device) if device is not None else value.detach().clone()
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return torch.tensor(value, dtype=torch.int64 if integer else torch.float64, device=device)


def _constant_property(name: str, doc: str) -> property:
    def get(self):
        t = self._buffers.get(name)
        if t is None:
            raise AttributeError(name)
        return t.item()

    return property(get, doc=doc)


def _clamp_int(x, lo: int, hi: int) -> int:
    return int(min(max(round(float(x)), lo), hi))


class _SpikingLayer(nn.Module):
    """Shared handling: the per-layer constants (buffers), their legal values, the CUBA LIF call."""

    kind = ""
    CONSTANTS: Tuple[str, ...] = ("i_decay", "v_decay", "vth_mant", "weight_exp")
    i_decay = _constant_property("i_decay", "current decay, netx units 0..4096")
    v_decay = _constant_property("v_decay", "voltage decay, netx units 0..4096")
    vth_mant = _constant_property("vth_mant", "threshold mantissa (spike iff v > vth_mant << 6)")
    weight_exp = _constant_property("weight_exp", "exponent on the accumulated synaptic sum")

    def __init__(self, name: str, neuron: Neuron, quantized: bool, surrogate: Surrogate,
                 weight_exp: int = 0):
        super().__init__()
        self.name = name
        self.quantized = bool(quantized)
        self.surrogate = surrogate
        self.neuron = neuron if isinstance(neuron, Neuron) else Neuron(**neuron)
        self.weight_exp = int(weight_exp)
        self.legalize_constants()

    def __setattr__(self, name, value):
        if name in self.CONSTANTS:  # a constant: (re)place its buffer, on the device it is on
            old = self._buffers.get(name)
            t = _constant(value, None if old is None else old.device)
            if old is None:
                self.register_buffer(name, t)
            else:
                self._buffers[name] = t
            return
        super().__setattr__(name, value)

    @property
    def neuron(self) -> Neuron:
        """The population's :class:`~snnhw.spec.Neuron`, built from the buffers (a fresh object)."""
        return Neuron(i_decay=self.i_decay, v_decay=self.v_decay, vth_mant=self.vth_mant, reset=self.reset)

    @neuron.setter
    def neuron(self, n: Neuron) -> None:
        self.i_decay, self.v_decay, self.vth_mant = n.i_decay, n.v_decay, n.vth_mant
        self.reset = n.reset

    def legalize_constants(self) -> None:
        """Make vth_mant / decays / weight_exp legal chip integers on a quantized layer (clamp+round)."""
        if not self.quantized:
            return
        self.vth_mant = _clamp_int(self.vth_mant, *loihi.RANGES["vth_mant"])
        self.i_decay = _clamp_int(self.i_decay, 0, loihi.DECAY_UNITY)
        self.v_decay = _clamp_int(self.v_decay, 0, loihi.DECAY_UNITY)
        self.weight_exp = self._legal_exp("weight", self.weight_exp)

    def _legal_exp(self, name: str, exp) -> int:
        """Clamp an exponent to -8..0; a positive one is folded into the float weights (netx holds 8 bits)."""
        exp = int(exp)
        p = getattr(self, name, None)
        lo, hi = loihi.RANGES["weight_exp"]
        if not isinstance(p, nn.Parameter):
            return int(min(max(exp, lo), hi))
        if exp > 0:
            with torch.no_grad():
                p.mul_(float(2 ** exp))
            exp = 0
        return int(min(max(exp, lo), 0))

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
        """The population's spikes for synaptic input ``a`` [B, T, N] (on ``a``'s device)."""
        p = CubaParams(self.i_decay, self.v_decay, self.vth_mant, self.reset)
        return cuba_lif(a, p, bias, w_rec=w_rec, rec_exp=rec_exp, exact=self.quantized, surrogate=self.surrogate)

    def clamp_parameters_(self) -> None:
        """Keep the float shadow weights near the legal grid (called after each optimizer step)."""
        with torch.no_grad():
            for name, exp in (("weight", self.weight_exp), ("weight_rec", getattr(self, "rec_exp", 0))):
                p = getattr(self, name, None)
                if isinstance(p, nn.Parameter) and self.quantized:
                    lim = loihi.weight_grid(exp)[1]
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

    def load_spec_layer(self, sl) -> None:
        """Take the constants, weights and bias of spec layer ``sl`` (same kind and shape), then
        :meth:`legalize_constants`. Call under ``torch.no_grad()``."""
        self.neuron = sl.neuron
        self.weight_exp = int(sl.weight_exp) if self.quantized else sl.weight_exp
        self._load_values(sl)
        self.legalize_constants()

    def _load_values(self, sl) -> None:
        _copy_into(self.weight, sl.weight, f"layer {self.name}: spec weight")
        if self.bias is not None:
            if sl.bias_mant is None:
                self.bias.zero_()
            else:
                self.bias.copy_(torch.as_tensor(np.asarray(sl.bias_mant, dtype=np.float32)))


def _copy_into(param: torch.Tensor, values, what: str) -> None:
    w = torch.as_tensor(np.asarray(values, dtype=np.float32))
    if w.shape != param.shape:
        raise InputError(f"{what} {tuple(w.shape)} != model {tuple(param.shape)}")
    param.copy_(w)


class SpikingDense(_SpikingLayer):
    """Dense synapse (+ optional recurrent Dense ``weight_rec``, one step delayed) + CUBA LIF."""

    kind = "dense"
    CONSTANTS = _SpikingLayer.CONSTANTS + ("rec_exp",)
    rec_exp = _constant_property("rec_exp", "exponent on the recurrent sum")

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
        return syn.trainable_input(s, self._weights(), self.weight_exp, quantized=self.quantized)

    def forward_voltage(self, s: torch.Tensor) -> CubaTrace:
        """The layer as a voltage readout (not recurrent): spikes and post-reset v per step
        (:func:`snnhw.core.neuron.cuba_li`, differentiable through v)."""
        p = CubaParams(self.i_decay, self.v_decay, self.vth_mant, self.reset)
        return cuba_li(self.synapse(s), p, self.effective_bias(), exact=self.quantized)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a = self.synapse(s)
        w_rec = self._weights("weight_rec") if self.weight_rec is not None else None
        return self.neurons(a, self.effective_bias(), w_rec=w_rec, rec_exp=self.rec_exp)

    def _load_values(self, sl) -> None:
        super()._load_values(sl)
        if self.weight_rec is not None:
            if sl.weight_rec is None:
                raise InputError(f"layer {self.name}: spec has no recurrent weights")
            _copy_into(self.weight_rec, sl.weight_rec, f"layer {self.name}: spec weight_rec")
            self.rec_exp = int(sl.rec_exp)

    def to_spec_layer(self) -> Dense:
        return Dense(name=self.name, weight=self._mant_array(), neuron=self.neuron,
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
        conv = syn.ConvShape(self.input_shape, self.stride, self.padding)
        a = syn.trainable_input(s, self._weights(), self.weight_exp, conv, quantized=self.quantized)
        return self.neurons(a, self.effective_bias(int(np.prod(self.out_shape[1:]))))

    def to_spec_layer(self) -> Conv:
        return Conv(name=self.name, weight=self._mant_array(), input_shape=self.input_shape,
                    neuron=self.neuron, stride=self.stride, padding=self.padding,
                    weight_exp=self.weight_exp, bias_mant=self.bias_mant_array())

    def synapse_count(self) -> int:
        oc, ic, kh, kw = self.weight.shape
        return int(np.prod(self.out_shape)) * ic * kh * kw


class SpikingSumPool(_SpikingLayer):
    """Sum pooling with one fixed integer mantissa ``pool_weight`` per window + CUBA LIF (not trained)."""

    kind = "pool"
    CONSTANTS = _SpikingLayer.CONSTANTS + ("pool_weight",)
    pool_weight = _constant_property("pool_weight", "the one weight mantissa of every window")

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
        c = self.input_shape[0]
        w = syn.pool_kernel(c, self.kernel, self.pool_weight, dtype=s.dtype, device=s.device)
        conv = syn.ConvShape(self.input_shape, self.kernel, (0, 0), groups=c)
        return self.neurons(syn.trainable_input(s, w, self.weight_exp, conv, quantized=self.quantized))

    def _load_values(self, sl) -> None:
        self.pool_weight = sl.weight

    def to_spec_layer(self) -> SumPool:
        return SumPool(name=self.name, input_shape=self.input_shape, kernel=self.kernel, stride=self.kernel,
                       weight=self.pool_weight, neuron=self.neuron, weight_exp=self.weight_exp)

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
    """A chain of spiking layers fed by input spikes [B, T, n_in]; ``quantized``: the chip's integer
    arithmetic (True) or the float twin (False). ``readout`` (``metadata["readout"]``): :meth:`forward`
    returns the last layer's spikes ("spikes") or its post-reset v per step ("voltage": a non-recurrent
    dense last layer with threshold :data:`snnhw.loihi.READOUT_VTH_MANT`, and the buffer
    ``readout_scale``, state units, that :func:`snnhw.train.evaluate.logits` divides v by)."""

    def __init__(self, input_shape: Sequence[int], layers: List[nn.Module], quantized: bool = True,
                 metadata: Optional[dict] = None):
        super().__init__()
        self.input_shape = tuple(int(v) for v in input_shape)
        self.layers = nn.ModuleList(layers)
        self.quantized = bool(quantized)
        self.metadata = dict(metadata or {})
        self.readout, last = readout_of(self.metadata), self.layers[-1]
        if self.readout not in READOUTS or (self.readout == "voltage" and getattr(last, "weight_rec", 0) is not None):
            raise InputError(f"readout '{self.readout}': not one of {', '.join(READOUTS)}, or {last.name} is not a "
                             f"non-recurrent dense layer")
        if self.readout == "voltage":
            self.register_buffer("readout_scale", torch.tensor(float(self.metadata.get("readout_scale", 1.0))))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    def neuron_layers(self) -> List[_SpikingLayer]:
        return [l for l in self.layers if isinstance(l, _SpikingLayer)]

    def forward(self, x: torch.Tensor, return_all: bool = False):
        """The readout [B, T, n_out]: output spikes (float 0/1) or v (float32); with ``return_all`` also each
        neuron layer's spikes."""
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise InputError(f"inputs must be shaped [batch, steps, {self.n_in}], got {tuple(x.shape)}")
        s = (x != 0).to(torch.float32)
        spikes = []
        n_spiking = len(self.layers) - (self.readout == "voltage")
        for layer in self.layers[:n_spiking]:
            s = layer(s)
            if isinstance(layer, _SpikingLayer):
                spikes.append(s)
        if n_spiking < len(self.layers):  # the voltage readout: v is the output (its spikes, all 0, a layer's)
            tr = self.layers[-1].forward_voltage(s)
            s = tr.v
            spikes.append(tr.s.to(torch.float32))
        return (s, spikes) if return_all else s

    def clamp_parameters_(self) -> None:
        for l in self.neuron_layers():
            l.clamp_parameters_()

    def to_spec(self) -> NetworkSpec:
        """The network as a validated :class:`NetworkSpec` (legal integers when quantized)."""
        meta = dict(self.metadata)
        if self.readout == "voltage":
            meta["readout_scale"] = float(self.readout_scale)
        spec = NetworkSpec(input_shape=self.input_shape, layers=[l.to_spec_layer() for l in self.layers],
                           quantized=self.quantized, metadata=meta)
        return spec.validate()

    def load_spec(self, spec: NetworkSpec) -> "SpikingNet":
        """Copy weights, exponents, thresholds, decays and biases from a spec of the same shape."""
        if len(spec.layers) != len(self.layers):
            raise InputError(f"spec has {len(spec.layers)} layers, model has {len(self.layers)}")
        with torch.no_grad():
            for ml, sl in zip(self.layers, spec.layers):
                if ml.kind != sl.kind:
                    raise InputError(f"layer {ml.name}: spec layer is '{sl.kind}', model layer is '{ml.kind}'")
                if isinstance(ml, _SpikingLayer):
                    ml.load_spec_layer(sl)
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
                    raise InputError(f"layer {sl.name}: only square kernels, strides and paddings are trainable")
                layers.append(SpikingConv(sl.name, sl.input_shape, sl.weight.shape[0], sl.weight.shape[2],
                                          sl.neuron, stride=sl.stride[0], padding=sl.padding[0], quantized=q,
                                          weight_exp=sl.weight_exp, bias=sl.bias_mant is not None,
                                          surrogate=surrogate))
            elif isinstance(sl, SumPool):
                if tuple(sl.kernel) != tuple(sl.stride) or sl.kernel[0] != sl.kernel[1]:
                    raise InputError(f"layer {sl.name}: only square pools with stride == kernel are trainable")
                layers.append(SpikingSumPool(sl.name, sl.input_shape, sl.kernel[0], sl.neuron,
                                             pool_weight=sl.weight, quantized=q, weight_exp=sl.weight_exp,
                                             surrogate=surrogate))
            elif isinstance(sl, Flatten):
                layers.append(FlattenLayer(sl.name, sl.input_shape))
            else:
                raise InputError(f"layer {sl.name}: unsupported kind '{sl.kind}'")
        model = cls(spec.input_shape, layers, quantized=q, metadata=spec.metadata)
        return model.load_spec(spec)
