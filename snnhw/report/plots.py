"""Plots, one module for all of snnhw (matplotlib, Agg backend; each PNG written atomically through
:func:`snnhw.io.atomic.save_figure`). One section per use.

Run directory of ``snnhw train`` (``plots/``, drawn by :func:`run_plots`):

* ``training_curves.png`` — loss, train/test accuracy and per-layer firing rate per epoch;
* ``firing_rates.png``    — per-layer firing rate (spikes / neuron / step): float vs quantized vs Lava;
* ``spike_raster.png``    — every neuron layer's spikes for the first verification sample;
* ``weight_histograms.png`` — each layer's trained mantissas on the quantization grid.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from snnhw.io.atomic import save_figure

DPI = 90  # every PNG of this module


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
    ax[1].plot(ep, [h["test_accuracy"] for h in history], marker="s", label="test (quantized)")
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
