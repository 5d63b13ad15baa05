"""``import_nir``: the whole import of a NIR graph, as named stages (module docstring of
:mod:`snnhw.nir_import`): load and inputs, the float reference, the chip spec (exact from snnhw
metadata, or calibrated, with subtract-reset compensation), the chip run, the measures and the
measured effects of what the chip cannot do exactly, and the run directory."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from snnhw.backends import lava_runtime
from snnhw import loihi
from snnhw.errors import InputError, SnnhwError
from snnhw.io import atomic
from snnhw.io.nir import NirModel, NIRFormatError, export_nir, has_snnhw_metadata, load_model, model_to_spec_exact
from snnhw.nir_import.chip import run_chip, run_twin
from snnhw.nir_import.compensate import METHOD as COMPENSATION_METHOD, compensate_subtract, with_self_excitation
from snnhw.nir_import.measure import (agreement, aligned, latency, layer_report, poisson_inputs, ties,
                                      voltage_agreement)
from snnhw.nir_import.chip import CORE_BACKEND
from snnhw.nir_import.dag import DagSpec, dag_spec, run_dag_lava, simulate_dag
from snnhw.nir_import.emulate_if import IF_EMULATION_NOTE, IfEmu, if_emulation, run_if_lava, simulate_if, why_not_if
from snnhw.nir_import.emulate import (EMULATION_NOTE, EmuSpec, emulation_spec, run_emulation_lava, simulate_emulation,
                                      why_not)
from snnhw.nir_import.readout import chip_model, readout_theta, readout_thetas, run_with_voltage, voltage_nir
from snnhw.report.plots import import_plots
from snnhw.nir_import.quantize import EXP_MAX, float_spec, quantize_model, safe_name
from snnhw.nir_import.reference import RESETS, RefResult, float_reference, one_thread
from snnhw.spec import NetworkSpec

TARGETS = ("loihi2", "float")
SUBTRACT_MODES = ("emulate", "compensate")
#: v headroom factors tried (quantize_model's ``v_room``), the best on the calibration inputs is used.
V_ROOMS = (1.0, 2.0, 4.0, 8.0, 16.0)
V_ROOM_METHOD = ("threshold scale limited by u's headroom and v's headroom times each factor; the factor whose "
                 "chip (bit-exact core) best matches the float reference's output spike counts on the "
                 "calibration inputs (least squares) is used")
CALIB_SEED_OFFSET = 1_000_003  # the held-out calibration draw's seed: seed + this


@dataclass
class _Inputs:
    """Inputs [B, T, n_in], calibration inputs and their description for the report."""

    x: np.ndarray
    calib: np.ndarray
    desc: Dict


@dataclass
class _Chip:
    """The spec that ran, how it was made, and its per-layer spikes (padded by ``latency`` steps)."""

    spec: NetworkSpec
    maps: List
    backend: str
    layers: List[np.ndarray]
    xp: np.ndarray
    latency: int
    exact_meta: bool = False
    compensation: Optional[Dict] = None
    calibration: Optional[Dict] = None
    lossy: List[str] = field(default_factory=list)
    v_state: Optional[np.ndarray] = None  # the output readout's v (state units, padded), LI/CubaLI outputs
    depths: Optional[List[int]] = None  # per population, its chip latency (graph mapping; chain: k + 1)
    dag: Optional[DagSpec] = None  # the graph mapping's spec (graphs without a chain form)
    readout_theta: Optional[float] = None  # graph mapping: the output readout's chip threshold (NIR units)
    headroom: Optional[Dict] = None  # the v headroom choice (_pick_v_room)
    emu: Optional[Union[EmuSpec, IfEmu]] = None  # the subtract-reset emulation (nir_import.emulate, emulate_if)


def _inputs(model: NirModel, inputs, rate: float, steps: int, samples: int, seed: int) -> _Inputs:
    if inputs is None:
        x = poisson_inputs(model.n_in, rate=rate, steps=steps, samples=samples, seed=seed)
        calib = poisson_inputs(model.n_in, rate=rate, steps=steps, samples=samples, seed=seed + CALIB_SEED_OFFSET)
        return _Inputs(x, calib, {"kind": "poisson", "rate_per_step": rate, "steps": steps, "samples": samples,
                                  "seed": seed, "calibration": "a separate Poisson draw (seed + 1000003), same "
                                                               "rate/steps/samples"})
    x = np.asarray(inputs)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != model.n_in:
        raise InputError(f"inputs must be shaped [samples, steps, {model.n_in}], got {tuple(np.shape(inputs))}")
    if not np.all(np.isfinite(x.astype(np.float64))):
        raise InputError("inputs contain NaN or infinity")
    return _Inputs(x, x, {"kind": "file", "shape": list(x.shape),
                          "calibration": "the given inputs themselves (in-sample)"})


def _padded(x: np.ndarray, steps: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((x.shape[0], steps, x.shape[2]), dtype=x.dtype)], axis=1)


def _pick_v_room(model: NirModel, calib, reset: str, log, **kw):
    """(spec, maps, record): the quantization whose v headroom factor (:data:`V_ROOMS`) makes snnhw's
    bit-exact core best reproduce the float reference's output spike counts on the calibration inputs
    (least squares; ties: the smaller factor). Never looks at the evaluation inputs."""
    target = float_reference(model, calib, reset=reset).output.sum(axis=1)
    best, tried = None, {}
    for room in V_ROOMS:
        spec, maps = quantize_model(model, calib, reset=reset, v_room=room, **kw)
        L = latency(spec)
        counts = aligned(run_twin(spec, _padded(calib, L)), calib.shape[1])[-1].sum(axis=1)
        err = float(np.mean((counts - target) ** 2))
        tried[str(room)] = {"calibration_count_mse": err, "vth_mant": [m.vth_mant for m in maps]}
        if best is None or err < best[0] - 1e-12:
            best = (err, room, spec, maps)
    log(f"v headroom x{best[1]:g} (of {', '.join(f'{r:g}' for r in V_ROOMS)}), chosen on the calibration inputs")
    return best[2], best[3], {"method": V_ROOM_METHOD, "chosen": best[1], "tried": tried}


def _calibrated_spec(model: NirModel, calib, reset: str, compensate: bool, max_exp: int, split: bool = False,
                     log=None):
    """(spec, maps, compensation record or None, headroom record) by hardware-aware calibration."""
    theta_scale, comp = None, None
    if reset.startswith("subtract") and compensate:
        theta_scale, self_c, kc = compensate_subtract(model, calib)
        model = with_self_excitation(model, self_c)
        comp = {"method": COMPENSATION_METHOD, "threshold_multipliers": theta_scale,
                "self_excitation_thresholds": self_c, "float_count_cosine_per_layer": kc}
    if model.output_voltage:  # a readout's voltage is not scored by spike counts: keep the plain headroom
        spec, maps = quantize_model(model, calib, reset=reset, theta_scale=theta_scale, max_weight_exp=max_exp,
                                    split=split)
        return spec, maps, comp, None
    spec, maps, room = _pick_v_room(model, calib, reset, log or (lambda m: None), theta_scale=theta_scale,
                                    max_weight_exp=max_exp, split=split)
    return spec, maps, comp, room


def _run_loihi2(model: NirModel, inp: _Inputs, reset: str, compensate: bool, max_exp: int, log,
                calibrate: int = 0, split: bool = False) -> _Chip:
    """The chip spec (bit-exact from snnhw metadata, else calibrated) run on Lava fixed_pt, or on
    snnhw's bit-exact core without lava-nc (:func:`snnhw.nir_import.chip.run_chip`)."""
    spec, exact_meta = None, False
    try:
        if has_snnhw_metadata(model):
            spec = model_to_spec_exact(model)
            exact_meta = spec.quantized
    except NIRFormatError as e:  # edited after export, or malformed: calibrate instead
        log(f"snnhw metadata ignored: {e}")
    maps, comp = [], None
    calib_rec, room = None, None
    if not exact_meta:
        spec, maps, comp, room = _calibrated_spec(model, inp.calib, reset, compensate, max_exp, split, log)
        if calibrate:
            from snnhw.nir_import.calibrate import calibrate_chip

            spec, calib_rec = calibrate_chip(model, spec, inp.x, inp.calib, calibrate, reset, log=log)
    L = latency(spec)
    xp = _padded(inp.x, L)
    where = "Lava (fixed_pt)" if lava_runtime.lava_available() else "snnhw's Loihi-exact core (no lava-nc)"
    log(f"running {inp.x.shape[0]} samples on {where} ...")
    v_state = None
    if model.output_voltage:
        layers, v_state, backend = run_with_voltage(spec, xp, exact=True)
    else:
        layers, backend = run_chip(spec, xp)
    return _Chip(spec, maps, backend, layers, xp, L, exact_meta, comp, calib_rec, v_state=v_state, headroom=room)


