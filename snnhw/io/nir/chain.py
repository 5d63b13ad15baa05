"""Linear sub-graphs between populations: their evaluation, and their composition into the chain of
:class:`~snnhw.io.nir.model.Stage` s that the chip mapping runs.

Between two neuron populations a graph may hold any DAG of linear nodes (several paths sum, as
several Dense processes into one Lava LIF ``a_in`` do). :func:`linear_input` evaluates it exactly
(float64) for the float reference. For the chip each population must receive one synapse from the
population before it; :func:`to_chain` composes the linear nodes between them into that synapse:

* one Affine/Linear/Conv2d/SumPool2d node: that node, as written (so snnhw's own files keep their
  metadata and come back bit-exactly);
* SumPool2d/AvgPool2d (+ scalar Scale) -> a pool stage (the factor goes into the neurons' input gain);
* Conv2d or Conv1d (+ scalar Scale) -> a conv stage (Conv1d as a conv over (C, 1, L));
* SumPool2d/AvgPool2d -> Conv2d with a non-overlapping pool (stride = kernel): one conv whose kernel
  is the conv's, each tap repeated over the pool window, stride and padding multiplied by the pool's.
  This is exact (each input pixel reaches each output through at most one path, so every composed
  weight is one of the conv's weights: it stays on the weight grid);
* anything else (Flatten -> Affine after a pool, Affine -> Affine, per-element Scale, ...) -> one
  dense matrix, the linear map evaluated on the identity basis (exact in float64; the chip rounds the
  composed weights once, as it rounds any layer's).

No composition adds latency: every population gets one synapse, i.e. one step of Loihi's Dense
delay, as in a chain of single synapses. Graphs that are not chains (fan-in from several populations,
skip connections, a population feeding two others, Delay nodes) are run by the float reference; the
chip mapping refuses them with ``chain_error`` saying which node breaks the chain.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
import torch

from snnhw.io.nir.model import FlatGraph, Stage, synapse_stage
from snnhw.io.nir.schema import SYNAPSES, NIRFormatError

MAX_DENSE_ENTRIES = 1 << 22  # largest composed dense matrix (entries)


def subdag(g: FlatGraph, preds: List[str]) -> Tuple[List[str], Set[str]]:
    """(linear nodes in topological order, source nodes) of the linear sub-graph feeding ``preds``."""
    seen: Set[str] = set()
    srcs: Set[str] = set()
    stack = list(preds)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in g.ops:
            stack.extend(g.ff_preds(n))
        else:
            srcs.add(n)
    return [n for n in g.order if n in seen and n in g.ops], srcs


def linear_input(g: FlatGraph, preds: List[str], lin: List[str], values: Dict[str, torch.Tensor]
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The summed input that ``preds`` deliver: (time-varying part [B, T, *shape], constant part
    [*shape] or None), given the sources' outputs ``values`` [B, T, *shape] (float64)."""
    val: Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]] = {}

    def get(n: str):
        return val[n] if n in val else (values[n], None)

    def total(names: List[str]):
        parts = [get(p) for p in names]
        x = parts[0][0]
        for a, _ in parts[1:]:
            x = x + a.reshape(x.shape)
        cs = [c for _, c in parts if c is not None]
        c = None
        for ci in cs:
            c = ci if c is None else c + ci.reshape(c.shape)
        return x, c

    for n in lin:
        op = g.ops[n]
        x, c = total(g.ff_preds(n))
        x = x.reshape(x.shape[:2] + tuple(op.in_shape))
        y = op.apply(x)
        if c is not None and op.kind != "delay":
            c = op.apply(c.reshape((1, 1) + tuple(op.in_shape)))[0, 0]
        if op.bias is not None:
            b = torch.as_tensor(op.bias, dtype=torch.float64).reshape(op.out_shape)
            c = b if c is None else c + b
        val[n] = (y, c)
    return total(preds)


def _matrix(g: FlatGraph, preds: List[str], lin: List[str], src: str, n_out: int):
    """(W [n_out, n_src], bias [n_out] or None) of the linear map from ``src`` into ``preds``."""
    shape = g.shapes[src]
    n_in = int(np.prod(shape))
    if n_in * n_out > MAX_DENSE_ENTRIES:
        return None, None
    eye = torch.eye(n_in, dtype=torch.float64).reshape((n_in, 1) + tuple(shape))
    zero = torch.zeros((1, 1) + tuple(shape), dtype=torch.float64)
    x, c = linear_input(g, preds, lin, {src: eye})
    x0, _ = linear_input(g, preds, lin, {src: zero})
    w = (x - x0).reshape(n_in, n_out).T.numpy()
    b = None if c is None else c.reshape(n_out).numpy()
    return w, (b if b is not None and np.any(b != 0) else None)


