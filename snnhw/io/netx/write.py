"""Write a quantized :class:`~snnhw.spec.NetworkSpec` as a lava-dl netx 0.6.0 HDF5 file (h5py only).

``write_netx(spec, path)`` writes dense, recurrent-dense, conv and flatten layers, and sum-pool layers
as the equivalent conv with a channel-diagonal kernel (netx 0.6.0 has no pool), in the schema of
reference §5.7 (datasets, never attributes; no ``neuron/messageBits``; the file starts with a weight
layer), atomically (:func:`snnhw.io.atomic.atomic_path`). A netx file has no weight exponent: each
layer is stored as integer weights ``weight * 2**weight_exp``, which must be exact, and the writer
checks that netx's re-encoding reproduces them, so that ``read_netx(write_netx(spec))`` simulates
identically to ``spec``. Otherwise it raises a one-line :class:`NetxFormatError` (or
:class:`snnhw.loihi.RangeError`) naming the layer. Biases must be multiples of 64 state units
(netx's ``bias_exp`` is 6) and fit Lava's int16 ``bias_mant`` at that exponent.
"""
from __future__ import annotations

import os
from typing import List, Optional

import h5py
import numpy as np
import torch

from snnhw import loihi
from snnhw.errors import MissingFileError
from snnhw.io.atomic import atomic_path
from snnhw.io.netx.schema import NetxFormatError, check_conv_sums, check_vth, encode, lava_dense_weights
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, SumPool

#: Datasets stored as float32 (as slayer writes them); integers below 2**24 are exact there.
FLOAT_KEYS = ("weight", "weight_rec", "bias")


def _as_int(arr, what: str, where: str) -> np.ndarray:
    a = np.asarray(arr)
    af = a.astype(np.float64)
    if not np.all(np.isfinite(af)):
        raise NetxFormatError(f"{where}: {what} contains NaN or infinity")
    if not np.all(af == np.round(af)):
        raise NetxFormatError(f"{where}: {what} must be integer-valued (quantize the spec first)")
    return a.astype(np.int64)


def _file_weights(w, exp: int, what: str, where: str) -> np.ndarray:
    """Integer file weights equal to ``w * 2**exp`` (netx files carry no exponent)."""
    w = _as_int(w, what, where)
    exp = int(exp)
    if exp >= 0:
        return w << exp
    if np.any(w % (1 << -exp)):
        raise NetxFormatError(f"{where}: {what} with exponent {exp} is not an integer multiple of "
                              f"{1 << -exp}; netx files hold integer weights with no exponent")
    return w >> -exp


def _check_encoding(parts: List[np.ndarray], where: str) -> None:
    """Check that netx + Lava's Dense reproduce the integer file weights ``parts`` exactly."""
    enc, nbits, wexp = encode(np.hstack(parts), where)
    sb = -wexp
    col = 0
    for part in parts:
        eff = lava_dense_weights(enc[:, col:col + part.shape[1]], nbits)
        want = part << sb
        if not np.array_equal(eff, want):
            idx = np.argwhere(eff != want)[0]
            k = (int(idx[0]), int(idx[1]))
            raise NetxFormatError(
                f"{where}: netx cannot store these weights exactly (weight {part[k]} at {k} would run "
                f"as {eff[k] / 2 ** sb:g} after netx's re-encoding)")
        col += part.shape[1]


def _neuron_record(layer, where: str) -> dict:
    n = layer.neuron
    if n.reset != "zero":
        raise NetxFormatError(f"{where}: netx neurons reset v to 0, not '{n.reset}'")
    i_decay = int(_as_int(n.i_decay, "i_decay", where))
    v_decay = int(_as_int(n.v_decay, "v_decay", where))
    vth = int(_as_int(n.vth_mant, "vth_mant", where))
    loihi.check_range("i_decay", i_decay, where)
    loihi.check_range("v_decay", v_decay, where)
    check_vth(vth, where, "vth_mant")
    return dict(type="CUBA", iDecay=i_decay, vDecay=v_decay, vThMant=vth, refDelay=1, gradedSpike=False)