def _run_float(model: NirModel, inp: _Inputs, reset: str) -> _Chip:
    """The float twin's spec run on snnhw's float simulation (Loihi timing)."""
    spec = float_spec(model, reset="subtract" if reset == "subtract-undecayed" else reset)
    L = latency(spec)
    xp = _padded(inp.x, L)
    if model.output_voltage:
        layers, v_state, backend = run_with_voltage(spec, xp, exact=False)
        return _Chip(spec, [], backend, layers, xp, L, v_state=v_state)
    return _Chip(spec, [], "snnhw-float-twin", run_twin(spec, xp), xp, L)


def _run_dag(model: NirModel, inp: _Inputs, reset: str, target: str, log) -> _Chip:
    """A graph without a chain form (:mod:`snnhw.nir_import.dag`): on Lava (loihi2, lava-nc installed),
    else on snnhw's core (bit-exact, or the float twin)."""
    thetas = readout_thetas(model, [inp.x, inp.calib], reset)
    spec = dag_spec(model, inp.calib, reset=reset, quantized=target == "loihi2", thetas=thetas)
    depths = [p.depth for p in spec.pops]
    L = max(depths)
    xp = _padded(inp.x, L)
    if spec.quantized and lava_runtime.lava_available():
        log(f"running {inp.x.shape[0]} samples on Lava (fixed_pt), graph of {len(depths)} populations ...")
        spikes, volts = run_dag_lava(spec, xp)
        backend = "lava-cpu-sim"
    else:
        spikes, volts = simulate_dag(spec, xp)
        backend = CORE_BACKEND if spec.quantized else "snnhw-float-twin"
    k = model.graph.populations.index(model.graph.output)
    chip = _Chip(None, [], backend, spikes, xp, L, depths=depths, dag=spec)
    if model.output_voltage:
        chip.v_state = volts[k]
        chip.readout_theta = float(np.median(thetas[model.graph.output]))
    return chip


