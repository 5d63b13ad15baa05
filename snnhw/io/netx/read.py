"""Read a lava-dl netx HDF5 file into the :class:`~snnhw.spec.NetworkSpec` that lava-dl netx 0.6.0
builds from it, with h5py only (never imports lava).

``read_netx(path)`` reproduces **exactly** the network of ``lava.lib.dl.netx.hdf5.Network(path)``:

* weights and biases are read as netx's ``NetDict`` reads them: ``.astype(int)`` (truncation toward
  zero);
* Dense weights go through netx's ``optimize_weight_bits`` re-encoding
  (:func:`snnhw.loihi.netx_optimize_weight_bits`) and then through Lava's Dense clipping and low-bit
  clearing with the sign mode Lava re-derives (:func:`snnhw.loihi.dense_effective_weights`). The
  spec holds the resulting effective 8-bit mantissas (9-bit for mixed odd weights) and
  ``weight_exp = -scale_bits``;
* the neuron becomes Lava's ``LIF(du=iDecay-1, dv=vDecay, vth=vThMant, bias_exp=6)``, i.e. spec
  ``i_decay = iDecay``, ``v_decay = vDecay``, ``vth_mant = vThMant``, ``bias_exp = 6``;
* the bias is truncated to int, cast to int32 and stored in Lava's int16 ``bias_mant`` Var, so it
  wraps modulo 2**16 as in Lava (:func:`snnhw.loihi.wrap_bias_int16`); it is added to v on every
  step, the first included (step-1 bias);
* a ``dense`` layer without a ``neuron`` group gets netx's default non-leaky integrator
  (iDecay 0, vDecay 4096, vThMant ``1 << 17``: effective threshold 2**23, never spikes).

Supported layer types
---------------------
=============  =====================================================================================
``dense``      CUBA (or ``LOIHI``) neuron, optional ``bias``; weight [out, in] (or flat, reshaped as
               netx does)
``dense_rec``  as ``dense`` plus ``weight_rec`` [out, out]; netx re-encodes ``[weight | weight_rec]``
               jointly (one exponent) and each of the two Lava Dense re-derives its own sign mode
``conv``       netx builds Lava's fixed-point ``Conv``: the file's int-truncated weights are used
               **raw** (no netx re-encoding, no clipping, no LSB clearing, no exponent), as a
               torch-style correlation on (C, H, W) maps (netx flips the kernel and Lava flips it
               back); ``stride``/``padding`` in the file's (H, W) order; channel-wise ``bias``.
               Only ``dilation`` 1 and ``groups`` 1 (the spec has no fields for more). Lava's Conv
               wraps its sum at 24 bits while the core casts to int32, so kernels whose binary-input
               sums could reach 2**23 are rejected. The map comes from a 3-D ``input`` layer shape
               (C, H, W) or the previous conv; a ``flatten`` layer must separate conv and dense.
``input``      only **without** a ``neuron`` group (it names the input shape). netx 0.6.0 cannot
               compile an ``input`` layer with a neuron (``PyInputModel`` has no sub-compiler).
``flatten``    after a conv ((C, H, W) C-order, as netx's ``transpose([2, 1, 0]).flatten()``), or
               before the first weight layer (a no-op)
=============  =====================================================================================

Not supported (one-line :class:`NetxFormatError`): ``pool``/``convT``/``unpool``/``average``/``concat``
(netx 0.6.0 raises NotImplementedError itself), ``dense_comp`` (complex), synaptic ``delay``
(DelayDense), neuron types other than CUBA/LOIHI (SDNN, RF), a neuron ``messageBits`` dataset (breaks
netx's build), per-neuron decays or thresholds, per-neuron conv biases, and float-typed
``iDecay``/``vDecay``/``vThMant`` (Lava's fixed-point LIF fails on floats). Flat input/output vectors
of conv networks are in (C, H, W) C-order (the spec's order).

Ranges accepted on read (what netx writes and Lava runs): ``iDecay``/``vDecay`` 0..4096, ``vThMant``
0..131072 (131072 = netx's never-spiking default), weights netx can encode (an all-zero matrix or an
excitatory weight above the 8-bit range makes netx fail). Biases are wrapped to int16 as Lava does; a
spec read from such a file may therefore exceed the chip's 13-bit bias, and mixed-sign odd weights
survive as 9-bit mantissas (Lava's CPU model runs them; the chip has 8 bits).
``read_netx(path, strict=True)`` additionally runs :meth:`NetworkSpec.validate` (the chip's ranges).
A damaged HDF5 file gives a one-line :class:`NetxFormatError` from the h5py call that failed.
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import h5py
import numpy as np

from snnhw import loihi
from snnhw.errors import MissingFileError, one_line
from snnhw.io.netx.schema import (NETX_DEFAULT_NEURON, UNSUPPORTED, NetxFormatError, check_conv_sums,
                                  check_vth, encode, lava_dense_weights)
from snnhw.spec import Conv, Dense, Flatten, Neuron, NetworkSpec

#: What h5py raises when a file's structure or data cannot be read (a damaged file); ValueError and
#: TypeError come from a damaged datatype message (no numpy equivalent). Caught around single h5py calls.
H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)


# ------------------------------------------------------------------------------------------------
# File access: every h5py read goes through these, which turn h5py's errors into NetxFormatError
# ------------------------------------------------------------------------------------------------
def _child(g: h5py.Group, key: str, where: str):
    """``g[key]`` (a group or dataset), or None when ``g`` has no ``key``."""
    try:
        return g[key] if key in g else None
    except H5_ERRORS as e:
        raise NetxFormatError(f"{where}: cannot read '{key}' (corrupt file: {one_line(e)})") from None


def _dataset(g: h5py.Group, key: str, where: str) -> np.ndarray:
    """The values of dataset ``g[key]`` (a one-line error when it is missing, a group or unreadable)."""
    d = _child(g, key, where)
    if d is None:
        raise NetxFormatError(f"{where}: missing dataset '{key}'")
    if not isinstance(d, h5py.Dataset):
        raise NetxFormatError(f"{where}: '{key}' must be a dataset, found a group")
    try:
        return np.asarray(d[()])
    except H5_ERRORS as e:
        raise NetxFormatError(f"{where}: cannot read '{key}' (corrupt file: {one_line(e)})") from None


def _has(g: h5py.Group, key: str, where: str) -> bool:
    return _child(g, key, where) is not None


def _group(g: h5py.Group, key: str, where: str, missing: str) -> h5py.Group:
    """Sub-group ``g[key]``; ``missing`` is the message when it is absent or not a group."""
    sub = _child(g, key, where)
    if not isinstance(sub, h5py.Group):
        raise NetxFormatError(missing)
    return sub


# ------------------------------------------------------------------------------------------------
# Values the way netx's NetDict reads them
# ------------------------------------------------------------------------------------------------
def _read_str(g: h5py.Group, key: str, where: str) -> str:
    """A string the way NetDict reads it: element 0 of an array, or the scalar; ASCII."""
    arr = _dataset(g, key, where)
    val = arr[0] if arr.ndim > 0 and arr.shape[0] > 0 else arr[()]
    if isinstance(val, np.ndarray):
        val = val.item() if val.size == 1 else None
    if isinstance(val, bytes):
        try:
            return val.decode("ascii")
        except UnicodeDecodeError:
            raise NetxFormatError(f"{where}: '{key}' is not an ASCII string") from None
    if isinstance(val, str):
        return val
    raise NetxFormatError(f"{where}: '{key}' must be a string")


def _read_int(g: h5py.Group, key: str, where: str) -> int:
    """One integer neuron parameter (a scalar or a uniform vector)."""
    arr = _dataset(g, key, where)
    if arr.dtype.kind not in "iu":
        raise NetxFormatError(f"{where}: {key} must be an integer dataset, got {arr.dtype} "
                              "(Lava's fixed-point LIF fails on floats)")
    if arr.size == 0:
        raise NetxFormatError(f"{where}: {key} is empty")
    flat = arr.reshape(-1)
    if np.any(flat != flat[0]):
        raise NetxFormatError(f"{where}: per-neuron {key} values are not supported (one value per layer)")
    return int(flat[0])


def _read_int_array(g: h5py.Group, key: str, where: str) -> np.ndarray:
    """An array NetDict reads with ``.astype(int)`` (truncation toward zero); must be finite."""
    arr = _dataset(g, key, where)
    if arr.dtype.kind not in "iufb":
        raise NetxFormatError(f"{where}: '{key}' must be numeric, got {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise NetxFormatError(f"{where}: '{key}' contains NaN or infinity")
        if arr.size and np.max(np.abs(arr)) >= 2.0 ** 62:
            raise NetxFormatError(f"{where}: '{key}' has values beyond the int64 range")
    return arr.astype(np.int64)


def _read_pair(g: h5py.Group, key: str, where: str) -> Tuple[int, int]:
    """A conv hyper-parameter: a scalar (both axes) or a pair in the file's (H, W) order."""
    arr = _dataset(g, key, where)
    if arr.dtype.kind not in "iu" or arr.size not in (1, 2) or arr.ndim > 1:
        raise NetxFormatError(f"{where}: '{key}' must be an integer or a pair of integers")
    flat = arr.reshape(-1).astype(np.int64)
    return (int(flat[0]), int(flat[-1]))


