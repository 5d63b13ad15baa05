"""Import any supported NIR graph onto Loihi 2 (or the float twin) and measure the fidelity.

Pipeline (``snnhw import-nir``):

1. :func:`snnhw.io.nir.load_model` reduces the graph to a chain of float stages (NIR units, forward
   Euler at ``dt``).
2. :func:`float_reference` simulates it in float64 with NIR semantics: same-step synapses, recurrent
   edges from the previous step, ``v > v_threshold`` then ``v <- v_reset`` (``reset="zero"``, what NIR
   says) or ``v <- v - v_threshold`` (``reset="subtract"``, what snnTorch-trained graphs often mean).
   This is the reference.
3. :func:`quantize_model` maps each stage to a Loihi layer with a hardware-aware calibration: per
   layer it picks the threshold scale ``s`` (= ``vth_mant``) and ``weight_exp`` that use the full 8-bit
   weight mantissa while keeping u and v (measured on the calibration inputs) below half the 24-bit
   range and the bias inside its 13-bit mantissa (see :func:`choose_scale`). Per-neuron thresholds are
   absorbed exactly into weight rows; per-neuron time constants are shared (median) and reported.
   An snnhw-written file is instead rebuilt bit-exactly from its metadata.
4. The spec runs on Lava's CPU simulator (:func:`snnhw.backends.lava.run_lava`). Loihi adds one step
   of latency per synapse layer, so inputs are padded with ``L`` zero steps and chip output step
   ``t + L`` is compared with reference step ``t`` (layer ``k``: ``t + k + 1``).
5. A run directory gets ``model.nir``, ``model.net`` (netx, dense networks), ``spec.json``,
   ``verify/*.npy``, plots and ``report.json`` (``agreement.output_cosine``: cosine similarity of the
   per-sample, per-neuron output spike counts chip vs reference; ``agreement.predictions``: fraction of
   samples whose arg-max output neuron agrees; ``layers``: per-layer activity).

What the chip cannot do exactly is reported with its measured effect: subtractive reset (compared
with and without snnhw's rate-matching threshold compensation, :func:`compensate_subtract`),
per-neuron time constants, a bias on the synaptic current behind a current decay, v_reset != 0.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from snnhw import loihi
from snnhw.io.nir import NirModel, NIRFormatError, Stage, has_snnhw_metadata, model_to_spec_exact
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

HEADROOM = 0.5  # u and v may use at most this fraction of the 24-bit range on calibration data
STATE_LIMIT_W = float(1 << (loihi.STATE_BITS - 1 - loihi.ACT_SHIFT))  # 2**17 weight units
BIAS_MANT_MAX = loihi.RANGES["bias_mant"][1]
VTH_MAX = loihi.RANGES["vth_mant"][1]


# ================================================================================================
# Float reference with NIR semantics
# ================================================================================================
class RefResult(NamedTuple):
    """Float reference: output spikes [B, T, n_out] and, per neuron stage, spikes and (if recorded)
    (I, v) traces in NIR units (v after the reset)."""

    output: np.ndarray
    layer_spikes: List[np.ndarray]
    traces: Optional[List[Tuple[np.ndarray, np.ndarray]]]


def _synaptic_input(st: Stage, s: torch.Tensor) -> torch.Tensor:
    """What the stage's synapse delivers for all steps at once: [B, T, n_out] (float64)."""
    B, T = s.shape[:2]
    if st.kind == "identity":
        a = s.clone()
    elif st.kind == "dense":
        a = s @ torch.as_tensor(st.weight, dtype=torch.float64).t()
    elif st.kind == "conv":
        x = s.reshape(B * T, *st.in_shape)
        a = F.conv2d(x, torch.as_tensor(st.weight, dtype=torch.float64), stride=st.stride, padding=st.padding)
        a = a.reshape(B, T, -1)
    elif st.kind == "pool":
        c = st.in_shape[0]
        x = s.reshape(B * T, *st.in_shape)
        w = torch.ones(c, 1, *st.kernel, dtype=torch.float64)
        a = F.conv2d(x, w, stride=st.stride, groups=c).reshape(B, T, -1)
    else:
        raise ValueError(f"stage {st.name}: no synapse")
    return a