def _run_emulation(model: NirModel, inp: _Inputs, reset: str, log, taps: bool = True) -> _Chip:
    """The subtract-reset emulation on Lava, or on snnhw's core: with delayed taps
    (:mod:`snnhw.nir_import.emulate`, chains of dense stages) or, ``taps=False``, for populations without a
    current filter behind any chain synapse (:mod:`snnhw.nir_import.emulate_if`)."""
    spec, notes = emulation_spec(model, inp.calib, reset) if taps else if_emulation(model, inp.calib, reset)
    L = len(spec.pops) if taps else len(spec.resets)
    xp = _padded(inp.x, L)
    if lava_runtime.lava_available():
        log(f"running {inp.x.shape[0]} samples on Lava (fixed_pt), subtract reset emulated ...")
        spikes, backend = (run_emulation_lava if taps else run_if_lava)(spec, xp), "lava-cpu-sim"
    else:
        spikes, backend = (simulate_emulation(spec, xp)[0] if taps else simulate_if(spec, xp)), CORE_BACKEND
    return _Chip(None, [], backend, spikes, xp, L, lossy=notes, depths=list(range(1, L + 1)), emu=spec)


def _run_chain(model: NirModel, inp: _Inputs, reset: str, target: str, opts: Dict, log) -> _Chip:
    """A chain: the subtract-reset emulation where it applies (loihi2, subtract reset, ``subtract_mode``
    emulate, no --calibrate or --netx-compatible, no snnhw metadata), else the calibrated spec (loihi2) or
    the float twin."""
    if target == "float":
        return _run_float(model, inp, reset)
    if reset.startswith("subtract") and opts["subtract_mode"] == "emulate" and not opts["calibrate"] \
            and not opts["netx"] and not has_snnhw_metadata(model):
        why, why_if = why_not(model), why_not_if(model)
        if why is None or why_if is None:
            return _run_emulation(model, inp, reset, log, taps=why is None)
        log(f"subtract reset compensated, not emulated: {why}; {why_if}")
    return _run_loihi2(model, inp, reset, opts["compensate"], opts["max_exp"], log, opts["calibrate"],
                       opts["split"])


