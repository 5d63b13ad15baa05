"""``snnhw train`` end to end: recipe -> checks -> init -> QAT -> export -> Lava verification -> run directory.

Everything a user can get wrong (recipe keys, target, dataset files, a model that does not fit the
target) is checked **before** any directory is created. Training writes into a hidden work directory
next to the run directory (``.<name>.partial``), where ``checkpoint.pt`` lands after every epoch;
``--resume`` continues from there. Only when the run is complete is the work directory renamed to the
run directory (replacing an older run of the same name), so a run directory is never half-written.

Run directory contents: ``checkpoint.pt``, ``spec.json`` (the trained :class:`NetworkSpec`),
``model.net`` (lava-dl netx; dense/recurrent networks), ``model.nir`` (when :mod:`snnhw.io.nir`
provides ``export_nir``), ``report.json``, ``report.md``, ``plots/*.png`` and ``verify/``:
``inputs.npy`` (uint8 0/1 [samples, steps, inputs]: exactly the spikes the chip receives, column t-1
sent at time step t), ``labels.npy`` (int64 [samples]), ``torch_output_spikes.npy`` and
``lava_output_spikes.npy`` (uint8 [samples, steps, outputs], index t-1 = time step t).
"""
from __future__ import annotations

import copy
import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from snnhw.core.layers import SpikingConv, SpikingDense, SpikingNet, SpikingSumPool, weight_grid
from snnhw.core.network import simulate
from snnhw.data import Encoder, load_dataset
from snnhw.report import CLASS_DECISION, package_versions, write_reports
from snnhw.report import plots as plotting
from snnhw.targets import load_target
from snnhw.train import build
from snnhw.train.checkpoint import atomic_write_bytes, atomic_write_text
from snnhw.train.loop import dist_info, evaluate, train
from snnhw.train.recipe import load_recipe
from snnhw.train.verify import verify

DEFAULT_EXPORT_DIR = "export"


@dataclass
class RunOptions:
    recipe: str = "digits_mlp"
    target: str = "loihi2"
    out: Optional[str] = None
    data_dir: str = "data"
    device: str = "cpu"
    seed: Optional[int] = None
    epochs: Optional[int] = None
    init: Optional[str] = None
    resume: bool = False
    verify_samples: Optional[int] = None
    backend: str = "lava"
    progress: bool = True


def work_dir_for(out: str) -> str:
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.partial")


def _encoder(recipe: Dict, seed: int) -> Encoder:
    d = recipe["data"]
    return Encoder(d["encoding"], d["steps"], seed=seed, levels=d["levels"], lo=d["lo"], hi=d["hi"],
                   pad=d["pad_steps"])


def _n_channels(data, enc: Encoder) -> int:
    if data.kind == "events":
        return int(data.x_train.shape[2])
    if data.kind == "series":
        return enc.levels if enc.name == "thermometer" else int(data.x_train.shape[1])
    return enc.channels(int(np.prod(data.x_train.shape[1:])))


def prepare(opts: RunOptions):
    """Load and check everything that can fail on bad input; creates nothing on disk."""
    recipe = load_recipe(opts.recipe)
    if opts.seed is not None:
        recipe["train"]["seed"] = int(opts.seed)
    if opts.epochs is not None:
        recipe["train"]["epochs"] = int(opts.epochs)
    if opts.init is not None:
        recipe["init"]["method"] = opts.init
    if opts.verify_samples is not None:
        recipe["data"]["verify_samples"] = int(opts.verify_samples)
    if opts.device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device '{opts.device}'; choose cpu or cuda")
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    target = load_target(opts.target)
    d = recipe["data"]
    if d["encoding"] == "events" and d["dataset"] not in ("nmnist", "shd"):
        raise ValueError(f"recipe: encoding 'events' needs an event dataset, not '{d['dataset']}'")
    data = load_dataset(d["dataset"], data_dir=opts.data_dir, steps=d["steps"], split_seed=d["split_seed"],
                        duration_s=d["duration_s"] or None, max_samples=d["max_samples"] or None)
    enc = _encoder(recipe, recipe["train"]["seed"])
    shape = build.input_shape_for(recipe, data.feature_shape, _n_channels(data, enc))
    plan = build.plan_layers(recipe, shape, data.n_classes)
    fit = target.check_fit(build.layer_costs(plan))
    return recipe, target, data, enc, shape, plan, fit