@contextlib.contextmanager
def _one_thread():
    """Run a loop of tiny tensor ops on one intra-op thread (several threads only add synchronisation,
    severalfold slower on a busy machine); the previous setting is restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def float_reference(model: NirModel, x, *, reset: str = "zero", synapse_delay: int = 0, record: bool = False,
                    theta_scale: Optional[List[float]] = None, shared_decay: bool = False,
                    upto: Optional[int] = None) -> RefResult:
    """Simulate ``model`` in float64 with NIR semantics; see :func:`_float_reference`."""
    with _one_thread():
        return _float_reference(model, x, reset=reset, synapse_delay=synapse_delay, record=record,
                                theta_scale=theta_scale, shared_decay=shared_decay, upto=upto)


def _float_reference(model: NirModel, x, *, reset: str, synapse_delay: int, record: bool,
                     theta_scale: Optional[List[float]], shared_decay: bool, upto: Optional[int]) -> RefResult:
    """Simulate ``model`` in float64 with NIR semantics (module docstring) on inputs ``x`` [B, T, n_in].

    ``synapse_delay``: extra steps each synapse's spike input waits (0 = NIR; 1 = Loihi's Dense pipeline;
    a constant Affine bias is present from step 0 either way).
    ``theta_scale``: optional per-neuron-stage threshold multipliers (used by the compensation).
    ``shared_decay``: replace per-neuron alpha/beta by their median (what a shared-decay chip does).
    ``upto``: stop after this many neuron stages.
    """
    if reset not in ("zero", "subtract"):
        raise ValueError(f"reset must be 'zero' or 'subtract', not '{reset}'")
    s = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if s.ndim != 3 or s.shape[2] != model.n_in:
        raise ValueError(f"inputs must be shaped [samples, steps, {model.n_in}], got {tuple(s.shape)}")
    B, T = s.shape[:2]
    spikes, traces = [], [] if record else None
    k = 0
    for st in model.stages:
        if st.neuron is None:
            continue
        if upto is not None and k >= upto:
            break
        nd = st.neuron
        a_all = _synaptic_input(st, s)
        if synapse_delay:
            a_all = torch.cat([torch.zeros(B, synapse_delay, a_all.shape[2], dtype=torch.float64),
                               a_all[:, :T - synapse_delay]], dim=1)
        if st.bias is not None:  # a constant: present from step 0 (as Loihi's bias is), delay or not
            a_all = a_all + torch.as_tensor(st.bias, dtype=torch.float64)
        t64 = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float64))  # noqa: E731
        alpha, beta = t64(nd.alpha), t64(nd.beta)
        if shared_decay:
            alpha = torch.full_like(alpha, float(np.median(nd.alpha)))
            beta = torch.full_like(beta, float(np.median(nd.beta)))
        g_syn, g_mem, leak = t64(nd.g_syn), t64(nd.g_mem), t64(nd.leak)
        theta = t64(nd.theta) * (theta_scale[k] if theta_scale is not None else 1.0)
        v_reset = t64(nd.v_reset)
        wr = None if st.weight_rec is None else torch.as_tensor(st.weight_rec, dtype=torch.float64)
        br = None if st.bias_rec is None else torch.as_tensor(st.bias_rec, dtype=torch.float64)
        n = nd.n
        i_st = torch.zeros(B, n, dtype=torch.float64)
        v = torch.zeros(B, n, dtype=torch.float64)
        out = torch.zeros(B, T, n, dtype=torch.float64)
        tr_i = torch.zeros(B, T, n, dtype=torch.float64) if record else None
        tr_v = torch.zeros(B, T, n, dtype=torch.float64) if record else None
        sp = torch.zeros(B, n, dtype=torch.float64)
        for t in range(T):
            a = a_all[:, t]
            if wr is not None:
                a = a + sp @ wr.t()
                if br is not None:
                    a = a + br
            i_st = alpha * i_st + g_syn * a
            v = beta * v + leak + g_mem * i_st
            sp = (v > theta).to(torch.float64)
            if reset == "subtract":
                v = v - theta * sp
            else:
                v = torch.where(sp > 0, v_reset.expand_as(v), v)
            out[:, t] = sp
            if record:
                tr_i[:, t], tr_v[:, t] = i_st, v
        spikes.append(out.numpy())
        if record:
            traces.append((tr_i.numpy(), tr_v.numpy()))
        s = out
        k += 1
    return RefResult(spikes[-1], spikes, traces)


# ================================================================================================
# Quantization: float stages -> Loihi integers
# ================================================================================================
@dataclass
class LayerMap:
    """How one stage was mapped: scale, exponents and what was approximated."""

    name: str
    vth_mant: int
    weight_exp: int
    rec_exp: Optional[int]
    i_decay: int
    v_decay: int
    max_weight_mant: int
    bias_max_mant: int
    limits: Dict[str, float]
    notes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict:
        return {"name": self.name, "vth_mant": self.vth_mant, "weight_exp": self.weight_exp,
                "rec_exp": self.rec_exp, "i_decay": self.i_decay, "v_decay": self.v_decay,
                "max_weight_mant": self.max_weight_mant, "bias_max_mant": self.bias_max_mant,
                "scale_limits": {k: (None if not np.isfinite(v) else float(v)) for k, v in self.limits.items()},
                "notes": list(self.notes)}


def _round_mantissas(m: np.ndarray) -> np.ndarray:
    """Round float mantissas to what Lava's Dense keeps: mixed-sign matrices lose their LSB (even values
    in [-256, 254]); one-signed matrices keep 8 bits ([0, 255] / [-255, 0])."""
    r = np.round(m)
    if r.size and r.min() < 0 < r.max():
        r = 2 * np.round(m / 2)
        return np.clip(r, -256, 254).astype(np.int64)
    return np.clip(r, -255, 255).astype(np.int64)


def choose_scale(wmax: float, limits: Dict[str, float], *, fixed_exp: Optional[int] = None,
                 max_exp: int = 7) -> Tuple[int, int]:
    """Pick (vth_mant s, weight_exp e) for a layer whose chip weights are ``s * w`` with ``max|w| = wmax``.

    ``limits`` are upper bounds on ``s`` from the chip (threshold 17 bits, u/v headroom, bias mantissa).
    The smallest exponent whose 8-bit mantissa range (254) still reaches ``s_cap * wmax`` is used, so the
    largest weight gets a mantissa in (127, 254] and the threshold the largest legal value; where even
    ``e = 7`` cannot reach it, ``s`` is lowered. ``fixed_exp`` forces the exponent (Lava's Conv ignores
    ``weight_exp``, so conv/pool layers use 0).
    """
    s_cap = float(min(limits.values()))
    if wmax <= 0:
        return max(1, int(np.floor(min(s_cap, VTH_MAX)))), 0 if fixed_exp is None else fixed_exp
    if fixed_exp is not None:
        e = fixed_exp
    else:
        e = int(np.ceil(np.log2(max(s_cap * wmax / 254.0, 2.0 ** -30))))
        e = int(np.clip(e, -8, max_exp))
    s = min(s_cap, 254.0 * 2.0 ** e / wmax)
    return max(1, int(np.floor(s))), e


def _stage_stats(model: NirModel, calib_x, reset: str) -> List[Dict[str, np.ndarray]]:
    ref = float_reference(model, calib_x, reset=reset, record=True)
    out = []
    for i_tr, v_tr in ref.traces:
        out.append({"imax": np.abs(i_tr).max(axis=(0, 1)), "vmax": np.abs(v_tr).max(axis=(0, 1))})
    return out


def quantize_model(model: NirModel, calib_x, *, reset: str = "zero", theta_scale: Optional[List[float]] = None,
                   max_weight_exp: int = 7) -> Tuple[NetworkSpec, List[LayerMap]]:
    """Map ``model`` to a quantized Loihi :class:`NetworkSpec` (see :func:`choose_scale`).

    ``calib_x`` [B, T, n_in]: calibration inputs (the float reference on them bounds u and v).
    ``theta_scale``: per-neuron-stage threshold multipliers (subtract-reset compensation).
    ``max_weight_exp``: largest weight/recurrent exponent; 0 makes every Dense encodable by lava-dl netx
    (whose files hold ``mantissa * 2**weight_exp`` within 8 bits).
    """
    stats = _stage_stats(model, calib_x, reset)
    layers: List = []
    maps: List[LayerMap] = []
    k = 0
    for st in model.stages:
        if st.kind == "flatten":
            layers.append(Flatten(name=_safe(st.name), input_shape=tuple(st.in_shape)))
            continue
        nd = st.neuron
        notes: List[str] = []
        i_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.alpha))), 0, loihi.DECAY_UNITY))
        v_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.beta))), 0, loihi.DECAY_UNITY))
        if np.ptp(nd.alpha) > 1e-9 or np.ptp(nd.beta) > 1e-9:
            notes.append(f"per-neuron time constants (alpha {nd.alpha.min():.4f}..{nd.alpha.max():.4f}, beta "
                         f"{nd.beta.min():.4f}..{nd.beta.max():.4f}) share one decay pair on Loihi (median)")
        theta = nd.theta * (theta_scale[k] if theta_scale is not None else 1.0)
        thr = theta - nd.v_reset  # chip resets to 0: shift v by v_reset
        if np.any(thr <= 0):
            raise NIRFormatError(f"node '{st.nodes.get('neuron', st.name)}': v_threshold must exceed v_reset")
        if np.any(nd.v_reset != 0):
            notes.append("v_reset != 0 mapped by shifting v (exact except the initial state v(0) = 0)")
        leak = nd.leak - (1 - nd.beta) * nd.v_reset
        g = nd.g_syn * nd.g_mem  # input -> v gain per unit input
        per = g / thr  # chip weight per unit NIR weight, per unit s (row scale)
        alpha_eff = 1 - i_decay / loihi.DECAY_UNITY
        # biases (weight units per unit s)
        bias_w = leak / thr
        cur_bias = np.zeros(nd.n)
        if st.bias is not None:
            cur_bias = cur_bias + st.bias
        if st.bias_rec is not None:
            cur_bias = cur_bias + st.bias_rec
        if np.any(cur_bias != 0):
            if alpha_eff >= 1:
                raise NIRFormatError(f"stage {st.name}: a bias on a non-decaying synaptic current ramps without "
                                     f"bound; Loihi cannot map it")
            bias_w = bias_w + per * cur_bias / (1 - alpha_eff)
            if alpha_eff > 0:
                notes.append("bias on the synaptic current mapped to its steady state on v (differs during the "
                             f"first ~{int(np.ceil(1 / (1 - alpha_eff)))} steps)")
        st_stats = stats[k]
        limits = {"vth_17bit": float(VTH_MAX)}
        u_need = np.max(nd.g_mem * st_stats["imax"] / thr) if nd.n else 0.0
        v_need = np.max(st_stats["vmax"] / thr) if nd.n else 0.0
        if u_need > 0:
            limits["u_headroom"] = HEADROOM * STATE_LIMIT_W / u_need
        if v_need > 0:
            limits["v_headroom"] = HEADROOM * STATE_LIMIT_W / v_need
        bmax = float(np.max(np.abs(bias_w))) if nd.n else 0.0
        if bmax > 0:
            limits["bias_13bit"] = BIAS_MANT_MAX / bmax
        name = _safe(st.name)
        if st.kind in ("dense", "identity"):
            w = np.eye(nd.n) if st.kind == "identity" else st.weight
            wrow = per[:, None] * w
            if st.weight_rec is not None and max_weight_exp < 7:
                wrm = float(np.abs(per[:, None] * st.weight_rec).max())
                if wrm > 0:
                    limits["rec_weight_8bit"] = 254.0 * 2.0 ** max_weight_exp / wrm
            s, e = choose_scale(float(np.abs(wrow).max()), limits, max_exp=max_weight_exp)
            rec_exp = None
            if st.weight_rec is not None:
                wr_row = per[:, None] * st.weight_rec
                wrmax = float(np.abs(wr_row).max())
                rec_exp = int(np.clip(np.ceil(np.log2(max(s * wrmax / 254.0, 2.0 ** -30))), -8,
                                      max_weight_exp)) if wrmax else 0
            mant = _round_mantissas(s * wrow / 2.0 ** e)
            layer = Dense(name=name, weight=mant, weight_exp=e)
            if st.weight_rec is not None:
                layer.weight_rec = _round_mantissas(s * wr_row / 2.0 ** rec_exp)
                layer.rec_exp = rec_exp
            max_m = int(np.abs(mant).max()) if mant.size else 0
        elif st.kind == "conv":
            # per-channel row scale must be uniform inside a channel; conv layers use weight_exp 0
            c = st.out_shape[0]
            per_c = per.reshape(c, -1)
            if np.ptp(per_c, axis=1).max() > 1e-9 * np.abs(per_c).max():
                notes.append("per-neuron threshold/gain inside a conv channel averaged per channel")
            pc = per_c.mean(axis=1)
            wrow = pc[:, None, None, None] * st.weight
            s, e = choose_scale(float(np.abs(wrow).max()), limits, fixed_exp=0)
            mant = _round_mantissas(s * wrow)
            layer = Conv(name=name, weight=mant, input_shape=tuple(st.in_shape), stride=tuple(st.stride),
                         padding=tuple(st.padding), weight_exp=0)
            rec_exp = None
            max_m = int(np.abs(mant).max()) if mant.size else 0
        else:  # pool: one weight for all channels
            if np.ptp(per) > 1e-9 * np.abs(per).max():
                notes.append("per-neuron threshold/gain of a pooling layer averaged (one pool weight)")
            pm = float(np.mean(per))
            s, e = choose_scale(abs(pm), limits, fixed_exp=0)
            wq = int(np.clip(np.round(s * pm), -255, 255))
            layer = SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel),
                            stride=tuple(st.stride), weight=wq, weight_exp=0)
            rec_exp = None
            max_m = abs(wq)
        s = int(min(s, VTH_MAX))
        bias_m = np.round(s * bias_w)
        if np.any(np.abs(bias_m) > BIAS_MANT_MAX):
            notes.append("bias clipped to the 13-bit mantissa range")
        bias_m = np.clip(bias_m, -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64)
        if isinstance(layer, (Conv, SumPool)):
            bias_m = bias_m.reshape(st.out_shape[0], -1).mean(axis=1).round().astype(np.int64)
        layer.neuron = Neuron(i_decay=i_decay, v_decay=v_decay, vth_mant=s, reset="zero")
        layer.bias_exp = loihi.NETX_BIAS_EXP
        layer.bias_mant = bias_m if np.any(bias_m != 0) else None
        layers.append(layer)
        maps.append(LayerMap(name=name, vth_mant=s, weight_exp=int(e), rec_exp=rec_exp, i_decay=i_decay,
                             v_decay=v_decay, max_weight_mant=max_m,
                             bias_max_mant=int(np.abs(bias_m).max()) if bias_m.size else 0,
                             limits=limits, notes=notes))
        k += 1
    spec = NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=True,
                       metadata={"source": "nir", "dt": model.dt})
    return spec.validate(), maps


def float_spec(model: NirModel, *, reset: str = "zero") -> NetworkSpec:
    """The float-twin spec of ``model`` (target ``float``): threshold scale s = 1 per neuron row, float
    decays (median of per-neuron values), float biases, the requested reset; Loihi's timing."""
    layers = []
    for st in model.stages:
        if st.kind == "flatten":
            layers.append(Flatten(name=_safe(st.name), input_shape=tuple(st.in_shape)))
            continue
        nd = st.neuron
        thr = nd.theta - nd.v_reset
        if np.any(thr <= 0):
            raise NIRFormatError(f"node '{st.nodes.get('neuron', st.name)}': v_threshold must exceed v_reset")
        per = nd.g_syn * nd.g_mem / thr
        leak = (nd.leak - (1 - nd.beta) * nd.v_reset) / thr
        i_decay = float(loihi.DECAY_UNITY * (1 - np.median(nd.alpha)))
        cur = np.zeros(nd.n)
        for b in (st.bias, st.bias_rec):
            if b is not None:
                cur = cur + b
        if np.any(cur != 0):
            a = 1 - i_decay / loihi.DECAY_UNITY
            if a >= 1:
                raise NIRFormatError(f"stage {st.name}: a bias on a non-decaying synaptic current ramps without bound")
            leak = leak + per * cur / (1 - a)
        neuron = Neuron(i_decay=i_decay, v_decay=float(loihi.DECAY_UNITY * (1 - np.median(nd.beta))),
                        vth_mant=1.0, reset=reset)
        name = _safe(st.name)
        bias = leak.astype(np.float64) if np.any(leak != 0) else None  # bias_exp 6: mant = weight units
        if st.kind in ("dense", "identity"):
            w = np.eye(nd.n) if st.kind == "identity" else st.weight
            layer = Dense(name=name, weight=per[:, None] * w, neuron=neuron, bias_mant=bias)
            if st.weight_rec is not None:
                layer.weight_rec = per[:, None] * st.weight_rec
        elif st.kind == "conv":
            c = st.out_shape[0]
            pc = per.reshape(c, -1).mean(axis=1)
            layer = Conv(name=name, weight=pc[:, None, None, None] * st.weight, input_shape=tuple(st.in_shape),
                         neuron=neuron, stride=tuple(st.stride), padding=tuple(st.padding),
                         bias_mant=None if bias is None else bias.reshape(c, -1).mean(axis=1))
        else:
            layer = SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel),
                            stride=tuple(st.stride), weight=float(np.mean(per)), neuron=neuron,
                            bias_mant=None if bias is None else bias.reshape(st.out_shape[0], -1).mean(axis=1))
        layers.append(layer)
    return NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=False,
                       metadata={"source": "nir", "dt": model.dt}).validate()


