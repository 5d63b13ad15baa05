"""Surrogate derivatives of the spike function.

Each surrogate is a pure function ``f(x) -> dS/dx`` of the threshold-normalized distance
``x = (v - theta) / theta``; the neuron divides by ``theta`` to get ``dS/dv`` in state units. Shapes:

* ``arctan`` (default; snnTorch's ``ATan``): ``(alpha/2) / (1 + (pi/2 * alpha * x)**2)``, alpha = 2.
* ``fast_sigmoid`` (SuperSpike/Zenke; snnTorch's default slope 25): ``1 / (slope*|x| + 1)**2``.
* ``lavadl`` (lava-dl slayer's CUBA ``Spike.backward``): ``scale/(2 tau) * exp(-|x|/tau)`` with
  ``tau = 100 * tau_grad`` and ``scale = 0.1 * scale_grad`` (slayer's TAU_RHO_MULT, SCALE_RHO_MULT).
* ``triangle``: ``max(0, 1 - |x|/width) / width`` (Bellec et al.'s piecewise-linear pseudo-derivative).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Surrogate:
    """A surrogate spike derivative: ``name`` selects the shape; the other fields are its parameters."""

    name: str = "arctan"
    alpha: float = 2.0
    slope: float = 25.0
    tau_grad: float = 1.0
    scale_grad: float = 1.0
    width: float = 0.5

    def __post_init__(self):
        if self.name not in SURROGATES:
            raise ValueError(f"unknown surrogate '{self.name}'; choose one of {', '.join(SURROGATES)}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return SURROGATES[self.name](self, x)


def _arctan(p: Surrogate, x):
    return (p.alpha / 2) / (1 + (math.pi / 2 * p.alpha * x) ** 2)


def _fast_sigmoid(p: Surrogate, x):
    return 1.0 / (p.slope * x.abs() + 1.0) ** 2


def _lavadl(p: Surrogate, x):
    tau = 100.0 * p.tau_grad
    scale = 0.1 * p.scale_grad
    return scale / (2 * tau) * torch.exp(-x.abs() / tau)


def _triangle(p: Surrogate, x):
    return (1 - x.abs() / p.width).clamp(min=0) / p.width


SURROGATES = {"arctan": _arctan, "fast_sigmoid": _fast_sigmoid, "lavadl": _lavadl, "triangle": _triangle}
