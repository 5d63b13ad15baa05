"""``snnhw demo [--seed S] [--sizes 32,64,48,10] [--steps T] [--samples N] [--recurrent]``.

Builds a seeded random multi-layer CUBA LIF network with Lava-representable integers (8-bit weights
with exponents, 12-bit decays, thresholds, biases), runs the same input spikes through the torch core
(:func:`snnhw.core.network.simulate`) and through Lava's fixed-point CPU simulator
(:func:`snnhw.backends.lava.run_lava`), and prints per layer whether every spike and every u and v
value agree, with spike counts and rates. Exit status 0 iff everything is identical, 1 otherwise,
2 for bad arguments or a missing Lava.
"""
from __future__ import annotations

import time

import numpy as np

from snnhw.errors import InputError

HELP = "run a seeded random network through the core and through Lava and show that they agree"


def add_arguments(parser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (network and inputs; default 0)")
    parser.add_argument("--sizes", default="32,64,48,10",
                        help="layer widths, input first (default 32,64,48,10: three LIF layers)")
    parser.add_argument("--steps", type=int, default=60, help="time steps per sample (default 60)")
    parser.add_argument("--samples", type=int, default=8, help="input samples (default 8)")
    parser.add_argument("--density", type=float, default=0.2, help="input spike probability (default 0.2)")
    parser.add_argument("--recurrent", action="store_true", help="give the first hidden layer recurrent weights")


def parse_sizes(text: str):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--sizes must be comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or len(sizes) > 9:
        raise InputError(f"--sizes needs 2 to 9 widths (input first), got {len(sizes)}")
    if min(sizes) < 1 or max(sizes) > 2048:
        raise InputError("--sizes widths must be in 1..2048")
    return sizes


def random_spec(sizes, seed: int, recurrent: bool = False):
    """A seeded random dense chain on Loihi integers: weights scaled to keep layers spiking
    (std ~ 2.5 * 255 / sqrt(fan-in) weight units, clipped to Lava's Dense range -256..255), decays in
    64..2048 (netx units), thresholds 30..150, biases -8..16 (bias_exp 6), weight_exp in -1..1."""
    from snnhw import loihi
    from snnhw.spec import Dense, NetworkSpec, Neuron

    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        exp = int(rng.integers(-1, 2))
        w = rng.normal(0, 2.5 * loihi.WEIGHT_MANT_MAX / np.sqrt(n_in) / 2.0 ** exp, (n_out, n_in)).round()
        w = w.clip(loihi.WEIGHT_MANT_MIN, loihi.WEIGHT_MANT_MAX)
        layer = Dense(f"layer{i + 1}", loihi.dense_effective_weights(w)[0],
                      Neuron(i_decay=int(rng.integers(64, 2048)), v_decay=int(rng.integers(64, 2048)),
                             vth_mant=int(rng.integers(30, 150))),
                      weight_exp=exp, bias_mant=rng.integers(-8, 17, n_out))
        if recurrent and i == 0:
            wr = rng.normal(0, 60 / np.sqrt(n_out), (n_out, n_out)).round()
            wr = wr.clip(loihi.WEIGHT_MANT_MIN, loihi.WEIGHT_MANT_MAX)
            layer.weight_rec, layer.rec_exp = loihi.dense_effective_weights(wr)[0], 0
        layers.append(layer)
    return NetworkSpec((sizes[0],), layers).validate()


def run(args) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from snnhw.backends import lava_runtime
    from snnhw.backends.lava import run_lava
    from snnhw.core.network import simulate

    sizes = parse_sizes(args.sizes)
    if args.steps < 1 or args.steps > 10000:
        raise InputError(f"--steps must be in 1..10000, got {args.steps}")
    if args.samples < 1 or args.samples > 10000:
        raise InputError(f"--samples must be in 1..10000, got {args.samples}")
    if not 0.0 <= args.density <= 1.0:
        raise InputError(f"--density must be in 0..1, got {args.density}")
    lava_runtime.require_lava(f"snnhw demo compares snnhw's core against Lava and cannot compare without it: "
                              f"lava-nc is not installed ({lava_runtime.INSTALL_HINT})")
    spec = random_spec(sizes, args.seed, args.recurrent)
    rng = np.random.default_rng(args.seed + 1)
    x = (rng.random((args.samples, args.steps, sizes[0])) < args.density).astype(np.int64)

    t = time.perf_counter()
    core = simulate(spec, x, record=True)
    t_core = time.perf_counter() - t
    t = time.perf_counter()
    lava = run_lava(spec, x, record=True)
    t_lava = time.perf_counter() - t

    con = Console(highlight=False)
    if not con.is_terminal:
        con = Console(highlight=False, width=100)
    con.print(f"[bold]snnhw demo[/bold]: seed {args.seed}, network {'-'.join(map(str, sizes))}"
              f"{' (layer1 recurrent)' if args.recurrent else ''}, {args.samples} samples x {args.steps} steps")
    table = Table(show_header=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="s=, u=, v=: every spike / u / v value identical at every step")
    for col in ("layer", "N", "spikes core", "spikes Lava", "rate", "s=", "u=", "v=", "max|u|", "max|v|"):
        table.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
    all_same, n_values = True, 0
    for layer, tr, ls, (u, v) in zip(spec.neuron_layers(), core.traces, lava.layer_spikes, lava.traces):
        cs, cu, cv = (tr.s.numpy().astype(np.int64), tr.u.numpy(), tr.v.numpy())
        same = [np.array_equal(cs, ls), np.array_equal(cu, u), np.array_equal(cv, v)]
        all_same &= all(same)
        n_values += 3 * cs.size
        mark = lambda ok: "[green]yes[/green]" if ok else "[red]NO[/red]"  # noqa: E731
        table.add_row(layer.name, str(layer.n_out), str(int(cs.sum())), str(int(ls.sum())),
                      f"{cs.mean():.3f}", *map(mark, same), str(int(np.abs(cu).max())), str(int(np.abs(cv).max())))
    con.print(table)
    con.print(f"core (torch): {t_core:.2f} s;  Lava ({lava.backend}, fixed_pt): {t_lava:.2f} s")
    if all_same:
        con.print(f"[bold green]AGREE[/bold green]: all {n_values} spike, u and v values are identical.")
        return 0
    con.print("[bold red]DISAGREE[/bold red]: the core and Lava differ (see the table).")
    return 1
