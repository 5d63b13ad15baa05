"""PSP kernels of the CUBA LIF neuron and the closed forms the inits are built on.

Two-stage CUBA neuron in float units (the free, sub-threshold membrane; no reset, no rounding):

    i_t = alpha * i_{t-1} + x_t          alpha = 1 - i_decay / 4096   (netx units, 0..4096)
    v_t = beta  * v_{t-1} + c * i_t      beta  = 1 - v_decay / 4096

``c = 1`` is Lava/lava-dl's CUBA (and SpyTorch); ``c = 1 - beta`` is stork's ``LIFGroup``
normalization. The impulse response (PSP kernel, per unit input at step 0) is
``k_t = c * sum_{s=0..t} alpha**s * beta**(t-s)`` and its sums are

    sum_k  = c / ((1 - alpha) (1 - beta))
    sum_k2 = c**2 (1 + alpha beta) / ((1 - alpha**2) (1 - beta**2) (1 - alpha beta))

(for alpha == beta the same expression holds; alpha = 0 gives sum_k2 = c**2/(1 - beta**2)).
For ``n`` independent Bernoulli(p) inputs with weights of mean mu_w and variance sigma_w**2, the free
membrane has ``E[v] = n p mu_w sum_k`` and ``Var[v] = n p (sigma_w**2 + mu_w**2 (1 - p)) sum_k2``.

stork's PSP integrals (seconds): ``eps_bar = dt * sum_k`` and ``eps_hat = dt * sum_k2`` (its
"numerical" mode, the discrete kernel at the training time step) or, analytically for continuous
exponentials with stork's normalization, ``eps_bar = tau_syn`` and
``eps_hat = tau_syn**2 / (2 (tau_syn + tau_mem))``.
"""
from __future__ import annotations

import functools
import math

from typing import Optional

import numpy as np
import torch

from snnhw import loihi
from snnhw.core import neuron
from snnhw.errors import InputError


def check_decay(name: str, d) -> float:
    """Validate a netx-unit decay (0..4096, may be fractional on float targets); return it as float."""
    try:
        val = float(d)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in 0..4096, got {d!r}") from None
    if not math.isfinite(val) or val < 0 or val > loihi.DECAY_UNITY:
        raise InputError(f"{name} = {d} is outside the legal range 0..4096 (netx units)")
    return val


def decay_to_factor(d: float) -> float:
    """Per-step multiplier ``(4096 - d) / 4096`` of a netx-unit decay."""
    return 1.0 - check_decay("decay", d) / loihi.DECAY_UNITY


def factor_to_decay(f: float) -> float:
    """netx-unit decay for a per-step multiplier ``f`` in [0, 1]."""
    if not 0.0 <= f <= 1.0:
        raise InputError(f"decay factor {f} must lie in [0, 1]")
    return (1.0 - f) * loihi.DECAY_UNITY


def tau_to_factor(tau: float, dt: float) -> float:
    """``exp(-dt / tau)`` (tau, dt in the same unit, e.g. seconds)."""
    if tau <= 0 or dt <= 0:
        raise InputError(f"time constants must be > 0 (tau={tau}, dt={dt})")
    return math.exp(-dt / tau)


def kernel(alpha: float, beta: float, steps: int, c: float = 1.0) -> np.ndarray:
    """The discrete PSP kernel ``k_t`` for t = 0..steps-1, by direct recursion (float64)."""
    k = np.zeros(steps)
    i = v = 0.0
    for t in range(steps):
        i = alpha * i + (1.0 if t == 0 else 0.0)
        v = beta * v + c * i
        k[t] = v
    return k


def sum_k(alpha: float, beta: float, c: float = 1.0) -> float:
    """Closed form of ``sum_t k_t`` (dimensionless, per unit input)."""
    if alpha >= 1.0 or beta >= 1.0:
        return math.inf
    return c / ((1.0 - alpha) * (1.0 - beta))


def sum_k2(alpha: float, beta: float, c: float = 1.0) -> float:
    """Closed form of ``sum_t k_t**2``."""
    if alpha >= 1.0 or beta >= 1.0:
        return math.inf
    return c * c * (1.0 + alpha * beta) / ((1.0 - alpha ** 2) * (1.0 - beta ** 2) * (1.0 - alpha * beta))


def cuba_gains(i_decay: float, v_decay: float) -> tuple:
    """(sum_k, sum_k2) of Lava's CUBA (c = 1) for netx-unit decays."""
    a = 1.0 - check_decay("i_decay", i_decay) / loihi.DECAY_UNITY
    b = 1.0 - check_decay("v_decay", v_decay) / loihi.DECAY_UNITY
    return sum_k(a, b), sum_k2(a, b)


