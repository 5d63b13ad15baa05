"""The discretization snnhw writes and, by default, reads: NIR's continuous neurons <-> per-step factors.

Forward Euler with the snnTorch convention, time in **seconds**, ``dt`` (default 1e-4 s) stored in
``graph.metadata["dt"]``. A CubaLIF node then means, per step ``t``::

    I[t] = alpha * I[t-1] + g_syn * in[t]            alpha = 1 - dt / tau_syn,  g_syn = dt * w_in / tau_syn
    v[t] = beta  * v[t-1] + (1 - beta) * v_leak + g_mem * I[t]
                                                     beta  = 1 - dt / tau_mem,  g_mem = dt * r / tau_mem
    s[t] = v[t] > v_threshold ;  v[t] = v_reset where s[t]

(LIF: no synaptic filter, ``I = in``, ``g_mem = dt*r/tau``; IF: ``beta = 1``, ``g_mem = dt*r``).
A Loihi layer in weight units (``u/64``, ``v/64``; :mod:`snnhw.loihi`) is exactly this with
``alpha = (4096 - i_decay)/4096``, ``beta = (4096 - v_decay)/4096``, ``tau_syn = dt*4096/i_decay``,
``w_in = tau_syn/dt``, ``tau_mem = dt*4096/v_decay``, ``r = tau_mem/dt`` (both gains exactly 1),
``v_threshold = vth_mant``, weights ``mantissa * 2**weight_exp``, and the bias ``B/64`` per step
carried by ``v_leak = (B/64) * tau_mem/dt`` (exact under Euler). A decay of 0 (no leak) is written as
the finite time constant ``NO_LEAK_STEPS * dt`` (so that every framework's ``dt/tau`` and
``r*dt/tau`` stay finite); readers map ``dt/tau < 1e-20`` back to decay 0.

snnhw always writes CubaLIF (Norse ignores ``r`` on LIF nodes; with ``i_decay = 4096`` CubaLIF is a
LIF: ``tau_syn = dt``, ``w_in = 1``). Where ``i_decay = 4096`` a bias goes into the Affine's bias
(exact, and snnTorch-compatible) instead of ``v_leak``.

Timing: NIR has no synaptic delay; the graph means the same-step (snnTorch/NIRTorch) convention.
Loihi's Dense sends its sum one step later, so on the chip every synapse node adds one step of
latency; this is recorded as ``snnhw.synapse_delay_steps = 1`` (graph and synapse metadata), not as
``nir.Delay`` nodes (which snnTorch and Norse cannot import). Recurrent edges act with the previous
step's spikes in both conventions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.io.nir.schema import NO_LEAK_RATIO, NO_LEAK_STEPS, NIRFormatError, param


def tau_for_decay(decay, dt: float, shape: Tuple[int, ...]) -> np.ndarray:
    """Time constant [s] (float64, ``shape``) of a netx-unit decay: factor (4096-d)/4096 per step dt."""
    d = float(decay)
    tau = dt * NO_LEAK_STEPS if d == 0 else dt * loihi.DECAY_UNITY / d
    return np.full(shape, tau, dtype=np.float64)


@dataclass
class NeuronDyn:
    """Per-neuron Euler coefficients of one population (float64 arrays, flattened C-order, NIR units).

    ``alpha``/``beta``: current/voltage decay factors per step; ``g_syn``: input gain into I;
    ``g_mem``: gain of I into v; ``leak``: ``(1-beta)*v_leak`` added to v per step; ``theta``:
    threshold; ``v_reset``: reset value; ``node_type``: the NIR class.
    """

    alpha: np.ndarray
    beta: np.ndarray
    g_syn: np.ndarray
    g_mem: np.ndarray
    leak: np.ndarray
    theta: np.ndarray
    v_reset: np.ndarray
    node_type: str
    tau_syn: Optional[np.ndarray] = None  # seconds, as written (None for LIF/IF)
    tau_mem: Optional[np.ndarray] = None  # seconds (None for IF)
    spiking: bool = True  # False: LI/CubaLI, a readout whose output is v (theta = inf)

    @property
    def n(self) -> int:
        return int(self.theta.size)


def _gain(x: np.ndarray, tau: np.ndarray, dt: float) -> np.ndarray:
    """``dt * x / tau``; 1 exactly where it is 1 to float precision (the snnTorch convention)."""
    g = dt * x / tau
    return np.where(np.abs(g - 1.0) < 1e-6, 1.0, g)


class _Node:
    """Reads one neuron node's parameters as float64 vectors of its ``n`` neurons."""

    def __init__(self, node, name: str, n: int, dt: float, shape: Optional[Tuple[int, ...]] = None):
        self.node, self.name, self.n, self.dt = node, name, n, dt
        self.shape = tuple(shape) if shape is not None else (n,)

    def full(self, pname: str) -> np.ndarray:
        arr = param(self.node, pname, self.name)
        if arr.size == 1:  # a scalar (shape [] or [1]): every neuron
            arr = np.full(self.n, float(arr.ravel()[0]))
        elif arr.size != self.n and arr.ndim <= len(self.shape):
            try:  # broadcastable, e.g. one value per channel [C, 1, 1] of a (C, H, W) population
                arr = np.broadcast_to(arr, self.shape)
            except ValueError:
                pass
        if arr.size != self.n:
            raise NIRFormatError(f"node '{self.name}': parameter '{pname}' has {arr.size} values, "
                                 f"the layer has {self.n} neurons (shape mismatch)")
        return arr.ravel().astype(np.float64)

    def optional(self, pname: str, default: float) -> np.ndarray:
        if getattr(self.node, pname, None) is None:
            return np.full(self.n, default)
        return self.full(pname)

    def ratio(self, tau: np.ndarray, what: str) -> np.ndarray:
        """``dt / tau`` (0 below :data:`NO_LEAK_RATIO`), refusing ``tau < dt``."""
        if np.any(tau <= 0):
            raise NIRFormatError(f"node '{self.name}': {what} must be positive")
        rr = self.dt / tau
        if np.any(rr > 1 + 1e-9):
            raise NIRFormatError(f"node '{self.name}': {what} = {tau.min():.3g} s is shorter than dt = "
                                 f"{self.dt:.3g} s (forward Euler unstable); pass a smaller --dt")
        return np.where(rr < NO_LEAK_RATIO, 0.0, np.minimum(rr, 1.0))