def _read_bias(g: h5py.Group, where: str) -> Optional[np.ndarray]:
    """The file's bias as Lava holds it (int16-wrapped, int64), or None."""
    if not _has(g, "bias", where):
        return None
    return loihi.wrap_bias_int16(_read_int_array(g, "bias", where))


def _read_neuron(g: h5py.Group, where: str) -> Neuron:
    ng = _child(g, "neuron", where)
    if ng is None:
        return Neuron(**NETX_DEFAULT_NEURON)
    if not isinstance(ng, h5py.Group):
        raise NetxFormatError(f"{where}: 'neuron' must be a group")
    nwhere = f"{where} neuron"
    ntype = _read_str(ng, "type", nwhere)
    if ntype not in ("CUBA", "LOIHI"):
        raise NetxFormatError(f"{nwhere}: type '{ntype}' is not supported (only CUBA/LOIHI)")
    if _has(ng, "messageBits", nwhere):
        raise NetxFormatError(f"{nwhere}: a 'messageBits' dataset breaks lava-dl netx 0.6.0's build; "
                              "remove it")
    i_decay = _read_int(ng, "iDecay", nwhere)
    v_decay = _read_int(ng, "vDecay", nwhere)
    vth = _read_int(ng, "vThMant", nwhere)
    loihi.check_range("i_decay", i_decay, f"{nwhere} iDecay")
    loihi.check_range("v_decay", v_decay, f"{nwhere} vDecay")
    check_vth(vth, nwhere)
    return Neuron(i_decay=i_decay, v_decay=v_decay, vth_mant=vth)


