"""NIR (nir 1.0.8) export and import for :class:`~snnhw.spec.NetworkSpec`.

Discretization (the one snnhw writes and, by default, reads)
-------------------------------------------------------------
Forward Euler with the snnTorch convention, time in **seconds**, ``dt`` (default 1e-4 s) stored in
``graph.metadata["dt"]``. A CubaLIF node then means, per step ``t``::

    I[t] = alpha * I[t-1] + g_syn * in[t]            alpha = 1 - dt / tau_syn,  g_syn = dt * w_in / tau_syn
    v[t] = beta  * v[t-1] + (1 - beta) * v_leak + g_mem * I[t]
                                                     beta  = 1 - dt / tau_mem,  g_mem = dt * r / tau_mem
    s[t] = v[t] > v_threshold ;  v[t] = v_reset where s[t]

(LIF: no synaptic filter, ``I = in``, ``g_mem = dt*r/tau``; IF: ``beta = 1``, ``g_mem = dt*r``).
A Loihi layer in weight units (``u/64``, ``v/64``; :mod:`snnhw.loihi`) is exactly this with
``alpha = (4096 - i_decay)/4096``, ``beta = (4096 - v_decay)/4096``, ``tau_syn = dt*4096/i_decay``,
``w_in = tau_syn/dt``, ``tau_mem = dt*4096/v_decay``, ``r = tau_mem/dt`` (both gains exactly 1),
``v_threshold = vth_mant``, weights ``mantissa * 2**weight_exp``, and the bias ``B/64`` per step
carried by ``v_leak = (B/64) * tau_mem/dt`` (exact under Euler). A decay of 0 (no leak) is written as
the finite time constant ``NO_LEAK_STEPS * dt`` (so that every framework's ``dt/tau`` and
``r*dt/tau`` stay finite); readers map ``dt/tau < 1e-20`` back to decay 0.

snnhw always writes CubaLIF (Norse ignores ``r`` on LIF nodes; with ``i_decay = 4096`` CubaLIF is a
LIF: ``tau_syn = dt``, ``w_in = 1``). Where ``i_decay = 4096`` a bias goes into the Affine's bias
(exact, and snnTorch-compatible) instead of ``v_leak``.

Timing: NIR has no synaptic delay; the graph means the same-step (snnTorch/NIRTorch) convention.
Loihi's Dense sends its sum one step later, so on the chip every synapse node adds one step of
latency; this is recorded as ``snnhw.synapse_delay_steps = 1`` (graph and synapse metadata), not as
``nir.Delay`` nodes (which snnTorch and Norse cannot import). Recurrent edges act with the previous
step's spikes in both conventions.

Metadata keys (exact Loihi integers; floats for a float spec)
-------------------------------------------------------------
graph: ``dt``, ``snnhw.format`` (1), ``snnhw.discretization`` ("forward-euler"), ``snnhw.time_unit``
("s"), ``snnhw.quantized`` (0/1), ``snnhw.synapse_delay_steps`` (1), ``snnhw.input_shape``,
``snnhw.lossy`` (text, only if lossy).
synapse node (Affine/Linear/Conv2d/SumPool2d): ``snnhw.layer``, ``snnhw.kind``,
``snnhw.weight_mant`` (dense/conv mantissas; pool: scalar), ``snnhw.weight_exp``,
``snnhw.graded_input``, ``snnhw.synapse_delay_steps``, conv: ``snnhw.stride``, ``snnhw.padding``.
neuron node (CubaLIF): ``snnhw.i_decay``, ``snnhw.v_decay`` (netx units), ``snnhw.lava_du``
(``i_decay - 1``), ``snnhw.lava_dv``, ``snnhw.vth_mant``, ``snnhw.bias_mant`` (if any),
``snnhw.bias_exp``, ``snnhw.reset``.
recurrent node (Linear): ``snnhw.weight_mant``, ``snnhw.weight_exp`` (the layer's ``rec_exp``).

Reading: :func:`load_model` turns any supported graph (flat, with cycles, or with nested subgraphs)
into a :class:`NirModel` chain of float stages; :func:`read_nir_spec` rebuilds the exact spec of an
snnhw-written file from its metadata (after checking the floats still agree with it).
"""
from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnhw.errors import FileFormatError
from snnhw import loihi
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

FORMAT_VERSION = 1
DEFAULT_DT = 1e-4
NO_LEAK_STEPS = 1e30  # "no decay" is written as tau = NO_LEAK_STEPS * dt
_NO_LEAK_RATIO = 1e-20  # dt/tau below this reads back as decay 0
SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "CubaLIF", "LIF", "IF")
SYNAPSES = ("Affine", "Linear", "Conv2d", "SumPool2d")
NEURONS = ("CubaLIF", "LIF", "IF")
P = "snnhw."


class NIRFormatError(FileFormatError):
    """A NIR file or graph snnhw cannot read or map; the message is one line."""


# ================================================================================================
# Export
# ================================================================================================
def _tau(decay, dt: float, n: int) -> np.ndarray:
    """Time constant [s] for a netx-unit decay (factor (4096-d)/4096 per step of dt)."""
    d = float(decay)
    tau = dt * NO_LEAK_STEPS if d == 0 else dt * loihi.DECAY_UNITY / d
    return np.full(n, tau, dtype=np.float64)


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


def _num(v, quantized: bool):
    """Metadata scalar: int on a quantized spec, float otherwise."""
    return int(v) if quantized else float(v)


