"""The stages of ``snnhw train`` after the checks: fit, export, verify (Lava, or without it the
artifact round trip), measure, report, publish.

Each stage is a function of the run's :class:`RunContext` and the results of the stages before it,
and returns a small dataclass; :func:`snnhw.train.pipeline.run` calls them in this order. Every file
goes into the run's work directory (``ctx.work``) until :func:`publish` renames it to the run directory.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.backends import lava_runtime
from snnhw.core.layers import SpikingDense, SpikingNet, SpikingSumPool
from snnhw.core.network import simulate
from snnhw.data import Dataset, Encoder
from snnhw.errors import InputError
from snnhw.io.atomic import save_npy, write_text
from snnhw.loihi import weight_grid
from snnhw.report import package_versions, write_reports
from snnhw.report import plots
from snnhw.report.schema import (CLASS_DECISIONS, Agreement, ArtifactRoundTrip, ByModel, DatasetSummary, LayerReport,
                                 RecipeSummary, RunReport, Times, Training, VERIFY_ROUNDTRIP, selection_rule)
from snnhw.spec import NetworkSpec
from snnhw.targets import EnergyEstimate, FitSummary, Target
from snnhw.train import build
from snnhw.train.evaluate import Validation, evaluate, float_twin, spike_rates, synops
from snnhw.train.loop import DistInfo, TrainResult, train
from snnhw.train.recipe import Recipe
from snnhw.train.verify import BACKENDS, READERS, artifact_roundtrip, verification_name
from snnhw.train.verify import verify as run_verification

if TYPE_CHECKING:
    from snnhw.train.pipeline import RunOptions


@dataclass
class Setup:
    """Everything :func:`snnhw.train.pipeline.prepare` checked before a directory was created."""

    recipe: Recipe
    target: Target
    data: Dataset
    encoder: Encoder
    input_shape: Tuple[int, ...]
    plan: List[Dict]  # build.plan_layers: per layer kind, name, shapes, neurons, synapses
    fit: FitSummary
    backend: str = "lava"  # what verifies the run: "lava", "netx" or VERIFY_ROUNDTRIP (verification_backend)
    val: Optional[Validation] = None  # the validation samples carved from the training split (None: none)


@dataclass
class RunContext:
    """One run: its options (:class:`snnhw.train.pipeline.RunOptions`), checked inputs and directories."""

    opts: "RunOptions"
    setup: Setup
    out: str  # the run directory (absolute)
    work: str  # the hidden work directory beside it
    dist: DistInfo
    resuming: bool
    log: Callable[[str], None] = print
    t_start: float = field(default_factory=time.time)


# ---- fit ------------------------------------------------------------------------------------------
@dataclass
class Fitted:
    model: SpikingNet  # trained, on the CPU
    result: TrainResult
    seconds: float  # this process's training time


def initialized_model(s: Setup, resuming: bool = False) -> Tuple[SpikingNet, Dict]:
    """(model, init report): the recipe's model built under its seed and, unless ``resuming`` (the
    checkpoint holds the weights), initialized on the first ``init.calib_samples`` training samples."""
    recipe, data, enc = s.recipe, s.data, s.encoder
    seed = int(recipe.train.seed)
    torch.manual_seed(seed)
    model = build.build_model(recipe, s.target, s.input_shape, data.n_classes)
    if resuming:
        return model, {}
    calib_n = min(int(recipe.init.calib_samples), len(data.y_train))
    return model, build.initialize(model, recipe, enc(data.x_train[:calib_n], index=np.arange(calib_n)), seed)


def fit(ctx: RunContext, on_batch=None) -> Fitted:
    """Build the model, initialize it (unless resuming) on calibration samples, train it."""
    s = ctx.setup
    recipe, data, enc = s.recipe, s.data, s.encoder
    model, init_report = initialized_model(s, ctx.resuming)
    t = time.time()
    res = train(model, recipe, data, enc, checkpoint_path=os.path.join(ctx.work, "checkpoint.pt"),
                init_report=init_report, device=ctx.opts.device, resume=ctx.resuming, progress=ctx.opts.progress,
                on_batch=on_batch, val=s.val)
    seconds = time.time() - t
    return Fitted(res.model.to("cpu"), res, seconds)


@dataclass
class VerificationSet:
    """The first ``verify_samples`` test samples as the chip receives them."""

    inputs: np.ndarray  # uint8 0/1 [samples, steps, inputs]
    labels: np.ndarray  # int64 [samples]


def verification_set(s: Setup) -> VerificationSet:
    n_ver = min(int(s.recipe.data.verify_samples), len(s.data.y_test))
    idx = np.arange(n_ver)
    inputs = (s.encoder(s.data.x_test[idx], index=idx + len(s.data.y_train)).numpy() != 0).astype(np.uint8)
    return VerificationSet(inputs, s.data.y_test[idx].astype(np.int64))


# ---- export ---------------------------------------------------------------------------------------
@dataclass
class Exported:
    spec: NetworkSpec
    layer_spikes: List[np.ndarray]  # the core's spikes per neuron layer on the verification inputs (bool)
    torch_out: np.ndarray  # uint8 [samples, steps, outputs]
    files: List[str]
    notes: List[str]
    torch_v: Optional[np.ndarray] = None  # voltage readout: the output layer's v [samples, steps, outputs]


def _simulate_checked(model: SpikingNet, spec: NetworkSpec, inputs: np.ndarray):
    """``simulate(spec)`` on the verification inputs (recording the traces for a voltage readout), after
    checking it equals the model's forward (its output spikes, or its output v)."""
    with torch.no_grad():
        m_out, _ = model(torch.as_tensor(inputs, dtype=torch.float32), return_all=True)
    voltage = model.readout == "voltage"
    sim = simulate(spec, inputs, record=voltage)
    if not torch.equal(m_out.cpu(), (sim.traces[-1].v if voltage else sim.output).to(m_out.dtype)):
        raise RuntimeError("internal error: the trained model and simulate(model.to_spec()) disagree")
    return sim