def _bias_record(layer, n: int, where: str) -> Optional[np.ndarray]:
    """File bias ``B / 64`` (netx's bias_exp is 6) for ``n`` neurons or channels; exact or an error."""
    if layer.bias_mant is None:
        return None
    mant = _as_int(layer.bias_mant, "bias_mant", where)
    big = loihi.effective_bias(torch.as_tensor(mant), int(layer.bias_exp)).numpy().astype(np.int64)
    big = np.broadcast_to(big, (n,))
    unit = 1 << loihi.NETX_BIAS_EXP
    if np.any(big % unit):
        raise NetxFormatError(f"{where}: bias {int(big[np.argmax(big % unit != 0)])} (state units) "
                              f"is not a multiple of {unit}; netx's bias exponent is fixed at "
                              f"{loihi.NETX_BIAS_EXP}")
    b = big >> loihi.NETX_BIAS_EXP
    lo, hi = loihi.BIAS_INT16
    if b.min() < lo or b.max() > hi:
        raise loihi.RangeError(f"{where}: bias mantissa {int(b[np.argmax(np.abs(b))])} (at exponent "
                               f"{loihi.NETX_BIAS_EXP}) is outside Lava's int16 range {lo}..{hi}")
    return b


def _conv_record(layer, where: str) -> dict:
    """A Conv, or a SumPool written as the equivalent channel-diagonal conv (netx has no pool)."""
    c_in = int(layer.input_shape[0])
    if isinstance(layer, SumPool):
        k = np.zeros((c_in, c_in, *layer.kernel), dtype=np.int64)
        for c in range(c_in):
            k[c, c] = int(_as_int(layer.weight, "weight", where))
        w = _file_weights(k, layer.weight_exp, "weight", where)
        stride, padding = tuple(layer.stride), (0, 0)
    else:
        w = _file_weights(layer.weight, layer.weight_exp, "weight", where)
        stride, padding = tuple(layer.stride), tuple(layer.padding)
    if w.ndim != 4:
        raise NetxFormatError(f"{where}: conv weight must be [out, in, kH, kW], got {tuple(w.shape)}")
    lo, hi = loihi.RANGES["weight"]
    if w.min() < lo or w.max() > hi:
        raise loihi.RangeError(f"{where}: conv weight {int(w.flat[np.argmax(np.abs(w))])} (weight * "
                               f"2**weight_exp; netx conv has no exponent) is outside {lo}..{hi}")
    check_conv_sums(w, where)
    c_out = int(w.shape[0])
    data = dict(shape=np.array(layer.out_shape, dtype=np.int64), weight=w,
                inChannels=np.int64(c_in), outChannels=np.int64(c_out),
                kernelSize=np.array(w.shape[2:], dtype=np.int64),
                stride=np.array(stride, dtype=np.int64), padding=np.array(padding, dtype=np.int64),
                dilation=np.array([1, 1], dtype=np.int64), groups=np.int64(1))
    b = _bias_record(layer, c_out, where)
    if b is not None:
        data["bias"] = b
    return data


