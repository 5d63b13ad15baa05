"""``snnhw verify RUN_DIR``: re-run a run directory's verification (snnhw core vs Lava)."""
from __future__ import annotations

import os

import numpy as np

HELP = "re-run the verification of a run directory: snnhw's fixed-point core vs Lava (or lava-dl netx)"


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="a run directory written by 'snnhw train'")
    p.add_argument("--backend", default="lava", choices=["lava", "netx"],
                   help="lava: snnhw's Lava network of spec.json; netx: lava-dl's netx loader on model.net")
    p.add_argument("--samples", type=int, default=None, help="verify only the first N samples")


def run(args) -> int:
    from snnhw.spec import NetworkSpec
    from snnhw.train.verify import verify

    d = args.run_dir
    need = ["spec.json", "verify/inputs.npy", "verify/labels.npy", "verify/torch_output_spikes.npy"]
    for f in need:
        if not os.path.exists(os.path.join(d, f)):
            raise ValueError(f"{d} is not a run directory: {f} is missing")
    with open(os.path.join(d, "spec.json")) as f:
        spec = NetworkSpec.from_json(f.read())
    if not spec.quantized:
        raise ValueError(f"{d}: a float-target run has no integer network to verify on Lava")
    inputs = np.load(os.path.join(d, "verify/inputs.npy"))
    labels = np.load(os.path.join(d, "verify/labels.npy"))
    stored = np.load(os.path.join(d, "verify/torch_output_spikes.npy"))
    if args.samples is not None:
        if args.samples < 1:
            raise ValueError("--samples must be >= 1")
        inputs, labels, stored = inputs[:args.samples], labels[:args.samples], stored[:args.samples]
    netx = os.path.join(d, "model.net")
    if args.backend == "netx" and not os.path.exists(netx):
        raise ValueError(f"{d}: --backend netx needs model.net, which this run does not have")
    v = verify(spec, inputs, labels, backend=args.backend, netx_path=netx)
    same_torch = bool(np.array_equal(v["torch_output"], stored))
    print(f"{v['samples']} samples: torch vs {v['backend']}: output-spike agreement {v['output_spikes']:.6f}, "
          f"prediction agreement {v['predictions']:.4f}, identical samples {v['identical_samples']}/{v['samples']}")
    print(f"accuracy: torch {100 * v['torch_accuracy']:.2f}%  {v['backend']} {100 * v['lava_accuracy']:.2f}%  "
          f"(core output equals stored torch_output_spikes.npy: {'yes' if same_torch else 'NO'})")
    ok = v["output_spikes"] == 1.0 and same_torch
    return 0 if ok else 1
