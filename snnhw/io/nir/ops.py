"""The linear NIR nodes between neuron populations as checked, shaped operators.

Every node of type Affine, Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Scale, Flatten or Delay
becomes a :class:`LinOp` once its input shape is known (:func:`make_op`). ``apply`` maps a value
``[B, T, *in_shape]`` (float64 torch) to ``[B, T, *out_shape]`` without the node's bias; ``bias``
(out-shaped, or None) is the constant the node adds. Parameters given as scalars or broadcastable
arrays are expanded to the shape they act on.

* Flatten flattens to one dimension (C-order) whatever ``start_dim`` says: exporters disagree on
  whether it counts the batch axis (Sinabs writes torch's ``start_dim=1``, snnTorch subtracts 1),
  and only a flat vector can feed the Affine that follows.
* Delay shifts its input by ``round(delay/dt)`` steps per element (``delay`` in the graph's time
  unit); a delay that is not a whole number of steps is refused. A constant (bias) passing through
  a Delay is treated as present from step 0.
* AvgPool2d divides the window sum by ``kH*kW`` (torch's ``count_include_pad=True``; padding 0 only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from snnhw.io.nir.model import synapse_stage
from snnhw.io.nir.schema import NIRFormatError, int_array, pair, param

DELAY_TOL = 1e-6  # a delay/dt this close to an integer counts as whole steps


@dataclass
class LinOp:
    """One linear node with its shapes; ``weight``/``stride``/``padding``/``kernel`` as the kind needs
    (conv1d: a 4-D weight [O, C, 1, k] acting on (C, 1, L)); ``scale``: in-shaped factors; ``steps``:
    in-shaped integer delays."""

    name: str
    kind: str  # dense | conv | conv1d | sumpool | avgpool | scale | flatten | delay
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    node: Any = None
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    kernel: Tuple[int, int] = (1, 1)
    scale: Optional[np.ndarray] = None
    steps: Optional[np.ndarray] = None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, T, *in_shape] -> [B, T, *out_shape] (float64), without the bias."""
        B, T = x.shape[:2]
        if self.kind == "delay":
            return _delay(x, self.steps)
        if self.kind == "flatten":
            return x.reshape(B, T, *self.out_shape)
        if self.kind == "scale":
            return x * torch.as_tensor(self.scale, dtype=x.dtype)
        y = x.reshape(B * T, *self.in_shape)
        if self.kind == "dense":
            y = y @ torch.as_tensor(self.weight, dtype=x.dtype).T
        elif self.kind in ("conv", "conv1d"):
            if self.kind == "conv1d":
                y = y.unsqueeze(2)
            y = F.conv2d(y, torch.as_tensor(self.weight, dtype=x.dtype), stride=self.stride, padding=self.padding)
        else:  # sumpool / avgpool
            y = F.avg_pool2d(y, self.kernel, self.stride, divisor_override=1)
            if self.kind == "avgpool":
                y = y / float(self.kernel[0] * self.kernel[1])
        return y.reshape(B, T, *self.out_shape)


def _delay(x: torch.Tensor, steps: np.ndarray) -> torch.Tensor:
    B, T = x.shape[:2]
    out = torch.zeros_like(x)
    flat_x, flat_o = x.reshape(B, T, -1), out.reshape(B, T, -1)
    st = np.asarray(steps).ravel()
    for d in np.unique(st):
        idx = torch.as_tensor(np.nonzero(st == d)[0])
        d = int(d)
        if d < T:
            flat_o[:, d:, idx] = flat_x[:, :T - d, idx]
    return out


def _expand(arr: np.ndarray, shape: Tuple[int, ...], name: str, what: str) -> np.ndarray:
    """A parameter broadcast to ``shape`` (scalars and broadcastable arrays; [C] acts per channel)."""
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 1:
        return np.full(shape, float(a.ravel()[0]))
    if a.ndim == 1 and len(shape) > 1 and a.size == shape[0]:
        a = a.reshape((-1,) + (1,) * (len(shape) - 1))
    try:
        return np.broadcast_to(a, shape).copy()
    except ValueError:
        raise NIRFormatError(f"node '{name}': {what} of shape {a.shape} does not fit the input {shape} "
                             f"(shape mismatch)") from None


def _from_stage(name: str, node, shape: Tuple[int, ...], kind: str) -> LinOp:
    st = synapse_stage(name, node, shape)
    bias = None if st.bias is None else np.asarray(st.bias, dtype=np.float64).reshape(st.out_shape)
    return LinOp(name, kind, tuple(shape), tuple(st.out_shape), node, weight=st.weight, bias=bias, stride=st.stride,
                 padding=st.padding, kernel=st.kernel)


