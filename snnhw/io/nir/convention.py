"""Which framework wrote a NIR graph, and what that means for reading it: dt, the reset the network was
trained with, and how a neuron's continuous parameters become per-step factors.

NIR stores no dt, no reset mode (only ``v_reset``) and no discretization, and every exporter fills
the gap its own way (/work/shared/reference/nir_and_peers.md §1.3, §2.1, and each framework's
``to_nir``). ``--from NAME`` names the source; without it the graph is inspected
(:func:`detect`): snnhw's own metadata, then parameter patterns that only one exporter writes. What
was used and why is recorded in the report (``convention``).

Per step, with ``x = dt/tau`` of a population, the voltage decays by ``beta`` and the input enters
with gain ``g`` (likewise ``alpha``/``g_syn`` for the current of CubaLIF/CubaLI; a rule
``(decay, current gain, voltage gain)`` sets the two gains separately):

============  ===============================  ====================================================
decay         ``beta``                         used by
============  ===============================  ====================================================
euler         ``1 - x``                        NIR paper, snnTorch, Norse, Spyx, snnhw
exp           ``exp(-x)``                      Sinabs (``alpha = exp(-1/tau)``), Rockpool
============  ===============================  ====================================================

============  ===============================  ====================================================
gain          ``g``                            used by
============  ===============================  ====================================================
nir           ``x * r``                        the NIR equations under forward Euler (snnTorch: 1)
exp           ``(1 - exp(-x)) * r``            Sinabs LIF (``norm_input=True``, its default)
unit          ``r``                            Sinabs ExpLeak/LI (``norm_input=False``, its default)
one           ``1``                            Spyx (its LIF is ``V = beta V + x``; it exports
                                               ``r = beta`` and ignores ``r`` on import); Norse's and
                                               Rockpool's current into v
decay         ``exp(-x) * w_in``               Rockpool's current (input added before the decay)
============  ===============================  ====================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from snnhw.errors import InputError


@dataclass(frozen=True)
class Convention:
    """How one framework's graphs are read: ``dt`` [s or steps] (None: the graph's metadata, else
    1e-4 s), the reset its neurons use, and per node type the (decay, gain) rule (module docstring)."""

    name: str
    dt: Optional[float]
    reset: str
    rules: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    note: str = ""

    def rule(self, node_type: str) -> Tuple[str, str]:
        return self.rules.get(node_type, ("euler", "nir"))


CONVENTIONS: Dict[str, Convention] = {
    "nir": Convention("nir", None, "zero", note="NIR's equations, forward Euler; dt from the graph metadata, "
                                                "else 1e-4 s; reset to v_reset"),
    "snntorch": Convention("snntorch", 1e-4, "subtract-undecayed",
                           note="snnTorch fixes dt = 1e-4 s and writes v_reset = 0 whatever its reset_mechanism; "
                                "its default (Leaky/Synaptic) is 'subtract', which takes theta off the next "
                                "update after the decay (snnhw's 'subtract-undecayed')"),
    "norse": Convention("norse", None, "zero",
                        rules={"CubaLIF": ("euler", "one", "nir"), "CubaLI": ("euler", "one", "nir")},
                        note="Norse's LIFCell adds its input to the current with gain 1 (w_in = 1 written, not "
                             "dt*w_in/tau_syn) and resets to v_reset; dt = 1e-3 s (its default), except that "
                             "Norse 1.1.0's to_nir writes tau = dt*tau (tau < 1e-3 s in the file): such a "
                             "file is read at dt = 1e-6 s, which gives Norse's own factors dt/tau"),
    "sinabs": Convention("sinabs", 1.0, "subtract",
                         rules={"LIF": ("exp", "exp"), "CubaLIF": ("exp", "exp"), "LI": ("exp", "unit"),
                                "CubaLI": ("exp", "unit")},
                         note="Sinabs writes tau in time steps (dt = 1); IAF/LIF reset by subtracting the "
                              "threshold (MembraneSubtract); alpha = exp(-1/tau); LIF input gain 1 - alpha "
                              "(norm_input=True), ExpLeak/LI gain 1 (norm_input=False)"),
    "rockpool": Convention("rockpool", None, "subtract",
                           rules={"CubaLIF": ("exp", "decay", "one"), "LIF": ("exp", "nir"), "LI": ("exp", "nir"),
                                  "CubaLI": ("exp", "decay", "one")},
                           note="Rockpool writes r = tau*exp(-dt/tau)/dt and stores no dt: dt is solved from r and "
                                "tau; LIFTorch adds its input to the current before the decay "
                                "(I = exp(-dt/tau_syn) (I + x)), adds I to v with gain 1 (v = exp(-dt/tau_mem) v + I) "
                                "and subtracts the threshold at a spike"),
    "spyx": Convention("spyx", 1.0, "subtract",
                       rules={"LIF": ("euler", "one"), "CubaLIF": ("euler", "one"), "IF": ("euler", "one"),
                              "LI": ("euler", "one"), "CubaLI": ("euler", "one")},
                       note="Spyx exports with dt = 1, tau = 1/(1-beta) and r = beta; its LIF is V = beta V + x "
                            "(input gain 1) with subtractive reset"),
}
SOURCES = tuple(CONVENTIONS)


def get(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise InputError(f"--from must be one of {', '.join(SOURCES)}, not '{name}'")
    return CONVENTIONS[name]


def _vals(node, pname: str) -> Optional[np.ndarray]:
    v = getattr(node, pname, None)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return a if a.size and np.all(np.isfinite(a)) else None


def rockpool_dt(nodes: Dict[str, Any]) -> Optional[float]:
    """dt solved from Rockpool's ``r = tau*exp(-dt/tau)/dt`` (``r*x = exp(-x)``, ``x = dt/tau``), if every
    leaky node agrees on it to 1e-6 (None otherwise)."""
    dts = []
    for node in nodes.values():
        t = type(node).__name__
        tau = _vals(node, "tau_mem" if t in ("CubaLIF", "CubaLI") else "tau")
        r = _vals(node, "r")
        if t not in ("LIF", "CubaLIF", "LI", "CubaLI") or tau is None or r is None or np.any(r <= 0):
            continue
        x = np.full(np.broadcast(tau, r).shape, 0.5)
        for _ in range(60):  # Newton on f(x) = r x - exp(-x)
            x = x - (r * x - np.exp(-x)) / (r + np.exp(-x))
        dts.append(np.broadcast_to(tau, x.shape) * x)
    if not dts:
        return None
    d = np.concatenate([np.ravel(a) for a in dts])
    if np.any(d <= 0) or np.ptp(d) > 1e-6 * np.max(d):
        return None
    return float(np.median(d))


def _pattern(nodes: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """(source, reason) from parameter patterns that only one exporter writes, else None."""
    types = {type(n).__name__ for n in nodes.values()}
    leaky = [n for n in nodes.values() if type(n).__name__ in ("LIF", "LI", "CubaLIF", "CubaLI")]
    taus = [_vals(n, "tau_mem" if type(n).__name__.startswith("Cuba") else "tau") for n in leaky]
    rs = [_vals(n, "r") for n in leaky]
    if leaky and all(t is not None and r is not None for t, r in zip(taus, rs)):
        if all(np.allclose(r * 1e-4 / t, 1.0, rtol=1e-5) for t, r in zip(taus, rs)):
            return "snntorch", "r = tau/dt with dt = 1e-4 s on every leaky node (snnTorch's export)"
        if all(np.all(t >= 1) and np.allclose(r, 1.0) for t, r in zip(taus, rs)):
            return "sinabs", "r = 1 and tau >= 1 (time steps, no dt) on every leaky node (Sinabs' export)"
        if all(np.allclose(r, 1 - 1 / t, rtol=1e-5) and np.all(t > 1) for t, r in zip(taus, rs)):
            return "spyx", "r = 1 - 1/tau (Spyx writes r = beta with dt = 1)"
        if len(leaky) >= 2 and rockpool_dt(nodes) is not None and not all(np.allclose(r, 1.0) for r in rs):
            return "rockpool", "r = tau*exp(-dt/tau)/dt with one dt on every leaky node (Rockpool's export)"
    cubas = [n for n in leaky if type(n).__name__ == "CubaLIF"]
    if cubas and len(cubas) == len(leaky) and all(
            _vals(n, "r") is not None and np.allclose(_vals(n, "r"), 1.0) and _vals(n, "w_in") is not None
            and np.allclose(_vals(n, "w_in"), 1.0) and np.all(_vals(n, "tau_mem") < 1) for n in cubas):
        return "norse", "CubaLIF nodes with r = 1 and w_in = 1, tau in seconds (Norse's export)"
    if "IF" in types and not leaky:
        ifs = [n for n in nodes.values() if type(n).__name__ == "IF"]
        if all(_vals(n, "r") is not None and np.allclose(_vals(n, "r"), 1.0) for n in ifs) and \
                not any(type(n).__name__ == "Delay" for n in nodes.values()):
            return "sinabs", "IF nodes with r = 1 and no leaky node (Sinabs' IAF export; dt = 1 step)"
    return None


def detect(nodes: Dict[str, Any], gmeta: Dict[str, Any]) -> Tuple[str, str]:
    """(source, reason) for a flattened graph's ``nodes`` and graph metadata ``gmeta``."""
    if any(str(k).startswith("snnhw.") for k in gmeta):
        return "nir", "snnhw metadata (snnhw writes NIR's Euler convention with dt in the metadata)"
    found = _pattern(nodes)
    if found is not None:
        return found
    return "nir", "no exporter pattern recognised: NIR's own convention (--from names the source)"


NORSE_DT = 1e-3  # [s] norse.torch.from_nir's default
NORSE_BUGGY_DT = 1e-6  # [s] the dt at which Norse 1.1.0's tau = dt*tau files give Norse's own factors


def norse_dt(nodes: Dict[str, Any]) -> Tuple[float, str]:
    """(dt, why) for a Norse file: 1e-3 s, or 1e-6 s when its time constants are below 1e-3 s (module docstring)."""
    taus = [_vals(n, p) for n in nodes.values() for p in ("tau", "tau_mem", "tau_syn")
            if type(n).__name__ in ("LIF", "LI", "CubaLIF", "CubaLI")]
    taus = [t for t in taus if t is not None]
    if taus and min(float(t.min()) for t in taus) < NORSE_DT:
        return NORSE_BUGGY_DT, ("Norse 1.1.0 writes tau = dt*tau (taus below Norse's dt = 1e-3 s): read at "
                                "dt = 1e-6 s")
    return NORSE_DT, "norse convention (from_nir's default)"
