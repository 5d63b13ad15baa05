"""NetworkSpec -> NIR graph (nir 1.0.8) -> file, in the discretization of :mod:`snnhw.io.nir.euler`.

Each weight layer becomes a synapse node (Affine/Linear, Conv2d or SumPool2d) feeding a CubaLIF
node, plus a Linear node on a neuron <-> Linear cycle for recurrent weights; a Flatten layer becomes
a Flatten node. Every node carries the exact Loihi values as ``snnhw.*`` metadata
(:mod:`snnhw.io.nir.schema`). A voltage readout (``spec.readout == "voltage"``) stays a
CubaLIF with its threshold (:data:`snnhw.loihi.READOUT_VTH_MANT`, exactly what the chip runs: NIR's
CubaLI could not say that v above ``2**23 - 64`` would fire) and the graph metadata ``snnhw.readout =
"voltage"`` says that its v, not its spikes, is the output. What NIR cannot express (subtractive
reset; a bias on a non-leaky voltage behind a current filter) raises :class:`NIRFormatError` unless
``lossy``, which writes an approximation and records it in ``snnhw.lossy``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.io.atomic import atomic_path
from snnhw.io.nir.euler import tau_for_decay
from snnhw.errors import one_line
from snnhw.io.nir.schema import DEFAULT_DT, FORMAT_VERSION, P, NIRFormatError
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, SumPool


def _num(v, quantized: bool):
    """Metadata scalar: int on a quantized spec, float otherwise."""
    return int(v) if quantized else float(v)


def _arr(a, quantized: bool) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.int64) if quantized else a.astype(np.float64)


def _ints(v) -> np.ndarray:
    return np.array(v, dtype=np.int64)


@dataclass
class _Build:
    """The graph under construction: nodes, edges, node names taken, lossy notes."""

    nodes: Dict[str, Any]
    edges: List[Tuple[str, str]] = field(default_factory=list)
    used: set = field(default_factory=lambda: {"input", "output"})
    notes: List[str] = field(default_factory=list)

    def add(self, name: str, node, src: str) -> str:
        """Add ``node`` under a fresh name based on ``name`` with an edge from ``src``; its name."""
        base, k = name, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        self.nodes[name] = node
        self.edges.append((src, name))
        return name


# ------------------------------------------------------------------------------------------------
# One layer
# ------------------------------------------------------------------------------------------------
def _eff_bias_w(layer, quantized: bool) -> Optional[np.ndarray]:
    """Per-channel (conv/pool) or per-neuron effective bias in weight units (B / 64), float64."""
    if layer.bias_mant is None:
        return None
    mant = np.asarray(layer.bias_mant)
    if quantized:
        import torch
        b = loihi.effective_bias(torch.as_tensor(mant.astype(np.int64)), int(layer.bias_exp)).numpy()
        return b.astype(np.float64) / (1 << loihi.ACT_SHIFT)
    return mant.astype(np.float64) * 2.0 ** float(layer.bias_exp) / (1 << loihi.ACT_SHIFT)


def _check_reset(layer, lossy: bool, notes: List[str]) -> None:
    if layer.neuron.reset == "zero":
        return
    msg = (f"layer {layer.name}: reset='{layer.neuron.reset}' cannot be expressed in NIR (reset-to-value only); "
           f"use --lossy to write it as v_reset=0")
    if not lossy:
        raise NIRFormatError(msg)
    notes.append(f"layer {layer.name}: subtractive reset written as v_reset=0")


def _place_bias(layer, q: bool, out_shape, lossy: bool, notes: List[str]):
    """Where the bias goes: (Affine bias or None, v_leak), both shaped ``out_shape`` (weight units)."""
    bias_w = _eff_bias_w(layer, q)
    per_ch = int(np.prod(out_shape[1:])) if isinstance(layer, (Conv, SumPool)) else 1
    bias_full = None if bias_w is None else np.repeat(bias_w, per_ch).reshape(out_shape)
    v_leak = np.zeros(out_shape, dtype=np.float64)
    if bias_full is None or not np.any(bias_full != 0):
        return None, v_leak
    i_dec, v_dec = float(layer.neuron.i_decay), float(layer.neuron.v_decay)
    if i_dec == loihi.DECAY_UNITY and not (isinstance(layer, SumPool) and v_dec > 0):
        # no synaptic filter: u = W x + b exactly (SumPool2d has no bias: use v_leak there)
        return bias_full, v_leak
    if v_dec > 0:
        return None, bias_full * loihi.DECAY_UNITY / v_dec
    msg = (f"layer {layer.name}: a bias on a non-leaky voltage (v_decay=0) behind a current filter "
           f"(i_decay={layer.neuron.i_decay}) has no exact NIR form")
    if not lossy:
        raise NIRFormatError(msg + "; use --lossy to write its steady state as an Affine bias")
    notes.append(f"layer {layer.name}: voltage bias written as a current bias (steady state only)")
    return bias_full * (i_dec / loihi.DECAY_UNITY), v_leak


def _dense_node(layer: Dense, q: bool, aff_bias, meta: Dict):
    import nir

    w = np.asarray(layer.weight, dtype=np.float64) * 2.0 ** layer.weight_exp
    meta[P + "weight_mant"] = _arr(layer.weight, q)
    meta[P + "graded_input"] = int(layer.graded_input)
    if aff_bias is not None:
        return nir.Affine(weight=w.astype(np.float32), bias=aff_bias.astype(np.float32), metadata=meta)
    return nir.Linear(weight=w.astype(np.float32), metadata=meta)


def _conv_node(layer: Conv, q: bool, aff_bias, meta: Dict, out_shape):
    import nir

    w = np.asarray(layer.weight, dtype=np.float64) * 2.0 ** layer.weight_exp
    meta[P + "weight_mant"] = _arr(layer.weight, q)
    meta[P + "stride"] = _ints(layer.stride)
    meta[P + "padding"] = _ints(layer.padding)
    b = np.zeros(out_shape[0]) if aff_bias is None else aff_bias.reshape(out_shape[0], -1)[:, 0]
    return nir.Conv2d(input_shape=tuple(int(s) for s in layer.input_shape[1:]), weight=w.astype(np.float32),
                      stride=tuple(int(s) for s in layer.stride), padding=tuple(int(s) for s in layer.padding),
                      dilation=(1, 1), groups=1, bias=b.astype(np.float32), metadata=meta)


def _pool_node(layer: SumPool, q: bool, aff_bias, meta: Dict):
    """SumPool2d node; the pool weight becomes the neuron's input gain ``w_in`` (returned)."""
    import nir

    if aff_bias is not None:
        raise NIRFormatError(f"layer {layer.name}: a bias on a pooling layer without current decay "
                             f"has no NIR form (SumPool2d has no bias)")
    meta[P + "weight_mant"] = _num(layer.weight, q)
    meta[P + "kernel"] = _ints(layer.kernel)
    meta[P + "stride"] = _ints(layer.stride)
    node = nir.SumPool2d(kernel_size=_ints(layer.kernel), stride=_ints(layer.stride), padding=_ints([0, 0]),
                         metadata=meta)
    return node, float(layer.weight) * 2.0 ** layer.weight_exp