def _aligned(chip: _Chip, T: int) -> List[np.ndarray]:
    if chip.depths is None:
        return aligned(chip.layers, T)
    return [s[:, d:d + T] for s, d in zip(chip.layers, chip.depths)]


def _chip_voltage(model: NirModel, chip: _Chip, T: int) -> Optional[np.ndarray]:
    """The output readout's chip voltage in NIR units [B, T, n], latency removed (None: spiking output)."""
    if chip.v_state is None:
        return None
    if chip.dag is not None:
        k = model.graph.populations.index(model.graph.output)
        d = chip.depths[k]
        return voltage_nir(chip.v_state[:, d:d + T], chip.readout_theta, chip.dag.pops[k].vth_mant)
    k = len(chip.layers) - 1
    ks = chip.compensation["threshold_multipliers"] if chip.compensation else None
    vth = chip.maps[-1].vth_mant if chip.maps else 1.0
    return voltage_nir(chip.v_state[:, k + 1:k + 1 + T], readout_theta(model, ks), vth)


def _uncompensated_voltage(model: NirModel, unc_spec, maps, xp, T: int) -> np.ndarray:
    """The output readout's v (NIR units, latency removed) of the uncompensated spec on the exact core."""
    from snnhw.core.network import simulate

    with one_thread():
        r = simulate(unc_spec, xp, record=True)
    k = len(r.traces)
    return voltage_nir(r.traces[-1].v.numpy()[:, k:k + T], readout_theta(model, None), maps[-1].vth_mant)


def _subtract_effects(model: NirModel, inp: _Inputs, chip: _Chip, rc, agree: Dict, reset: str,
                      max_exp: int, split: bool = False) -> Dict:
    """Measured effect of Loihi's zero reset on a subtract-reset graph (with/without compensation);
    for a readout output, on its voltage (:func:`voltage_agreement`)."""
    zero_ref = float_reference(model, inp.x, reset="zero")
    volt = model.output_voltage
    if volt:
        ref_v = float_reference(model, inp.x, reset=reset).output_voltage
        eff = {"float_zero_reset_vs_subtract_reference": voltage_agreement(zero_ref.output_voltage, ref_v)}
    else:
        eff = {"float_zero_reset_vs_subtract_reference": agreement(zero_ref.output.sum(axis=1), rc)}
    if chip.compensation is not None:
        room = chip.headroom["chosen"] if chip.headroom else 1.0  # the chip's mapping, less the compensation
        unc_spec, unc_maps = quantize_model(model, inp.calib, reset=reset, max_weight_exp=max_exp, split=split,
                                            v_room=room)
        T = inp.x.shape[1]
        if volt:
            unc_v = _uncompensated_voltage(model, unc_spec, unc_maps, chip.xp, T)
            eff["chip_without_compensation_vs_reference"] = voltage_agreement(unc_v, ref_v)
        else:
            unc = aligned(run_twin(unc_spec, chip.xp), T)
            eff["chip_without_compensation_vs_reference"] = agreement(unc[-1].sum(axis=1), rc)
        eff["chip_without_compensation_backend"] = "snnhw-exact-core (bit-exact with Lava fixed_pt)"
        eff["chip_with_compensation_vs_reference"] = dict(agree)
    return eff


def _float_target_notes(model: NirModel) -> List[str]:
    """What the float twin's spec approximates (target ``float``)."""
    notes = []
    for st in model.neuron_stages:
        nd, name = st.neuron, safe_name(st.name)
        if np.ptp(nd.alpha) > 1e-9 or np.ptp(nd.beta) > 1e-9:
            notes.append(f"layer {name}: per-neuron time constants share one decay pair (median)")
        if np.any(nd.v_reset != 0):
            notes.append(f"layer {name}: v_reset != 0 mapped by shifting v (initial state differs)")
        if (st.bias is not None or st.bias_rec is not None) and np.median(nd.alpha) > 0:
            notes.append(f"layer {name}: bias on the synaptic current mapped to its steady state on v")
    return notes


