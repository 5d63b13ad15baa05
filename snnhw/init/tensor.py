"""Tensor-level inits, like :mod:`torch.nn.init`: fill a weight tensor in place and return it.

Units are *float units*: a neuron with threshold ``threshold`` receives ``sum_j w_j s_j`` per step
(spikes s in {0, 1}). The hardware-aware method needs a target chip configuration and lives at the
spec level (:func:`snnhw.init.init_spec`); ``init_tensor(w, "hardware")`` gives its float design
(the CUBA-kernel/reset formula without the 8-bit grid) and ``hardware-calibrated`` is spec-only.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch

from snnhw.errors import InputError
from snnhw.init import formulas, kernels

METHODS = ("pytorch", "kaiming", "glorot", "bellec", "zenke", "ikun", "micheli", "fdi", "hardware",
           "hardware-calibrated")

HARDWARE_METHODS = ("hardware", "hardware-calibrated")  # the methods that know the chip (exponent, threshold)

DEFAULT_TARGET_RATE = 0.15  # spikes per neuron per step the hardware init designs for


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown init method '{method}'; choose one of {', '.join(METHODS)}")
    return method


def fans(weight) -> Tuple[int, int]:
    """(fan_in, fan_out) of a [out, in] or [out, in, kH, kW] weight: conv fan-in = C_in * kH * kW."""
    shape = tuple(weight.shape)
    if len(shape) < 2:
        raise InputError(f"weight must have at least 2 dimensions, got shape {shape}")
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * rf, int(shape[0]) * rf


def hardware_float(n: int, theta: float, rate_in: float, target_rate: float, i_decay: float,
                   v_decay: float, reset: str = "zero", share: float = 1.0, deep: bool = False,
                   steps: Optional[int] = None) -> Tuple[float, float, str]:
    """Float design of the hardware-aware init: zero-mean weights whose std makes a population with the
    given decays (CUBA kernel sums), reset and fixed random weights fire at ``target_rate``
    (:func:`kernels.design_ratio`); ``deep=True`` designs a layer whose afferents are themselves such a
    population (:func:`kernels.design_ratio_chain`), else the input is Bernoulli(``rate_in``).
    ``steps``: design for the mean rate over the first T steps from rest (None: stationary)."""
    n = formulas._check_n(n)
    theta = formulas.check_threshold(theta)
    if not 0 < rate_in <= 1:
        raise InputError(f"input rate must lie in (0, 1] spikes per step, got {rate_in}")
    a = kernels.decay_to_factor(i_decay)
    b = kernels.decay_to_factor(v_decay)
    if deep:
        rho, _ = kernels.design_ratio_chain(n, target_rate, a, b, reset, share, steps=steps)
    else:
        rho = kernels.design_ratio(n, target_rate, rate_in, rate_in ** 2, a, b, reset, share, steps)
    return 0.0, rho * (theta if theta > 0 else 1.0), "normal"


def moments(method: str, fan_in: int, fan_out: Optional[int] = None, *, threshold: float = 1.0,
            beta: float = 0.5, alpha: float = 0.0, rate: Optional[float] = None, sigma_u: float = 1.0,
            variant: str = "paper", nu: Optional[float] = None, dt: float = 1e-3,
            tau_mem: Optional[float] = None, tau_syn: Optional[float] = None, kernel: str = "numerical",
            normalization: str = "cuba", mu_u: float = 0.0, xi: Optional[float] = None, share: float = 1.0,
            target_rate: float = DEFAULT_TARGET_RATE, reset: str = "zero", sg=None, deep: bool = False,
            steps: Optional[int] = None,
            rng: Optional[np.random.Generator] = None) -> Tuple[float, float, str]:
    """``(mu_w, sigma_w, dist)`` of ``method`` in float units.

    ``beta``/``alpha``: membrane/current decay factors per step (or give ``tau_mem``/``tau_syn`` with
    ``dt``, seconds). ``rate``: presynaptic spikes per step (fdi: ``nu * dt`` when ``nu`` in Hz is given;
    hardware: the input rate). ``share``: variance share of this connection (ff/rec split).
    """
    check_method(method)
    threshold = formulas.check_threshold(threshold)
    if tau_mem is not None:
        beta = kernels.tau_to_factor(tau_mem, dt)
    if tau_syn is not None:
        alpha = kernels.tau_to_factor(tau_syn, dt)
    for name, val in (("beta", beta), ("alpha", alpha)):
        if not 0.0 <= val <= 1.0:
            raise InputError(f"{name} must lie in [0, 1], got {val}")
    if method == "pytorch":
        return formulas.pytorch(fan_in)
    if method == "kaiming":
        return formulas.kaiming(fan_in)
    if method == "glorot":
        return formulas.glorot(fan_in, fan_out if fan_out is not None else fan_in)
    if method == "bellec":
        return formulas.bellec(fan_in)
    if method == "zenke":
        return formulas.zenke(fan_in, beta)
    if method == "ikun":
        return formulas.ikun(fan_in, sg)
    if method == "micheli":
        mu, s, d = formulas.micheli(fan_in, threshold, sigma_u, variant, beta, rng)
        return mu, s * math.sqrt(share), d
    if method == "fdi":
        if nu is not None:
            p = nu * dt
        elif rate is not None:
            p = rate
        else:
            raise InputError("fdi needs the presynaptic rate: nu (Hz, with dt) or rate (spikes/step)")
        if kernel == "analytic":
            if tau_mem is None or tau_syn is None:
                tau_mem = -dt / math.log(beta) if 0 < beta < 1 else (math.inf if beta == 1 else 1e-12)
                tau_syn = -dt / math.log(alpha) if 0 < alpha < 1 else (math.inf if alpha == 1 else 1e-12)
            eb, eh = kernels.stork_eps(tau_mem, tau_syn, dt, "analytic", normalization)
        elif kernel == "numerical":
            c = (1.0 - beta) if normalization == "stork" else 1.0
            eb, eh = dt * kernels.sum_k(alpha, beta, c), dt * kernels.sum_k2(alpha, beta, c)
        else:
            raise InputError(f"unknown FDI kernel mode '{kernel}'; choose numerical or analytic")
        return formulas.fdi(fan_in, threshold, p / dt, eb, eh, mu_u=mu_u, xi=xi, sigma_u=sigma_u, scale=share)
    if method == "hardware":
        if rate is None:
            rate = target_rate
        i_decay = kernels.factor_to_decay(alpha)
        v_decay = kernels.factor_to_decay(beta)
        return hardware_float(fan_in, threshold, rate, target_rate, i_decay, v_decay, reset, share,
                              deep=bool(deep), steps=steps)
    raise InputError("hardware-calibrated runs the fixed-point forward; it needs a spec: use snnhw.init.init_spec")


def _fill(weight: torch.Tensor, mu: float, sigma: float, dist: str, generator) -> torch.Tensor:
    with torch.no_grad():
        if dist == "uniform":
            b = math.sqrt(3.0) * sigma
            weight.uniform_(mu - b, mu + b, generator=generator)
        else:
            weight.normal_(mu, sigma, generator=generator)
    return weight


def init_tensor(weight: torch.Tensor, method: str, *, fan_in: Optional[int] = None,
                fan_out: Optional[int] = None, threshold: float = 1.0, beta: float = 0.5, alpha: float = 0.0,
                rate: Optional[float] = None, sigma_u: float = 1.0, generator: Optional[torch.Generator] = None,
                seed: Optional[int] = None, zero_diagonal: bool = False, **options) -> torch.Tensor:
    """Fill ``weight`` in place with ``method``'s law (float units) and return it.

    ``fan_in``/``fan_out`` default to the tensor's (conv: C*kH*kW). ``threshold``: theta; ``beta``,
    ``alpha``: membrane and current decay factors per step; ``rate``: presynaptic spikes per step;
    ``sigma_u``: target membrane std (micheli/fdi). Other options go to :func:`moments` (``variant``,
    ``nu``, ``dt``, ``tau_mem``, ``tau_syn``, ``kernel``, ``normalization``, ``mu_u``, ``xi``, ``share``,
    ``target_rate``, ``reset``, ``sg``). ``zero_diagonal`` clears autapses (recurrent matrices).
    """
    fi, fo = fans(weight)
    fan_in = fi if fan_in is None else fan_in
    fan_out = fo if fan_out is None else fan_out
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    rng = np.random.default_rng(None if seed is None else int(seed))
    mu, sigma, dist = moments(method, fan_in, fan_out, threshold=threshold, beta=beta, alpha=alpha, rate=rate,
                              sigma_u=sigma_u, rng=rng, **options)
    _fill(weight, mu, sigma, dist, generator)
    if zero_diagonal and weight.ndim == 2:
        with torch.no_grad():
            weight.fill_diagonal_(0.0)
    return weight


def init_module(module: torch.nn.Module, method: str, **kwargs) -> torch.nn.Module:
    """Apply :func:`init_tensor` to every ``nn.Linear``/``nn.Conv*`` weight in ``module`` (biases: zero)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            init_tensor(m.weight, method, **kwargs)
            if m.bias is not None:
                with torch.no_grad():
                    m.bias.zero_()
    return module