def _safe(name: str) -> str:
    return str(name).replace("/", "_")


# ================================================================================================
# Subtract-reset compensation
# ================================================================================================
def compensate_subtract(model: NirModel, calib_x, *, grid=None) -> Tuple[List[float], List[float]]:
    """Per neuron stage, the threshold multiplier k that makes a zero-reset network best reproduce the
    subtract-reset reference (least mean squared error of the per-sample, per-neuron spike counts of
    that stage), chosen greedily stage by stage with the earlier stages already compensated. Returns
    (k per stage, count cosine reached per stage). Runs on the float reference only (cheap); the chip
    then uses thresholds k*theta.
    """
    grid = np.round(np.arange(0.5, 1.0001, 0.025), 4) if grid is None else np.asarray(grid)
    ref = float_reference(model, calib_x, reset="subtract")
    n_stages = len(ref.layer_spikes)
    ks: List[float] = []
    cos: List[float] = []
    for j in range(n_stages):
        target = ref.layer_spikes[j].sum(axis=1)
        best = (np.inf, 1.0, 0.0)
        for kk in grid:
            trial = float_reference(model, calib_x, reset="zero", theta_scale=ks + [float(kk)], upto=j + 1)
            counts = trial.layer_spikes[j].sum(axis=1)
            err = float(np.mean((counts - target) ** 2))
            if err < best[0] - 1e-12:
                best = (err, float(kk), cosine(counts, target))
        ks.append(best[1])
        cos.append(best[2])
    return ks, cos


