"""The exact :class:`~snnhw.spec.NetworkSpec` of an snnhw-written NIR file, rebuilt from its ``snnhw.*``
metadata (:mod:`snnhw.io.nir.schema`) after checking that the float parameters still agree with it."""
from __future__ import annotations

from typing import Optional

import numpy as np

from snnhw import loihi
from snnhw.io.nir.graph import load_model
from snnhw.io.nir.model import NirModel, Stage
from snnhw.errors import one_line
from snnhw.io.nir.schema import P, NIRFormatError, meta_array, meta_number, meta_value
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool


FLOAT_EXP_LIMIT = 64  # |exponent| accepted on a float spec (a quantized one: loihi.RANGES)


def _exponent(meta, key: str, where: str, q: bool, rng_key: str, default: int) -> int:
    """An exponent from metadata, inside the chip's range (quantized) or +-FLOAT_EXP_LIMIT (float)."""
    e = meta_number(meta, key, where, int, default=default)
    lo, hi = loihi.RANGES[rng_key] if q else (-FLOAT_EXP_LIMIT, FLOAT_EXP_LIMIT)
    if not lo <= e <= hi:
        raise NIRFormatError(f"node '{where}': metadata '{P}{key}' = {e} is outside {lo}..{hi}")
    return e


def has_snnhw_metadata(model: NirModel) -> bool:
    """The graph says it was written by snnhw (format >= 1) and every neuron node has a threshold."""
    fmt = meta_number(model.metadata, "format", "graph", float, default=0.0)
    return fmt >= 1 and all(P + "vth_mant" in s.meta.get("neuron", {}) for s in model.neuron_stages)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to float32 precision (and the same shape)."""
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=1e-30)


def _neuron(st: Stage, q: bool) -> Neuron:
    nm, where = st.meta["neuron"], st.nodes["neuron"]
    cast = int if q else float
    return Neuron(i_decay=meta_number(nm, "i_decay", where, cast), v_decay=meta_number(nm, "v_decay", where, cast),
                  vth_mant=meta_number(nm, "vth_mant", where, cast), reset=str(meta_value(nm, "reset", "zero")))


def _dense(st: Stage, name: str, neuron: Neuron, q: bool, check: bool, **kw) -> Dense:
    sm, where = st.meta.get("synapse", {}), st.nodes["synapse"]
    w = _mantissas(sm, where, q)
    layer = Dense(name=name, weight=w, neuron=neuron, graded_input=bool(meta_number(sm, "graded_input", where, int,
                                                                                    default=0)), **kw)
    if check and not _same(w * 2.0 ** layer.weight_exp, st.weight):
        raise NIRFormatError(f"node '{where}': weights disagree with {P}weight_mant")
    if st.weight_rec is not None:
        rm, rwhere = st.meta["recurrent"], st.nodes["recurrent"]
        layer.weight_rec = _mantissas(rm, rwhere, q)
        layer.rec_exp = _exponent(rm, "weight_exp", rwhere, q, "rec_exp", 0)
        if check and not _same(layer.weight_rec * 2.0 ** layer.rec_exp, st.weight_rec):
            raise NIRFormatError(f"node '{rwhere}': weights disagree with {P}weight_mant")
    return layer


def _mantissas(meta, where: str, q: bool) -> np.ndarray:
    w = meta_array(meta, "weight_mant", where, integer=q)
    if w is None:
        raise NIRFormatError(f"node '{where}': metadata '{P}weight_mant' is missing")
    return w


def _check_neuron(st: Stage, layer, neuron: Neuron, dt: float) -> None:
    """The node's Euler coefficients agree with the metadata's decays, threshold and (pool) gain."""
    nd = st.neuron
    want_alpha = 1 - float(neuron.i_decay) / loihi.DECAY_UNITY
    want_beta = 1 - float(neuron.v_decay) / loihi.DECAY_UNITY
    gain = float(layer.weight) * 2.0 ** layer.weight_exp if st.kind == "pool" else 1.0
    if (not np.allclose(nd.alpha, want_alpha, atol=1e-9) or not np.allclose(nd.beta, want_beta, atol=1e-9)
            or not np.allclose(nd.theta, float(neuron.vth_mant), rtol=1e-9)
            or not np.allclose(nd.g_syn * nd.g_mem, gain, rtol=1e-6)):
        raise NIRFormatError(f"node '{st.nodes['neuron']}': neuron parameters disagree with snnhw metadata "
                             f"(dt = {dt} s)")


def _exact_layer(st: Stage, q: bool, check: bool, dt: float):
    """The spec layer of one weight stage, from its metadata."""
    if st.kind not in ("dense", "conv", "pool"):
        raise NIRFormatError(f"node '{st.name}': snnhw metadata on a neuron without a synapse")
    nm, where = st.meta["neuron"], st.nodes["neuron"]
    sm, swhere = st.meta.get("synapse", {}), st.nodes["synapse"]
    name = str(meta_value(nm, "layer", st.name))
    neuron = _neuron(st, q)
    bias = meta_array(nm, "bias_mant", where, integer=q)
    kw = dict(weight_exp=_exponent(sm, "weight_exp", swhere, q, "weight_exp", 0), bias_mant=bias,
              bias_exp=_exponent(nm, "bias_exp", where, q, "bias_exp", loihi.NETX_BIAS_EXP))
    if st.kind == "dense":
        layer = _dense(st, name, neuron, q, check, **kw)
    elif st.kind == "conv":
        w = _mantissas(sm, swhere, q)
        layer = Conv(name=name, weight=w, input_shape=tuple(st.in_shape), neuron=neuron, stride=tuple(st.stride),
                     padding=tuple(st.padding), **kw)
        if check and not _same(w * 2.0 ** layer.weight_exp, st.weight):
            raise NIRFormatError(f"node '{swhere}': weights disagree with {P}weight_mant")
    else:
        layer = SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel), stride=tuple(st.stride),
                        weight=meta_number(sm, "weight_mant", swhere, int if q else float), neuron=neuron, **kw)
    if check:
        _check_neuron(st, layer, neuron, dt)
    return layer


def model_to_spec_exact(model: NirModel, *, check: bool = True) -> NetworkSpec:
    """Rebuild the exact spec of an snnhw-written graph from its metadata.

    With ``check`` the float parameters must agree with the metadata (weights to float32 precision,
    thresholds, time constants, w_in); otherwise a :class:`NIRFormatError` says which disagrees
    (the file was edited after export) and the caller may fall back to calibration.
    """
    if not has_snnhw_metadata(model):
        raise NIRFormatError("the graph carries no snnhw metadata")
    q = bool(meta_number(model.metadata, "quantized", "graph", int, default=1))
    layers = []
    for st in model.stages:
        if st.kind == "flatten":
            layers.append(Flatten(name=str(meta_value(st.meta["flatten"], "layer", st.name)),
                                  input_shape=tuple(st.in_shape)))
        else:
            layers.append(_exact_layer(st, q, check, model.dt))
    meta = {"source": "nir", "dt": model.dt}
    readout = meta_value(model.metadata, "readout")
    if readout is not None:  # the writer's snnhw.readout: the output layer's v is the output
        meta["readout"] = str(readout)
    spec = NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=q, metadata=meta)
    try:
        return spec.validate()
    except ValueError as e:  # shapes (ValueError) or Loihi ranges (loihi.RangeError)
        raise NIRFormatError(f"snnhw metadata does not form a valid spec: {one_line(e)}") from None


def read_nir_spec(path, *, dt: Optional[float] = None) -> NetworkSpec:
    """The exact :class:`NetworkSpec` of an snnhw-written NIR file (metadata checked against floats)."""
    return model_to_spec_exact(load_model(path, dt=dt))