def _reject_delay_and_complex(g: h5py.Group, where: str) -> None:
    if _has(g, "delay", where):
        raise NetxFormatError(f"{where}: synaptic delays (a 'delay' dataset) are not supported")
    if isinstance(_child(g, "weight", where), h5py.Group):
        raise NetxFormatError(f"{where}: complex weights (weight/real, weight/imag) are not supported")


# ------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------
def _dense_file_weights(g: h5py.Group, where: str, rec: bool):
    """(weight [out, in], weight_rec [out, out] or None) as integers, reshaped as netx does."""
    shape = _read_int_array(g, "shape", where)
    n_out = int(np.prod(shape))
    if n_out <= 0:
        raise NetxFormatError(f"{where}: shape {shape.tolist()} has no neurons")
    w = _read_int_array(g, "weight", where)
    w_rec = _read_int_array(g, "weight_rec", where) if rec else None
    if w.ndim == 1:
        if w.size % n_out:
            raise NetxFormatError(f"{where}: flat weight of {w.size} values cannot be reshaped to "
                                  f"[{n_out}, -1]")
        w = w.reshape(n_out, -1)
        if w_rec is not None and w_rec.ndim == 1:
            if w_rec.size != n_out * n_out:
                raise NetxFormatError(f"{where}: weight_rec must hold {n_out}x{n_out} values")
            w_rec = w_rec.reshape(n_out, n_out)
    if w.ndim != 2 or w.shape[0] != n_out or w.shape[1] == 0:
        raise NetxFormatError(f"{where}: weight of shape {tuple(w.shape)} does not match {n_out} "
                              "output neurons (expected [out, in])")
    if w_rec is not None and w_rec.shape != (n_out, n_out):
        raise NetxFormatError(f"{where}: weight_rec of shape {tuple(w_rec.shape)}, expected "
                              f"[{n_out}, {n_out}]")
    return w, w_rec


