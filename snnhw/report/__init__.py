"""Run reports: ``report.json`` (machine-readable), ``report.md`` (for people) and plots.

``report.json`` keys: ``target``, ``seed``, ``recipe`` (name + the resolved recipe), ``accuracy``
{``float``, ``quantized``, ``lava``} with ``accuracy_samples``, ``agreement`` {``output_spikes``,
``predictions``, ``identical_samples``, ``samples``, ``backend``}, ``layers`` (per neuron layer: name,
kind, neurons, synapses, weight_exp, vth_mant, decays, zero-weight fraction, firing rate float /
quantized / Lava, silent), ``synops_per_inference``, ``energy_estimate_uJ`` (value, formula, source),
``class_decision``, ``init``, ``training`` (history), ``files``, ``packages``, and ``times`` — the only
key whose content differs between two runs with the same seed.
"""
from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Dict

from snnhw.train.checkpoint import atomic_write_text

CLASS_DECISION = ("the output neuron with the most spikes over the sample's time steps; ties go to the "
                  "lowest class index; a silent output layer predicts class 0")


def package_versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("snnhw", "torch", "numpy", "lava-nc", "lava-dl", "nir", "h5py", "scikit-learn", "mnist1d"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def _num(v, fmt="{:.4f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def render_markdown(r: Dict) -> str:
    acc, ag = r["accuracy"], r.get("agreement") or {}
    n = r.get("accuracy_samples", {})
    lines = [f"# snnhw run: {r['recipe']['name']} on {r['target']}", "",
             f"{r['recipe'].get('description', '')}", "",
             "## Result", "",
             "| | accuracy | samples |", "|---|---|---|",
             f"| float twin (shadow weights, float CUBA LIF) | {_pct(acc.get('float'))} | {n.get('float', 'n/a')} |",
             f"| quantized (snnhw's Loihi-exact core) | {_pct(acc.get('quantized'))} | {n.get('quantized', 'n/a')} |",
             f"| Lava ({ag.get('backend', 'not run')}) | {_pct(acc.get('lava'))} | {n.get('lava', 'n/a')} |", ""]
    if ag:
        lines += [f"Torch vs Lava on {ag['samples']} verification samples: output-spike agreement "
                  f"**{_num(ag['output_spikes'], '{:.6f}')}**, prediction agreement **{_num(ag['predictions'])}**, "
                  f"{ag['identical_samples']} / {ag['samples']} samples spike-for-spike identical.", ""]
    else:
        lines += [f"Verification on Lava: not run ({r.get('verification_note', '')}).", ""]
    lines += [f"Class decision: {r['class_decision']}.", "",
              "## Layers", "",
              "| layer | kind | neurons | synapses | weight_exp | vth_mant | i_decay | v_decay | zero weights "
              "| rate float | rate quantized | rate Lava |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for l in r["layers"]:
        fr = l["firing_rate"]
        silent = " (silent)" if l.get("silent") else ""
        lines.append(f"| {l['name']}{silent} | {l['kind']} | {l['neurons']} | {l['synapses']} | {l['weight_exp']} | "
                     f"{l['vth_mant']} | {l['i_decay']} | {l['v_decay']} | {_num(l.get('zero_weight_fraction'), '{:.3f}')} | "
                     f"{_num(fr.get('float'))} | {_num(fr.get('quantized'))} | {_num(fr.get('lava'))} |")
    silent = [l["name"] for l in r["layers"] if l.get("silent")]
    lines += ["", f"Silent layers (no spike on any verification sample, quantized core): "
              f"{', '.join(silent) if silent else 'none'}.", ""]
    e = r.get("energy_estimate_uJ")
    lines += ["## Cost", "", f"Synaptic operations per inference (mean over verification samples): "
              f"{_num(r.get('synops_per_inference'), '{:.1f}')}."]
    if e:
        lines += ["", f"Energy estimate: **{e['value']:.4f} µJ** per inference = {e['formula']} "
                  f"({e['source']}). An order-of-magnitude estimate, not a measurement."]
    lines += ["", "## Run", "", f"- seed {r['seed']}, device {r.get('device')}, processes {r.get('world_size', 1)}",
              f"- init: {r['init'].get('method')} ({r['init'].get('implementation', '')})",
              f"- epochs: {r['training']['epochs']}, final training loss "
              f"{_num(r['training']['history'][-1]['loss'] if r['training']['history'] else None)}",
              "- times: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["times"].items() if isinstance(v, (int, float))),
              f"- files: {', '.join(r['files'])}"]
    for note in r.get("notes", []):
        lines.append(f"- note: {note}")
    lines += ["", "## Packages", "", ", ".join(f"{k} {v}" for k, v in r["packages"].items()), ""]
    return "\n".join(lines)


def write_reports(out_dir: str, report: Dict) -> None:
    import os

    atomic_write_text(os.path.join(out_dir, "report.json"), json.dumps(report, indent=2, sort_keys=True) + "\n")
    atomic_write_text(os.path.join(out_dir, "report.md"), render_markdown(report))
