"""What snnhw's NIR writer and reader share: the error type, the constants, the node kinds snnhw maps,
the ``snnhw.*`` metadata keys and the checked readers of node values and metadata.

Metadata keys (exact Loihi integers on a quantized spec; floats on a float spec)
--------------------------------------------------------------------------------
graph: ``dt`` [s], ``snnhw.format`` (:data:`FORMAT_VERSION`), ``snnhw.discretization``
("forward-euler"), ``snnhw.time_unit`` ("s"), ``snnhw.quantized`` (0/1), ``snnhw.synapse_delay_steps``
(1), ``snnhw.input_shape``, ``snnhw.lossy`` (text, only if lossy).
synapse node (Affine/Linear/Conv2d/SumPool2d): ``snnhw.layer``, ``snnhw.kind``,
``snnhw.weight_mant`` (dense/conv mantissas; pool: scalar), ``snnhw.weight_exp``,
``snnhw.graded_input``, ``snnhw.synapse_delay_steps``, conv: ``snnhw.stride``, ``snnhw.padding``;
pool: ``snnhw.kernel``, ``snnhw.stride``.
neuron node (CubaLIF): ``snnhw.layer``, ``snnhw.i_decay``, ``snnhw.v_decay`` (netx units),
``snnhw.lava_du`` (``i_decay - 1``), ``snnhw.lava_dv`` (quantized only), ``snnhw.vth_mant``,
``snnhw.bias_mant`` (if any), ``snnhw.bias_exp``, ``snnhw.reset``.
recurrent node (Linear): ``snnhw.layer``, ``snnhw.kind`` ("recurrent"), ``snnhw.weight_mant``,
``snnhw.weight_exp`` (the layer's ``rec_exp``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from snnhw.errors import FileFormatError

FORMAT_VERSION = 1
DEFAULT_DT = 1e-4  # [s], snnTorch's
NO_LEAK_STEPS = 1e30  # "no decay" is written as tau = NO_LEAK_STEPS * dt
NO_LEAK_RATIO = 1e-20  # dt/tau below this reads back as decay 0
SYNAPSES = ("Affine", "Linear", "Conv2d", "SumPool2d")  # the synapse nodes snnhw writes
NEURONS = ("CubaLIF", "LIF", "IF", "LI", "CubaLI", "Threshold")  # populations (LI, CubaLI: non-spiking readouts)
READOUTS = ("LI", "CubaLI")  # output: the voltage trace
LINEAR = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Scale", "Flatten", "Delay")
SUPPORTED = ("Input", "Output") + LINEAR + NEURONS
P = "snnhw."  # prefix of snnhw's metadata keys

_MISSING = object()


class NIRFormatError(FileFormatError):
    """A NIR file or graph snnhw cannot read or map; the message is one line naming the node."""


# ------------------------------------------------------------------------------------------------
# Node values (as nir's node objects hold them)
# ------------------------------------------------------------------------------------------------
def param(node, name: str, where: str) -> np.ndarray:
    """Node parameter ``name`` as a finite float64 array."""
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


def int_array(v, where: str, what: str) -> np.ndarray:
    """``v`` as a flat array of integers (given as ints or integral floats), else a one-line error."""
    try:
        a = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise NIRFormatError(f"node '{where}': {what} must be integers, got {v!r}") from None
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise NIRFormatError(f"node '{where}': {what} must be integers, got {v!r}")
    return a.astype(np.int64)


def pair(v, where: str, what: str) -> Tuple[int, int]:
    """A stride/padding/kernel value: one integer (used for both axes) or two."""
    a = int_array(v, where, what)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2:
        raise NIRFormatError(f"node '{where}': {what} must be one or two integers, got {v!r}")
    return int(a[0]), int(a[1])


def first_shape(types, where: str) -> Optional[Tuple[int, ...]]:
    """The shape in a NIR ``input_type``/``output_type`` dict (whatever its key), or None."""
    if not isinstance(types, dict) or not types:
        return None
    v = next(iter(types.values()))
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise NIRFormatError(f"node '{where}': invalid shape {v!r}") from None
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or np.any(a < 0):
        raise NIRFormatError(f"node '{where}': invalid shape {v!r}")
    return tuple(int(x) for x in a)


# ------------------------------------------------------------------------------------------------
# snnhw metadata
# ------------------------------------------------------------------------------------------------
def meta_value(meta: Dict[str, Any], key: str, default=None):
    """``meta["snnhw." + key]`` as a Python scalar (0-d arrays, numpy scalars and bytes decoded)."""
    v = meta.get(P + key, default)
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, np.integer):
        v = int(v)
    elif isinstance(v, np.floating):
        v = float(v)
    elif isinstance(v, bytes):
        try:
            v = v.decode()
        except UnicodeDecodeError:
            raise NIRFormatError(f"metadata '{P}{key}' is not UTF-8 text") from None
    return v


def meta_number(meta: Dict[str, Any], key: str, where: str, cast=float, default=_MISSING):
    """A numeric ``snnhw.*`` metadata scalar converted with ``cast`` (int: must be integral)."""
    if P + key not in meta:
        if default is _MISSING:
            raise NIRFormatError(f"node '{where}': metadata '{P}{key}' is missing")
        return default
    v = meta_value(meta, key)
    try:
        x = float(np.asarray(v, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise NIRFormatError(f"node '{where}': metadata '{P}{key}' = {v!r} is not a number") from None
    if not np.isfinite(x) or (cast is int and x != round(x)):
        raise NIRFormatError(f"node '{where}': metadata '{P}{key}' = {v!r} is not a finite "
                             f"{'integer' if cast is int else 'number'}")
    return cast(x)


def meta_array(meta: Dict[str, Any], key: str, where: str, integer: bool) -> Optional[np.ndarray]:
    """A ``snnhw.*`` metadata array (int64 if ``integer``, else float64), None if absent."""
    v = meta.get(P + key)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRFormatError(f"node '{where}': metadata '{P}{key}' is not numeric") from None
    if not np.all(np.isfinite(a)) or (integer and np.any(a != np.round(a))):
        raise NIRFormatError(f"node '{where}': metadata '{P}{key}' must hold finite "
                             f"{'integers' if integer else 'numbers'}")
    return np.asarray(v).astype(np.int64) if integer else a