def _read_dense(g: h5py.Group, where: str, name: str, rec: bool) -> Dense:
    _reject_delay_and_complex(g, where)
    w, w_rec = _dense_file_weights(g, where, rec)
    neuron = _read_neuron(g, where)
    n_out, n_in = w.shape
    if rec:  # netx re-encodes [weight | weight_rec] with one exponent
        enc, nbits, wexp = encode(np.hstack((w, w_rec)), where)
        eff, eff_rec = lava_dense_weights(enc[:, :n_in], nbits), lava_dense_weights(enc[:, n_in:], nbits)
    else:
        enc, nbits, wexp = encode(w, where)
        eff, eff_rec = lava_dense_weights(enc, nbits), None
    bias = _read_bias(g, where)
    if bias is not None:
        if bias.size == 1:
            bias = np.full(n_out, int(bias.reshape(-1)[0]), dtype=np.int64)
        elif bias.shape != (n_out,):
            raise NetxFormatError(f"{where}: bias of shape {tuple(bias.shape)} does not fit {n_out} neurons")
    return Dense(name=name, weight=eff, neuron=neuron, weight_exp=int(wexp), bias_mant=bias,
                 bias_exp=loihi.NETX_BIAS_EXP, weight_rec=eff_rec, rec_exp=int(wexp) if rec else 0)


def _read_conv(g: h5py.Group, where: str, name: str, in_chw: Tuple[int, int, int]) -> Conv:
    """netx ``create_conv`` + Lava's fixed-point ``Conv``: raw int weights (no netx re-encoding, no
    clipping, no exponent), torch-style correlation on (C, H, W) maps, channel-wise bias."""
    _reject_delay_and_complex(g, where)
    shape = _read_int_array(g, "shape", where)
    w = _read_int_array(g, "weight", where)
    if w.ndim == 5 and w.shape[4] == 1:
        w = w[..., 0]
    if w.ndim != 4 or 0 in w.shape:
        raise NetxFormatError(f"{where}: conv weight must be [out, in, kH, kW], got {tuple(w.shape)}")
    stride, padding = _read_pair(g, "stride", where), _read_pair(g, "padding", where)
    dilation, groups = _read_pair(g, "dilation", where), _read_pair(g, "groups", where)
    if dilation != (1, 1):
        raise NetxFormatError(f"{where}: dilated convolutions are not supported (dilation {dilation})")
    if groups != (1, 1):
        raise NetxFormatError(f"{where}: grouped convolutions are not supported (groups {groups[0]})")
    if w.shape[1] != in_chw[0]:
        raise NetxFormatError(f"{where}: weight expects {w.shape[1]} input channels, the input has "
                              f"{in_chw[0]}")
    neuron = _read_neuron(g, where)
    bias = _read_bias(g, where)
    if bias is not None and bias.shape != (w.shape[0],):
        raise NetxFormatError(f"{where}: conv bias must be channel-wise ({w.shape[0]} values), "
                              f"got shape {tuple(bias.shape)}")
    conv = Conv(name=name, weight=w, input_shape=tuple(in_chw), neuron=neuron, stride=stride,
                padding=padding, weight_exp=0, bias_mant=bias, bias_exp=loihi.NETX_BIAS_EXP)
    if shape.size != 3 or tuple(int(v) for v in shape) != conv.out_shape:
        raise NetxFormatError(f"{where}: shape {shape.tolist()} does not match the convolution's output "
                              f"{list(conv.out_shape)} (C, H, W)")
    check_conv_sums(w, where)
    return conv


class _Chain:
    """The layers read so far and the current map: (C, H, W), (N,), or None (taken from the weights)."""

    def __init__(self) -> None:
        self.layers: List = []
        self.shape: Optional[Tuple[int, ...]] = None

    @property
    def last(self):
        return self.layers[-1] if self.layers else None

    def add(self, layer) -> None:
        self.layers.append(layer)
        self.shape = (layer.n_out,) if not isinstance(layer, Conv) else tuple(layer.out_shape)