def _synapse_node(layer, q: bool, aff_bias, out_shape):
    """(synapse node, input gain of the neuron node) of a weight layer."""
    meta = {P + "layer": layer.name, P + "kind": layer.kind, P + "weight_exp": int(layer.weight_exp),
            P + "synapse_delay_steps": 1}
    if isinstance(layer, Dense):
        return _dense_node(layer, q, aff_bias, meta), 1.0
    if isinstance(layer, Conv):
        return _conv_node(layer, q, aff_bias, meta, out_shape), 1.0
    return _pool_node(layer, q, aff_bias, meta)


def _neuron_node(layer, q: bool, dt: float, out_shape, v_leak, pool_gain: float):
    import nir

    n = layer.neuron
    tau_syn = tau_for_decay(n.i_decay, dt, out_shape)
    tau_mem = tau_for_decay(n.v_decay, dt, out_shape)
    meta = {P + "layer": layer.name, P + "i_decay": _num(n.i_decay, q), P + "v_decay": _num(n.v_decay, q),
            P + "vth_mant": _num(n.vth_mant, q), P + "bias_exp": int(layer.bias_exp), P + "reset": n.reset}
    if q:
        meta[P + "lava_du"] = loihi.lava_du(n.i_decay)
        meta[P + "lava_dv"] = loihi.lava_dv(n.v_decay)
    if layer.bias_mant is not None:
        meta[P + "bias_mant"] = _arr(layer.bias_mant, q)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=v_leak,
                       v_threshold=np.full(out_shape, float(n.vth_mant), dtype=np.float64),
                       v_reset=np.zeros(out_shape, dtype=np.float64), w_in=tau_syn / dt * pool_gain, metadata=meta)


def _recurrent_node(layer: Dense, q: bool):
    import nir

    wr = np.asarray(layer.weight_rec, dtype=np.float64) * 2.0 ** layer.rec_exp
    return nir.Linear(weight=wr.astype(np.float32), metadata={
        P + "layer": layer.name, P + "kind": "recurrent", P + "weight_mant": _arr(layer.weight_rec, q),
        P + "weight_exp": int(layer.rec_exp)})


