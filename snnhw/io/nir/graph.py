"""Any supported NIR graph -> :class:`NirModel`: a DAG of neuron populations joined by linear nodes,
with recurrence through a neuron.

1. Nested NIRGraphs are inlined (names ``outer.inner``) and their Input/Output nodes contracted.
2. A depth-first walk from the one Input orders the nodes; an edge back to a node on the walk's
   stack is a recurrent edge and must end at a neuron (NIR's recurrence acts on the previous step).
3. Shapes are inferred in that order: several edges into one node sum (fan-in), so their shapes
   must agree; every linear node becomes a :class:`~snnhw.io.nir.ops.LinOp`, every neuron a
   :class:`~snnhw.io.nir.euler.NeuronDyn` under the source's convention
   (:mod:`snnhw.io.nir.convention`).
4. :mod:`snnhw.io.nir.chain` then tries to reduce the populations to snnhw's chain of stages (what
   the chip mapping runs); a graph that is not a chain keeps ``chain_error`` saying why.

Known exporter bugs are repaired with ``repair=True`` (each repair one line in ``model.repairs``):
a Conv2d without ``input_shape`` (set from the incoming map), a subgraph Input whose declared
shape differs from what it receives, and an Input shape [1, N] whose leading axis is a batch axis. Every error is a one-line :class:`NIRFormatError` naming the node.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnhw.errors import InputError
from snnhw.io.nir import convention as conv_mod
from snnhw.io.nir.chain import to_chain
from snnhw.io.nir.euler import neuron_dyn
from snnhw.io.nir.file import read_graph
from snnhw.io.nir.model import FlatGraph, NirModel
from snnhw.io.nir.ops import make_op
from snnhw.io.nir.schema import DEFAULT_DT, NEURONS, READOUTS, SUPPORTED, NIRFormatError, first_shape


# ------------------------------------------------------------------------------------------------
# Inline subgraphs
# ------------------------------------------------------------------------------------------------
def _flatten_graph(graph, prefix: str = ""):
    """Inline nested NIRGraphs. Returns (nodes, edges, passthrough, sub_inputs) with names
    ``outer.inner``; subgraph Input/Output nodes are in ``passthrough`` for contraction and the
    Inputs also in ``sub_inputs`` (their declared shapes are checked against what they receive)."""
    import nir

    nodes: Dict[str, Any] = {}
    edges: List[Tuple[str, str]] = []
    passthrough: set = set()
    sub_inputs: Dict[str, Any] = {}
    entry: Dict[str, List[str]] = {}
    exit_: Dict[str, List[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sn, se, sp, si = _flatten_graph(node, full + ".")
            nodes.update(sn)
            edges += se
            passthrough |= sp
            sub_inputs.update(si)
            ins = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if not ins or not outs:
                raise NIRFormatError(f"subgraph '{full}' needs Input and Output nodes")
            passthrough |= set(ins) | set(outs)
            sub_inputs.update({i: nodes[i] for i in ins})
            entry[full], exit_[full] = ins, outs
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        src, dst = prefix + str(src), prefix + str(dst)
        for s in exit_.get(src, [src]):
            for d in entry.get(dst, [dst]):
                edges.append((s, d))
    return nodes, edges, passthrough, sub_inputs


def _contract(nodes, edges, passthrough) -> Tuple[Dict[str, Any], List[Tuple[str, str]], Dict[str, List[str]]]:
    """Remove pass-through nodes, joining their predecessors to their successors; also returns, per
    removed node, the nodes that fed it (to check a subgraph Input's shape)."""
    edges = list(dict.fromkeys(edges))
    fed: Dict[str, List[str]] = {}
    for p in passthrough:
        preds = [s for s, d in edges if d == p and s != p]
        succs = [d for s, d in edges if s == p and d != p]
        fed[p] = [s for s in preds if s not in passthrough] or [x for s in preds for x in fed.get(s, [])]
        edges = [(s, d) for s, d in edges if s != p and d != p]
        edges += [(s, d) for s in preds for d in succs]
        nodes.pop(p, None)
    return nodes, list(dict.fromkeys(edges)), fed


# ------------------------------------------------------------------------------------------------
# Order, recurrent edges, shapes
# ------------------------------------------------------------------------------------------------
def _order(g: FlatGraph, start: str) -> None:
    """Depth-first from ``start``: ``g.back`` (recurrent edges), ``g.order`` (topological, back edges removed)."""
    state: Dict[str, int] = {}
    post: List[str] = []
    stack = [(start, iter(g.succ[start]))]
    state[start] = 1
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            state[node] = 2
            post.append(node)
            continue
        if state.get(nxt) == 1:
            if g.kind(nxt) not in NEURONS:
                raise NIRFormatError(f"cycle through '{nxt}' ({g.kind(nxt)}) that does not close at a neuron: "
                                     f"recurrence must feed back into a neuron node")
            g.back.add((node, nxt))
        elif nxt not in state:
            state[nxt] = 1
            stack.append((nxt, iter(g.succ[nxt])))
    unreached = [k for k in g.nodes if k not in state]
    if unreached:
        raise NIRFormatError(f"node '{unreached[0]}' cannot be reached from the Input node")
    g.order = post[::-1]


def _in_shape(g: FlatGraph, d: str) -> Tuple[int, ...]:
    ff = g.ff_preds(d)
    shapes = {p: g.shapes[p] for p in ff}
    if len(set(int(np.prod(s)) for s in shapes.values())) > 1 or len(set(shapes.values())) > 1:
        desc = ", ".join(f"'{p}' {s}" for p, s in shapes.items())
        raise NIRFormatError(f"node '{d}' sums inputs of different shapes ({desc}) (shape mismatch)")
    return next(iter(shapes.values()))


def _neuron(g: FlatGraph, d: str, shape: Tuple[int, ...], conv: conv_mod.Convention) -> None:
    node = g.nodes[d]
    g.neurons[d] = neuron_dyn(node, d, int(np.prod(shape)), g.dt, conv.rule(type(node).__name__), shape)
    g.shapes[d] = shape
    for s, t in g.back:
        if t == d and int(np.prod(g.shapes.get(s, shape))) != int(np.prod(shape)):
            raise NIRFormatError(f"recurrent edge ({s}, {d}) brings {g.shapes[s]} into {shape} (shape mismatch)")


def _repair_conv(g: FlatGraph, d: str, shape: Tuple[int, ...], repair: bool) -> None:
    node = g.nodes[d]
    if type(node).__name__ != "Conv2d" or getattr(node, "input_shape", None) is not None or len(shape) != 3:
        return
    if not repair:
        raise NIRFormatError(f"node '{d}': Conv2d has no 'input_shape' entry (an exporter bug; --repair sets it "
                             f"from the incoming map {shape[1:]})")
    node.input_shape = np.array(shape[1:])
    g.repairs.append(f"node '{d}': Conv2d input_shape was missing, set to {tuple(shape[1:])} from the incoming map")


def _shapes(g: FlatGraph, start: str, conv: conv_mod.Convention, repair: bool) -> None:
    shape = first_shape(getattr(g.nodes[start], "input_type", None), start)
    if shape is None:
        raise NIRFormatError("the Input node has no shape")
    if not shape or any(s <= 0 for s in shape):
        raise NIRFormatError(f"Input node has an invalid shape {shape}")
    if len(shape) == 2 and shape[0] == 1 and any(g.kind(d) in ("Affine", "Linear") for d in g.succ[start]):
        if not repair:
            raise NIRFormatError(f"Input node '{start}' has shape {shape}: a leading batch axis (Rockpool's "
                                 f"exporter keeps it) before an Affine/Linear node; --repair drops it")
        g.repairs.append(f"node '{start}': Input shape {shape} has a leading batch axis, using {shape[1:]}")
        shape = shape[1:]
    g.shapes[start] = shape
    for d in g.order[1:]:
        kind = g.kind(d)
        if kind == "Input":
            raise NIRFormatError(f"Input node '{d}' has a predecessor")
        if not g.ff_preds(d):
            raise NIRFormatError(f"node '{d}' has only recurrent inputs")
        shape = _in_shape(g, d)
        if kind == "Output":
            g.shapes[d] = shape
        elif kind in NEURONS:
            _neuron(g, d, shape, conv)
        else:
            _repair_conv(g, d, shape, repair)
            g.ops[d] = make_op(d, g.nodes[d], shape, g.dt)
            g.shapes[d] = g.ops[d].out_shape


def _check_sub_inputs(g: FlatGraph, sub_inputs: Dict[str, Any], fed: Dict[str, List[str]], repair: bool) -> None:
    """A subgraph Input that declares a shape other than what reaches it: refused, or repaired."""
    for name, node in sorted(sub_inputs.items()):
        declared = first_shape(getattr(node, "input_type", None), name)
        srcs = [s for s in fed.get(name, []) if s in g.shapes]
        if declared is None or not srcs:
            continue
        got = g.shapes[srcs[0]]
        if int(np.prod(declared)) == int(np.prod(got)):
            continue
        if not repair:
            raise NIRFormatError(f"subgraph Input '{name}' declares shape {declared} but receives {got} from "
                                 f"'{srcs[0]}' (an exporter bug; --repair uses the received shape)")
        g.repairs.append(f"node '{name}': subgraph Input shape {declared} replaced by {got}, the shape it receives")


# ------------------------------------------------------------------------------------------------
# Graph -> model
# ------------------------------------------------------------------------------------------------
def _resolve_dt(gmeta: Dict[str, Any], dt: Optional[float], conv: conv_mod.Convention,
                nodes: Dict[str, Any]) -> Tuple[float, str]:
    """(dt, where it came from): the argument, else ``graph.metadata["dt"]``, else the convention's."""
    if dt is not None:
        if not (np.isfinite(dt) and dt > 0):
            raise InputError(f"dt must be a positive number of seconds, got {dt}")
        return float(dt), "argument"
    if "dt" in gmeta:
        try:
            a = np.asarray(gmeta["dt"], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            a = np.array([])
        if a.size != 1 or not (np.isfinite(a[0]) and a[0] > 0):
            shown = a[0].item() if a.size == 1 else gmeta["dt"]  # a plain number, as numpy 1 and 2 both print it
            raise NIRFormatError(f"graph metadata dt = {shown!r} must be a positive number of seconds")
        return float(a[0]), "graph metadata"
    if conv.name == "norse":
        return conv_mod.norse_dt(nodes)
    if conv.name == "rockpool":
        d = conv_mod.rockpool_dt(nodes)
        if d is not None:
            return d, "solved from Rockpool's r = tau*exp(-dt/tau)/dt"
    if conv.dt is not None:
        return conv.dt, f"{conv.name} convention"
    return DEFAULT_DT, "default (snnTorch convention, 1e-4 s)"


def _flat(graph) -> Tuple[FlatGraph, str, str, Dict[str, Any], Dict[str, List[str]]]:
    import nir

    nodes, edges, passthrough, sub_inputs = _flatten_graph(graph)
    top_in = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    top_out = [k for k, v in graph.nodes.items() if isinstance(v, nir.Output)]
    nodes, edges, fed = _contract(nodes, edges, passthrough)
    for k, v in nodes.items():
        if type(v).__name__ not in SUPPORTED:
            raise NIRFormatError(f"unsupported node type {type(v).__name__} (node '{k}'); snnhw imports "
                                 + ", ".join(SUPPORTED) + " and nested NIRGraphs")
    if len(top_in) != 1:
        raise NIRFormatError(f"the graph needs exactly one Input node, found {len(top_in)}"
                             + (" (a cycle without Input?)" if not top_in else ""))
    if len(top_out) != 1:
        raise NIRFormatError(f"the graph needs exactly one Output node, found {len(top_out)}")
    g = FlatGraph(nodes=nodes, succ={k: [] for k in nodes}, pred={k: [] for k in nodes})
    for s, d in edges:
        if s not in nodes or d not in nodes:
            raise NIRFormatError(f"edge ({s}, {d}) names a node that does not exist")
        if s == d:
            raise NIRFormatError(f"node '{s}' feeds itself directly; recurrence needs an Affine/Linear node")
        g.succ[s].append(d)
        g.pred[d].append(s)
    return g, top_in[0], top_out[0], sub_inputs, fed


def _check_output(g: FlatGraph, out: str) -> None:
    preds = g.ff_preds(out)
    if len(preds) != 1:
        raise NIRFormatError(f"Output node '{out}' has {len(preds)} inputs; it must be fed by one neuron node")
    if g.kind(preds[0]) not in NEURONS:
        raise NIRFormatError(f"synapse node '{preds[0]}' feeds the Output directly: the chip's outputs are "
                             f"neuron populations")
    oshape = first_shape(getattr(g.nodes[out], "output_type", None), out)
    if oshape is not None and int(np.prod(oshape)) != int(np.prod(g.shapes[out])):
        raise NIRFormatError(f"Output node expects shape {oshape}, the last layer gives {g.shapes[out]} "
                             f"(shape mismatch)")
    g.output = preds[0]


def graph_to_model(graph, *, dt: Optional[float] = None, source: Optional[str] = None,
                   repair: bool = False) -> NirModel:
    """Reduce a NIR graph to a :class:`NirModel` (module docstring); one-line errors otherwise.

    ``dt``: overrides the graph metadata and the source's convention. ``source``: the framework that
    wrote the graph (``--from``; :mod:`snnhw.io.nir.convention`), detected when None.
    """
    gmeta = dict(getattr(graph, "metadata", {}) or {})
    g, start, out, sub_inputs, fed = _flat(graph)
    if source is None:
        source, why = conv_mod.detect(g.nodes, gmeta)
        conv_source = f"detected: {why}"
    else:
        conv_source = "--from"
    conv = conv_mod.get(source)
    g.dt, dt_source = _resolve_dt(gmeta, dt, conv, g.nodes)
    _order(g, start)
    _shapes(g, start, conv, repair)
    _check_sub_inputs(g, sub_inputs, fed, repair)
    _check_output(g, out)
    if not g.neurons:
        raise NIRFormatError("the graph has no neuron layer between Input and Output")
    g.start = start
    stages, chain_error = to_chain(g)
    model = NirModel(input_shape=g.shapes[start], stages=stages, dt=g.dt, metadata=gmeta, dt_source=dt_source)
    model.graph, model.chain_error, model.repairs = g, chain_error, list(g.repairs)
    model.convention, model.convention_source = conv, conv_source
    model.output_voltage = g.kind(g.output) in READOUTS
    return model


def load_model(path, *, dt: Optional[float] = None, source: Optional[str] = None, repair: bool = False) -> NirModel:
    """Read a NIR file and reduce it to a :class:`NirModel` (one-line :class:`NIRFormatError` otherwise)."""
    graph, type_check_error = read_graph(path, repair=repair)
    try:
        model = graph_to_model(graph, dt=dt, source=source, repair=repair)
    except NIRFormatError as e:
        if type_check_error:
            raise NIRFormatError(f"{e} (nir's type check also failed: {type_check_error})") from None
        raise
    model.type_check_error = type_check_error
    return model


__all__ = ["graph_to_model", "load_model"]