def _write_netx(spec: NetworkSpec, path: str, quantized: bool) -> Optional[str]:
    """Write model.net; returns a note when it cannot be written."""
    if not quantized:
        return "model.net not written: netx files hold integer Loihi parameters; the float target has none"
    try:
        from snnhw.io.netx import write_netx

        write_netx(spec, path)
    except (ValueError, ImportError) as e:  # a layer netx cannot hold / lava-dl's h5py missing
        return f"model.net not written: {str(e).splitlines()[0]}"
    return None


def _write_nir(spec: NetworkSpec, path: str) -> Optional[str]:
    """Write model.nir; returns a note when it cannot be written."""
    try:
        from snnhw.io.nir import export_nir

        export_nir(spec, path)
    except ImportError:
        return "model.nir not written: snnhw.io.nir.export_nir is not available"
    except ValueError as e:  # something NIR cannot express
        return f"model.nir not written: {str(e).splitlines()[0]}"
    return None


def _readout_note(layer, v: np.ndarray, spikes: int) -> str:
    """What the verification samples and the weights say about a voltage readout firing: the largest |v|
    reached against the threshold, and :func:`snnhw.loihi.v_bound` from the layer's weights and bias."""
    w = np.asarray(layer.weight, dtype=np.float64) * 2.0 ** layer.weight_exp
    a_max = float(np.ceil(max(np.clip(w, 0, None).sum(1).max(), np.clip(-w, 0, None).sum(1).max())))
    b = 0.0 if layer.bias_mant is None else float(np.abs(np.asarray(layer.bias_mant)).max())
    b_max = b * 2.0 ** layer.bias_exp
    bound = loihi.v_bound(a_max, b_max, layer.neuron.i_decay, layer.neuron.v_decay)
    vth = loihi.effective_threshold(layer.neuron.vth_mant)
    proof = "so it can never fire" if bound <= vth else "so the weights alone do not exclude a spike"
    return (f"voltage readout {layer.name}: {spikes} output spikes on the {len(v)} verification samples; largest |v| "
            f"{int(np.abs(v).max()) if v.size else 0} vs threshold {vth}; the weights and bias bound |v| by "
            f"{bound:.0f}, {proof}")


