"""Open a NIR file: path and HDF5 checks, a check of the stored node entries, then ``nir.read``.

nir builds its node objects straight from the HDF5 entries, so a file with a missing or malformed
entry makes nir fail deep inside a constructor (a Conv2d whose ``input_shape`` holds (C, H, W)
instead of (H, W) gives ``IndexError: index 2 is out of bounds``). :func:`read_graph` therefore
checks the stored entries of the node types snnhw maps first and names the node and the entry at
fault; what nir still rejects after that is reported as "cannot read NIR file" with nir's message.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnhw.errors import MissingFileError
from snnhw.errors import one_line
from snnhw.io.nir.schema import NIRFormatError

#: What ``nir.read`` raises on a file it cannot turn into nodes: h5py's OSError/KeyError, a node
#: constructor's TypeError (missing/unexpected entry), ValueError/IndexError (bad values, nir's type check).
NIR_READ_ERRORS = (OSError, KeyError, TypeError, ValueError, IndexError, NotImplementedError, AssertionError)
#: What h5py raises while reading a damaged file's groups and datasets (ValueError: e.g. a float
#: datatype whose stored precision fields are corrupt).
H5_ERRORS = (OSError, KeyError, RuntimeError, TypeError, ValueError)

#: Entries nir needs to build each node type snnhw maps (``shape``: Input/Output's stored type).
REQUIRED = {
    "Input": ("shape",), "Output": ("shape",), "Affine": ("weight", "bias"), "Linear": ("weight",),
    "Conv2d": ("input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"),
    "SumPool2d": ("kernel_size", "stride", "padding"), "Flatten": (),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"), "LIF": ("tau", "r", "v_leak", "v_threshold"),
    "IF": ("r", "v_threshold"), "NIRGraph": ("nodes", "edges"), "LI": ("tau", "r", "v_leak"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak"), "Threshold": ("threshold",), "Scale": ("scale",),
    "Delay": ("delay",), "AvgPool2d": ("kernel_size", "stride", "padding"),
    "Conv1d": ("weight", "stride", "padding", "dilation", "groups", "bias"),
}
#: Entries a known exporter bug leaves out and ``repair`` fills in (from the graph) instead of refusing.
REPAIRABLE = {"Conv2d": ("input_shape",)}
WEIGHT_NDIM = {"Affine": 2, "Linear": 2, "Conv2d": 4}


def _check_path(path) -> Path:
    import h5py

    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file")
    if p.is_dir():
        raise NIRFormatError(f"{p} is a directory, not a NIR file")
    try:
        ok = h5py.is_hdf5(str(p))
    except OSError:
        ok = False
    if not ok:
        raise NIRFormatError(f"{p} is not a NIR file (not HDF5)")
    return p


def _entries(group) -> Dict[str, Any]:
    """An HDF5 group as nested dicts of dataset values (what nir reads)."""
    import h5py

    out: Dict[str, Any] = {}
    for key, item in group.items():
        key = key.decode("utf8") if isinstance(key, bytes) else key  # UnicodeDecodeError: a ValueError
        out[key] = _entries(item) if isinstance(item, h5py.Group) else item[()]
    return out


def _raw_tree(p: Path) -> Optional[Dict[str, Any]]:
    """The file's ``node`` group as nested dicts (None if there is none)."""
    import h5py

    try:
        with h5py.File(p, "r") as f:
            return _entries(f["node"]) if isinstance(f.get("node"), h5py.Group) else None
    except H5_ERRORS as e:
        raise NIRFormatError(f"cannot read NIR file {p}: {type(e).__name__}: {one_line(e)}") from None


def _type_name(d: Dict[str, Any], where: str) -> str:
    t = d.get("type")
    if isinstance(t, np.ndarray) and t.ndim == 0:
        t = t.item()
    if isinstance(t, bytes):
        try:
            t = t.decode("utf8")
        except UnicodeDecodeError:
            raise NIRFormatError(f"{where}: its 'type' entry is not UTF-8 text") from None
    if t is None:
        raise NIRFormatError(f"{where} has no 'type' entry")
    if not isinstance(t, str):
        raise NIRFormatError(f"{where}: its 'type' entry is not a node type name ({t!r})")
    return t


def _known_to_nir(t: str) -> bool:
    import nir

    cls = getattr(nir, t, None)
    return isinstance(cls, type) and issubclass(cls, nir.NIRNode) and cls is not nir.NIRNode


def _check_conv2d(name: str, d: Dict[str, Any]) -> None:
    """nir infers a Conv2d's types from ``input_shape`` = the input map's (H, W)."""
    shape = np.asarray(d["input_shape"])
    ok = shape.dtype.kind in "iuf" and shape.size == 2 and np.all(np.isfinite(shape)) and np.all(shape >= 1) \
        and np.all(shape == np.round(shape))
    if not ok:
        raise NIRFormatError(f"node '{name}': Conv2d input_shape {shape.tolist()!r} must be the (H, W) size of "
                             f"the input map, 2 positive integers" + (" (not (C, H, W))" if shape.size == 3 else ""))
    pad = d["padding"]
    pad = pad.decode("utf8", "replace") if isinstance(pad, bytes) else pad
    if isinstance(pad, str) and pad not in ("same", "valid"):
        raise NIRFormatError(f"node '{name}': Conv2d padding '{pad}' must be 'same', 'valid' or integers")