def _arr(a, quantized: bool) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.int64) if quantized else a.astype(np.float64)


def spec_to_graph(spec: NetworkSpec, *, dt: float = DEFAULT_DT, lossy: bool = False):
    """Build the ``nir.NIRGraph`` for ``spec`` (see module docstring). Returns (graph, lossy_notes).

    Raises :class:`NIRFormatError` for what NIR cannot express unless ``lossy`` (then it is recorded
    in ``snnhw.lossy`` metadata and returned as notes).
    """
    import nir

    spec.validate()
    if not (dt > 0 and np.isfinite(dt)):
        raise NIRFormatError(f"dt must be a positive number of seconds, got {dt}")
    q = bool(spec.quantized)
    notes: List[str] = []
    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(spec.input_shape, dtype=np.int64)})}
    edges: List[Tuple[str, str]] = []
    prev = "input"
    used = {"input", "output"}

    def fresh(name):
        base, k = name, 1
        while name in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        return name

    for layer in spec.layers:
        if isinstance(layer, Flatten):
            nm = fresh(layer.name)
            nodes[nm] = nir.Flatten(input_type={"input": np.array(layer.input_shape, dtype=np.int64)},
                                    start_dim=0, end_dim=-1, metadata={P + "layer": layer.name, P + "kind": "flatten"})
            edges.append((prev, nm))
            prev = nm
            continue
        n = layer.neuron
        out_shape = tuple(int(s) for s in layer.out_shape)
        n_out = int(np.prod(out_shape))
        bias_w = _eff_bias_w(layer, q)
        per_ch = int(np.prod(out_shape[1:])) if isinstance(layer, (Conv, SumPool)) else 1
        bias_full = None if bias_w is None else np.repeat(bias_w, per_ch).reshape(out_shape)
        if n.reset != "zero":
            msg = (f"layer {layer.name}: reset='{n.reset}' cannot be expressed in NIR (reset-to-value only); "
                   f"use --lossy to write it as v_reset=0")
            if not lossy:
                raise NIRFormatError(msg)
            notes.append(f"layer {layer.name}: subtractive reset written as v_reset=0")
        i_dec, v_dec = float(n.i_decay), float(n.v_decay)
        tau_syn = _tau(i_dec, dt, n_out).reshape(out_shape)
        tau_mem = _tau(v_dec, dt, n_out).reshape(out_shape)
        w_in = tau_syn / dt
        aff_bias = None
        v_leak = np.zeros(out_shape, dtype=np.float64)
        if bias_full is not None and np.any(bias_full != 0):
            if i_dec == loihi.DECAY_UNITY and not (isinstance(layer, SumPool) and v_dec > 0):
                # no synaptic filter: u = W x + b exactly (SumPool2d has no bias: use v_leak there)
                aff_bias = bias_full
            elif v_dec > 0:
                v_leak = bias_full * loihi.DECAY_UNITY / v_dec
            else:
                msg = (f"layer {layer.name}: a bias on a non-leaky voltage (v_decay=0) behind a current filter "
                       f"(i_decay={n.i_decay}) has no exact NIR form")
                if not lossy:
                    raise NIRFormatError(msg + "; use --lossy to write its steady state as an Affine bias")
                aff_bias = bias_full * (i_dec / loihi.DECAY_UNITY)
                notes.append(f"layer {layer.name}: voltage bias written as a current bias (steady state only)")
        pool_gain = 1.0
        syn_meta = {P + "layer": layer.name, P + "kind": layer.kind, P + "weight_exp": int(layer.weight_exp),
                    P + "synapse_delay_steps": 1}
        if isinstance(layer, Dense):
            w = np.asarray(layer.weight, dtype=np.float64) * 2.0 ** layer.weight_exp
            syn_meta[P + "weight_mant"] = _arr(layer.weight, q)
            syn_meta[P + "graded_input"] = int(layer.graded_input)
            if aff_bias is not None:
                syn = nir.Affine(weight=w.astype(np.float32), bias=aff_bias.astype(np.float32), metadata=syn_meta)
            else:
                syn = nir.Linear(weight=w.astype(np.float32), metadata=syn_meta)
        elif isinstance(layer, Conv):
            w = np.asarray(layer.weight, dtype=np.float64) * 2.0 ** layer.weight_exp
            syn_meta[P + "weight_mant"] = _arr(layer.weight, q)
            syn_meta[P + "stride"] = np.array(layer.stride, dtype=np.int64)
            syn_meta[P + "padding"] = np.array(layer.padding, dtype=np.int64)
            if aff_bias is not None:
                b = aff_bias.reshape(out_shape[0], -1)[:, 0]
            else:
                b = np.zeros(out_shape[0])
            syn = nir.Conv2d(input_shape=tuple(int(s) for s in layer.input_shape[1:]), weight=w.astype(np.float32),
                             stride=tuple(int(s) for s in layer.stride), padding=tuple(int(s) for s in layer.padding),
                             dilation=(1, 1), groups=1, bias=b.astype(np.float32), metadata=syn_meta)
        else:  # SumPool: the pool weight becomes the neuron's input gain w_in
            if aff_bias is not None:
                raise NIRFormatError(f"layer {layer.name}: a bias on a pooling layer without current decay "
                                     f"has no NIR form (SumPool2d has no bias)")
            pool_gain = float(layer.weight) * 2.0 ** layer.weight_exp
            syn_meta[P + "weight_mant"] = _num(layer.weight, q)
            syn_meta[P + "kernel"] = np.array(layer.kernel, dtype=np.int64)
            syn_meta[P + "stride"] = np.array(layer.stride, dtype=np.int64)
            syn = nir.SumPool2d(kernel_size=np.array(layer.kernel, dtype=np.int64),
                                stride=np.array(layer.stride, dtype=np.int64),
                                padding=np.array([0, 0], dtype=np.int64), metadata=syn_meta)
        neu_meta = {P + "layer": layer.name, P + "i_decay": _num(n.i_decay, q), P + "v_decay": _num(n.v_decay, q),
                    P + "vth_mant": _num(n.vth_mant, q), P + "bias_exp": int(layer.bias_exp), P + "reset": n.reset}
        if q:
            neu_meta[P + "lava_du"] = loihi.lava_du(n.i_decay)
            neu_meta[P + "lava_dv"] = loihi.lava_dv(n.v_decay)
        if layer.bias_mant is not None:
            neu_meta[P + "bias_mant"] = _arr(layer.bias_mant, q)
        neuron = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=v_leak,
                             v_threshold=np.full(out_shape, float(n.vth_mant), dtype=np.float64),
                             v_reset=np.zeros(out_shape, dtype=np.float64), w_in=w_in * pool_gain,
                             metadata=neu_meta)
        syn_name = fresh(layer.name)
        neu_name = fresh(f"{layer.name}_lif")
        nodes[syn_name], nodes[neu_name] = syn, neuron
        edges += [(prev, syn_name), (syn_name, neu_name)]
        if isinstance(layer, Dense) and layer.weight_rec is not None:
            rec_name = fresh(f"{layer.name}_rec")
            wr = np.asarray(layer.weight_rec, dtype=np.float64) * 2.0 ** layer.rec_exp
            nodes[rec_name] = nir.Linear(weight=wr.astype(np.float32), metadata={
                P + "layer": layer.name, P + "kind": "recurrent", P + "weight_mant": _arr(layer.weight_rec, q),
                P + "weight_exp": int(layer.rec_exp)})
            edges += [(neu_name, rec_name), (rec_name, neu_name)]
        prev = neu_name
    out_shape = tuple(int(s) for s in spec.layers[-1].out_shape)
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape, dtype=np.int64)})
    edges.append((prev, "output"))
    meta = {"dt": float(dt), P + "format": FORMAT_VERSION, P + "discretization": "forward-euler",
            P + "time_unit": "s", P + "quantized": int(q), P + "synapse_delay_steps": 1,
            P + "input_shape": np.array(spec.input_shape, dtype=np.int64)}
    if notes:
        meta[P + "lossy"] = "; ".join(notes)
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except Exception as e:  # nir's own type check
        raise NIRFormatError(f"nir rejected the exported graph: {_one_line(e)}") from None
    return graph, notes


