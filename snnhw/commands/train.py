"""``snnhw train``: quantization-aware training on the target's arithmetic, export, verification (on
Lava when it is installed, else the artifact round trip on snnhw's core; the output says which)."""
from __future__ import annotations

import sys

HELP = "train a recipe on a target (QAT on Loihi 2's integer arithmetic), export and verify (on Lava if installed)"


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
    p.add_argument("--verify-samples", type=int, default=None, help="test samples verified")
    p.add_argument("--backend", default=None, choices=["lava", "netx"],
                   help="verification: snnhw's Lava network (lava) or lava-dl netx loading model.net (netx); "
                        "both need Lava (snnhw[lava], Python 3.10). Default: lava when Lava is installed, else "
                        "model.net and model.nir re-read and re-simulated on snnhw's core (artifact round trip)")
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
    acc = r.accuracy
    fmt = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    print(f"run directory: {outcome.out_dir}")
    print(f"accuracy: float {fmt(acc.float)}  quantized {fmt(acc.quantized)}  lava {fmt(acc.lava)}")
    print(verification_line(r))
    if r.artifact_roundtrip is not None:
        print(f"note: {r.verification_note}")
    silent = [l.name for l in r.layers if l.silent]
    if silent:
        print(f"silent layers: {', '.join(silent)}")
    print(f"time: {r.times.total_seconds:.1f} s")
    for n in r.notes:
        print(f"note: {n}")
    return 0


#: What each verification compares, for the terminal line.
WHAT = {"lava-cpu-sim": "snnhw core vs Lava's CPU simulator (fixed_pt)", "loihi2-hw": "snnhw core vs Loihi 2",
        "lava-dl-netx-cpu-sim": "snnhw core vs lava-dl netx loading model.net on Lava's CPU simulator"}


def verification_line(r) -> str:
    """One line: which verification ran and its result (``r`` a :class:`snnhw.report.RunReport`)."""
    ag, rt = r.agreement, r.artifact_roundtrip
    if r.verification is None:
        return f"verification: none ({r.verification_note})"
    if rt is not None:
        if not rt:
            return f"verification: {r.verification} — no file to re-read (see the notes)"
        n, same = rt[0].samples, min(a.identical_samples for a in rt)
        exact = " (exact)" if all(a.exact for a in rt) else ""
        what = " (output spikes and v traces)" if rt[0].output_voltage is not None else ""
        return (f"verification: {r.verification} — {' and '.join(a.artifact for a in rt)} re-read and "
                f"re-simulated: {same}/{n} samples identical{what}{exact}")
    if ag.output_voltage is not None:  # a voltage readout: its v read back from Lava every step
        return (f"verification: {r.verification} — {WHAT.get(r.verification, ag.backend)} on {ag.samples} samples, "
                f"voltage readout: {ag.identical_samples}/{ag.samples} output v traces identical, output-voltage "
                f"agreement {ag.output_voltage:.6f}, prediction agreement {ag.predictions:.4f}")
    return (f"verification: {r.verification} — {WHAT.get(r.verification, ag.backend)} on {ag.samples} samples: "
            f"{ag.identical_samples}/{ag.samples} identical, output-spike agreement {ag.output_spikes:.6f}, "
            f"prediction agreement {ag.predictions:.4f}")
