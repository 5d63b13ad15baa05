"""Hardware targets: ``hardware_configs/<name>.toml`` loaded into a :class:`Target`.

A target says whether training is quantized (Loihi integers) or float, the legal ranges of every
chip parameter (``[ranges]``, which for ``loihi2`` must equal :data:`snnhw.loihi.RANGES`), resource
budgets (``[budget]``: neurons/synapses per core and chip, cores per chip, chips) and energy per
operation (``[energy]``, pJ). :meth:`Target.check_fit` compares a network's per-layer neurons and
synapses with the budget and raises :class:`TargetMisfit` (one line, with the numbers).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from snnhw.errors import InputError

try:
    import tomllib  # type: ignore[attr-defined]
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parent.parent / "hardware_configs"


class TargetMisfit(InputError):
    """The network does not fit the target's budget (one-line message with the numbers)."""


def _fmt(n: float) -> str:
    return f"{int(n):,}".replace(",", " ")


@dataclass
class LayerCost:
    """What one neuron layer needs: neurons and synapses (weights incl. recurrent ones)."""

    name: str
    neurons: int
    synapses: int


@dataclass
class Target:
    name: str
    quantized: bool
    description: str = ""
    ranges: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    bits: Dict[str, int] = field(default_factory=dict)
    budget: Dict = field(default_factory=dict)
    energy: Dict = field(default_factory=dict)
    training: Dict = field(default_factory=dict)
    path: str = ""

    def cores_needed(self, layer: LayerCost) -> int:
        """Cores a layer occupies: enough for its neurons and for its synapses (layers do not share cores)."""
        b = self.budget
        need = 1
        if b.get("neurons_per_core"):
            need = max(need, math.ceil(layer.neurons / b["neurons_per_core"]))
        if b.get("synapses_per_core"):
            need = max(need, math.ceil(layer.synapses / b["synapses_per_core"]))
        return need

    def check_fit(self, layers: Sequence[LayerCost]) -> Dict:
        """Raise :class:`TargetMisfit` unless the layers fit; return a summary (cores, neurons, synapses)."""
        b = self.budget
        total_n = sum(l.neurons for l in layers)
        total_s = sum(l.synapses for l in layers)
        if not b:
            return {"cores": None, "neurons": total_n, "synapses": total_s}
        chips = int(b.get("max_chips", 1))
        cores_avail = int(b.get("cores_per_chip", 0)) * chips
        for l in layers:
            if b.get("synapses_per_chip") and l.synapses > b["synapses_per_chip"] * chips:
                raise TargetMisfit(
                    f"target {self.name}: layer {l.name} needs {_fmt(l.synapses)} synapses; {chips} chip(s) hold "
                    f"{_fmt(b['synapses_per_chip'] * chips)} ({_fmt(b.get('synapses_per_core', 0))} per core)")
            if b.get("neurons_per_chip") and l.neurons > b["neurons_per_chip"] * chips:
                raise TargetMisfit(
                    f"target {self.name}: layer {l.name} needs {_fmt(l.neurons)} neurons; {chips} chip(s) hold "
                    f"{_fmt(b['neurons_per_chip'] * chips)} ({_fmt(b.get('neurons_per_core', 0))} per core)")
        cores = [self.cores_needed(l) for l in layers]
        if cores_avail and sum(cores) > cores_avail:
            worst = max(range(len(layers)), key=lambda i: cores[i])
            l = layers[worst]
            raise TargetMisfit(
                f"target {self.name}: the model needs {sum(cores)} cores but {chips} chip(s) have {cores_avail}; "
                f"largest: layer {l.name} with {_fmt(l.neurons)} neurons and {_fmt(l.synapses)} synapses "
                f"needs {cores[worst]} cores at {_fmt(b.get('neurons_per_core', 0))} neurons / "
                f"{_fmt(b.get('synapses_per_core', 0))} synapses per core")
        if b.get("neurons_per_chip") and total_n > b["neurons_per_chip"] * chips:
            raise TargetMisfit(f"target {self.name}: the model has {_fmt(total_n)} neurons; {chips} chip(s) hold "
                               f"{_fmt(b['neurons_per_chip'] * chips)}")
        if b.get("synapses_per_chip") and total_s > b["synapses_per_chip"] * chips:
            raise TargetMisfit(f"target {self.name}: the model has {_fmt(total_s)} synapses; {chips} chip(s) hold "
                               f"{_fmt(b['synapses_per_chip'] * chips)}")
        return {"cores": sum(cores), "neurons": total_n, "synapses": total_s}

    def energy_uJ(self, synops: float, neuron_updates: float) -> Optional[Dict]:
        """Energy estimate per inference (µJ) with its formula, or None for a target without figures."""
        e = self.energy
        if not e:
            return None
        uj = (synops * e["synop_pJ"] + neuron_updates * e["neuron_update_pJ"]) * 1e-6
        return {"value": uj,
                "formula": f"(synops * {e['synop_pJ']} pJ + neuron_updates * {e['neuron_update_pJ']} pJ) * 1e-6",
                "synops": synops, "neuron_updates": neuron_updates, "source": e.get("source", "")}


def available_targets() -> List[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """Load a target by name (``hardware_configs/<name>.toml``) or by path to a TOML file."""
    p = Path(name_or_path)
    if not (p.suffix == ".toml" and p.exists()):
        p = CONFIG_DIR / f"{name_or_path}.toml"
        if not p.exists():
            raise ValueError(f"unknown target '{name_or_path}'; choose one of {', '.join(available_targets())} "
                             f"or give a path to a .toml file")
    try:
        with open(p, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"target file {p}: {str(e).splitlines()[0]}") from None
    known = {"target", "ranges", "bits", "budget", "energy", "training"}
    bad = sorted(set(d) - known)
    if bad:
        raise ValueError(f"target file {p}: unknown section '{bad[0]}' (known: {', '.join(sorted(known))})")
    t = d.get("target", {})
    if "quantized" not in t:
        raise ValueError(f"target file {p}: [target] needs 'quantized = true|false'")
    ranges = {k: tuple(v) for k, v in d.get("ranges", {}).items()}
    return Target(name=t.get("name", p.stem), quantized=bool(t["quantized"]), description=t.get("description", ""),
                  ranges=ranges, bits=d.get("bits", {}), budget=d.get("budget", {}), energy=d.get("energy", {}),
                  training=d.get("training", {}), path=os.fspath(p))