def _dense_record(layer: Dense, where: str):
    """(type, datasets, neuron) of a Dense layer (``dense`` or ``dense_rec``)."""
    if layer.graded_input:
        raise NetxFormatError(f"{where}: graded input cannot be stored in a netx file "
                              "(netx takes it as a Network() argument)")
    if layer.split:
        raise NetxFormatError(f"{where}: split weights (a coarse and a fine Dense into one LIF) cannot be "
                              f"stored in a netx file (one Dense per layer)")
    neuron = _neuron_record(layer, where)
    w = _file_weights(layer.weight, layer.weight_exp, "weight", where)
    if w.ndim != 2:
        raise NetxFormatError(f"{where}: weight must be 2-D [out, in], got {tuple(w.shape)}")
    data = dict(shape=np.array([w.shape[0]], dtype=np.int64), inFeatures=np.int64(w.shape[1]),
                outFeatures=np.int64(w.shape[0]), weight=w)
    parts = [w]
    ltype = "dense"
    if layer.weight_rec is not None:
        wr = _file_weights(layer.weight_rec, layer.rec_exp, "weight_rec", where)
        if wr.shape != (w.shape[0], w.shape[0]):
            raise NetxFormatError(f"{where}: weight_rec must be [{w.shape[0]}, {w.shape[0]}]")
        data["weight_rec"] = wr
        parts.append(wr)
        ltype = "dense_rec"
    _check_encoding(parts, where)
    b = _bias_record(layer, w.shape[0], where)
    if b is not None:
        data["bias"] = b
    return ltype, data, neuron


def _layer_records(spec: NetworkSpec):
    """(type, datasets, neuron dict or None) per netx layer, after checking exactness."""
    if not spec.quantized:
        raise NetxFormatError("write_netx needs a quantized spec (integer Loihi parameters)")
    records = []
    seen_weight = False
    prev = None
    for layer in spec.layers:
        where = f"layer {layer.name}"
        if isinstance(layer, Flatten):
            if isinstance(prev, (Conv, SumPool)):
                records.append(("flatten", dict(shape=np.array([layer.n_out], dtype=np.int64)), None))
            elif seen_weight:
                raise NetxFormatError(f"{where}: flatten after a dense layer cannot be written to netx")
            prev = layer
            continue  # a leading flatten: netx dense inputs are flat already
        if isinstance(layer, (Conv, SumPool)):
            if isinstance(prev, (Dense, Flatten)):
                raise NetxFormatError(f"{where}: a conv/pool layer after a dense or flatten layer cannot be "
                                      "written to netx")
            if not seen_weight:
                records.append(("input", dict(shape=np.array(layer.input_shape, dtype=np.int64)), None))
            records.append(("conv", _conv_record(layer, where), _neuron_record(layer, where)))
        elif not isinstance(layer, Dense):
            raise NetxFormatError(f"{where}: {layer.kind} layers cannot be written to netx")
        elif isinstance(prev, (Conv, SumPool)):
            raise NetxFormatError(f"{where}: a dense layer after a conv/pool layer needs a Flatten layer")
        else:
            records.append(_dense_record(layer, where))
        seen_weight, prev = True, layer
    if not seen_weight:
        raise NetxFormatError("network has no weight layers to write")
    return records


def write_netx(spec: NetworkSpec, path) -> None:
    """Write ``spec`` as a lava-dl netx 0.6.0 HDF5 file ``path`` (atomically; see module doc).

    Weights are stored as float32 integers ``weight * 2**weight_exp`` (exact below 2**24), biases as
    float32 ``B / 64`` where ``B = bias_mant << bias_exp``; shapes, conv hyper-parameters and neuron
    parameters as integer datasets. A network starting with a conv/pool layer gets a leading
    ``input`` layer (shape (C, H, W), no neuron) so that netx knows the input map.
    """
    records = _layer_records(spec)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise MissingFileError(f"{path}: output folder {d} does not exist")
    with atomic_path(path, suffix=".net") as tmp:
        with h5py.File(tmp, "w") as f:
            lg = f.create_group("layer")
            for i, (ltype, data, neuron) in enumerate(records):
                g = lg.create_group(str(i))
                g.create_dataset("type", (1,), "S10", [ltype.encode("ascii")])
                for key, val in data.items():
                    val = np.asarray(val)
                    g.create_dataset(key, data=val.astype(np.float32) if key in FLOAT_KEYS else val)
                for k, v in (neuron or {}).items():
                    g.create_dataset(f"neuron/{k}", data=v)