# ================================================================================================
# Metrics
# ================================================================================================
def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two count arrays (flattened); 1.0 when both are all zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))


def agreement(chip_counts: np.ndarray, ref_counts: np.ndarray) -> Dict:
    """``output_cosine`` (flattened [samples, neurons] counts), ``predictions`` (arg-max agreement)."""
    pc, pr = chip_counts.argmax(axis=1), ref_counts.argmax(axis=1)
    per = [cosine(a, b) for a, b in zip(chip_counts, ref_counts)]
    return {"output_cosine": cosine(chip_counts, ref_counts), "predictions": float(np.mean(pc == pr)),
            "output_cosine_per_sample_mean": float(np.mean(per)) if per else 1.0,
            "samples": int(chip_counts.shape[0]),
            "silent_samples_reference": int(np.sum(ref_counts.sum(axis=1) == 0)),
            "silent_samples_chip": int(np.sum(chip_counts.sum(axis=1) == 0))}


def _ties(counts: np.ndarray) -> float:
    """Fraction of samples whose two largest output counts are equal (arg-max decided by index)."""
    if counts.shape[1] < 2:
        return 0.0
    top = np.sort(counts, axis=1)[:, -2:]
    return float(np.mean(top[:, 0] == top[:, 1]))


def poisson_inputs(n_in: int, *, rate: float, steps: int, samples: int, seed: int = 0) -> np.ndarray:
    """Bernoulli spike trains [samples, steps, n_in] (uint8), P(spike) = ``rate`` per input per step."""
    if not 0 < rate <= 1:
        raise ValueError(f"--rate is a spike probability per input and step, in (0, 1]; got {rate}")
    if steps < 1 or samples < 1:
        raise ValueError("--steps and --samples must be >= 1")
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, n_in)) < rate).astype(np.uint8)