def _one_line(e: BaseException) -> str:
    s = str(e).strip()
    s = s.splitlines()[0] if s else type(e).__name__
    return s if len(s) < 300 else s[:297] + "..."


def write_graph(graph, path) -> None:
    """Write ``graph`` atomically (temp file + os.replace) after reading the temp file back with
    ``nir.read(type_check=True)`` and comparing node names and types."""
    import nir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        nir.write(tmp, graph)
        try:
            back = nir.read(tmp, type_check=True)
        except Exception as e:
            raise NIRFormatError(f"read-back of {path} failed the nir type check: {_one_line(e)}") from None
        want = {k: type(v).__name__ for k, v in graph.nodes.items()}
        got = {k: type(v).__name__ for k, v in back.nodes.items()}
        if want != got or sorted(map(tuple, back.edges)) != sorted(map(tuple, graph.edges)):
            raise NIRFormatError(f"read-back of {path} differs from the graph written")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export_nir(spec: NetworkSpec, path, *, dt: float = DEFAULT_DT, lossy: bool = False) -> List[str]:
    """Write ``spec`` as a NIR file at ``path`` (atomic, read back with the nir type check).

    Returns the list of lossy notes (empty unless ``lossy=True`` was needed); each is also warned.
    """
    graph, notes = spec_to_graph(spec, dt=dt, lossy=lossy)
    for note in notes:
        warnings.warn(f"lossy NIR export: {note}", stacklevel=2)
    write_graph(graph, path)
    return notes


# ================================================================================================
# Import: any supported graph -> NirModel (a chain of float stages)
# ================================================================================================
@dataclass
class NeuronDyn:
    """Per-neuron Euler coefficients of one population (float64 arrays, flattened C-order, NIR units).

    ``alpha``/``beta``: current/voltage decay factors per step; ``g_syn``: input gain into I;
    ``g_mem``: gain of I into v; ``leak``: ``(1-beta)*v_leak`` added to v per step; ``theta``:
    threshold; ``v_reset``: reset value; ``node_type``: the NIR class.
    """

    alpha: np.ndarray
    beta: np.ndarray
    g_syn: np.ndarray
    g_mem: np.ndarray
    leak: np.ndarray
    theta: np.ndarray
    v_reset: np.ndarray
    node_type: str
    tau_syn: Optional[np.ndarray] = None  # seconds, as written (None for LIF/IF)
    tau_mem: Optional[np.ndarray] = None  # seconds (None for IF)

    @property
    def n(self) -> int:
        return int(self.theta.size)


