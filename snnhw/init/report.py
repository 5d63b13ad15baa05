"""What :func:`snnhw.init.init_spec` reports: one :class:`LayerReport` per neuron layer in an :class:`InitReport`.

Units: sigma_* in *weight units* (v / 64; a neuron's threshold is ``vth_mant``), rates in spikes per
neuron per step.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np


@dataclass
class LayerReport:
    """What the init did to one layer. sigma_* in weight units (v/64; threshold = vth_mant)."""

    name: str
    kind: str
    fan_in: int
    weight_exp: int
    vth_mant: float
    sigma_w_float: float  # std the formula asked for
    sigma_w_quant: float  # std of the weights actually written (mantissa * 2**e)
    zero_fraction: float  # fraction of written weights equal to 0
    zero_fraction_predicted: float  # erf(D / (2 sqrt 2 sigma)) for the grid step D (0 on a float spec)
    sigma_over_step: float  # sigma_w_float / grid step (inf on a float spec)
    rate_in: float  # presynaptic rate the design assumed (spikes/step)
    predicted_rate: float  # Gaussian+reset prediction from the written weights (spikes/step)
    measured_rate: Optional[float] = None  # exact fixed-point forward on the calibration batch
    rec_exp: Optional[int] = None
    sigma_rec_float: Optional[float] = None
    sigma_rec_quant: Optional[float] = None
    rec_zero_fraction: Optional[float] = None


@dataclass
class InitReport:
    """The run's settings (method, seed, rates, calibration batch shape [B, T, n_in]) and its layers."""

    method: str
    seed: int
    quantized: bool
    target_rate: float
    input_rate: float
    calibrated: bool
    calib_shape: Optional[List[int]]
    options: Dict = field(default_factory=dict)
    layers: List[LayerReport] = field(default_factory=list)

    def to_dict(self) -> Dict:
        """Plain JSON types; NaN becomes None and an infinity the string "inf"/"-inf" (a pool's
        ``sigma_over_step``), as the training report has always stored them."""
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if isinstance(v, (np.floating, np.integer)):
                return clean(v.item())
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean(asdict(self))

    def table(self) -> str:
        """A plain-text table of the per-layer report."""
        head = f"{'layer':<12}{'exp':>4}{'vth':>8}{'sigma_f':>10}{'sigma_q':>10}{'zero%':>7}{'pred':>8}{'meas':>8}"
        rows = [head]
        for l in self.layers:
            meas = "-" if l.measured_rate is None else f"{l.measured_rate:.3f}"
            rows.append(f"{l.name:<12}{l.weight_exp:>4}{l.vth_mant:>8.4g}{l.sigma_w_float:>10.4g}"
                        f"{l.sigma_w_quant:>10.4g}{100 * l.zero_fraction:>7.1f}{l.predicted_rate:>8.3f}{meas:>8}")
        return "\n".join(rows)
