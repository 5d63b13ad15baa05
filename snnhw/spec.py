"""NetworkSpec: the one plain description of a network that every stage reads and writes.

A spec is an ordered list of layers. Each weight layer is a synapse followed by a CUBA LIF
population, in Lava's order: ``Dense -> LIF``; so a K-layer chain fed by a spike source reproduces
Lava's pipeline (one step of delay per Dense). Values are in the chip's units (:mod:`snnhw.loihi`):

* ``weight``: the mantissas Lava's Dense multiplies with (after its own clipping and LSB clearing,
  so that Lava leaves them unchanged), shape [out, in] (dense) or [out, in, kH, kW] (conv);
  ``weight_exp`` scales the accumulated sum by ``2**weight_exp`` (floor).
* ``bias_mant``/``bias_exp``: per-neuron bias ``B = bias_mant << bias_exp`` added to v every step.
* neuron: ``i_decay``/``v_decay`` (netx units, 0..4096), ``vth_mant`` (spike iff v > vth_mant << 6).

On a quantized target (``Spec.quantized``) every value must be a legal Loihi integer; a float spec
(``quantized=False``) holds the same quantities as floats and runs through the float twin.
"""
from __future__ import annotations

import copy
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from snnhw import loihi
from snnhw.errors import FileFormatError, InputError


@dataclass
class Neuron:
    """CUBA LIF parameters shared by a population (netx units; see :mod:`snnhw.loihi`)."""

    i_decay: float = 4096
    v_decay: float = 0
    vth_mant: float = 64
    reset: str = "zero"  # "zero" (Loihi) or "subtract" (float targets only); see snnhw.core.neuron


#: Dense fields of split weights (:attr:`Dense.split`), left out of ``to_dict`` when unused.
SPLIT_FIELDS = ("weight_fine", "fine_exp", "weight_rec_fine", "rec_fine_exp")


@dataclass
class Dense:
    """Fully connected synapse + CUBA LIF population; optional recurrent weights (dense_rec)."""

    name: str
    weight: np.ndarray  # [out, in]
    neuron: Neuron = field(default_factory=Neuron)
    weight_exp: int = 0
    bias_mant: Optional[np.ndarray] = None  # [out]
    bias_exp: int = loihi.NETX_BIAS_EXP
    weight_rec: Optional[np.ndarray] = None  # [out, out]
    rec_exp: int = 0
    graded_input: bool = False  # the synapse multiplies payloads (num_message_bits > 0)
    kind: str = "dense"
    # split weights (quantized specs only): a second, fine Dense from the same source into the same LIF,
    # carrying the coarse synapse's rounding error (snnhw.loihi.split_weight); None = one Dense
    weight_fine: Optional[np.ndarray] = None  # [out, in]
    fine_exp: int = 0
    weight_rec_fine: Optional[np.ndarray] = None  # [out, out]
    rec_fine_exp: int = 0

    @property
    def split(self) -> bool:
        """Whether this layer has a fine synapse beside its feed-forward or recurrent one."""
        return self.weight_fine is not None or self.weight_rec_fine is not None

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return (self.n_out,)


