"""The init's measurement pass: one layer at a time through the core's exact (or float) forward, and the
threshold calibration of ``hardware-calibrated``.

Lava's one-step Dense delay is factored out: a layer is run on the T steps in which its input arrives
(exact, since a layer that has received nothing stays at zero state). Spikes are [batch, time, neurons];
synaptic input is in the core's units (a weight mantissa times ``2**weight_exp``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.network import layer_bias, synapse
from snnhw.core.neuron import CubaParams, cuba_lif
from snnhw.spec import Dense

BISECT_STEPS = 40  # most halvings of the threshold calibration (a float spec never gets to 'hi - lo <= 1')


def layer_input(layer, s: torch.Tensor, exact: bool) -> torch.Tensor:
    """Synaptic input [B, T, n_out] of ``layer`` for presynaptic spikes ``s`` [B, T, n_in], with the
    one-step Dense delay factored out (step t sees s[t]); exact integer arithmetic via the core."""
    pad = torch.zeros_like(s[:, :1])
    return synapse(layer, torch.cat([s, pad], dim=1), exact)[:, 1:]


def run_layer(layer, a: torch.Tensor, exact: bool, vth=None) -> torch.Tensor:
    """Spikes [B, T, n_out] of ``layer``'s neurons for input ``a`` (optionally another threshold)."""
    n = layer.neuron
    p = CubaParams(n.i_decay, n.v_decay, n.vth_mant if vth is None else vth, n.reset)
    w_rec, rec_exp = None, 0
    if isinstance(layer, Dense) and layer.weight_rec is not None:
        w_rec = torch.as_tensor(np.asarray(layer.weight_rec), dtype=torch.int64 if exact else torch.float32)
        rec_exp = layer.rec_exp
    with torch.no_grad():
        return cuba_lif(a, p, layer_bias(layer, exact), w_rec=w_rec, rec_exp=rec_exp, exact=exact)


def calibrate_threshold(layer, a: torch.Tensor, exact: bool, target: float):
    """Bisect the threshold so the layer's measured rate is closest to ``target``. Integer mantissas on
    a quantized spec (1 .. 2**17-1), floats otherwise (geometric). Returns (vth, spikes)."""
    vmax = loihi.RANGES["vth_mant"][1]
    v0 = max(float(layer.neuron.vth_mant), 1.0)
    rate = lambda vth: float(run_layer(layer, a, exact, vth).mean())  # noqa: E731
    # bracket [v0/2, 2 v0] around the analytic threshold, widened to the full range when it misses
    lo, hi = (max(1, int(v0) // 2), min(vmax, 2 * int(v0) + 1)) if exact else (v0 / 2, v0 * 2)
    if rate(lo) <= target:
        lo = 1 if exact else v0 * 1e-4
    if rate(hi) > target:
        hi = vmax if exact else v0 * 1e4
    for _ in range(BISECT_STEPS):
        if exact and hi - lo <= 1:
            break
        mid = (lo + hi) // 2 if exact else math.sqrt(lo * hi)
        if rate(mid) > target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda v: abs(rate(v) - target))
    return best, run_layer(layer, a, exact, best)