def _effects(model: NirModel, inp: _Inputs, chip: _Chip, rc, agree: Dict, target: str, reset: str,
             max_exp: int, split: bool = False):
    """(lossy notes, measured effects) of what the chip cannot do exactly."""
    lossy = [f"layer {m.name}: {n}" for m in chip.maps for n in m.notes] + list(chip.lossy)
    effects: Dict[str, Dict] = {}
    if chip.emu is not None:
        zero_ref = float_reference(model, inp.x, reset="zero")
        effects["subtract_reset"] = {
            "emulated": IF_EMULATION_NOTE if isinstance(chip.emu, IfEmu) else EMULATION_NOTE,
            "float_zero_reset_vs_subtract_reference": agreement(zero_ref.output.sum(axis=1), rc)}
    elif reset.startswith("subtract") and target == "loihi2":
        lossy.append("subtractive reset: Loihi resets v to 0")
        effects["subtract_reset"] = _subtract_effects(model, inp, chip, rc, agree, reset, max_exp, split)
    if reset == "subtract-undecayed" and target == "float" and chip.dag is None:
        lossy.append("float twin: snnTorch's subtract-undecayed reset run as subtract (theta off at the spike step)")
    if reset.startswith("subtract") and chip.dag is not None:
        lossy.append("graph mapping: no subtract-reset compensation (thresholds as in the graph)")
    if any(np.ptp(nd.alpha) > 1e-9 or np.ptp(nd.beta) > 1e-9 for nd in model.graph.neurons.values()):
        shared = float_reference(model, inp.x, reset=reset, shared_decay=True)
        effects["per_neuron_tau"] = {"float_shared_decay_vs_reference": agreement(shared.output.sum(axis=1), rc)}
    if target == "float":
        lossy += _float_target_notes(model)
    return lossy, effects


def _write_run(out: Path, report: Dict, model: NirModel, inp: _Inputs, chip: _Chip, ref: RefResult,
               chip_al: List[np.ndarray], target: str, chip_v: Optional[np.ndarray] = None, out_k: int = -1) -> None:
    """The run directory: spec.json, verify/*.npy, model.net (loihi2), model.nir, plots, report.json."""
    x = inp.x
    files = ["spec.json", "verify/inputs.npy", "verify/lava_output_spikes.npy",
             "verify/float_output_spikes.npy", "report.json"]
    atomic.write_text(out / "spec.json", chip.spec.to_json() if chip.spec is not None else
                      json.dumps(atomic.to_jsonable((chip.emu or chip.dag).as_dict()), indent=2))
    binary = np.all((x == 0) | (x == 1))
    atomic.save_npy(out / "verify" / "inputs.npy", np.asarray(x).astype(np.uint8 if binary else np.float32))
    atomic.save_npy(out / "verify" / "lava_output_spikes.npy", chip.layers[out_k].astype(np.uint8))
    atomic.save_npy(out / "verify" / "float_output_spikes.npy", ref.output.astype(np.uint8))
    if chip_v is not None:
        atomic.save_npy(out / "verify" / "lava_output_voltage.npy", chip_v.astype(np.float32))
        atomic.save_npy(out / "verify" / "float_output_voltage.npy", ref.output_voltage.astype(np.float32))
        files += ["verify/lava_output_voltage.npy", "verify/float_output_voltage.npy"]
    if chip.emu is not None:
        report["model_net"] = report["model_nir"] = ("not written: the subtract-reset emulation (self-connections, "
                                                      "delayed taps) has no netx or NIR form")
    elif chip.spec is None:
        report["model_net"] = report["model_nir"] = "not written: the graph mapping has no NetworkSpec (not a chain)"
    elif target == "loihi2":
        from snnhw.io.netx import write_netx

        try:
            write_netx(chip.spec, out / "model.net")
            files.append("model.net")
        except SnnhwError as e:  # what netx cannot encode (e.g. weight_exp > 0), or lava-dl missing
            report["model_net"] = f"not written: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    try:
        if chip.spec is not None:
            export_nir(chip.spec, out / "model.nir", dt=model.dt, lossy=target == "float")
            files.append("model.nir")
    except (NIRFormatError, OSError) as e:
        report["model_nir"] = f"not written: {str(e).splitlines()[0]}"
    files += import_plots(out, ref.output.sum(axis=1), chip_al[out_k].sum(axis=1), report["layers"], ref.output,
                          chip_al[out_k])
    report["files"] = files
    # byte format of report.json as before: indent 2, no trailing newline
    atomic.write_text(out / "report.json", json.dumps(atomic.to_jsonable(report), indent=2))


