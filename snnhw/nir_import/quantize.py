"""Float stages -> a Loihi :class:`~snnhw.spec.NetworkSpec`: hardware-aware calibration (target
``loihi2``) and the float twin's spec (target ``float``).

Per stage the calibration picks the threshold scale ``s`` (= ``vth_mant``) and ``weight_exp`` that use
the full 8-bit weight mantissa while keeping u and v (measured by the float reference on the
calibration inputs) below :data:`HEADROOM` of the 24-bit range and the bias inside its 13-bit mantissa
(:func:`choose_scale`). Per-neuron thresholds and gains are absorbed exactly into weight rows (conv:
averaged per channel; pool: one weight); per-neuron time constants share one decay pair (the median);
``v_reset != 0`` is mapped by shifting v; a bias on the synaptic current becomes its steady state on v.
Each approximation is noted in the stage's :class:`LayerMap`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.io.nir import NirModel, NIRFormatError, Stage
from snnhw.nir_import.reference import float_reference
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

HEADROOM = 0.5  # u and v may use at most this fraction of the 24-bit range on calibration data
STATE_LIMIT_W = float(1 << (loihi.STATE_BITS - 1 - loihi.ACT_SHIFT))  # 2**17 weight units
BIAS_MANT_MAX = loihi.RANGES["bias_mant"][1]
VTH_MAX = loihi.RANGES["vth_mant"][1]
EXP_MIN = -8  # smallest weight exponent the calibration uses
EXP_MAX = 7  # largest (``max_weight_exp`` may lower it; 0 makes every Dense netx-encodable)
TINY = 2.0 ** -30  # floor of the exponent search's argument


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
    fine_exp: Optional[int] = None  # split weights: the fine synapses' exponents (None: not split)
    rec_fine_exp: Optional[int] = None

    def as_dict(self) -> Dict:
        return {"name": self.name, "vth_mant": self.vth_mant, "weight_exp": self.weight_exp,
                "rec_exp": self.rec_exp, "i_decay": self.i_decay, "v_decay": self.v_decay,
                "max_weight_mant": self.max_weight_mant, "bias_max_mant": self.bias_max_mant,
                "scale_limits": {k: (None if not np.isfinite(v) else float(v)) for k, v in self.limits.items()},
                "notes": list(self.notes),
                **({"fine_exp": self.fine_exp, "rec_fine_exp": self.rec_fine_exp}
                   if self.fine_exp is not None or self.rec_fine_exp is not None else {})}


def safe_name(name: str) -> str:
    """A layer name without '/' (nested NIR names may hold one)."""
    return str(name).replace("/", "_")


def _exp_for(x: float, max_exp: int) -> int:
    """Smallest exponent e in [EXP_MIN, max_exp] with ``x / 2**e`` within the mixed-sign mantissa range."""
    e = int(np.ceil(np.log2(max(x / loihi.MIXED_MANT_MAX, TINY))))
    return int(np.clip(e, EXP_MIN, max_exp))


def choose_scale(wmax: float, limits: Dict[str, float], *, fixed_exp: Optional[int] = None,
                 max_exp: int = EXP_MAX) -> Tuple[int, int]:
    """Pick (vth_mant s, weight_exp e) for a layer whose chip weights are ``s * w`` with ``max|w| = wmax``.

    ``limits`` are upper bounds on ``s`` from the chip (threshold 17 bits, u/v headroom, bias mantissa).
    The smallest exponent whose 8-bit mixed-sign mantissa range (``loihi.MIXED_MANT_MAX`` = 254) still
    reaches ``s_cap * wmax`` is used, so the largest weight gets a mantissa in (127, 254] and the
    threshold the largest legal value; where even ``e = max_exp`` cannot reach it, ``s`` is lowered.
    ``fixed_exp`` forces the exponent (Lava's Conv ignores ``weight_exp``, so conv/pool layers use 0).
    """
    s_cap = float(min(limits.values()))
    if wmax <= 0:
        return max(1, int(np.floor(min(s_cap, VTH_MAX)))), 0 if fixed_exp is None else fixed_exp
    e = fixed_exp if fixed_exp is not None else _exp_for(s_cap * wmax, max_exp)
    s = min(s_cap, loihi.MIXED_MANT_MAX * 2.0 ** e / wmax)
    return max(1, int(np.floor(s))), e


def _stage_stats(model: NirModel, calib_x, reset: str) -> List[Dict[str, np.ndarray]]:
    """Per neuron stage, max |I| and max |v| per neuron of the float reference on ``calib_x``."""
    ref = float_reference(model, calib_x, reset=reset, record=True)
    return [{"imax": np.abs(i_tr).max(axis=(0, 1)), "vmax": np.abs(v_tr).max(axis=(0, 1))}
            for i_tr, v_tr in ref.traces]


@dataclass
class _Rows:
    """A stage in chip terms per unit threshold scale: ``per`` (chip weight per NIR weight, per row),
    ``bias_w`` (bias in weight units), ``thr`` (threshold above v_reset), the decays, and notes."""

    per: np.ndarray
    bias_w: np.ndarray
    thr: np.ndarray
    i_decay: int
    v_decay: int
    notes: List[str]


def _decays(nd, notes: List[str]) -> Tuple[int, int]:
    """One (i_decay, v_decay) pair (netx units) for the population: the median factors."""
    i_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.alpha))), 0, loihi.DECAY_UNITY))
    v_decay = int(np.clip(np.round(loihi.DECAY_UNITY * (1 - np.median(nd.beta))), 0, loihi.DECAY_UNITY))
    if np.ptp(nd.alpha) > 1e-9 or np.ptp(nd.beta) > 1e-9:
        notes.append(f"per-neuron time constants (alpha {nd.alpha.min():.4f}..{nd.alpha.max():.4f}, beta "
                     f"{nd.beta.min():.4f}..{nd.beta.max():.4f}) share one decay pair on Loihi (median)")
    return i_decay, v_decay


def _rows(st: Stage, theta_scale: float) -> _Rows:
    nd = st.neuron
    notes: List[str] = []
    i_decay, v_decay = _decays(nd, notes)
    thr = nd.theta * theta_scale - nd.v_reset  # chip resets to 0: shift v by v_reset
    if np.any(thr <= 0):
        raise NIRFormatError(f"node '{st.nodes.get('neuron', st.name)}': v_threshold must exceed v_reset")
    if np.any(nd.v_reset != 0):
        notes.append("v_reset != 0 mapped by shifting v (exact except the initial state v(0) = 0)")
    leak = nd.leak - (1 - nd.beta) * nd.v_reset
    per = nd.g_syn * nd.g_mem / thr  # chip weight per unit NIR weight, per unit s (row scale)
    alpha_eff = 1 - i_decay / loihi.DECAY_UNITY
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
    return _Rows(per, bias_w, thr, i_decay, v_decay, notes)


def _limits(st: Stage, r: _Rows, stats: Dict[str, np.ndarray], v_room: float = 1.0) -> Dict[str, float]:
    """Upper bounds on the threshold scale s: 17-bit threshold, u/v headroom (v's times ``v_room``: Loihi
    saturates v, where u wraps), 13-bit bias mantissa."""
    nd = st.neuron
    limits = {"vth_17bit": float(VTH_MAX)}
    u_need = np.max(nd.g_mem * stats["imax"] / r.thr) if nd.n else 0.0
    v_need = np.max(stats["vmax"] / r.thr) if nd.n else 0.0
    if u_need > 0:
        limits["u_headroom"] = HEADROOM * STATE_LIMIT_W / u_need
    if v_need > 0:
        limits["v_headroom"] = HEADROOM * v_room * STATE_LIMIT_W / v_need
    bmax = float(np.max(np.abs(r.bias_w))) if nd.n else 0.0
    if bmax > 0:
        limits["bias_13bit"] = BIAS_MANT_MAX / bmax
    return limits


def _max_mant(mant: np.ndarray) -> int:
    return int(np.abs(mant).max()) if mant.size else 0


def _map_dense(st: Stage, name: str, r: _Rows, limits: Dict[str, float], max_exp: int, split: bool):
    """(Dense layer, s, e, rec_exp, max mantissa); identity stages get an identity weight matrix."""
    w = np.eye(st.neuron.n) if st.kind == "identity" else st.weight
    wrow = r.per[:, None] * w
    if st.weight_rec is not None and max_exp < EXP_MAX:
        wrm = float(np.abs(r.per[:, None] * st.weight_rec).max())
        if wrm > 0:
            limits["rec_weight_8bit"] = loihi.MIXED_MANT_MAX * 2.0 ** max_exp / wrm
    s, e = choose_scale(float(np.abs(wrow).max()), limits, max_exp=max_exp)
    layer = Dense(name=name, weight=loihi.round_to_grid(s * wrow / 2.0 ** e), weight_exp=e)
    if split:
        _split(layer, "weight", s * wrow, e, r.notes)
    rec_exp = None
    if st.weight_rec is not None:
        wr_row = r.per[:, None] * st.weight_rec
        wrmax = float(np.abs(wr_row).max())
        rec_exp = _exp_for(s * wrmax, max_exp) if wrmax else 0
        layer.weight_rec = loihi.round_to_grid(s * wr_row / 2.0 ** rec_exp)
        layer.rec_exp = rec_exp
        if split:
            _split(layer, "weight_rec", s * wr_row, rec_exp, r.notes)
    return layer, s, e, rec_exp, _max_mant(layer.weight)


def _split(layer: Dense, which: str, w: np.ndarray, e: int, notes: List[str]) -> None:
    """Give ``layer`` a fine synapse beside its ``which`` matrix (chip weights ``w``, weight units) where the
    coarse exponent ``e`` allows it (>= 0, :func:`snnhw.loihi.split_wide`); say so where it does not."""
    if e < 0:
        notes.append(f"{which}: not split (its exponent {e} < 0 already holds the weights to "
                     f"{2.0 ** (e + 1):g} weight units)")
        return
    hi, lo, f = loihi.split_weight(w, e)
    if which == "weight":
        layer.weight, layer.weight_fine, layer.fine_exp = hi, lo, f
    else:
        layer.weight_rec, layer.weight_rec_fine, layer.rec_fine_exp = hi, lo, f


def _map_conv(st: Stage, name: str, r: _Rows, limits: Dict[str, float]):
    """(Conv layer, s, 0, None, max mantissa): one row scale per channel, weight_exp 0."""
    c = st.out_shape[0]
    per_c = r.per.reshape(c, -1)
    if np.ptp(per_c, axis=1).max() > 1e-9 * np.abs(per_c).max():
        r.notes.append("per-neuron threshold/gain inside a conv channel averaged per channel")
    wrow = per_c.mean(axis=1)[:, None, None, None] * st.weight
    s, e = choose_scale(float(np.abs(wrow).max()), limits, fixed_exp=0)
    mant = loihi.round_to_grid(s * wrow)
    layer = Conv(name=name, weight=mant, input_shape=tuple(st.in_shape), stride=tuple(st.stride),
                 padding=tuple(st.padding), weight_exp=0)
    return layer, s, e, None, _max_mant(mant)


def _map_pool(st: Stage, name: str, r: _Rows, limits: Dict[str, float]):
    """(SumPool layer, s, 0, None, |weight|): one pool weight for all channels."""
    if np.ptp(r.per) > 1e-9 * np.abs(r.per).max():
        r.notes.append("per-neuron threshold/gain of a pooling layer averaged (one pool weight)")
    pm = float(np.mean(r.per))
    s, e = choose_scale(abs(pm), limits, fixed_exp=0)
    wq = int(np.clip(np.round(s * pm), -loihi.ONE_SIGN_MANT_MAX, loihi.ONE_SIGN_MANT_MAX))
    layer = SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel), stride=tuple(st.stride),
                    weight=wq, weight_exp=0)
    return layer, s, e, None, abs(wq)


def _quantize_stage(st: Stage, theta_scale: float, stats: Dict[str, np.ndarray], max_exp: int, split: bool,
                    v_room: float):
    """(spec layer, LayerMap) of one neuron stage."""
    r = _rows(st, theta_scale)
    limits = _limits(st, r, stats, v_room)
    name = safe_name(st.name)
    if st.kind in ("dense", "identity"):
        layer, s, e, rec_exp, max_m = _map_dense(st, name, r, limits, max_exp, split)
    elif st.kind == "conv":
        layer, s, e, rec_exp, max_m = _map_conv(st, name, r, limits)
    else:
        layer, s, e, rec_exp, max_m = _map_pool(st, name, r, limits)
    s = int(min(s, VTH_MAX))
    bias_m = np.round(s * r.bias_w)
    if np.any(np.abs(bias_m) > BIAS_MANT_MAX):
        r.notes.append("bias clipped to the 13-bit mantissa range")
    bias_m = np.clip(bias_m, -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64)
    if isinstance(layer, (Conv, SumPool)):
        bias_m = bias_m.reshape(st.out_shape[0], -1).mean(axis=1).round().astype(np.int64)
    layer.neuron = Neuron(i_decay=r.i_decay, v_decay=r.v_decay, vth_mant=s, reset="zero")
    layer.bias_exp = loihi.NETX_BIAS_EXP
    layer.bias_mant = bias_m if np.any(bias_m != 0) else None
    lmap = LayerMap(name=name, vth_mant=s, weight_exp=int(e), rec_exp=rec_exp, i_decay=r.i_decay, v_decay=r.v_decay,
                    max_weight_mant=max_m, bias_max_mant=int(np.abs(bias_m).max()) if bias_m.size else 0,
                    limits=limits, notes=r.notes)
    if isinstance(layer, Dense):
        lmap.fine_exp = layer.fine_exp if layer.weight_fine is not None else None
        lmap.rec_fine_exp = layer.rec_fine_exp if layer.weight_rec_fine is not None else None
    return layer, lmap


def quantize_model(model: NirModel, calib_x, *, reset: str = "zero", theta_scale: Optional[List[float]] = None,
                   max_weight_exp: int = EXP_MAX, split: bool = False,
                   v_room: float = 1.0) -> Tuple[NetworkSpec, List[LayerMap]]:
    """Map ``model`` to a quantized Loihi :class:`NetworkSpec` (module docstring, :func:`choose_scale`).

    ``calib_x`` [B, T, n_in]: calibration inputs (the float reference on them bounds u and v).
    ``theta_scale``: per-neuron-stage threshold multipliers (subtract-reset compensation).
    ``max_weight_exp``: largest weight/recurrent exponent; 0 makes every Dense encodable by lava-dl netx
    (whose files hold ``mantissa * 2**weight_exp`` within 8 bits).
    ``split``: every Dense (and recurrent) matrix with exponent >= 0 gets a fine second synapse carrying
    its rounding error (:func:`snnhw.loihi.split_weight`): ~15-bit effective weights, 2x the synapses.
    ``v_room``: multiplies v's headroom (:data:`HEADROOM`); above 2 the most negative v of the
    calibration data saturates at -(2**23 - 1), as Loihi clips v (u keeps its headroom: it wraps).
    """
    stats = _stage_stats(model, calib_x, reset)
    layers: List = []
    maps: List[LayerMap] = []
    for st in model.stages:
        if st.kind == "flatten":
            layers.append(Flatten(name=safe_name(st.name), input_shape=tuple(st.in_shape)))
            continue
        k = len(maps)
        layer, lmap = _quantize_stage(st, theta_scale[k] if theta_scale is not None else 1.0, stats[k],
                                      max_weight_exp, split, v_room)
        layers.append(layer)
        maps.append(lmap)
    spec = NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=True,
                       metadata={"source": "nir", "dt": model.dt})
    return spec.validate(), maps


def _float_layer(st: Stage, reset: str):
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
    name = safe_name(st.name)
    bias = leak.astype(np.float64) if np.any(leak != 0) else None  # bias_exp 6: mant = weight units
    if st.kind in ("dense", "identity"):
        w = np.eye(nd.n) if st.kind == "identity" else st.weight
        layer = Dense(name=name, weight=per[:, None] * w, neuron=neuron, bias_mant=bias)
        if st.weight_rec is not None:
            layer.weight_rec = per[:, None] * st.weight_rec
        return layer
    c = st.out_shape[0]
    if st.kind == "conv":
        pc = per.reshape(c, -1).mean(axis=1)
        return Conv(name=name, weight=pc[:, None, None, None] * st.weight, input_shape=tuple(st.in_shape),
                    neuron=neuron, stride=tuple(st.stride), padding=tuple(st.padding),
                    bias_mant=None if bias is None else bias.reshape(c, -1).mean(axis=1))
    return SumPool(name=name, input_shape=tuple(st.in_shape), kernel=tuple(st.kernel), stride=tuple(st.stride),
                   weight=float(np.mean(per)), neuron=neuron,
                   bias_mant=None if bias is None else bias.reshape(c, -1).mean(axis=1))


def float_spec(model: NirModel, *, reset: str = "zero") -> NetworkSpec:
    """The float-twin spec of ``model`` (target ``float``): threshold scale s = 1 per neuron row, float
    decays (median of per-neuron values), float biases, the requested reset; Loihi's timing."""
    layers = [Flatten(name=safe_name(st.name), input_shape=tuple(st.in_shape)) if st.kind == "flatten"
              else _float_layer(st, reset) for st in model.stages]
    return NetworkSpec(input_shape=tuple(model.input_shape), layers=layers, quantized=False,
                       metadata={"source": "nir", "dt": model.dt}).validate()