def _conv1d(name: str, node, shape: Tuple[int, ...]) -> LinOp:
    w = param(node, "weight", name)
    if w.ndim != 3:
        raise NIRFormatError(f"node '{name}': Conv1d weight must be [out, in, k], got shape {w.shape}")
    if len(shape) != 2:
        raise NIRFormatError(f"node '{name}': Conv1d needs a (C, L) input, receives {shape}")
    if w.shape[1] != shape[0]:
        raise NIRFormatError(f"node '{name}' expects {w.shape[1]} input channels, receives {shape[0]} "
                             f"(shape mismatch)")
    for what, ok in (("groups", (0, 1)), ("dilation", (1,))):
        v = int_array(getattr(node, what, 1), name, what)
        if v.size != 1 or int(v[0]) not in ok:
            raise NIRFormatError(f"node '{name}': Conv1d with {what} = {v.tolist()} is not supported")
    stride = int(int_array(node.stride, name, "stride")[0])
    pad = node.padding
    pad = pad.decode() if isinstance(pad, bytes) else pad
    k = int(w.shape[2])
    if isinstance(pad, str):
        if pad not in ("valid", "same") or (pad == "same" and (stride != 1 or k % 2 == 0)):
            raise NIRFormatError(f"node '{name}': padding '{pad}' is not supported here")
        p = 0 if pad == "valid" else k // 2
    else:
        p = int(int_array(pad, name, "padding")[0])
    lo = (shape[1] + 2 * p - k) // stride + 1
    if stride < 1 or p < 0 or lo <= 0:
        raise NIRFormatError(f"node '{name}': kernel {k} with stride {stride}, padding {p} does not fit length "
                             f"{shape[1]}")
    b = getattr(node, "bias", None)
    bias = None
    if b is not None:
        bb = param(node, "bias", name).ravel()
        if np.any(bb != 0):
            bias = _expand(bb, (w.shape[0], lo), name, "bias")
    return LinOp(name, "conv1d", tuple(shape), (int(w.shape[0]), lo), node, weight=w[:, :, None, :], bias=bias,
                 stride=(1, stride), padding=(0, p), kernel=(1, k))


def _pool(name: str, node, shape: Tuple[int, ...], kind: str) -> LinOp:
    if kind == "sumpool":
        return _from_stage(name, node, shape, "sumpool")
    if len(shape) != 3:
        raise NIRFormatError(f"node '{name}': AvgPool2d needs a (C, H, W) input, receives {shape}")
    k, s = pair(node.kernel_size, name, "kernel_size"), pair(node.stride, name, "stride")
    if pair(node.padding, name, "padding") != (0, 0):
        raise NIRFormatError(f"node '{name}': padded average pooling is not supported")
    oh, ow = (shape[1] - k[0]) // s[0] + 1, (shape[2] - k[1]) // s[1] + 1
    if min(k) < 1 or min(s) < 1 or oh <= 0 or ow <= 0:
        raise NIRFormatError(f"node '{name}': kernel {k}, stride {s} do not fit the map {shape[1:]}")
    return LinOp(name, "avgpool", tuple(shape), (shape[0], oh, ow), node, stride=s, kernel=k)


def make_op(name: str, node, shape: Tuple[int, ...], dt: float) -> LinOp:
    """The :class:`LinOp` of linear node ``name`` receiving ``shape`` (one-line errors naming the node)."""
    t = type(node).__name__
    shape = tuple(int(s) for s in shape)
    if t in ("Affine", "Linear"):
        return _from_stage(name, node, shape, "dense")
    if t == "Conv2d":
        return _from_stage(name, node, shape, "conv")
    if t == "Conv1d":
        return _conv1d(name, node, shape)
    if t in ("SumPool2d", "AvgPool2d"):
        return _pool(name, node, shape, "sumpool" if t == "SumPool2d" else "avgpool")
    if t == "Flatten":
        return LinOp(name, "flatten", shape, (int(np.prod(shape)),), node)
    if t == "Scale":
        return LinOp(name, "scale", shape, shape, node, scale=_expand(param(node, "scale", name), shape, name, "scale"))
    if t == "Delay":
        d = _expand(param(node, "delay", name), shape, name, "delay") / dt
        if np.any(d < 0) or np.any(np.abs(d - np.round(d)) > DELAY_TOL * np.maximum(1, np.abs(d))):
            raise NIRFormatError(f"node '{name}': delay must be a non-negative whole number of steps of dt = {dt:g} "
                                 f"(got {np.unique(d)[:4].tolist()} steps)")
        return LinOp(name, "delay", shape, shape, node, steps=np.round(d).astype(np.int64))
    raise NIRFormatError(f"node '{name}': {t} is not a linear node")
