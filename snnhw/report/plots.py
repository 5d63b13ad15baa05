"""Plots, one module for all of snnhw (matplotlib, Agg backend; each PNG written atomically through
:func:`snnhw.io.atomic.save_figure`). One section per use.

Run directory of ``snnhw train`` (``plots/``, drawn by :func:`run_plots`):

* ``training_curves.png`` — loss, train/test accuracy and per-layer firing rate per epoch;
* ``firing_rates.png``    — per-layer firing rate (spikes / neuron / step): float vs quantized vs Lava;
* ``spike_raster.png``    — every neuron layer's spikes for the first verification sample;
* ``weight_histograms.png`` — each layer's trained mantissas on the quantization grid.

Propagation study (``snnhw propagate``, :func:`propagation_plots`): ``var_u.png``, ``spike_count.png``
and, for T > 1, ``spike_count_per_step.png`` (Micheli et al.'s Figs 2-6).

Run directory of ``snnhw import-nir`` (:func:`import_plots`): ``output_counts.png`` (output spike counts,
float reference vs chip) and ``layers_and_raster.png`` (per-layer rates and sample 0's output raster).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from snnhw.io.atomic import save_figure

DPI = 90  # the run and import plots (the propagation study keeps its 72: PROPAGATE_DPI)


def _save(fig, path: str) -> None:
    save_figure(fig, path, dpi=DPI, bbox_inches="tight")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------------------
# run directory of `snnhw train`
# ------------------------------------------------------------------------------------------------
@dataclass
class WeightPanel:
    """One layer's histogram: its weight mantissas (or float weights), the grid ``step`` (0: none)
    and the axis ``limit``."""

    name: str
    weights: np.ndarray
    step: float
    limit: float
    weight_exp: int = 0


def training_curves(history: List[Dict], path: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    ep = [h["epoch"] for h in history]
    ax[0].plot(ep, [h["loss"] for h in history], marker="o")
    ax[0].set(title="training loss", xlabel="epoch")
    ax[1].plot(ep, [h["train_accuracy"] for h in history], marker="o", label="train (quantized)")
    if history and history[0].get("val_accuracy") is not None:
        ax[1].plot(ep, [h["val_accuracy"] for h in history], marker="s", label="validation (quantized)")
    ax[1].set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    ax[1].legend()
    if history:
        for name in history[0]["rates"]:
            ax[2].plot(ep, [h["rates"][name] for h in history], marker=".", label=name)
        ax[2].legend(fontsize=7)
    ax[2].set(title="firing rate (spikes/neuron/step)", xlabel="epoch")
    _save(fig, path)


def firing_rates(names: Sequence[str], rates: Dict[str, Sequence[Optional[float]]], path: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(names), 3.4))
    x = np.arange(len(names))
    keys = [k for k in rates if any(v is not None for v in rates[k])]
    w = 0.8 / max(1, len(keys))
    for i, k in enumerate(keys):
        vals = [np.nan if v is None else v for v in rates[k]]
        ax.bar(x + (i - (len(keys) - 1) / 2) * w, vals, w, label=k)
    ax.set_xticks(x, names)
    ax.set(title="firing rate per layer (verification samples)", ylabel="spikes / neuron / step")
    ax.legend()
    _save(fig, path)


def spike_raster(names: Sequence[str], layer_spikes: Sequence[np.ndarray], inputs: np.ndarray, path: str) -> None:
    plt = _plt()
    panels = [("input", inputs)] + list(zip(names, layer_spikes))
    fig, ax = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2))
    ax = np.atleast_1d(ax)
    for a, (name, s) in zip(ax, panels):
        s0 = np.asarray(s[0])
        t, n = np.nonzero(s0)
        a.scatter(t + 1, n, s=2, marker="|")
        a.set(title=name, xlabel="time step", ylabel="neuron", xlim=(0.5, s0.shape[0] + 0.5))
    fig.suptitle("spike raster, verification sample 0 (quantized core)")
    _save(fig, path)


def weight_histograms(layers: Sequence[WeightPanel], path: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, max(1, len(layers)), figsize=(3.2 * max(1, len(layers)), 3.0))
    ax = np.atleast_1d(ax)
    for a, l in zip(ax, layers):
        w = np.asarray(l.weights).ravel()
        bins = np.arange(-l.limit - l.step / 2, l.limit + l.step, l.step) if l.step else 50
        a.hist(w, bins=bins)
        a.set(title=f"{l.name} (step {l.step}, exp {l.weight_exp})", xlabel="weight mantissa")
        a.set_yscale("log")
    _save(fig, path)


RUN_PLOTS = ("training_curves.png", "firing_rates.png", "spike_raster.png", "weight_histograms.png")


def run_plots(out_dir: str, *, history: List[Dict], names: Sequence[str],
              rates: Dict[str, Sequence[Optional[float]]], layer_spikes, inputs: np.ndarray,
              weight_panels: Sequence[WeightPanel]) -> List[str]:
    """The four plots of a run directory into ``<out_dir>/plots``; returns their file names."""
    p = lambda n: os.path.join(out_dir, "plots", n)  # noqa: E731
    training_curves(history, p("training_curves.png"))
    firing_rates(names, rates, p("firing_rates.png"))
    spike_raster(names, layer_spikes, inputs, p("spike_raster.png"))
    weight_histograms(weight_panels, p("weight_histograms.png"))
    return list(RUN_PLOTS)


# ------------------------------------------------------------------------------------------------
# the propagation study (`snnhw propagate`, snnhw.init.propagate): Micheli et al.'s figures
# ------------------------------------------------------------------------------------------------
PROPAGATE_DPI = 72


def _propagate_title(cfg: Dict) -> str:
    return (f"{cfg['semantics']}, theta={cfg['threshold']:g}, beta={cfg['beta']:.3g}, alpha={cfg['alpha']:.3g}, "
            f"T={cfg['steps']}, {cfg['repeats']} repeats")


def _propagate_per_layer(data: Dict, metric: str, ylabel: str, path: str) -> None:
    """One curve per init of ``metric`` over layers (mean, shaded +-std), log axis."""
    plt = _plt()
    cfg, res = data["config"], data["results"]
    x = np.arange(1, cfg["layers"] + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, r in res.items():
        y = np.array([np.nan if v is None else v for v in r[metric]], dtype=float)
        sd = np.array([np.nan if v is None else v for v in r[metric + "_std"]], dtype=float)
        floor = 1e-5  # zeros are drawn at the floor of the log axis
        line, = ax.plot(x, np.clip(y, floor, None), label=key, lw=1.4)
        ax.fill_between(x, np.clip(y - sd, floor, None), np.clip(y + sd, floor, None), color=line.get_color(),
                        alpha=0.15)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-5)
    if metric == "var_u_ratio":
        ax.axhspan(0.75, 1.25, color="0.85", zorder=0)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel + (" (0 drawn at 1e-5)" if metric == "spike_count" else ""))
    ax.set_title(_propagate_title(cfg), fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path, dpi=PROPAGATE_DPI)


def _propagate_per_step(data: Dict, path: str) -> None:
    """Spike count per layer and step, one panel per init (Figs 5/6)."""
    plt = _plt()
    cfg, res = data["config"], data["results"]
    L = cfg["layers"]
    keys = list(res)
    cols = min(4, len(keys))
    rows = int(math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False)
    vmax = max(max(max(row) for row in r["spike_count_per_step"]) for r in res.values()) or 1.0
    for k, key in enumerate(keys):
        ax = axes[k // cols][k % cols]
        im = ax.imshow(np.array(res[key]["spike_count_per_step"]).T, aspect="auto", origin="lower",
                       extent=(0.5, L + 0.5, 0.5, cfg["steps"] + 0.5), vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("layer", fontsize=7)
        ax.set_ylabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    for k in range(len(keys), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.subplots_adjust(top=0.86 if rows > 1 else 0.8, bottom=0.12, left=0.06, right=0.88, wspace=0.35,
                        hspace=0.6)
    cax = fig.add_axes([0.91, 0.15, 0.015, 0.65])
    fig.colorbar(im, cax=cax, label="spikes / neuron / step")
    fig.suptitle(_propagate_title(cfg), fontsize=8, y=0.995)
    save_figure(fig, path, dpi=PROPAGATE_DPI)


def propagation_plots(data: Dict, out_dir: str, prefix: str = "") -> List[str]:
    """PNG plots of a propagation study (:func:`snnhw.init.propagate.propagate`'s result), in the style of
    Micheli et al.: Var[u_l]/Var[u_1] per layer (Figs 2/4), spike count per layer (Figs 3/4), and, for
    T > 1, spike count per layer and step (Figs 5/6). Returns the paths."""
    paths = []
    for metric, ylabel, fname in (("var_u_ratio", "Var[u_l] / Var[u_1]", "var_u.png"),
                                  ("spike_count", "spikes / neuron / step", "spike_count.png")):
        p = os.path.join(out_dir, prefix + fname)
        _propagate_per_layer(data, metric, ylabel, p)
        paths.append(p)
    if data["config"]["steps"] > 1:
        p = os.path.join(out_dir, prefix + "spike_count_per_step.png")
        _propagate_per_step(data, p)
        paths.append(p)
    return paths


# ------------------------------------------------------------------------------------------------
# run directory of `snnhw import-nir` (snnhw.nir_import): float reference vs chip
# ------------------------------------------------------------------------------------------------
def output_counts(path: Path, ref_counts: np.ndarray, chip_counts: np.ndarray) -> None:
    """Output counts [samples, neurons] of the float reference and the chip, side by side and scattered."""
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    m = max(1.0, float(max(ref_counts.max(initial=0), chip_counts.max(initial=0))))
    ax[0].imshow(ref_counts.T, aspect="auto", vmin=0, vmax=m, cmap="viridis")
    ax[0].set_title("float reference: output counts")
    ax[1].imshow(chip_counts.T, aspect="auto", vmin=0, vmax=m, cmap="viridis")
    ax[1].set_title("chip: output counts")
    for a in ax[:2]:
        a.set_xlabel("sample")
        a.set_ylabel("output neuron")
    ax[2].scatter(ref_counts.ravel(), chip_counts.ravel(), s=6, alpha=0.5)
    ax[2].plot([0, m], [0, m], "k--", lw=0.8)
    ax[2].set_xlabel("float spike count")
    ax[2].set_ylabel("chip spike count")
    fig.tight_layout()
    save_figure(fig, path, dpi=DPI)


def layers_and_raster(path: Path, layers: List[Dict], ref_out: np.ndarray, chip_out: np.ndarray) -> None:
    """Per-layer rates (``layers``: :func:`snnhw.nir_import.measure.layer_report`) and the output raster
    of sample 0 (reference and chip, latency removed)."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
    x = np.arange(len(layers))
    ax[0].bar(x - 0.2, [l["float_rate"] for l in layers], 0.4, label="float")
    ax[0].bar(x + 0.2, [l["chip_rate"] for l in layers], 0.4, label="chip")
    ax[0].set_xticks(x, [l["name"] for l in layers], rotation=30)
    ax[0].set_ylabel("spikes / neuron / step")
    ax[0].legend()
    t_ref = np.nonzero(ref_out[0])
    t_chip = np.nonzero(chip_out[0])
    ax[1].scatter(t_ref[0], t_ref[1], s=8, marker="|", label="float")
    ax[1].scatter(t_chip[0], t_chip[1] + 0.3, s=8, marker="|", label="chip (latency removed)")
    ax[1].set_xlabel("step (sample 0)")
    ax[1].set_ylabel("output neuron")
    ax[1].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=DPI)


def import_plots(out: Path, ref_counts, chip_counts, layers: List[Dict], ref_out, chip_out) -> List[str]:
    """Both plots under ``out/plots``; their paths relative to ``out``."""
    files = []
    for name, draw in (("output_counts.png", lambda p: output_counts(p, ref_counts, chip_counts)),
                       ("layers_and_raster.png", lambda p: layers_and_raster(p, layers, ref_out, chip_out))):
        p = out / "plots" / name
        draw(p)
        files.append(str(p.relative_to(out)))
    return files