class _MapShaped:
    """``n_in``/``n_out`` of a layer on a (C, H, W) map: the products of its input and output shapes."""

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class Conv(_MapShaped):
    """2-D convolution synapse + CUBA LIF population on a (C, H, W) map (channels first, no batch)."""

    name: str
    weight: np.ndarray  # [out_ch, in_ch, kH, kW]
    input_shape: Tuple[int, int, int]  # (C, H, W)
    neuron: Neuron = field(default_factory=Neuron)
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    weight_exp: int = 0
    bias_mant: Optional[np.ndarray] = None  # [out_ch]
    bias_exp: int = loihi.NETX_BIAS_EXP
    kind: str = "conv"

    @property
    def out_shape(self) -> Tuple[int, int, int]:
        c, h, w = self.input_shape
        kh, kw = self.weight.shape[2:]
        return (int(self.weight.shape[0]),
                (h + 2 * self.padding[0] - kh) // self.stride[0] + 1,
                (w + 2 * self.padding[1] - kw) // self.stride[1] + 1)


@dataclass
class SumPool(_MapShaped):
    """Sum pooling synapse + CUBA LIF population (like lava-dl's ``cuba.Pool`` block): every input in a
    window reaches its channel's output neuron with the same mantissa ``weight`` (per-channel
    depthwise), scaled by ``weight_exp``."""

    name: str
    input_shape: Tuple[int, int, int]
    kernel: Tuple[int, int] = (2, 2)
    stride: Tuple[int, int] = (2, 2)
    weight: int = 64
    neuron: Neuron = field(default_factory=Neuron)
    weight_exp: int = 0
    bias_mant: Optional[np.ndarray] = None
    bias_exp: int = loihi.NETX_BIAS_EXP
    kind: str = "pool"

    @property
    def out_shape(self) -> Tuple[int, int, int]:
        c, h, w = self.input_shape
        return (c, (h - self.kernel[0]) // self.stride[0] + 1, (w - self.kernel[1]) // self.stride[1] + 1)


@dataclass
class Flatten:
    """Flatten a (C, H, W) map to a vector (C-order: channel, row, column)."""

    name: str
    input_shape: Tuple[int, ...]
    kind: str = "flatten"

    @property
    def out_shape(self) -> Tuple[int]:
        return (int(np.prod(self.input_shape)),)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        return self.n_in


Layer = Union[Dense, Conv, SumPool, Flatten]


def _check_keys(cls, d: Dict, where: str = "") -> None:
    """FileFormatError unless ``d`` has every required field of dataclass ``cls`` and no other key."""
    where = where or f"layer {d.get('name')} ({cls.__name__})"
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    missing = sorted(f.name for f in fields(cls) if f.name not in d and f.default is MISSING
                     and f.default_factory is MISSING)
    if unknown or missing:
        what = f"unknown keys {unknown}" if unknown else f"missing keys {missing}"
        raise FileFormatError(f"network spec {where}: {what}")


LAYER_KINDS = {"dense": Dense, "conv": Conv, "pool": SumPool, "flatten": Flatten}


#: What a network's class decision reads (``metadata["readout"]``, :func:`readout_of`): the output layer's
#: spikes, or the post-reset v of an output layer that does not fire (:class:`snnhw.core.layers.SpikingNet`).
READOUTS = ("spikes", "voltage")


def readout_of(metadata: Dict) -> str:
    """The readout a network's ``metadata`` names (``metadata["readout"]``; absent: "spikes")."""
    return str(metadata.get("readout", READOUTS[0]))


@dataclass
class NetworkSpec:
    """An ordered chain of layers with its input shape; ``quantized`` says whether values are Loihi
    integers (True) or floats for the float twin (False). ``metadata`` carries provenance (dt, recipe)."""

    input_shape: Tuple[int, ...]
    layers: List[Layer]
    quantized: bool = True
    metadata: Dict = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def readout(self) -> str:
        """"spikes" or "voltage" (:data:`READOUTS`, from ``metadata``)."""
        return readout_of(self.metadata)

    def neuron_layers(self) -> List[Union[Dense, Conv, SumPool]]:
        """Layers that end in a LIF population (all but Flatten)."""
        return [l for l in self.layers if isinstance(l, (Dense, Conv, SumPool))]

    def copy(self) -> "NetworkSpec":
        return copy.deepcopy(self)

    # ---- validation ---------------------------------------------------------------------------
    def validate(self) -> "NetworkSpec":
        """Check shapes, and on a quantized spec every value against the chip's ranges.

        Raises :class:`snnhw.loihi.RangeError` (ranges) or :class:`~snnhw.errors.InputError` (shapes)
        with a one-line message naming the layer and parameter."""
        shape = tuple(self.input_shape)
        if not self.layers:
            raise InputError("network has no layers")
        names = set()
        for layer in self.layers:
            if layer.name in names:
                raise InputError(f"duplicate layer name '{layer.name}'")
            names.add(layer.name)
            n_in = int(np.prod(shape))
            if isinstance(layer, Dense):
                if layer.weight.ndim != 2:
                    raise InputError(f"layer {layer.name}: dense weight must be 2-D, got {layer.weight.shape}")
                if layer.n_in != n_in:
                    raise InputError(f"layer {layer.name}: expects {layer.n_in} inputs, previous layer gives {n_in}")
                if layer.weight_rec is not None and layer.weight_rec.shape != (layer.n_out, layer.n_out):
                    raise InputError(f"layer {layer.name}: weight_rec must be [{layer.n_out}, {layer.n_out}]")
                self._validate_split(layer)
            else:
                if tuple(layer.input_shape) != shape:
                    raise InputError(f"layer {layer.name}: input_shape {tuple(layer.input_shape)} "
                                     f"does not match previous output {shape}")
            if isinstance(layer, (Dense, Conv, SumPool)):
                self._validate_values(layer)
            shape = tuple(layer.out_shape)
        return self

    def _validate_split(self, layer: Dense) -> None:
        """Fine synapses: quantized only, shaped like their coarse partner, exponents as split_wide needs."""
        pairs = (("weight_fine", layer.weight_fine, layer.weight, "weight_exp", layer.weight_exp, layer.fine_exp),
                 ("weight_rec_fine", layer.weight_rec_fine, layer.weight_rec, "rec_exp", layer.rec_exp,
                  layer.rec_fine_exp))
        for name, fine, coarse, ename, e, f in pairs:
            if fine is None:
                continue
            where = f"layer {layer.name}"
            if not self.quantized:
                raise InputError(f"{where}: {name} (split weights) needs a quantized spec")
            if coarse is None or np.shape(fine) != np.shape(coarse):
                raise InputError(f"{where}: {name} must have the shape of its coarse matrix")
            if not (0 <= int(e) and int(f) <= int(e)):
                raise loihi.RangeError(f"{where}: {name} needs {ename} >= 0 and its exponent <= {ename} "
                                       f"(got {e} and {f})")

    def _validate_values(self, layer) -> None:
        where = f"layer {layer.name}"
        arrays = [("weight", np.asarray(layer.weight))]
        if isinstance(layer, Dense):
            arrays += [(k, getattr(layer, k)) for k in ("weight_rec", "weight_fine", "weight_rec_fine")
                       if getattr(layer, k) is not None]
        for name, arr in arrays:
            if not np.all(np.isfinite(np.asarray(arr, dtype=np.float64))):
                raise InputError(f"{where}: {name} contains NaN or infinity")
        n = layer.neuron
        if n.reset not in ("zero", "subtract"):
            raise InputError(f"{where}: reset must be 'zero' or 'subtract', not '{n.reset}'")
        if not self.quantized:
            for name in ("i_decay", "v_decay"):
                val = getattr(n, name)
                if not (0 <= val <= loihi.DECAY_UNITY):
                    raise loihi.RangeError(f"{where}: {name} = {val} is outside the legal range 0..4096")
            return
        if n.reset != "zero":
            raise InputError(f"{where}: Loihi resets v to 0; reset='{n.reset}' needs a float target")
        loihi.check_range("i_decay", n.i_decay, where)
        loihi.check_range("v_decay", n.v_decay, where)
        loihi.check_range("vth_mant", n.vth_mant, where)
        loihi.check_range("weight_exp", layer.weight_exp, where)
        loihi.check_range("bias_exp", layer.bias_exp, where)
        if layer.bias_mant is not None:
            loihi.check_range("bias_mant", layer.bias_mant, where)
        for name, arr in arrays:
            loihi.check_range("weight", arr, f"{where} {name}")
            if isinstance(layer, Dense):
                eff, mode = loihi.dense_effective_weights(arr)
                if not np.array_equal(eff, np.asarray(arr)):
                    raise loihi.RangeError(
                        f"{where}: {name} is not representable by Lava's Dense "
                        f"({mode.name.lower()} sign mode clears the LSB: use even mantissas)")
        if isinstance(layer, Dense):
            loihi.check_range("rec_exp", layer.rec_exp, where)
            loihi.check_range("weight_exp", layer.fine_exp, where)
            loihi.check_range("rec_exp", layer.rec_fine_exp, where)

    # ---- serialization (JSON + npz-free: arrays as lists) ---------------------------------------
    def to_dict(self) -> Dict:
        def conv(v):
            if isinstance(v, np.ndarray):
                return {"__array__": v.tolist(), "dtype": str(v.dtype)}
            if isinstance(v, tuple):
                return list(v)
            return v

        layers = []
        for layer in self.layers:
            d = {k: conv(v) for k, v in asdict(layer).items() if k != "neuron"}
            if isinstance(layer, Dense) and not layer.split:  # one-Dense layers keep their old format
                for k in SPLIT_FIELDS:
                    d.pop(k)
            if hasattr(layer, "neuron"):
                d["neuron"] = asdict(layer.neuron)
            layers.append(d)
        return {"input_shape": list(self.input_shape), "quantized": self.quantized,
                "metadata": self.metadata, "layers": layers}

    @classmethod
    def from_dict(cls, d: Dict) -> "NetworkSpec":
        def unconv(v):
            if isinstance(v, dict) and "__array__" in v:
                return np.asarray(v["__array__"], dtype=v["dtype"])
            return v

        for key in ("input_shape", "layers"):
            if key not in d:
                raise FileFormatError(f"network spec has no '{key}'")
        layers = []
        for ld in d["layers"]:
            kind = ld.get("kind")
            if kind not in LAYER_KINDS:
                raise FileFormatError(f"unknown layer kind '{kind}'; one of {', '.join(LAYER_KINDS)}")
            _check_keys(LAYER_KINDS[kind], ld)
            kw = {k: unconv(v) for k, v in ld.items() if k != "neuron"}
            for k in ("input_shape", "stride", "padding", "kernel"):
                if k in kw and kw[k] is not None:
                    kw[k] = tuple(kw[k])
            if "neuron" in ld:
                _check_keys(Neuron, ld["neuron"], where=f"layer {ld.get('name')} neuron")
                kw["neuron"] = Neuron(**ld["neuron"])
            layers.append(LAYER_KINDS[kind](**kw))
        return cls(input_shape=tuple(d["input_shape"]), layers=layers, quantized=d.get("quantized", True),
                   metadata=d.get("metadata", {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "NetworkSpec":
        return cls.from_dict(json.loads(s))
