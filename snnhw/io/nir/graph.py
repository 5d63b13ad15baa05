"""Any supported NIR graph (flat, with recurrent cycles, or with nested subgraphs) -> :class:`NirModel`.

Nested NIRGraphs are inlined (names ``outer.inner``) and their Input/Output nodes contracted; the
result must be a chain from the one Input to the one Output of synapse -> neuron layers (a neuron
straight after the Input or another neuron gets an identity synapse), Flatten nodes, and at most
one neuron <-> Affine/Linear recurrence per neuron node. Each node kind has its handler below;
every error is a one-line :class:`NIRFormatError` naming the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from snnhw.errors import InputError
from snnhw.io.nir.euler import neuron_dyn
from snnhw.io.nir.file import read_graph
from snnhw.io.nir.model import NirModel, Stage, synapse_stage
from snnhw.io.nir.schema import DEFAULT_DT, NEURONS, SUPPORTED, SYNAPSES, NIRFormatError, first_shape, param


# ------------------------------------------------------------------------------------------------
# Inline subgraphs
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# The chain walk
# ------------------------------------------------------------------------------------------------
@dataclass
class _Chain:
    """Walk state: the flat graph, the stages so far, the synapse waiting for its neurons, the shape."""

    nodes: Dict[str, Any]
    succ: Dict[str, List[str]]
    pred: Dict[str, List[str]]
    dt: float
    shape: Tuple[int, ...]
    stages: List[Stage] = field(default_factory=list)
    pending: Optional[Stage] = None
    seen: Set[str] = field(default_factory=set)

    def kind(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    def recurrent_of(self, name: str) -> List[str]:
        """Affine/Linear nodes on a cycle with neuron node ``name`` only."""
        return [r for r in self.succ[name] if self.kind(r) in ("Affine", "Linear")
                and self.succ[r] == [name] and self.pred[r] == [name]]


def _next_node(c: _Chain, cur: str) -> str:
    nxt = list(c.succ[cur])
    if c.kind(cur) in NEURONS:
        for r in c.recurrent_of(cur):
            nxt.remove(r)
        if cur in nxt:
            raise NIRFormatError(f"node '{cur}' feeds itself directly; recurrence needs an Affine/Linear node")
    if len(nxt) != 1:
        raise NIRFormatError(f"node '{cur}' has {len(nxt)} successors: snnhw maps chains of layers "
                             f"(branches and skip connections are not supported)" if nxt else
                             f"node '{cur}' does not lead to the Output node")
    d = nxt[0]
    if d in c.seen:
        raise NIRFormatError(f"cycle through '{d}' that is not a neuron<->Affine/Linear recurrence")
    c.seen.add(d)
    if len(c.pred[d]) != 1 and c.kind(d) not in NEURONS:
        raise NIRFormatError(f"node '{d}' has {len(c.pred[d])} inputs: fan-in is not supported")
    return d


def _on_output(c: _Chain, d: str) -> None:
    if c.pending is not None:
        raise NIRFormatError(f"synapse node '{c.pending.nodes['synapse']}' feeds the Output directly: "
                             f"the chip's outputs are spiking neurons")
    if not c.stages or all(s.neuron is None for s in c.stages):
        raise NIRFormatError("the graph has no neuron layer between Input and Output")
    oshape = first_shape(getattr(c.nodes[d], "output_type", None), d)
    if oshape is not None and int(np.prod(oshape)) != int(np.prod(c.shape)):
        raise NIRFormatError(f"Output node expects shape {oshape}, the last layer gives {c.shape} "
                             f"(shape mismatch)")


def _on_input(c: _Chain, d: str) -> None:
    raise NIRFormatError(f"Input node '{d}' has a predecessor")


def _on_synapse(c: _Chain, d: str) -> None:
    if c.pending is not None:
        raise NIRFormatError(f"synapse '{d}' follows synapse '{c.pending.nodes['synapse']}': two synapse "
                             f"nodes in a row are not supported")
    c.pending = synapse_stage(d, c.nodes[d], c.shape)
    c.shape = c.pending.out_shape


def _on_flatten(c: _Chain, d: str) -> None:
    if c.pending is not None:
        raise NIRFormatError(f"Flatten '{d}' between a synapse and its neurons is not supported")
    node = c.nodes[d]
    ishape = first_shape(getattr(node, "input_type", None), d)
    if ishape is not None and int(np.prod(ishape)) != int(np.prod(c.shape)):
        raise NIRFormatError(f"Flatten '{d}' expects shape {ishape}, receives {c.shape} (shape mismatch)")
    st = Stage(name=d, kind="flatten", in_shape=c.shape, out_shape=(int(np.prod(c.shape)),),
               nodes={"flatten": d}, meta={"flatten": dict(node.metadata or {})})
    c.stages.append(st)
    c.shape = st.out_shape


def _attach_recurrent(c: _Chain, st: Stage, d: str, n: int) -> None:
    recs = c.recurrent_of(d)
    if len(recs) > 1:
        raise NIRFormatError(f"node '{d}' has {len(recs)} recurrent connections; one is supported")
    if not recs:
        return
    r = recs[0]
    rnode = c.nodes[r]
    wr = param(rnode, "weight", r)
    if wr.shape != (n, n):
        raise NIRFormatError(f"recurrent node '{r}' has weight {wr.shape}, needs ({n}, {n}) (shape mismatch)")
    st.weight_rec = wr
    if type(rnode).__name__ == "Affine":
        br = param(rnode, "bias", r).ravel()
        if br.size != n:
            raise NIRFormatError(f"recurrent node '{r}': bias has {br.size} values, needs {n}")
        st.bias_rec = br if np.any(br != 0) else None
    st.nodes["recurrent"] = r
    st.meta["recurrent"] = dict(rnode.metadata or {})
    c.seen.add(r)


def _on_neuron(c: _Chain, d: str) -> None:
    node, n = c.nodes[d], int(np.prod(c.shape))
    st = c.pending
    if st is None:  # Input/neuron -> neuron: an identity synapse
        st = Stage(name=d, kind="identity", in_shape=c.shape, out_shape=c.shape)
    recs = c.recurrent_of(d)
    ff_preds = [p for p in c.pred[d] if p not in recs]
    if len(ff_preds) != 1:
        raise NIRFormatError(f"node '{d}' has {len(ff_preds)} feed-forward inputs: fan-in is not supported")
    st.neuron = neuron_dyn(node, d, n, c.dt)
    st.nodes["neuron"] = d
    st.meta["neuron"] = dict(node.metadata or {})
    _attach_recurrent(c, st, d, n)
    c.stages.append(st)
    c.pending = None


HANDLERS = {"Input": _on_input, "Flatten": _on_flatten, **{t: _on_synapse for t in SYNAPSES},
            **{t: _on_neuron for t in NEURONS}}


# ------------------------------------------------------------------------------------------------
# Graph -> model
# ------------------------------------------------------------------------------------------------
def _resolve_dt(gmeta: Dict[str, Any], dt: Optional[float]) -> Tuple[float, str]:
    """(dt [s], where it came from): the argument, else ``graph.metadata["dt"]``, else 1e-4 s."""
    if dt is not None:
        if not (np.isfinite(dt) and dt > 0):
            raise InputError(f"dt must be a positive number of seconds, got {dt}")
        return float(dt), "argument"
    if "dt" not in gmeta:
        return DEFAULT_DT, "default (snnTorch convention, 1e-4 s)"
    try:
        a = np.asarray(gmeta["dt"], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        a = np.array([])
    if a.size != 1 or not (np.isfinite(a[0]) and a[0] > 0):
        shown = a[0].item() if a.size == 1 else gmeta["dt"]  # a plain number, as numpy 1 and 2 both print it
        raise NIRFormatError(f"graph metadata dt = {shown!r} must be a positive number of seconds")
    return float(a[0]), "graph metadata"


def _chain_of(graph, dt: float) -> Tuple[_Chain, str]:
    """The flat graph with its adjacency, checked node types and Input/Output; (chain, Input name)."""
    import nir

    nodes, edges, passthrough = _flatten_graph(graph)
    top_in = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    top_out = [k for k, v in graph.nodes.items() if isinstance(v, nir.Output)]
    nodes, edges = _contract(nodes, edges, passthrough)
    for k, v in nodes.items():
        if type(v).__name__ not in SUPPORTED:
            raise NIRFormatError(f"unsupported node type {type(v).__name__} (node '{k}'); snnhw imports "
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
    shape = first_shape(getattr(nodes[top_in[0]], "input_type", None), top_in[0])
    if shape is None:
        raise NIRFormatError("the Input node has no shape")
    if not shape or any(s <= 0 for s in shape):
        raise NIRFormatError(f"Input node has an invalid shape {shape}")
    return _Chain(nodes=nodes, succ=succ, pred=pred, dt=dt, shape=shape, seen={top_in[0]}), top_in[0]


def graph_to_model(graph, *, dt: Optional[float] = None) -> NirModel:
    """Reduce a NIR graph to snnhw's chain (see :class:`NirModel`); one-line errors otherwise.

    ``dt`` [s]: overrides ``graph.metadata["dt"]``; without either, 1e-4 s (snnTorch's) is used.
    """
    gmeta = dict(getattr(graph, "metadata", {}) or {})
    dt, dt_source = _resolve_dt(gmeta, dt)
    c, cur = _chain_of(graph, dt)
    in_shape = c.shape
    while True:
        d = _next_node(c, cur)
        kind = c.kind(d)
        if kind == "Output":
            _on_output(c, d)
            break
        HANDLERS[kind](c, d)
        cur = d
    return NirModel(input_shape=in_shape, stages=c.stages, dt=dt, metadata=gmeta, dt_source=dt_source)


def load_model(path, *, dt: Optional[float] = None) -> NirModel:
    """Read a NIR file and reduce it to a :class:`NirModel` (one-line :class:`NIRFormatError` otherwise)."""
    graph, type_check_error = read_graph(path)
    try:
        model = graph_to_model(graph, dt=dt)
    except NIRFormatError as e:
        if type_check_error:
            raise NIRFormatError(f"{e} (nir's type check also failed: {type_check_error})") from None
        raise
    model.type_check_error = type_check_error
    return model
