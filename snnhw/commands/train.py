"""``snnhw train``: quantization-aware training on the target's arithmetic, export, Lava verification."""
from __future__ import annotations

import sys

HELP = "train a recipe on a target (QAT on Loihi 2's integer arithmetic), export and verify on Lava"


def add_arguments(p) -> None:
    p.add_argument("recipe", nargs="?", default="digits_mlp",
                   help="recipe name in models/ or a path to a .toml recipe (default: digits_mlp)")
    p.add_argument("--target", default="loihi2", help="hardware_configs/<name>.toml or a path (default: loihi2)")
    p.add_argument("--out", default=None, help="run directory (default: export/<recipe>-<target>)")
    p.add_argument("--data-dir", default="data", help="where downloaded datasets live (default: ./data)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (default: cpu)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--init", default=None, help="override the recipe's init method (e.g. hardware, kaiming)")
    p.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint of this run")
    p.add_argument("--verify-samples", type=int, default=None, help="test samples verified on Lava")
    p.add_argument("--backend", default="lava", choices=["lava", "netx"],
                   help="verification: snnhw's Lava network (lava) or lava-dl netx loading model.net (netx)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from snnhw.train.pipeline import RunOptions, run as run_pipeline

    opts = RunOptions(recipe=args.recipe, target=args.target, out=args.out, data_dir=args.data_dir,
                      device=args.device, seed=args.seed, epochs=args.epochs, init=args.init, resume=args.resume,
                      verify_samples=args.verify_samples, backend=args.backend,
                      progress=not args.no_progress and sys.stderr.isatty())
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    outcome = run_pipeline(opts, log=log)
    if outcome is None:  # a non-zero rank under torchrun
        return 0
    r = outcome.report
    acc, ag = r.accuracy, r.agreement
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    print(f"run directory: {outcome.out_dir}")
    print(f"accuracy: float {fmt(acc.float)}  quantized {fmt(acc.quantized)}  lava {fmt(acc.lava)}")
    if ag:
        print(f"torch vs {ag.backend} on {ag.samples} samples: output-spike agreement {ag.output_spikes:.6f}, "
              f"prediction agreement {ag.predictions:.4f}")
    silent = [l.name for l in r.layers if l.silent]
    if silent:
        print(f"silent layers: {', '.join(silent)}")
    print(f"time: {r.times.total_seconds:.1f} s")
    for n in r.notes:
        print(f"note: {n}")
    return 0
