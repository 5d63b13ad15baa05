"""Closed-form weight statistics of every init method, in *float units* (threshold ``theta``).

Each function returns ``(mu_w, sigma_w, dist)`` for one weight matrix with fan-in ``n`` (conv:
``C_in * kH * kW``); ``dist`` is ``"normal"`` or ``"uniform"`` (a uniform law is returned by its
std; its bound is ``sqrt(3) * sigma``). ``theta`` is the firing threshold in the same unit as the
weights (float units: the threshold of a unit-threshold neuron is 1; on a spec, ``vth_mant / 64``).

============  =====================================================  ===============================
method        sigma_w (mean 0 unless noted)                          source
============  =====================================================  ===============================
pytorch       U(+-1/sqrt(n)): sigma = 1/sqrt(3 n)                     torch.nn.Linear default
kaiming       sqrt(2/n)                                               He et al. 2015 (fan-in)
glorot        sqrt(2/(n_in + n_out))                                  Glorot & Bengio 2010
bellec        1/sqrt(n)                                               LSNN (rd.randn/sqrt(n))
zenke         7 (1 - beta)/sqrt(n)                                    SpyTorch tutorial 1
ikun          sqrt(beta_SG/n), beta_SG = 1/mean_{[-1,1]} SG(x)        Chang et al. 2024 (v1)
micheli       sigma_u/sqrt(n P), P = P(N(0,sigma_u^2) > theta)        Micheli et al. 2024
fdi           mu_w = mu_U/(n nu eps_bar);                             Rossbroich et al. 2022 (stork)
              sigma_w^2 = scale ((theta-mu_U)/xi)^2/(n nu eps_hat) - mu_w^2
============  =====================================================  ===============================
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np

from snnhw.errors import InputError
from snnhw.init import kernels

# numpy 2 removed np.trapz in favour of np.trapezoid (same trapezoid rule, same result)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def _check_n(n, name="fan_in") -> int:
    if n is None:
        raise InputError(f"{name} is required")
    if isinstance(n, bool) or int(n) != n or int(n) <= 0:
        raise InputError(f"{name} must be a positive integer, got {n}")
    return int(n)


def check_threshold(theta) -> float:
    theta = float(theta)
    if not math.isfinite(theta) or theta < 0:
        raise InputError(f"threshold must be >= 0, got {theta}")
    return theta


def pytorch(n: int) -> Tuple[float, float, str]:
    return 0.0, 1.0 / math.sqrt(3.0 * _check_n(n)), "uniform"


def kaiming(n: int) -> Tuple[float, float, str]:
    return 0.0, math.sqrt(2.0 / _check_n(n)), "normal"


def glorot(n_in: int, n_out: int) -> Tuple[float, float, str]:
    return 0.0, math.sqrt(2.0 / (_check_n(n_in) + _check_n(n_out, "fan_out"))), "normal"


def bellec(n: int) -> Tuple[float, float, str]:
    return 0.0, 1.0 / math.sqrt(_check_n(n)), "normal"


def zenke(n: int, beta: float) -> Tuple[float, float, str]:
    if not 0.0 <= beta <= 1.0:
        raise InputError(f"beta must lie in [0, 1], got {beta}")
    return 0.0, 7.0 * (1.0 - beta) / math.sqrt(_check_n(n)), "normal"


def ikun_beta(sg: Optional[Callable] = None, points: int = 20001) -> float:
    """``beta_SG = 1 / mean_{x in [-1, 1]} SG(x)``; default SG(x) = 1/(1 + x**2) (ATan, unit peak),
    giving 4/pi = 1.273."""
    x = np.linspace(-1.0, 1.0, points)
    if sg is None:
        y = 1.0 / (1.0 + x ** 2)
    else:
        import torch
        y = np.asarray(torch.as_tensor(sg(torch.as_tensor(x))).detach().cpu().numpy(), dtype=np.float64)
        y = y / y.max()  # unit peak, as IKUN's SG
    return float(1.0 / _trapezoid(y, x) * 2.0)


def ikun(n: int, sg: Optional[Callable] = None) -> Tuple[float, float, str]:
    return 0.0, math.sqrt(ikun_beta(sg) / _check_n(n)), "normal"


def micheli_tail(theta: float, sigma_u: float = 1.0) -> float:
    """P = P(u > theta) for u ~ N(0, sigma_u**2)."""
    return kernels.norm_sf(check_threshold(theta) / sigma_u)


def micheli_finite_tail(theta: float, n: int, sigma_u: float = 1.0, rng: Optional[np.random.Generator] = None,
                        n_boot: int = 1000, confidence: float = 0.95) -> float:
    """Finite-size tail probability: the lower end of the bootstrap confidence interval of the tail
    fraction measured on ``n`` samples of N(0, sigma_u**2) (Micheli et al.'s ``optimal_init_finite_size``
    idea; we take the percentile bound of the bootstrap distribution, where their code shrinks the
    margin by 1/sqrt(n_boot)). Floored at 1/(2n) so that a layer never gets infinite variance."""
    n = _check_n(n)
    rng = rng or np.random.default_rng(0)
    x = rng.standard_normal(n) * sigma_u
    above = (x > check_threshold(theta)).astype(np.float64)
    boots = above[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lower = float(np.quantile(boots, (1.0 - confidence) / 2.0))
    return max(lower, 0.5 / n)


def micheli(n: int, theta: float, sigma_u: float = 1.0, variant: str = "paper", beta: float = 0.0,
            rng: Optional[np.random.Generator] = None) -> Tuple[float, float, str]:
    """Var[w] = sigma_u**2 / (n P). Variants:

    * ``paper``: P = P(N(0, sigma_u^2) > theta) (sigma_u = 1 in the paper; the sigma_u form is ours);
    * ``finite-size``: P replaced by the bootstrap lower bound of the tail seen in n samples;
    * ``soft-reset``: the authors' code extension with leak and subtractive reset,
      ``Var[w] = [1 - beta^2 - theta^2 P(1-P) + 2 beta theta E[u|u>theta]] / (n P)`` (sigma_u = 1 units,
      E[u|u>theta] = phi(theta)/P).
    """
    n = _check_n(n)
    theta = check_threshold(theta)
    if sigma_u <= 0:
        raise InputError(f"sigma_u must be > 0, got {sigma_u}")
    if variant == "paper":
        p = micheli_tail(theta, sigma_u)
        return 0.0, sigma_u / math.sqrt(n * p), "normal"
    if variant == "finite-size":
        p = micheli_finite_tail(theta, n, sigma_u, rng)
        return 0.0, sigma_u / math.sqrt(n * p), "normal"
    if variant == "soft-reset":
        z = theta / sigma_u
        p = kernels.norm_sf(z)
        expected = kernels.norm_pdf(z) / p
        var = (1.0 - beta ** 2 - z ** 2 * p * (1.0 - p) + 2.0 * beta * z * expected) / (n * p)
        return 0.0, sigma_u * math.sqrt(max(var, 0.0)), "normal"
    raise InputError(f"unknown micheli variant '{variant}'; choose paper, finite-size or soft-reset")


def fdi(n: int, theta: float, nu: float, eps_bar: float, eps_hat: float, *, mu_u: float = 0.0,
        xi: Optional[float] = None, sigma_u: float = 1.0, scale: float = 1.0) -> Tuple[float, float, str]:
    """stork's fluctuation-driven init for one afferent connection.

    ``nu`` presynaptic rate (Hz; or spikes/step with eps in steps), ``eps_bar``/``eps_hat`` the PSP
    integrals (seconds; :func:`snnhw.init.kernels.stork_eps`), ``mu_u`` the target mean membrane,
    ``xi`` the distance from mean to threshold in sigma_U units; when ``xi`` is None the centered
    variant is used: ``sigma_U = sigma_u * theta`` (stork's ``mu_u = 0, xi = 1/sigma_u`` at its fixed
    theta = 1). ``scale`` is the variance share of this connection (alpha/nb_ff for feed-forward,
    (1-alpha)/nb_rec for recurrent). sigma_U is the temporal (Campbell) std of the free membrane.
    """
    n = _check_n(n)
    theta = check_threshold(theta)
    if nu <= 0 or eps_bar <= 0 or eps_hat <= 0:
        raise InputError(f"fdi needs nu, eps_bar, eps_hat > 0 (got {nu}, {eps_bar}, {eps_hat})")
    if not 0 < scale <= 1:
        raise InputError(f"fdi variance share must lie in (0, 1], got {scale}")
    if xi is None:
        if sigma_u <= 0:
            raise InputError(f"sigma_u must be > 0, got {sigma_u}")
        sigma_target = sigma_u * (theta if theta > 0 else 1.0)
    else:
        if xi <= 0:
            raise InputError(f"xi must be > 0, got {xi}")
        sigma_target = (theta - mu_u) / xi
    mu_w = mu_u / (n * nu * eps_bar)
    var = scale * sigma_target ** 2 / (n * nu * eps_hat) - mu_w ** 2
    if var < 0:
        raise InputError("fdi: the target mean leaves no room for variance (sigma_w^2 < 0); lower mu_u")
    return mu_w, math.sqrt(var), "normal"
