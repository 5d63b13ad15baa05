"""Hardware targets: ``hardware_configs/<name>.toml`` loaded into a :class:`Target`.

A target file has three tables, each a dataclass below (keys, types and ranges checked by
:func:`snnhw.config.parse_table`): ``[target]`` (name, description, ``quantized``: train on Loihi
integers or in float), ``[budget]`` (neurons/synapses per core and chip, cores per chip, chips; absent
or empty = no limits) and ``[energy]`` (pJ per synaptic operation and per neuron update; absent = no
estimate). The chip's number formats (ranges, bit widths) are not configurable: they are the rules of
:mod:`snnhw.loihi` (:data:`snnhw.loihi.RANGES`). :meth:`Target.check_fit` compares a network's
per-layer neurons and synapses with the budget and raises :class:`TargetMisfit` (one line, with the
numbers).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

from snnhw.config import option, parse_sections, read_toml
from snnhw.errors import InputError
from snnhw.resources import data_dir

CONFIG_DIR = data_dir("hardware_configs")

#: Sections older target files had; they were never read (the chip's formats live in snnhw.loihi).
RETIRED_SECTIONS = ("ranges", "bits", "training")


class TargetError(InputError):
    """A target file is unknown or malformed; the message is one line naming the file and key."""


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
class FitSummary:
    """What a network occupies: cores (None on a target without a budget), neurons, synapses."""

    cores: Optional[int]
    neurons: int
    synapses: int


@dataclass
class EnergyEstimate:
    """Energy per inference (µJ) = ``(synops * synop_pJ + neuron_updates * neuron_update_pJ) * 1e-6``."""

    value: float
    formula: str
    synops: float
    neuron_updates: float
    source: str


@dataclass
class TargetSection:
    """``[target]``."""

    quantized: Optional[bool] = option(None, required=True)
    name: str = ""
    description: str = ""


@dataclass
class Budget:
    """``[budget]``: resource limits (0 = no limit of that kind)."""

    cores_per_chip: int = option(0, lo=0)
    neurons_per_chip: int = option(0, lo=0)
    synapses_per_chip: int = option(0, lo=0)
    neurons_per_core: int = option(0, lo=0)
    synapses_per_core: int = option(0, lo=0)
    max_chips: int = option(1, lo=1)
    source: str = ""


@dataclass
class EnergyTable:
    """``[energy]``: energy per operation in pJ, with where the figures come from."""

    synop_pJ: float = option(None, lo=0, required=True)
    neuron_update_pJ: float = option(None, lo=0, required=True)
    source: str = ""


SECTIONS = {"target": TargetSection, "budget": Budget, "energy": EnergyTable}


@dataclass
class Target:
    name: str
    quantized: bool
    description: str = ""
    budget: Optional[Budget] = None
    energy: Optional[EnergyTable] = None
    path: str = ""

    def cores_needed(self, layer: LayerCost) -> int:
        """Cores a layer occupies: enough for its neurons and for its synapses (layers do not share cores)."""
        b = self.budget
        need = 1
        if b is None:
            return need
        if b.neurons_per_core:
            need = max(need, math.ceil(layer.neurons / b.neurons_per_core))
        if b.synapses_per_core:
            need = max(need, math.ceil(layer.synapses / b.synapses_per_core))
        return need

    def _check_layer(self, layer: LayerCost) -> None:
        b, chips = self.budget, self.budget.max_chips
        if b.synapses_per_chip and layer.synapses > b.synapses_per_chip * chips:
            raise TargetMisfit(
                f"target {self.name}: layer {layer.name} needs {_fmt(layer.synapses)} synapses; {chips} chip(s) "
                f"hold {_fmt(b.synapses_per_chip * chips)} ({_fmt(b.synapses_per_core)} per core)")
        if b.neurons_per_chip and layer.neurons > b.neurons_per_chip * chips:
            raise TargetMisfit(
                f"target {self.name}: layer {layer.name} needs {_fmt(layer.neurons)} neurons; {chips} chip(s) "
                f"hold {_fmt(b.neurons_per_chip * chips)} ({_fmt(b.neurons_per_core)} per core)")

    def check_fit(self, layers: Sequence[LayerCost]) -> FitSummary:
        """Raise :class:`TargetMisfit` unless the layers fit; return what they occupy."""
        b = self.budget
        total_n = sum(l.neurons for l in layers)
        total_s = sum(l.synapses for l in layers)
        if b is None:
            return FitSummary(None, total_n, total_s)
        chips = b.max_chips
        cores_avail = b.cores_per_chip * chips
        for l in layers:
            self._check_layer(l)
        cores = [self.cores_needed(l) for l in layers]
        if cores_avail and sum(cores) > cores_avail:
            worst = max(range(len(layers)), key=lambda i: cores[i])
            l = layers[worst]
            raise TargetMisfit(
                f"target {self.name}: the model needs {sum(cores)} cores but {chips} chip(s) have {cores_avail}; "
                f"largest: layer {l.name} with {_fmt(l.neurons)} neurons and {_fmt(l.synapses)} synapses "
                f"needs {cores[worst]} cores at {_fmt(b.neurons_per_core)} neurons / "
                f"{_fmt(b.synapses_per_core)} synapses per core")
        if b.neurons_per_chip and total_n > b.neurons_per_chip * chips:
            raise TargetMisfit(f"target {self.name}: the model has {_fmt(total_n)} neurons; {chips} chip(s) hold "
                               f"{_fmt(b.neurons_per_chip * chips)}")
        if b.synapses_per_chip and total_s > b.synapses_per_chip * chips:
            raise TargetMisfit(f"target {self.name}: the model has {_fmt(total_s)} synapses; {chips} chip(s) hold "
                               f"{_fmt(b.synapses_per_chip * chips)}")
        return FitSummary(sum(cores), total_n, total_s)

    def energy_uJ(self, synops: float, neuron_updates: float) -> Optional[EnergyEstimate]:
        """Energy estimate per inference (µJ) with its formula, or None for a target without figures."""
        e = self.energy
        if e is None:
            return None
        uj = (synops * e.synop_pJ + neuron_updates * e.neuron_update_pJ) * 1e-6
        return EnergyEstimate(value=uj, formula=f"(synops * {e.synop_pJ} pJ + neuron_updates * "
                                                f"{e.neuron_update_pJ} pJ) * 1e-6",
                              synops=synops, neuron_updates=neuron_updates, source=e.source)


def available_targets() -> List[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """Load a target by name (``hardware_configs/<name>.toml``) or by path to a TOML file."""
    p, d = read_toml(name_or_path, CONFIG_DIR, "target", TargetError)
    where = f"target {p}"
    for old in RETIRED_SECTIONS:
        if old in d:
            raise TargetError(f"{where}: section '[{old}]' is not read: the chip's number formats are fixed "
                              f"in snnhw.loihi (RANGES); remove it")
    s = parse_sections(d, SECTIONS, where, TargetError)
    if "target" not in s:
        raise TargetError(f"{where}: [target] needs 'quantized = true|false'")
    t = s["target"]
    budget = s["budget"] if d.get("budget") else None  # an empty [budget] table: no limits
    return Target(name=t.name or p.stem, quantized=t.quantized, description=t.description, budget=budget,
                  energy=s.get("energy"), path=os.fspath(p))