def recurrent(g: FlatGraph, pop: str) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], List[str]]:
    """(W_rec [n, n], b_rec [n] or None, linear nodes) of ``pop``'s recurrence (None if it has none)."""
    preds = g.rec_preds(pop)
    if not preds:
        return None, None, []
    lin, srcs = subdag(g, preds)
    if srcs != {pop}:
        other = sorted(srcs - {pop})
        raise NIRFormatError(f"recurrent input of '{pop}' comes from '{other[0]}': only recurrence of a "
                             f"population onto itself (through linear nodes) is supported")
    for n in lin:
        if g.ops[n].kind == "delay":
            raise NIRFormatError(f"Delay node '{n}' inside the recurrence of '{pop}' is not supported")
    n = int(np.prod(g.shapes[pop]))
    w, b = _matrix(g, preds, lin, pop, n)
    if w is None:
        raise NIRFormatError(f"recurrence of '{pop}' is too large to compose ({n} x {n})")
    return w, b, lin


# ------------------------------------------------------------------------------------------------
# Composition into one synapse stage
# ------------------------------------------------------------------------------------------------
def _path(g: FlatGraph, preds: List[str], lin: List[str]) -> Optional[List[str]]:
    """The linear nodes if they form one path (each fed by exactly one node), else None."""
    if len(preds) != 1 or any(len(g.ff_preds(n)) != 1 for n in lin):
        return None
    return lin


def _pool_conv(g: FlatGraph, pool, conv, src_shape, factor: float) -> Optional[Stage]:
    """A non-overlapping pool followed by a conv as one conv (module docstring), or None."""
    kh, kw = pool.kernel
    if tuple(pool.stride) != (kh, kw) or conv.kind != "conv":
        return None
    c, h, w = src_shape
    ph, pw = conv.padding
    if (ph and h % kh) or (pw and w % kw):
        return None
    wt = np.repeat(np.repeat(conv.weight, kh, axis=2), kw, axis=3) * factor
    if pool.kind == "avgpool":
        wt = wt / (kh * kw)
    stride = (conv.stride[0] * kh, conv.stride[1] * kw)
    pad = (ph * kh, pw * kw)
    oh = (h + 2 * pad[0] - wt.shape[2]) // stride[0] + 1
    ow = (w + 2 * pad[1] - wt.shape[3]) // stride[1] + 1
    if (oh, ow) != tuple(conv.out_shape[1:]):
        return None
    return Stage(name=f"{pool.name}+{conv.name}", kind="conv", in_shape=tuple(src_shape),
                 out_shape=tuple(conv.out_shape), weight=wt, stride=stride, padding=pad,
                 kernel=(int(wt.shape[2]), int(wt.shape[3])), nodes={"synapse": conv.name})


def _special(g: FlatGraph, pop: str, path: List[str], src_shape) -> Optional[Stage]:
    """The pool / conv / pool->conv stage of a path, or None (then: a dense matrix)."""
    factor = 1.0
    core = []
    for n in path:
        op = g.ops[n]
        if op.kind == "flatten":
            continue
        if op.kind == "scale":
            if np.ptp(op.scale) != 0:
                return None
            factor *= float(op.scale.ravel()[0])
        else:
            core.append(op)
    kinds = [op.kind for op in core]
    if kinds in (["conv"], ["conv1d"]):
        op = core[0]
        ins = tuple(op.in_shape) if op.kind == "conv" else (op.in_shape[0], 1, op.in_shape[1])
        outs = tuple(op.out_shape) if op.kind == "conv" else (op.out_shape[0], 1, op.out_shape[1])
        return Stage(name=op.name, kind="conv", in_shape=ins, out_shape=outs, weight=op.weight * factor,
                     stride=op.stride, padding=op.padding, kernel=op.kernel, nodes={"synapse": op.name})
    if kinds in (["sumpool"], ["avgpool"]) and not g.rec_preds(pop):
        op = core[0]
        f = factor / (op.kernel[0] * op.kernel[1] if op.kind == "avgpool" else 1)
        st = Stage(name=op.name, kind="pool", in_shape=tuple(op.in_shape), out_shape=tuple(op.out_shape),
                   stride=op.stride, kernel=op.kernel, nodes={"synapse": op.name})
        st.gain = f
        return st
    if len(kinds) == 2 and kinds[0] in ("sumpool", "avgpool") and len(src_shape) == 3:
        return _pool_conv(g, core[0], core[1], src_shape, factor)
    return None


