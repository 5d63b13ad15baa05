"""What the 8-bit weight grid does to a Gaussian init, and how the hardware init picks exponent and threshold.

The grid itself (legal mantissas, the one rounding rule) lives in :mod:`snnhw.loihi`
(:func:`~snnhw.loihi.round_to_grid`, :data:`~snnhw.loihi.MIXED_STEP` = 2: a mixed-sign Dense clears the
mantissa LSB). In *weight units* (v / 64, where the threshold is ``vth_mant``) a weight is
``m * 2**weight_exp``. Closed forms for a zero-mean Gaussian N(0, sigma**2) rounded to step D
(init_methods.md §2.2):

* fraction that rounds to 0: ``erf(D / (2 sqrt(2) sigma))``;
* variance after rounding: ``Var[Q] = 2 sum_{k>=1} (k D)**2 [Phi((k+1/2) D/sigma) - Phi((k-1/2) D/sigma)]``.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from snnhw import loihi
from snnhw.errors import InputError

SIGMA_MANT = 32.0  # mantissa std the hardware init aims at: 16 grid steps, 5 sigma = 160 < 254
VTH_LO, VTH_HI = 64, 1 << 14  # threshold-mantissa window the hardware init keeps vth_mant in


def zero_fraction(sigma: float, step: float = loihi.MIXED_STEP) -> float:
    """Fraction of N(0, sigma**2) weights that round (to nearest) to 0 on a grid of ``step``."""
    if sigma <= 0:
        return 1.0
    return math.erf(step / (2.0 * math.sqrt(2.0) * sigma))


def _std_normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) elementwise as ``0.5 (1 + math.erf(z / sqrt 2))``, float64.

    Kept instead of ``scipy.special.ndtr``: ndtr differs in the last bit for ~40 % of arguments, which
    moves :func:`sigma_for_quantized_variance` by an ulp and so the hardware init's weights."""
    return np.vectorize(lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))))(z)


def quantized_variance(sigma: float, step: float = loihi.MIXED_STEP, kmax: int = None) -> float:
    """``Var[Q_step(w)]`` for w ~ N(0, sigma**2), rounding to the nearest multiple of ``step`` (no clip)."""
    if sigma <= 0:
        return 0.0
    if sigma > 8 * step:  # Sheppard: exact to < 1e-12 relative here
        return sigma * sigma + step * step / 12.0
    kmax = kmax or int(12 * sigma / step) + 4
    k = np.arange(1, kmax + 1, dtype=np.float64)
    p = _std_normal_cdf((k + 0.5) * step / sigma) - _std_normal_cdf((k - 0.5) * step / sigma)
    return float(2.0 * np.sum((k * step) ** 2 * p))


def sigma_for_quantized_variance(target_var: float, step: float = loihi.MIXED_STEP) -> float:
    """Pre-rounding std whose rounded variance equals ``target_var`` (same unit as ``step``, squared).

    Geometric bisection over [1e-6 step, 1e6 step], 200 halvings (to float precision); tiny targets are
    reached with a very small sigma (mostly zeros). Bisection kept: ``scipy.optimize.brentq`` lands on a
    different float, which moves the drawn weights of the hardware init."""
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


def choose_exp_and_threshold(ratio: float, sigma_mant: float = SIGMA_MANT) -> Tuple[int, int, float]:
    """Co-choose ``weight_exp`` and ``vth_mant`` for a design ratio ``ratio = sigma_w / theta``.

    The mantissa std is held at ``sigma_mant`` (16 grid steps, far above one step) and the threshold
    set to ``vth_mant = round(sigma_mant * 2**e / ratio)``; ``e`` starts at 0 and moves up while the
    threshold would be below ``VTH_LO`` (coarse threshold) and down while it is above ``VTH_HI``
    (little headroom below the 24-bit saturation of v). Returns (weight_exp, vth_mant, sigma_mant
    actually used) — when e hits its range end the mantissa std is adjusted instead.
    """
    if not ratio > 0 or not math.isfinite(ratio):
        raise InputError(f"weight-to-threshold ratio must be a positive number, got {ratio}")
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