def _check_node(name: str, t: str, d: Dict[str, Any], repair: bool, missing: List[str]) -> None:
    for key in REQUIRED.get(t, ()):
        if key not in d and repair and key in REPAIRABLE.get(t, ()):
            missing.append(name)
            continue
        if key not in d:
            what = " (the (H, W) size of the input map, which nir needs)" if key == "input_shape" else ""
            fix = "; --repair sets it from the incoming map" if key in REPAIRABLE.get(t, ()) else ""
            raise NIRFormatError(f"node '{name}': {t} has no '{key}' entry{what}{fix}")
    if t in WEIGHT_NDIM and np.ndim(d["weight"]) != WEIGHT_NDIM[t]:
        raise NIRFormatError(f"node '{name}': {t} weight must be {WEIGHT_NDIM[t]}-D, got shape "
                             f"{np.shape(d['weight'])}")
    if t == "Conv2d" and "input_shape" in d:
        _check_conv2d(name, d)


def _check_graph(d: Dict[str, Any], prefix: str, repair: bool, missing: List[str]) -> None:
    where = f"subgraph '{prefix[:-1]}'" if prefix else "the top-level graph"
    for key in REQUIRED["NIRGraph"]:
        if key not in d:
            raise NIRFormatError(f"{where} has no '{key}' entry")
    if not isinstance(d["nodes"], dict):
        raise NIRFormatError(f"{where}: its 'nodes' entry is not a group of nodes")
    for name, nd in d["nodes"].items():
        full = prefix + name
        if not isinstance(nd, dict):
            raise NIRFormatError(f"node '{full}' is not an HDF5 group")
        t = _type_name(nd, f"node '{full}'")
        if not _known_to_nir(t):
            raise NIRFormatError(f"node '{full}': unknown NIR node type '{t}'")
        if t == "NIRGraph":
            _check_graph(nd, full + ".", repair, missing)
        else:
            _check_node(full, t, nd, repair, missing)


def check_entries(p: Path, repair: bool = False) -> List[str]:
    """Check the stored entries of ``p``'s nodes (module docstring); one-line :class:`NIRFormatError`.
    Returns the Conv2d nodes without ``input_shape`` (only with ``repair``; otherwise they are refused)."""
    raw = _raw_tree(p)
    if raw is None:
        raise NIRFormatError(f"{p} has no 'node' group: not a NIR file")
    t = _type_name(raw, f"{p}: the top-level node")
    if t != "NIRGraph":
        raise NIRFormatError(f"{p}: the top-level node is a {t}, not a NIRGraph")
    missing: List[str] = []
    _check_graph(raw, "", repair, missing)
    return missing


def _placeholder_input_shapes(q: Path, names: List[str]) -> None:
    import h5py

    with h5py.File(q, "r+") as f:
        for name in names:
            f["node/" + "/".join(f"nodes/{part}" for part in name.split("."))]["input_shape"] = np.array([1, 1])


def _node_at(graph, name: str):
    if name in graph.nodes:
        return graph.nodes[name]
    node = graph
    for part in name.split("."):
        node = node.nodes[part]
    return node


def _nir_read(p: Path, type_check: bool):
    """``nir.read``; with ``type_check=False`` also for nested subgraphs, which nir 1.0.8 builds with its
    type check on whatever the argument (so a subgraph with a wrong Input shape could not be read at all;
    snnhw's own checks name the node instead)."""
    import nir

    init = nir.NIRGraph.__init__
    defaults = init.__defaults__  # (metadata, type_check) in nir 1.0.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if type_check or not defaults or defaults[-1] is not True:
            return nir.read(str(p), type_check=type_check)
        init.__defaults__ = defaults[:-1] + (False,)
        try:
            return nir.read(str(p), type_check=False)
        finally:
            init.__defaults__ = defaults


def read_graph(path, repair: bool = False) -> Tuple[Any, Optional[str]]:
    """``nir.read(path)`` with one-line errors for missing, non-HDF5, truncated or invalid files.

    Returns (graph, type_check_error): nir's type check is strict about files older tools wrote
    (e.g. Output shape [1, 1, 1] for [1]), so a file that fails it is read without it, its message
    returned, and snnhw's own checks (shapes, types, structure) decide. This is also how scalar-shaped
    neuron parameters (Sinabs, Rockpool) are read: nir's type check refuses shape [] against the
    population's [N]; snnhw expands them. ``repair``: entries in :data:`REPAIRABLE` may be absent.
    """
    p = _check_path(path)
    missing = check_entries(p, repair)
    if missing:  # nir cannot build a Conv2d without input_shape: read a copy with a placeholder, then unset it
        with tempfile.TemporaryDirectory(prefix="snnhw-repair-") as tmp:
            q = Path(tmp) / p.name
            shutil.copyfile(p, q)
            _placeholder_input_shapes(q, missing)
            graph, err = read_graph(q)
        for name in missing:
            _node_at(graph, name).input_shape = None
        return graph, err
    try:
        return _nir_read(p, True), None
    except NIR_READ_ERRORS as e:
        type_check_error = f"{type(e).__name__}: {one_line(e)}"
    try:
        return _nir_read(p, False), type_check_error
    except NIR_READ_ERRORS:
        raise NIRFormatError(f"cannot read NIR file {p}: {type_check_error}") from None