def export(ctx: RunContext, model: SpikingNet, vs: VerificationSet) -> Exported:
    """The trained network as ``spec.json``, ``model.net`` (lava-dl netx) and ``model.nir``."""
    spec = model.to_spec()
    spec.metadata.update({"recipe": ctx.setup.recipe.name, "target": ctx.setup.target.name,
                          "steps": ctx.setup.encoder.total_steps})
    sim = _simulate_checked(model, spec, vs.inputs)
    files, notes = ["checkpoint.pt", "spec.json"], []
    write_text(os.path.join(ctx.work, "spec.json"), spec.to_json())
    for name, note in (("model.net", _write_netx(spec, os.path.join(ctx.work, "model.net"),
                                                  ctx.setup.target.quantized)),
                       ("model.nir", _write_nir(spec, os.path.join(ctx.work, "model.nir")))):
        if note is None:
            files.append(name)
        else:
            notes.append(note)
    torch_v = None
    if model.readout == "voltage":
        torch_v = sim.traces[-1].v.numpy()  # int64 on the chip's arithmetic, float32 on the float target
        notes.append(_readout_note(spec.layers[-1], torch_v, int(sim.output.sum())))
    return Exported(spec, [(s.numpy() != 0) for s in sim.layer_spikes], (sim.output.numpy() != 0).astype(np.uint8),
                    files, notes, torch_v)


# ---- verify ---------------------------------------------------------------------------------------
#: The report's verification_note when Lava did not run on a quantized target.
NO_LAVA_NOTE = ("lava-nc is not installed; for the Lava verification install Python 3.10 "
                "and pip install 'snnhw[lava]'")


def verification_backend(requested: Optional[str], quantized: bool) -> str:
    """What will verify the run: ``requested`` ("lava" or "netx"; it needs Lava, else a one-line
    :class:`~snnhw.errors.MissingDependencyError` before anything is trained), or by default Lava
    when lava-nc is installed and the artifact round trip when it is not."""
    if requested is None:
        return "lava" if lava_runtime.lava_available() else VERIFY_ROUNDTRIP
    if requested not in BACKENDS:
        raise InputError(f"unknown verification backend '{requested}'; choose one of {', '.join(BACKENDS)}")
    if quantized:
        lava_runtime.require_lava()
    return requested


@dataclass
class Verified:
    result: Optional[Dict]  # snnhw.train.verify.verify's dict when Lava ran, else None
    note: str
    seconds: float
    files: List[str]
    name: Optional[str] = None  # report.json "verification"; None on the float target
    roundtrip: Optional[List[ArtifactRoundTrip]] = None  # the artifact round trip, when it ran


def _verify_lava(ctx: RunContext, ex: Exported, vs: VerificationSet) -> Dict:
    backend = ctx.setup.backend
    if backend == "netx" and "model.net" not in ex.files:
        raise InputError("--backend netx needs model.net, which this network cannot be written to")
    ctx.log(f"verifying {len(vs.labels)} test samples: snnhw core vs "
            f"{'Lava' if backend == 'lava' else 'lava-dl netx'} ...")
    return run_verification(ex.spec, vs.inputs, vs.labels, backend=backend,
                            netx_path=os.path.join(ctx.work, "model.net"))


def _verify_roundtrip(ctx: RunContext, ex: Exported, vs: VerificationSet) -> List[ArtifactRoundTrip]:
    files = [f for f in READERS if f in ex.files]
    ctx.log(f"verifying {len(vs.labels)} test samples without Lava: {' and '.join(files) or 'no file'} re-read "
            f"and re-simulated on snnhw's core ...")
    return artifact_roundtrip(ctx.work, files, vs.inputs, ex.torch_out, ex.torch_v)