def latency(spec: NetworkSpec) -> int:
    """Loihi steps of latency: one per synapse (neuron layer)."""
    return len(spec.neuron_layers())


# ================================================================================================
# Chip run
# ================================================================================================
def run_chip(spec: NetworkSpec, x: np.ndarray) -> Tuple[List[np.ndarray], str]:
    """Per-neuron-layer spikes [B, T, n] of ``spec`` on Lava's CPU simulator (fixed_pt), or on the
    bit-exact torch core when lava-nc is absent (the backend string says which)."""
    try:
        from snnhw.backends.lava import lava_available, run_lava
        have = lava_available()
    except ImportError:
        have = False
    if have:
        res = run_lava(spec, x, hardware=False)
        return [np.asarray(s) for s in res.layer_spikes], res.backend
    from snnhw.core.network import simulate

    with _one_thread():
        r = simulate(spec, x)
    return [s.numpy().astype(np.int64) for s in r.layer_spikes], "snnhw-exact-core (lava-nc not installed)"


def run_twin(spec: NetworkSpec, x: np.ndarray) -> List[np.ndarray]:
    """Per-layer spikes of ``spec`` on snnhw's own simulator (exact for quantized, float twin otherwise)."""
    from snnhw.core.network import simulate

    with _one_thread():
        r = simulate(spec, x)
    return [s.numpy() for s in r.layer_spikes]