def _read_input(chain: _Chain, g: h5py.Group, where: str) -> None:
    if _has(g, "neuron", where):
        raise NetxFormatError(f"{where}: an input layer with a neuron cannot be compiled by "
                              "lava-dl netx 0.6.0; export the network without an Input block")
    if chain.layers:
        raise NetxFormatError(f"{where}: input layer after a weight layer")
    if _has(g, "shape", where):
        s_in = tuple(int(v) for v in _read_int_array(g, "shape", where).reshape(-1))
        chain.shape = s_in if len(s_in) == 3 else (int(np.prod(s_in)),)


def _read_flatten(chain: _Chain, i: int, where: str) -> None:
    if isinstance(chain.last, Conv):
        chain.add(Flatten(name=f"layer{i}", input_shape=tuple(chain.last.out_shape)))
    elif chain.layers:
        raise NetxFormatError(f"{where}: flatten after a dense layer is not supported")
    else:
        chain.shape = None  # a leading flatten: netx feeds the first dense layer a flat vector


def _read_layer(chain: _Chain, g: h5py.Group, i: int, where: str) -> None:
    """Append layer ``i`` (group ``g``) to ``chain``, checking that it fits what came before."""
    ltype = _read_str(g, "type", where)
    if ltype == "input":
        _read_input(chain, g, where)
    elif ltype == "flatten":
        _read_flatten(chain, i, where)
    elif ltype in ("dense", "dense_rec"):
        if isinstance(chain.last, Conv):
            raise NetxFormatError(f"{where}: a dense layer after a conv layer needs a flatten layer")
        layer = _read_dense(g, where, f"layer{i}", rec=ltype == "dense_rec")
        if chain.layers and layer.n_in != int(np.prod(chain.shape)):
            raise NetxFormatError(f"{where}: expects {layer.n_in} inputs but the previous layer has "
                                  f"{int(np.prod(chain.shape))} neurons")
        chain.add(layer)
    elif ltype == "conv":
        if chain.shape is None or len(chain.shape) != 3 or isinstance(chain.last, (Dense, Flatten)):
            raise NetxFormatError(f"{where}: a conv layer needs a (C, H, W) input: an input layer "
                                  "with a 3-D shape or a previous conv layer")
        chain.add(_read_conv(g, where, f"layer{i}", chain.shape))
    elif ltype in UNSUPPORTED:
        raise NetxFormatError(f"{where}: {UNSUPPORTED[ltype]}")
    else:
        raise NetxFormatError(f"{where}: unknown layer type '{ltype}'")


def _read(f: h5py.File, path: str) -> NetworkSpec:
    lg = _group(f, "layer", path, f"{path}: no 'layer' group (not a netx network file)")
    try:
        n = len(lg)
    except H5_ERRORS as e:
        raise NetxFormatError(f"{path}: cannot list the 'layer' group (corrupt file: {one_line(e)})") from None
    if n == 0:
        raise NetxFormatError(f"{path}: the 'layer' group is empty")
    chain = _Chain()
    for i in range(n):
        where = f"{path}: layer {i}"
        g = _group(lg, str(i), where, f"{where}: group 'layer/{i}' missing (netx reads layers 0..{n - 1})")
        _read_layer(chain, g, i, where)
    layers = chain.layers
    if not any(isinstance(l, (Dense, Conv)) for l in layers):
        raise NetxFormatError(f"{path}: no weight layers (dense/dense_rec/conv)")
    first = layers[0]
    in_shape = tuple(first.input_shape) if isinstance(first, Conv) else (first.n_in,)
    return NetworkSpec(input_shape=in_shape, layers=layers, quantized=True,
                       metadata={"source": "netx", "file": os.path.basename(path)})


def read_netx(path, *, strict: bool = False) -> NetworkSpec:
    """The NetworkSpec that lava-dl netx 0.6.0 builds from the HDF5 file ``path`` (see module doc).

    ``strict=True`` also checks the chip's ranges (:meth:`NetworkSpec.validate`). Raises
    :class:`~snnhw.errors.MissingFileError`, :class:`NetxFormatError` or
    :class:`snnhw.loihi.RangeError` with one line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise NetxFormatError(f"{path}: is a directory, not a netx file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise NetxFormatError(f"{path}: not a readable HDF5 file ({one_line(e)})") from None
    with f:
        spec = _read(f, path)
    if strict:
        spec.validate()
    return spec
