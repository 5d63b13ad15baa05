"""``--calibrate N``: fine-tune an imported network on the chip's own arithmetic so that it reproduces
the float reference on N unlabelled inputs (distillation: the reference's spikes are the targets, no
labels are needed).

The student is the quantized :class:`~snnhw.spec.NetworkSpec` run with snnhw's core in the chip's
integer arithmetic (:func:`snnhw.core.synapse.trainable_input`, :func:`snnhw.core.neuron.cuba_lif` with
``exact=True``): its forward pass is the chip's, bit for bit, and gradients pass the weight rounding
straight through (:func:`snnhw.core.layers.quantize_weight`) and the spike through a surrogate. The
exponents, thresholds, decays and biases stay as the mapping chose them; the Dense, recurrent and Conv
weight mantissas are trained. The loss compares every neuron layer with the reference's layer (Loihi's
latency removed): the mean squared difference of the spike counts in windows of
:data:`WINDOW_STEPS` steps, plus the output's per-sample spike counts, each normalised by the
reference's own magnitude (a low-pass filtered, van Rossum-like distance was tried first: spike-time
differences in the recurrent layer made it jump at every weight change). Each iteration moves each
weight tensor's largest-gradient mantissa by ``lr`` and the others in proportion (:func:`_step`). The
weights of the iteration with the smallest loss are kept (the first iteration is the unchanged mapping,
so calibration never makes the calibration loss worse).

The student is built here rather than with :class:`snnhw.core.layers.SpikingNet`, whose layers fold a
positive weight exponent into 8-bit mantissas (for netx) and so cannot hold the import's exponents.

Measured on the NIR paper's Braille graph (64 samples x 200 steps, rate 0.2, 30 iterations, ~40 s): the
calibration loss falls 10-15 %, but agreement on held-out Poisson draws moves within their noise
(subtract reset: 0.922 -> 0.922 on the CLI's draw, mean of three draws 0.943 -> 0.938..0.943; zero
reset: 0.953 -> 0.922 on the CLI's draw). It is an option, not a default.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from snnhw.core import synapse as syn
from snnhw.core.layers import quantize_weight
from snnhw.core.network import layer_bias
from snnhw.core.neuron import CubaParams, cuba_lif
from snnhw.core.surrogate import Surrogate
from snnhw.errors import InputError
from snnhw.nir_import.measure import agreement, aligned, latency
from snnhw.nir_import.reference import one_thread
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, SumPool

WINDOW_STEPS = 25  # the loss compares spike counts in windows of this many steps
ITERATIONS = 30
LR = 1.0  # the largest step of a weight per iteration, in mantissa units (half a grid step)


def _filter(s: torch.Tensor, win: int = WINDOW_STEPS) -> torch.Tensor:
    """Spike counts of [B, T, N] in consecutive windows of ``win`` steps: [B, ceil(T/win), N]."""
    B, T, N = s.shape
    pad = (-T) % win
    if pad:
        s = torch.cat([s, s.new_zeros(B, pad, N)], dim=1)
    return s.reshape(B, -1, win, N).sum(dim=2)


def _trainables(spec: NetworkSpec) -> Dict[str, torch.Tensor]:
    """The weight mantissas to train, as float leaf tensors: ``<layer>.w`` and ``<layer>.w_rec``."""
    out = {}
    for L in spec.layers:
        if isinstance(L, (Dense, Conv)):
            out[f"{L.name}.w"] = torch.tensor(np.asarray(L.weight, dtype=np.float32), requires_grad=True)
        if isinstance(L, Dense) and L.weight_rec is not None:
            out[f"{L.name}.w_rec"] = torch.tensor(np.asarray(L.weight_rec, dtype=np.float32), requires_grad=True)
    return out


def _forward(spec: NetworkSpec, weights: Dict[str, torch.Tensor], x: torch.Tensor) -> List[torch.Tensor]:
    """Every neuron layer's spikes [B, T, n] of ``spec`` with ``weights``, in the chip's arithmetic."""
    s = (x != 0).to(torch.float32)
    spikes = []
    for L in spec.layers:
        if isinstance(L, Flatten):
            continue
        if isinstance(L, Dense):
            a = syn.trainable_input(s, quantize_weight(weights[f"{L.name}.w"], L.weight_exp), L.weight_exp)
        elif isinstance(L, Conv):
            a = syn.trainable_input(s, quantize_weight(weights[f"{L.name}.w"], 0), 0,
                                    syn.ConvShape(L.input_shape, L.stride, L.padding))
        elif isinstance(L, SumPool):
            c = L.input_shape[0]
            a = syn.trainable_input(s, syn.pool_kernel(c, L.kernel, L.weight), L.weight_exp,
                                    syn.ConvShape(L.input_shape, L.stride, (0, 0), groups=c))
        else:
            raise InputError(f"layer {L.name}: {type(L).__name__} cannot be calibrated")
        w_rec = None
        if isinstance(L, Dense) and L.weight_rec is not None:
            w_rec = quantize_weight(weights[f"{L.name}.w_rec"], L.rec_exp)
        n = L.neuron
        s = cuba_lif(a, CubaParams(n.i_decay, n.v_decay, n.vth_mant, "zero"), layer_bias(L, True), w_rec=w_rec,
                     rec_exp=L.rec_exp, exact=True, surrogate=Surrogate())
        spikes.append(s)
    return spikes


def _loss(chip: List[torch.Tensor], ref: List[torch.Tensor], ref_f: List[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the normalised windowed-count error, plus the output's normalised count error."""
    total = chip[0].new_zeros(())
    for c, r, rf in zip(chip, ref, ref_f):
        total = total + ((_filter(c) - rf) ** 2).mean() / ((rf ** 2).mean() + 1e-9)
    cnt, rcnt = chip[-1].sum(dim=1), ref[-1].sum(dim=1)
    return total + ((cnt - rcnt) ** 2).mean() / ((rcnt ** 2).mean() + 1e-9)


