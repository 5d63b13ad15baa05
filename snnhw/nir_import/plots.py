"""The import's plots (``plots/`` of an ``snnhw import-nir`` run directory; matplotlib, Agg backend,
each PNG written atomically by :func:`snnhw.io.atomic.save_figure`):

* ``output_counts.png``: output spike counts per sample, float reference vs chip, and their scatter;
* ``layers_and_raster.png``: per-layer spike rates (float vs chip) and sample 0's output raster.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

from snnhw.io.atomic import save_figure

DPI = 90


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
