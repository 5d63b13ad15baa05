"""A NIR graph reduced to snnhw's chain: :class:`NirModel` of :class:`Stage` s, and the synapse stages
built from Affine/Linear, Conv2d and SumPool2d nodes (float values in NIR units, checked shapes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnhw.io.nir.euler import NeuronDyn
from snnhw.io.nir.schema import NIRFormatError, int_array, pair, param


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
class FlatGraph:
    """The graph after inlining subgraphs: nodes, adjacency, recurrent (back) edges, topological
    order, inferred output shape per node, the linear operators and neuron coefficients, the node
    feeding the Output, and the repairs made."""

    nodes: Dict[str, Any]
    succ: Dict[str, List[str]]
    pred: Dict[str, List[str]]
    dt: float = 0.0
    back: set = field(default_factory=set)
    order: List[str] = field(default_factory=list)
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    ops: Dict[str, Any] = field(default_factory=dict)  # name -> snnhw.io.nir.ops.LinOp
    neurons: Dict[str, NeuronDyn] = field(default_factory=dict)
    start: str = ""
    output: str = ""
    repairs: List[str] = field(default_factory=list)

    def kind(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    def ff_preds(self, name: str) -> List[str]:
        return [p for p in self.pred[name] if (p, name) not in self.back]

    def rec_preds(self, name: str) -> List[str]:
        return [p for p in self.pred[name] if (p, name) in self.back]

    @property
    def populations(self) -> List[str]:
        """Neuron nodes in topological order."""
        return [n for n in self.order if n in self.neurons]


@dataclass
class NirModel:
    """A NIR graph reduced to populations (``graph``) and, where it is a chain, snnhw's stages.

    ``stages``: the chain the chip mapping runs (empty if ``chain_error`` says why it is not a chain);
    ``convention``: how the source's parameters were read (:mod:`snnhw.io.nir.convention`);
    ``output_voltage``: the Output is fed by a non-spiking readout (LI/CubaLI).
    """

    input_shape: Tuple[int, ...]
    stages: List[Stage]
    dt: float
    metadata: Dict[str, Any]
    dt_source: str = "default"
    type_check_error: Optional[str] = None  # nir.read's type check failure, if the file needed type_check=False
    graph: Optional[FlatGraph] = None
    chain_error: Optional[str] = None
    repairs: List[str] = field(default_factory=list)
    convention: Any = None
    convention_source: str = ""
    output_voltage: bool = False

    @property
    def neuron_stages(self) -> List[Stage]:
        return [s for s in self.stages if s.neuron is not None]

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        if self.graph is not None:
            return int(np.prod(self.graph.shapes[self.graph.output]))
        return self.stages[-1].n_out


def _dense_stage(name: str, node, shape: Tuple[int, ...], meta: Dict) -> Stage:
    w = param(node, "weight", name)
    if w.ndim != 2:
        raise NIRFormatError(f"node '{name}': weight must be 2-D [out, in], got shape {w.shape}")
    if len(shape) != 1:
        raise NIRFormatError(f"node '{name}' receives a {len(shape)}-D map {shape}: insert a Flatten")
    if w.shape[1] != shape[0]:
        raise NIRFormatError(f"node '{name}' expects {w.shape[1]} inputs, receives {shape[0]} (shape mismatch)")
    b = None
    if type(node).__name__ == "Affine":
        b = param(node, "bias", name).ravel()
        if b.size != w.shape[0]:
            raise NIRFormatError(f"node '{name}': bias has {b.size} values, weight has {w.shape[0]} rows "
                                 f"(shape mismatch)")
        b = b if np.any(b != 0) else None
    return Stage(name=name, kind="dense", in_shape=shape, out_shape=(int(w.shape[0]),), weight=w, bias=b,
                 nodes={"synapse": name}, meta=meta)


def _conv_padding(pad, name: str, stride: Tuple[int, int], kh: int, kw: int) -> Tuple[int, int]:
    if isinstance(pad, bytes):
        pad = pad.decode("utf8", "replace")
    if isinstance(pad, str):
        if pad == "valid":
            return 0, 0
        if pad == "same" and stride == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
            return kh // 2, kw // 2
        raise NIRFormatError(f"node '{name}': padding '{pad}' is not supported here")
    return pair(pad, name, "padding")


def _check_conv_node(name: str, node, w: np.ndarray, shape: Tuple[int, ...]) -> None:
    if w.ndim != 4:
        raise NIRFormatError(f"node '{name}': Conv2d weight must be [out, in, kH, kW], got shape {w.shape}")
    if len(shape) != 3:
        raise NIRFormatError(f"node '{name}': Conv2d needs a (C, H, W) input, receives {shape}")
    g = getattr(node, "groups", None)
    groups = int_array(1 if g is None else g, name, "groups")
    if groups.size != 1 or int(groups[0]) not in (0, 1):  # 0: nir's "unset", as 1
        raise NIRFormatError(f"node '{name}': grouped convolution (groups={node.groups}) is not supported")
    if pair(getattr(node, "dilation", 1), name, "dilation") != (1, 1):
        raise NIRFormatError(f"node '{name}': dilated convolution is not supported")
    if w.shape[1] != shape[0]:
        raise NIRFormatError(f"node '{name}' expects {w.shape[1]} input channels, receives {shape[0]} "
                             f"(shape mismatch)")
    ins = getattr(node, "input_shape", None)
    if ins is not None and tuple(int_array(ins, name, "input_shape")) != tuple(shape[1:]):
        raise NIRFormatError(f"node '{name}': input_shape {tuple(np.asarray(ins).tolist())} does not match "
                             f"the incoming map {shape[1:]} (shape mismatch)")


def _conv_stage(name: str, node, shape: Tuple[int, ...], meta: Dict) -> Stage:
    w = param(node, "weight", name)
    _check_conv_node(name, node, w, shape)
    stride = pair(node.stride, name, "stride")
    kh, kw = int(w.shape[2]), int(w.shape[3])
    pad = _conv_padding(node.padding, name, stride, kh, kw)
    if min(stride) < 1 or min(pad) < 0:
        raise NIRFormatError(f"node '{name}': stride must be >= 1 and padding >= 0")
    oh = (shape[1] + 2 * pad[0] - kh) // stride[0] + 1
    ow = (shape[2] + 2 * pad[1] - kw) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise NIRFormatError(f"node '{name}': kernel {kh}x{kw} does not fit the map {shape[1:]}")
    b = None
    if getattr(node, "bias", None) is not None:
        bb = param(node, "bias", name).ravel()
        if bb.size not in (1, w.shape[0]):
            raise NIRFormatError(f"node '{name}': bias has {bb.size} values for {w.shape[0]} channels")
        if np.any(bb != 0):
            b = np.repeat(np.broadcast_to(bb, (w.shape[0],)), oh * ow)
    return Stage(name=name, kind="conv", in_shape=shape, out_shape=(int(w.shape[0]), oh, ow), weight=w, bias=b,
                 stride=stride, padding=pad, kernel=(kh, kw), nodes={"synapse": name}, meta=meta)


def _pool_stage(name: str, node, shape: Tuple[int, ...], meta: Dict) -> Stage:
    if len(shape) != 3:
        raise NIRFormatError(f"node '{name}': SumPool2d needs a (C, H, W) input, receives {shape}")
    k = pair(node.kernel_size, name, "kernel_size")
    stride = pair(node.stride, name, "stride")
    if pair(node.padding, name, "padding") != (0, 0):
        raise NIRFormatError(f"node '{name}': padded sum pooling is not supported")
    if min(k) < 1 or min(stride) < 1:
        raise NIRFormatError(f"node '{name}': kernel and stride must be >= 1")
    oh, ow = (shape[1] - k[0]) // stride[0] + 1, (shape[2] - k[1]) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        raise NIRFormatError(f"node '{name}': kernel {k} does not fit the map {shape[1:]}")
    return Stage(name=name, kind="pool", in_shape=shape, out_shape=(shape[0], oh, ow), stride=stride, kernel=k,
                 nodes={"synapse": name}, meta=meta)


def synapse_stage(name: str, node, shape: Tuple[int, ...]) -> Stage:
    """The stage of synapse node ``name`` (Affine/Linear, Conv2d, SumPool2d) receiving ``shape``."""
    meta = {"synapse": dict(node.metadata or {})}
    tn = type(node).__name__
    if tn in ("Affine", "Linear"):
        return _dense_stage(name, node, shape, meta)
    if tn == "Conv2d":
        return _conv_stage(name, node, shape, meta)
    return _pool_stage(name, node, shape, meta)