def float_twin(model: SpikingNet) -> SpikingNet:
    """The same network with the float shadow weights and the float CUBA LIF (no quantization)."""
    twin = copy.deepcopy(model)
    twin.quantized = False
    for l in twin.neuron_layers():
        l.quantized = False
    return twin


def _rates(layer_spikes) -> List[float]:
    return [float(np.asarray(s, dtype=np.float64).mean()) for s in layer_spikes]


def synops(model: SpikingNet, inputs: np.ndarray, layer_spikes) -> float:
    """Mean synaptic events per inference: for every layer, each input spike times the number of
    neurons it reaches (recurrent spikes included)."""
    total = 0.0
    s_in = torch.as_tensor(np.asarray(inputs) != 0, dtype=torch.float32)
    k = 0
    for layer in model.layers:
        if not hasattr(layer, "neuron"):
            continue
        out = torch.as_tensor(np.asarray(layer_spikes[k]) != 0, dtype=torch.float32)
        if isinstance(layer, SpikingDense):
            total += float(s_in.sum()) * layer.n_out
            if layer.weight_rec is not None:
                total += float(out.sum()) * layer.n_out
        elif isinstance(layer, (SpikingConv, SpikingSumPool)):
            B, T = s_in.shape[:2]
            x = s_in.reshape(B * T, *layer.input_shape)
            c = layer.input_shape[0]
            if isinstance(layer, SpikingConv):
                ones = torch.ones(1, c, *layer.weight.shape[2:])
                cnt = F.conv2d(x, ones, stride=layer.stride, padding=layer.padding).sum() * layer.weight.shape[0]
            else:
                ones = torch.ones(c, 1, *layer.kernel)
                cnt = F.conv2d(x, ones, stride=layer.kernel, groups=c).sum()
            total += float(cnt)
        s_in = out
        k += 1
    return total / max(1, len(inputs))


