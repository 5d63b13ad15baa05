"""What the netx reader and writer share: the error type, netx's defaults and accepted ranges, and
netx's weight re-encoding as Lava's Dense then runs it (the arithmetic itself is :mod:`snnhw.loihi`)."""
from __future__ import annotations

from typing import Tuple

import numpy as np

from snnhw import loihi
from snnhw.errors import FileFormatError

#: netx's neuron for a dense layer without a ``neuron`` group (hdf5.py ``create_dense``).
NETX_DEFAULT_NEURON = dict(i_decay=0, v_decay=4096, vth_mant=1 << 17)
#: vThMant range accepted on read and write: 17 bits plus netx's own default 1 << 17.
VTH_READ_RANGE = (0, 1 << 17)
#: Layer types lava-dl netx 0.6.0 knows but snnhw does not read, with the reason.
UNSUPPORTED = {
    "pool": "pool layers are not implemented by lava-dl netx 0.6.0",
    "convT": "convT layers are not implemented by lava-dl netx 0.6.0",
    "unpool": "unpool layers are not implemented by lava-dl netx 0.6.0",
    "average": "average layers are not implemented by lava-dl netx 0.6.0",
    "concat": "concat layers are not implemented by lava-dl netx 0.6.0",
    "dense_comp": "complex dense layers (dense_comp) are not supported",
}


class NetxFormatError(FileFormatError):
    """A netx file that cannot be read or written exactly; the message is one line."""


def check_vth(vth: int, where: str, name: str = "vThMant") -> None:
    """A threshold mantissa netx writes and Lava runs (:data:`VTH_READ_RANGE`)."""
    lo, hi = VTH_READ_RANGE
    if not lo <= vth <= hi:
        raise loihi.RangeError(f"{where}: {name} = {vth} is outside the legal range {lo}..{hi}")


def check_conv_sums(w: np.ndarray, where: str) -> None:
    """Lava's Conv wraps its sum at 24 bits where the core casts to int32: reject kernels whose
    binary-input sums could reach :data:`snnhw.loihi.CONV_SUM_LIMIT` (2**23)."""
    worst = loihi.conv_sum_bound(w)
    if worst >= loihi.CONV_SUM_LIMIT:
        raise NetxFormatError(f"{where}: conv sums can reach {worst} >= 2**23, where Lava's Conv wraps "
                              "at 24 bits (not modelled)")


def encode(w: np.ndarray, where: str) -> Tuple[np.ndarray, int, int]:
    """netx's ``optimize_weight_bits``: (encoded weights, num_weight_bits, weight_exp)."""
    try:
        enc, nbits, wexp, _ = loihi.netx_optimize_weight_bits(w)
    except loihi.RangeError as e:
        raise loihi.RangeError(f"{where}: {e}") from None
    return enc, nbits, wexp


def lava_dense_weights(enc: np.ndarray, nbits: int) -> np.ndarray:
    """What Lava's Dense makes of netx's encoded weights (sign mode re-derived by Lava), int64.

    One netx quirk is handled here: netx calls an all-non-positive matrix that contains a 0 MIXED and
    may give it 9 weight bits, while Lava's Dense calls it INHIBITORY and truncates by
    ``8 - 9 = -1`` bits; numpy's shift by a negative count turns every magnitude into 0, so the
    layer runs with all-zero weights (checked against Lava in tests/test_netx.py).
    """
    mode = loihi.determine_sign_mode(enc)
    if 8 - int(nbits) + int(mode == loihi.SignMode.MIXED) < 0:
        return np.zeros_like(enc, dtype=np.int64)
    return loihi.dense_effective_weights(enc, nbits)[0].astype(np.int64)