def _single(g: FlatGraph, path: List[str], src_shape) -> Optional[Tuple[Optional[str], Stage]]:
    """(Flatten node or None, stage) when the path is [Flatten?] + one synapse node written as snnhw writes."""
    syn = [n for n in path if g.kind(n) != "Flatten"]
    fl = [n for n in path if g.kind(n) == "Flatten"]
    if len(syn) != 1 or g.kind(syn[0]) not in SYNAPSES or len(fl) > 1 or (fl and path[0] != fl[0]):
        return None
    st = synapse_stage(syn[0], g.nodes[syn[0]], g.ops[syn[0]].in_shape)
    return (fl[0] if fl else None), st


def _stage_for(g: FlatGraph, pop: str, src: str) -> List[Stage]:
    """The stages (an optional flatten, then the synapse) carrying ``src`` into population ``pop``."""
    preds = g.ff_preds(pop)
    lin, _ = subdag(g, preds)
    src_shape = tuple(g.shapes[src])
    n = int(np.prod(g.shapes[pop]))
    path = _path(g, preds, lin)
    st, fl = None, None
    if not lin:
        st = Stage(name=pop, kind="identity", in_shape=(n,), out_shape=(n,))
    elif path is not None:
        single = _single(g, path, src_shape)
        if single is not None:
            fl, st = single
        else:
            st = _special(g, pop, path, src_shape)
            if st is not None:
                _, c = linear_input(g, preds, lin, {src: torch.zeros((1, 1) + src_shape, dtype=torch.float64)})
                st.bias = None if c is None or not torch.any(c != 0) else c.reshape(n).numpy()
    if st is None:
        w, b = _matrix(g, preds, lin, src, n)
        if w is None:
            raise _NotChain(f"the linear nodes into '{pop}' ({', '.join(lin)}) compose into a "
                            f"{n} x {int(np.prod(src_shape))} matrix, too large for one synapse")
        st = Stage(name="+".join(lin), kind="dense", in_shape=(int(np.prod(src_shape)),), out_shape=(n,), weight=w,
                   bias=b, nodes={"synapse": lin[-1]})
    out = []
    if st.kind in ("dense", "identity") and len(src_shape) > 1:
        fname = fl or f"{src}.flatten"
        out.append(Stage(name=fname, kind="flatten", in_shape=src_shape, out_shape=(int(np.prod(src_shape)),),
                         nodes={"flatten": fname}, meta={"flatten": dict(getattr(g.nodes.get(fname), "metadata",
                                                                                 None) or {})}))
    out.append(st)
    return out


class _NotChain(Exception):
    """The graph has no chain form; the message says why (kept as ``NirModel.chain_error``)."""


def _attach(g: FlatGraph, st: Stage, pop: str) -> None:
    """The population's neurons and recurrence onto its synapse stage."""
    nd = g.neurons[pop]
    gain = getattr(st, "gain", 1.0)
    if gain != 1.0:
        nd = copy.copy(nd)
        nd.g_syn = nd.g_syn * gain
    st.neuron = nd
    st.nodes["neuron"] = pop
    st.meta.setdefault("synapse", dict(getattr(g.nodes.get(st.nodes.get("synapse")), "metadata", None) or {}))
    st.meta["neuron"] = dict(g.nodes[pop].metadata or {})
    w, b, lin = recurrent(g, pop)
    if w is not None:
        st.weight_rec, st.bias_rec = w, b
        if len(lin) == 1:
            st.nodes["recurrent"] = lin[0]
            st.meta["recurrent"] = dict(g.nodes[lin[0]].metadata or {})


def _chain(g: FlatGraph) -> List[Stage]:
    stages: List[Stage] = []
    prev = g.start
    pops = g.populations
    for pop in pops:
        lin, srcs = subdag(g, g.ff_preds(pop))
        if srcs != {prev}:
            other = sorted(srcs - {prev}) or sorted(srcs)
            raise _NotChain(f"population '{pop}' receives input from {', '.join(repr(s) for s in sorted(srcs))}, "
                            f"not only from '{prev}' (fan-in from '{other[0]}' / a skip connection)")
        delays = [n for n in lin if g.ops[n].kind == "delay"]
        if delays:
            raise _NotChain(f"Delay node '{delays[0]}': the chip mapping does not place Delay nodes")
        stages += _stage_for(g, pop, prev)
        _attach(g, stages[-1], pop)
        prev = pop
    if g.output != pops[-1]:
        raise _NotChain(f"the Output is fed by '{g.output}', not by the last population '{pops[-1]}'")
    return stages


def to_chain(g: FlatGraph) -> Tuple[List[Stage], Optional[str]]:
    """(stages, None) for a graph with a chain form, else ([], why not). Recurrence errors propagate."""
    for pop in g.populations:
        recurrent(g, pop)  # refuse unsupported recurrence for every graph, chain or not
    try:
        return _chain(g), None
    except _NotChain as e:
        return [], str(e)