def _with_weights(spec: NetworkSpec, weights: Dict[str, torch.Tensor]) -> NetworkSpec:
    """A copy of ``spec`` holding the legal (rounded) mantissas of ``weights``."""
    out = spec.copy()
    with torch.no_grad():
        for L in out.layers:
            if isinstance(L, (Dense, Conv)):
                L.weight = quantize_weight(weights[f"{L.name}.w"], L.weight_exp if isinstance(L, Dense) else 0) \
                    .numpy().astype(np.int64)
            if isinstance(L, Dense) and L.weight_rec is not None:
                L.weight_rec = quantize_weight(weights[f"{L.name}.w_rec"], L.rec_exp).numpy().astype(np.int64)
    return out.validate()


def _step(weights: Dict[str, torch.Tensor], lr: float) -> None:
    """Normalised gradient descent: each tensor's largest-gradient weight moves ``lr`` mantissa units,
    the others in proportion, so that only the weights the loss pushes hardest cross a rounding
    boundary (an Adam-like step moves every weight alike and flips them all at once)."""
    with torch.no_grad():
        for w in weights.values():
            if w.grad is not None:
                g = w.grad
                m = float(g.abs().max())
                if m > 0:
                    w -= lr * g / m


def distill(spec: NetworkSpec, ref_layers: List[np.ndarray], x: np.ndarray, *, iterations: int = ITERATIONS,
            lr: float = LR, seed: int = 0,
            log: Optional[Callable[[str], None]] = None) -> Tuple[NetworkSpec, Dict]:
    """Fine-tune ``spec``'s weight mantissas (module docstring) so that its layers reproduce
    ``ref_layers`` (the float reference's spikes per neuron layer, [N, T, n], NIR timing) on the
    unlabelled inputs ``x`` [N, T, n_in]. Returns (the calibrated spec, a record for report.json:
    loss and calibration-set agreement before and after, iterations, the kept iteration)."""
    log = log or (lambda m: None)
    if not spec.quantized:
        raise InputError("--calibrate needs the quantized chip spec (--target loihi2)")
    if len(ref_layers) != len(spec.neuron_layers()):
        raise InputError(f"reference has {len(ref_layers)} neuron layers, the spec {len(spec.neuron_layers())}")
    torch.manual_seed(seed)
    N, T = x.shape[:2]
    L = latency(spec)
    xp = torch.as_tensor(np.concatenate([x, np.zeros((N, L, x.shape[2]), x.dtype)], axis=1), dtype=torch.float32)
    ref = [torch.as_tensor(r, dtype=torch.float32) for r in ref_layers]
    ref_f = [_filter(r) for r in ref]
    weights = _trainables(spec)
    if not weights:
        raise InputError("--calibrate: the network has no trainable weights (Dense or Conv)")
    best = (np.inf, -1, {k: v.detach().clone() for k, v in weights.items()})
    history, t0 = [], time.time()
    with one_thread():
        for it in range(iterations + 1):
            out = aligned(_forward(spec, weights, xp), T)
            loss = _loss(out, ref, ref_f)
            history.append(float(loss))
            if float(loss) < best[0]:
                best = (float(loss), it, {k: v.detach().clone() for k, v in weights.items()})
            if it == iterations:
                break
            for w in weights.values():
                w.grad = None
            loss.backward()
            _step(weights, lr)
            log(f"calibrate: iteration {it + 1}/{iterations}, loss {float(loss):.4f} ({time.time() - t0:.0f} s)")
    tuned = _with_weights(spec, best[2])
    with one_thread(), torch.no_grad():
        before = aligned([s.numpy() for s in _forward(spec, _trainables(spec), xp)], T)
        after = aligned([s.numpy() for s in _forward(tuned, _trainables(tuned), xp)], T)
    rc = ref_layers[-1].sum(axis=1)
    record = {"method": "distillation on the chip's arithmetic: weight mantissas trained (straight-through "
                        "rounding, surrogate spike gradient) to reproduce the float reference's spikes in every "
                        f"layer (spike counts in {WINDOW_STEPS}-step windows) and its output counts; no labels",
              "samples": int(N), "iterations": int(iterations), "kept_iteration": int(best[1]),
              "loss_before": history[0], "loss_after": best[0],
              "calibration_set_before": agreement(before[-1].sum(axis=1), rc),
              "calibration_set_after": agreement(after[-1].sum(axis=1), rc),
              "weights_changed": float(np.mean(np.concatenate([
                  (np.asarray(a.weight) != np.asarray(b.weight)).ravel()
                  for a, b in zip(spec.neuron_layers(), tuned.neuron_layers()) if isinstance(a, (Dense, Conv))])))}
    return tuned, record