def run(opts: RunOptions, log: Callable[[str], None] = print, on_batch=None) -> Dict:
    """Train, export, verify; returns the report dict. Raises ValueError-family errors (one line)."""
    t_start = time.time()
    recipe, target, data, enc, shape, plan, fit = prepare(opts)
    seed = int(recipe["train"]["seed"])
    name = recipe["recipe"]["name"]
    out = os.path.abspath(opts.out or os.path.join(DEFAULT_EXPORT_DIR, f"{name}-{target.name}"))
    work = work_dir_for(out)
    info = dist_info()
    ckpt = os.path.join(work, "checkpoint.pt")
    resuming = opts.resume and os.path.exists(ckpt)
    if opts.resume and not resuming:
        log(f"--resume: no checkpoint at {ckpt}; starting from scratch")
    if info.main and not resuming and os.path.exists(work):
        shutil.rmtree(work)
    if info.main:
        os.makedirs(work, exist_ok=True)

    torch.manual_seed(seed)
    model = build.build_model(recipe, target, shape, data.n_classes)
    calib_n = min(int(recipe["init"]["calib_samples"]), len(data.y_train))
    init_report: Dict = {}
    if not resuming:
        calib = enc(data.x_train[:calib_n], index=np.arange(calib_n))
        init_report = build.initialize(model, recipe, calib, seed)
    t_train = time.time()
    res = train(model, recipe, data, enc, checkpoint_path=ckpt, init_report=init_report, device=opts.device,
                resume=resuming, progress=opts.progress, on_batch=on_batch)
    train_seconds = time.time() - t_train
    if not info.main:
        return {}
    model = res.model.to("cpu")
    init_report = res.init_report
    notes: List[str] = []

    # ---- the trained network as a spec; the model's forward must equal simulate(spec) ----------
    spec = model.to_spec()
    spec.metadata.update({"recipe": name, "target": target.name, "steps": enc.total_steps})
    n_ver = min(int(recipe["data"]["verify_samples"]), len(data.y_test))
    idx = np.arange(n_ver)
    inputs = (enc(data.x_test[idx], index=idx + len(data.y_train)).numpy() != 0).astype(np.uint8)
    labels = data.y_test[idx].astype(np.int64)
    with torch.no_grad():
        m_out, m_layers = model(torch.as_tensor(inputs, dtype=torch.float32), return_all=True)
    sim = simulate(spec, inputs)
    if not torch.equal(m_out.cpu(), sim.output.to(m_out.dtype)):
        raise RuntimeError("internal error: the trained model and simulate(model.to_spec()) disagree")
    q_layers = [(s.numpy() != 0) for s in sim.layer_spikes]
    torch_out = (sim.output.numpy() != 0).astype(np.uint8)

    # ---- exports ---------------------------------------------------------------------------------
    files = ["checkpoint.pt", "spec.json"]
    atomic_write_text(os.path.join(work, "spec.json"), spec.to_json())
    netx_path = os.path.join(work, "model.net")
    if target.quantized:
        try:
            from snnhw.io.netx import write_netx

            write_netx(spec, netx_path)
            files.append("model.net")
        except (ValueError, ImportError) as e:
            notes.append(f"model.net not written: {str(e).splitlines()[0]}")
    else:
        notes.append("model.net not written: netx files hold integer Loihi parameters; the float target has none")
    try:
        from snnhw.io.nir import export_nir

        export_nir(spec, os.path.join(work, "model.nir"))
        files.append("model.nir")
    except ImportError:
        notes.append("model.nir not written: snnhw.io.nir.export_nir is not available")
    except ValueError as e:
        notes.append(f"model.nir not written: {str(e).splitlines()[0]}")

    # ---- verification on Lava --------------------------------------------------------------------
    ver = None
    verification_note = ""
    t_ver = time.time()
    if target.quantized:
        backend = opts.backend
        if backend == "netx" and "model.net" not in files:
            raise ValueError("--backend netx needs model.net, which this network cannot be written to")
        log(f"verifying {n_ver} test samples: snnhw core vs {'Lava' if backend == 'lava' else 'lava-dl netx'} ...")
        ver = verify(spec, inputs, labels, backend=backend, netx_path=netx_path)
        lava_out = ver["lava_output"]
    else:
        verification_note = "the float target has no integer network to run on Lava"
        lava_out = None
    ver_seconds = time.time() - t_ver
    vdir = os.path.join(work, "verify")
    os.makedirs(vdir, exist_ok=True)

    def _npy(path, arr):
        import io as _io

        buf = _io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(path, buf.getvalue())

    _npy(os.path.join(vdir, "inputs.npy"), inputs)
    _npy(os.path.join(vdir, "labels.npy"), labels)
    _npy(os.path.join(vdir, "torch_output_spikes.npy"), torch_out)
    files += ["verify/inputs.npy", "verify/labels.npy", "verify/torch_output_spikes.npy"]
    if lava_out is not None:
        _npy(os.path.join(vdir, "lava_output_spikes.npy"), lava_out)
        files.append("verify/lava_output_spikes.npy")

    # ---- accuracies and rates -------------------------------------------------------------------
    twin = float_twin(model)
    ev_f = evaluate(twin, data, enc)
    ev_q = evaluate(model, data, enc) if target.quantized else None
    with torch.no_grad():
        _, f_layers = twin(torch.as_tensor(inputs, dtype=torch.float32), return_all=True)
    f_rates = _rates([s.numpy() for s in f_layers])
    q_rates = _rates(q_layers) if target.quantized else [None] * len(q_layers)
    l_rates = _rates(ver["lava_layers"]) if ver and ver["lava_layers"] is not None else [None] * len(q_layers)
    names = [l.name for l in model.neuron_layers()]
    layers = []
    weight_layers = []
    for i, (l, sl) in enumerate(zip(model.neuron_layers(), spec.neuron_layers())):
        w = np.asarray(sl.weight)
        entry = {"name": l.name, "kind": l.kind, "neurons": int(np.prod(l.out_shape)),
                 "synapses": int(l.synapse_count()), "weight_exp": sl.weight_exp,
                 "vth_mant": sl.neuron.vth_mant, "i_decay": sl.neuron.i_decay, "v_decay": sl.neuron.v_decay,
                 "zero_weight_fraction": float(np.mean(w == 0)) if not isinstance(l, SpikingSumPool) else 0.0,
                 "firing_rate": {"float": f_rates[i], "quantized": q_rates[i], "lava": l_rates[i]},
                 "silent": bool((q_rates[i] if target.quantized else f_rates[i]) == 0.0)}
        if isinstance(l, SpikingDense) and l.weight_rec is not None:
            entry["rec_exp"] = sl.rec_exp
            entry["zero_weight_fraction_rec"] = float(np.mean(np.asarray(sl.weight_rec) == 0))
        layers.append(entry)
        if not isinstance(l, SpikingSumPool):
            step, lim = weight_grid(sl.weight_exp) if target.quantized else (0, float(np.abs(w).max() or 1))
            weight_layers.append({"name": l.name, "weights": w, "step": step, "limit": lim,
                                  "weight_exp": sl.weight_exp})
    spk = q_layers if target.quantized else [s.numpy() for s in f_layers]
    syn = synops(model, inputs, spk)
    neuron_updates = sum(e["neurons"] for e in layers) * enc.total_steps
    energy = target.energy_uJ(syn, neuron_updates)

    plot_files = plotting.all_plots(work, history=res.history, names=names,
                                    rates={"float": f_rates, "quantized": q_rates, "Lava": l_rates},
                                    layer_spikes=spk, inputs=inputs, weight_layers=weight_layers)
    files += [f"plots/{p}" for p in plot_files] + ["report.json", "report.md"]

    report = {
        "format": "snnhw-report-1",
        "recipe": {"name": name, "description": recipe["recipe"]["description"], "resolved": recipe},
        "target": target.name, "seed": seed, "device": opts.device, "world_size": info.world,
        "dataset": {"name": data.name, "train": int(len(data.y_train)), "test": int(len(data.y_test)),
                    "steps": recipe["data"]["steps"], "pad_steps": recipe["data"]["pad_steps"], "encoding": recipe["data"]["encoding"],
                    "inputs": int(np.prod(shape))},
        "accuracy": {"float": ev_f["accuracy"], "quantized": ev_q["accuracy"] if ev_q else None,
                     "lava": ver["lava_accuracy"] if ver else None},
        "accuracy_samples": {"float": ev_f["n"], "quantized": ev_q["n"] if ev_q else None,
                             "lava": n_ver if ver else None},
        "agreement": ({"output_spikes": ver["output_spikes"], "predictions": ver["predictions"],
                       "identical_samples": ver["identical_samples"], "samples": ver["samples"],
                       "backend": ver["backend"], "torch_accuracy_on_samples": ver["torch_accuracy"]}
                      if ver else None),
        "verification_note": verification_note,
        "layers": layers,
        "fit": fit,
        "synops_per_inference": syn,
        "neuron_updates_per_inference": neuron_updates,
        "energy_estimate_uJ": energy,
        "class_decision": CLASS_DECISION,
        "init": init_report,
        "training": {"epochs": recipe["train"]["epochs"], "history": res.history,
                     "resumed_from_epoch": res.resumed_from_epoch},
        "files": files,
        "notes": notes,
        "packages": package_versions(),
        "times": {"train_seconds": res.seconds, "this_process_train_seconds": train_seconds,
                  "verify_seconds": ver_seconds, "total_seconds": time.time() - t_start,
                  "lava_seconds": ver["lava_seconds"] if ver else None},
    }
    report["times"]["total_seconds"] = time.time() - t_start
    write_reports(work, report)

    # ---- publish: the work directory becomes the run directory ----------------------------------
    os.makedirs(os.path.dirname(out), exist_ok=True)
    old = None
    if os.path.exists(out):
        old = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    report["out_dir"] = out
    return report