def verify(ctx: RunContext, ex: Exported, vs: VerificationSet) -> Verified:
    """Quantized targets: the verification samples through the core and Lava, or without Lava the
    artifact round trip (:func:`snnhw.train.verify.artifact_roundtrip`); ``verify/*.npy``."""
    t = time.time()
    ver, rt, note, name = None, None, "", None
    if not ctx.setup.target.quantized:
        note = "the float target has no integer network to run on Lava"
    elif ctx.setup.backend == VERIFY_ROUNDTRIP:
        rt, note, name = _verify_roundtrip(ctx, ex, vs), NO_LAVA_NOTE, VERIFY_ROUNDTRIP
    else:
        ver = _verify_lava(ctx, ex, vs)
        name = verification_name(ver["backend"])
    seconds = time.time() - t
    arrays = {"inputs": vs.inputs, "labels": vs.labels, "torch_output_spikes": ex.torch_out}
    if ex.torch_v is not None:
        arrays["torch_output_voltage"] = ex.torch_v
    if ver is not None:
        arrays["lava_output_spikes"] = ver["lava_output"]
        if ver["lava_voltage"] is not None:
            arrays["lava_output_voltage"] = ver["lava_voltage"]
    for a, arr in arrays.items():
        save_npy(os.path.join(ctx.work, "verify", f"{a}.npy"), arr)
    return Verified(ver, note, seconds, [f"verify/{a}.npy" for a in arrays], name, rt)


# ---- measure --------------------------------------------------------------------------------------
@dataclass
class Measured:
    accuracy: ByModel
    accuracy_samples: ByModel
    layers: List[LayerReport]
    rates: Dict[str, List[Optional[float]]]  # per model ("float", "quantized", "Lava"): per layer
    spikes: List[np.ndarray]  # per layer on the verification inputs (quantized core; float twin on float)
    weight_panels: List[plots.WeightPanel]
    synops: float
    neuron_updates: int
    energy: Optional[EnergyEstimate]


def _layer_reports(model: SpikingNet, spec: NetworkSpec, rates: Dict[str, List], quantized: bool
                   ) -> Tuple[List[LayerReport], List[plots.WeightPanel]]:
    """Per neuron layer: its report row and its weight histogram panel (not for sum-pools)."""
    f_rates, q_rates, l_rates = rates["float"], rates["quantized"], rates["Lava"]
    layers, panels = [], []
    for i, (l, sl) in enumerate(zip(model.neuron_layers(), spec.neuron_layers())):
        w = np.asarray(sl.weight)
        pool = isinstance(l, SpikingSumPool)
        row = LayerReport(name=l.name, kind=l.kind, neurons=int(np.prod(l.out_shape)), synapses=int(l.synapse_count()),
                          weight_exp=sl.weight_exp, vth_mant=sl.neuron.vth_mant, i_decay=sl.neuron.i_decay,
                          v_decay=sl.neuron.v_decay, zero_weight_fraction=float(np.mean(w == 0)) if not pool else 0.0,
                          firing_rate=ByModel(f_rates[i], q_rates[i], l_rates[i]),
                          silent=bool((q_rates[i] if quantized else f_rates[i]) == 0.0) and not (
                              model.readout == "voltage" and i == len(q_rates) - 1))  # a voltage readout never fires
        if isinstance(l, SpikingDense) and l.weight_rec is not None:
            row.rec_exp = sl.rec_exp
            row.zero_weight_fraction_rec = float(np.mean(np.asarray(sl.weight_rec) == 0))
        layers.append(row)
        if not pool:
            step, lim = weight_grid(sl.weight_exp) if quantized else (0, float(np.abs(w).max() or 1))
            panels.append(plots.WeightPanel(l.name, w, step, lim, sl.weight_exp))
    return layers, panels


