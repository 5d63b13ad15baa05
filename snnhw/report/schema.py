"""The schema of a run's ``report.json`` (format ``snnhw-report-1``), as dataclasses.

:class:`RunReport` is what ``snnhw train`` measures; :meth:`RunReport.to_dict` is what
``report.json`` holds (written with sorted keys). Accuracies are fractions in [0, 1], firing rates
spikes per neuron per time step, times wall-clock seconds; ``None`` (JSON ``null``) marks what was not
measured (no quantized model on the float target, no Lava run). ``times`` is the only part that
differs between two runs of the same recipe, seed and machine.

``verification`` names what checked the trained network (:data:`VERIFICATIONS`): Lava's CPU
simulator or Loihi 2 running the spec against snnhw's core (``agreement``), lava-dl's netx loader on
Lava running ``model.net``, or — without Lava — the written ``model.net`` / ``model.nir`` re-read
through snnhw's readers and re-simulated on snnhw's core (``artifact_roundtrip``, one entry per file).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from snnhw.targets import EnergyEstimate, FitSummary

REPORT_FORMAT = "snnhw-report-1"
CLASS_DECISION = ("the output neuron with the most spikes over the sample's time steps; ties go to the "
                  "lowest class index; a silent output layer predicts class 0")
#: The class decision of a voltage readout (recipe ``model.readout = "voltage"``).
CLASS_DECISION_VOLTAGE = ("the output neuron with the highest mean membrane voltage v (after the reset, as Lava "
                          "reads it) over the sample's time steps; the output layer is a LIF that never fires "
                          "(threshold mantissa snnhw.loihi.READOUT_VTH_MANT); ties go to the lowest class index")
CLASS_DECISIONS = {"spikes": CLASS_DECISION, "voltage": CLASS_DECISION_VOLTAGE}


#: ``verification`` values: snnhw's core vs Lava's CPU simulator (fixed_pt) / vs Loihi 2 (lava-loihi) /
#: model.net through lava-dl's netx on Lava's CPU simulator / artifact round trip on snnhw's core.
VERIFY_LAVA_CPU, VERIFY_LOIHI2, VERIFY_NETX, VERIFY_ROUNDTRIP = ("lava-cpu-sim", "loihi2-hw", "lava-dl-netx-cpu-sim",
                                                                 "artifact-roundtrip")
VERIFICATIONS: Tuple[str, ...] = (VERIFY_LAVA_CPU, VERIFY_LOIHI2, VERIFY_NETX, VERIFY_ROUNDTRIP)


def _omit_if_none():
    """A field left out of ``report.json`` when it is ``None`` (instead of written as ``null``)."""
    return field(default=None, metadata={"omit_if_none": True})


@dataclass
class ByModel:
    """One figure per model: the float twin (shadow weights, float CUBA LIF), the quantized core
    (snnhw's Loihi-exact simulation) and Lava. ``None`` where that model did not run."""

    float: Any = None
    quantized: Any = None
    lava: Any = None


@dataclass
class RecipeSummary:
    name: str
    description: str
    resolved: Dict  # the whole recipe with defaults filled in (snnhw.train.recipe.Recipe.to_dict)


@dataclass
class DatasetSummary:
    name: str
    train: int  # training samples (without the validation samples)
    test: int  # test samples
    steps: int  # encoded time steps per sample
    pad_steps: int  # silent steps appended
    encoding: str
    inputs: int  # input channels (features x encoder levels)
    validation: int = 0  # validation samples carved from the training split (recipe data.val_fraction)


@dataclass
class Agreement:
    """snnhw's core vs Lava on the verification samples."""

    output_spikes: float  # fraction of equal output-spike entries [samples, steps, outputs]
    predictions: float  # fraction of samples with the same class decision
    identical_samples: int  # samples whose output spikes are identical
    samples: int
    backend: str  # what ran the Lava side (lava-cpu-sim, loihi2, lava-dl-netx-cpu-sim)
    torch_accuracy_on_samples: float
    # voltage readout only: fraction of samples whose output layer's v, read back from Lava at every step
    # [steps, outputs], equals the core's bit for bit (identical_samples then counts spikes and v)
    output_voltage: Optional[float] = _omit_if_none()


@dataclass
class ArtifactRoundTrip:
    """One written file re-read through snnhw's own reader and re-simulated on snnhw's core, against
    the trained network's output spikes on the verification samples (exact when every sample is)."""

    artifact: str  # file name in the run directory (model.net, model.nir)
    reader: str  # the snnhw function that read it back
    samples: int
    identical_samples: int  # samples whose output spikes [steps, outputs] are identical
    output_spikes: float  # fraction of equal output-spike entries [samples, steps, outputs]
    exact: bool  # identical_samples == samples
    # voltage readout only: fraction of samples whose output v trace [steps, outputs] is identical
    # (identical_samples then counts spikes and v)
    output_voltage: Optional[float] = _omit_if_none()


@dataclass
class LayerReport:
    """One neuron layer of the trained network (values of the exported spec)."""

    name: str
    kind: str
    neurons: int
    synapses: int
    weight_exp: int
    vth_mant: Any  # int on the quantized target, float on the float target
    i_decay: Any
    v_decay: Any
    zero_weight_fraction: float
    firing_rate: ByModel  # on the verification samples
    silent: bool  # no spike on any verification sample (quantized core, or float twin on the float target)
    rec_exp: Optional[int] = _omit_if_none()  # recurrent layers only
    zero_weight_fraction_rec: Optional[float] = _omit_if_none()  # recurrent layers only


def selection_rule(validation: bool, rule: str = "val_accuracy") -> str:
    """How the exported epoch was chosen (report.json ``training.selection``; ``rule``: recipe train.select)."""
    if not validation:
        return "the last epoch (no validation split: recipe data.val_fraction = 0)"
    on = ("of the trained model (the quantized core on a quantized target) on the validation split; the test "
          "split is used only for the final accuracy")
    if rule == "val_loss":
        return f"lowest validation loss (ties: higher validation accuracy, then the earlier epoch) {on}"
    if rule == "last":
        return "the last epoch (recipe train.select = 'last'; validation accuracy recorded per epoch)"
    return f"best validation accuracy (ties: lower validation loss, then the earlier epoch) {on}"


@dataclass
class Training:
    epochs: int
    history: List[Dict]  # per epoch: epoch, loss, train_accuracy, val_accuracy, val_loss (None without a
    # validation split), rates {layer: rate}, lr
    resumed_from_epoch: int
    selected_epoch: int = 0  # the epoch whose weights were exported (1-based)
    selection: str = ""  # how it was chosen (selection_rule)


@dataclass
class Times:
    train_seconds: float  # all processes' training, over resumed runs
    this_process_train_seconds: float
    verify_seconds: float
    total_seconds: float
    lava_seconds: Optional[float]


@dataclass
class RunReport:
    recipe: RecipeSummary
    target: str
    seed: int
    device: str
    world_size: int
    dataset: DatasetSummary
    accuracy: ByModel  # test accuracy (float and quantized on the test split, Lava on the verification samples)
    accuracy_samples: ByModel  # samples behind each accuracy
    agreement: Optional[Agreement]  # core vs Lava; None on the float target and without Lava
    verification_note: str  # why Lava did not run, and how to get it
    layers: List[LayerReport]
    fit: FitSummary
    synops_per_inference: float  # mean synaptic events per verification sample
    neuron_updates_per_inference: int  # neurons x time steps
    energy_estimate_uJ: Optional[EnergyEstimate]
    init: Dict  # snnhw.init.InitReport.to_dict() + implementation
    training: Training
    files: List[str]  # every file of the run directory, relative to it
    notes: List[str]
    packages: Dict[str, Optional[str]]
    times: Times
    verification: Optional[str] = None  # one of VERIFICATIONS; None on the float target (nothing to verify)
    artifact_roundtrip: Optional[List[ArtifactRoundTrip]] = _omit_if_none()  # when verification is the round trip
    class_decision: str = CLASS_DECISION
    readout: str = "spikes"  # recipe model.readout: "spikes" or "voltage" (CLASS_DECISIONS)
    format: str = REPORT_FORMAT

    def to_dict(self) -> Dict[str, Any]:
        """``report.json``'s content (before key sorting)."""
        return _plain(self)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_if_none") and getattr(obj, f.name) is None)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
