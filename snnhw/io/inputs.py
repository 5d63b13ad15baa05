"""Input spike arrays given on the command line (``--inputs X.npy``): load and check them.

An input array holds 0/1 spikes shaped [samples, steps, inputs]; column t-1 is sent at time step t.
Errors are one line: :class:`~snnhw.errors.MissingFileError` (no such file),
:class:`~snnhw.errors.FileFormatError` (not a readable ``.npy``), :class:`~snnhw.errors.InputError`
(wrong shape or values).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from snnhw.errors import FileFormatError, InputError, MissingFileError

NPY_MAGIC = b"\x93NUMPY"


def check_spikes(x, n_in: Optional[int] = None) -> np.ndarray:
    """Validate 0/1 input spikes shaped [samples, steps, inputs] (``n_in`` inputs if given); int64."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise InputError(f"inputs must be shaped [samples, steps, inputs], got shape {tuple(x.shape)}")
    if n_in is not None and x.shape[2] != n_in:
        raise InputError(f"inputs have {x.shape[2]} channels but the network expects {n_in}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"inputs must have at least one sample and one step, got shape {tuple(x.shape)}")
    if x.dtype.kind not in "biuf" or not np.all((x == 0) | (x == 1)):
        raise InputError("inputs must hold 0/1 spikes")
    return x.astype(np.int64)


def load_inputs(path: str) -> np.ndarray:
    """Load ``path`` (a ``.npy`` file) as 0/1 spikes [samples, steps, inputs], int64."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic != NPY_MAGIC:
        raise FileFormatError(f"{path}: not a .npy file (save the inputs with numpy.save)")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # what np.load raises on a truncated/corrupt array
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileFormatError(f"{path}: not a readable .npy array ({msg})") from None
    try:
        return check_spikes(x)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
