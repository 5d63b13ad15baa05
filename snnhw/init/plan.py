"""The law of one weight matrix under an init method, and its draw onto a spec.

Units. A spec holds *weight units*: a neuron's threshold is ``vth_mant`` and a weight is
``mantissa * 2**weight_exp`` (the chip's v / 64). The float formulas of :mod:`snnhw.init.formulas` are
stated in *float units* and mapped with lava-dl's convention ``w_scale = 64``: ``theta = vth_mant / 64``
and ``weight = 64 * w_float``. On a quantized spec the draw is rounded with :func:`snnhw.loihi.round_to_grid`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from snnhw import loihi
from snnhw.init import kernels, quant
from snnhw.init.tensor import HARDWARE_METHODS, moments
from snnhw.spec import Conv, Dense

W_SCALE = 64.0  # lava-dl's w_scale: float units * 64 = weight units


@dataclass
class WeightPlan:
    """How one afferent matrix is drawn: law in weight units and the layer's exponent/threshold."""

    mu_units: float
    pre_sigma_units: float  # std of the float draw (before rounding)
    sigma_units: float  # std the formula asks for (of the rounded weights, for hardware)
    dist: str  # "normal" or "uniform"
    exp: int  # weight_exp (0 for the float methods)
    vth: float  # vth_mant
    kw: Dict  # the float methods' keyword arguments to moments() (reused for the recurrent matrix)


def plan_weights(method: str, fan_in: int, fan_out: int, alpha_f: float, beta_f: float, reset: str,
                 vth_mant: float, quantized: bool, *, target: float, rate_in: float, m2_in: Optional[float] = None,
                 deep: bool = False, share: float = 1.0, rng=None, dt: float = 1e-3, **options) -> WeightPlan:
    """The law of one feed-forward matrix under ``method`` (see :mod:`snnhw.init.spec_init` for the rules).

    Float methods: formula in float units at ``theta = vth_mant / 64``, ``weight_exp = 0``, threshold kept.
    Hardware: design ratio sigma_w/theta from the population model (Bernoulli(``rate_in``) afferents,
    or a target-rate layer when ``deep``; ``m2_in`` overrides the afferent rates' second moment), then on
    a quantized target the exponent/threshold co-choice and the pre-rounding std for the grid."""
    if method in HARDWARE_METHODS:
        return _plan_hardware(fan_in, alpha_f, beta_f, reset, vth_mant, quantized, target, rate_in, m2_in,
                              deep, share, options)
    theta_f = vth_mant / W_SCALE
    kw = dict(threshold=theta_f, beta=beta_f, alpha=alpha_f, sigma_u=float(options.get("sigma_u", 1.0)),
              variant=options.get("variant", "paper"), kernel=options.get("kernel", "numerical"),
              normalization="cuba", dt=dt, mu_u=float(options.get("mu_u", 0.0)), xi=options.get("xi"),
              sg=options.get("sg"), rng=rng, reset=reset, target_rate=target)
    if method == "fdi":
        kw["nu"] = options.get("nu")
        kw["rate"] = target
    if method in ("micheli", "fdi"):
        kw["share"] = share
    mu_f, sig_f, dist = moments(method, fan_in, fan_out, **kw)
    return WeightPlan(mu_f * W_SCALE, sig_f * W_SCALE, sig_f * W_SCALE, dist, 0, vth_mant, kw)


def _plan_hardware(fan_in, alpha_f, beta_f, reset, vth_mant, quantized, target, rate_in, m2_in, deep, share,
                   options) -> WeightPlan:
    """:func:`plan_weights` for the hardware methods (zero-mean normal law)."""
    sigma_mant = float(options.get("sigma_mant", quant.SIGMA_MANT))
    steps = options.get("steps")
    if m2_in is not None:
        ratio = kernels.design_ratio(fan_in, target, rate_in, min(max(m2_in, rate_in ** 2), rate_in),
                                     alpha_f, beta_f, reset, share, steps)
    else:
        _, ratio, _ = moments("hardware", fan_in, threshold=1.0, beta=beta_f, alpha=alpha_f, rate=rate_in,
                              target_rate=target, reset=reset, share=share, deep=deep, steps=steps)
    if quantized:
        e, vth, _ = quant.choose_exp_and_threshold(ratio, sigma_mant)
    else:
        e, vth = 0, vth_mant if vth_mant > 0 else 64.0
    sigma_units = ratio * vth
    pre = quant.sigma_for_quantized_variance((sigma_units / 2 ** e) ** 2) * 2 ** e if quantized else sigma_units
    return WeightPlan(0.0, pre, sigma_units, "normal", e, vth, {})


def fan_in(layer) -> int:
    """Inputs per neuron: n_in (Dense), C_in kH kW (Conv), kH kW (SumPool)."""
    if isinstance(layer, Dense):
        return layer.n_in
    if isinstance(layer, Conv):
        w = np.asarray(layer.weight)
        return int(w.shape[1] * w.shape[2] * w.shape[3])
    return int(layer.kernel[0] * layer.kernel[1])


def fan_out(layer) -> int:
    """Targets per input: n_out (Dense), C_out kH kW (Conv)."""
    if isinstance(layer, Conv):
        w = np.asarray(layer.weight)
        return int(w.shape[0] * w.shape[2] * w.shape[3])
    return layer.n_out


def draw(rng: np.random.Generator, shape, mu: float, sigma: float, dist: str) -> np.ndarray:
    """Float64 weights in weight units: N(mu, sigma**2), or uniform with that mean and std."""
    if dist == "uniform":
        b = math.sqrt(3.0) * sigma
        return rng.uniform(mu - b, mu + b, size=shape)
    return rng.normal(mu, sigma, size=shape)


def write(w_units: np.ndarray, quantized: bool, exp: int) -> np.ndarray:
    """Weight-unit floats -> what the spec stores (legal int64 mantissas at ``exp``, or float32)."""
    if not quantized:
        return w_units.astype(np.float32)
    return loihi.round_to_grid(w_units / 2.0 ** exp)


def stats(stored: np.ndarray, exp: int) -> tuple:
    """(std, fraction of zeros, mean) of stored weights in weight units (``stored * 2**exp``)."""
    w = np.asarray(stored, dtype=np.float64) * 2.0 ** exp
    return float(w.std()), float(np.mean(w == 0)), float(w.mean())


def rec_exp_for(sigma_units: float) -> int:
    """Recurrent weight_exp that puts a std of ``sigma_units`` near ``SIGMA_MANT`` mantissa units."""
    if sigma_units <= 0:
        return 0
    e = int(round(math.log2(sigma_units / quant.SIGMA_MANT)))
    lo, hi = loihi.RANGES["weight_exp"]
    return max(lo, min(hi, e))