def calibrate_chip(model, spec: NetworkSpec, x: np.ndarray, calib_x: np.ndarray, n: int, reset: str, *,
                   seed: int = 0, log: Optional[Callable[[str], None]] = None) -> Tuple[NetworkSpec, Dict]:
    """``--calibrate N`` in the import (:func:`snnhw.nir_import.pipeline.import_nir`): distil ``spec``
    on the first ``n`` calibration inputs (``calib_x``; with Poisson inputs a draw separate from the
    measured inputs ``x``) against the float reference of ``model`` with ``reset``, and measure the chip
    (bit-exact core) on ``x`` before and after. Returns (the calibrated spec, the report record)."""
    from snnhw.nir_import.chip import run_twin
    from snnhw.nir_import.reference import float_reference

    if n < 1:
        raise InputError(f"--calibrate takes a number of inputs >= 1, got {n}")
    cx = np.asarray(calib_x)[:n]
    ref_c = float_reference(model, cx, reset=reset)
    tuned, record = distill(spec, ref_c.layer_spikes, cx, seed=seed, log=log)
    T = x.shape[1]
    rx = float_reference(model, x, reset=reset).output.sum(axis=1)
    xp = np.concatenate([x, np.zeros((x.shape[0], latency(spec), x.shape[2]), x.dtype)], axis=1)
    for key, sp in (("before", spec), ("after", tuned)):
        out = aligned(run_twin(sp, xp), T)[-1]
        record[f"agreement_{key}"] = agreement(out.sum(axis=1), rx)
    record["inputs"] = (f"the first {len(cx)} calibration inputs; agreement_before/after: the chip (snnhw's "
                        f"bit-exact core) on the import's {x.shape[0]} inputs vs the float reference")
    if len(cx) < n:
        record["note"] = f"only {len(cx)} calibration inputs exist (asked for {n})"
    return tuned, record
