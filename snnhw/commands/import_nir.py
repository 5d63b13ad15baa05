"""``snnhw import-nir FILE --target loihi2|float [--dt S] [--reset zero|subtract]
[--from sinabs|snntorch|norse|rockpool|spyx|nir] [--repair]
[--inputs X.npy | --rate R --steps T --samples N] [--out DIR]``.

Maps a NIR graph of the supported nodes (:data:`snnhw.io.nir.SUPPORTED`; flat, with recurrent
cycles, or with nested recurrent subgraphs; linear nodes between populations composed) onto Loihi 2, runs it on Lava's CPU
simulator and reports its fidelity to a float simulation with NIR semantics
(:mod:`snnhw.nir_import`). ``--rate`` is a spike probability per input per step. Errors a user can
cause (a malformed file, bad inputs or options) are :class:`snnhw.errors.SnnhwError` s raised where
they are found; the CLI prints them as one line.
"""
from __future__ import annotations

import sys
from pathlib import Path

HELP = "import a NIR graph onto Loihi 2 (Lava CPU sim) or the float twin and measure its fidelity"


def add_arguments(parser) -> None:
    from snnhw.io.nir.convention import SOURCES

    parser.add_argument("file", metavar="FILE", help="NIR graph (.nir, HDF5)")
    parser.add_argument("--target", choices=("loihi2", "float"), default="loihi2",
                        help="loihi2: quantize and run on Lava fixed_pt (default); float: the float twin")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in seconds (default: graph metadata 'dt', else 1e-4)")
    parser.add_argument("--reset", choices=("zero", "subtract", "subtract-undecayed"), default=None,
                        help="reset the graph means (NIR stores none): zero = v_reset; subtract = theta off at "
                             "the spike step; subtract-undecayed = theta off the next update (snnTorch) "
                             "(default: the source framework's, see --from)")
    parser.add_argument("--from", dest="source", choices=SOURCES, default=None,
                        help="the framework that wrote the file; sets dt, reset and discretization (default: "
                             "detected from the file, else nir; docs/nir.md)")
    parser.add_argument("--repair", action="store_true",
                        help="repair known exporter bugs (missing Conv2d input_shape, wrong subgraph Input "
                             "shapes); each repair is printed on one line")
    parser.add_argument("--inputs", metavar="X.npy", help="input spikes [samples, steps, inputs]")
    parser.add_argument("--rate", type=float, default=0.2, help="Poisson inputs: spike probability per step "
                                                                "(default 0.2)")
    parser.add_argument("--steps", type=int, default=200, help="Poisson inputs: steps per sample (default 200)")
    parser.add_argument("--samples", type=int, default=100, help="Poisson inputs: samples (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Poisson inputs (default 0)")
    parser.add_argument("--no-compensation", action="store_true",
                        help="with --reset subtract: do not calibrate thresholds for Loihi's zero reset")
    parser.add_argument("--netx-compatible", action="store_true",
                        help="limit weight exponents to <= 0 so that model.net (lava-dl netx) can be written "
                             "(slightly coarser; default: best fidelity)")
    parser.add_argument("--weight-split", dest="split", action="store_true", default=None,
                        help="per weight matrix a coarse and a fine Dense into the same LIF (~15-bit weights, "
                             "2x the synapses; model.net/model.nir are not written). Default for loihi2 "
                             "unless --netx-compatible or --calibrate")
    parser.add_argument("--no-weight-split", dest="split", action="store_false",
                        help="one 8-bit Dense per weight matrix")
    parser.add_argument("--subtract-mode", choices=("emulate", "compensate"), default="emulate",
                        help="loihi2 with a subtract reset: emulate it exactly up to rounding (u carries the "
                             "membrane, delayed synaptic taps or, without a current filter, a self-reset behind "
                             "any synapse; default where the graph allows, without "
                             "--calibrate and --netx-compatible; no model.net/model.nir) or compensate Loihi's "
                             "zero reset with thresholds and self-excitation")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="fine-tune the chip's weights on N unlabelled calibration inputs to match the float "
                             "reference (distillation on the chip's arithmetic; report.json: calibration)")
    parser.add_argument("--out", metavar="DIR", help="run directory to write (default: export/import-<name>)")


def _measure(a) -> str:
    """'cosine X' (spike counts) or 'Pearson r X' (a readout's voltage) of an agreement record."""
    if "output_pearson_r" in a:
        return f"Pearson r {a['output_pearson_r']:.4f}"
    return f"cosine {a['output_cosine']:.4f}"


def run(args) -> int:
    from snnhw.io.inputs import load_inputs
    from snnhw.nir_import import import_nir

    x = load_inputs(args.inputs) if args.inputs else None
    out = Path(args.out) if args.out else Path("export") / f"import-{Path(args.file).stem}"
    rep = import_nir(args.file, target=args.target, dt=args.dt, reset=args.reset, inputs=x, rate=args.rate,
                     steps=args.steps, samples=args.samples, seed=args.seed, out=out,
                     compensate=not args.no_compensation, netx_compatible=args.netx_compatible,
                     calibrate=args.calibrate, source=args.source, repair=args.repair, split=args.split,
                     subtract_mode=args.subtract_mode,
                     log=lambda m: print(m, file=sys.stderr))
    a = rep["agreement"]
    print(f"{args.file} -> {out} [{rep['target']}, {rep['backend']}, spec from {rep['spec_from']}]")
    if rep["output"] == "voltage":
        print(f"output voltage Pearson r {a['output_pearson_r']:.4f}, arg-max (mean voltage) agreement "
              f"{a['predictions'] * 100:.1f}% over {a['samples']} samples")
    else:
        print(f"output cosine {a['output_cosine']:.4f}, arg-max agreement {a['predictions'] * 100:.1f}% "
              f"over {a['samples']} samples")
    for l in rep["layers"]:
        print(f"  layer {l['name']}: rate float {l['float_rate']:.4f} chip {l['chip_rate']:.4f}, "
              f"count cosine {l['count_cosine']:.4f}")
    for n in rep["lossy"]:
        print(f"  not exact on the chip: {n}")
    eff = rep["effects"].get("subtract_reset")
    if eff and "chip_without_compensation_vs_reference" in eff:
        u = eff["chip_without_compensation_vs_reference"]
        print(f"  subtract reset: without compensation {_measure(u)}, agreement {u['predictions'] * 100:.1f}%; "
              f"with compensation {_measure(a)}, agreement {a['predictions'] * 100:.1f}%")
    cal = rep.get("calibration")
    if cal:
        b, f = cal["agreement_before"], cal["agreement_after"]
        print(f"  --calibrate {cal['samples']}: before cosine {b['output_cosine']:.4f}, agreement "
              f"{b['predictions'] * 100:.1f}%; after cosine {f['output_cosine']:.4f}, agreement "
              f"{f['predictions'] * 100:.1f}% (bit-exact core)")
    return 0
