"""Running an imported spec: on Lava's CPU simulator (fixed_pt) when lava-nc is installed, else on
snnhw's own core, which is bit-exact with Lava fixed_pt (the backend string says which ran); and on
snnhw's own simulator (the float twin for a float spec)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from snnhw.backends import lava_runtime
from snnhw.nir_import.reference import one_thread
from snnhw.spec import NetworkSpec

#: The backend string when lava-nc is absent and the chip side runs on snnhw's core.
CORE_BACKEND = (f"snnhw-exact-core (lava-nc not installed: ran on snnhw's core, bit-exact with Lava fixed_pt; "
                f"for Lava: {lava_runtime.INSTALL_HINT})")


def run_chip(spec: NetworkSpec, x: np.ndarray) -> Tuple[List[np.ndarray], str]:
    """Per-neuron-layer spikes [B, T, n] of ``spec`` on Lava's CPU simulator (fixed_pt), or on the
    bit-exact torch core when lava-nc is absent (the backend string says which)."""
    if lava_runtime.lava_available():
        from snnhw.backends.lava import run_lava

        res = run_lava(spec, x, hardware=False)
        return [np.asarray(s) for s in res.layer_spikes], res.backend
    from snnhw.core.network import simulate

    with one_thread():
        r = simulate(spec, x)
    return [s.numpy().astype(np.int64) for s in r.layer_spikes], CORE_BACKEND


def run_twin(spec: NetworkSpec, x: np.ndarray) -> List[np.ndarray]:
    """Per-layer spikes of ``spec`` on snnhw's own simulator (exact for quantized, float twin otherwise)."""
    from snnhw.core.network import simulate

    with one_thread():
        r = simulate(spec, x)
    return [s.numpy() for s in r.layer_spikes]