def stork_eps(tau_mem: float, tau_syn: float, dt: float, mode: str = "numerical",
              normalization: str = "stork") -> tuple:
    """stork's PSP integrals (eps_bar, eps_hat) in seconds.

    ``mode="numerical"``: ``dt * sum_k``, ``dt * sum_k2`` of the discrete kernel at step ``dt``;
    ``mode="analytic"``: continuous kernel, ``tau_syn`` and ``tau_syn**2 / (2 (tau_syn + tau_mem))``
    (stork normalization) — times ``(tau_mem/dt)`` and ``(tau_mem/dt)**2`` for ``normalization="cuba"``
    (c = 1, no ``1 - beta`` input factor).
    """
    if mode not in ("numerical", "analytic"):
        raise InputError(f"unknown FDI kernel mode '{mode}'; choose numerical or analytic")
    if normalization not in ("stork", "cuba"):
        raise InputError(f"unknown kernel normalization '{normalization}'; choose stork or cuba")
    a, b = tau_to_factor(tau_syn, dt), tau_to_factor(tau_mem, dt)
    if mode == "numerical":
        c = (1.0 - b) if normalization == "stork" else 1.0
        return dt * sum_k(a, b, c), dt * sum_k2(a, b, c)
    eb, eh = tau_syn, tau_syn ** 2 / (2.0 * (tau_syn + tau_mem))
    if normalization == "cuba":
        g = tau_mem / dt
        eb, eh = eb * g, eh * g * g
    return eb, eh


