"""``snnhw export RUN_DIR_OR_CHECKPOINT --format nir|netx [--out FILE] [--dt S] [--lossy]``.

Reads a network from a run directory (``checkpoint.pt`` with the structure of the directory's
``spec.json``, else ``spec.json``, else ``model.net``) or from a file (``.json`` NetworkSpec, ``.pt``
checkpoint, ``.net`` netx, ``.nir`` written by snnhw) and writes it as NIR
(:func:`snnhw.io.nir.export_nir`: forward Euler, snnTorch convention, exact Loihi integers in metadata;
read back with nir's type check before success is reported) or as lava-dl netx
(:func:`snnhw.io.netx.write_netx`; dense and recurrent-dense layers only).
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from snnhw.errors import FileFormatError, InputError, MissingFileError, one_line

HELP = "export a trained network (run dir, checkpoint, spec JSON) as NIR or lava-dl netx"


def add_arguments(parser) -> None:
    parser.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT",
                        help="run directory, checkpoint.pt, spec .json, netx .net or snnhw .nir file")
    parser.add_argument("--format", choices=("nir", "netx"), default="nir", help="output format (default nir)")
    parser.add_argument("--out", metavar="FILE", help="output file (default: model.nir / model.net next to the "
                                                      "source, in the run directory if one was given)")
    parser.add_argument("--dt", type=float, default=1e-4,
                        help="time step in seconds baked into NIR time constants (default 1e-4, snnTorch's)")
    parser.add_argument("--lossy", action="store_true",
                        help="write what NIR cannot express (subtractive reset, ...) approximately, with a "
                             "warning and a note in the graph metadata, instead of refusing")


def _read_spec_json(p: Path):
    from snnhw.spec import NetworkSpec

    try:
        return NetworkSpec.from_json(p.read_text())
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:  # not a NetworkSpec document
        raise FileFormatError(f"{p}: not a NetworkSpec JSON file ({type(e).__name__}: {one_line(e)})") from None


def _load_weights(net, state: dict, path: Path) -> None:
    """A training checkpoint's values (its ``state_dict``: parameters and per-layer constants) into ``net``."""
    try:
        net.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as e:  # torch: missing/unexpected keys, shape mismatch
        raise FileFormatError(f"{path} does not fit {path.parent / 'spec.json'}: {one_line(e)}") from None


def _spec_from_checkpoint(path: Path):
    """A training checkpoint holds values, not the architecture: the structure comes from the run
    directory's ``spec.json`` beside it, every value (weights, exponents, decays, thresholds) from the
    checkpoint."""
    from snnhw.core.layers import SpikingNet
    from snnhw.train.checkpoint import load_checkpoint

    structure = path.parent / "spec.json"
    if not structure.is_file():
        raise MissingFileError(f"{path}: a checkpoint needs its run directory's spec.json beside it "
                               f"(it holds the values, not the network structure)")
    state = load_checkpoint(str(path))
    net = SpikingNet.from_spec(_read_spec_json(structure))
    _load_weights(net, state, path)
    return net.to_spec()


def _run_dir_source(p: Path) -> Path:
    """The file a run directory's network is read from: checkpoint.pt (with spec.json), else spec.json,
    else model.net."""
    if (p / "spec.json").is_file():
        return p / "checkpoint.pt" if (p / "checkpoint.pt").is_file() else p / "spec.json"
    if (p / "model.net").is_file():
        return p / "model.net"
    raise MissingFileError(f"{p}: no spec.json (with or without checkpoint.pt) or model.net in this directory")


def load_spec(source) -> "tuple":
    """(NetworkSpec, directory for default outputs) from a run dir or a file; one-line errors."""
    p = Path(source)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file or directory")
    if p.is_dir():
        return load_spec(_run_dir_source(p))[0], p
    suf = p.suffix.lower()
    if suf == ".json":
        return _read_spec_json(p).validate(), p.parent
    if suf in (".pt", ".pth", ".ckpt"):
        return _spec_from_checkpoint(p).validate(), p.parent
    if suf in (".net", ".h5", ".hdf5"):
        from snnhw.io.netx import read_netx

        return read_netx(p), p.parent
    if suf == ".nir":
        from snnhw.io.nir import read_nir_spec

        return read_nir_spec(p), p.parent
    raise InputError(f"{p}: unknown file type '{suf}' (expected a run directory, .json, .pt, .net or .nir)")


def _write(spec, out: Path, args) -> str:
    """Write ``spec`` to ``out`` in ``args.format``; returns the success line."""
    if args.format == "nir":
        from snnhw.io.nir import export_nir

        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            notes = export_nir(spec, out, dt=args.dt, lossy=args.lossy)
        for n in notes:
            print(f"snnhw: warning: lossy: {n}", file=sys.stderr)
        return (f"wrote {out} (NIR, dt = {args.dt:g} s, {len(spec.neuron_layers())} neuron layers; "
                f"read back with nir type check: ok)")
    from snnhw.io.netx import read_netx, write_netx

    write_netx(spec, out)
    read_netx(out)
    return f"wrote {out} (lava-dl netx, {len(spec.neuron_layers())} layers; read back: ok)"


def run(args) -> int:
    spec, where = load_spec(args.source)
    out = Path(args.out) if args.out else where / ("model.nir" if args.format == "nir" else "model.net")
    try:
        line = _write(spec, out, args)
    except OSError as e:  # the output path cannot be written (no permission, a directory, ...)
        raise InputError(f"cannot write {out}: {e.strerror or one_line(e)}") from None
    print(line)
    return 0