def aligned(chip_layers: List[np.ndarray], T: int) -> List[np.ndarray]:
    """Chip layer k's spikes at steps k+1 .. k+T (the Loihi pipeline latency removed)."""
    return [s[:, k + 1:k + 1 + T] for k, s in enumerate(chip_layers)]


def layer_report(names: List[str], ref_layers: List[np.ndarray], chip_layers: List[np.ndarray]) -> List[Dict]:
    out = []
    for name, r, c in zip(names, ref_layers, chip_layers):
        rc, cc = r.sum(axis=1), c.sum(axis=1)
        out.append({"name": name, "neurons": int(r.shape[2]),
                    "float_rate": float(r.mean()), "chip_rate": float(c.mean()),
                    "count_cosine": cosine(cc, rc),
                    "spike_match": float(np.mean(r.astype(bool) == c.astype(bool)))})
    return out


# ================================================================================================
# The whole import
# ================================================================================================
def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npy", dir=str(path.parent))
    os.close(fd)
    try:
        np.save(tmp, arr)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _plots(out: Path, ref_counts, chip_counts, layers: List[Dict], ref_out, chip_out) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
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
    p = out / "plots" / "output_counts.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    files.append(str(p.relative_to(out)))
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
    p = out / "plots" / "layers_and_raster.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    files.append(str(p.relative_to(out)))
    return files


