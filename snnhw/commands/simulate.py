"""``snnhw simulate MODEL.net --inputs X.npy [--backend torch|lava] [--out Y.npy]``.

Runs a lava-dl netx HDF5 network exactly as netx builds it and Lava's CPU simulator runs it.
X holds 0/1 input spikes [samples, steps, inputs] (column t-1 is sent at time step t); Y the last
layer's output spikes [samples, steps, outputs] as uint8, indexed like Lava's RingBuffer sink
(column t-1 = time step t). ``--backend torch`` (default) reads the file with
:func:`snnhw.io.netx.read_netx` and runs :func:`snnhw.core.network.simulate`, batched over samples;
``--backend lava`` runs lava-dl's own ``hdf5.Network`` on Lava, one sample after another.
Supported layers are those of :mod:`snnhw.io.netx` (dense, dense_rec, conv, flatten, input); for a
network that starts or ends with a conv layer the input/output vectors are flat (C, H, W) maps in
C-order.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

HELP = "run a lava-dl netx .net file on input spikes (torch core or Lava), exactly as netx + Lava do"


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL.net", help="lava-dl netx HDF5 network file")
    parser.add_argument("--inputs", required=True, metavar="X.npy",
                        help="0/1 input spikes shaped [samples, steps, inputs] (.npy)")
    parser.add_argument("--backend", choices=("torch", "lava"), default="torch",
                        help="torch: the Loihi-exact core, batched (default); lava: lava-dl netx on "
                             "Lava's CPU simulator (fixed_pt), one sample at a time")
    parser.add_argument("--out", metavar="Y.npy",
                        help="write output spikes [samples, steps, outputs] (uint8) here")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="samples per torch batch (default 256)")


def load_inputs(path: str) -> np.ndarray:
    """Load X.npy as 0/1 spikes [samples, steps, inputs]; one-line errors for bad files."""
    from snnhw.io.netx import check_spikes

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file (save the inputs with numpy.save)")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable .npy array ({msg})") from None
    try:
        return check_spikes(x)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def simulate_torch(path: str, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Output spikes [samples, steps, outputs] (uint8) of ``read_netx(path)`` on the torch core."""
    import torch

    from snnhw.core.network import simulate
    from snnhw.io.netx import read_netx

    spec = read_netx(path)
    if x.shape[2] != spec.n_in:
        raise ValueError(f"inputs have {x.shape[2]} channels but {path} expects {spec.n_in}")
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = torch.as_tensor(x[i:i + batch_size])
        outs.append(simulate(spec, xb).output.numpy().astype(np.uint8))
    return np.concatenate(outs, axis=0)


def save_npy(path: str, y: np.ndarray) -> None:
    """Write ``y`` to ``path`` atomically (temp file in the same folder + os.replace)."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{path}: output folder {d} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, y)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(args) -> int:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"{args.model}: no such file")
    x = load_inputs(args.inputs)
    if args.backend == "torch":
        y = simulate_torch(args.model, x, args.batch_size)
    else:
        from snnhw.io.netx import read_netx, run_netx_lava

        read_netx(args.model)  # the same one-line errors as the torch backend, before Lava starts
        y = run_netx_lava(args.model, x)
    if args.out:
        save_npy(args.out, y)
    S, T, N = y.shape
    where = f" -> {args.out}" if args.out else ""
    print(f"{args.backend}: {S} samples x {T} steps x {N} outputs, {int(y.sum())} output spikes{where}")
    return 0
