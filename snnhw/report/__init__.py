"""Run reports: ``report.json`` (machine-readable, schema :class:`~snnhw.report.schema.RunReport`),
``report.md`` (for people) and plots (:mod:`snnhw.report.plots`)."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Dict, List, Optional

from snnhw.io.atomic import write_json, write_text
from snnhw.report.schema import (CLASS_DECISION, REPORT_FORMAT, ArtifactRoundTrip, ByModel, LayerReport,
                                 RunReport)

__all__ = ["CLASS_DECISION", "REPORT_FORMAT", "RunReport", "package_versions", "render_markdown", "write_reports"]

PACKAGES = ("snnhw", "torch", "numpy", "lava-nc", "lava-dl", "nir", "h5py", "scikit-learn", "mnist1d")


def package_versions() -> Dict[str, Optional[str]]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def _num(v, fmt="{:.4f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _result_lines(r: RunReport) -> List[str]:
    acc, ag, n = r.accuracy, r.agreement, r.accuracy_samples
    lines = ["## Result", "", "| | accuracy | samples |", "|---|---|---|",
             f"| float twin (shadow weights, float CUBA LIF) | {_pct(acc.float)} | {n.float} |",
             f"| quantized (snnhw's Loihi-exact core) | {_pct(acc.quantized)} | {n.quantized} |",
             f"| Lava ({ag.backend if ag else 'not run'}) | {_pct(acc.lava)} | {n.lava} |", ""]
    lines += [f"Verification: **{r.verification or 'none'}**.", ""]
    if ag and ag.output_voltage is not None:
        lines += [f"Torch vs Lava on {ag.samples} verification samples (voltage readout, v read back from Lava "
                  f"every step): output-voltage agreement **{_num(ag.output_voltage, '{:.6f}')}** "
                  f"({ag.identical_samples} / {ag.samples} samples whose output v trace and spikes are bit for "
                  f"bit identical), output-spike agreement {_num(ag.output_spikes, '{:.6f}')}, prediction "
                  f"agreement **{_num(ag.predictions)}**.", ""]
    elif ag:
        lines += [f"Torch vs Lava on {ag.samples} verification samples: output-spike agreement "
                  f"**{_num(ag.output_spikes, '{:.6f}')}**, prediction agreement **{_num(ag.predictions)}**, "
                  f"{ag.identical_samples} / {ag.samples} samples spike-for-spike identical.", ""]
    else:
        lines += [f"Verification on Lava: not run ({r.verification_note}).", ""]
    if r.artifact_roundtrip is not None:
        lines += _roundtrip_lines(r.artifact_roundtrip)
    return lines


def _roundtrip_lines(rt: List[ArtifactRoundTrip]) -> List[str]:
    """The artifact round trip: each written file re-read by snnhw and re-simulated on its core."""
    if not rt:
        return ["Artifact round trip: no file to re-read.", ""]
    volt = rt[0].output_voltage is not None
    lines = ["Artifact round trip (each file re-read by snnhw's reader and re-simulated on snnhw's core, "
             f"against the trained network's output spikes{' and output v at every step' if volt else ''}):", "",
             f"| file | reader | identical samples | output-spike agreement |{' output-voltage agreement |' * volt}"
             " exact |", "|---|---|---|---|" + "---|" * volt + "---|"]
    six = "{:.6f}"
    lines += [f"| {a.artifact} | `{a.reader}` | {a.identical_samples} / {a.samples} | {_num(a.output_spikes, six)} |"
              + (f" {_num(a.output_voltage, six)} |" if volt else "") + f" {'yes' if a.exact else 'NO'} |" for a in rt]
    return lines + [""]


def _layer_row(l: LayerReport) -> str:
    fr: ByModel = l.firing_rate
    silent = " (silent)" if l.silent else ""
    return (f"| {l.name}{silent} | {l.kind} | {l.neurons} | {l.synapses} | {l.weight_exp} | {l.vth_mant} | "
            f"{l.i_decay} | {l.v_decay} | {_num(l.zero_weight_fraction, '{:.3f}')} | {_num(fr.float)} | "
            f"{_num(fr.quantized)} | {_num(fr.lava)} |")


def render_markdown(r: RunReport) -> str:
    lines = [f"# snnhw run: {r.recipe.name} on {r.target}", "", r.recipe.description, ""]
    lines += _result_lines(r)
    lines += [f"Class decision: {r.class_decision}.", "", "## Layers", "",
              "| layer | kind | neurons | synapses | weight_exp | vth_mant | i_decay | v_decay | zero weights "
              "| rate float | rate quantized | rate Lava |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_layer_row(l) for l in r.layers]
    silent = [l.name for l in r.layers if l.silent]
    lines += ["", f"Silent layers (no spike on any verification sample, quantized core): "
              f"{', '.join(silent) if silent else 'none'}.", ""]
    e = r.energy_estimate_uJ
    lines += ["## Cost", "", f"Synaptic operations per inference (mean over verification samples): "
              f"{_num(r.synops_per_inference, '{:.1f}')}."]
    if e:
        lines += ["", f"Energy estimate: **{e.value:.4f} µJ** per inference = {e.formula} "
                  f"({e.source}). An order-of-magnitude estimate, not a measurement."]
    hist = r.training.history
    times = vars(r.times)
    lines += ["", "## Run", "", f"- seed {r.seed}, device {r.device}, processes {r.world_size}",
              f"- init: {r.init.get('method')} ({r.init.get('implementation', '')})",
              f"- epochs: {r.training.epochs}, final training loss {_num(hist[-1]['loss'] if hist else None)}, "
              f"exported epoch {r.training.selected_epoch} ({r.training.selection})",
              "- times: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items() if isinstance(v, (int, float))),
              f"- files: {', '.join(r.files)}"]
    lines += [f"- note: {note}" for note in r.notes]
    lines += ["", "## Packages", "", ", ".join(f"{k} {v}" for k, v in r.packages.items()), ""]
    return "\n".join(lines)


def write_reports(out_dir: str, report: RunReport) -> None:
    """``report.json`` (indent 2, sorted keys) and ``report.md`` in ``out_dir``, each written atomically."""
    write_json(os.path.join(out_dir, "report.json"), report.to_dict(), indent=2, sort_keys=True)
    write_text(os.path.join(out_dir, "report.md"), render_markdown(report))
