"""Subtract-reset compensation: Loihi resets v to 0, so a graph trained with subtractive reset is run
with thresholds lowered per layer until the zero-reset network's spike counts best match it."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from snnhw.io.nir import NirModel
from snnhw.nir_import.measure import cosine
from snnhw.nir_import.reference import float_reference

#: Threshold multipliers tried per stage: 0.5, 0.525, ..., 1.0.
GRID = np.round(np.arange(0.5, 1.0001, 0.025), 4)


def compensate_subtract(model: NirModel, calib_x, *, grid=None) -> Tuple[List[float], List[float]]:
    """Per neuron stage, the threshold multiplier k that makes a zero-reset network best reproduce the
    subtract-reset reference (least mean squared error of the per-sample, per-neuron spike counts of
    that stage), chosen greedily stage by stage with the earlier stages already compensated. Returns
    (k per stage, count cosine reached per stage). Runs on the float reference only (cheap); the chip
    then uses thresholds k*theta.
    """
    grid = GRID if grid is None else np.asarray(grid)
    ref = float_reference(model, calib_x, reset="subtract")
    ks: List[float] = []
    cos: List[float] = []
    for j in range(len(ref.layer_spikes)):
        target = ref.layer_spikes[j].sum(axis=1)
        best = (np.inf, 1.0, 0.0)
        for kk in grid:
            trial = float_reference(model, calib_x, reset="zero", theta_scale=ks + [float(kk)], upto=j + 1)
            counts = trial.layer_spikes[j].sum(axis=1)
            err = float(np.mean((counts - target) ** 2))
            if err < best[0] - 1e-12:
                best = (err, float(kk), cosine(counts, target))
        ks.append(best[1])
        cos.append(best[2])
    return ks, cos
