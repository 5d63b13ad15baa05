"""The 8-bit weight grid: what rounding does to a Gaussian init, and how to choose exponent and threshold.

Loihi 2 weights are 8-bit mantissas ``m`` times ``2**weight_exp`` (applied to the sum); with mixed
signs Lava's Dense clears the LSB, so the legal grid is the even integers in [-256, 254] (step
``STEP = 2`` mantissa units). In *weight units* (v / 64, where the threshold is ``vth_mant``) a weight
is ``m * 2**weight_exp``. Closed forms for a zero-mean Gaussian N(0, sigma**2) rounded to step D
(init_methods.md §2.2):

* fraction that rounds to 0: ``erf(D / (2 sqrt(2) sigma))``;
* variance after rounding: ``Var[Q] = 2 sum_{k>=1} (k D)**2 [Phi((k+1/2) D/sigma) - Phi((k-1/2) D/sigma)]``.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from snnhw import loihi

STEP = 2  # mixed-sign mantissa grid (LSB cleared by Lava's Dense)
MANT_LO, MANT_HI = -256, 254  # even mixed-sign range
SIGMA_MANT = 32.0  # mantissa std the hardware init aims at: 16 grid steps, 5 sigma = 160 < 254
VTH_LO, VTH_HI = 64, 1 << 14  # threshold-mantissa window the hardware init keeps vth_mant in


def zero_fraction(sigma: float, step: float = STEP) -> float:
    """Fraction of N(0, sigma**2) weights that round (to nearest) to 0 on a grid of ``step``."""
    if sigma <= 0:
        return 1.0
    return math.erf(step / (2.0 * math.sqrt(2.0) * sigma))


def quantized_variance(sigma: float, step: float = STEP, kmax: int = None) -> float:
    """``Var[Q_step(w)]`` for w ~ N(0, sigma**2), rounding to the nearest multiple of ``step`` (no clip)."""
    if sigma <= 0:
        return 0.0
    if sigma > 8 * step:  # Sheppard: exact to < 1e-12 relative here
        return sigma * sigma + step * step / 12.0
    kmax = kmax or int(12 * sigma / step) + 4
    k = np.arange(1, kmax + 1, dtype=np.float64)
    from math import erf
    cdf = np.vectorize(lambda z: 0.5 * (1.0 + erf(z / math.sqrt(2.0))))
    p = cdf((k + 0.5) * step / sigma) - cdf((k - 0.5) * step / sigma)
    return float(2.0 * np.sum((k * step) ** 2 * p))


def sigma_for_quantized_variance(target_var: float, step: float = STEP) -> float:
    """Pre-rounding std whose rounded variance equals ``target_var`` (bisection). Raises ValueError when
    the target is below what the grid can carry in expectation (the maximum of Var[Q] over sigma is
    never the issue; tiny targets are reached with very small sigma, i.e. mostly zeros)."""
    if target_var <= 0:
        return 0.0
    lo, hi = 1e-6 * step, 1e6 * step
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if quantized_variance(mid, step) < target_var:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def round_to_grid(w: np.ndarray, mixed: bool = True) -> np.ndarray:
    """Round float mantissas to legal Lava Dense mantissas: nearest even integer in [-256, 254] (mixed),
    or nearest integer in [0, 255] / [-255, 0] when all weights share a sign. The result passes
    :func:`snnhw.loihi.dense_effective_weights` unchanged."""
    w = np.asarray(w, dtype=np.float64)
    if mixed and (w.min() < 0 < w.max()):
        q = np.clip(STEP * np.round(w / STEP), MANT_LO, MANT_HI)
    elif w.min() >= 0:
        q = np.clip(np.round(w), 0, 255)
    else:
        q = np.clip(np.round(w), -255, 0)
    q = q.astype(np.int64)
    # a matrix that rounds to mixed sign from a single-sign draw must still be even
    if q.min() < 0 < q.max():
        q = (q // STEP) * STEP if np.any(q % STEP) else q
    eff, _ = loihi.dense_effective_weights(q)
    return eff.astype(np.int64)


def choose_exp_and_threshold(ratio: float, sigma_mant: float = SIGMA_MANT) -> Tuple[int, int, float]:
    """Co-choose ``weight_exp`` and ``vth_mant`` for a design ratio ``ratio = sigma_w / theta``.

    The mantissa std is held at ``sigma_mant`` (16 grid steps, far above one step) and the threshold
    set to ``vth_mant = round(sigma_mant * 2**e / ratio)``; ``e`` starts at 0 and moves up while the
    threshold would be below ``VTH_LO`` (coarse threshold) and down while it is above ``VTH_HI``
    (little headroom below the 24-bit saturation of v). Returns (weight_exp, vth_mant, sigma_mant
    actually used) — when e hits its range end the mantissa std is adjusted instead.
    """
    if not ratio > 0 or not math.isfinite(ratio):
        raise ValueError(f"weight-to-threshold ratio must be a positive number, got {ratio}")
    e_lo, e_hi = loihi.RANGES["weight_exp"]
    e = 0
    vth = sigma_mant * 2.0 ** e / ratio
    while vth < VTH_LO and e < e_hi:
        e += 1
        vth = sigma_mant * 2.0 ** e / ratio
    while vth > VTH_HI and e > e_lo:
        e -= 1
        vth = sigma_mant * 2.0 ** e / ratio
    s = sigma_mant
    if vth > VTH_HI:  # still too large at the lowest exponent: smaller mantissas
        vth = VTH_HI
        s = ratio * vth / 2.0 ** e
    elif vth < 1:  # still below one at the highest exponent: larger mantissas (clipping risk)
        vth = 1
        s = min(ratio * vth / 2.0 ** e, 80.0)
    return int(e), int(max(1, round(vth))), float(s)


def round_to_grid_torch(w):
    """Torch twin of :func:`round_to_grid` for a zero-mean (mixed-sign) float draw in mantissa units:
    nearest even integer, clipped to [-256, 254]; returned as float32 holding exact integers."""
    import torch
    return torch.round(w.div_(STEP)).mul_(STEP).clamp_(MANT_LO, MANT_HI)