def _load(path, dt, source, repair, reset, log):
    """(model, reset): the graph under its source's convention, repairs logged; the reset is the
    argument, else the convention's; a graph without a chain form is refused for the chip mapping."""
    model = load_model(path, dt=dt, source=source, repair=repair)
    for r in model.repairs:
        log(f"repaired {r}")
    reset = model.convention.reset if reset is None else reset
    if reset not in RESETS:
        raise InputError(f"--reset must be one of {', '.join(RESETS)}, not '{reset}'")
    if model.chain_error:
        log(f"not a chain ({model.chain_error}): mapped as a graph of populations (snnhw.nir_import.dag)")
    return model, reset


def _agreement(ref: RefResult, chip_out: np.ndarray, chip_v: Optional[np.ndarray]) -> Dict:
    """Spike-count cosine / arg-max for spiking outputs; Pearson r / arg-max of the mean voltage for readouts."""
    if chip_v is not None:
        return voltage_agreement(chip_v, ref.output_voltage)
    return dict(agreement(chip_out.sum(axis=1), ref.output.sum(axis=1)), measure="spike counts")


def _split_choice(split: Optional[bool], netx_compatible: bool, calibrate: int) -> bool:
    """Whether the calibrated chain mapping splits its weights (default: yes, unless netx or --calibrate)."""
    if split and netx_compatible:
        raise InputError("--weight-split and --netx-compatible exclude each other: netx holds one Dense per layer")
    if split and calibrate:
        raise InputError("--weight-split and --calibrate exclude each other: --calibrate trains one Dense per matrix")
    return (not netx_compatible and not calibrate) if split is None else bool(split)


def _weights_record(chip: _Chip, split: bool) -> str:
    """How the chip holds its weights (report.json ``weights``)."""
    if chip.emu is not None:
        return "split (coarse + fine) per synaptic tap, fine exponents >= 0"
    if chip.spec is None or chip.exact_meta:
        return "as in the graph mapping" if chip.spec is None else "as in the snnhw metadata"
    if any(getattr(L, "split", False) for L in chip.spec.neuron_layers()):
        return (f"split: per matrix a coarse Dense and a fine Dense (exponent - {loihi.SPLIT_SHIFT}) carrying its "
                "rounding error, "
                "into the same LIF (~15-bit weights, 2x the synapses)")
    return "8-bit: one Dense per matrix" + ("" if split else " (split off)")


