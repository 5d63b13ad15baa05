"""``snnhw verify RUN_DIR``: re-run a run directory's verification (snnhw core vs Lava). Both backends
need Lava: without it the command stops at once with one line naming ``snnhw[lava]`` (exit 2)."""
from __future__ import annotations

import json
import os

import numpy as np

from snnhw.errors import FileFormatError, InputError, MissingFileError

HELP = "re-run the verification of a run directory: snnhw's fixed-point core vs Lava (or lava-dl netx)"
#: What a run directory written by ``snnhw train`` holds for verification.
RUN_FILES = ("spec.json", "verify/inputs.npy", "verify/labels.npy", "verify/torch_output_spikes.npy")


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="a run directory written by 'snnhw train'")
    p.add_argument("--backend", default="lava", choices=["lava", "netx"],
                   help="lava: snnhw's Lava network of spec.json; netx: lava-dl's netx loader on model.net")
    p.add_argument("--samples", type=int, default=None, help="verify only the first N samples")


def _load_npy(d: str, name: str) -> np.ndarray:
    path = os.path.join(d, name)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # what np.load raises on a damaged array
        raise FileFormatError(f"{path}: not a readable .npy array ({str(e).strip() or type(e).__name__})") from None


def _load_spec(d: str):
    from snnhw.spec import NetworkSpec

    path = os.path.join(d, "spec.json")
    with open(path) as f:
        try:
            return NetworkSpec.from_json(f.read())
        except json.JSONDecodeError as e:
            raise FileFormatError(f"{path}: not valid JSON ({e})") from None


def require_lava_backend(backend: str) -> None:
    """One-line :class:`~snnhw.errors.MissingDependencyError` when Lava is not installed."""
    from snnhw.backends import lava_runtime

    what = "snnhw's Lava network" if backend == "lava" else "lava-dl's netx loader on Lava"
    lava_runtime.require_lava(f"snnhw verify --backend {backend} runs {what}, and lava-nc is not installed "
                              f"({lava_runtime.INSTALL_HINT})")


def run(args) -> int:
    from snnhw.train.verify import verify

    require_lava_backend(args.backend)
    d = args.run_dir
    for f in RUN_FILES:
        if not os.path.exists(os.path.join(d, f)):
            raise MissingFileError(f"{d} is not a run directory: {f} is missing")
    if args.samples is not None and args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    spec = _load_spec(d)
    if not spec.quantized:
        raise InputError(f"{d}: a float-target run has no integer network to verify on Lava")
    inputs, labels, stored = (_load_npy(d, f) for f in RUN_FILES[1:])
    if args.samples is not None:
        inputs, labels, stored = inputs[:args.samples], labels[:args.samples], stored[:args.samples]
    netx = os.path.join(d, "model.net")
    if args.backend == "netx" and not os.path.exists(netx):
        raise MissingFileError(f"{d}: --backend netx needs model.net, which this run does not have")
    v = verify(spec, inputs, labels, backend=args.backend, netx_path=netx)
    same_torch = bool(np.array_equal(v["torch_output"], stored))
    stored_name = "torch_output_spikes.npy"
    if v["output_voltage"] is not None:  # a voltage readout: the stored output v too
        stored_v = _load_npy(d, "verify/torch_output_voltage.npy")[:len(inputs)]
        same_torch = same_torch and bool(np.array_equal(v["torch_voltage"], stored_v))
        stored_name += " and torch_output_voltage.npy"
        print(f"{v['samples']} samples: torch vs {v['backend']}, voltage readout: output-voltage agreement "
              f"{v['output_voltage']:.6f} (identical v traces {v['identical_samples']}/{v['samples']}), "
              f"prediction agreement {v['predictions']:.4f}")
    else:
        print(f"{v['samples']} samples: torch vs {v['backend']}: output-spike agreement {v['output_spikes']:.6f}, "
              f"prediction agreement {v['predictions']:.4f}, identical samples {v['identical_samples']}/{v['samples']}")
    print(f"accuracy: torch {100 * v['torch_accuracy']:.2f}%  {v['backend']} {100 * v['lava_accuracy']:.2f}%  "
          f"(core output equals stored {stored_name}: {'yes' if same_torch else 'NO'})")
    ok = v["output_spikes"] == 1.0 and v["output_voltage"] in (None, 1.0) and same_torch
    return 0 if ok else 1