def norm_sf(z: float) -> float:
    """Standard normal tail ``P(Z > z)`` as ``0.5 erfc(z / sqrt 2)``.

    Kept instead of ``scipy.special.ndtr(-z)``: ndtr differs in the last bit for ~45 % of arguments,
    which would move micheli's init (and the propagation study's fixed points)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def norm_pdf(z: float) -> float:
    """Standard normal density ``exp(-z**2 / 2) / sqrt(2 pi)``."""
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def reset_gain(beta: float, reset: str) -> float:
    """How much one spike lowers the mean of the *tested* (pre-reset) membrane, summed over the future,
    per unit of removed charge: the reset happens after the test at step t, so its effect on the next
    tests is ``beta + beta**2 + ... = beta / (1 - beta)`` (Lava order: decay, integrate, test, reset)."""
    if reset not in ("zero", "subtract"):
        raise InputError(f"reset must be 'zero' or 'subtract', not '{reset}'")
    if beta >= 1.0:
        return math.inf
    return beta / (1.0 - beta)


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(24)
_GH_W = _GH_W / _GH_W.sum()
MC_REPLICAS = 32  # neurons per quadrature node in the rate ensemble
MC_STEPS = 256  # measured steps (after the burn-in)


@functools.lru_cache(maxsize=8)
def _noise(steps: int, nodes: int, seed: int, reps: int = MC_REPLICAS) -> np.ndarray:
    """Seeded standard-normal noise [steps, nodes, reps] shared by all ensemble evaluations."""
    return np.random.default_rng(seed).standard_normal((steps, nodes, reps))


def ensemble_rates(m: np.ndarray, sigma_x: float, theta: float, alpha: float, beta: float,
                   reset: str = "zero", seed: int = 12345, steps: Optional[int] = None) -> np.ndarray:
    """Firing rate (spikes/step) of a float CUBA LIF driven by white Gaussian input ``x_t ~ N(m, sigma_x**2)``
    per step (weight units), for each mean in ``m``: ``i = alpha i + x; v = beta v + i``; spike iff
    ``v > theta``; then ``v = 0`` (``zero``), ``v -= theta`` (``subtract``, the spec's float twin) or
    theta comes off the next update undecayed (``subtract-undecayed``, snnTorch's Leaky). Evaluated on a
    seeded ensemble (``MC_REPLICAS`` neurons per mean, ``MC_STEPS`` steps after a burn-in of 5 time
    constants), with common random numbers so the result is a deterministic, smooth function of its
    arguments. ``steps`` = T: the rate over the first T steps from rest (a short-sequence network) instead
    of the stationary rate; the ensemble is enlarged to keep about ``MC_REPLICAS * MC_STEPS`` samples per
    mean.

    The neuron is the core's one CUBA loop (:func:`snnhw.core.neuron.cuba_loop` with :func:`float_step`)
    in float64 with ``gain = 1`` (weight units): the same operations in the same order as the numpy
    ensemble this replaced, so the design ratios (and the hardware init) are bit-identical.

    This is the one numerical piece of the hardware-aware init: the stationary rate of a discrete-time
    CUBA neuron with hard reset has no closed form (init_methods.md §4e).
    """
    if reset not in neuron.RESETS:
        raise InputError(f"reset must be one of {', '.join(neuron.RESETS)}, not '{reset}'")
    m = np.asarray(m, dtype=np.float64)
    if steps is None:
        tau = 1.0 / max(1.0 - max(alpha, beta), 1e-3)
        burn, meas, reps = int(min(5 * tau, 1000)) + 4, MC_STEPS, MC_REPLICAS
    else:
        steps = int(steps)
        if steps < 1:
            raise InputError(f"steps must be a positive integer, got {steps}")
        burn, meas = 0, steps
        reps = MC_REPLICAS * max(1, MC_STEPS // steps)
    noise = _noise(burn + meas, m.size, seed, reps)  # [time, means, replicas]
    x = m.reshape(1, -1, 1) + sigma_x * noise
    a = torch.from_numpy(x.reshape(burn + meas, m.size * reps))  # [time, neurons], float64
    run = neuron.cuba_loop(a, neuron.FloatCuba(alpha, beta, theta, gain=1.0, reset=reset))
    count = run.s[burn:].sum(dim=0).numpy().reshape(m.size, reps)
    return (count / meas).mean(axis=1).reshape(m.shape)


def reset_mean_shift(rate: float, q: float, beta: float) -> float:
    """Mean of the tested (pre-reset) membrane minus the free mean, exactly, in stationarity:
    ``-rate * q * beta / (1 - beta)``, with ``q = E[v_pre | spike]`` for the hard reset (theta for the
    subtractive one). From ``v_t = beta (v_{t-1} - q s_{t-1}) + i_t`` (init_methods.md §4c)."""
    return -rate * q * reset_gain(beta, "zero")


def predict_population(n: int, mu_w: float, sigma_w: float, r_in: float, m2_in: float, theta: float,
                       alpha: float, beta: float, reset: str = "zero", extra_var: float = 0.0,
                       steps: Optional[int] = None) -> tuple:
    """Mean rate and mean squared rate (r, E[r_i**2]) of a population with fixed random weights.

    Input: ``n`` afferents whose rates have mean ``r_in`` and second moment ``m2_in`` (a Bernoulli(p)
    source: r_in = p, m2_in = p**2). Neuron i's per-step input has a *quenched* mean
    ``m_i ~ N(n mu_w r_in, n (sigma_w**2 + mu_w**2) m2_in - n mu_w**2 r_in**2)`` (its fixed weights)
    and a temporal variance ``n (sigma_w**2 + mu_w**2) (r_in - m2_in)`` (+ ``extra_var``, e.g. the
    recurrent input). Rates per m_i come from :func:`ensemble_rates`, averaged over m_i by
    Gauss-Hermite quadrature (24 nodes). Units: weights and theta in one unit (weight units).
    """
    m_mean = n * mu_w * r_in
    m_var = n * (sigma_w ** 2 + mu_w ** 2) * m2_in - n * mu_w ** 2 * r_in ** 2
    m_std = math.sqrt(max(m_var, 0.0))
    var_t = max(n * (sigma_w ** 2 + mu_w ** 2) * (r_in - m2_in), 0.0) + extra_var
    r = ensemble_rates(m_mean + m_std * _GH_X, math.sqrt(var_t), theta, alpha, beta, reset, steps=steps)
    return float(np.sum(_GH_W * r)), float(np.sum(_GH_W * r * r))


@functools.lru_cache(maxsize=256)
def design_ratio(n: int, target: float, r_in: float, m2_in: float, alpha: float, beta: float,
                 reset: str = "zero", share: float = 1.0, steps: Optional[int] = None) -> float:
    """sigma_w / theta (zero-mean weights) for which :func:`predict_population` gives ``target``.

    ``share`` < 1 (recurrent layers): this connection carries that share of the input variance; the
    rest is assumed to come from the other afferent with the same statistics. Raises InputError when
    no weight scale reaches the target under this model.
    """
    if not 0.0 < target < 1.0:
        raise InputError(f"target rate must lie in (0, 1) spikes per step, got {target}")

    def rate(rho):
        return predict_population(n, 0.0, rho / math.sqrt(share), r_in, m2_in, 1.0, alpha, beta, reset,
                                  steps=steps)[0]

    k2 = sum_k2(alpha, beta)
    rho0 = 1.0 / math.sqrt(n * max(r_in, 1e-9) * (k2 if math.isfinite(k2) else 1e6))  # free sigma_V = theta
    lo, hi = rho0 / 64.0, rho0 * 64.0
    if rate(hi) < target:
        raise InputError(f"no weight scale reaches a rate of {target} spikes/step for this neuron "
                         f"(alpha={alpha:.4g}, beta={beta:.4g}, reset={reset}); lower target_rate")
    if rate(lo) > target:
        return lo
    # bisection kept: scipy's brentq lands on a different float, which moves the exponents/thresholds
    for _ in range(16):
        mid = math.sqrt(lo * hi)
        if rate(mid) < target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@functools.lru_cache(maxsize=256)
def design_ratio_chain(n: int, target: float, alpha: float, beta: float, reset: str = "zero",
                       share: float = 1.0, iters: int = 8, steps: Optional[int] = None) -> tuple:
    """Design ratio for a layer deep in a chain whose afferents fire at ``target``: the second moment of
    the presynaptic rates is iterated to its fixed point. Returns (ratio, m2)."""
    m2 = target ** 2
    rho = design_ratio(n, target, target, m2, alpha, beta, reset, share, steps)
    for _ in range(iters):
        _, m2_new = predict_population(n, 0.0, rho, target, m2, 1.0, alpha, beta, reset, steps=steps)
        m2_new = min(max(m2_new, target ** 2), target)
        if abs(m2_new - m2) < 0.01 * m2:
            break
        m2 = m2_new
        rho = design_ratio(n, target, target, m2, alpha, beta, reset, share, steps)
    return rho, m2