def import_nir(path, *, target: str = "loihi2", dt: Optional[float] = None, reset: Optional[str] = None,
               inputs: Optional[np.ndarray] = None, rate: float = 0.1, steps: int = 100, samples: int = 32,
               seed: int = 0, out: Optional[Path] = None, compensate: bool = True, netx_compatible: bool = False,
               source: Optional[str] = None, repair: bool = False,
               log: Optional[Callable[[str], None]] = None, calibrate: int = 0, split: Optional[bool] = None,
               subtract_mode: str = "emulate") -> Dict:
    """Run the whole import (:mod:`snnhw.nir_import`) and return the report dict (also written to ``out``).

    ``source``: the framework that wrote the file (``--from``), detected when None; it sets dt (unless
    ``dt`` or the graph metadata does), the reset (unless ``reset`` is given) and the discretization.
    ``repair``: fix known exporter bugs (:mod:`snnhw.io.nir.graph`), each repair logged on one line.
    ``calibrate``: N > 0 fine-tunes the chip spec on N calibration inputs (:mod:`snnhw.nir_import.calibrate`).
    ``split``: split weights (:func:`snnhw.nir_import.quantize.quantize_model`); None: on for the calibrated
    chain mapping unless ``netx_compatible`` or ``calibrate`` (neither can hold a second synapse).
    ``subtract_mode``: ``emulate`` (default: :mod:`snnhw.nir_import.emulate` or
    :mod:`~snnhw.nir_import.emulate_if` where the graph allows it and neither ``calibrate`` nor
    ``netx_compatible`` is given) or ``compensate``
    (:mod:`snnhw.nir_import.compensate`) for a subtract reset on loihi2.
    """
    log = log or (lambda msg: None)
    if target not in TARGETS:
        raise InputError(f"--target must be loihi2 or float, not '{target}'")
    if reset is not None and reset not in RESETS:
        raise InputError(f"--reset must be one of {', '.join(RESETS)}, not '{reset}'")
    if subtract_mode not in SUBTRACT_MODES:
        raise InputError(f"--subtract-mode must be one of {', '.join(SUBTRACT_MODES)}, not '{subtract_mode}'")
    max_exp = 0 if netx_compatible else EXP_MAX
    opts = dict(subtract_mode=subtract_mode, calibrate=calibrate, compensate=compensate, max_exp=max_exp,
                netx=netx_compatible,
                split=_split_choice(split, netx_compatible, calibrate))
    model, reset = _load(path, dt, source, repair, reset, log)
    inp = _inputs(model, inputs, rate, steps, samples, seed)
    B, T = inp.x.shape[:2]
    log(f"graph: {len(model.graph.populations)} neuron populations, input {model.input_shape}, dt = {model.dt} "
        f"({model.dt_source}); convention {model.convention.name} ({model.convention_source}); reset {reset}; "
        f"{B} samples x {T} steps")
    ref = float_reference(model, inp.x, reset=reset)
    if model.chain_error:
        cmodel = model
        chip = _run_dag(model, inp, reset, target, log)
    else:
        cmodel = chip_model(model, [inp.x, inp.calib], reset)
        chip = _run_chain(cmodel, inp, reset, target, opts, log)
    chip_al = _aligned(chip, T)
    out_k = model.graph.populations.index(model.graph.output)
    chip_v = _chip_voltage(cmodel, chip, T)
    rc = ref.output.sum(axis=1)
    agree = _agreement(ref, chip_al[out_k], chip_v)
    lossy, effects = _effects(cmodel, inp, chip, rc, agree, target, reset, max_exp, opts["split"])
    report = {
        "source": str(path), "target": target, "backend": chip.backend, "dt": model.dt, "dt_source": model.dt_source,
        "convention": {"from": model.convention.name, "how": model.convention_source,
                       "meaning": model.convention.note},
        "repairs": list(model.repairs), "output": "voltage" if chip_v is not None else "spikes",
        "reset": reset, "inputs": inp.desc, "latency_steps": chip.latency,
        "nir_type_check": model.type_check_error or "passed",
        "spec_from": "snnhw metadata (bit-exact)" if chip.exact_meta else "graph mapping" if chip.dag else (
            "subtract-reset emulation" if chip.emu else "hardware-aware calibration" if target == "loihi2" else
            "float twin"),
        "agreement": agree, "reference_ties": ties(rc),
        "layers": layer_report([safe_name(s.name) for s in model.neuron_stages] if chip.dag is None else
                               [safe_name(p) for p in model.graph.populations], ref.layer_spikes, chip_al),
        "mapping": "chain of stages" if chip.dag is None else dict(chip.dag.as_dict(), why=model.chain_error),
        "quantization": [m.as_dict() for m in chip.maps] if chip.emu is None else chip.emu.summary(),
        "lossy": lossy, "effects": effects,
        "compensation": chip.compensation, "calibration": chip.calibration,
        "weights": _weights_record(chip, opts["split"]), "headroom": chip.headroom,
        "comparison": "chip layer k's steps k+1..k+T vs reference steps 0..T-1 (Loihi latency removed); "
                      f"inputs padded with {chip.latency} zero steps",
    }
    if out is not None:
        _write_run(Path(out), report, model, inp, chip, ref, chip_al, target, chip_v, out_k)
    return report