def import_nir(path, *, target: str = "loihi2", dt: Optional[float] = None, reset: str = "zero",
               inputs: Optional[np.ndarray] = None, rate: float = 0.1, steps: int = 100, samples: int = 32,
               seed: int = 0, out: Optional[Path] = None, compensate: bool = True, netx_compatible: bool = False,
               log=None) -> Dict:
    """Run the whole import (module docstring) and return the report dict (also written to ``out``)."""
    from snnhw.io.nir import export_nir, load_model

    log = log or (lambda msg: None)
    if target not in ("loihi2", "float"):
        raise ValueError(f"--target must be loihi2 or float, not '{target}'")
    if reset not in ("zero", "subtract"):
        raise ValueError(f"--reset must be zero or subtract, not '{reset}'")
    model = load_model(path, dt=dt)
    if inputs is None:
        x = poisson_inputs(model.n_in, rate=rate, steps=steps, samples=samples, seed=seed)
        input_desc = {"kind": "poisson", "rate_per_step": rate, "steps": steps, "samples": samples, "seed": seed}
    else:
        x = np.asarray(inputs)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != model.n_in:
            raise ValueError(f"inputs must be shaped [samples, steps, {model.n_in}], got {tuple(np.shape(inputs))}")
        if not np.all(np.isfinite(x.astype(np.float64))):
            raise ValueError("inputs contain NaN or infinity")
        input_desc = {"kind": "file", "shape": list(x.shape)}
    if inputs is None:  # held-out calibration draw with the same statistics
        calib = poisson_inputs(model.n_in, rate=rate, steps=steps, samples=samples, seed=seed + 1_000_003)
        input_desc["calibration"] = "a separate Poisson draw (seed + 1000003), same rate/steps/samples"
    else:
        calib = x
        input_desc["calibration"] = "the given inputs themselves (in-sample)"
    B, T = x.shape[:2]
    log(f"graph: {len(model.neuron_stages)} neuron layers, input {model.input_shape}, dt = {model.dt} s "
        f"({model.dt_source}); {B} samples x {T} steps")
    ref = float_reference(model, x, reset=reset)
    names = [_safe(s.name) for s in model.neuron_stages]
    lossy: List[str] = []
    effects: Dict[str, Dict] = {}
    comp = None
    exact_meta = False
    if target == "loihi2":
        theta_scale = None
        if has_snnhw_metadata(model):
            try:
                spec = model_to_spec_exact(model)
                exact_meta = spec.quantized
                maps = []
            except NIRFormatError as e:
                log(f"snnhw metadata ignored: {e}")
                exact_meta = False
        if not exact_meta:
            if reset == "subtract" and compensate:
                ks, kc = compensate_subtract(model, calib)
                theta_scale = ks
                comp = {"method": "per-layer threshold multiplier k (grid 0.5..1.0) chosen so that the "
                                  "zero-reset float network best matches the subtract-reset reference's spike "
                                  "counts (least squares, greedy, layer by layer) on the calibration inputs",
                        "threshold_multipliers": ks, "float_count_cosine_per_layer": kc}
            spec, maps = quantize_model(model, calib, reset=reset, theta_scale=theta_scale,
                                        max_weight_exp=0 if netx_compatible else 7)
        L = latency(spec)
        xp = np.concatenate([x, np.zeros((B, L, x.shape[2]), dtype=x.dtype)], axis=1)
        log(f"running {B} samples on Lava (fixed_pt) ...")
        chip_layers, backend = run_chip(spec, xp)
    else:
        spec = float_spec(model, reset=reset)
        maps = []
        L = latency(spec)
        xp = np.concatenate([x, np.zeros((B, L, x.shape[2]), dtype=x.dtype)], axis=1)
        chip_layers, backend = run_twin(spec, xp), "snnhw-float-twin"
    chip_al = aligned(chip_layers, T)
    rc, cc = ref.output.sum(axis=1), chip_al[-1].sum(axis=1)
    agree = agreement(cc, rc)
    layers = layer_report(names, ref.layer_spikes, chip_al)
    for m in maps:
        lossy += [f"layer {m.name}: {n}" for n in m.notes]
    # measured effects of what the chip cannot do exactly
    if reset == "subtract" and target == "loihi2":
        lossy.append("subtractive reset: Loihi resets v to 0")
        zero_ref = float_reference(model, x, reset="zero")
        eff = {"float_zero_reset_vs_subtract_reference": agreement(zero_ref.output.sum(axis=1), rc)}
        if comp is not None:
            unc_spec, _ = quantize_model(model, calib, reset=reset, max_weight_exp=0 if netx_compatible else 7)
            unc = aligned(run_twin(unc_spec, xp), T)
            eff["chip_without_compensation_vs_reference"] = agreement(unc[-1].sum(axis=1), rc)
            eff["chip_without_compensation_backend"] = "snnhw-exact-core (bit-exact with Lava fixed_pt)"
            eff["chip_with_compensation_vs_reference"] = dict(agree)
        effects["subtract_reset"] = eff
    if any(np.ptp(s.neuron.alpha) > 1e-9 or np.ptp(s.neuron.beta) > 1e-9 for s in model.neuron_stages):
        shared = float_reference(model, x, reset=reset, shared_decay=True)
        effects["per_neuron_tau"] = {"float_shared_decay_vs_reference": agreement(shared.output.sum(axis=1), rc)}
    if target == "float":
        for st in model.neuron_stages:
            nd = st.neuron
            if np.ptp(nd.alpha) > 1e-9 or np.ptp(nd.beta) > 1e-9:
                lossy.append(f"layer {_safe(st.name)}: per-neuron time constants share one decay pair (median)")
            if np.any(nd.v_reset != 0):
                lossy.append(f"layer {_safe(st.name)}: v_reset != 0 mapped by shifting v (initial state differs)")
            if (st.bias is not None or st.bias_rec is not None) and np.median(nd.alpha) > 0:
                lossy.append(f"layer {_safe(st.name)}: bias on the synaptic current mapped to its steady state on v")
    report = {
        "source": str(path), "target": target, "backend": backend, "dt": model.dt, "dt_source": model.dt_source,
        "reset": reset, "inputs": input_desc, "latency_steps": L,
        "nir_type_check": model.type_check_error or "passed",
        "spec_from": "snnhw metadata (bit-exact)" if exact_meta else (
            "hardware-aware calibration" if target == "loihi2" else "float twin"),
        "agreement": agree, "reference_ties": _ties(rc), "layers": layers, "quantization": [m.as_dict() for m in maps],
        "lossy": lossy, "effects": effects, "compensation": comp,
        "comparison": "chip layer k's steps k+1..k+T vs reference steps 0..T-1 (Loihi latency removed); "
                      f"inputs padded with {L} zero steps",
    }
    if out is not None:
        out = Path(out)
        (out / "verify").mkdir(parents=True, exist_ok=True)
        (out / "plots").mkdir(parents=True, exist_ok=True)
        files = ["spec.json", "verify/inputs.npy", "verify/lava_output_spikes.npy",
                 "verify/float_output_spikes.npy", "report.json"]
        _atomic_write_text(out / "spec.json", spec.to_json())
        _atomic_save_npy(out / "verify" / "inputs.npy", np.asarray(x).astype(np.uint8 if np.all(
            (x == 0) | (x == 1)) else np.float32))
        _atomic_save_npy(out / "verify" / "lava_output_spikes.npy", chip_layers[-1].astype(np.uint8))
        _atomic_save_npy(out / "verify" / "float_output_spikes.npy", ref.output.astype(np.uint8))
        if target == "loihi2":
            try:
                from snnhw.io.netx import write_netx

                write_netx(spec, out / "model.net")
                files.append("model.net")
            except (ValueError, ImportError) as e:
                report["model_net"] = f"not written: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        try:
            export_nir(spec, out / "model.nir", dt=model.dt, lossy=target == "float")
            files.append("model.nir")
        except (ValueError, OSError) as e:
            report["model_nir"] = f"not written: {str(e).splitlines()[0]}"
        files += _plots(out, rc, cc, layers, ref.output, chip_al[-1])
        report["files"] = files
        _atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=_json_default))
    return report


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
