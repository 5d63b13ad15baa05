"""``snnhw simulate MODEL.net --inputs X.npy [--backend torch|lava] [--out Y.npy]``.

Runs a lava-dl netx HDF5 network exactly as netx builds it and Lava's CPU simulator runs it.
X holds 0/1 input spikes [samples, steps, inputs] (column t-1 is sent at time step t); Y the last
layer's output spikes [samples, steps, outputs] as uint8, indexed like Lava's RingBuffer sink
(column t-1 = time step t). ``--backend torch`` (default) reads the file with
:func:`snnhw.io.netx.read_netx` and runs :func:`snnhw.core.network.simulate`, batched over samples, on
``--device`` (cpu, or cuda: the Triton kernels of :mod:`snnhw.core.fused_triton`);
``--backend lava`` runs lava-dl's own ``hdf5.Network`` on Lava, one sample after another
(:func:`snnhw.backends.netx_lava.run_netx_lava`); without Lava it stops at once with one line
naming ``snnhw[lava]`` (exit 2). Supported layers are those of
:mod:`snnhw.io.netx.read` (dense, dense_rec, conv, flatten, input); for a network that starts or ends
with a conv layer the input/output vectors are flat (C, H, W) maps in C-order.
"""
from __future__ import annotations

import os

import numpy as np

from snnhw.errors import InputError, MissingFileError
from snnhw.io.inputs import load_inputs

HELP = "run a lava-dl netx .net file on input spikes (torch core or Lava), exactly as netx + Lava do"
#: Samples per torch batch unless --batch-size says otherwise.
DEFAULT_BATCH = 256


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL.net", help="lava-dl netx HDF5 network file")
    parser.add_argument("--inputs", required=True, metavar="X.npy",
                        help="0/1 input spikes shaped [samples, steps, inputs] (.npy)")
    parser.add_argument("--backend", choices=("torch", "lava"), default="torch",
                        help="torch: the Loihi-exact core, batched (default); lava: lava-dl netx on "
                             "Lava's CPU simulator (fixed_pt), one sample at a time")
    parser.add_argument("--out", metavar="Y.npy",
                        help="write output spikes [samples, steps, outputs] (uint8) here")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                        help=f"samples per torch batch (default {DEFAULT_BATCH})")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="torch backend: run the core on this device (cuda: the Triton kernels; "
                             "default cpu)")


def simulate_torch(path: str, x: np.ndarray, batch_size: int = DEFAULT_BATCH, device: str = "cpu") -> np.ndarray:
    """Output spikes [samples, steps, outputs] (uint8) of ``read_netx(path)`` on the torch core."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    from snnhw.core.network import simulate
    from snnhw.io.netx import read_netx

    spec = read_netx(path)
    if x.shape[2] != spec.n_in:
        raise InputError(f"inputs have {x.shape[2]} channels but {path} expects {spec.n_in}")
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = torch.as_tensor(x[i:i + batch_size]).to(device)
        outs.append(simulate(spec, xb).output.cpu().numpy().astype(np.uint8))
    return np.concatenate(outs, axis=0)


def simulate_lava(path: str, x: np.ndarray) -> np.ndarray:
    """Output spikes of lava-dl's own loader on Lava, after the reader's one-line checks."""
    from snnhw.backends.netx_lava import run_netx_lava
    from snnhw.io.netx import read_netx

    read_netx(path)  # the same one-line errors as the torch backend, before Lava starts
    return run_netx_lava(path, x)


def require_lava_backend() -> None:
    """One-line :class:`~snnhw.errors.MissingDependencyError` for ``--backend lava`` without Lava."""
    from snnhw.backends import lava_runtime

    lava_runtime.require_lava(f"--backend lava runs lava-dl's netx loader on Lava, and lava-nc is not "
                              f"installed ({lava_runtime.INSTALL_HINT}); --backend torch runs the same "
                              f"network on snnhw's Loihi-exact core")


def run(args) -> int:
    from snnhw.io.atomic import save_npy

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.backend == "lava":
        if args.device != "cpu":
            raise InputError("--device applies to --backend torch; Lava's simulator runs on the CPU")
        require_lava_backend()
    if not os.path.isfile(args.model):
        raise MissingFileError(f"{args.model}: no such file")
    x = load_inputs(args.inputs)
    if args.out:  # checked before the run: atomic writes would create the folder
        d = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(d):
            raise MissingFileError(f"{args.out}: output folder {d} does not exist")
    if args.backend == "torch":
        y = simulate_torch(args.model, x, args.batch_size, args.device)
    else:
        y = simulate_lava(args.model, x)
    if args.out:
        save_npy(args.out, y)
    S, T, N = y.shape
    where = f" -> {args.out}" if args.out else ""
    print(f"{args.backend}: {S} samples x {T} steps x {N} outputs, {int(y.sum())} output spikes{where}")
    return 0