@dataclass
class Stage:
    """One layer: a synapse (dense/conv/pool, or identity) feeding a neuron population, or a flatten.

    Float values in NIR units. ``weight``: dense [out, in] or conv [oc, ic, kh, kw] (pool/identity:
    None); ``bias``: per output neuron [n] (conv: expanded), added to the synaptic input every step;
    ``weight_rec``/``bias_rec``: recurrent Affine/Linear [n, n]; ``in_shape``/``out_shape`` without batch.
    """

    name: str
    kind: str  # dense | conv | pool | identity | flatten
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    kernel: Tuple[int, int] = (1, 1)
    weight_rec: Optional[np.ndarray] = None
    bias_rec: Optional[np.ndarray] = None
    neuron: Optional[NeuronDyn] = None
    nodes: Dict[str, str] = field(default_factory=dict)  # role -> node name
    meta: Dict[str, Dict] = field(default_factory=dict)  # role -> node metadata

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass
class NirModel:
    """A NIR graph reduced to snnhw's chain: input shape, stages, dt [s], graph metadata."""

    input_shape: Tuple[int, ...]
    stages: List[Stage]
    dt: float
    metadata: Dict[str, Any]
    dt_source: str = "default"
    type_check_error: Optional[str] = None  # nir.read's type check failure, if the file needed type_check=False

    @property
    def neuron_stages(self) -> List[Stage]:
        return [s for s in self.stages if s.neuron is not None]

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        return self.stages[-1].n_out