def _factors(p: "_Node", tau: np.ndarray, what: str, gain_x: np.ndarray, rule: Tuple[str, str]):
    """(decay factor, input gain) per neuron for ``tau`` [s] under ``rule`` = (decay, gain)
    (:mod:`snnhw.io.nir.convention`); ``gain_x``: r (or w_in)."""
    decay, gain = rule
    if decay == "exp":
        if np.any(tau <= 0):
            raise NIRFormatError(f"node '{p.name}': {what} must be positive")
        x = p.dt / tau
        x = np.where(x < NO_LEAK_RATIO, 0.0, x)
        f = np.exp(-x)
    else:
        x = p.ratio(tau, what)
        f = 1 - x
    if gain == "exp":
        g = (1 - f) * gain_x
    elif gain == "unit":
        g = np.asarray(gain_x, dtype=np.float64)
    elif gain == "one":
        g = np.ones_like(f)
    elif gain == "decay":  # the input added before the decay (Rockpool's current: I = f (I + x))
        g = f * gain_x
    else:
        g = _gain(gain_x, tau, p.dt)
    return f, g, 1 - f


def neuron_dyn(node, name: str, n: int, dt: float, rule: Tuple[str, str] = ("euler", "nir"),
               shape: Optional[Tuple[int, ...]] = None) -> NeuronDyn:
    """Per-step coefficients of a CubaLIF/LIF/IF/LI/CubaLI/Threshold node of ``n`` neurons at step ``dt``
    (module docstring; ``rule``: the source's (decay, gain) rule, :mod:`snnhw.io.nir.convention`).
    LI and CubaLI never fire (``theta = inf``, ``spiking`` False); Threshold is a memoryless
    population (``beta = 0``: ``v = input``) spiking where ``v > threshold``."""
    t = type(node).__name__
    p = _Node(node, name, n, dt, shape)
    if t == "Threshold":
        return NeuronDyn(alpha=np.zeros(n), beta=np.zeros(n), g_syn=np.ones(n), g_mem=np.ones(n), leak=np.zeros(n),
                         theta=p.full("threshold"), v_reset=np.zeros(n), node_type=t)
    readout = t in ("LI", "CubaLI")
    theta = np.full(n, np.inf) if readout else p.full("v_threshold")
    v_reset = np.zeros(n) if readout else p.optional("v_reset", 0.0)
    r = p.full("r")
    if t in ("CubaLIF", "CubaLI"):
        tau_syn, tau_mem = p.full("tau_syn"), p.full("tau_mem")
        syn_rule = (rule[0], rule[1])  # (decay, current gain[, voltage gain])
        mem_rule = (rule[0], rule[2] if len(rule) > 2 else rule[1])
        alpha, g_syn, _ = _factors(p, tau_syn, "tau_syn", p.optional("w_in", 1.0), syn_rule)
        beta, g_mem, km = _factors(p, tau_mem, "tau_mem", r, mem_rule)
        return NeuronDyn(alpha=alpha, beta=beta, g_syn=g_syn, g_mem=g_mem, leak=km * p.full("v_leak"), theta=theta,
                         v_reset=v_reset, node_type=t, tau_syn=tau_syn, tau_mem=tau_mem, spiking=not readout)
    if t in ("LIF", "LI"):
        tau = p.full("tau")
        beta, g_mem, km = _factors(p, tau, "tau", r, (rule[0], rule[-1]))
        return NeuronDyn(alpha=np.zeros(n), beta=beta, g_syn=np.ones(n), g_mem=g_mem, leak=km * p.full("v_leak"),
                         theta=theta, v_reset=v_reset, node_type=t, tau_mem=tau, spiking=not readout)
    # IF: dv/dt = R I
    g = np.ones(n) if rule[1] == "one" else r * dt
    return NeuronDyn(alpha=np.zeros(n), beta=np.ones(n), g_syn=np.ones(n), g_mem=g, leak=np.zeros(n),
                     theta=theta, v_reset=v_reset, node_type=t)