def _add_layer(g: _Build, layer, prev: str, q: bool, dt: float, lossy: bool) -> str:
    """Add a weight layer's synapse, neuron (and recurrent) nodes after ``prev``; the neuron's name."""
    out_shape = tuple(int(s) for s in layer.out_shape)
    _check_reset(layer, lossy, g.notes)
    aff_bias, v_leak = _place_bias(layer, q, out_shape, lossy, g.notes)
    syn, pool_gain = _synapse_node(layer, q, aff_bias, out_shape)
    neuron = _neuron_node(layer, q, dt, out_shape, v_leak, pool_gain)
    syn_name = g.add(layer.name, syn, prev)
    neu_name = g.add(f"{layer.name}_lif", neuron, syn_name)
    if isinstance(layer, Dense) and layer.weight_rec is not None:
        rec_name = g.add(f"{layer.name}_rec", _recurrent_node(layer, q), neu_name)
        g.edges.append((rec_name, neu_name))
    return neu_name


# ------------------------------------------------------------------------------------------------
# The graph
# ------------------------------------------------------------------------------------------------
def _graph_metadata(spec: NetworkSpec, dt: float, q: bool, notes: List[str]) -> Dict[str, Any]:
    meta = {"dt": float(dt), P + "format": FORMAT_VERSION, P + "discretization": "forward-euler",
            P + "time_unit": "s", P + "quantized": int(q), P + "synapse_delay_steps": 1,
            P + "input_shape": _ints(spec.input_shape)}
    if notes:
        meta[P + "lossy"] = "; ".join(notes)
    if spec.readout != "spikes":  # the output LIF is a voltage readout (does not fire)
        meta[P + "readout"] = spec.readout
    return meta


def spec_to_graph(spec: NetworkSpec, *, dt: float = DEFAULT_DT, lossy: bool = False):
    """Build the ``nir.NIRGraph`` for ``spec`` (module docstring) at step ``dt`` [s].
    Returns (graph, lossy_notes).

    Raises :class:`NIRFormatError` for what NIR cannot express unless ``lossy`` (then it is recorded
    in ``snnhw.lossy`` metadata and returned as notes).
    """
    import nir

    spec.validate()
    for layer in spec.neuron_layers():
        if isinstance(layer, Dense) and layer.split:
            raise NIRFormatError(f"layer {layer.name}: split weights (a coarse and a fine Dense into one LIF) "
                                 f"have no form in snnhw's NIR metadata")
    if not (dt > 0 and np.isfinite(dt)):
        raise NIRFormatError(f"dt must be a positive number of seconds, got {dt}")
    q = bool(spec.quantized)
    g = _Build(nodes={"input": nir.Input(input_type={"input": _ints(spec.input_shape)})})
    prev = "input"
    for layer in spec.layers:
        if isinstance(layer, Flatten):
            node = nir.Flatten(input_type={"input": _ints(layer.input_shape)}, start_dim=0, end_dim=-1,
                               metadata={P + "layer": layer.name, P + "kind": "flatten"})
            prev = g.add(layer.name, node, prev)
        else:
            prev = _add_layer(g, layer, prev, q, dt, lossy)
    g.nodes["output"] = nir.Output(output_type={"output": _ints([int(s) for s in spec.layers[-1].out_shape])})
    g.edges.append((prev, "output"))
    try:
        graph = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=_graph_metadata(spec, dt, q, g.notes),
                             type_check=True)
    except ValueError as e:  # nir's own type check
        raise NIRFormatError(f"nir rejected the exported graph: {one_line(e)}") from None
    return graph, g.notes


def write_graph(graph, path) -> None:
    """Write ``graph`` atomically (:func:`snnhw.io.atomic.atomic_path`) after reading the temporary
    file back with ``nir.read(type_check=True)`` and comparing node names, types and edges."""
    import nir

    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
        try:
            back = nir.read(tmp, type_check=True)
        except ValueError as e:  # nir's type check
            raise NIRFormatError(f"read-back of {path} failed the nir type check: {one_line(e)}") from None
        want = {k: type(v).__name__ for k, v in graph.nodes.items()}
        got = {k: type(v).__name__ for k, v in back.nodes.items()}
        if want != got or sorted(map(tuple, back.edges)) != sorted(map(tuple, graph.edges)):
            raise NIRFormatError(f"read-back of {path} differs from the graph written")


def export_nir(spec: NetworkSpec, path, *, dt: float = DEFAULT_DT, lossy: bool = False) -> List[str]:
    """Write ``spec`` as a NIR file at ``path`` (atomic, read back with the nir type check).

    Returns the list of lossy notes (empty unless ``lossy=True`` was needed); each is also warned.
    """
    graph, notes = spec_to_graph(spec, dt=dt, lossy=lossy)
    for note in notes:
        warnings.warn(f"lossy NIR export: {note}", stacklevel=2)
    write_graph(graph, path)
    return notes