def read_graph(path):
    """``nir.read(path)`` with one-line errors for missing, non-HDF5, truncated or invalid files."""
    import h5py
    import nir

    p = Path(path)
    if not p.exists():
        raise NIRFormatError(f"no such file: {p}")
    if p.is_dir():
        raise NIRFormatError(f"{p} is a directory, not a NIR file")
    try:
        ok = h5py.is_hdf5(str(p))
    except Exception:
        ok = False
    if not ok:
        raise NIRFormatError(f"{p} is not a NIR file (not HDF5)")
    type_check_error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = nir.read(str(p))
    except Exception as e:
        # nir's type check is strict about files older tools wrote (e.g. Output shape [1,1,1] for [1]);
        # read without it and let snnhw's own checks (shapes, types, structure) decide
        type_check_error = f"{type(e).__name__}: {_one_line(e)}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = nir.read(str(p), type_check=False)
        except Exception:
            raise NIRFormatError(f"cannot read NIR file {p}: {type_check_error}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFormatError(f"{p}: the top-level node is a {type(graph).__name__}, not a NIRGraph")
    graph.__dict__["_snnhw_type_check_error"] = type_check_error
    return graph


def _flatten_graph(graph, prefix: str = ""):
    """Inline nested NIRGraphs. Returns (nodes, edges, passthrough) with names ``outer.inner``; the
    Input/Output nodes of subgraphs are listed in ``passthrough`` for contraction."""
    import nir

    nodes: Dict[str, Any] = {}
    edges: List[Tuple[str, str]] = []
    passthrough: set = set()
    entry: Dict[str, List[str]] = {}
    exit_: Dict[str, List[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sn, se, sp = _flatten_graph(node, full + ".")
            nodes.update(sn)
            edges += se
            passthrough |= sp
            ins = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if not ins or not outs:
                raise NIRFormatError(f"subgraph '{full}' needs Input and Output nodes")
            passthrough |= set(ins) | set(outs)
            entry[full], exit_[full] = ins, outs
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        src, dst = prefix + str(src), prefix + str(dst)
        for s in exit_.get(src, [src]):
            for d in entry.get(dst, [dst]):
                edges.append((s, d))
    return nodes, edges, passthrough


def _contract(nodes, edges, passthrough):
    """Remove pass-through nodes, joining their predecessors to their successors."""
    edges = list(dict.fromkeys(edges))
    for p in passthrough:
        preds = [s for s, d in edges if d == p and s != p]
        succs = [d for s, d in edges if s == p and d != p]
        edges = [(s, d) for s, d in edges if s != p and d != p]
        edges += [(s, d) for s in preds for d in succs]
        nodes.pop(p, None)
    return nodes, list(dict.fromkeys(edges))


def _param(node, name: str, where: str) -> np.ndarray:
    val = getattr(node, name, None)
    if val is None:
        raise NIRFormatError(f"node '{where}': parameter '{name}' is missing")
    try:
        arr = np.asarray(val, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRFormatError(f"node '{where}': parameter '{name}' is not numeric") from None
    if not np.all(np.isfinite(arr)):
        raise NIRFormatError(f"node '{where}': parameter '{name}' contains NaN or infinity")
    return arr


def _pair(v, where: str, what: str) -> Tuple[int, int]:
    a = np.atleast_1d(np.asarray(v)).astype(np.float64).ravel()
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise NIRFormatError(f"node '{where}': {what} must be one or two integers, got {v!r}")
    return int(a[0]), int(a[1])


def _neuron_dyn(node, name: str, n: int, dt: float) -> NeuronDyn:
    """Euler coefficients of a CubaLIF/LIF/IF node (see module docstring)."""
    t = type(node).__name__

    def full(pname):
        arr = _param(node, pname, name)
        if arr.size == 1:
            arr = np.full(n, float(arr.ravel()[0]))
        if arr.size != n:
            raise NIRFormatError(f"node '{name}': parameter '{pname}' has {arr.size} values, "
                                 f"the layer has {n} neurons (shape mismatch)")
        return arr.ravel().astype(np.float64)

    def ratio(tau, what):
        if np.any(tau <= 0):
            raise NIRFormatError(f"node '{name}': {what} must be positive")
        rr = dt / tau
        if np.any(rr > 1 + 1e-9):
            raise NIRFormatError(f"node '{name}': {what} = {tau.min():.3g} s is shorter than dt = {dt:.3g} s "
                                 f"(forward Euler unstable); pass a smaller --dt")
        return np.where(rr < _NO_LEAK_RATIO, 0.0, np.minimum(rr, 1.0))

    theta = full("v_threshold")
    v_reset = full("v_reset") if getattr(node, "v_reset", None) is not None else np.zeros(n)
    r = full("r")
    if t == "CubaLIF":
        tau_syn, tau_mem = full("tau_syn"), full("tau_mem")
        ks, km = ratio(tau_syn, "tau_syn"), ratio(tau_mem, "tau_mem")
        w_in = full("w_in") if getattr(node, "w_in", None) is not None else np.ones(n)
        v_leak = full("v_leak")
        return NeuronDyn(alpha=1 - ks, beta=1 - km, g_syn=_gain(ks, w_in, tau_syn, dt), g_mem=_gain(km, r, tau_mem, dt),
                         leak=km * v_leak, theta=theta, v_reset=v_reset, node_type=t, tau_syn=tau_syn, tau_mem=tau_mem)
    if t == "LIF":
        tau = full("tau")
        km = ratio(tau, "tau")
        v_leak = full("v_leak")
        return NeuronDyn(alpha=np.zeros(n), beta=1 - km, g_syn=np.ones(n), g_mem=_gain(km, r, tau, dt),
                         leak=km * v_leak, theta=theta, v_reset=v_reset, node_type=t, tau_mem=tau)
    # IF: dv/dt = R I
    return NeuronDyn(alpha=np.zeros(n), beta=np.ones(n), g_syn=np.ones(n), g_mem=r * dt, leak=np.zeros(n),
                     theta=theta, v_reset=v_reset, node_type=t)


def _gain(k: np.ndarray, x: np.ndarray, tau: np.ndarray, dt: float) -> np.ndarray:
    """``dt * x / tau``; 1 exactly where it is 1 to float precision (the snnTorch convention)."""
    g = dt * x / tau
    return np.where(np.abs(g - 1.0) < 1e-6, 1.0, g)


def graph_to_model(graph, *, dt: Optional[float] = None) -> NirModel:
    """Reduce a NIR graph to snnhw's chain (see :class:`NirModel`); one-line errors otherwise.

    ``dt`` [s]: overrides ``graph.metadata["dt"]``; without either, 1e-4 s (snnTorch's) is used.
    """
    import nir

    gmeta = dict(getattr(graph, "metadata", {}) or {})
    dt_source = "argument"
    if dt is None:
        if "dt" in gmeta:
            dt, dt_source = float(np.asarray(gmeta["dt"]).ravel()[0]), "graph metadata"
        else:
            dt, dt_source = DEFAULT_DT, "default (snnTorch convention, 1e-4 s)"
    if not (np.isfinite(dt) and dt > 0):
        raise NIRFormatError(f"dt must be a positive number of seconds, got {dt}")
    nodes, edges, passthrough = _flatten_graph(graph)
    top_in = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    top_out = [k for k, v in graph.nodes.items() if isinstance(v, nir.Output)]
    nodes, edges = _contract(nodes, edges, passthrough)
    for k, v in nodes.items():
        tn = type(v).__name__
        if tn not in SUPPORTED:
            raise NIRFormatError(f"unsupported node type {tn} (node '{k}'); snnhw imports "
                                 + ", ".join(SUPPORTED) + " and nested NIRGraphs")
    if len(top_in) != 1:
        raise NIRFormatError(f"the graph needs exactly one Input node, found {len(top_in)}"
                             + (" (a cycle without Input?)" if not top_in else ""))
    if len(top_out) != 1:
        raise NIRFormatError(f"the graph needs exactly one Output node, found {len(top_out)}")
    succ: Dict[str, List[str]] = {k: [] for k in nodes}
    pred: Dict[str, List[str]] = {k: [] for k in nodes}
    for s, d in edges:
        if s not in nodes or d not in nodes:
            raise NIRFormatError(f"edge ({s}, {d}) names a node that does not exist")
        succ[s].append(d)
        pred[d].append(s)

    shape = _first_shape(getattr(nodes[top_in[0]], "input_type", None))
    if shape is None:
        raise NIRFormatError("the Input node has no shape")
    if not shape or any(s <= 0 for s in shape):
        raise NIRFormatError(f"Input node has an invalid shape {shape}")
    in_shape = shape
    stages: List[Stage] = []
    cur = top_in[0]
    pending: Optional[Stage] = None
    seen = {cur}
    while True:
        nxt = [d for d in succ[cur]]
        rec_nodes = []
        if type(nodes[cur]).__name__ in NEURONS:
            for d in list(nxt):
                if type(nodes[d]).__name__ in ("Affine", "Linear") and succ[d] == [cur] and pred[d] == [cur]:
                    rec_nodes.append(d)
                    nxt.remove(d)
            if cur in nxt:
                raise NIRFormatError(f"node '{cur}' feeds itself directly; recurrence needs an Affine/Linear node")
        if len(nxt) != 1:
            raise NIRFormatError(f"node '{cur}' has {len(nxt)} successors: snnhw maps chains of layers "
                                 f"(branches and skip connections are not supported)" if nxt else
                                 f"node '{cur}' does not lead to the Output node")
        d = nxt[0]
        if d in seen:
            raise NIRFormatError(f"cycle through '{d}' that is not a neuron<->Affine/Linear recurrence")
        seen.add(d)
        if len(pred[d]) != 1 and type(nodes[d]).__name__ not in NEURONS:
            raise NIRFormatError(f"node '{d}' has {len(pred[d])} inputs: fan-in is not supported")
        node, tn = nodes[d], type(nodes[d]).__name__
        if tn == "Output":
            if pending is not None:
                raise NIRFormatError(f"synapse node '{pending.nodes['synapse']}' feeds the Output directly: "
                                     f"the chip's outputs are spiking neurons")
            if not stages or all(s.neuron is None for s in stages):
                raise NIRFormatError("the graph has no neuron layer between Input and Output")
            oshape = _first_shape(getattr(node, "output_type", None))
            if oshape is not None and int(np.prod(oshape)) != int(np.prod(shape)):
                raise NIRFormatError(f"Output node expects shape {oshape}, the last layer gives {shape} "
                                     f"(shape mismatch)")
            break
        if tn == "Input":
            raise NIRFormatError(f"Input node '{d}' has a predecessor")
        if tn in SYNAPSES:
            if pending is not None:
                raise NIRFormatError(f"synapse '{d}' follows synapse '{pending.nodes['synapse']}': two synapse "
                                     f"nodes in a row are not supported")
            pending = _synapse_stage(d, node, shape)
            shape = pending.out_shape
        elif tn == "Flatten":
            if pending is not None:
                raise NIRFormatError(f"Flatten '{d}' between a synapse and its neurons is not supported")
            ishape = _first_shape(getattr(node, "input_type", None))
            if ishape is not None and int(np.prod(ishape)) != int(np.prod(shape)):
                raise NIRFormatError(f"Flatten '{d}' expects shape {ishape}, receives {shape} (shape mismatch)")
            st = Stage(name=d, kind="flatten", in_shape=shape, out_shape=(int(np.prod(shape)),),
                       nodes={"flatten": d}, meta={"flatten": dict(node.metadata or {})})
            stages.append(st)
            shape = st.out_shape
        elif tn in NEURONS:
            n = int(np.prod(shape))
            if pending is None:  # Input/neuron -> neuron: an identity synapse
                pending = Stage(name=d, kind="identity", in_shape=shape, out_shape=shape)
            recs = [r for r in succ[d] if type(nodes[r]).__name__ in ("Affine", "Linear")
                    and succ[r] == [d] and pred[r] == [d]]
            ff_preds = [p for p in pred[d] if p not in recs]
            if len(ff_preds) != 1:
                raise NIRFormatError(f"node '{d}' has {len(ff_preds)} feed-forward inputs: fan-in is not supported")
            pending.neuron = _neuron_dyn(node, d, n, dt)
            pending.nodes["neuron"] = d
            pending.meta["neuron"] = dict(node.metadata or {})
            if pending.kind == "identity":
                pending.name = d
            if len(recs) > 1:
                raise NIRFormatError(f"node '{d}' has {len(recs)} recurrent connections; one is supported")
            if recs:
                rnode = nodes[recs[0]]
                wr = _param(rnode, "weight", recs[0])
                if wr.shape != (n, n):
                    raise NIRFormatError(f"recurrent node '{recs[0]}' has weight {wr.shape}, needs ({n}, {n}) "
                                         f"(shape mismatch)")
                pending.weight_rec = wr
                if type(rnode).__name__ == "Affine":
                    br = _param(rnode, "bias", recs[0]).ravel()
                    if br.size != n:
                        raise NIRFormatError(f"recurrent node '{recs[0]}': bias has {br.size} values, needs {n}")
                    pending.bias_rec = br if np.any(br != 0) else None
                pending.nodes["recurrent"] = recs[0]
                pending.meta["recurrent"] = dict(rnode.metadata or {})
                seen.add(recs[0])
            stages.append(pending)
            pending = None
        cur = d
    return NirModel(input_shape=in_shape, stages=stages, dt=float(dt), metadata=gmeta, dt_source=dt_source)


def _first_shape(types) -> Optional[Tuple[int, ...]]:
    """The shape in a NIR ``input_type``/``output_type`` dict (whatever its key), or None."""
    if not isinstance(types, dict) or not types:
        return None
    v = next(iter(types.values()))
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise NIRFormatError(f"invalid shape {v!r} in a node type") from None
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(a < 0):
        raise NIRFormatError(f"invalid shape {v!r} in a node type")
    return tuple(int(x) for x in a)


def _synapse_stage(name: str, node, shape: Tuple[int, ...]) -> Stage:
    tn = type(node).__name__
    meta = {"synapse": dict(node.metadata or {})}
    if tn in ("Affine", "Linear"):
        w = _param(node, "weight", name)
        if w.ndim != 2:
            raise NIRFormatError(f"node '{name}': weight must be 2-D [out, in], got shape {w.shape}")
        if len(shape) != 1:
            raise NIRFormatError(f"node '{name}' receives a {len(shape)}-D map {shape}: insert a Flatten")
        if w.shape[1] != shape[0]:
            raise NIRFormatError(f"node '{name}' expects {w.shape[1]} inputs, receives {shape[0]} (shape mismatch)")
        b = None
        if tn == "Affine":
            b = _param(node, "bias", name).ravel()
            if b.size != w.shape[0]:
                raise NIRFormatError(f"node '{name}': bias has {b.size} values, weight has {w.shape[0]} rows "
                                     f"(shape mismatch)")
            b = b if np.any(b != 0) else None
        return Stage(name=name, kind="dense", in_shape=shape, out_shape=(int(w.shape[0]),), weight=w, bias=b,
                     nodes={"synapse": name}, meta=meta)
    if tn == "Conv2d":
        w = _param(node, "weight", name)
        if w.ndim != 4:
            raise NIRFormatError(f"node '{name}': Conv2d weight must be [out, in, kH, kW], got shape {w.shape}")
        if len(shape) != 3:
            raise NIRFormatError(f"node '{name}': Conv2d needs a (C, H, W) input, receives {shape}")
        if int(getattr(node, "groups", 1) or 1) != 1:
            raise NIRFormatError(f"node '{name}': grouped convolution (groups={node.groups}) is not supported")
        if _pair(getattr(node, "dilation", 1), name, "dilation") != (1, 1):
            raise NIRFormatError(f"node '{name}': dilated convolution is not supported")
        if w.shape[1] != shape[0]:
            raise NIRFormatError(f"node '{name}' expects {w.shape[1]} input channels, receives {shape[0]} "
                                 f"(shape mismatch)")
        ins = getattr(node, "input_shape", None)
        if ins is not None and tuple(int(x) for x in np.asarray(ins).ravel()) != tuple(shape[1:]):
            raise NIRFormatError(f"node '{name}': input_shape {tuple(np.asarray(ins).tolist())} does not match "
                                 f"the incoming map {shape[1:]} (shape mismatch)")
        stride = _pair(node.stride, name, "stride")
        kh, kw = int(w.shape[2]), int(w.shape[3])
        pad = node.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same" and stride == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
                pad = (kh // 2, kw // 2)
            else:
                raise NIRFormatError(f"node '{name}': padding '{pad}' is not supported here")
        pad = _pair(pad, name, "padding")
        if min(stride) < 1 or min(pad) < 0:
            raise NIRFormatError(f"node '{name}': stride must be >= 1 and padding >= 0")
        oh = (shape[1] + 2 * pad[0] - kh) // stride[0] + 1
        ow = (shape[2] + 2 * pad[1] - kw) // stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise NIRFormatError(f"node '{name}': kernel {kh}x{kw} does not fit the map {shape[1:]}")
        out = (int(w.shape[0]), oh, ow)
        b = None
        if getattr(node, "bias", None) is not None:
            bb = _param(node, "bias", name).ravel()
            if bb.size not in (1, w.shape[0]):
                raise NIRFormatError(f"node '{name}': bias has {bb.size} values for {w.shape[0]} channels")
            if np.any(bb != 0):
                b = np.repeat(np.broadcast_to(bb, (w.shape[0],)), oh * ow)
        return Stage(name=name, kind="conv", in_shape=shape, out_shape=out, weight=w, bias=b, stride=stride,
                     padding=pad, kernel=(kh, kw), nodes={"synapse": name}, meta=meta)
    # SumPool2d
    if len(shape) != 3:
        raise NIRFormatError(f"node '{name}': SumPool2d needs a (C, H, W) input, receives {shape}")
    k = _pair(node.kernel_size, name, "kernel_size")
    stride = _pair(node.stride, name, "stride")
    pad = _pair(node.padding, name, "padding")
    if pad != (0, 0):
        raise NIRFormatError(f"node '{name}': padded sum pooling is not supported")
    if min(k) < 1 or min(stride) < 1:
        raise NIRFormatError(f"node '{name}': kernel and stride must be >= 1")
    oh, ow = (shape[1] - k[0]) // stride[0] + 1, (shape[2] - k[1]) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise NIRFormatError(f"node '{name}': kernel {k} does not fit the map {shape[1:]}")
    return Stage(name=name, kind="pool", in_shape=shape, out_shape=(shape[0], oh, ow), stride=stride, kernel=k,
                 nodes={"synapse": name}, meta=meta)


def load_model(path, *, dt: Optional[float] = None) -> NirModel:
    """Read a NIR file and reduce it to a :class:`NirModel` (one-line :class:`NIRFormatError` otherwise)."""
    graph = read_graph(path)
    tce = graph.__dict__.get("_snnhw_type_check_error")
    try:
        model = graph_to_model(graph, dt=dt)
    except NIRFormatError as e:
        if tce:
            raise NIRFormatError(f"{e} (nir's type check also failed: {tce})") from None
        raise
    except Exception as e:  # anything nir's node objects throw at us
        raise NIRFormatError(f"cannot map NIR graph {path}: {type(e).__name__}: {_one_line(e)}") from None
    model.type_check_error = tce
    return model


# ================================================================================================
# Exact spec from snnhw metadata
# ================================================================================================
def _m(meta: Dict, key: str, default=None):
    v = meta.get(P + key, default)
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (np.integer,)):
        v = int(v)
    elif isinstance(v, (np.floating,)):
        v = float(v)
    elif isinstance(v, bytes):
        v = v.decode()
    return v


def has_snnhw_metadata(model: NirModel) -> bool:
    return (int(np.asarray(model.metadata.get(P + "format", 0))) >= 1
            and all(P + "vth_mant" in s.meta.get("neuron", {}) for s in model.neuron_stages))


def model_to_spec_exact(model: NirModel, *, check: bool = True) -> NetworkSpec:
    """Rebuild the exact spec of an snnhw-written graph from its metadata.

    With ``check`` the float parameters must agree with the metadata (weights to float32 precision,
    thresholds, time constants, w_in); otherwise a :class:`NIRFormatError` says which disagrees
    (the file was edited after export) and the caller may fall back to calibration.
    """
    if not has_snnhw_metadata(model):
        raise NIRFormatError("the graph carries no snnhw metadata")
    q = bool(int(np.asarray(model.metadata.get(P + "quantized", 1))))
    dt = model.dt
    layers = []

    def num(v):
        return int(v) if q else float(v)

    for st in model.stages:
        if st.kind == "flatten":
            layers.append(Flatten(name=str(_m(st.meta["flatten"], "layer", st.name)), input_shape=tuple(st.in_shape)))
            continue
        sm, nm = st.meta.get("synapse", {}), st.meta["neuron"]
        name = str(_m(nm, "layer", st.name))
        neuron = Neuron(i_decay=num(_m(nm, "i_decay")), v_decay=num(_m(nm, "v_decay")),
                        vth_mant=num(_m(nm, "vth_mant")),
                        reset=str(_m(nm, "reset", "zero")))
        bias = nm.get(P + "bias_mant")
        bias = None if bias is None else np.asarray(bias).astype(np.int64 if q else np.float64)
        bias_exp = int(_m(nm, "bias_exp", loihi.NETX_BIAS_EXP))
        wexp = int(_m(sm, "weight_exp", 0))
        mant = sm.get(P + "weight_mant")
        if st.kind == "dense":
            w = np.asarray(mant).astype(np.int64 if q else np.float64)
            layer = Dense(name=name, weight=w, neuron=neuron, weight_exp=wexp, bias_mant=bias, bias_exp=bias_exp,
                          graded_input=bool(int(_m(sm, "graded_input", 0))))
            if check and not np.allclose(w * 2.0 ** wexp, st.weight, rtol=1e-6, atol=1e-30):
                raise NIRFormatError(f"node '{st.nodes['synapse']}': weights disagree with snnhw.weight_mant")
            if st.weight_rec is not None:
                rm = st.meta["recurrent"]
                wr = np.asarray(rm[P + "weight_mant"]).astype(np.int64 if q else np.float64)
                layer.weight_rec, layer.rec_exp = wr, int(_m(rm, "weight_exp", 0))
                if check and not np.allclose(wr * 2.0 ** layer.rec_exp, st.weight_rec, rtol=1e-6, atol=1e-30):
                    raise NIRFormatError(f"node '{st.nodes['recurrent']}': weights disagree with snnhw.weight_mant")
        elif st.kind == "conv":
            w = np.asarray(mant).astype(np.int64 if q else np.float64)
            layer = Conv(name=name, weight=w, input_shape=tuple(st.in_shape), neuron=neuron, stride=tuple(st.stride),
                         padding=tuple(st.padding), weight_exp=wexp, bias_mant=bias, bias_exp=bias_exp)
            if check and not np.allclose(w * 2.0 ** wexp, st.weight, rtol=1e-6, atol=1e-30):
                raise NIRFormatError(f"node '{st.nodes['synapse']}': weights disagree with snnhw.weight_mant")
        elif st.kind == "pool":
            layer = SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel), stride=tuple(st.stride),
                            weight=num(mant), neuron=neuron, weight_exp=wexp, bias_mant=bias, bias_exp=bias_exp)
        else:
            raise NIRFormatError(f"node '{st.name}': snnhw metadata on a neuron without a synapse")
        if check:
            nd = st.neuron
            want_alpha = 1 - float(neuron.i_decay) / loihi.DECAY_UNITY
            want_beta = 1 - float(neuron.v_decay) / loihi.DECAY_UNITY
            gain = float(layer.weight) * 2.0 ** wexp if st.kind == "pool" else 1.0
            if (not np.allclose(nd.alpha, want_alpha, atol=1e-9) or not np.allclose(nd.beta, want_beta, atol=1e-9)
                    or not np.allclose(nd.theta, float(neuron.vth_mant), rtol=1e-9)
                    or not np.allclose(nd.g_syn * nd.g_mem, gain, rtol=1e-6)):
                raise NIRFormatError(f"node '{st.nodes['neuron']}': neuron parameters disagree with snnhw metadata "
                                     f"(dt = {dt} s)")
        layers.append(layer)
    spec = NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=q,
                       metadata={"source": "nir", "dt": dt})
    try:
        return spec.validate()
    except ValueError as e:
        raise NIRFormatError(f"snnhw metadata does not form a valid spec: {_one_line(e)}") from None


def read_nir_spec(path, *, dt: Optional[float] = None) -> NetworkSpec:
    """The exact :class:`NetworkSpec` of an snnhw-written NIR file (metadata checked against floats)."""
    return model_to_spec_exact(load_model(path, dt=dt))