def measure(ctx: RunContext, model: SpikingNet, ex: Exported, ver: Verified, vs: VerificationSet) -> Measured:
    """Accuracies (float twin, quantized core, Lava), per-layer rates, synaptic operations, energy."""
    s = ctx.setup
    quantized, n = s.target.quantized, len(ex.layer_spikes)
    twin = float_twin(model)
    ev_f = evaluate(twin, s.data, s.encoder)
    ev_q = evaluate(model, s.data, s.encoder) if quantized else None
    with torch.no_grad():
        _, f_layers = twin(torch.as_tensor(vs.inputs, dtype=torch.float32), return_all=True)
    f_spikes = [t.numpy() for t in f_layers]
    v = ver.result
    rates = {"float": spike_rates(f_spikes),
             "quantized": spike_rates(ex.layer_spikes) if quantized else [None] * n,
             "Lava": spike_rates(v["lava_layers"]) if v and v["lava_layers"] is not None else [None] * n}
    layers, panels = _layer_reports(model, ex.spec, rates, quantized)
    spikes = ex.layer_spikes if quantized else f_spikes
    syn = synops(model, vs.inputs, spikes)
    neuron_updates = sum(l.neurons for l in layers) * s.encoder.total_steps
    return Measured(accuracy=ByModel(ev_f["accuracy"], ev_q["accuracy"] if ev_q else None,
                                     v["lava_accuracy"] if v else None),
                    accuracy_samples=ByModel(ev_f["n"], ev_q["n"] if ev_q else None, len(vs.labels) if v else None),
                    layers=layers, rates=rates, spikes=spikes, weight_panels=panels, synops=syn,
                    neuron_updates=neuron_updates, energy=s.target.energy_uJ(syn, neuron_updates))


# ---- report ---------------------------------------------------------------------------------------
def _agreement(v: Optional[Dict]) -> Optional[Agreement]:
    if not v:
        return None
    return Agreement(output_spikes=v["output_spikes"], predictions=v["predictions"],
                     identical_samples=v["identical_samples"], samples=v["samples"], backend=v["backend"],
                     torch_accuracy_on_samples=v["torch_accuracy"], output_voltage=v["output_voltage"])


def report(ctx: RunContext, fitted: Fitted, ex: Exported, ver: Verified, m: Measured,
           vs: VerificationSet) -> RunReport:
    """Plots, ``report.json`` and ``report.md`` in the work directory; returns the report."""
    s, res = ctx.setup, fitted.result
    r, d = s.recipe, s.recipe.data
    plot_files = plots.run_plots(ctx.work, history=res.history, names=[l.name for l in m.layers], rates=m.rates,
                                 layer_spikes=m.spikes, inputs=vs.inputs, weight_panels=m.weight_panels)
    rep = RunReport(
        recipe=RecipeSummary(r.name, r.recipe.description, r.to_dict()),
        target=s.target.name, seed=int(r.train.seed), device=ctx.opts.device, world_size=ctx.dist.world,
        dataset=DatasetSummary(name=s.data.name, train=int(len(s.data.y_train)), test=int(len(s.data.y_test)),
                               validation=int(len(s.val.data.y_test)) if s.val else 0,
                               steps=d.steps, pad_steps=d.pad_steps, encoding=d.encoding,
                               inputs=int(np.prod(s.input_shape))),
        accuracy=m.accuracy, accuracy_samples=m.accuracy_samples, agreement=_agreement(ver.result),
        verification_note=ver.note, layers=m.layers, fit=s.fit, synops_per_inference=m.synops,
        neuron_updates_per_inference=m.neuron_updates, energy_estimate_uJ=m.energy, init=res.init_report,
        training=Training(epochs=r.train.epochs, history=res.history, resumed_from_epoch=res.resumed_from_epoch,
                          selected_epoch=res.selected_epoch,
                          selection=selection_rule(s.val is not None, r.train.select)),
        files=ex.files + ver.files + [f"plots/{p}" for p in plot_files] + ["report.json", "report.md"],
        notes=ex.notes, packages=package_versions(),
        times=Times(train_seconds=res.seconds, this_process_train_seconds=fitted.seconds,
                    verify_seconds=ver.seconds, total_seconds=0.0,
                    lava_seconds=ver.result["lava_seconds"] if ver.result else None),
        verification=ver.name, artifact_roundtrip=ver.roundtrip, readout=fitted.model.readout,
        class_decision=CLASS_DECISIONS[fitted.model.readout])
    rep.times.total_seconds = time.time() - ctx.t_start
    write_reports(ctx.work, rep)
    return rep


# ---- publish --------------------------------------------------------------------------------------
def publish(work: str, out: str) -> None:
    """Rename the finished work directory to the run directory, replacing an older run of that name
    (moved aside first and deleted after, so ``out`` is never half-written)."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    old = None
    if os.path.exists(out):
        old = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)
