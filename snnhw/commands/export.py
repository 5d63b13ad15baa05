"""``snnhw export RUN_DIR_OR_CHECKPOINT --format nir|netx [--out FILE] [--dt S] [--lossy]``.

Reads a network from a run directory (``checkpoint.pt`` with the structure of the directory's
``spec.json``, else ``spec.json``, else ``model.net``) or from a file (``.json`` NetworkSpec, ``.pt``
checkpoint, ``.net`` netx, ``.nir`` written by snnhw) and writes it as NIR
(:func:`snnhw.io.nir.export_nir`: forward Euler, snnTorch convention, exact Loihi integers in metadata;
read back with nir's type check before success is reported) or as lava-dl netx
(:func:`snnhw.io.netx.write_netx`; dense and recurrent-dense layers only).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

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


def _spec_from_checkpoint(path: Path):
    from snnhw.spec import NetworkSpec

    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"cannot read checkpoint {path}: {type(e).__name__}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not an snnhw checkpoint")
    spec = state.get("spec")
    if spec is None and "model" in state and "constants" in state and (path.parent / "spec.json").is_file():
        # a training checkpoint holds values, not the architecture: take the structure from the run
        # directory's spec.json and every value (weights, exponents, decays, thresholds) from the checkpoint
        from snnhw.core.layers import SpikingNet
        from snnhw.train.checkpoint import load_model_constants

        structure = NetworkSpec.from_json((path.parent / "spec.json").read_text())
        net = SpikingNet.from_spec(structure)
        try:
            net.load_state_dict(state["model"])
            load_model_constants(net, state["constants"])
        except (RuntimeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} does not fit {path.parent / 'spec.json'}: {str(e).splitlines()[0]}") from None
        return net.to_spec()
    if spec is None:
        raise ValueError(f"{path} holds no network structure and has no spec.json beside it")
    if isinstance(spec, str):
        return NetworkSpec.from_json(spec)
    if isinstance(spec, dict):
        return NetworkSpec.from_dict(spec)
    if isinstance(spec, NetworkSpec):
        return spec
    raise ValueError(f"{path}: unrecognised 'spec' entry ({type(spec).__name__})")


def load_spec(source) -> "tuple":
    """(NetworkSpec, directory for default outputs) from a run dir or a file; one-line errors."""
    import json

    from snnhw.spec import NetworkSpec

    p = Path(source)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if p.is_dir():
        for name in ("checkpoint.pt", "spec.json", "model.net"):
            if (p / name).is_file():
                try:
                    return load_spec(p / name)[0], p
                except ValueError:
                    if name == "model.net":
                        raise
                    continue
        raise ValueError(f"{p}: no spec.json, checkpoint.pt with a spec, or model.net in this directory")
    suf = p.suffix.lower()
    if suf == ".json":
        try:
            return NetworkSpec.from_json(p.read_text()).validate(), p.parent
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ValueError(f"{p}: not a NetworkSpec JSON file ({type(e).__name__})") from None
    if suf in (".pt", ".pth", ".ckpt"):
        return _spec_from_checkpoint(p).validate(), p.parent
    if suf in (".net", ".h5", ".hdf5"):
        from snnhw.io.netx import read_netx

        return read_netx(p), p.parent
    if suf == ".nir":
        from snnhw.io.nir import read_nir_spec

        return read_nir_spec(p), p.parent
    raise ValueError(f"{p}: unknown file type '{suf}' (expected a run directory, .json, .pt, .net or .nir)")


def run(args) -> int:

    try:
        spec, where = load_spec(args.source)
        out = Path(args.out) if args.out else where / ("model.nir" if args.format == "nir" else "model.net")
        if args.format == "nir":
            from snnhw.io.nir import export_nir

            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                notes = export_nir(spec, out, dt=args.dt, lossy=args.lossy)
            for n in notes:
                print(f"snnhw: warning: lossy: {n}", file=sys.stderr)
            print(f"wrote {out} (NIR, dt = {args.dt:g} s, {len(spec.neuron_layers())} neuron layers; "
                  f"read back with nir type check: ok)")
        else:
            from snnhw.io.netx import read_netx, write_netx

            write_netx(spec, out)
            read_netx(out)
            print(f"wrote {out} (lava-dl netx, {len(spec.neuron_layers())} layers; read back: ok)")
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    except Exception as e:  # never a traceback for a bad input file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"export failed: {type(e).__name__}: {msg}") from None
    return 0
