"""Inputs and fidelity measures of an import: Poisson inputs, the Loihi latency and its removal, the
cosine similarity of spike counts, arg-max agreement and per-layer activity."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from snnhw.errors import InputError
from snnhw.spec import NetworkSpec


def poisson_inputs(n_in: int, *, rate: float, steps: int, samples: int, seed: int = 0) -> np.ndarray:
    """Bernoulli spike trains [samples, steps, n_in] (uint8), P(spike) = ``rate`` per input per step."""
    if not 0 < rate <= 1:
        raise InputError(f"--rate is a spike probability per input and step, in (0, 1]; got {rate}")
    if steps < 1 or samples < 1:
        raise InputError("--steps and --samples must be >= 1")
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, n_in)) < rate).astype(np.uint8)


def latency(spec: NetworkSpec) -> int:
    """Loihi steps of latency: one per synapse (neuron layer)."""
    return len(spec.neuron_layers())


def aligned(chip_layers: List[np.ndarray], T: int) -> List[np.ndarray]:
    """Chip layer k's spikes at steps k+1 .. k+T (the Loihi pipeline latency removed)."""
    return [s[:, k + 1:k + 1 + T] for k, s in enumerate(chip_layers)]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two count arrays (flattened); 1.0 when both are all zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))  # rounding can overshoot 1 by an ulp


def agreement(chip_counts: np.ndarray, ref_counts: np.ndarray) -> Dict:
    """``output_cosine`` (flattened [samples, neurons] counts), ``predictions`` (arg-max agreement)."""
    pc, pr = chip_counts.argmax(axis=1), ref_counts.argmax(axis=1)
    per = [cosine(a, b) for a, b in zip(chip_counts, ref_counts)]
    return {"output_cosine": cosine(chip_counts, ref_counts), "predictions": float(np.mean(pc == pr)),
            "output_cosine_per_sample_mean": float(np.mean(per)) if per else 1.0,
            "samples": int(chip_counts.shape[0]),
            "silent_samples_reference": int(np.sum(ref_counts.sum(axis=1) == 0)),
            "silent_samples_chip": int(np.sum(chip_counts.sum(axis=1) == 0))}


def ties(counts: np.ndarray) -> float:
    """Fraction of samples whose two largest output counts are equal (arg-max decided by index)."""
    if counts.shape[1] < 2:
        return 0.0
    top = np.sort(counts, axis=1)[:, -2:]
    return float(np.mean(top[:, 0] == top[:, 1]))


def layer_report(names: List[str], ref_layers: List[np.ndarray], chip_layers: List[np.ndarray]) -> List[Dict]:
    """Per neuron layer: size, mean spike rate (float reference, chip), count cosine, spike match."""
    out = []
    for name, r, c in zip(names, ref_layers, chip_layers):
        rc, cc = r.sum(axis=1), c.sum(axis=1)
        out.append({"name": name, "neurons": int(r.shape[2]),
                    "float_rate": float(r.mean()), "chip_rate": float(c.mean()),
                    "count_cosine": cosine(cc, rc),
                    "spike_match": float(np.mean(r.astype(bool) == c.astype(bool)))})
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays (flattened); 1.0 when both are constant and equal, else 0.0
    when one is constant."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    da, db = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(da), np.linalg.norm(db)
    if na == 0 or nb == 0:
        return 1.0 if na == nb and np.allclose(a, b) else 0.0
    return float(np.clip(da @ db / (na * nb), -1.0, 1.0))


def voltage_agreement(chip_v: np.ndarray, ref_v: np.ndarray) -> Dict:
    """For a non-spiking readout [samples, steps, outputs]: ``output_pearson_r`` (all values flattened),
    ``output_pearson_r_per_output_mean``, ``predictions`` (arg-max of the time-mean voltage agrees),
    ``max_abs_error`` relative to max |v| of the reference."""
    per = [pearson(chip_v[..., j], ref_v[..., j]) for j in range(ref_v.shape[2])]
    scale = float(np.abs(ref_v).max()) or 1.0
    return {"measure": "voltage", "output_pearson_r": pearson(chip_v, ref_v),
            "output_pearson_r_per_output_mean": float(np.mean(per)) if per else 1.0,
            "predictions": float(np.mean(chip_v.mean(axis=1).argmax(axis=1) == ref_v.mean(axis=1).argmax(axis=1))),
            "max_abs_error_rel": float(np.abs(chip_v - ref_v).max() / scale) if ref_v.size else 0.0,
            "samples": int(ref_v.shape[0])}
