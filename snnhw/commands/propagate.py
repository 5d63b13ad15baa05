"""``snnhw propagate``: variance and spike propagation through deep fully connected chains at init."""
from __future__ import annotations

import os
import sys

from snnhw.errors import InputError

HELP = "deep-chain propagation study of init methods (Micheli et al. Figs 2-6; float or Loihi 2 semantics)"


def _ints(text: str):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--width expects comma-separated integers, got '{text}'") from None


def add_arguments(p) -> None:
    from snnhw.init.propagate import SEMANTICS
    from snnhw.init.tensor import METHODS

    p.add_argument("--layers", type=int, default=100, help="number of layers (default 100)")
    p.add_argument("--width", type=str, default="1000",
                   help="neurons per layer; a comma list (e.g. 100,1000) runs each width (default 1000)")
    p.add_argument("--threshold", type=float, default=1.0,
                   help="threshold theta in float units (loihi2: vth_mant = round(64 theta) for float inits)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--beta", type=float, default=None, help="membrane decay factor per step (default 0.5)")
    g.add_argument("--voltage-decay", type=float, default=None, help="voltage decay, netx units 0..4096")
    p.add_argument("--current-decay", type=float, default=None,
                   help="current decay, netx units 0..4096 (default 4096: no synaptic filter)")
    p.add_argument("--steps", type=int, default=20, help="time steps T (default 20)")
    p.add_argument("--inits", type=str, default=",".join(METHODS),
                   help=f"comma list of inits ({', '.join(METHODS)}); 'micheli:finite-size', "
                        "'micheli:soft-reset', 'fdi:analytic' select variants (default: all)")
    p.add_argument("--semantics", choices=SEMANTICS, default="float-soft", help="neuron semantics (default float-soft)")
    p.add_argument("--repeats", type=int, default=20, help="independent weight draws (default 20)")
    p.add_argument("--batch", type=int, default=10, help="input samples per repeat (default 10)")
    p.add_argument("--target-rate", type=float, default=None,
                   help="spikes/neuron/step for the hardware inits (default: the input rate P(N(0,1)>theta))")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=str, required=True, help="output directory (propagation.json and PNG plots)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import torch

    from snnhw.init.propagate import PropagateConfig, propagate, write_json
    from snnhw.report.plots import propagation_plots

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cfg = PropagateConfig(layers=args.layers, widths=_ints(args.width), threshold=args.threshold, beta=args.beta,
                          current_decay=args.current_decay, voltage_decay=args.voltage_decay, steps=args.steps,
                          inits=[s.strip() for s in args.inits.split(",") if s.strip()], semantics=args.semantics,
                          repeats=args.repeats, batch=args.batch, seed=args.seed, target_rate=args.target_rate)
    cfg.resolve()  # one-line errors before any work
    data = propagate(cfg, progress=not args.no_progress and sys.stderr.isatty())
    path = os.path.join(args.out, "propagation.json")
    write_json(data, path)
    pngs = propagation_plots(data, args.out)
    L = data["config"]["layers"]
    print(f"{'init':<28}{'spikes L1':>11}{f'spikes L{L}':>12}{'ratio':>9}{f'Var ratio L{L}':>15}")
    for key, r in data["results"].items():
        s1, sl = r["spike_count"][0], r["spike_count"][-1]
        ratio = (sl / s1) if s1 else float("nan")
        vr = r["var_u_ratio"][-1]
        print(f"{key:<28}{s1:>11.4f}{sl:>12.4f}{ratio:>9.3f}{(vr if vr is not None else float('nan')):>15.3f}")
    print(f"wrote {path} and {len(pngs)} plots in {data['config']['seconds']:.1f} s")
    return 0
